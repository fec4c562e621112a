#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_verify
short_description: Prove evidence continuity against a baseline after an upgrade
description:
  - Checks the baseline file's own checksum, hashes every bundle of the evidence store again (SHA-256, streamed,
    in parallel) and reports bundles V(lost) (keys gone), V(modified) (hash changed) and V(added) (new since the
    baseline, allowed), and whether the baseline's Merkle roots recompute from the bundles still there (RV(roots_match)).
  - Fails when a bundle was lost or modified, naming the bundles; fails when a bundle cannot be read, and then
    the report says V(incomplete) in its status and never claims continuity.
  - Writes a JSON report and a self-contained HTML report (status, counts, roots, every finding), each atomically.
  - The store and the baseline are only read. The report files are the only files written, on every real run.
  - A baseline taken of another store (other endpoint, bucket, prefix or directory) is refused unless O(allow_other_store).
version_added: 1.0.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.evidence_store
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Verifies exactly as a real run (and fails the same way) but writes no report file.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
    details:
      - Always reports no change, since the store and the baseline are only read; the reports are rewritten with the time of each run.
options:
  baseline_path:
    description: Baseline file written by M(stellaops.deploy.evidence_baseline).
    type: path
    required: true
  report_json:
    description: JSON report to write. None when omitted.
    type: path
  report_html:
    description: HTML report to write. None when omitted.
    type: path
  allow_other_store:
    description: Accept a baseline taken of another store, for example to verify a restored copy of the bucket.
    type: bool
    default: false
  fail_on_loss:
    description: Fail when bundles were lost or modified. With V(false), return the findings with RV(continuity=false).
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Verify evidence continuity after the upgrade
  stellaops.deploy.evidence_verify:
    store:
      type: s3
      endpoint: http://127.0.0.1:59000
      bucket: stellaops-evidence
      prefix: evidence/
      access_key: "{{ evidence_access_key }}"
      secret_key: "{{ evidence_secret_key }}"
    baseline_path: /backup/pre-upgrade-evidence-baseline.json
    report_json: /reports/continuity-report.json
    report_html: /reports/continuity-report.html

- name: Look at the findings without failing
  stellaops.deploy.evidence_verify:
    store: {type: directory, path: /srv/evidence}
    baseline_path: /backup/evidence.baseline.json
    fail_on_loss: false
  register: continuity
"""

RETURN = r"""
continuity:
  description: True when no bundle of the baseline was lost or modified and every bundle could be read.
  returned: always
  type: bool
  sample: false
status:
  description: V(passed), V(failed) (bundles lost or modified) or V(incomplete) (bundles could not be read).
  returned: always
  type: str
  sample: failed
roots_match:
  description: True when the baseline's global and partition roots recompute from the bundles in the store now.
  returned: always
  type: bool
  sample: false
counts:
  description: Bundles in the baseline and now, and the number of each finding.
  returned: always
  type: dict
  sample: {baseline: 60, current: 60, lost: 1, modified: 1, added: 1, unreadable: 0}
lost:
  description: Keys of the baseline's bundles that are gone.
  returned: always
  type: list
  elements: str
  sample: [acme/sbom/bundle-0003.json]
modified:
  description: Keys of the baseline's bundles whose sha256 changed.
  returned: always
  type: list
  elements: str
  sample: [globex/attestation/bundle-0007.json]
added:
  description: Keys of bundles that are not in the baseline (allowed).
  returned: always
  type: list
  elements: str
  sample: [acme/sbom/bundle-0061.json]
unreadable:
  description: Bundles that could not be read, with the reason.
  returned: always
  type: list
  elements: dict
  sample: [{key: acme/sbom/bundle-0009.json, error: "Access denied to the object ..."}]
roots:
  description: Baseline root and recomputed root of the whole store and of each partition.
  returned: always
  type: dict
  sample: {total: {baseline_root: 940f1e2b21270086244e93db2ff7a4285a2802060da215122d11d19f2ca29801, recomputed_root: null, match: false}}
report_json:
  description: The JSON report written (null in check mode or when not requested).
  returned: always
  type: str
  sample: /reports/continuity-report.json
report_html:
  description: The HTML report written (null in check mode or when not requested).
  returned: always
  type: str
  sample: /reports/continuity-report.html
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils._evidence import (
    check_same_store,
    failure_message,
    load_baseline,
    scan_store,
    verify_scan,
    write_json_atomic,
    write_text_atomic,
)
from ansible_collections.stellaops.deploy.plugins.module_utils._evidence_report import render_html
from ansible_collections.stellaops.deploy.plugins.module_utils._evidence_store import STORE_ARGUMENT_SPEC, store_from_options


class VerifyManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.store = store_from_options(self.params["store"], workers=self.params["workers"])

    def run(self) -> dict[str, Any]:
        p = self.params
        baseline = load_baseline(p["baseline_path"])
        if not p["allow_other_store"]:
            check_same_store(baseline, self.store, p["baseline_path"])
        scan = scan_store(self.store, workers=p["workers"])
        report = verify_scan(baseline, scan, self.store)
        written: dict[str, Any] = {"report_json": None, "report_html": None}
        if not self.module.check_mode:
            if p["report_json"]:
                write_json_atomic(p["report_json"], report, indent=2)
                written["report_json"] = p["report_json"]
            if p["report_html"]:
                write_text_atomic(p["report_html"], render_html(report))
                written["report_html"] = p["report_html"]
        continuity = report["status"] == "passed"
        result: dict[str, Any] = {
            "changed": False,
            "continuity": continuity,
            "status": report["status"],
            "roots_match": report["roots_match"],
            "counts": report["counts"],
            "lost": [f["key"] for f in report["lost"]],
            "modified": [f["key"] for f in report["modified"]],
            "added": [f["key"] for f in report["added"]],
            "unreadable": report["unreadable"],
            "roots": report["roots"],
            **written,
        }
        message = failure_message(report)
        if message and (p["fail_on_loss"] or not report["complete"]):
            self.module.fail_json(msg=message, **result)
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "baseline_path": {"type": "path", "required": True},
            "report_json": {"type": "path"},
            "report_html": {"type": "path"},
            "allow_other_store": {"type": "bool", "default": False},
            "fail_on_loss": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**VerifyManager(module).run())
    except StellaOpsError as err:
        module.fail_json(msg=str(err))


if __name__ == "__main__":
    main()
