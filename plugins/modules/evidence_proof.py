#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_proof
short_description: Inclusion proof of one evidence bundle in a baseline's Merkle root
description:
  - Reads a baseline written by M(stellaops.deploy.evidence_baseline) (its checksum is checked) and returns the
    RFC 6962 audit path of one bundle to the global root or to the root of the bundle's partition.
  - An auditor checks the proof offline with C(tools/evidence-proof verify), against the roots export and,
    when at hand, the bundle itself, without access to the whole store.
  - Only reads the baseline; writes the proof to O(dest) when given.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Computes the proof and writes nothing.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  baseline_path:
    description: The baseline file.
    type: path
    required: true
  key:
    description: Key of the bundle, relative to the store prefix or directory, as listed in the baseline.
    type: str
    required: true
  scope:
    description: Prove inclusion in the global root (V(total)) or in the root of the bundle's partition (V(partition)).
    type: str
    choices: [total, partition]
    default: total
  dest:
    description: File to write the proof to (JSON). Only returned when omitted.
    type: path
"""

EXAMPLES = r"""
- name: Proof that one SBOM is in the pre-upgrade baseline
  stellaops.deploy.evidence_proof:
    baseline_path: /backup/pre-upgrade-evidence-baseline.json
    key: acme/sbom/bundle-0003.json
    dest: /reports/proof-acme-sbom-0003.json
  register: proof
"""

RETURN = r"""
proof:
  description: The inclusion proof (leaf index, tree size, audit path bottom up, root, scope, baseline checksum).
  returned: always
  type: dict
  sample:
    algorithm: rfc6962-sha256
    key: acme/sbom/bundle-0003.json
    sha256: 44d4a004787e85cab15f6eaac846b8e5a046259724941a72dcee50729c628bc7
    index: 22
    tree_size: 60
    audit_path: [1b765a2e13a5d0a97b4724372c086bb127b1dc0c5f6a4c719d87dc0a054199e7]
    root: 940f1e2b21270086244e93db2ff7a4285a2802060da215122d11d19f2ca29801
    scope: total
    partition: null
dest:
  description: The file written, or null.
  returned: always
  type: str
  sample: /reports/proof-acme-sbom-0003.json
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_json
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.safe_load import read_json
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import inclusion_proof, load_baseline


class ProofManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params

    def run(self) -> dict[str, Any]:
        p = self.params
        baseline = load_baseline(p["baseline_path"])
        proof = inclusion_proof(baseline, p["key"], partition=p["scope"] == "partition")
        changed = False
        if p["dest"]:
            changed = self._written(p["dest"]) != proof
            if changed and not self.module.check_mode:
                write_json(p["dest"], proof)
        return {"changed": changed, "proof": proof, "dest": p["dest"]}

    @staticmethod
    def _written(dest: str) -> Any:
        """The proof in ``dest`` now; None when there is none or it is not JSON (it is rewritten). A FIFO, a directory or
        an unreadable file there is refused, not waited on or replaced."""
        try:
            return read_json(dest, "proof file")
        except StellaOpsError as error:
            if error.details.get("missing") or error.details.get("kind") == "invalid":
                return None
            raise


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "baseline_path": {"type": "path", "required": True},
            "key": {"type": "str", "required": True, "no_log": False},
            "scope": {"type": "str", "choices": ["total", "partition"], "default": "total"},
            "dest": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**ProofManager(module).run())
    except StellaOpsError as err:
        module.fail_json(msg=str(err))


if __name__ == "__main__":
    main()
