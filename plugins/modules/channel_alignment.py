#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: channel_alignment
short_description: Check that Helm values and compose files use the images a release manifest pins
description:
  - Loads a release manifest (validated like M(stellaops.deploy.release_manifest)) and finds every image
    reference in each target file. Targets are recognised by content.
  - A compose file (a top-level C(services) mapping and only compose top-level keys) contributes
    C(services.<name>.image). Compose variables with a default (C(${VAR:-image})) resolve to the default;
    a variable without a default is an error, since the image it names cannot be checked.
  - Any other file is read as Helm values, where every C(image) key at any depth counts, either a string
    or a mapping with C(repository) and optional C(registry), C(tag) and C(digest).
  - Repositories are compared by the name Docker resolves them to, never by spelling - C(postgres),
    C(library/postgres) and C(docker.io/library/postgres) are one repository; the registry host's case and
    its default port (443, 80) do not count, C(index.docker.io) is C(docker.io).
  - Each difference is a finding with a reason. V(digest_mismatch) is a different digest (or, for a
    release that names a tag only, a different tag); V(unpinned) is a target image without a digest
    where the release pins one; V(tag_mismatch) is a target tag next to the release's digest that is not
    the release's tag for it; V(repository_mismatch) is a release component the target takes from another
    repository (the compose service or the Helm key holding the image is the component's name, or the
    repository's last segment is that of the component's); V(missing_in_target) is a release image the
    target does not use; V(unknown_repository) is a target image the release does not name.
  - V(digest_mismatch), V(unpinned), V(tag_mismatch) and V(repository_mismatch) block by default. V(missing_in_target) and
    V(unknown_repository) are reported and block only with O(strict=true). Every finding is always returned in RV(mismatches).
  - The command-line tool C(tools/check-channel-alignment) runs the same code for pipelines without Ansible.
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
  release:
    description: Path of the release manifest, for example C(deploy/releases/2025.10.0-edge.yaml).
    type: path
    required: true
  targets:
    description: Helm values files and compose files to compare with the release.
    type: list
    elements: path
    required: true
  ignore_repos:
    description:
      - Repositories to skip, for auxiliary services on upstream tags. A name matches the whole repository
        or its trailing path segments, so V(nats) matches C(docker.io/library/nats).
    type: list
    elements: str
    default: []
  channel:
    description: The channel the release manifest must declare.
    type: str
    choices: [edge, stable, airgap]
  strict:
    description:
      - Validate the manifest strictly (see M(stellaops.deploy.release_manifest)) and let every reason block,
        including V(missing_in_target) and V(unknown_repository).
    type: bool
    default: false
  fail_on_mismatch:
    description:
      - Fail the task when a blocking finding exists. With V(false) the task succeeds and RV(aligned) tells.
    type: bool
    default: true
requirements:
  - jsonschema
  - PyYAML
seealso:
  - module: stellaops.deploy.release_manifest
"""

EXAMPLES = r"""
- name: Check the dev profiles against the edge release
  stellaops.deploy.channel_alignment:
    release: deploy/releases/2025.10.0-edge.yaml
    targets:
      - deploy/helm/stellaops/values-dev.yaml
      - deploy/compose/docker-compose.dev.yaml
    ignore_repos: [nats]

- name: Report every finding without failing, strictly
  stellaops.deploy.channel_alignment:
    release: deploy/releases/2025.09.2-stable.yaml
    channel: stable
    targets:
      - deploy/helm/stellaops/values-prod.yaml
      - deploy/compose/docker-compose.prod.yaml
    ignore_repos: [nats]
    strict: true
    fail_on_mismatch: false
  register: prod_alignment

- name: Show the findings
  ansible.builtin.debug:
    var: prod_alignment.mismatches
  when: not prod_alignment.aligned | bool
"""

RETURN = r"""
aligned:
  description: True when no finding blocks (see RV(blocking_reasons)).
  returned: success or a blocking finding
  type: bool
  sample: true
release_id:
  description: C(<version>-<channel>) of the release.
  returned: success or a blocking finding
  type: str
  sample: 2025.10.0-edge
release_path:
  description: Path of the release manifest.
  returned: success or a blocking finding
  type: str
  sample: deploy/releases/2025.10.0-edge.yaml
strict:
  description: Whether strict mode was on.
  returned: success or a blocking finding
  type: bool
  sample: false
ignore_repos:
  description: The repositories skipped.
  returned: success or a blocking finding
  type: list
  elements: str
  sample: [nats]
blocking_reasons:
  description: The reasons that block in this run.
  returned: success or a blocking finding
  type: list
  elements: str
  sample: [digest_mismatch, unpinned]
targets:
  description: Each target with the kind it was recognised as (V(compose) or V(helm)) and its number of image references.
  returned: success or a blocking finding
  type: list
  elements: dict
  sample:
    - {path: deploy/compose/docker-compose.dev.yaml, kind: compose, images: 11}
summary:
  description: Number of findings per reason.
  returned: success or a blocking finding
  type: dict
  sample: {digest_mismatch: 1, unpinned: 0, tag_mismatch: 0, repository_mismatch: 0, missing_in_target: 0, unknown_repository: 1}
mismatches:
  description: Every finding, blocking or not, in target order.
  returned: success or a blocking finding
  type: list
  elements: dict
  contains:
    target:
      description: The target file.
      type: str
    service:
      description: Compose service name, or the Helm values path of the C(image) key; null for V(missing_in_target).
      type: str
    component:
      description: Release component or infrastructure service concerned; null for V(unknown_repository).
      type: str
    repository:
      description:
        - Image repository as Docker resolves it (registry and path, for example C(docker.io/library/postgres)).
        - For V(repository_mismatch), the target's repository; the release's is in RV(mismatches[].expected).
      type: str
    expected:
      description: Image reference from the release; null for V(unknown_repository).
      type: str
    found:
      description: Image reference from the target; null for V(missing_in_target).
      type: str
    reason:
      description: V(digest_mismatch), V(unpinned), V(tag_mismatch), V(repository_mismatch), V(missing_in_target) or V(unknown_repository).
      type: str
    blocking:
      description: Whether this finding makes the target misaligned.
      type: bool
  sample:
    - target: deploy/compose/docker-compose.dev.yaml
      service: authority
      component: authority
      repository: registry.stella-ops.org/stellaops/authority
      expected: registry.stella-ops.org/stellaops/authority@sha256:c49b...
      found: registry.stella-ops.org/stellaops/authority:2025.10.0
      reason: unpinned
      blocking: true
msg:
  description: One-sentence summary.
  returned: always
  type: str
  sample: Release 2025.10.0-edge is aligned with 2 target(s).
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.alignment import check_alignment
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import (
    CHANNELS,
    HAS_JSONSCHEMA,
    HAS_YAML,
    JSONSCHEMA_IMPORT_ERROR,
    YAML_IMPORT_ERROR,
    load_manifest,
)


class ChannelAlignmentManager:
    """Loads the release and compares every target with it."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params

    def run(self) -> dict[str, Any]:
        p = self.params
        release = load_manifest(p["release"], strict=p["strict"], channel=p["channel"])
        report = check_alignment(release, p["targets"], ignore_repos=p["ignore_repos"], strict=p["strict"])
        result = report.to_dict()
        result["changed"] = False
        result["failed"] = not report.aligned and p["fail_on_mismatch"]
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "release": {"type": "path", "required": True},
            "targets": {"type": "list", "elements": "path", "required": True},
            "ignore_repos": {"type": "list", "elements": "str", "default": []},
            "channel": {"type": "str", "choices": list(CHANNELS)},
            "strict": {"type": "bool", "default": False},
            "fail_on_mismatch": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=str(YAML_IMPORT_ERROR))
    if not HAS_JSONSCHEMA:
        module.fail_json(msg=missing_required_lib("jsonschema"), exception=str(JSONSCHEMA_IMPORT_ERROR))
    try:
        result = ChannelAlignmentManager(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    if result.pop("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
