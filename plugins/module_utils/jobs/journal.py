# SPDX-License-Identifier: GPL-3.0-or-later
"""Deployment journal: one JSON file per deployment job, written atomically.

The journal lives in a directory; each job is ``jobs/<job_id>.json``. Every write
goes to a temporary file in the same directory, is flushed and fsync'ed, then
renamed over the target, so a run killed at any point leaves either the old or
the new version of a job, never half a file. The next run reads what happened
(``unfinished``) and which release last completed (``last_completed``), which is
what rollback uses.

Job statuses and transitions follow the release orchestrator's job state machine:
``pending -> preparing -> running -> completing -> completed``, ``running`` or
``completing`` may turn into ``rolling_back`` (which returns to ``running`` or ends
in ``rolled_back``), any unfinished job may end in ``failed``, and a failed job
may still be rolled back (the design's "failure handling").
"""

from __future__ import annotations

import copy
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Optional

from ..core.atomic import write_json
from ..core.errors import StellaOpsError
from ..core.safe_load import display_name, read_json

# Modules also run on target Pythons older than 3.11, which lack datetime.UTC.
_UTC = timezone.utc  # noqa: UP017

STATUSES: tuple[str, ...] = (
    "pending",
    "preparing",
    "running",
    "completing",
    "completed",
    "failed",
    "rolling_back",
    "rolled_back",
)

# Jobs in these states are over; a job left in any other state was interrupted.
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "rolled_back"})

TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"preparing", "failed"}),
    "preparing": frozenset({"running", "failed", "rolling_back"}),
    "running": frozenset({"completing", "failed", "rolling_back"}),
    "completing": frozenset({"completed", "failed", "rolling_back"}),
    "completed": frozenset(),
    "failed": frozenset({"rolling_back"}),
    "rolling_back": frozenset({"running", "rolled_back", "failed"}),
    "rolled_back": frozenset(),
}

_JOB_ID_RE = re.compile(r"[0-9]{8}T[0-9]{6}\.[0-9]{6}Z-[0-9a-f]{8}")
_TEXT_FIELDS = ("release_id", "release", "channel", "host", "environment", "started_at", "message")
_OPTIONAL_TEXT_FIELDS = ("previous_release_id", "deployment_id", "previous_deployment_id", "rollback_of", "ended_at")


def utc_now() -> datetime:
    return datetime.now(_UTC)


def format_time(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds, so that strings sort like the times they name."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return moment.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job_id(moment: datetime) -> str:
    """A unique, sortable id: the UTC start time and 32 random bits."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_UTC)
    return moment.astimezone(_UTC).strftime("%Y%m%dT%H%M%S.%fZ") + "-" + secrets.token_hex(4)


def _check_digests(digests: Optional[Mapping[str, Any]], where: str) -> dict[str, str]:
    if digests is None:
        return {}
    if not isinstance(digests, Mapping):
        raise StellaOpsError(f"{where}: digests must be a mapping of service name to image digest.")
    result: dict[str, str] = {}
    for name, digest in digests.items():
        if not isinstance(name, str) or not isinstance(digest, str):
            raise StellaOpsError(f"{where}: digests must map service names to digest strings, got {name!r}: {digest!r}.")
        result[name] = digest
    return dict(sorted(result.items()))


def check_transition(current: str, status: str, job_id: str = "") -> None:
    """Raise StellaOpsError unless ``current -> status`` is a legal job transition."""
    if status not in TRANSITIONS:
        raise StellaOpsError(f"job {job_id}: status {status!r} is not one of {', '.join(STATUSES)}.")
    if status != current and status not in TRANSITIONS.get(current, frozenset()):
        allowed = ", ".join(sorted(TRANSITIONS.get(current, frozenset()))) or "none (it is final)"
        raise StellaOpsError(f"job {job_id}: cannot go from {current!r} to {status!r}; allowed from {current!r}: {allowed}.")


@dataclass(frozen=True)
class JobSpec:
    """What a new job records: the release it deploys, where, and what it replaces or rolls back.

    ``details`` holds what a profile adds (for Helm: namespace, chart version, revisions, the deploy
    repository's git SHA).
    """

    release_id: str
    host: str
    environment: str
    release: str = ""
    channel: str = ""
    previous_release_id: Optional[str] = None
    digests: Optional[Mapping[str, Any]] = None
    rollback_of: Optional[str] = None
    message: Optional[str] = None
    deployment_id: Optional[str] = None
    previous_deployment_id: Optional[str] = None
    details: Optional[Mapping[str, Any]] = None


def new_job(spec: JobSpec, now: Optional[datetime] = None) -> dict[str, Any]:
    """The record of a new job in state ``pending`` (not written)."""
    for field, value in (("release_id", spec.release_id), ("environment", spec.environment), ("host", spec.host)):
        if not isinstance(value, str) or not value:
            raise StellaOpsError(f"deployment journal: field {field} of a new job must be a non-empty string.")
    moment = now or utc_now()
    started = format_time(moment)
    return {
        "id": new_job_id(moment),
        "release_id": spec.release_id,
        "release": spec.release or "",
        "channel": spec.channel or "",
        "host": spec.host,
        "environment": spec.environment,
        "previous_release_id": spec.previous_release_id or None,
        "deployment_id": spec.deployment_id or None,
        "previous_deployment_id": spec.previous_deployment_id or None,
        "status": "pending",
        "started_at": started,
        "ended_at": None,
        "digests": _check_digests(spec.digests, "deployment journal"),
        "rollback_of": spec.rollback_of or None,
        "message": spec.message or "",
        "details": dict(spec.details or {}),
        "history": [{"status": "pending", "at": started}],
    }


def apply_transition(
    job: Mapping[str, Any],
    status: str,
    message: Optional[str] = None,
    digests: Optional[Mapping[str, Any]] = None,
    now: Optional[datetime] = None,
    details: Optional[Mapping[str, Any]] = None,
) -> tuple[dict[str, Any], bool]:
    """The job after moving it to ``status`` and whether anything changed (pure, nothing written).

    Moving a job to the status it already has changes nothing unless a new message,
    new digests or new details (merged into the job's) are given, which are then recorded
    without a new history entry.
    """
    job_id = str(job.get("id", ""))
    current = str(job.get("status", ""))
    check_transition(current, status, job_id)
    updated = copy.deepcopy(dict(job))
    new_digests = _check_digests(digests, f"job {job_id}") if digests is not None else None
    changed = False
    if status != current:
        at = format_time(now or utc_now())
        updated["status"] = status
        updated["history"] = [*updated.get("history", []), {"status": status, "at": at}]
        updated["ended_at"] = at if status in TERMINAL else None
        changed = True
    if message is not None and message != updated.get("message"):
        updated["message"] = message
        changed = True
    if new_digests is not None and new_digests != updated.get("digests"):
        updated["digests"] = new_digests
        changed = True
    merged = {**(updated.get("details") or {}), **(details or {})}
    if details and merged != updated.get("details"):
        updated["details"] = merged
        changed = True
    return updated, changed


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def check_job(data: Any, source: str, job_id: Optional[str] = None) -> dict[str, Any]:
    """A job record read from ``source``, its fields of the types the journal writes (one sentence when not)."""
    where = f"deployment journal: job file {source}"
    if not isinstance(data, dict):
        raise StellaOpsError(f"{where} is not a job record: expected a JSON object, got {_kind(data)}.")
    for name in ("id", "status"):
        if name not in data:
            raise StellaOpsError(f"{where} is not a job record: field {name} is missing.")
    if not isinstance(data["id"], str) or not _JOB_ID_RE.fullmatch(data["id"]):
        raise StellaOpsError(f"{where}: field id must be a journal job id, got {data['id']!r}.")
    if job_id is not None and data["id"] != job_id:
        raise StellaOpsError(f"{where}: field id is {data['id']!r} but the file is named for job {job_id}.")
    if data["status"] not in STATUSES:
        raise StellaOpsError(f"{where}: field status is {data['status']!r}; expected one of {', '.join(STATUSES)}.")
    for name in _TEXT_FIELDS:
        if name in data and not isinstance(data[name], str):
            raise StellaOpsError(f"{where}: field {name} must be a string, got {_kind(data[name])}.")
    for name in _OPTIONAL_TEXT_FIELDS:
        if data.get(name) is not None and not isinstance(data[name], str):
            raise StellaOpsError(f"{where}: field {name} must be a string or null, got {_kind(data[name])}.")
    history = data.get("history", [])
    if not isinstance(history, list) or not all(
        isinstance(entry, dict) and entry.get("status") in STATUSES and isinstance(entry.get("at"), str) for entry in history
    ):
        raise StellaOpsError(f"{where}: field history must be a list of {{status, at}} entries with known statuses.")
    _check_digests(data.get("digests"), where)
    return data


def _sort_key(job: Mapping[str, Any]) -> tuple[str, str]:
    return (str(job.get("started_at") or ""), str(job.get("id") or ""))


class Journal:
    """The deployment journal kept in directory ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.jobs_dir = os.path.join(path, "jobs")

    def _job_path(self, job_id: str) -> str:
        if not isinstance(job_id, str) or not _JOB_ID_RE.fullmatch(job_id):
            raise StellaOpsError(f"deployment journal {self.path}: job id {job_id!r} is not a journal job id.")
        return os.path.join(self.jobs_dir, f"{job_id}.json")

    def _read(self, file_path: str) -> dict[str, Any]:
        """One job file: a regular file (never a link, a FIFO or a device) holding a well-typed job record."""
        name = display_name(os.path.basename(file_path))
        source = os.path.join(display_name(self.jobs_dir), name)
        try:
            data = read_json(file_path, "job file", follow_symlinks=False)
        except StellaOpsError as err:
            raise StellaOpsError(f"deployment journal: {err}") from None
        return check_job(data, source, name[: -len(".json")] if name.endswith(".json") else None)

    def write(self, job: Mapping[str, Any]) -> None:
        """Write one job atomically; the directory is synced too, so that the job survives a power cut."""
        write_json(self._job_path(str(job.get("id"))), job, sync_directory=True, what=f"deployment journal {self.path}")

    def get(self, job_id: str) -> dict[str, Any]:
        file_path = self._job_path(job_id)
        if not os.path.lexists(file_path):
            raise StellaOpsError(f"deployment journal {self.path}: there is no job {job_id}.")
        return self._read(file_path)

    def jobs(self, environment: Optional[str] = None) -> list[dict[str, Any]]:
        """Every job (of ``environment`` when given), oldest first by (started_at, id)."""
        if not os.path.isdir(self.jobs_dir):
            return []
        try:
            names = os.listdir(self.jobs_dir)
        except OSError as err:
            raise StellaOpsError(f"deployment journal {self.path}: cannot list {self.jobs_dir}: {err.strerror or err}.") from None
        found = []
        for name in names:
            if name.startswith(".") or not name.endswith(".json"):
                continue
            job = self._read(os.path.join(self.jobs_dir, name))
            if environment is None or job.get("environment") == environment:
                found.append(job)
        return sorted(found, key=_sort_key)

    def last_completed(
        self, environment: str, exclude_release_id: Optional[str] = None, exclude_deployment_id: Optional[str] = None
    ) -> Optional[dict[str, Any]]:
        """The job of ``environment`` that completed last, skipping ``exclude_release_id`` and ``exclude_deployment_id``."""
        done = [
            job
            for job in self.jobs(environment)
            if job.get("status") == "completed"
            and (not exclude_release_id or job.get("release_id") != exclude_release_id)
            and (not exclude_deployment_id or job.get("deployment_id") != exclude_deployment_id)
        ]
        if not done:
            return None
        return max(done, key=lambda job: (str(job.get("ended_at") or ""), *_sort_key(job)))

    def unfinished(self, environment: str) -> list[dict[str, Any]]:
        """Jobs of ``environment`` left in a non-final state (an interrupted run), oldest first."""
        return [job for job in self.jobs(environment) if job.get("status") not in TERMINAL]

    def plan_start(self, spec: JobSpec, now: Optional[datetime] = None) -> dict[str, Any]:
        """The job ``start`` would write, without writing it."""
        if spec.rollback_of:
            self.get(spec.rollback_of)
        return new_job(spec, now)

    def start(self, spec: JobSpec, now: Optional[datetime] = None) -> dict[str, Any]:
        """Record a new job in state ``pending`` and return it."""
        job = self.plan_start(spec, now)
        self.write(job)
        return job

    def plan_transition(
        self,
        job_id: str,
        status: str,
        message: Optional[str] = None,
        digests: Optional[Mapping[str, Any]] = None,
        now: Optional[datetime] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> tuple[dict[str, Any], bool]:
        """The job after the transition and whether it changes, without writing it."""
        return apply_transition(self.get(job_id), status, message, digests, now, details)

    def transition(
        self,
        job_id: str,
        status: str,
        message: Optional[str] = None,
        digests: Optional[Mapping[str, Any]] = None,
        now: Optional[datetime] = None,
        details: Optional[Mapping[str, Any]] = None,
    ) -> dict[str, Any]:
        """Move a job to ``status`` (StellaOpsError when illegal) and return it; no write when nothing changes."""
        job, changed = self.plan_transition(job_id, status, message, digests, now, details)
        if changed:
            self.write(job)
        return job


class JournalJob:
    """The one job a module moves through the journal: started by the module (``start``) or by its caller (``job_id``).

    Without a journal directory, or before a job exists, every step is a no-op: the module runs unjournaled.
    """

    def __init__(self, journal_dir: Optional[str], job_id: Optional[str] = None) -> None:
        self.journal = Journal(journal_dir) if journal_dir else None
        self.job_id = job_id
        self.job: Optional[dict[str, Any]] = None

    def start(self, spec: JobSpec) -> None:
        if self.journal is not None:
            self.job = self.journal.start(spec)
            self.job_id = self.job["id"]

    def step(self, status: str, message: Optional[str] = None, details: Optional[Mapping[str, Any]] = None) -> None:
        if self.journal is not None and self.job_id:
            self.job = self.journal.transition(self.job_id, status, message=message, details=details)

    def returned(self) -> dict[str, Any]:
        """The job for a module's result: ``{"job": ...}`` once the module started or moved one, else nothing."""
        return {"job": self.job} if self.job else {}
