# SPDX-License-Identifier: GPL-3.0-or-later
"""Environment lock: exclusive acquisition, refusal message, re-entry, release, stale holders."""

from __future__ import annotations

import json
import multiprocessing
import os
import socket
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils._deploy_lock import DeployLock, find_run_pid, pid_alive
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError

T0 = datetime(2025, 11, 22, 4, 0, 0, tzinfo=UTC)


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def test_acquire_creates_record_and_second_run_is_refused(tmp_path: Path) -> None:
    lock = DeployLock(str(tmp_path / "locks" / "production.lock"))
    first = lock.acquire("run-1", owner="alice", pid=os.getpid(), release_id="2025.10.0-stable", now=T0)
    assert first.acquired and first.changed and not first.stale
    on_disk = json.loads((tmp_path / "locks" / "production.lock").read_text())
    assert on_disk == first.lock
    assert on_disk["environment"] == "production" and on_disk["host"] == socket.gethostname()

    with pytest.raises(StellaOpsError) as caught:
        lock.acquire("run-2", owner="bob", pid=os.getpid(), release_id="2025.11.0-edge")
    assert str(caught.value) == (
        f"environment production is locked by alice on {socket.gethostname()} (pid {os.getpid()}) "
        "since 2025-11-22T04:00:00Z for 2025.10.0-stable; if that run is dead, clear it with state=absent force=true."
    )
    assert caught.value.details["lock"] == on_disk
    assert caught.value.details["stale"] is False
    assert json.loads((tmp_path / "locks" / "production.lock").read_text()) == on_disk


def test_reacquire_by_same_run_is_no_change(tmp_path: Path) -> None:
    lock = DeployLock(str(tmp_path / "env.lock"))
    first = lock.acquire("run-1", pid=os.getpid(), now=T0)
    again = lock.acquire("run-1", pid=os.getpid(), release_id="other")
    assert again.acquired and not again.changed
    assert again.lock == first.lock


def test_release_only_by_holder_unless_forced(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    lock = DeployLock(str(path), environment="staging")
    lock.acquire("run-1", pid=os.getpid())
    with pytest.raises(StellaOpsError, match=r"environment staging is locked .* \(run run-1\), not by run run-2"):
        lock.release("run-2")
    assert path.exists()
    dry = lock.release("run-2", force=True, dry_run=True)
    assert dry.changed and path.exists()
    forced = lock.release("run-2", force=True)
    assert forced.changed and forced.lock is not None and forced.lock["run_id"] == "run-1"
    assert not path.exists()
    assert not lock.release("run-1").changed


def test_release_by_holder(tmp_path: Path) -> None:
    lock = DeployLock(str(tmp_path / "env.lock"))
    lock.acquire("run-1", pid=os.getpid())
    assert lock.release("run-1").changed
    assert lock.read() is None
    assert lock.acquire("run-2", pid=os.getpid()).changed


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    outcome = DeployLock(str(path)).acquire("run-1", pid=os.getpid(), dry_run=True)
    assert outcome.acquired and outcome.changed
    assert not path.exists()


def test_dead_holder_is_stale_and_kept_unless_break_stale(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    lock = DeployLock(str(path))
    lock.acquire("dead-run", pid=dead_pid(), release_id="2025.09.0-stable")
    with pytest.raises(StellaOpsError, match="looks stale") as caught:
        lock.acquire("run-2", pid=os.getpid())
    assert caught.value.details["stale"] is True
    assert json.loads(path.read_text())["run_id"] == "dead-run"

    dry = lock.acquire("run-2", pid=os.getpid(), break_stale=True, dry_run=True)
    assert dry.acquired and dry.stale and json.loads(path.read_text())["run_id"] == "dead-run"

    broke = lock.acquire("run-2", pid=os.getpid(), break_stale=True)
    assert broke.acquired and broke.changed and broke.stale
    assert broke.broken is not None and broke.broken["run_id"] == "dead-run"
    assert json.loads(path.read_text())["run_id"] == "run-2"


def test_live_holder_is_not_broken_by_break_stale(tmp_path: Path) -> None:
    lock = DeployLock(str(tmp_path / "env.lock"))
    lock.acquire("run-1", pid=os.getpid())
    with pytest.raises(StellaOpsError, match="is locked by"):
        lock.acquire("run-2", pid=os.getpid(), break_stale=True)


def test_holder_on_another_host_is_never_stale(tmp_path: Path) -> None:
    lock = DeployLock(str(tmp_path / "env.lock"))
    lock.acquire("run-1", host="elsewhere.example", pid=dead_pid())
    with pytest.raises(StellaOpsError) as caught:
        lock.acquire("run-2", pid=os.getpid(), break_stale=True)
    assert caught.value.details["stale"] is False


def test_empty_lock_file_left_by_crash_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    path.write_text("")
    lock = DeployLock(str(path), fresh_wait=0.0)
    record = lock.read()
    assert record is not None and record["unreadable"]
    with pytest.raises(StellaOpsError, match="locked by unknown"):
        lock.acquire("run-1", pid=os.getpid())
    assert lock.acquire("run-1", pid=os.getpid(), break_stale=True).acquired


def _race(path: str, run_id: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        DeployLock(path).acquire(run_id, pid=os.getpid())
        results.put((run_id, True))
    except StellaOpsError:
        results.put((run_id, False))


@pytest.mark.parametrize("round_no", range(5))
def test_racing_processes_exactly_one_wins(tmp_path: Path, round_no: int) -> None:
    ctx = multiprocessing.get_context("fork")
    contenders = 6
    path = str(tmp_path / f"race-{round_no}.lock")
    barrier = ctx.Barrier(contenders)
    results = ctx.Queue()
    procs = [ctx.Process(target=_race, args=(path, f"run-{i}", barrier, results)) for i in range(contenders)]
    for proc in procs:
        proc.start()
    outcomes = dict(results.get(timeout=20) for _proc in procs)
    for proc in procs:
        proc.join(timeout=20)
    winners = [run for run, won in outcomes.items() if won]
    assert len(outcomes) == contenders
    assert len(winners) == 1
    assert json.loads(Path(path).read_text())["run_id"] == winners[0]


def test_reader_waits_for_a_lock_file_being_written(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    path.write_text("")
    written = {"n": 0}

    def sleep(_seconds: float) -> None:
        # the writer finishes while the reader waits
        written["n"] += 1
        path.write_text(json.dumps({"run_id": "run-1", "owner": "alice"}))

    record = DeployLock(str(path), sleep=sleep).read()
    assert written["n"] == 1
    assert record == {"run_id": "run-1", "owner": "alice"}


def test_find_run_pid_walks_to_outermost_marked_ancestor() -> None:
    # this test process is an ancestor-chain member whose command line mentions pytest
    assert find_run_pid(start=os.getpid(), marker="pytest") is not None
    assert find_run_pid(start=os.getpid(), marker="no-such-program-name-here") is None
