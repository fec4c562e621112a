# SPDX-License-Identifier: GPL-3.0-or-later
"""The rehearsal log of upgrade drills: a Markdown table, one row per drill (runbook form).

Columns: date (UTC), channel, what was exercised, outcome, rollback duration, follow-up.
``drill_row`` derives the outcome and the rollback duration from the deployment journal jobs
of the drill's forced failure; ``append_row`` adds the row at the end of the log's table
(creating the file or the table when missing) and changes nothing when the row is there;
``add_row`` does that to the log file, read through the safe reader, with the log's directory
locked from the read to the write, so drills that end at once each keep their row.
"""

from __future__ import annotations

import fcntl
import os
from datetime import datetime
from typing import Any, Mapping, Optional, Sequence

from ..core.atomic import write_text
from ..core.errors import StellaOpsError
from .run_report import rollback_seconds
from ..core.safe_load import read_text

TITLE = "# Upgrade rehearsal and rollback drill log"
HEADER = ("Date (UTC)", "Channel", "What was exercised", "Outcome", "Rollback duration", "Follow-up")


def _cell(value: Any) -> str:
    text = " ".join(str(value if value is not None else "").split())
    return text.replace("|", "\\|") or "—"


def format_row(cells: Sequence[Any]) -> str:
    if len(cells) != len(HEADER):
        raise StellaOpsError(f"rehearsal log: a row needs {len(HEADER)} cells ({', '.join(HEADER)}), got {len(cells)}.")
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _header_lines() -> list[str]:
    return ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]


def drill_outcome(jobs: Sequence[Mapping[str, Any]], failing_release_id: str) -> tuple[str, Optional[float]]:
    """The drill's outcome and rollback seconds from the journal jobs of the failing release.

    ``rolled back`` when every host that started the failing release came back (its job
    ``rolled_back``), ``rollback failed`` when a job ended ``failed``, ``not exercised`` when no
    host started the failing release (nothing ran that could fail).
    """
    failing = [job for job in jobs if job.get("release_id") == failing_release_id]
    if not failing:
        return "not exercised", None
    statuses = {job.get("status") for job in failing}
    if statuses == {"rolled_back"}:
        return "rolled back", rollback_seconds(list(failing))
    if "failed" in statuses:
        return "rollback failed", rollback_seconds(list(failing))
    return "not rolled back (" + ", ".join(sorted(str(s) for s in statuses)) + ")", rollback_seconds(list(failing))


def drill_row(
    *,
    when: datetime,
    channel: str,
    exercised: str,
    outcome: str,
    seconds: Optional[float],
    follow_up: str,
) -> str:
    duration = "—" if seconds is None else f"{seconds:.1f} s"
    return format_row([when.strftime("%Y-%m-%d %H:%M:%S"), channel, exercised, outcome, duration, follow_up])


def append_row(text: str, row: str) -> tuple[str, bool]:
    """The log with ``row`` at the end of its table, and whether that changed anything."""
    lines = text.splitlines()
    if row in lines:
        return text, False
    header = _header_lines()[0]
    if header not in lines:
        prefix = lines + [""] if lines else [TITLE, ""]
        return "\n".join([*prefix, *_header_lines(), row]) + "\n", True
    end = lines.index(header) + 2
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[:end], row, *lines[end:]]) + "\n", True


def add_row(path: str, row: str, *, dry_run: bool = False) -> tuple[str, str, bool]:
    """(before, after, changed) of the log at ``path`` with ``row`` appended; with ``dry_run`` nothing is written."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        if not dry_run:
            os.makedirs(directory, exist_ok=True)
        lock = os.open(directory, os.O_RDONLY) if os.path.isdir(directory) else None
    except OSError as err:
        raise StellaOpsError(f"rehearsal_log: cannot open the directory of {path}: {err.strerror}.") from err
    try:
        if lock is not None and not dry_run:
            # Another drill may read the log between this read and its write: one at a time.
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            before = read_text(path, "rehearsal log")
        except StellaOpsError as err:
            if not err.details.get("missing"):
                raise
            before = ""
        after, changed = append_row(before, row)
        if changed and not dry_run:
            write_text(path, after)
        return before, after, changed
    finally:
        if lock is not None:
            os.close(lock)
