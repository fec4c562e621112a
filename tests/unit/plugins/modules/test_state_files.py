# SPDX-License-Identifier: GPL-3.0-or-later
"""deploy_lock and deployment_journal run as on a host: unwritable places and hostile files are one sentence."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from module_runner import failed_with, run_module


@pytest.mark.parametrize("where", ["/proc/stellaops/locks/prod.lock", "file/prod.lock"])
def test_deploy_lock_in_an_unwritable_place(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    path = where if where.startswith("/") else str(tmp_path / where)
    failed_with(run_module("deploy_lock", {"path": path, "run_id": "r1", "pid": 1234, "controller": "c"}, tmp_path), path)


def test_deploy_lock_of_bytes_that_are_not_utf8_is_cleared_with_force(tmp_path: Path) -> None:
    path = tmp_path / "prod.lock"
    path.write_bytes(b"\xff\xfe\x00\x81")
    refused = run_module("deploy_lock", {"path": str(path), "run_id": "r1", "pid": 1234, "controller": "c"}, tmp_path)
    failed_with(refused, "environment prod is locked by unknown", "it is stale")
    cleared = run_module("deploy_lock", {"path": str(path), "state": "absent", "force": True}, tmp_path)
    assert cleared["changed"] is True and cleared["stale"] is True and not path.exists()


def test_deploy_lock_with_a_huge_pid_is_one_sentence(tmp_path: Path) -> None:
    result = run_module("deploy_lock", {"path": str(tmp_path / "prod.lock"), "run_id": "r1", "pid": 10**30, "controller": "c"}, tmp_path)
    failed_with(result, "pid must be a process id from 1 to 4194304")
    assert not (tmp_path / "prod.lock").exists()


def test_deploy_lock_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "prod.lock")
    result = run_module("deploy_lock", {"path": str(tmp_path / "prod.lock"), "state": "absent", "force": True}, tmp_path, seconds=30)
    failed_with(result, "environment lock is a FIFO; expected a regular file")


@pytest.mark.parametrize("where", ["/proc/stellaops-journal", "file/journal"])
def test_deployment_journal_in_an_unwritable_place(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    path = where if where.startswith("/") else str(tmp_path / where)
    args = {"path": path, "action": "start", "environment": "prod", "release_id": "2025.10.0-stable", "host": "h1"}
    failed_with(run_module("deployment_journal", args, tmp_path), f"deployment journal {path}: cannot write {path}/jobs/")


def test_deployment_journal_refuses_a_job_of_unknown_status(tmp_path: Path) -> None:
    args = {"path": str(tmp_path / "journal"), "action": "start", "environment": "prod", "release_id": "2025.10.0-stable", "host": "h1"}
    job = run_module("deployment_journal", args, tmp_path)["job"]
    job_file = tmp_path / "journal" / "jobs" / f"{job['id']}.json"
    job_file.write_text(json.dumps({**job, "status": "exploded"}))
    query = run_module("deployment_journal", {"path": str(tmp_path / "journal"), "environment": "prod"}, tmp_path)
    failed_with(query, f"{job_file}: field status is 'exploded'; expected one of pending")
    job_file.write_text(json.dumps({**job, "history": "none"}))
    moved = run_module("deployment_journal", {"path": str(tmp_path / "journal"), "action": "transition", "job_id": job["id"], "status": "preparing"}, tmp_path)
    failed_with(moved, "field history must be a list")
