# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils._backup_set import (
    Artifact,
    BackupSet,
    iter_artifact_problems,
    latest_restore_point,
    list_sets,
    load_manifest,
    plan_retention,
)
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError


def _take(backup_dir: Path, set_id: str, ok: bool = True, verified: str = "passed") -> BackupSet:
    bset = BackupSet.create(str(backup_dir), set_id=set_id)
    name = "data.dump"
    Path(bset.temp_path(name)).write_bytes(b"payload")
    art = Artifact(name=name, kind="postgresql", source={"database": "x"}, tool="pg_dump", tool_version="15")
    art.verification = {"status": verified, "checks": []}
    bset.commit_artifact(art)
    if ok:
        bset.complete()
    else:
        bset.fail("boom")
    return bset


def test_running_set_is_partial_and_never_a_restore_point(tmp_path: Path) -> None:
    bset = BackupSet.create(str(tmp_path), set_id="20250101T000000Z")
    Path(bset.temp_path("a.dump")).write_bytes(b"half")
    assert bset.path.endswith(".partial")
    assert [s.status for s in list_sets(str(tmp_path))] == ["running"]
    assert latest_restore_point(str(tmp_path)) is None


def test_complete_set_records_size_sha256_and_renames(tmp_path: Path) -> None:
    bset = _take(tmp_path, "20250101T000000Z")
    assert bset.path == str(tmp_path / "20250101T000000Z")
    manifest = load_manifest(bset.path)
    art = manifest["artifacts"][0]
    assert manifest["status"] == "complete" and art["size"] == 7
    assert art["sha256"] == "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5"
    assert os.stat(os.path.join(bset.path, "data.dump")).st_mode & 0o777 == 0o600
    assert list(iter_artifact_problems(bset.path, manifest)) == []


def test_unverified_artifact_fails_the_set(tmp_path: Path) -> None:
    bset = _take(tmp_path, "20250101T000000Z", verified="failed")
    assert bset.status == "failed" and bset.path.endswith(".failed")
    assert latest_restore_point(str(tmp_path)) is None


def test_fail_removes_temporary_files(tmp_path: Path) -> None:
    bset = BackupSet.create(str(tmp_path), set_id="20250101T000000Z")
    Path(bset.temp_path("b.dump")).write_bytes(b"partial")
    path = bset.fail("pg_dump was killed")
    assert os.listdir(path) == ["manifest.json"]
    assert json.loads(Path(path, "manifest.json").read_text())["error"] == "pg_dump was killed"


def test_tampered_artifact_is_reported(tmp_path: Path) -> None:
    bset = _take(tmp_path, "20250101T000000Z")
    Path(bset.path, "data.dump").write_bytes(b"PAYLOAD")
    problems = dict(iter_artifact_problems(bset.path, load_manifest(bset.path)))
    assert "sha256" in problems["data.dump"]
    os.unlink(os.path.join(bset.path, "data.dump"))
    assert dict(iter_artifact_problems(bset.path, load_manifest(bset.path))) == {"data.dump": "is missing"}


def test_retention_keeps_last_n_complete_and_drops_older_failures(tmp_path: Path) -> None:
    for i, ok in enumerate([True, False, True, True, False]):
        _take(tmp_path, f"2025010{i + 1}T000000Z", ok=ok)
    doomed = [s.id for s in plan_retention(str(tmp_path), 2)]
    assert doomed == ["20250101T000000Z", "20250102T000000Z"]
    latest = latest_restore_point(str(tmp_path))
    assert latest is not None and latest.id == "20250104T000000Z"
    with pytest.raises(StellaOpsError, match="at least 1"):
        plan_retention(str(tmp_path), 0)


def test_same_second_gets_a_new_id(tmp_path: Path) -> None:
    first = BackupSet.create(str(tmp_path), set_id="20250101T000000Z")
    second = BackupSet.create(str(tmp_path), set_id="20250101T000000Z")
    assert first.id != second.id


@pytest.mark.parametrize("content, match", [("{", "expected a backup manifest in JSON"), ('{"format": "x"}', "field 'format'")])
def test_bad_manifest(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(StellaOpsError, match=match):
        load_manifest(str(tmp_path))


def test_artifact_name_must_be_plain(tmp_path: Path) -> None:
    bset = BackupSet.create(str(tmp_path))
    with pytest.raises(StellaOpsError, match="plain file name"):
        bset.temp_path("../escape")
