# SPDX-License-Identifier: GPL-3.0-or-later
"""Deployment journal: job records, the state machine, atomic files, interrupted runs."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.journal import (
    STATUSES,
    TRANSITIONS,
    JobSpec,
    Journal,
    apply_transition,
    new_job,
    new_job_id,
)
from hostile import deep_json, fifo, finishes, one_sentence

T0 = datetime(2025, 11, 22, 4, 0, 0, tzinfo=UTC)
DIGESTS = {"authority": "sha256:" + "a" * 64, "signer": "sha256:" + "b" * 64}


def start(journal: Journal, release_id: str = "2025.10.0-stable", env: str = "prod", now: datetime = T0, **kw: object) -> dict:
    version = release_id.split("-", maxsplit=1)[0]
    spec = JobSpec(release_id, "sandbox", env, version, "stable", kw.pop("previous", None), DIGESTS, **kw)  # type: ignore[arg-type]
    return journal.start(spec, now)


def complete(journal: Journal, job_id: str, now: datetime) -> dict:
    for i, status in enumerate(("preparing", "running", "completing", "completed")):
        job = journal.transition(job_id, status, now=now + timedelta(seconds=i))
    return job


def test_start_writes_a_pending_job_file(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "journal"))
    job = start(journal, previous="2025.09.0-stable")
    assert job["status"] == "pending"
    assert job["started_at"] == "2025-11-22T04:00:00.000000Z"
    assert job["ended_at"] is None
    assert job["previous_release_id"] == "2025.09.0-stable"
    assert job["history"] == [{"status": "pending", "at": job["started_at"]}]
    on_disk = json.loads((tmp_path / "journal" / "jobs" / f"{job['id']}.json").read_text())
    assert on_disk == job
    assert journal.get(job["id"]) == job


def test_start_records_the_deployment_and_the_one_it_replaces(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(
        journal,
        previous="2025.10.0-stable",
        deployment_id="2025.10.0-stable+2",
        previous_deployment_id="2025.10.0-stable+1",
    )
    assert job["deployment_id"] == "2025.10.0-stable+2"
    assert job["previous_deployment_id"] == "2025.10.0-stable+1"
    assert job["release_id"] == job["previous_release_id"] == "2025.10.0-stable"  # a settings change of one release
    assert journal.get(job["id"]) == job


def test_deployment_ids_default_to_none(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    assert job["deployment_id"] is None and job["previous_deployment_id"] is None
    blank = new_job(JobSpec("A", "h", "prod", "1", "stable", previous_release_id="", deployment_id="", previous_deployment_id=""))
    assert blank["deployment_id"] is None and blank["previous_deployment_id"] is None and blank["previous_release_id"] is None


def test_plan_start_writes_nothing_and_start_writes_the_same_record(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    spec = JobSpec("2025.10.0-stable", "fleet-1", "prod", "2025.10.0", "stable", digests=DIGESTS, deployment_id="2025.10.0-stable+1")
    planned = journal.plan_start(spec, T0)
    assert journal.jobs() == []
    written = journal.start(spec, T0)
    ignore_id = {k: v for k, v in written.items() if k != "id"}
    assert ignore_id == {k: v for k, v in planned.items() if k != "id"}
    assert written["deployment_id"] == "2025.10.0-stable+1"


def test_job_ids_are_unique_and_sort_by_time() -> None:
    ids = {new_job_id(T0) for _count in range(200)}
    assert len(ids) == 200
    assert new_job_id(T0) < new_job_id(T0 + timedelta(microseconds=1))


def test_full_lifecycle_sets_end_time_and_history(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    done = complete(journal, job["id"], T0 + timedelta(minutes=1))
    assert done["status"] == "completed"
    assert done["ended_at"] == "2025-11-22T04:01:03.000000Z"
    assert [h["status"] for h in done["history"]] == ["pending", "preparing", "running", "completing", "completed"]


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        ((), "running"),
        ((), "completed"),
        (("preparing", "running", "completing", "completed"), "failed"),
        (("preparing", "running", "completing", "completed"), "rolling_back"),
        (("preparing", "running", "rolling_back", "rolled_back"), "running"),
        (("failed",), "completed"),
        ((), "bogus"),
    ],
)
def test_illegal_transitions_raise(tmp_path: Path, path: tuple[str, ...], bad: str) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    for status in path:
        journal.transition(job["id"], status)
    before = journal.get(job["id"])
    with pytest.raises(StellaOpsError, match="cannot go from|is not one of"):
        journal.transition(job["id"], bad)
    assert journal.get(job["id"]) == before


def test_failed_job_can_be_rolled_back(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    for status in ("preparing", "running", "failed", "rolling_back", "rolled_back"):
        job = journal.transition(job["id"], status, message=f"now {status}")
    assert job["status"] == "rolled_back"
    assert job["message"] == "now rolled_back"
    assert job["ended_at"] is not None


def test_every_status_has_a_transition_table_entry() -> None:
    assert set(TRANSITIONS) == set(STATUSES)
    for targets in TRANSITIONS.values():
        assert targets <= set(STATUSES)


def test_same_status_is_no_change_and_no_write(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = journal.transition(start(journal)["id"], "preparing")
    file_path = tmp_path / "jobs" / f"{job['id']}.json"
    mtime = file_path.stat().st_mtime_ns
    again, changed = journal.plan_transition(job["id"], "preparing")
    assert not changed
    assert again == job
    journal.transition(job["id"], "preparing")
    assert file_path.stat().st_mtime_ns == mtime
    # a new message on the same status is recorded without a history entry
    updated, changed = apply_transition(job, "preparing", message="pulling images")
    assert changed
    assert updated["history"] == job["history"]


def test_transition_replaces_digests(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    new = {"authority": "sha256:" + "c" * 64}
    assert journal.transition(job["id"], "preparing", digests=new)["digests"] == new
    with pytest.raises(StellaOpsError, match="digests"):
        journal.transition(job["id"], "running", digests={"authority": 5})  # type: ignore[dict-item]


def test_last_completed_skips_excluded_release_and_other_environments(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    a = start(journal, "2025.09.0-stable", now=T0)
    complete(journal, a["id"], T0 + timedelta(minutes=1))
    other_env = start(journal, "2025.11.0-edge", env="staging", now=T0 + timedelta(minutes=2))
    complete(journal, other_env["id"], T0 + timedelta(minutes=3))
    b = start(journal, "2025.10.0-stable", now=T0 + timedelta(minutes=4))
    complete(journal, b["id"], T0 + timedelta(minutes=5))
    failed = start(journal, "2025.11.1-edge", now=T0 + timedelta(minutes=6))
    journal.transition(failed["id"], "failed")

    last = journal.last_completed("prod")
    assert last is not None and last["id"] == b["id"]
    previous = journal.last_completed("prod", exclude_release_id="2025.10.0-stable")
    assert previous is not None and previous["id"] == a["id"]
    assert journal.last_completed("nowhere") is None
    assert [j["id"] for j in journal.jobs()] == [a["id"], other_env["id"], b["id"], failed["id"]]


def test_last_completed_skips_the_excluded_deployment_of_the_same_release(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    first = start(journal, "2025.10.0-stable", now=T0, deployment_id="2025.10.0-stable+1")
    complete(journal, first["id"], T0 + timedelta(minutes=1))
    settings_change = start(
        journal, "2025.10.0-stable", now=T0 + timedelta(minutes=2), deployment_id="2025.10.0-stable+2", previous_deployment_id="2025.10.0-stable+1"
    )
    complete(journal, settings_change["id"], T0 + timedelta(minutes=3))
    older = start(journal, "2025.09.0-stable", now=T0 - timedelta(hours=1), deployment_id="2025.09.0-stable+1")
    complete(journal, older["id"], T0 - timedelta(minutes=30))

    def last(**exclude: str) -> str | None:
        job = journal.last_completed("prod", **exclude)
        return None if job is None else job["deployment_id"]

    assert last() == "2025.10.0-stable+2"
    # rolling back a settings change returns to the previous settings of the same release
    assert last(exclude_deployment_id="2025.10.0-stable+2") == "2025.10.0-stable+1"
    # excluding the release skips all of its deployments
    assert last(exclude_release_id="2025.10.0-stable") == "2025.09.0-stable+1"
    assert last(exclude_release_id="2025.10.0-stable", exclude_deployment_id="2025.09.0-stable+1") is None
    assert last(exclude_deployment_id="2025.11.0-edge+1") == "2025.10.0-stable+2"  # excluding an unknown id excludes nothing
    assert last(exclude_deployment_id="") == "2025.10.0-stable+2"


def test_last_completed_with_excluded_deployment_keeps_jobs_recorded_without_one(tmp_path: Path) -> None:
    # jobs written before deployments existed carry deployment_id None and stay candidates
    journal = Journal(str(tmp_path))
    legacy = start(journal, "2025.09.0-stable", now=T0)
    complete(journal, legacy["id"], T0 + timedelta(minutes=1))
    current = start(journal, "2025.10.0-stable", now=T0 + timedelta(minutes=2), deployment_id="2025.10.0-stable+1")
    complete(journal, current["id"], T0 + timedelta(minutes=3))
    found = journal.last_completed("prod", exclude_deployment_id="2025.10.0-stable+1")
    assert found is not None and found["id"] == legacy["id"] and found["deployment_id"] is None


def test_rollback_job_that_completes_becomes_last_completed(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    a = start(journal, "A", now=T0)
    complete(journal, a["id"], T0 + timedelta(minutes=1))
    b = start(journal, "B", now=T0 + timedelta(minutes=2))
    complete(journal, b["id"], T0 + timedelta(minutes=3))
    back = start(journal, "A", now=T0 + timedelta(minutes=4), rollback_of=b["id"])
    complete(journal, back["id"], T0 + timedelta(minutes=5))
    last = journal.last_completed("prod")
    assert last is not None and last["id"] == back["id"] and last["rollback_of"] == b["id"]
    with pytest.raises(StellaOpsError, match="no job"):
        start(journal, "A", rollback_of="20990101T000000.000000Z-00000000")


def test_unfinished_reports_interrupted_jobs(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    a = start(journal, "A", now=T0)
    complete(journal, a["id"], T0)
    b = start(journal, "B", now=T0 + timedelta(minutes=1))
    journal.transition(b["id"], "preparing")
    journal.transition(b["id"], "running")
    # a new Journal object, as a later run would make, sees the interrupted job
    later = Journal(str(tmp_path))
    assert [j["id"] for j in later.unfinished("prod")] == [b["id"]]
    later.transition(b["id"], "failed", message="interrupted run")
    assert later.unfinished("prod") == []


def test_interrupted_write_leaves_previous_version_readable(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    # what a run killed between creating and renaming its temporary file leaves behind
    (tmp_path / "jobs" / ".job-deadbeef.tmp").write_text('{"id": "half')
    assert journal.jobs() == [job]
    assert [p.name for p in (tmp_path / "jobs").iterdir() if not p.name.startswith(".")] == [f"{job['id']}.json"]


def test_corrupt_job_file_is_a_clear_error(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    (tmp_path / "jobs" / f"{job['id']}.json").write_text("{not json")
    with pytest.raises(StellaOpsError, match=r"\.json: job file is not valid JSON \(Expecting property name"):
        journal.jobs()


def test_start_validates_required_fields(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    with pytest.raises(StellaOpsError, match="environment"):
        journal.start(JobSpec("A", "sandbox", "", "1", "stable", digests={}))
    assert not os.path.exists(tmp_path / "jobs")


def test_get_rejects_path_like_ids(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match="not a journal job id"):
        Journal(str(tmp_path)).get("../../etc/passwd")


# --------------------------------------------------------------------------- hostile job files (issue 10)


def test_a_job_id_with_a_trailing_newline_is_not_a_job_id(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    with pytest.raises(StellaOpsError, match="is not a journal job id"):
        journal.get(job["id"] + "\n")


def test_a_fifo_as_a_job_file_is_refused_at_once(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    path = tmp_path / "jobs" / f"{job['id']}.json"
    path.unlink()
    fifo(path)
    one_sentence(finishes(lambda: journal.get(job["id"]), path), str(path), "is a FIFO; expected a regular file")
    one_sentence(finishes(journal.jobs, path), "is a FIFO")


def test_a_job_file_that_is_a_link_is_refused(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path / "journal"))
    job = start(journal)
    path = tmp_path / "journal" / "jobs" / f"{job['id']}.json"
    outside = tmp_path / "elsewhere.json"
    path.rename(outside)
    path.symlink_to(outside)
    one_sentence(finishes(lambda: journal.get(job["id"])), "is a symbolic link; expected a regular file")


def _write_job(tmp_path: Path, **fields: object) -> tuple[Journal, str]:
    journal = Journal(str(tmp_path))
    job = start(journal)
    path = tmp_path / "jobs" / f"{job['id']}.json"
    path.write_text(json.dumps({**job, **fields}))
    return journal, job["id"]


def test_a_job_file_with_an_unknown_status_is_refused(tmp_path: Path) -> None:
    journal, job_id = _write_job(tmp_path, status="exploded")
    message = one_sentence(finishes(lambda: journal.jobs("prod")), "field status is 'exploded'; expected one of pending")
    assert message.startswith("deployment journal: job file ")
    one_sentence(finishes(lambda: journal.unfinished("prod")), "field status is 'exploded'")
    one_sentence(finishes(lambda: journal.transition(job_id, "preparing")), "field status is 'exploded'")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": ["running"]}, "field status is ['running']"),
        ({"status": None}, "field status is None"),
        ({"history": 5}, "field history must be a list of {status, at} entries"),
        ({"history": [{"status": "running"}]}, "field history must be a list"),
        ({"started_at": 17}, "field started_at must be a string, got int"),
        ({"ended_at": ["x"]}, "field ended_at must be a string or null, got list"),
        ({"environment": {"name": "prod"}}, "field environment must be a string, got dict"),
        ({"digests": ["sha256:1"]}, "digests must be a mapping"),
        ({"digests": {"authority": 1}}, "digests must map service names to digest strings"),
        ({"id": 12}, "field id must be a journal job id, got 12"),
        ({"id": "20251122T040000.000000Z-00000000"}, "but the file is named for job"),
    ],
)
def test_a_wrongly_typed_job_file_is_one_sentence(tmp_path: Path, fields: dict[str, object], expected: str) -> None:
    journal, job_id = _write_job(tmp_path, **fields)
    for call in (lambda: journal.jobs("prod"), lambda: journal.get(job_id), lambda: journal.transition(job_id, "preparing")):
        one_sentence(finishes(call), expected)


@pytest.mark.parametrize("content", [b"[1, 2]", b"\xff\xfe{}", deep_json().encode()])
def test_a_job_file_that_is_not_a_record_is_one_sentence(tmp_path: Path, content: bytes) -> None:
    journal = Journal(str(tmp_path))
    job = start(journal)
    (tmp_path / "jobs" / f"{job['id']}.json").write_bytes(content)
    one_sentence(finishes(lambda: journal.get(job["id"])), "job file")


def test_a_file_name_that_is_not_utf8_is_shown_escaped(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    start(journal)
    name = os.fsdecode(b"\xffbroken.json")
    (tmp_path / "jobs" / name).write_text("{}")
    message = one_sentence(finishes(journal.jobs), "\\xffbroken.json")
    message.encode("utf-8")


@pytest.mark.parametrize("where", ["/proc/stellaops-journal", "file/journal"])
def test_an_unwritable_journal_is_one_sentence(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    path = where if where.startswith("/") else str(tmp_path / where)
    journal = Journal(path)
    outcome = finishes(lambda: start(journal))
    one_sentence(outcome, f"deployment journal {path}: cannot write {path}/jobs/")
