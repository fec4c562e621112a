# SPDX-License-Identifier: GPL-3.0-or-later
"""An upgrade across an evidence schema change, as evidence_baseline and evidence_verify run it on the gate host over a
directory store: the baseline in schema 1, continuity proven in it, the new roots (schema 2) accepted only through the
cross-reference the first verification writes; an edited cross-reference is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import checksum_of, cross_reference, load_baseline, summarize
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.merkle import leaf_data
from module_runner import failed_with, run_module


def store_and_baseline(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    for tenant in ("acme", "globex"):
        for i in range(3):
            bundle = tmp_path / "store" / tenant / "sbom" / f"bundle-{i}.json"
            bundle.parent.mkdir(parents=True, exist_ok=True)
            bundle.write_text(json.dumps({"tenant": tenant, "i": i}) + " " * i)
    baseline = tmp_path / "baseline.json"
    taken = run_module("evidence_baseline", {"store": {"type": "directory", "path": str(tmp_path / "store")}, "path": str(baseline)}, tmp_path)
    assert not taken.get("failed"), taken
    return {"type": "directory", "path": str(tmp_path / "store")}, baseline


def test_schema_2_leaves_hold_the_size_so_the_roots_differ_over_the_same_bundles() -> None:
    assert leaf_data("a/b.json", "AB" * 32, 2, 17) == b"a/b.json\x00" + b"ab" * 32 + b"\x0017"
    entries = [("acme/sbom/a.json", 10, "ab" * 32), ("globex/sbom/b.json", 20, "cd" * 32)]
    one, two = summarize(entries, 2), summarize(entries, 2, schema=2)
    assert (one["total"]["count"], one["total"]["bytes"]) == (two["total"]["count"], two["total"]["bytes"])
    assert one["total"]["root"] != two["total"]["root"]


def test_the_first_verification_writes_the_cross_reference_and_the_next_accepts_the_new_roots_only_through_it(tmp_path: Path) -> None:
    store, baseline = store_and_baseline(tmp_path)
    crossref = tmp_path / "cross-reference.json"
    asked = {"store": store, "baseline_path": str(baseline), "schema_version": 2, "cross_reference_path": str(crossref)}

    checked = run_module("evidence_verify", asked, tmp_path, check_mode=True)
    assert checked["continuity"] and checked["changed"] and not crossref.exists(), checked
    first = run_module("evidence_verify", asked, tmp_path)
    assert first["continuity"] and first["changed"], first
    written = json.loads(crossref.read_text())
    assert written == first["cross_reference"] == cross_reference(load_baseline(str(baseline)), 2)
    assert (written["from_schema"], written["to_schema"], written["total"]["count"]) == (1, 2, 6)
    assert written["total"]["old_root"] == json.loads(baseline.read_text())["total"]["root"] != written["total"]["new_root"]
    assert set(written["partitions"]) == {"acme/sbom", "globex/sbom"}
    again = run_module("evidence_verify", asked, tmp_path)
    assert again["continuity"] and not again["changed"], again

    # The new root of one partition edited, its checksum recomputed: what an editor of the file can do.
    forged = dict(written, partitions={**written["partitions"], "acme/sbom": {**written["partitions"]["acme/sbom"], "new_root": "0" * 64}})
    forged.pop("checksum")
    crossref.write_text(json.dumps({**forged, "checksum": checksum_of(forged)}))
    failed_with(
        run_module("evidence_verify", asked, tmp_path),
        f"The cross-reference {crossref} does not match the bundles: for partition acme/sbom it maps root",
        f"to {'0' * 64}, but the bundles give root",
        "so the new roots are not accepted",
    )
    crossref.write_text(json.dumps({**forged, "checksum": "sha256:" + "1" * 64}))
    failed_with(run_module("evidence_verify", asked, tmp_path), f"The cross-reference {crossref} fails its checksum")

    # Kept beside the baseline by default; the cross-reference of an earlier baseline is replaced by this one's.
    beside = tmp_path / "baseline.cross-reference.json"
    earlier = {**forged, "baseline_checksum": "sha256:" + "2" * 64}
    beside.write_text(json.dumps({**earlier, "checksum": checksum_of(earlier)}))
    replaced = run_module("evidence_verify", {**asked, "cross_reference_path": None}, tmp_path)
    assert replaced["continuity"] and replaced["changed"] and json.loads(beside.read_text()) == written, replaced


def test_a_bundle_changed_during_the_schema_change_fails_continuity_and_writes_no_cross_reference(tmp_path: Path) -> None:
    store, baseline = store_and_baseline(tmp_path)
    (Path(store["path"]) / "globex" / "sbom" / "bundle-1.json").write_text("rewritten by the migration")
    crossref = tmp_path / "cross-reference.json"
    asked = {"store": store, "baseline_path": str(baseline), "schema_version": 2, "cross_reference_path": str(crossref)}
    result = run_module("evidence_verify", asked, tmp_path)
    failed_with(result, "Evidence continuity failed: 1 modified (globex/sbom/bundle-1.json)")
    assert not crossref.exists()


def test_a_baseline_taken_in_schema_2_says_so_and_verifies_in_it(tmp_path: Path) -> None:
    store = store_and_baseline(tmp_path)[0]
    baseline = tmp_path / "baseline-2.json"
    taken = run_module("evidence_baseline", {"store": store, "path": str(baseline), "schema_version": 2}, tmp_path)
    assert not taken.get("failed"), taken
    document = json.loads(baseline.read_text())
    assert document["evidence_schema"] == 2 and "decimal size" in document["algorithm"]["leaf"]
    verified = run_module("evidence_verify", {"store": store, "baseline_path": str(baseline)}, tmp_path)
    assert verified["continuity"] and verified["roots_match"] and verified["cross_reference"] is None, verified
