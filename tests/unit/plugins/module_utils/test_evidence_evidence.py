# SPDX-License-Identifier: GPL-3.0-or-later
"""Baseline, partitions, incremental cache, verification and reports over a local directory store."""

from __future__ import annotations

import hashlib
import json
import os
from html.parser import HTMLParser
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_json
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.s3 import S3Location
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import (
    TOOL_VERSION,
    HashCache,
    build_baseline,
    check_anchor,
    check_same_store,
    checksum_of,
    failure_message,
    inclusion_proof,
    load_baseline,
    load_checked,
    load_roots,
    roots_export,
    scan_store,
    verify_scan,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.merkle import EMPTY_ROOT, evidence_root, proof_from_dict
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.report import render_html
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.store import (
    DirectoryStore,
    S3Store,
    hash_bundles,
    partition_of,
    store_from_options,
)
from hostile import fifo, finishes, one_sentence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[4]


def _make_store(root: Path, tenants: tuple[str, ...] = ("acme", "globex"), kinds: tuple[str, ...] = ("sbom", "attestation"), n: int = 3) -> None:
    for tenant in tenants:
        for kind in kinds:
            for i in range(n):
                path = root / tenant / kind / f"bundle-{i}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps({"tenant": tenant, "kind": kind, "i": i}))


@pytest.mark.parametrize(
    ("key", "depth", "expected"),
    [
        ("acme/sbom/b.json", 2, "acme/sbom"),
        ("acme/sbom/b.json", 1, "acme"),
        ("acme/sbom/b.json", 0, "."),
        ("acme/sbom/b.json", 5, "acme/sbom"),
        ("top.json", 2, "."),
        ("evidence/acme/sbom/2025/b.json", 3, "evidence/acme/sbom"),
    ],
)
def test_partition_of(key: str, depth: int, expected: str) -> None:
    assert partition_of(key, depth) == expected


def test_tool_version_matches_galaxy() -> None:
    galaxy = (ROOT / "galaxy.yml").read_text()
    assert f"version: {TOOL_VERSION}\n" in galaxy


def test_baseline_counts_roots_and_checksum(tmp_path: Path) -> None:
    _make_store(tmp_path / "s")
    store = DirectoryStore(str(tmp_path / "s"))
    scan = scan_store(store, workers=4)
    baseline = build_baseline(store, scan, 2)
    assert baseline["total"]["count"] == 12
    assert set(baseline["partitions"]) == {"acme/sbom", "acme/attestation", "globex/sbom", "globex/attestation"}
    assert all(p["count"] == 3 for p in baseline["partitions"].values())
    files = sorted(p for p in (tmp_path / "s").rglob("*.json"))
    assert baseline["total"]["bytes"] == sum(p.stat().st_size for p in files)
    expected = [(p.relative_to(tmp_path / "s").as_posix(), hashlib.sha256(p.read_bytes()).hexdigest()) for p in files]
    assert baseline["total"]["root"] == evidence_root(expected)
    sbom = [e for e in expected if e[0].startswith("acme/sbom/")]
    assert baseline["partitions"]["acme/sbom"]["root"] == evidence_root(sbom)
    write_json(str(tmp_path / "b.json"), baseline, indent=None)
    assert load_baseline(str(tmp_path / "b.json"))["checksum"] == baseline["checksum"]
    roots = roots_export(baseline)
    assert "bundles" not in roots and roots["total"]["root"] == baseline["total"]["root"]


def test_tampered_baseline_is_refused(tmp_path: Path) -> None:
    _make_store(tmp_path / "s")
    store = DirectoryStore(str(tmp_path / "s"))
    baseline = build_baseline(store, scan_store(store), 2)
    baseline["bundles"][0][2] = "0" * 64  # an edit after writing
    (tmp_path / "b.json").write_text(json.dumps(baseline))
    with pytest.raises(StellaOpsError, match=r"b\.json fails its checksum"):
        load_baseline(str(tmp_path / "b.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(StellaOpsError, match="is not valid JSON"):
        load_baseline(str(tmp_path / "bad.json"))
    with pytest.raises(StellaOpsError, match="expected 'stellaops-evidence-roots/1'"):
        write_json(str(tmp_path / "ok.json"), build_baseline(store, scan_store(store), 2), indent=None)
        load_checked(str(tmp_path / "ok.json"), "stellaops-evidence-roots/1", "roots export")


def test_baseline_of_another_store_is_refused(tmp_path: Path) -> None:
    _make_store(tmp_path / "a")
    _make_store(tmp_path / "b")
    a, b = DirectoryStore(str(tmp_path / "a")), DirectoryStore(str(tmp_path / "b"))
    baseline = build_baseline(a, scan_store(a), 2)
    check_same_store(baseline, a, "x.json")
    with pytest.raises(StellaOpsError, match=f"taken of directory {tmp_path / 'a'}, not of directory {tmp_path / 'b'}"):
        check_same_store(baseline, b, "x.json")


def test_incremental_cache_rehashes_only_changed(tmp_path: Path) -> None:
    _make_store(tmp_path / "s", n=25)
    store = DirectoryStore(str(tmp_path / "s"))
    first = scan_store(store, cache=HashCache.load(None, store.identity()))
    assert (first.hashed, first.cached) == (100, 0)
    cache = HashCache(store.identity())
    write_json(str(tmp_path / "c.json"), cache.document(first.results), indent=None)
    changed = tmp_path / "s" / "acme" / "sbom" / "bundle-3.json"
    changed.write_text("changed content of another length")
    second = scan_store(store, cache=HashCache.load(str(tmp_path / "c.json"), store.identity()))
    assert (second.hashed, second.cached) == (1, 99)
    full = scan_store(store)
    assert [(r.key, r.sha256) for r in second.results] == [(r.key, r.sha256) for r in full.results]
    # A cache of another store is ignored, never trusted.
    other = scan_store(store, cache=HashCache.load(str(tmp_path / "c.json"), {"type": "directory", "path": "/elsewhere"}))
    assert other.cached == 0


def test_same_size_rewrite_is_detected_by_identity(tmp_path: Path) -> None:
    _make_store(tmp_path / "s", n=2)
    store = DirectoryStore(str(tmp_path / "s"))
    first = scan_store(store)
    cache = HashCache(store.identity())
    cache_path = tmp_path / "c.json"
    write_json(str(cache_path), cache.document(first.results), indent=None)
    target = tmp_path / "s" / "globex" / "sbom" / "bundle-1.json"
    content = target.read_bytes()
    replacement = tmp_path / "tmp.json"
    replacement.write_bytes(content.replace(b"globex", b"GLOBEX"))
    os.replace(replacement, target)  # same size, new inode
    second = scan_store(store, cache=HashCache.load(str(cache_path), store.identity()))
    assert second.hashed == 1
    assert next(r.sha256 for r in second.results if r.key == "globex/sbom/bundle-1.json") == hashlib.sha256(target.read_bytes()).hexdigest()


class _Collect(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_verify_findings_and_reports(tmp_path: Path) -> None:
    _make_store(tmp_path / "s")
    store = DirectoryStore(str(tmp_path / "s"))
    baseline = build_baseline(store, scan_store(store), 2)
    (tmp_path / "s" / "acme" / "sbom" / "bundle-0.json").unlink()
    (tmp_path / "s" / "globex" / "attestation" / "bundle-2.json").write_text("altered")
    evil = tmp_path / "s" / "acme" / "sbom" / "<script>alert(1)&amp;.json"
    evil.write_text("new")
    report = verify_scan(baseline, scan_store(store), store)
    assert [f["key"] for f in report["lost"]] == ["acme/sbom/bundle-0.json"]
    assert [f["key"] for f in report["modified"]] == ["globex/attestation/bundle-2.json"]
    assert [f["key"] for f in report["added"]] == ["acme/sbom/<script>alert(1)&amp;.json"]
    assert report["status"] == "failed" and report["roots_match"] is False
    assert report["roots"]["partitions"]["acme/attestation"]["match"] is True
    assert report["roots"]["partitions"]["acme/sbom"]["match"] is False
    message = failure_message(report)
    assert "1 lost (acme/sbom/bundle-0.json)" in message and "1 modified (globex/attestation/bundle-2.json)" in message
    page = render_html(report)
    assert "<script>" not in page
    parser = _Collect()
    parser.feed(page)
    text = "".join(parser.text)
    assert "script" not in parser.tags
    for needle in ("FAILED", "acme/sbom/bundle-0.json", "globex/attestation/bundle-2.json", "<script>alert(1)&amp;.json",
                   baseline["total"]["root"]):
        assert needle in text


def test_verify_clean_store_passes_and_roots_match(tmp_path: Path) -> None:
    _make_store(tmp_path / "s")
    store = DirectoryStore(str(tmp_path / "s"))
    baseline = build_baseline(store, scan_store(store), 1)
    (tmp_path / "s" / "initech" / "sbom").mkdir(parents=True)
    (tmp_path / "s" / "initech" / "sbom" / "new.json").write_text("{}")
    report = verify_scan(baseline, scan_store(store), store)
    assert report["status"] == "passed" and report["roots_match"] is True
    assert report["counts"] == {"baseline": 12, "current": 13, "lost": 0, "modified": 0, "added": 1, "unreadable": 0}
    assert failure_message(report) == ""
    assert "PASSED" in render_html(report)


def test_unreadable_bundle_makes_results_incomplete(tmp_path: Path) -> None:
    _make_store(tmp_path / "s")
    store = DirectoryStore(str(tmp_path / "s"))
    baseline = build_baseline(store, scan_store(store), 2)
    os.symlink(tmp_path / "missing-target", tmp_path / "s" / "acme" / "sbom" / "dangling.json")
    target = tmp_path / "s" / "acme" / "sbom" / "bundle-1.json"
    target.unlink()
    os.symlink(tmp_path / "gone", target)
    scan = scan_store(store)
    assert [r.key for r in scan.unreadable] == ["acme/sbom/bundle-1.json", "acme/sbom/dangling.json"]
    with pytest.raises(StellaOpsError, match="2 bundle\\(s\\) of directory .* could not be read"):
        build_baseline(store, scan, 2)
    report = verify_scan(baseline, scan, store)
    assert report["status"] == "incomplete" and report["complete"] is False and report["roots_match"] is False
    assert report["lost"] == []  # unreadable is not reported as lost
    assert "could not be verified" in failure_message(report)
    assert "INCOMPLETE" in render_html(report)


def test_inclusion_proof_from_baseline(tmp_path: Path) -> None:
    _make_store(tmp_path / "s")
    store = DirectoryStore(str(tmp_path / "s"))
    baseline = build_baseline(store, scan_store(store), 2)
    total = inclusion_proof(baseline, "globex/sbom/bundle-1.json")
    assert total["root"] == baseline["total"]["root"] and total["tree_size"] == 12
    part = inclusion_proof(baseline, "globex/sbom/bundle-1.json", partition=True)
    assert part["root"] == baseline["partitions"]["globex/sbom"]["root"] and part["tree_size"] == 3
    assert proof_from_dict(total).verify() and proof_from_dict(part).verify()
    with pytest.raises(StellaOpsError, match="not in the baseline"):
        inclusion_proof(baseline, "nope.json")


def test_hash_bundles_keeps_order_with_many_workers(tmp_path: Path) -> None:
    _make_store(tmp_path / "s", n=30)
    store = DirectoryStore(str(tmp_path / "s"))
    bundles = list(store.list())
    serial = [r.sha256 for r in hash_bundles(store, bundles, workers=1)]
    parallel = [r.sha256 for r in hash_bundles(store, bundles, workers=8)]
    assert serial == parallel and len(serial) == 120


def test_store_options() -> None:
    s3 = store_from_options({"type": "s3", "bucket": "b", "prefix": "evidence", "secret_key": "zzz"})
    assert isinstance(s3, S3Store) and s3.identity()["prefix"] == "evidence/"
    assert "zzz" not in repr(s3.location)
    with pytest.raises(StellaOpsError, match="store.bucket is required"):
        store_from_options({"type": "s3"})
    with pytest.raises(StellaOpsError, match="store.path is required"):
        store_from_options({"type": "directory"})
    with pytest.raises(StellaOpsError, match="does not exist or is not a directory"):
        scan_store(DirectoryStore("/nonexistent/evidence"))
    assert S3Store(S3Location("b", prefix="")).identity()["prefix"] == ""


# --- a baseline is trusted only as far as its roots recompute and match roots kept elsewhere -----------


def _rewrite(path: Path, document: dict) -> None:
    """Write ``document`` with a freshly recomputed checksum: what anyone who can edit the file can do."""
    document["checksum"] = checksum_of(document)
    path.write_text(json.dumps(document))


def _baseline_files(tmp_path: Path) -> tuple[DirectoryStore, Path, dict]:
    root = tmp_path / "store"
    _make_store(root)
    store = DirectoryStore(str(root))
    baseline = build_baseline(store, scan_store(store), 2)
    path = tmp_path / "baseline.json"
    write_json(str(path), baseline, indent=None)
    write_json(str(tmp_path / "baseline.roots.json"), roots_export(baseline), indent=None)
    return store, path, baseline


def test_emptied_bundle_list_with_recomputed_checksum_is_refused(tmp_path: Path) -> None:
    store, path, baseline = _baseline_files(tmp_path)
    for bundle in sorted((tmp_path / "store").rglob("*.json")):
        bundle.unlink()
    forged = dict(baseline, bundles=[])
    _rewrite(path, forged)
    with pytest.raises(StellaOpsError, match="inconsistent: its 0 listed bundles hash to root .* records root .* of 12 bundles"):
        load_baseline(str(path))
    # verification alone (without the load check) no longer claims continuity either
    report = verify_scan(forged, scan_store(store), store)
    assert report["roots_match"] is False and report["status"] == "failed"
    assert "do not recompute" in failure_message(report)


def test_consistent_forgery_is_caught_by_the_roots_export_and_the_run_record(tmp_path: Path) -> None:
    store, path, baseline = _baseline_files(tmp_path)
    gone = sorted((tmp_path / "store").rglob("*.json"))[:3]
    for bundle in gone:
        bundle.unlink()
    forged = build_baseline(store, scan_store(store), 2, created=baseline["created"])  # every root recomputed: self-consistent
    _rewrite(path, forged)
    loaded = load_baseline(str(path))  # checksum and roots agree with its own bundle list
    assert verify_scan(loaded, scan_store(store), store)["status"] == "passed"
    roots = load_roots(str(tmp_path / "baseline.roots.json"))
    with pytest.raises(StellaOpsError, match=r"does not match the roots export .*: it records root .* 9 bundles instead of 12"):
        check_anchor(loaded, str(path), roots, "the roots export baseline.roots.json")
    with pytest.raises(StellaOpsError, match="does not match the run's record"):
        check_anchor(loaded, str(path), {"total": {"root": baseline["total"]["root"]}}, "the run's record")
    check_anchor(baseline, str(path), roots, "the roots export")  # the genuine baseline matches its export
    check_anchor(baseline, str(path), {"total": {"root": baseline["total"]["root"], "count": 12}}, "the run's record")


def test_duplicate_keys_are_an_error(tmp_path: Path) -> None:
    _store, path, baseline = _baseline_files(tmp_path)
    text = path.read_text()
    path.write_text(text[:-2] + ', "partition_depth": 0}\n' if text.endswith("}\n") else text[:-1] + ', "partition_depth": 0}')
    with pytest.raises(StellaOpsError, match="has the key 'partition_depth' twice"):
        load_baseline(str(path))
    doubled = dict(baseline, bundles=[baseline["bundles"][0], *baseline["bundles"]])
    _rewrite(path, doubled)
    with pytest.raises(StellaOpsError, match=f"lists the bundle {baseline['bundles'][0][0]!r} twice"):
        load_baseline(str(path))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bundles", [["a/b/c.json", "12", "0" * 64]]),
        ("bundles", [["a/b/c.json", 12]]),
        ("bundles", [[None, 12, "0" * 64]]),
        ("bundles", [["a/b/c.json", 12, "XYZ"]]),
        ("bundles", {"a": 1}),
        ("bundles", [["a/b/c.json", True, "0" * 64]]),
        ("partition_depth", "two"),
        ("partition_depth", -1),
        ("total", {"count": 1}),
        ("total", []),
        ("partitions", [1, 2]),
        ("partitions", {"acme/sbom": "root"}),
        ("store", "directory"),
        ("created", 5),
    ],
)
def test_malformed_baseline_with_valid_checksum_is_one_sentence(tmp_path: Path, field: str, value: object) -> None:
    _store, path, baseline = _baseline_files(tmp_path)
    _rewrite(path, dict(baseline, **{field: value}))
    with pytest.raises(StellaOpsError, match=str(path)):
        load_baseline(str(path))


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=4) | st.just("0" * 64),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(["bundles", "partition_depth", "total", "partitions", "store", "created"]), value=_JSON)
def test_any_field_value_loads_or_fails_with_a_sentence(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "fuzzed.json"
    document = {"format": "stellaops-evidence-baseline/1", "tool": {}, "created": "t", "store": {"type": "directory", "path": "/x"},
                "partition_depth": 0, "total": {"count": 0, "bytes": 0, "root": EMPTY_ROOT}, "partitions": {}, "bundles": []}
    document[field] = value
    _rewrite(path, document)
    try:
        loaded = load_baseline(str(path))
    except StellaOpsError as err:
        assert str(path) in str(err)
    else:  # whatever loads is internally consistent
        assert loaded["total"]["root"] == evidence_root((k, d) for k, _s, d in loaded["bundles"])


def test_roots_export_fields_are_checked(tmp_path: Path) -> None:
    _store, _path, _baseline = _baseline_files(tmp_path)
    roots_path = tmp_path / "baseline.roots.json"
    roots = json.loads(roots_path.read_text())
    _rewrite(roots_path, dict(roots, partitions=["not", "a", "mapping"]))
    with pytest.raises(StellaOpsError, match="roots export .* field partitions is malformed"):
        load_roots(str(roots_path))
    _rewrite(roots_path, dict(roots, total={"count": "12", "root": roots["total"]["root"]}))
    with pytest.raises(StellaOpsError, match="field total is malformed"):
        load_roots(str(roots_path))


@pytest.mark.parametrize(
    "content",
    ['{"format": "stellaops-evidence-cache/1", "store": [1], "entries": {}}',
     '{"format": "stellaops-evidence-cache/1", "store": {"type": "directory", "path": "STORE"}, "entries": {"a": ["x", "y", "z"]}}',
     '{"format": "stellaops-evidence-cache/1", "store": {"type": "directory", "path": "STORE"}, "entries": [1, 2]}',
     "[" * 100000],
)
def test_a_damaged_cache_is_only_ignored(tmp_path: Path, content: str) -> None:
    _make_store(tmp_path / "s", n=1)
    store = DirectoryStore(str(tmp_path / "s"))
    (tmp_path / "cache.json").write_text(content.replace("STORE", str(tmp_path / "s")))
    cache = HashCache.load(str(tmp_path / "cache.json"), store.identity())
    assert cache.entries == {}
    assert scan_store(store, cache=cache).hashed == 4


def test_a_fifo_as_a_baseline_is_refused_and_as_a_hash_cache_ignored_at_once(tmp_path: Path) -> None:
    baseline = fifo(tmp_path / "baseline.json")
    one_sentence(finishes(lambda: load_baseline(str(baseline)), baseline), str(baseline), "is a FIFO; expected a regular file")
    cache = fifo(tmp_path / "cache.json")
    store = {"type": "directory", "path": str(tmp_path)}
    assert finishes(lambda: HashCache.load(str(cache), store).entries, cache) == {}
