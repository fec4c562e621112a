# SPDX-License-Identifier: GPL-3.0-or-later
"""Environment lock: exclusive acquisition, refusal message, re-entry, release, stale holders.

Staleness is told on the controller (``is_stale``: same controller and the run's process gone);
the host side breaks a lock only for the run the controller named (``stale_run_id``).
"""

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
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.deploy_lock import (
    DeployLock,
    controller_identity,
    describe,
    is_stale,
    judge_stale,
    make_record,
    pid_alive,
)
from hostile import deep_json, fifo, finishes, one_sentence

T0 = datetime(2025, 11, 22, 4, 0, 0, tzinfo=UTC)
HERE = "controller-a/6f1c0f4e-0000-4000-8000-000000000001"
ELSEWHERE = "controller-b/6f1c0f4e-0000-4000-8000-000000000002"


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def test_acquire_creates_record_and_second_run_is_refused(tmp_path: Path) -> None:
    lock = DeployLock(str(tmp_path / "locks" / "production.lock"))
    first = lock.acquire("run-1", owner="alice", controller=HERE, pid=4242, release_id="2025.10.0-stable", now=T0)
    assert first.acquired and first.changed and not first.stale
    on_disk = json.loads((tmp_path / "locks" / "production.lock").read_text())
    assert on_disk == first.lock
    assert on_disk == {
        "owner": "alice",
        "controller": HERE,
        "pid": 4242,
        "run_id": "run-1",
        "since": "2025-11-22T04:00:00Z",
        "release_id": "2025.10.0-stable",
        "environment": "production",
    }
    assert "host" not in on_disk

    with pytest.raises(StellaOpsError) as caught:
        lock.acquire("run-2", owner="bob", controller=ELSEWHERE, pid=os.getpid(), release_id="2025.11.0-edge")
    assert str(caught.value) == (
        f"environment production is locked by alice, run run-1 from controller {HERE} (pid 4242) "
        "since 2025-11-22T04:00:00Z for 2025.10.0-stable; if that run is dead, clear it with state=absent force=true."
    )
    assert caught.value.details["lock"] == on_disk
    assert caught.value.details["stale"] is False
    assert json.loads((tmp_path / "locks" / "production.lock").read_text()) == on_disk


def test_record_defaults_to_this_controller() -> None:
    record = make_record("run-1", environment="prod", now=T0)
    assert record["controller"] == controller_identity()
    assert record["pid"] is None and record["release_id"] is None
    with pytest.raises(StellaOpsError, match="run_id must be a non-empty string"):
        make_record("", environment="prod")


def test_controller_identity_is_host_name_and_boot_id() -> None:
    identity = controller_identity()
    boot_id = Path("/proc/sys/kernel/random/boot_id")
    expected_boot = boot_id.read_text().strip() if boot_id.exists() else "unknown-boot"
    assert identity == f"{socket.gethostname()}/{expected_boot}"
    assert controller_identity() == identity


def test_describe_without_details_says_unknown() -> None:
    assert describe({}, "prod") == (
        "environment prod is locked by unknown, run unknown from controller unknown (pid unknown) since unknown for an unknown release"
    )


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


# --------------------------------------------------------------------------- staleness, told on the controller


def test_is_stale() -> None:
    gone = dead_pid()
    assert is_stale({"unreadable": True}, HERE) is True  # a file that was never written, wherever it is read
    assert is_stale({"unreadable": True, "controller": ELSEWHERE}, HERE) is True
    assert is_stale({"controller": HERE, "pid": gone, "run_id": "r"}, HERE) is True
    assert is_stale({"controller": HERE, "pid": os.getpid(), "run_id": "r"}, HERE) is False
    assert is_stale({"controller": ELSEWHERE, "pid": gone, "run_id": "r"}, HERE) is False  # cannot be judged here
    assert is_stale({"controller": HERE, "pid": None, "run_id": "r"}, HERE) is False  # no process recorded
    assert is_stale({"pid": gone, "run_id": "r"}, HERE) is False  # an old record without a controller


def test_is_stale_asks_alive_about_the_recorded_pid_only_for_this_controller() -> None:
    asked: list[object] = []

    def alive(pid: object) -> bool:
        asked.append(pid)
        return False

    assert is_stale({"controller": HERE, "pid": 31337}, HERE, alive=alive) is True
    assert is_stale({"controller": ELSEWHERE, "pid": 31338}, HERE, alive=alive) is False
    assert asked == [31337]
    assert is_stale({"controller": HERE, "pid": 31337}, HERE, alive=lambda _pid: True) is False


@pytest.mark.parametrize("pid", [0, -1, None, True, "123", 1.5])
def test_pid_alive_refuses_what_is_not_a_pid(pid: object) -> None:
    assert pid_alive(pid) is False


def test_pid_alive() -> None:
    assert pid_alive(os.getpid()) is True
    assert pid_alive(1) is True  # another user's process (PermissionError) or init: alive either way
    assert pid_alive(dead_pid()) is False


# --------------------------------------------------------------------------- breaking a stale lock on the host


def test_a_dead_holder_is_not_judged_on_the_host(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    lock = DeployLock(str(path))
    lock.acquire("dead-run", controller=HERE, pid=dead_pid(), release_id="2025.09.0-stable")
    # without the controller's word the host does not break it, even with break_stale
    for break_stale in (False, True):
        with pytest.raises(StellaOpsError, match="is locked by") as caught:
            lock.acquire("run-2", controller=HERE, pid=os.getpid(), break_stale=break_stale)
        assert caught.value.details["stale"] is False
    assert json.loads(path.read_text())["run_id"] == "dead-run"


def test_stale_run_id_marks_the_lock_stale_and_break_stale_clears_it(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    lock = DeployLock(str(path))
    lock.acquire("dead-run", controller=HERE, pid=dead_pid(), release_id="2025.09.0-stable")

    with pytest.raises(StellaOpsError) as caught:
        lock.acquire("run-2", controller=HERE, pid=os.getpid(), stale_run_id="dead-run")
    assert str(caught.value).endswith(
        "; if that run is dead, clear it with state=absent force=true (it is stale: its run is gone; break_stale=true clears it)."
    )
    assert caught.value.details["stale"] is True
    assert json.loads(path.read_text())["run_id"] == "dead-run"

    dry = lock.acquire("run-2", controller=HERE, pid=os.getpid(), stale_run_id="dead-run", break_stale=True, dry_run=True)
    assert dry.acquired and dry.changed and dry.stale
    assert dry.broken is not None and dry.broken["run_id"] == "dead-run"
    assert json.loads(path.read_text())["run_id"] == "dead-run"

    broke = lock.acquire("run-2", controller=HERE, pid=os.getpid(), stale_run_id="dead-run", break_stale=True)
    assert broke.acquired and broke.changed and broke.stale
    assert broke.broken is not None and broke.broken["run_id"] == "dead-run"
    assert json.loads(path.read_text())["run_id"] == "run-2"
    assert not (tmp_path / "env.lock.break").exists()


def test_stale_run_id_of_another_run_breaks_nothing(tmp_path: Path) -> None:
    # the controller found run "dead-run" stale, but by now the lock is held by a live run
    path = tmp_path / "env.lock"
    lock = DeployLock(str(path))
    lock.acquire("live-run", controller=ELSEWHERE, pid=os.getpid())
    with pytest.raises(StellaOpsError, match="locked by .*, run live-run from controller") as caught:
        lock.acquire("run-2", controller=HERE, pid=os.getpid(), stale_run_id="dead-run", break_stale=True)
    assert caught.value.details["stale"] is False
    assert json.loads(path.read_text())["run_id"] == "live-run"


def test_the_host_trusts_the_stale_run_id_it_is_given(tmp_path: Path) -> None:
    # the host does not compare controllers: the action plugin names a run only after is_stale() on its controller
    path = tmp_path / "env.lock"
    lock = DeployLock(str(path))
    lock.acquire("dead-run", controller=ELSEWHERE, pid=4242)
    assert lock.acquire("run-2", controller=HERE, stale_run_id="dead-run", break_stale=True).broken is not None
    assert json.loads(path.read_text())["controller"] == HERE


def test_empty_lock_file_left_by_crash_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    path.write_text("")
    lock = DeployLock(str(path), fresh_wait=0.0)
    record = lock.read()
    assert record is not None and record["unreadable"] and record["controller"] is None
    with pytest.raises(StellaOpsError, match="locked by unknown.*it is stale") as caught:
        lock.acquire("run-1", pid=os.getpid())
    assert caught.value.details["stale"] is True
    # no stale_run_id is needed: a garbled file is stale wherever it is read
    outcome = lock.acquire("run-1", pid=os.getpid(), break_stale=True)
    assert outcome.acquired and outcome.stale and outcome.broken is not None and outcome.broken["unreadable"]
    assert json.loads(path.read_text())["run_id"] == "run-1"


def test_release_of_a_garbled_file_is_reported_stale(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    path.write_text("{half")
    outcome = DeployLock(str(path), fresh_wait=0.0).release("run-1", force=True)
    assert outcome.changed and outcome.stale
    assert not path.exists()


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


def _break_race(path: str, run_id: str, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        DeployLock(path).acquire(run_id, pid=os.getpid(), stale_run_id="dead-run", break_stale=True)
        results.put((run_id, True))
    except StellaOpsError:
        results.put((run_id, False))


@pytest.mark.parametrize("round_no", range(3))
def test_racing_breakers_of_one_stale_lock_exactly_one_wins(tmp_path: Path, round_no: int) -> None:
    # every contender was told the same run is stale; the first to break it wins, the others then
    # find a live run's lock (not the stale one) and are refused
    ctx = multiprocessing.get_context("fork")
    contenders = 6
    path = str(tmp_path / f"stale-{round_no}.lock")
    DeployLock(path).acquire("dead-run", controller=HERE, pid=dead_pid())
    barrier = ctx.Barrier(contenders)
    results = ctx.Queue()
    procs = [ctx.Process(target=_break_race, args=(path, f"run-{i}", barrier, results)) for i in range(contenders)]
    for proc in procs:
        proc.start()
    outcomes = dict(results.get(timeout=20) for _proc in procs)
    for proc in procs:
        proc.join(timeout=20)
    winners = [run for run, won in outcomes.items() if won]
    assert len(outcomes) == contenders
    assert len(winners) == 1
    assert json.loads(Path(path).read_text())["run_id"] == winners[0]
    assert not Path(path + ".break").exists()


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


# --------------------------------------------------------------------------- hostile lock files (issue 10)


def test_a_fifo_at_the_lock_path_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path / "env.lock")
    lock = DeployLock(str(path), fresh_wait=0.0)
    expected = f"{path}: environment lock is a FIFO; expected a regular file."
    assert one_sentence(finishes(lambda: lock.acquire("run-1", pid=os.getpid()), path)) == expected
    assert one_sentence(finishes(lambda: lock.release("run-1", force=True), path)) == expected
    assert path.is_fifo()


def test_a_link_at_the_lock_path_is_refused_not_followed(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(make_record("run-1", environment="env", controller=HERE, pid=1)))
    path = tmp_path / "env.lock"
    path.symlink_to(elsewhere)
    lock = DeployLock(str(path), fresh_wait=0.0)
    one_sentence(finishes(lambda: lock.release("run-1")), f"{path}: environment lock is a symbolic link; expected a regular file")
    one_sentence(finishes(lambda: lock.acquire("run-2", pid=os.getpid())), "is a symbolic link")
    assert elsewhere.exists() and path.is_symlink()


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe\x00garbage",
        json.dumps({"run_id": 5, "pid": 1}).encode(),
        json.dumps({"run_id": "r", "pid": "1"}).encode(),
        json.dumps({"run_id": "r", "owner": ["alice"]}).encode(),
        deep_json().encode(),
        b" " * (1 << 20) + b"{}",
    ],
    ids=["not-utf8", "run-id-number", "pid-text", "owner-list", "deep", "oversized"],
)
def test_a_garbled_lock_is_stale_and_cleared_with_force(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "env.lock"
    path.write_bytes(content)
    lock = DeployLock(str(path), fresh_wait=0.0)
    refused = finishes(lambda: lock.acquire("run-1", pid=os.getpid()))
    one_sentence(refused, "environment env is locked by unknown", "it is stale")
    assert path.read_bytes() == content
    outcome = finishes(lambda: lock.release("run-1", force=True))
    assert outcome.changed and outcome.stale and not path.exists()


def test_a_garbled_lock_is_broken_by_break_stale(tmp_path: Path) -> None:
    path = tmp_path / "env.lock"
    path.write_bytes(b"\x80\x81")
    outcome = finishes(lambda: DeployLock(str(path), fresh_wait=0.0).acquire("run-1", pid=os.getpid(), break_stale=True))
    assert outcome.acquired and outcome.stale
    assert json.loads(path.read_text())["run_id"] == "run-1"


@pytest.mark.parametrize("pid", [10**30, -(10**30), (1 << 22) + 1, 0])
def test_an_impossible_pid_is_one_sentence_and_never_alive(tmp_path: Path, pid: int) -> None:
    assert pid_alive(pid) is False
    assert is_stale({"controller": HERE, "pid": pid, "run_id": "r"}, HERE) is True
    one_sentence(finishes(lambda: make_record("r", environment="prod", pid=pid)), "environment lock for prod: pid must be a process id from 1 to 4194304")
    one_sentence(finishes(lambda: DeployLock(str(tmp_path / "env.lock")).acquire("r", pid=pid)), "pid must be a process id")
    assert not (tmp_path / "env.lock").exists()


@pytest.mark.parametrize("where", ["/proc/stellaops-locks/prod.lock", "file/prod.lock", "file/deeper/prod.lock"])
def test_an_unwritable_lock_path_is_one_sentence(tmp_path: Path, where: str) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    path = where if where.startswith("/") else str(tmp_path / where)
    outcome = finishes(lambda: DeployLock(path, fresh_wait=0.0).acquire("run-1", pid=os.getpid()))
    one_sentence(outcome, path)


def test_judge_stale_breaks_a_dead_run_of_this_controller_only_with_break_stale() -> None:
    holder = make_record("run-0", environment="prod", pid=dead_pid())  # this controller, a process that is gone
    refused = {"failed": True, "msg": "environment prod is locked by someone.", "lock_holder": holder}
    calls: list[dict[str, Any]] = []

    def execute(args: dict[str, Any]) -> dict[str, Any]:
        calls.append(args)
        return {"changed": False, "acquired": True}

    said = judge_stale({"run_id": "run-1"}, refused, "lock_holder", execute)
    assert calls == [] and said["stale"] is True
    assert said["msg"] == (
        f"environment prod is locked by someone; it is stale: process {holder['pid']} of that run is gone from this controller, "
        "and break_stale=true clears it."
    )
    assert judge_stale({"run_id": "run-1", "break_stale": True}, refused, "lock_holder", execute) == {"changed": False, "acquired": True}
    assert calls == [{"run_id": "run-1", "break_stale": True, "stale_run_id": "run-0"}]


def test_judge_stale_leaves_a_live_holder_and_other_failures_alone() -> None:
    def execute(_args: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("nothing is run again")

    alive = make_record("run-0", environment="prod", pid=os.getpid())
    refused = {"failed": True, "msg": "locked.", "lock_holder": alive}
    assert judge_stale({"break_stale": True}, refused, "lock_holder", execute) == refused
    other = {"failed": True, "msg": "docker compose pull failed."}
    assert judge_stale({"break_stale": True}, other, "lock_holder", execute) == other
    another_controller = {**make_record("run-0", environment="prod", pid=dead_pid()), "controller": "elsewhere/boot"}
    assert judge_stale({"break_stale": True}, {**refused, "lock_holder": another_controller}, "lock_holder", execute)["msg"] == "locked."
