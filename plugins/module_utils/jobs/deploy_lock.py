# SPDX-License-Identifier: GPL-3.0-or-later
"""Environment lock: no two upgrades of the same environment at once.

The lock is one file on the host, created with ``O_CREAT | O_EXCL`` so that exactly
one run wins a race; it holds a JSON record ``{owner, controller, pid, run_id,
since, release_id, environment}``: who runs, the controller the run comes from
(its host name and boot id), the ``ansible-playbook`` process there, the run id and
when the lock was taken. A second run is refused at once with who holds the lock.
The same ``run_id`` acquiring again is a no-op.

The holder's process lives on the controller, not on the host, so staleness is told
there (the ``deploy_lock`` action plugin): a lock taken from this controller whose
process is gone is stale. The host side only learns which run was found stale
(``stale_run_id``) and removes the lock if it still holds that run. A lock from
another controller cannot be judged here; it is cleared with ``force``. An empty or
garbled lock file (a crash between create and write) is stale wherever it is read.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from ..core.errors import StellaOpsError
from ..core.safe_load import decode_utf8, parse_json, read_bytes

# Modules also run on target Pythons older than 3.11, which lack datetime.UTC.
_UTC = timezone.utc  # noqa: UP017

# How long a reader waits for a lock file that was just created but not yet written.
_FRESH_WAIT = 1.0
# A guard file (taken while breaking a stale lock) older than this was left by a crash.
_GUARD_STALE_AFTER = 30.0
# The largest pid Linux hands out (pid_max can be raised to 2**22 at most).
PID_MAX = 1 << 22
# A lock record is a few hundred bytes; anything far larger is not one.
_LOCK_MAX_BYTES = 64 << 10


@dataclass
class LockOutcome:
    """What an acquire or release did (or, in a dry run, would do)."""

    acquired: bool
    changed: bool
    lock: Optional[dict[str, Any]]
    stale: bool = False
    broken: Optional[dict[str, Any]] = field(default=None)


def _format_time(moment: datetime) -> str:
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def pid_alive(pid: Any) -> bool:
    """Whether a process with this pid exists on this host."""
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid <= PID_MAX:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def controller_identity() -> str:
    """This machine as a lock records it: host name and boot id (a pid means nothing after a reboot)."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            boot = handle.read().strip()
    except OSError:
        boot = "unknown-boot"
    return f"{socket.gethostname()}/{boot}"


def make_record(
    run_id: str,
    *,
    environment: str,
    owner: Optional[str] = None,
    controller: Optional[str] = None,
    pid: Optional[int] = None,
    release_id: Optional[str] = None,
    now: Optional[datetime] = None,
) -> dict[str, Any]:
    if not isinstance(run_id, str) or not run_id:
        raise StellaOpsError(f"environment lock for {environment}: run_id must be a non-empty string.")
    if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid <= PID_MAX):
        raise StellaOpsError(f"environment lock for {environment}: pid must be a process id from 1 to {PID_MAX}, got {pid!r}.")
    return {
        "owner": owner or getpass.getuser(),
        "controller": controller or controller_identity(),
        "pid": pid,
        "run_id": run_id,
        "since": _format_time(now or datetime.now(_UTC)),
        "release_id": release_id or None,
        "environment": environment,
    }


def is_stale(record: dict[str, Any], controller: str, alive: Callable[[Any], bool] = pid_alive) -> bool:
    """True for a file that was never written, or a lock of ``controller`` whose process is gone (told there)."""
    if record.get("unreadable"):
        return True
    if record.get("controller") != controller or record.get("pid") is None:
        return False
    return not alive(record.get("pid"))


def judge_stale(
    args: dict[str, Any], outcome: dict[str, Any], holder_key: str, execute: Callable[[dict[str, Any]], dict[str, Any]]
) -> dict[str, Any]:
    """A refusal by a lock judged on this controller (action plugins): a stale holder is cleared with break_stale
    (``execute`` runs the module again, naming the stale run), or the refusal says that it is stale."""
    holder = outcome.get(holder_key) if outcome.get("failed") else None
    if not (isinstance(holder, dict) and holder.get("run_id") and is_stale(holder, controller_identity())):
        return outcome
    if args.get("break_stale"):
        return execute({**args, "stale_run_id": holder["run_id"]})
    return {
        **outcome,
        "stale": True,
        "msg": (
            f"{str(outcome.get('msg', '')).rstrip('.')}; it is stale: process {holder.get('pid')} of that run is gone "
            "from this controller, and break_stale=true clears it."
        ),
    }


def describe(record: dict[str, Any], environment: str) -> str:
    return (
        f"environment {environment} is locked by {record.get('owner') or 'unknown'}, run {record.get('run_id') or 'unknown'} "
        f"from controller {record.get('controller') or 'unknown'} (pid {record.get('pid') if record.get('pid') is not None else 'unknown'}) "
        f"since {record.get('since') or 'unknown'} for {record.get('release_id') or 'an unknown release'}"
    )


class DeployLock:
    """The lock file ``path`` of one environment."""

    def __init__(
        self,
        path: str,
        environment: Optional[str] = None,
        sleep: Callable[[float], None] = time.sleep,
        fresh_wait: float = _FRESH_WAIT,
    ) -> None:
        self.path = path
        self.environment = environment or os.path.splitext(os.path.basename(path))[0]
        self._sleep = sleep
        self._fresh_wait = fresh_wait

    def read(self) -> Optional[dict[str, Any]]:
        """The holder record, None when free; a file that stays empty or garbled is marked ``unreadable``."""
        deadline = time.monotonic() + self._fresh_wait
        while True:
            try:
                # never through a link, never a FIFO or a device: those are refused, not cleared
                content = read_bytes(self.path, "environment lock", max_bytes=_LOCK_MAX_BYTES, follow_symlinks=False)
                modified = os.lstat(self.path).st_mtime
            except FileNotFoundError:
                return None
            except StellaOpsError as err:
                if err.details.get("missing"):
                    return None
                if err.details.get("kind") == "unreadable":
                    raise
                content, modified = b"", time.time()  # larger than any lock record: garbled
            record = self._record(content)
            if record is not None:
                return record
            # just created by O_EXCL and not yet written, or left half-written by a crash
            if time.monotonic() >= deadline:
                return {
                    "owner": None,
                    "controller": None,
                    "pid": None,
                    "run_id": None,
                    "since": _format_time(datetime.fromtimestamp(modified, _UTC)),
                    "release_id": None,
                    "environment": self.environment,
                    "unreadable": True,
                }
            self._sleep(0.02)

    def _record(self, content: bytes) -> Optional[dict[str, Any]]:
        """The holder record in ``content``, None when it is not one (empty, not UTF-8, not JSON, wrong types)."""
        try:
            data = parse_json(decode_utf8(content, self.path), self.path, "environment lock")
        except StellaOpsError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("run_id"), str) or not data["run_id"]:
            return None
        text_fields = ("owner", "controller", "since", "release_id", "environment")
        if any(data.get(name) is not None and not isinstance(data[name], str) for name in text_fields):
            return None
        pid = data.get("pid")
        if pid is not None and (not isinstance(pid, int) or isinstance(pid, bool)):
            return None
        return data

    def _create(self, record: dict[str, Any]) -> bool:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            return False
        except OSError as err:
            raise StellaOpsError(f"environment lock {self.path}: cannot create it: {err.strerror or err}.") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(record, handle, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            os.unlink(self.path)  # a half-written lock of this run would only look stale to the next one
            raise StellaOpsError(f"environment lock {self.path}: cannot write it: {err.strerror or err}.") from None
        return True

    def _remove_if_same(self, expected: dict[str, Any]) -> None:
        """Remove the lock only if it still holds ``expected``, under a guard so two breakers cannot race."""
        guard = self.path + ".break"
        deadline = time.monotonic() + 5.0
        while True:
            try:
                fd = os.open(guard, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                os.close(fd)
                break
            except FileExistsError:
                try:
                    if time.time() - os.stat(guard).st_mtime > _GUARD_STALE_AFTER:
                        os.unlink(guard)
                        continue
                except FileNotFoundError:
                    continue
                if time.monotonic() >= deadline:
                    raise StellaOpsError(f"environment lock {self.path}: another run is breaking it ({guard} exists).") from None
                self._sleep(0.02)
            except OSError as err:
                raise StellaOpsError(f"environment lock {self.path}: cannot create {guard}: {err.strerror or err}.") from None
        try:
            current = self.read()
            same = current is not None and all(current.get(k) == expected.get(k) for k in ("run_id", "since", "pid", "controller"))
            if same:
                os.unlink(self.path)
        except OSError as err:
            raise StellaOpsError(f"environment lock {self.path}: cannot remove it: {err.strerror or err}.") from None
        finally:
            os.unlink(guard)

    def acquire(
        self,
        run_id: str,
        *,
        owner: Optional[str] = None,
        controller: Optional[str] = None,
        pid: Optional[int] = None,
        release_id: Optional[str] = None,
        break_stale: bool = False,
        stale_run_id: Optional[str] = None,
        dry_run: bool = False,
        now: Optional[datetime] = None,
        clear_hint: str = "clear it with state=absent force=true",
    ) -> LockOutcome:
        """Take the lock for ``run_id``; StellaOpsError naming the holder when another run has it.

        ``stale_run_id``: the run the controller found dead; its lock counts as stale. ``clear_hint``: how the
        caller's user clears the lock of a dead run.
        """
        record = make_record(
            run_id, environment=self.environment, owner=owner, controller=controller, pid=pid, release_id=release_id, now=now
        )
        broken: Optional[dict[str, Any]] = None
        for _attempt in range(5):
            existing = self.read()
            if existing is None:
                if dry_run or self._create(record):
                    return LockOutcome(acquired=True, changed=True, lock=record, stale=broken is not None, broken=broken)
                continue
            if existing.get("run_id") == run_id:
                return LockOutcome(acquired=True, changed=False, lock=existing, stale=False)
            stale = bool(existing.get("unreadable")) or (stale_run_id is not None and existing.get("run_id") == stale_run_id)
            if stale and break_stale:
                broken = existing
                if dry_run:
                    return LockOutcome(acquired=True, changed=True, lock=record, stale=True, broken=existing)
                self._remove_if_same(existing)
                continue
            message = describe(existing, self.environment) + f"; if that run is dead, {clear_hint}"
            if stale:
                message += " (it is stale: its run is gone; break_stale=true clears it)"
            raise StellaOpsError(message + ".", lock=existing, stale=stale)
        raise StellaOpsError(f"environment lock {self.path}: it kept changing hands while this run tried to take it; try again.")

    def release(self, run_id: Optional[str] = None, *, force: bool = False, dry_run: bool = False) -> LockOutcome:
        """Drop the lock held by ``run_id`` (any holder with ``force``); no change when it is free."""
        existing = self.read()
        if existing is None:
            return LockOutcome(acquired=False, changed=False, lock=None)
        stale = bool(existing.get("unreadable"))
        if existing.get("run_id") != run_id and not force:
            raise StellaOpsError(
                describe(existing, self.environment)
                + f" (run {existing.get('run_id')}), not by run {run_id}; "
                + "only that run releases it, or clear it with force=true.",
                lock=existing,
                stale=stale,
            )
        if not dry_run:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            except OSError as err:
                raise StellaOpsError(f"environment lock {self.path}: cannot remove it: {err.strerror}.") from err
        return LockOutcome(acquired=False, changed=True, lock=existing, stale=stale)
