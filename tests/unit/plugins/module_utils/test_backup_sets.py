# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.postgres import recorded_tables
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.sets import (
    Artifact,
    BackupSet,
    SetInfo,
    choose_doomed,
    iter_artifact_problems,
    latest_restore_point,
    list_sets,
    load_manifest,
    plan_retention,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.verify import resolve_set, verify_set
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from hostile import fifo, finishes, one_sentence
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _take(backup_dir: Path, set_id: str, ok: bool = True, verified: str = "passed", label: str = "") -> BackupSet:
    bset = BackupSet.create(str(backup_dir), label=label, set_id=set_id)
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


def test_a_label_chooses_the_newest_complete_set_of_that_label(tmp_path: Path) -> None:
    """What a rollback restores: the set an upgrade took first, not a newer one of another upgrade."""
    _take(tmp_path, "20250101T000000Z", label="before 2025.10.0-stable+1")
    _take(tmp_path, "20250102T000000Z", label="before 2025.11.0-stable+1")
    _take(tmp_path, "20250103T000000Z", ok=False, label="before 2025.10.0-stable+1")
    assert resolve_set(None, str(tmp_path), None, ["postgresql"], label="before 2025.10.0-stable+1").endswith("20250101T000000Z")
    with pytest.raises(StellaOpsError, match=r"has no complete backup set labelled 'before 2025\.12\.0-stable\+1' holding postgresql; nothing was restored\.$"):
        resolve_set(None, str(tmp_path), None, ["postgresql"], label="before 2025.12.0-stable+1")


def test_same_second_gets_a_new_id(tmp_path: Path) -> None:
    first = BackupSet.create(str(tmp_path), set_id="20250101T000000Z")
    second = BackupSet.create(str(tmp_path), set_id="20250101T000000Z")
    assert first.id != second.id


@pytest.mark.parametrize("content, match", [("{", "backup manifest is not valid JSON"), ('{"format": "x"}', "field 'format'")])
def test_bad_manifest(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(StellaOpsError, match=match):
        load_manifest(str(tmp_path))


def test_artifact_name_must_be_plain(tmp_path: Path) -> None:
    bset = BackupSet.create(str(tmp_path))
    with pytest.raises(StellaOpsError, match="plain file name"):
        bset.temp_path("../escape")


# --- retention per source (issue 10, class 3) -----------------------------------------------------------------------


def _take_sources(backup_dir: Path, set_id: str, names: tuple[str, ...]) -> BackupSet:
    bset = BackupSet.create(str(backup_dir), set_id=set_id)
    for name in names:
        Path(bset.temp_path(name)).write_bytes(name.encode())
        kind = "postgresql" if name.endswith(".dump") else "object_storage"
        art = Artifact(name=name, kind=kind, source={"name": name}, tool="t", tool_version="1")
        art.verification = {"status": "passed", "checks": []}
        bset.commit_artifact(art)
    bset.complete()
    return bset


def test_object_storage_runs_never_remove_the_last_database_set(tmp_path: Path) -> None:
    _take_sources(tmp_path, "20250101T000000Z", ("db.dump",))
    _take_sources(tmp_path, "20250102T000000Z", ("objects.json",))
    _take_sources(tmp_path, "20250103T000000Z", ("objects.json",))
    assert [s.id for s in plan_retention(str(tmp_path), 1)] == ["20250102T000000Z"]
    # check mode plans as if the new object-storage set were there: the database set still stays
    planned = plan_retention(str(tmp_path), 1, new_sources=frozenset({("object_storage", "objects.json")}))
    assert [s.id for s in planned] == ["20250102T000000Z", "20250103T000000Z"]
    newest_db = latest_restore_point(str(tmp_path), ["postgresql"])
    assert newest_db is not None and newest_db.id == "20250101T000000Z"
    newest = latest_restore_point(str(tmp_path))
    assert newest is not None and newest.id == "20250103T000000Z"
    assert latest_restore_point(str(tmp_path), ["postgresql", "object_storage"]) is None


def _in_memory(set_id: str, names: set[str]) -> SetInfo:
    artifacts = [{"kind": "postgresql" if n.endswith(".dump") else "object_storage", "name": n, "verification": {"status": "passed"}}
                 for n in sorted(names)]
    return SetInfo(set_id, f"/backups/{set_id}", "complete", {"artifacts": artifacts})


@settings(max_examples=150, deadline=None)
@given(runs=st.lists(st.sets(st.sampled_from(["db.dump", "other.dump", "objects.json"]), min_size=1), min_size=1, max_size=8),
       keep=st.integers(1, 3))
def test_retention_keeps_the_newest_keep_restore_points_of_every_source(runs: list[set[str]], keep: int) -> None:
    sets = [_in_memory(f"202501{day:02d}T000000Z", names) for day, names in enumerate(runs, start=1)]
    doomed = {s.id for s in choose_doomed(sets, keep)}
    kept = [s for s in sets if s.id not in doomed]
    for source in {source for info in sets for source in info.sources}:
        holding = [s.id for s in sets if source in s.sources]
        assert [s.id for s in kept if source in s.sources][-keep:] == holding[-keep:]  # the newest keep of each source stay
    for info in kept:  # and nothing stays that no source needs
        assert any(info.id in [s.id for s in kept if source in s.sources][-keep:] for source in info.sources)


def test_a_set_without_artifacts_is_never_complete(tmp_path: Path) -> None:
    empty = BackupSet.create(str(tmp_path), set_id="20250101T000000Z")
    empty.complete()
    assert empty.status == "failed" and "no artifact" in str(empty.error)
    forged = tmp_path / "20250102T000000Z"
    forged.mkdir()
    manifest = {"format": "stellaops.deploy/backup-manifest", "version": 1, "id": forged.name, "status": "complete", "artifacts": []}
    (forged / "manifest.json").write_text(json.dumps(manifest))
    assert [s.is_restore_point for s in list_sets(str(tmp_path))] == [False, False]
    assert latest_restore_point(str(tmp_path)) is None
    result = verify_set(str(forged), None)  # type: ignore[arg-type]  # no archive to read, so no tool runs
    assert result["verified"] is False and "holds no artifact" in result["problems"][0]


_GOOD_ARTIFACT = {"name": "a.dump", "kind": "postgresql", "source": {}, "size": 1, "sha256": "0" * 64, "details": {},
                  "verification": {"status": "passed"}}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"artifacts": [5]}, "'artifacts[0]' is int; expected a mapping"),
        ({"artifacts": [{**_GOOD_ARTIFACT, "size": "12"}]}, "'artifacts[0].size' is '12'; expected a whole number"),
        ({"artifacts": [{**_GOOD_ARTIFACT, "size": True}]}, "'artifacts[0].size' is True"),
        ({"artifacts": [{**_GOOD_ARTIFACT, "name": None}]}, "'artifacts[0].name' is None; expected a file name"),
        ({"artifacts": [{**_GOOD_ARTIFACT, "source": "db"}]}, "'artifacts[0].source' is 'db'; expected a mapping"),
        ({"artifacts": [{**_GOOD_ARTIFACT, "details": []}]}, "'artifacts[0].details' is []"),
        ({"artifacts": [{**_GOOD_ARTIFACT, "verification": "passed"}]}, "'artifacts[0].verification' is 'passed'"),
        ({"artifacts": [{**_GOOD_ARTIFACT, "verification": {}}]}, "'artifacts[0].verification.status' is missing"),
        ({"status": ["complete"]}, "field 'status' is ['complete']; expected a string"),
        ({"id": 20250101}, "field 'id' is 20250101"),
        ({"artifacts": {"a": 1}}, "field 'artifacts' is missing; expected a list"),
    ],
)
def test_wrongly_typed_manifest_is_one_sentence(tmp_path: Path, change: dict, fragment: str) -> None:
    manifest = {"format": "stellaops.deploy/backup-manifest", "version": 1, "id": "20250101T000000Z", "status": "complete",
                "artifacts": [_GOOD_ARTIFACT], **change}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StellaOpsError) as info:
        load_manifest(str(tmp_path))
    assert fragment in str(info.value) and str(tmp_path / "manifest.json") in str(info.value)
    with pytest.raises(StellaOpsError):
        verify_set(str(tmp_path), None)  # type: ignore[arg-type]  # refused before any tool runs
    (tmp_path / "x").mkdir()
    assert list_sets(str(tmp_path)) == []  # not a set directory name: ignored, never a traceback


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(artifact=st.dictionaries(st.sampled_from(sorted(_GOOD_ARTIFACT)), st.none() | st.integers() | st.text(max_size=3)
                                | st.lists(st.integers(), max_size=2) | st.dictionaries(st.text(max_size=2), st.text(max_size=2), max_size=2)))
def test_any_artifact_entry_loads_or_fails_with_a_sentence(tmp_path: Path, artifact: dict) -> None:
    set_dir = tmp_path / "20250101T000000Z"
    set_dir.mkdir(exist_ok=True)
    manifest = {"format": "stellaops.deploy/backup-manifest", "id": set_dir.name, "status": "complete",
                "artifacts": [{**_GOOD_ARTIFACT, **artifact}]}
    (set_dir / "manifest.json").write_text(json.dumps(manifest))
    try:
        loaded = load_manifest(str(set_dir))
    except StellaOpsError as err:
        assert "manifest.json" in str(err)
    else:
        assert list(iter_artifact_problems(str(set_dir), loaded))  # the file a.dump is absent
    [info] = list_sets(str(tmp_path))
    assert info.status in ("complete", "failed")


@pytest.mark.parametrize("tables", [[1, 2], {"public.t": 5}, {"public.t": {"rows": "many", "checksum": "x"}}, {"public.t": {}}])
def test_malformed_recorded_tables_are_one_sentence(tables: object) -> None:
    artifact = {**_GOOD_ARTIFACT, "details": {"tables": tables}}
    with pytest.raises(StellaOpsError, match="artifact a.dump has malformed details.tables"):
        recorded_tables(artifact)


def test_a_fifo_as_a_manifest_or_an_artifact_is_refused_at_once(tmp_path: Path) -> None:
    manifest = fifo(tmp_path / "manifest.json")
    one_sentence(finishes(lambda: load_manifest(str(tmp_path)), manifest), str(manifest), "is a FIFO; expected a regular file")
    artifact = fifo(tmp_path / "stellaops.dump")
    # the size and digest of an empty file, so that only the kind of file can tell
    listed = {"artifacts": [{"name": "stellaops.dump", "size": 0, "sha256": hashlib.sha256(b"").hexdigest()}]}
    problems = finishes(lambda: list(iter_artifact_problems(str(tmp_path), listed)), artifact)
    assert problems == [("stellaops.dump", "is not a regular file")]
