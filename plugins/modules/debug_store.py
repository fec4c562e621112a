#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: debug_store
short_description: Mirror a release's debug store into the offline kit and verify it
description:
  - With O(state=mirrored), copies the release's debug store (C(<release_dir>/debug/.build-id/**)) into the
    offline kit (C(<kit_dir>/debug/.build-id/)), removes kit files the release no longer has, and writes
    C(<kit_dir>/metadata/debug-store.json) with the size and sha256 of every file.
  - Files are compared by size and sha256, so a second run copies nothing and reports no change.
  - With O(state=verified), recomputes every file of the kit against C(metadata/debug-store.json) and fails,
    naming every missing, changed or unlisted file, when the kit does not verify. Airgap upgrades take only
    a kit that verifies.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Computes the same comparison and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  kit_dir:
    description: The offline kit tree, for example C(out/offline-kit).
    type: path
    required: true
  release_dir:
    description: The release output, for example C(out/release), holding C(debug/.build-id/**). Required for O(state=mirrored).
    type: path
  release_id:
    description: Release id recorded in the metadata.
    type: str
  state:
    description: V(mirrored) mirrors and writes the metadata; V(verified) only verifies the kit.
    type: str
    choices: [mirrored, verified]
    default: mirrored
"""

EXAMPLES = r"""
- name: Mirror the debug store into the offline kit
  stellaops.deploy.debug_store:
    release_dir: out/release
    kit_dir: out/offline-kit
    release_id: 2025.10.0-airgap

- name: Take only a kit whose debug store verifies
  stellaops.deploy.debug_store:
    kit_dir: /srv/offline-kit
    state: verified
"""

RETURN = r"""
copied:
  description: Files copied into the kit (paths relative to C(debug/)).
  returned: when O(state=mirrored)
  type: list
  elements: str
  sample: [.build-id/ab/cdef0123.debug]
removed:
  description: Kit files removed because the release no longer has them.
  returned: when O(state=mirrored)
  type: list
  elements: str
  sample: []
file_count:
  description: Files in the debug store.
  returned: always
  type: int
  sample: 42
total_size:
  description: Bytes of all files of the debug store.
  returned: always
  type: int
  sample: 1048576
metadata_path:
  description: The metadata file.
  returned: always
  type: str
  sample: out/offline-kit/metadata/debug-store.json
verified:
  description: Whether every file of the kit matches the metadata (after the mirror, when O(state=mirrored)).
  returned: always
  type: bool
  sample: true
problems:
  description: Each missing, changed (size or sha256) or unlisted file.
  returned: always
  type: list
  elements: dict
  sample: [{path: .build-id/ab/cdef0123.debug, problem: sha256, expected: "9f...", found: "04..."}]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.debug_store import apply_mirror, plan_mirror, problems_sentence, verify_kit


def run(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    if not p["kit_dir"]:
        raise StellaOpsError("debug_store: option kit_dir is empty; name the offline kit tree (upgrade.yml: -e stellaops_offline_kit_dir=...).")
    if p["state"] == "verified":
        checked = verify_kit(p["kit_dir"])
        if not checked["verified"]:
            module.fail_json(msg=problems_sentence(p["kit_dir"], checked["problems"]), **checked)
        return {"changed": False, **checked}
    plan = plan_mirror(p["release_dir"], p["kit_dir"], p["release_id"])
    changed = bool(plan["copy"] or plan["remove"] or plan["metadata_changed"])
    result: dict[str, Any] = {
        "changed": changed,
        "copied": plan["copy"],
        "removed": plan["remove"],
        "file_count": plan["metadata"]["file_count"],
        "total_size": plan["metadata"]["total_size"],
        "metadata_path": plan["metadata_path"],
        "verified": not changed,
        "problems": [],
    }
    if changed and not module.check_mode:
        apply_mirror(plan, p["kit_dir"])
        checked = verify_kit(p["kit_dir"])
        result.update(verified=checked["verified"], problems=checked["problems"])
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "kit_dir": {"type": "path", "required": True},
            "release_dir": {"type": "path"},
            "release_id": {"type": "str"},
            "state": {"type": "str", "choices": ["mirrored", "verified"], "default": "mirrored"},
        },
        required_if=[("state", "mirrored", ("release_dir",))],
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
