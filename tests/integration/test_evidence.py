# SPDX-License-Identifier: GPL-3.0-or-later
"""Evidence baseline, continuity verification, proofs and the evidence_gate role against the sandbox S3 storage.

Each test works on its own copy of the seeded ``evidence/`` bundles in a fresh bucket; the seeded bucket is only read.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.s3 import S3Location, iter_objects, make_client
from ansible_collections.stellaops.deploy.plugins.module_utils.evidence.evidence import checksum_of, summarize

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = ROOT / "tests" / "integration" / "playbooks" / "evidence.yml"
DELETED = "acme/sbom/bundle-0003.json"
ALTERED = "globex/attestation/bundle-0007.json"


def _secret(sandbox: dict[str, Any]) -> str:
    return Path(sandbox["s3"]["secret_key_file"]).read_text().strip()


@pytest.fixture
def evidence_copy(sandbox: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A fresh bucket holding a copy of the seeded evidence bundles; removed afterwards."""
    s3 = sandbox["s3"]
    location = S3Location(f"test-evidence-{uuid.uuid4().hex[:10]}", "evidence/", s3["endpoint"], s3["region"], s3["access_key"], _secret(sandbox))
    client = make_client(location)
    client.create_bucket(Bucket=location.bucket)
    seeded = list(iter_objects(client, s3["evidence_bucket"], "evidence/"))
    assert len(seeded) == 60
    for info in seeded:
        client.copy_object(Bucket=location.bucket, Key=info.key, CopySource={"Bucket": s3["evidence_bucket"], "Key": info.key})
    store = {"type": "s3", "endpoint": s3["endpoint"], "bucket": location.bucket, "prefix": "evidence/",
             "region": s3["region"], "access_key": s3["access_key"], "secret_key": location.secret_key}
    yield {"client": client, "bucket": location.bucket, "store": store, "secret": location.secret_key}
    keys = [{"Key": o.key} for o in iter_objects(client, location.bucket)]
    if keys:
        client.delete_objects(Bucket=location.bucket, Delete={"Objects": keys})
    client.delete_bucket(Bucket=location.bucket)


_RUNNER: list[Any] = []


@pytest.fixture(autouse=True)
def _runner(playbook_runner: Any) -> None:
    _RUNNER[:] = [playbook_runner]


def _run(step: str, store: dict[str, Any], directory: Path, check: bool = False, **extra: Any) -> Any:
    return _RUNNER[0](PLAYBOOK, check=check, diff=True,
                      extra_vars={"evidence_step": step, "evidence_store": store, "evidence_dir": str(directory), **extra})


def _task(result: Any, name: str) -> dict[str, Any]:
    return result.result(name, "localhost")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.cells: dict[str, list[str]] = {}
        self._table: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        ids = dict(attrs).get("id")
        if tag == "table" and ids:
            self._table = ids

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._table:
            self.cells.setdefault(self._table, []).append(data)


def test_continuity_names_exactly_the_lost_and_modified_bundles(evidence_copy: dict[str, Any], tmp_path: Path) -> None:
    store, client, bucket = evidence_copy["store"], evidence_copy["client"], evidence_copy["bucket"]
    # check mode: computes, writes nothing
    checked = _run("baseline", store, tmp_path, check=True)
    assert checked.rc == 0, checked.failure_messages
    first = _task(checked, "Evidence baseline")
    assert first["changed"] is True and first["total"]["count"] == 60 and len(first["partitions"]) == 6
    assert not (tmp_path / "baseline.json").exists()
    # apply, then idempotent apply served from the cache
    applied = _task(_run("baseline", store, tmp_path), "Evidence baseline")
    assert applied["changed"] is True and applied["hashed"] == 60
    assert applied["total"]["root"] == first["total"]["root"]
    again = _task(_run("baseline", store, tmp_path), "Evidence baseline")
    assert again["changed"] is False and again["hashed"] == 0 and again["cached"] == 60
    baseline_text = (tmp_path / "baseline.json").read_text()
    assert evidence_copy["secret"] not in baseline_text and evidence_copy["secret"] not in (tmp_path / "cache.json").read_text()
    assert json.loads((tmp_path / "baseline.roots.json").read_text())["total"]["root"] == applied["total"]["root"]
    # the untouched copy passes
    clean = _task(_run("verify", store, tmp_path), "Evidence verify")
    assert clean["continuity"] is True and clean["roots_match"] is True and clean["changed"] is True  # reports written
    assert clean["anchors"] == [f"roots export {tmp_path / 'baseline.roots.json'}"]
    written = (tmp_path / "report.json").read_text()
    again = _task(_run("verify", store, tmp_path), "Evidence verify")
    assert again["continuity"] is True and again["changed"] is False and (tmp_path / "report.json").read_text() == written

    client.delete_object(Bucket=bucket, Key="evidence/" + DELETED)
    client.put_object(Bucket=bucket, Key="evidence/" + ALTERED, Body=b'{"altered": true}')
    client.put_object(Bucket=bucket, Key="evidence/acme/sbom/bundle-0099.json", Body=b'{"new": true}')

    # check mode fails the same way and writes no report
    (tmp_path / "report.json").unlink()
    (tmp_path / "report.html").unlink()
    in_check = _run("verify", store, tmp_path, check=True)
    assert in_check.rc != 0
    assert not (tmp_path / "report.json").exists() and not (tmp_path / "report.html").exists()

    failed = _run("verify", store, tmp_path)
    assert failed.rc != 0
    result = _task(failed, "Evidence verify")
    assert result["failed"] is True
    assert result["lost"] == [DELETED] and result["modified"] == [ALTERED]
    assert result["added"] == ["acme/sbom/bundle-0099.json"]
    assert result["roots_match"] is False
    assert DELETED in result["msg"] and ALTERED in result["msg"] and "bundle-0099" not in result["msg"]
    assert "Traceback" not in failed.stdout

    report = json.loads((tmp_path / "report.json").read_text())
    assert [f["key"] for f in report["lost"]] + [f["key"] for f in report["modified"]] == [DELETED, ALTERED]
    assert report["status"] == "failed" and report["counts"]["lost"] == 1 and report["counts"]["modified"] == 1
    assert report["roots"]["partitions"]["acme/sbom"]["match"] is False
    assert report["roots"]["partitions"]["acme/attestation"]["match"] is True

    page = (tmp_path / "report.html").read_text()
    parsed = _Text()
    parsed.feed(page)
    assert "FAILED" in "".join(parsed.parts)
    assert DELETED in parsed.cells["lost-table"] and ALTERED in parsed.cells["modified-table"]
    assert "acme/sbom/bundle-0099.json" in parsed.cells["added-table"]
    assert report["baseline"]["total"]["root"] in parsed.cells["roots-table"]
    assert evidence_copy["secret"] not in page
    chromium = shutil.which("chromium") if Path("/usr/bin/chromium").exists() else None
    if chromium:  # rendered by a real browser when one is installed; html.parser above otherwise
        dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", (tmp_path / "report.html").as_uri()],
                             capture_output=True, text=True, timeout=60, check=True).stdout
        assert DELETED in dom and ALTERED in dom

    # the incremental re-baseline reads only what changed
    rebase = _task(_run("baseline", store, tmp_path), "Evidence baseline")
    assert rebase["changed"] is True and rebase["hashed"] == 2 and rebase["cached"] == 58  # 60 - lost - altered; altered + added read


def test_inclusion_proof_module_and_offline_tool(evidence_copy: dict[str, Any], tmp_path: Path) -> None:
    store, client, bucket = evidence_copy["store"], evidence_copy["client"], evidence_copy["bucket"]
    assert _run("baseline", store, tmp_path).rc == 0
    key = "globex/sbom/bundle-0005.json"
    proof_run = _run("proof", store, tmp_path, evidence_key=key)
    proof = _task(proof_run, "Evidence proof")
    assert proof["changed"] is True and proof["proof"]["tree_size"] == 60
    assert _task(_run("proof", store, tmp_path, evidence_key=key), "Evidence proof")["changed"] is False
    bundle = tmp_path / "bundle.json"
    bundle.write_bytes(client.get_object(Bucket=bucket, Key="evidence/" + key)["Body"].read())
    tool = [sys.executable, str(ROOT / "tools" / "evidence-proof"), "verify", str(tmp_path / "proof.json")]
    ok = subprocess.run([*tool, "--roots", str(tmp_path / "baseline.roots.json"), "--bundle", str(bundle)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    bundle.write_bytes(b"forged")
    forged = subprocess.run([*tool, "--bundle", str(bundle)], capture_output=True, text=True, check=False)
    assert forged.returncode == 1 and "does NOT hold" in forged.stderr
    data = json.loads((tmp_path / "proof.json").read_text())
    data["audit_path"][0] = "00" * 32
    (tmp_path / "proof.json").write_text(json.dumps(data))
    tampered = subprocess.run(tool, capture_output=True, text=True, check=False)
    assert tampered.returncode == 1 and "audit path does not lead" in tampered.stderr


def test_bad_input_gives_one_clear_message(evidence_copy: dict[str, Any], tmp_path: Path) -> None:
    store = evidence_copy["store"]
    assert _run("baseline", store, tmp_path).rc == 0
    # a baseline edited after it was written
    edited = tmp_path / "edited"
    edited.mkdir()
    data = json.loads((tmp_path / "baseline.json").read_text())
    data["bundles"][0][2] = "f" * 64
    (edited / "baseline.json").write_text(json.dumps(data))
    result = _run("verify", store, edited)
    msg = _task(result, "Evidence verify")["msg"]
    assert "fails its checksum" in msg and "Traceback" not in result.stdout
    assert not (edited / "report.json").exists()
    # the baseline of another store
    seeded = {**store, "bucket": "stellaops-evidence"}
    other = _task(_run("verify", seeded, tmp_path, evidence_baseline_path=str(tmp_path / "baseline.json")), "Evidence verify")
    assert f"taken of s3://{store['bucket']}/evidence/" in other["msg"] and "not of s3://stellaops-evidence/evidence/" in other["msg"]
    # an unreachable endpoint, a missing bucket
    down = _task(_run("verify", {**store, "endpoint": "http://127.0.0.1:1"}, tmp_path, evidence_baseline_path=str(tmp_path / "baseline.json")),
                 "Evidence verify")
    assert "taken of" in down["msg"]  # the store identity is checked before any request
    down = _task(_run("baseline", {**store, "endpoint": "http://127.0.0.1:1"}, tmp_path / "down"), "Evidence baseline")
    assert down["msg"].startswith("Cannot reach the S3 endpoint http://127.0.0.1:1")
    assert evidence_copy["secret"] not in json.dumps(down)
    missing = _task(_run("baseline", {**store, "bucket": "no-such-evidence"}, tmp_path / "down"), "Evidence baseline")
    assert "bucket 'no-such-evidence' does not exist" in missing["msg"]
    assert not (tmp_path / "down" / "baseline.json").exists()


def test_evidence_gate_role_fails_listing_bundles(evidence_copy: dict[str, Any], tmp_path: Path) -> None:
    store, client, bucket = evidence_copy["store"], evidence_copy["client"], evidence_copy["bucket"]
    before = _run("gate_baseline", store, tmp_path)
    assert before.rc == 0, before.failure_messages
    assert (tmp_path / "gate-baseline.json").exists() and (tmp_path / "gate-baseline.roots.json").exists()
    assert _run("gate_verify", store, tmp_path).rc == 0
    assert (tmp_path / "gate-reports" / "continuity-report.html").exists()
    client.delete_object(Bucket=bucket, Key="evidence/" + DELETED)
    client.put_object(Bucket=bucket, Key="evidence/" + ALTERED, Body=b"tampered")
    after = _run("gate_verify", store, tmp_path)
    assert after.rc != 0
    [message] = after.failure_messages
    assert "1 lost (" + DELETED + ")" in message and "1 modified (" + ALTERED + ")" in message
    assert "continuity-report.html" in message


def test_edited_baseline_with_recomputed_checksum_is_refused(evidence_copy: dict[str, Any], tmp_path: Path) -> None:
    """The attacks of issue 10 class 1: an emptied bundle list, then a whole consistent forgery, each re-checksummed."""
    store, client, bucket = evidence_copy["store"], evidence_copy["client"], evidence_copy["bucket"]
    assert _run("baseline", store, tmp_path).rc == 0
    genuine = json.loads((tmp_path / "baseline.json").read_text())
    client.delete_object(Bucket=bucket, Key="evidence/" + DELETED)

    emptied = dict(genuine, bundles=[])
    emptied["checksum"] = checksum_of(emptied)
    (tmp_path / "baseline.json").write_text(json.dumps(emptied))
    result = _run("verify", store, tmp_path)
    task = _task(result, "Evidence verify")
    assert result.rc != 0 and "is inconsistent: its 0 listed bundles hash to root" in task["msg"]
    assert task.get("continuity") is not True and "Traceback" not in result.stdout

    bundles = [b for b in genuine["bundles"] if b[0] != DELETED]
    forged = dict(genuine, bundles=bundles, **summarize((tuple(b) for b in bundles), genuine["partition_depth"]))
    forged["checksum"] = checksum_of(forged)
    (tmp_path / "baseline.json").write_text(json.dumps(forged))
    result = _run("verify", store, tmp_path)
    task = _task(result, "Evidence verify")
    assert result.rc != 0 and "does not match the roots export" in task["msg"] and "59 bundles instead of 60" in task["msg"]
    assert not (tmp_path / "report.json").exists()
