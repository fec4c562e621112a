# SPDX-License-Identifier: GPL-3.0-or-later
"""evidence_proof run as on a host: a refused baseline is one sentence that names what differs, not what agrees."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import build_baseline, checksum_of, roots_export, scan_store
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.store import DirectoryStore
from module_runner import ROOT, failed_with, run_module

KEY = "acme/sbom/bundle-1.json"


def baseline_of(tmp_path: Path) -> dict[str, Any]:
    for tenant in ("acme", "globex"):
        for i in range(3):
            bundle = tmp_path / "store" / tenant / "sbom" / f"bundle-{i}.json"
            bundle.parent.mkdir(parents=True, exist_ok=True)
            bundle.write_text(json.dumps({"tenant": tenant, "i": i}))
    store = DirectoryStore(str(tmp_path / "store"))
    return build_baseline(store, scan_store(store), 2)


def test_an_intact_baseline_gives_the_proof(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    baseline = baseline_of(tmp_path)
    path.write_text(json.dumps(baseline))
    result = run_module("evidence_proof", {"baseline_path": str(path), "key": KEY}, tmp_path)
    assert not result.get("failed") and result["proof"]["root"] == baseline["total"]["root"]


def _bytes(doc: dict[str, Any]) -> None:
    doc["total"]["bytes"] += 1


def _partition_root(doc: dict[str, Any]) -> None:
    doc["partitions"]["acme/sbom"]["root"] = "0" * 64


def _partition_count(doc: dict[str, Any]) -> None:
    doc["partitions"]["globex/sbom"]["count"] = 4


@pytest.mark.parametrize(
    ("edit", "difference"),
    [
        (_bytes, "its listed bundles hold {bytes} bytes, but it records {recorded_bytes}"),
        (_partition_root, "its listed bundles give partition(s) acme/sbom other roots, counts or bytes than it records"),
        (_partition_count, "its listed bundles give partition(s) globex/sbom other roots, counts or bytes than it records"),
    ],
)
def test_an_edited_baseline_is_refused_naming_what_differs(tmp_path: Path, edit: Callable[[dict[str, Any]], None], difference: str) -> None:
    """The global root and count still agree: the message must not claim that they differ (it named the same root twice)."""
    baseline = baseline_of(tmp_path)
    doc = json.loads(json.dumps(baseline))
    edit(doc)
    doc["checksum"] = checksum_of(doc)  # what anyone who can edit the file can do
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(doc))
    result = run_module("evidence_proof", {"baseline_path": str(path), "key": KEY}, tmp_path)
    message = failed_with(result, f"The baseline file {path} is inconsistent: ", "it was edited after it was written, so it proves nothing")
    assert difference.format(bytes=baseline["total"]["bytes"], recorded_bytes=doc["total"]["bytes"]) in message
    assert "hash to root" not in message  # the global root recomputes: it is not what differs


def test_the_offline_check_reads_hex_in_either_case(tmp_path: Path) -> None:
    """The audit path accepts upper-case hex; root and bundle were compared as text and 'did NOT hold' naming equal hashes."""
    baseline = baseline_of(tmp_path)
    (tmp_path / "baseline.json").write_text(json.dumps(baseline))
    (tmp_path / "roots.json").write_text(json.dumps(roots_export(baseline)))
    args = {"baseline_path": str(tmp_path / "baseline.json"), "key": KEY, "dest": str(tmp_path / "proof.json")}
    assert run_module("evidence_proof", args, tmp_path)["changed"] is True
    proof = json.loads((tmp_path / "proof.json").read_text())
    upper = dict(proof, sha256=proof["sha256"].upper(), root=proof["root"].upper(), audit_path=[h.upper() for h in proof["audit_path"]])
    (tmp_path / "proof.json").write_text(json.dumps(upper))
    bundle = tmp_path / "store" / KEY
    verify = [sys.executable, str(ROOT / "tools" / "evidence-proof"), "verify", str(tmp_path / "proof.json"), "--roots", str(tmp_path / "roots.json")]
    held = subprocess.run([*verify, "--bundle", str(bundle)], capture_output=True, text=True, check=False, timeout=60)
    assert (held.returncode, held.stderr) == (0, "")
    assert held.stdout == f"proof of {KEY!r} holds: leaf {proof['index']} of 6, root {proof['root']} (audit path, roots export, bundle content)\n"
    bundle.write_text("forged")
    forged = subprocess.run([*verify, "--bundle", str(bundle)], capture_output=True, text=True, check=False, timeout=60)
    assert forged.returncode == 1 and f"does NOT hold: the bundle {bundle} has sha256 " in forged.stderr and "exported root" not in forged.stderr


def test_a_baseline_in_evidence_schema_2_gives_a_proof_whose_leaf_holds_the_size(tmp_path: Path) -> None:
    """The roots of schema 2 hash each bundle's size too: its proof carries the size, and the offline check compares it."""
    baseline = baseline_of(tmp_path)
    store = DirectoryStore(str(tmp_path / "store"))
    two = build_baseline(store, scan_store(store), 2, schema=2)
    assert two["total"]["root"] != baseline["total"]["root"]
    (tmp_path / "baseline-2.json").write_text(json.dumps(two))
    (tmp_path / "roots-2.json").write_text(json.dumps(roots_export(two)))
    args = {"baseline_path": str(tmp_path / "baseline-2.json"), "key": KEY, "dest": str(tmp_path / "proof.json")}
    result = run_module("evidence_proof", args, tmp_path)
    bundle = tmp_path / "store" / KEY
    proof = result["proof"]
    assert (proof["evidence_schema"], proof["size"], proof["root"]) == (2, bundle.stat().st_size, two["total"]["root"])
    verify = [sys.executable, str(ROOT / "tools" / "evidence-proof"), "verify", str(tmp_path / "proof.json"), "--roots", str(tmp_path / "roots-2.json")]
    held = subprocess.run([*verify, "--bundle", str(bundle)], capture_output=True, text=True, check=False, timeout=60)
    assert (held.returncode, held.stderr) == (0, ""), held.stderr
    # The same content hash with another size in the proof: the leaf, and so the path to the root, no longer holds.
    (tmp_path / "proof.json").write_text(json.dumps({**proof, "size": proof["size"] + 1}))
    resized = subprocess.run(verify, capture_output=True, text=True, check=False, timeout=60)
    assert resized.returncode == 1 and "the audit path does not lead from the bundle's leaf to the root in the proof" in resized.stderr


def test_a_fifo_where_the_proof_goes_is_refused_not_waited_on(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(baseline_of(tmp_path)))
    dest = tmp_path / "proof.json"
    os.mkfifo(dest)
    result = run_module("evidence_proof", {"baseline_path": str(path), "key": KEY, "dest": str(dest)}, tmp_path)
    assert failed_with(result, f"{dest}: proof file is a FIFO; expected a regular file.")
    assert stat.S_ISFIFO(os.stat(dest).st_mode)
