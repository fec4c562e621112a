#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: evidence_verify
short_description: Prove evidence continuity against a baseline after an upgrade
description:
  - Checks the baseline file's own checksum and that its recorded roots recompute from its own bundle list,
    then that those roots equal the roots recorded outside the file (O(roots_path), O(expected_root)).
  - Hashes every bundle of the evidence store again (SHA-256, streamed,
    in parallel) and reports bundles V(lost) (keys gone), V(modified) (hash changed) and V(added) (new since the
    baseline, allowed), and whether the baseline's Merkle roots recompute from the bundles still there (RV(roots_match)).
  - Fails when a bundle was lost or modified, naming the bundles; fails when a bundle cannot be read, and then
    the report says V(incomplete) in its status and never claims continuity.
  - Writes a JSON report and a self-contained HTML report (status, counts, roots, every finding), each atomically,
    and only when its content changes. The store and the baseline are only read.
  - A baseline taken of another store (other endpoint, bucket, prefix or directory) is refused unless O(allow_other_store).
  - Across an evidence schema change (O(schema_version) other than the baseline's), continuity is proven in the
    baseline's schema first; then the new roots are accepted only through a cross-reference (O(cross_reference_path)),
    old root to new root per partition and in total, recomputed from the baseline's bundles. The first run writes it;
    a cross-reference that exists must equal the recomputation, or the run fails (an edited one is refused).
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.evidence_store
attributes:
  check_mode:
    support: full
    details:
      - Verifies exactly as a real run (and fails the same way) but writes no report file; C(changed) says whether it would.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - A report whose findings equal those of the existing O(report_json) keeps the time of that report and is not rewritten.
      - Without O(report_json), an O(report_html) carries the time of each run and is rewritten every time.
options:
  schema_version:
    description:
      - The evidence schema of the release that runs now (its manifest's C(evidence.schema_version)). Omitted, the baseline's.
    type: int
    choices: [1, 2]
  cross_reference_path:
    description:
      - The cross-reference of an evidence schema change, written when it does not exist (or belongs to another
        baseline) and checked when it belongs to this one.
      - By default the baseline path with C(.json) replaced by C(.cross-reference.json).
    type: path
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
  roots_path:
    description:
      - Roots export written with the baseline by M(stellaops.deploy.evidence_baseline), kept apart from the baseline.
      - Its own checksum is checked, then the baseline's store, partition depth, roots and counts must equal it.
      - By default the baseline path with C(.json) replaced by C(.roots.json), when that file exists.
      - The empty string checks no roots export.
    type: path
  expected_root:
    description:
      - Global Merkle root of the baseline as recorded when it was taken, outside the baseline file
        (RV(stellaops.deploy.evidence_baseline#module:total.root) registered by the run, or the root recorded in the deployment journal).
      - The baseline's root must equal it.
    type: str
  expected_count:
    description: Number of bundles recorded with O(expected_root); the baseline's count must equal it.
    type: int
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
      endpoint: http://127.0.0.1:17000
      bucket: stellaops-evidence
      prefix: evidence/
      access_key: "{{ evidence_access_key }}"
      secret_key: "{{ evidence_secret_key }}"
    baseline_path: /backup/pre-upgrade-evidence-baseline.json
    report_json: /reports/continuity-report.json
    report_html: /reports/continuity-report.html
    roots_path: /srv/audit/pre-upgrade-merkle-roots.json
    expected_root: "{{ evidence_baseline.total.root }}"
    expected_count: "{{ evidence_baseline.total.count }}"

- name: Look at the findings without failing
  stellaops.deploy.evidence_verify:
    store: {type: directory, path: /srv/evidence}
    baseline_path: /backup/evidence.baseline.json
    fail_on_loss: false
  register: continuity
"""

RETURN = r"""
cross_reference:
  description:
    - Across an evidence schema change with continuity, the cross-reference (from_schema, to_schema, and old_root,
      new_root and count in total and per partition); null otherwise.
  returned: always
  type: dict
  sample: {"from_schema": 1, "to_schema": 2, "total": {"count": 12, "old_root": "9f2c...", "new_root": "41ab..."}}
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
anchors:
  description: What the baseline's roots were checked against, outside the baseline file.
  returned: always
  type: list
  elements: str
  sample: ["roots export /srv/audit/pre-upgrade-merkle-roots.json", "expected_root"]
report_json:
  description: The JSON report (null when not requested); written unless its findings are unchanged or in check mode.
  returned: always
  type: str
  sample: /reports/continuity-report.json
report_html:
  description: The HTML report (null when not requested); written unless unchanged or in check mode.
  returned: always
  type: str
  sample: /reports/continuity-report.html
"""

import json
import os
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_text
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import (
    CROSS_REFERENCE_FORMAT,
    check_anchor,
    check_cross_reference,
    check_same_store,
    cross_reference,
    default_cross_reference_path,
    default_roots_path,
    failure_message,
    load_baseline,
    load_checked,
    load_roots,
    scan_store,
    schema_of,
    verify_scan,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.report import render_html
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.store import STORE_ARGUMENT_SPEC, store_from_options


class VerifyManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.store = store_from_options(self.params["store"], workers=self.params["workers"])

    def anchors(self, baseline: dict[str, Any]) -> list[str]:
        """Check the baseline against the roots recorded outside it; the names of those checked."""
        p = self.params
        checked = []
        roots_path = default_roots_path(p["baseline_path"]) if p["roots_path"] is None else p["roots_path"]
        if roots_path and (p["roots_path"] or os.path.exists(roots_path)):
            roots = load_roots(roots_path)
            check_anchor(baseline, p["baseline_path"], roots, f"the roots export {roots_path}")
            checked.append(f"roots export {roots_path}")
        if p["expected_root"]:
            total: dict[str, Any] = {"root": p["expected_root"]}
            if p["expected_count"] is not None:
                total["count"] = p["expected_count"]
            check_anchor(baseline, p["baseline_path"], {"total": total}, "the expected_root recorded when it was taken")
            checked.append("expected_root")
        return checked

    def cross_reference(self, baseline: dict[str, Any], report: dict[str, Any]) -> Optional[dict[str, Any]]:
        """Across an evidence schema change: the cross-reference recomputed (and checked against the one kept), or None."""
        p = self.params
        to_schema = p["schema_version"] or schema_of(baseline)
        if to_schema == schema_of(baseline) or report["status"] != "passed":
            return None  # no change of schema, or continuity failed in the baseline's schema: nothing to map
        computed = cross_reference(baseline, to_schema)
        path = self.cross_reference_path
        if os.path.lexists(path):
            recorded = load_checked(path, CROSS_REFERENCE_FORMAT, "cross-reference")
            # One kept for this baseline is checked; one of an earlier baseline (taken again by a later run) is replaced.
            if recorded.get("baseline_checksum") == baseline["checksum"]:
                check_cross_reference(recorded, computed, path)
                return recorded
        return computed

    @property
    def cross_reference_path(self) -> str:
        given = self.params["cross_reference_path"]
        return str(given) if given else default_cross_reference_path(self.params["baseline_path"])

    def run(self) -> dict[str, Any]:
        p = self.params
        baseline = load_baseline(p["baseline_path"])
        anchors = self.anchors(baseline)
        if not p["allow_other_store"]:
            check_same_store(baseline, self.store, p["baseline_path"])
        scan = scan_store(self.store, workers=p["workers"])
        report = verify_scan(baseline, scan, self.store)
        previous = _previous_report(p["report_json"])
        if previous is not None and _findings(previous) == _findings(report):
            report["verified"] = previous["verified"]  # same findings: keep the report and its time
        outputs = [(path, text) for path, text in (
            (p["report_json"], json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n"),
            (p["report_html"], render_html(report) if p["report_html"] else ""),
        ) if path]
        crossed = self.cross_reference(baseline, report)
        if crossed is not None:
            outputs.append((self.cross_reference_path, json.dumps(crossed, indent=2, sort_keys=True) + "\n"))
        changed = [path for path, text in outputs if _read_text(path) != text]
        if not self.module.check_mode:
            for path, text in outputs:
                if path in changed:
                    write_text(path, text)
        result: dict[str, Any] = {
            "changed": bool(changed),
            "continuity": report["status"] == "passed",
            "status": report["status"],
            "roots_match": report["roots_match"],
            "counts": report["counts"],
            "lost": [f["key"] for f in report["lost"]],
            "modified": [f["key"] for f in report["modified"]],
            "added": [f["key"] for f in report["added"]],
            "unreadable": report["unreadable"],
            "roots": report["roots"],
            "anchors": anchors,
            "report_json": p["report_json"],
            "report_html": p["report_html"],
            "cross_reference": crossed,
        }
        message = failure_message(report)
        if message and (p["fail_on_loss"] or not report["complete"]):
            self.module.fail_json(msg=message, **result)
        return result


def _read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, ValueError):
        return None


def _previous_report(path: Optional[str]) -> Optional[dict[str, Any]]:
    """The existing JSON report at ``path``, or None when there is none or it cannot be read."""
    text = _read_text(path) if path else None
    try:
        data = json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("verified"), str) else None


def _findings(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "verified"}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **STORE_ARGUMENT_SPEC,
            "baseline_path": {"type": "path", "required": True},
            "report_json": {"type": "path"},
            "report_html": {"type": "path"},
            "roots_path": {"type": "path"},
            "expected_root": {"type": "str"},
            "expected_count": {"type": "int"},
            "allow_other_store": {"type": "bool", "default": False},
            "fail_on_loss": {"type": "bool", "default": True},
            "schema_version": {"type": "int", "choices": [1, 2]},
            "cross_reference_path": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**VerifyManager(module).run())
    except StellaOpsError as err:
        module.fail_json(msg=str(err))


if __name__ == "__main__":
    main()
