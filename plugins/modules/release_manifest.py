#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_manifest
short_description: Load and validate a release manifest and return the normalized release
description:
  - Reads a release manifest C(<version>-<channel>.yaml), validates it against the published JSON Schema
    (C(docs/schemas/release-manifest.schema.json)) and returns the normalized release with the repository,
    tag and digest of every component.
  - Either O(path) names one manifest, or O(directory) and O(channel) select one from a directory,
    the newest version unless O(version) is given.
  - In the V(stable) and V(airgap) channels every image must be pinned by digest.
  - The module only reads; it never reports a change.
  - It runs on the controller, in the playbook's own process (an action plugin of the same name), whatever
    the task's host or C(delegate_to); O(path) and O(directory) are paths on the controller.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads, so check mode runs exactly as a normal run.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description:
      - Path of one release manifest.
      - Mutually exclusive with O(directory).
    type: path
  directory:
    description:
      - Directory holding manifests named C(<version>-<channel>.yaml), for example C(deploy/releases).
      - Requires O(channel). Mutually exclusive with O(path).
    type: path
  version:
    description:
      - Version to pick from O(directory), for example C(2025.10.0). The newest version of O(channel) when omitted.
      - Versions compare number by number, so C(2025.10.0) is newer than C(2025.9.3).
    type: str
  channel:
    description:
      - The channel the manifest must declare. With O(directory) it also selects the files.
    type: str
    choices: [edge, stable, airgap]
  strict:
    description:
      - Also reject unknown keys, repeated YAML keys, two components on the same repository and
        images not pinned by digest in any channel (the strict schema, C(docs/schemas/release-manifest.strict.schema.json)).
    type: bool
    default: false
  running:
    description:
      - The platform version the target runs now (for example C(2025.09.0)). With it RV(path_problem) says whether the release
        found upgrades from it directly, judged on the C(upgrade.from) of the releases of O(channel) in O(directory).
      - Requires O(directory). The task does not fail on an unsupported path; the caller decides.
    type: str
requirements:
  - jsonschema
  - PyYAML
seealso:
  - module: stellaops.deploy.channel_alignment
"""

EXAMPLES = r"""
- name: Load the newest stable release
  stellaops.deploy.release_manifest:
    directory: "{{ playbook_dir }}/../deploy/releases"
    channel: stable
  register: stable_release

- name: Validate one manifest strictly
  stellaops.deploy.release_manifest:
    path: deploy/releases/2025.10.0-airgap.yaml
    channel: airgap
    strict: true

- name: Load a given version
  stellaops.deploy.release_manifest:
    directory: deploy/releases
    channel: edge
    version: 2025.11.0
  register: edge_release

- name: Show the authority digest
  ansible.builtin.debug:
    msg: "{{ (edge_release.release.components | selectattr('name', 'equalto', 'authority') | first).digest }}"
"""

RETURN = r"""
release:
  description: The normalized release.
  returned: success
  type: dict
  contains:
    release_id:
      description: C(<version>-<channel>).
      type: str
      sample: 2025.10.0-stable
    version:
      description: Release version.
      type: str
      sample: 2025.10.0
    channel:
      description: Release channel.
      type: str
      sample: stable
    date:
      description: Release date as written in the manifest, or null.
      type: str
      sample: "2025-10-20T00:00:00Z"
    path:
      description: Path of the manifest file.
      type: str
      sample: deploy/releases/2025.10.0-stable.yaml
    source:
      description: Same as RV(release.path).
      type: str
      sample: deploy/releases/2025.10.0-stable.yaml
    components:
      description: Platform components in manifest order.
      type: list
      elements: dict
      sample:
        - name: authority
          image: registry.stella-ops.org/stellaops/authority@sha256:5b1f...
          repository: registry.stella-ops.org/stellaops/authority
          tag: null
          digest: sha256:5b1f...
          pinned: true
    infrastructure:
      description: Pinned third-party services, same keys as RV(release.components).
      type: list
      elements: dict
      sample:
        - name: postgres
          image: docker.io/library/postgres@sha256:0c5e...
          repository: docker.io/library/postgres
          tag: null
          digest: sha256:0c5e...
          pinned: true
    upgrade:
      description: The versions that upgrade to this release directly (C(from)), or null when the manifest does not say.
      type: dict
      sample: {"from": ["2025.09.0"]}
    database:
      description:
        - The database this release needs - C(schema_version), C(min_schema_version) and C(migrations) (id, name,
          category A or B) - or null when the manifest does not say.
      type: dict
      sample: {"schema_version": 2, "min_schema_version": 1, "migrations": [{"id": "20251001000000", "name": "add_evidence_index", "category": "A"}]}
    evidence:
      description: The evidence schema this release writes (C(schema_version)), or null when the manifest does not say.
      type: dict
      sample: {"schema_version": 1}
path_problem:
  description:
    - With O(running), one sentence when that version cannot upgrade to the release directly, naming the chain of releases
      that would work; null when it can, runs the release already, or runs a newer one (a return, not an upgrade).
  returned: when O(running) is given
  type: str
  sample: 2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first
older_than_running:
  description: With O(running), whether the release found is older than that version (a return, not an upgrade).
  returned: when O(running) is given
  type: bool
  sample: false
digests:
  description: Map of component name to digest (infrastructure included), for pinned images.
  returned: success
  type: dict
  sample:
    authority: sha256:5b1f...
    postgres: sha256:0c5e...
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.choose import ARGUMENT_SPEC, CONSTRAINTS, choose_release
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import (
    HAS_JSONSCHEMA,
    HAS_YAML,
    JSONSCHEMA_IMPORT_ERROR,
    YAML_IMPORT_ERROR,
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True, **CONSTRAINTS)
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=str(YAML_IMPORT_ERROR))
    if not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib("jsonschema"), exception=str(JSONSCHEMA_IMPORT_ERROR))
    try:
        result = choose_release(module.params)
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
