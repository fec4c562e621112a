# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence baseline and continuity verification over an evidence store.

A *baseline* records, for one store, every bundle (key, size, sha256), counts,
bytes and an RFC 6962 Merkle root per partition and for the whole store, the
tool version and the time, and a checksum over all of that. The *roots export*
holds only the roots. *Verification* hashes the store again and reports bundles
lost, modified and added, and whether the baseline roots recompute from what
is still there. File formats are described in docs/evidence.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional

from ..core.errors import StellaOpsError
from ..core.safe_load import read_json as safe_read_json
from .merkle import EVIDENCE_SCHEMAS, leaf_data, leaf_hash, prove, root_from_leaf_hashes
from .store import DEFAULT_WORKERS, Bundle, EvidenceStore, HashResult, hash_bundles, partition_of

TOOL_NAME = "stellaops.deploy"
TOOL_VERSION = "0.1.0"
BASELINE_FORMAT = "stellaops-evidence-baseline/1"
ROOTS_FORMAT = "stellaops-evidence-roots/1"
CACHE_FORMAT = "stellaops-evidence-cache/1"
REPORT_FORMAT = "stellaops-evidence-continuity/1"
CROSS_REFERENCE_FORMAT = "stellaops-evidence-cross-reference/1"
ALGORITHM = {
    "tree": "RFC 6962 Merkle tree hash, SHA-256",
    "leaf": "utf8(key) || 0x00 || ascii(lower-case sha256 hex)",
    "order": "keys sorted by Unicode code point (= UTF-8 byte order)",
}
# The algorithm of each evidence schema (a release manifest's evidence.schema_version): schema 2 puts each bundle's
# size in its leaf, so its roots differ from schema 1's over the same bundles.
ALGORITHMS = {1: ALGORITHM, 2: {**ALGORITHM, "leaf": "utf8(key) || 0x00 || ascii(lower-case sha256 hex) || 0x00 || ascii(decimal size)"}}
MAX_LISTED = 20
_HEX64 = re.compile(r"[0-9a-f]{64}")


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: UP017 - targets may run Python < 3.11


def canonical_json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def checksum_of(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``document`` without its ``checksum`` field."""
    body = {k: v for k, v in document.items() if k != "checksum"}
    return "sha256:" + hashlib.sha256(canonical_json(body)).hexdigest()


def read_json(path: str, what: str) -> Any:
    """The JSON document at ``path``; a key given twice in one object is an error, not a silent overwrite."""

    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        document: dict[str, Any] = {}
        for key, value in pairs:
            if key in document:
                raise StellaOpsError(f"The {what} {path} has the key {key!r} twice in one object; expected each key once.")
            document[key] = value
        return document

    # a regular file only (a FIFO or device would block), bounded in size and depth
    return safe_read_json(path, what, object_pairs_hook=unique_keys)


def _listed(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED])
    return shown + (f" and {len(keys) - MAX_LISTED} more" if len(keys) > MAX_LISTED else "")


def summarize(entries: Iterable[tuple[str, int, str]], depth: int, schema: int = 1) -> dict[str, Any]:
    """Counts, bytes and roots per partition and in total of ``(key, size, sha256)`` entries, in evidence ``schema``.

    Each leaf is hashed once; a partition's leaves keep the global key order, which is their key order.
    """
    ordered = sorted(entries)
    partition_cache: dict[str, str] = {}
    groups: dict[str, list[bytes]] = {}
    sizes: dict[str, int] = {}
    leaves: list[bytes] = []
    total_bytes = 0
    for key, size, digest in ordered:
        directory = key.rpartition("/")[0]
        name = partition_cache.get(directory)
        if name is None:
            name = partition_cache[directory] = partition_of(key, depth)
        leaf = leaf_hash(leaf_data(key, digest, schema, size))
        leaves.append(leaf)
        groups.setdefault(name, []).append(leaf)
        sizes[name] = sizes.get(name, 0) + size
        total_bytes += size
    partitions = {
        name: {"count": len(groups[name]), "bytes": sizes[name], "root": root_from_leaf_hashes(groups[name]).hex()}
        for name in sorted(groups)
    }
    total = {"count": len(leaves), "bytes": total_bytes, "root": root_from_leaf_hashes(leaves).hex()}
    return {"total": total, "partitions": partitions}


def same_store(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    keys = ("type", "path") if a.get("type") == "directory" else ("type", "endpoint", "bucket", "prefix")
    return all((a.get(k) or "") == (b.get(k) or "") for k in keys)


def describe_identity(identity: Mapping[str, Any]) -> str:
    if identity.get("type") == "directory":
        return f"directory {identity.get('path')}"
    where = f"s3://{identity.get('bucket')}/{identity.get('prefix') or ''}"
    return f"{where} at {identity.get('endpoint')}" if identity.get("endpoint") else where


# --- incremental cache -------------------------------------------------------------------------


@dataclass
class HashCache:
    """sha256 of bundles by key and object identity (etag and size, or size, mtime and inode)."""

    store: dict[str, str]
    entries: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Optional[str], store: dict[str, str]) -> HashCache:
        """The cache at ``path`` when it belongs to ``store``; an empty cache otherwise (a cache is only a speed-up)."""
        cache = cls(store)
        if not path or not os.path.exists(path):
            return cache
        try:
            data = read_json(path, "hash cache")
        except StellaOpsError:
            return cache
        if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("store"), dict) \
                or not same_store(data["store"], store):
            return cache
        entries = data.get("entries")
        for key, value in entries.items() if isinstance(entries, dict) else ():
            if isinstance(value, list) and len(value) == 3 and isinstance(value[2], int):
                cache.entries[key] = (str(value[0]), str(value[1]), value[2])
        return cache

    def lookup(self, bundle: Bundle) -> Optional[HashResult]:
        hit = self.entries.get(bundle.key)
        if hit and bundle.identity and hit[0] == bundle.identity and hit[2] == bundle.size:
            return HashResult(bundle.key, bundle.size, bundle.identity, hit[1])
        return None

    def document(self, results: Iterable[HashResult]) -> dict[str, Any]:
        return {
            "format": CACHE_FORMAT,
            "store": self.store,
            "entries": {r.key: [r.identity, r.sha256, r.size] for r in results if r.identity and r.sha256},
        }


# --- scanning ------------------------------------------------------------------------------------


@dataclass
class Scan:
    """Every bundle of a store, hashed (sorted by key), and the bundles that could not be read."""

    results: list[HashResult]
    unreadable: list[HashResult]
    hashed: int
    cached: int


def scan_store(store: EvidenceStore, workers: int = DEFAULT_WORKERS, cache: Optional[HashCache] = None) -> Scan:
    """List and hash every bundle; bundles whose identity is in ``cache`` are not read again."""
    store.check()
    results: list[HashResult] = []
    to_hash: list[Bundle] = []
    for bundle in store.list():
        hit = cache.lookup(bundle) if cache else None
        if hit is not None:
            results.append(hit)
        else:
            to_hash.append(bundle)
    cached = len(results)
    unreadable: list[HashResult] = []
    for result in hash_bundles(store, to_hash, workers):
        (unreadable if result.error else results).append(result)
    results.sort(key=lambda r: r.key)
    unreadable.sort(key=lambda r: r.key)
    return Scan(results, unreadable, len(to_hash), cached)


def unreadable_error(scan: Scan, store: EvidenceStore) -> StellaOpsError:
    first = scan.unreadable[0]
    return StellaOpsError(
        f"{len(scan.unreadable)} bundle(s) of {store.describe()} could not be read, so no complete result exists: "
        f"{_listed([r.key for r in scan.unreadable])} (first error: {first.error}).",
        unreadable=[{"key": r.key, "error": r.error} for r in scan.unreadable],
    )


# --- baseline ------------------------------------------------------------------------------------


def build_baseline(store: EvidenceStore, scan: Scan, depth: int, created: Optional[str] = None, schema: int = 1) -> dict[str, Any]:
    """The baseline document of a complete scan (raise when some bundle could not be read)."""
    if scan.unreadable:
        raise unreadable_error(scan, store)
    summary = summarize(((r.key, r.size, r.sha256) for r in scan.results), depth, schema)
    document: dict[str, Any] = {
        "format": BASELINE_FORMAT,
        "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
        "created": created or utc_now(),
        "store": store.identity(),
        "partition_depth": depth,
        # written only for a schema other than 1: a baseline of schema 1 is the same document as before schemas
        **({"evidence_schema": schema} if schema != 1 else {}),
        "algorithm": ALGORITHMS[schema],
        "total": summary["total"],
        "partitions": summary["partitions"],
        "bundles": [[r.key, r.size, r.sha256] for r in scan.results],
    }
    document["checksum"] = checksum_of(document)
    return document


def roots_export(baseline: Mapping[str, Any]) -> dict[str, Any]:
    """Only the roots (with counts, which fix the tree size) of a baseline."""
    document: dict[str, Any] = {
        "format": ROOTS_FORMAT,
        "tool": baseline["tool"],
        "created": baseline["created"],
        "store": baseline["store"],
        "partition_depth": baseline["partition_depth"],
        "algorithm": baseline["algorithm"],
        "baseline_checksum": baseline["checksum"],
        "total": {"count": baseline["total"]["count"], "root": baseline["total"]["root"]},
        "partitions": {name: {"count": p["count"], "root": p["root"]} for name, p in baseline["partitions"].items()},
    }
    document["checksum"] = checksum_of(document)
    return document


def content_of(document: Optional[Mapping[str, Any]]) -> Any:
    """What a baseline or roots export says about the store, without the time, tool and checksums."""
    if not document:
        return None
    ignored = {"created", "checksum", "tool", "baseline_checksum"}
    return {k: v for k, v in document.items() if k not in ignored}


def load_checked(path: str, fmt: str, what: str) -> dict[str, Any]:
    """Read a baseline or roots export and check its format and its own checksum."""
    data = read_json(path, what)
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise StellaOpsError(f"The {what} {path} has format {data.get('format') if isinstance(data, dict) else None!r}; expected {fmt!r}.")
    if data.get("checksum") != checksum_of(data):
        raise StellaOpsError(
            f"The {what} {path} fails its checksum: it was edited or damaged after it was written; use an untouched copy."
        )
    return data


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_summary(node: Any, path: str, where: str) -> None:
    if not isinstance(node, dict) or not _is_count(node.get("count")) or not _is_count(node.get("bytes")) \
            or not isinstance(node.get("root"), str) or not _HEX64.fullmatch(node["root"]):
        raise StellaOpsError(f"The baseline file {path} field {where} is malformed; expected count, bytes and a 64-hex root.")


def schema_of(baseline: Mapping[str, Any]) -> int:
    """The evidence schema a baseline's roots are computed in (1 when it does not say)."""
    return int(baseline.get("evidence_schema", 1))


def _check_baseline_fields(data: dict[str, Any], path: str) -> None:
    """Every field the verification reads has the type it expects; bundle keys are unique."""
    if data.get("evidence_schema", 1) not in EVIDENCE_SCHEMAS or isinstance(data.get("evidence_schema"), bool):
        raise StellaOpsError(
            f"The baseline file {path} field evidence_schema is {data.get('evidence_schema')!r}; expected one of {', '.join(map(str, EVIDENCE_SCHEMAS))}."
        )
    if not _is_count(data.get("partition_depth")):
        raise StellaOpsError(f"The baseline file {path} field partition_depth is {data.get('partition_depth')!r}; expected a whole number of 0 or more.")
    if not isinstance(data.get("store"), dict) or data["store"].get("type") not in ("directory", "s3"):
        raise StellaOpsError(f"The baseline file {path} field store is malformed; expected a mapping with type directory or s3.")
    if not isinstance(data.get("created"), str):
        raise StellaOpsError(f"The baseline file {path} field created is malformed; expected a UTC time string.")
    bundles = data.get("bundles")
    if not isinstance(bundles, list):
        raise StellaOpsError(f"The baseline file {path} field bundles is malformed; expected a list of [key, size, sha256].")
    seen: set[str] = set()
    for index, entry in enumerate(bundles):
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str) and entry[0]
                and _is_count(entry[1]) and isinstance(entry[2], str) and _HEX64.fullmatch(entry[2])):
            raise StellaOpsError(
                f"The baseline file {path} field bundles[{index}] is {entry!r}; expected [key, size, lower-case sha256 hex].")
        if entry[0] in seen:
            raise StellaOpsError(f"The baseline file {path} lists the bundle {entry[0]!r} twice; expected each key once.")
        seen.add(entry[0])
    _check_summary(data.get("total"), path, "total")
    partitions = data.get("partitions")
    if not isinstance(partitions, dict):
        raise StellaOpsError(f"The baseline file {path} field partitions is malformed; expected a mapping of partition roots.")
    for name, node in partitions.items():
        _check_summary(node, path, f"partitions.{name}")


def _check_roots_recompute(data: Mapping[str, Any], path: str) -> None:
    """The recorded roots, counts and bytes are those of the bundle list: a baseline cannot claim bundles it does not list."""
    summary = summarize(baseline_entries(data), int(data["partition_depth"]), schema_of(data))
    total, recorded = summary["total"], data["total"]
    # name only what differs: a global root that recomputes is not reported as another one
    differences = []
    if (total["root"], total["count"]) != (recorded["root"], recorded["count"]):
        differences.append(
            f"its {total['count']} listed bundles hash to root {total['root']}, but it records root {recorded['root']} of {recorded['count']} bundles"
        )
    elif total["bytes"] != recorded["bytes"]:
        differences.append(f"its listed bundles hold {total['bytes']} bytes, but it records {recorded['bytes']}")
    elif total != recorded:
        differences.append(f"its total holds fields other than count, bytes and root ({', '.join(sorted(set(recorded) - set(total)))})")
    partitions = sorted(name for name in set(summary["partitions"]) | set(data["partitions"])
                        if summary["partitions"].get(name) != data["partitions"].get(name))
    if partitions and not differences:
        differences.append(f"its listed bundles give partition(s) {_listed(partitions)} other roots, counts or bytes than it records")
    if differences:
        raise StellaOpsError(
            f"The baseline file {path} is inconsistent: {'; '.join(differences)}; "
            "it was edited after it was written, so it proves nothing (use an untouched copy)."
        )


def load_baseline(path: str) -> dict[str, Any]:
    """A baseline that passes its checksum, has well-typed fields and whose roots recompute from its bundle list."""
    data = load_checked(path, BASELINE_FORMAT, "baseline file")
    _check_baseline_fields(data, path)
    _check_roots_recompute(data, path)
    return data


def load_roots(path: str) -> dict[str, Any]:
    """A roots export that passes its checksum and has a well-typed total and partitions."""
    data = load_checked(path, ROOTS_FORMAT, "roots export")
    nodes = [("total", data.get("total"))]
    partitions = data.get("partitions")
    if not isinstance(partitions, dict):
        raise StellaOpsError(f"The roots export {path} field partitions is malformed; expected a mapping of partition roots.")
    nodes += [(f"partitions.{name}", node) for name, node in partitions.items()]
    for where, node in nodes:
        if not isinstance(node, dict) or not _is_count(node.get("count")) or not isinstance(node.get("root"), str) \
                or not _HEX64.fullmatch(node["root"]):
            raise StellaOpsError(f"The roots export {path} field {where} is malformed; expected count and a 64-hex root.")
    return data


def default_roots_path(path: str) -> str:
    """Where the roots export of the baseline ``path`` goes unless told otherwise."""
    return (path[: -len(".json")] if path.endswith(".json") else path) + ".roots.json"


def default_cross_reference_path(path: str) -> str:
    """Where the cross-reference of an evidence schema change of the baseline ``path`` goes unless told otherwise."""
    return (path[: -len(".json")] if path.endswith(".json") else path) + ".cross-reference.json"


def check_anchor(baseline: Mapping[str, Any], path: str, anchor: Mapping[str, Any], source: str) -> None:
    """Raise unless the baseline's roots equal those recorded in ``source``, outside the baseline file.

    The baseline's checksum is unkeyed: whoever can edit the file can recompute it. Roots recorded
    elsewhere (a roots export kept apart, the root registered by the run that took the baseline)
    are what an edited baseline cannot match without editing those too.
    """
    expected_total = anchor.get("total") or {}
    mismatches = []
    if expected_total.get("root") != baseline["total"]["root"]:
        mismatches.append(f"root {baseline['total']['root']} instead of {expected_total.get('root')}")
    if "count" in expected_total and expected_total["count"] != baseline["total"]["count"]:
        mismatches.append(f"{baseline['total']['count']} bundles instead of {expected_total['count']}")
    if "partitions" in anchor:
        expected_parts = {name: (p.get("root"), p.get("count")) for name, p in anchor["partitions"].items()}
        actual_parts = {name: (p["root"], p["count"]) for name, p in baseline["partitions"].items()}
        differing = sorted(name for name in set(expected_parts) | set(actual_parts) if expected_parts.get(name) != actual_parts.get(name))
        if differing:
            mismatches.append(f"other roots for partition(s) {_listed(differing)}")
    if "store" in anchor and not same_store(anchor["store"], baseline["store"]):
        mismatches.append(f"store {describe_identity(baseline['store'])} instead of {describe_identity(anchor['store'])}")
    if "partition_depth" in anchor and anchor["partition_depth"] != baseline["partition_depth"]:
        mismatches.append(f"partition depth {baseline['partition_depth']} instead of {anchor['partition_depth']}")
    if mismatches:
        raise StellaOpsError(
            f"The baseline file {path} does not match {source}: it records {'; '.join(mismatches)}; "
            "the baseline was replaced or edited after it was taken, so it proves nothing."
        )


def baseline_entries(baseline: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    return [(str(k), int(s), str(d)) for k, s, d in baseline["bundles"]]


def inclusion_proof(baseline: Mapping[str, Any], key: str, partition: bool = False) -> dict[str, Any]:
    """Audit path of bundle ``key`` to the global root of the baseline (or to its partition root), in the baseline's evidence schema."""
    entries = baseline_entries(baseline)
    scope = "total"
    if partition:
        scope = partition_of(key, int(baseline["partition_depth"]))
        entries = [e for e in entries if partition_of(e[0], int(baseline["partition_depth"])) == scope]
    proof = prove(((k, d) for k, _size, d in entries), key, schema_of(baseline), {k: size for k, size, _d in entries}).as_dict()
    expected = baseline["partitions"][scope]["root"] if partition else baseline["total"]["root"]
    if proof["root"] != expected:
        raise StellaOpsError(f"The roots of the baseline do not recompute from its bundles (scope {scope}); the baseline is inconsistent.")
    proof.update({"scope": "partition" if partition else "total", "partition": scope if partition else None,
                  "store": baseline["store"], "baseline_checksum": baseline["checksum"], "baseline_created": baseline["created"]})
    return proof


# --- verification --------------------------------------------------------------------------------


def verify_scan(baseline: Mapping[str, Any], scan: Scan, store: EvidenceStore, verified: Optional[str] = None) -> dict[str, Any]:
    """Continuity report: lost, modified, added, unreadable bundles and whether the baseline roots recompute."""
    depth = int(baseline["partition_depth"])
    before = {k: (s, d) for k, s, d in baseline_entries(baseline)}
    now = {r.key: r for r in scan.results}
    unreadable_keys = {r.key for r in scan.unreadable}
    lost: list[dict[str, Any]] = []
    modified: list[dict[str, Any]] = []
    added: list[dict[str, Any]] = []
    for key, (size, digest) in before.items():
        found = now.get(key)
        if found is None:
            if key not in unreadable_keys:
                lost.append({"key": key, "partition": partition_of(key, depth), "sha256": digest, "size": size})
        elif found.sha256 != digest:
            modified.append({"key": key, "partition": partition_of(key, depth), "baseline_sha256": digest,
                             "current_sha256": found.sha256, "baseline_size": size, "current_size": found.size})
    for key, found in now.items():
        if key not in before:
            added.append({"key": key, "partition": partition_of(key, depth), "sha256": found.sha256, "size": found.size})
    lost.sort(key=lambda f: f["key"])
    modified.sort(key=lambda f: f["key"])
    added.sort(key=lambda f: f["key"])
    # The baseline's keys, hashed as they are now: their roots equal the baseline roots only when nothing was lost or altered.
    schema = schema_of(baseline)
    kept = summarize(((k, now[k].size, now[k].sha256) for k in before if k in now), depth, schema)
    current = summarize(((r.key, r.size, r.sha256) for r in scan.results), depth, schema)
    roots = {}
    for name, part in baseline["partitions"].items():
        recomputed = kept["partitions"].get(name, {"root": None, "count": 0})
        roots[name] = {"baseline_root": part["root"], "baseline_count": part["count"], "recomputed_root": recomputed["root"],
                       "recomputed_count": recomputed["count"], "match": recomputed["root"] == part["root"]}
    roots_match = kept["total"]["root"] == baseline["total"]["root"] and all(r["match"] for r in roots.values())
    complete = not scan.unreadable
    return {
        "format": REPORT_FORMAT,
        "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
        "verified": verified or utc_now(),
        "complete": complete,
        "status": "incomplete" if not complete else ("failed" if lost or modified or not roots_match else "passed"),
        "store": store.identity(),
        "baseline": {"created": baseline["created"], "checksum": baseline["checksum"], "partition_depth": depth,
                     "total": baseline["total"]},
        "current": current,
        "counts": {"baseline": len(before), "current": len(now) + len(unreadable_keys), "lost": len(lost),
                   "modified": len(modified), "added": len(added), "unreadable": len(unreadable_keys)},
        "roots_match": roots_match and complete,
        "roots": {"total": {"baseline_root": baseline["total"]["root"], "recomputed_root": kept["total"]["root"],
                            "match": kept["total"]["root"] == baseline["total"]["root"]}, "partitions": roots},
        "lost": lost,
        "modified": modified,
        "added": added,
        "unreadable": [{"key": r.key, "error": r.error} for r in scan.unreadable],
    }


def check_same_store(baseline: Mapping[str, Any], store: EvidenceStore, path: str) -> None:
    if not same_store(baseline.get("store") or {}, store.identity()):
        raise StellaOpsError(
            f"The baseline file {path} was taken of {describe_identity(baseline.get('store') or {})}, "
            f"not of {store.describe()}; pass the baseline of this store (or allow_other_store for a restored copy)."
        )


def failure_message(report: Mapping[str, Any]) -> str:
    """One sentence naming the bundles that break continuity (empty when continuity holds)."""
    if not report["complete"]:
        keys = [u["key"] for u in report["unreadable"]]
        return f"Evidence continuity could not be verified: {len(keys)} bundle(s) could not be read: {_listed(keys)}."
    parts = []
    if report["lost"]:
        parts.append(f"{len(report['lost'])} lost ({_listed([f['key'] for f in report['lost']])})")
    if report["modified"]:
        parts.append(f"{len(report['modified'])} modified ({_listed([f['key'] for f in report['modified']])})")
    if not parts and not report["roots_match"]:
        parts.append("the baseline's roots do not recompute from its own bundles, so the baseline proves nothing")
    if not parts:
        return ""
    return "Evidence continuity failed: " + "; ".join(parts) + "."


# --- evidence schema change: the cross-reference -------------------------------------------------


def cross_reference(baseline: Mapping[str, Any], to_schema: int) -> dict[str, Any]:
    """Old root to new root, per partition and in total, of the baseline's bundles read in evidence ``to_schema``.

    Written after a continuity check that passed (every bundle of the baseline still there with its content hash): the
    bundles are the same, only their roots are recomputed.
    """
    if to_schema not in EVIDENCE_SCHEMAS:
        raise StellaOpsError(f"evidence schema {to_schema} is not one this collection knows; expected one of {', '.join(map(str, EVIDENCE_SCHEMAS))}.")
    new = summarize(baseline_entries(baseline), int(baseline["partition_depth"]), to_schema)

    def pair(old: Mapping[str, Any], recomputed: Mapping[str, Any]) -> dict[str, Any]:
        return {"count": old["count"], "old_root": old["root"], "new_root": recomputed["root"]}

    document: dict[str, Any] = {
        "format": CROSS_REFERENCE_FORMAT,
        "tool": {"name": TOOL_NAME, "version": TOOL_VERSION},
        "store": baseline["store"],
        "baseline_checksum": baseline["checksum"],
        "partition_depth": baseline["partition_depth"],
        "from_schema": schema_of(baseline),
        "to_schema": to_schema,
        "algorithm": ALGORITHMS[to_schema],
        "total": pair(baseline["total"], new["total"]),
        "partitions": {name: pair(part, new["partitions"][name]) for name, part in baseline["partitions"].items()},
    }
    document["checksum"] = checksum_of(document)
    return document


def _mapped(document: Mapping[str, Any]) -> dict[str, Any]:
    """``total`` and ``partition <name>`` -> the entry a cross-reference gives them."""
    partitions = document.get("partitions")
    named = {f"partition {name}": node for name, node in partitions.items()} if isinstance(partitions, Mapping) else {}
    return {"total": document.get("total"), **named}


def check_cross_reference(recorded: Mapping[str, Any], computed: Mapping[str, Any], path: str) -> None:
    """Raise unless the cross-reference at ``path`` maps exactly the roots that the baseline's bundles give."""
    for name in ("baseline_checksum", "from_schema", "to_schema", "partition_depth"):
        if recorded.get(name) != computed[name]:
            raise StellaOpsError(
                f"The cross-reference {path} was written for {name} {recorded.get(name)!r}, not {computed[name]!r}; "
                "the new roots are not accepted through it."
            )
    said, expected = _mapped(recorded), _mapped(computed)
    for where in sorted(set(said) | set(expected)):
        if said.get(where) != expected.get(where):
            node, right = said.get(where), expected.get(where)
            claim = f"maps root {node.get('old_root')} to {node.get('new_root')}" if isinstance(node, Mapping) else "has no entry"
            truth = f"root {right['old_root']} to {right['new_root']}" if isinstance(right, Mapping) else "no such entry"
            raise StellaOpsError(
                f"The cross-reference {path} does not match the bundles: for {where} it {claim}, but the bundles give {truth} "
                f"in evidence schema {computed['to_schema']}; it was edited or written for other evidence, so the new roots are not accepted."
            )
