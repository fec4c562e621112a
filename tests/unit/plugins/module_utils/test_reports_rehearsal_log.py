# SPDX-License-Identifier: GPL-3.0-or-later
"""The rehearsal log: the drill's outcome from journal jobs, and rows appended to the log's table."""

from __future__ import annotations

import os
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.reports import rehearsal_log as _rehearsal_log
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.rehearsal_log import HEADER, append_row, drill_outcome, drill_row, format_row

WHEN = datetime(2026, 12, 2, 1, 40, 12, tzinfo=timezone.utc)  # noqa: UP017


def job(host: str, release_id: str, statuses: list[tuple[str, str]]) -> dict:
    return {"host": host, "release_id": release_id, "status": statuses[-1][0], "history": [{"status": s, "at": at} for s, at in statuses]}


def test_outcome_and_duration_come_from_the_failing_release_jobs() -> None:
    jobs = [
        job("a", "2025.11.0-edge", [("pending", "2026-12-02T01:00:00.000000Z"), ("completed", "2026-12-02T01:00:05.000000Z")]),
        job("a", "2025.11.1-edge", [("pending", "2026-12-02T01:01:00.000000Z"), ("rolling_back", "2026-12-02T01:01:10.000000Z"),
                                    ("rolled_back", "2026-12-02T01:01:18.500000Z")]),
        job("b", "2025.11.1-edge", [("pending", "2026-12-02T01:01:00.000000Z"), ("rolling_back", "2026-12-02T01:01:11.000000Z"),
                                    ("rolled_back", "2026-12-02T01:01:17.000000Z")]),
    ]  # fmt: skip
    assert drill_outcome(jobs, "2025.11.1-edge") == ("rolled back", 8.5)
    jobs[2] = job("b", "2025.11.1-edge", [("pending", "2026-12-02T01:01:00.000000Z"), ("failed", "2026-12-02T01:01:17.000000Z")])
    assert drill_outcome(jobs, "2025.11.1-edge")[0] == "rollback failed"
    assert drill_outcome(jobs[:1], "2025.11.1-edge") == ("not exercised", None)


def test_rows_go_to_the_end_of_the_table_and_are_not_added_twice() -> None:
    row = drill_row(when=WHEN, channel="edge", exercised="upgrade | failure", outcome="rolled back", seconds=8.5, follow_up="none")
    assert row == "| 2026-12-02 01:40:12 | edge | upgrade \\| failure | rolled back | 8.5 s | none |"
    created, changed = append_row("", row)
    assert changed and created.startswith("# Upgrade rehearsal") and created.rstrip().endswith(row)
    runbook = "# Ops\n\n| " + " | ".join(HEADER) + " |\n|---|---|---|---|---|---|\n| 2025-10-26 | edge | dry-run | planned | — | next |\n\nNotes after.\n"
    appended, changed = append_row(runbook, row)
    lines = appended.splitlines()
    assert changed and lines[lines.index(row) - 1].startswith("| 2025-10-26") and lines[-1] == "Notes after."
    assert append_row(appended, row) == (appended, False)


def test_a_row_needs_every_column() -> None:
    with pytest.raises(StellaOpsError, match="needs 6 cells"):
        format_row(["2026-12-02", "edge"])


def test_drills_that_end_at_once_each_keep_their_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "reports" / "rehearsal-log.md"
    slow_append = _rehearsal_log.append_row

    def append_after_a_while(text: str, row: str) -> tuple[str, bool]:
        # Between the read and the write, another drill has all the time it needs to read the same log.
        time.sleep(0.05)
        return slow_append(text, row)

    monkeypatch.setattr(_rehearsal_log, "append_row", append_after_a_while)
    rows = [format_row([f"2026-12-06 10:00:{n:02d}", "edge", f"drill {n}", "rolled back", "1.0 s", "none"]) for n in range(12)]
    threads = [threading.Thread(target=_rehearsal_log.add_row, args=(str(log), row)) for row in rows]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    kept = [line for line in log.read_text().splitlines() if line.startswith("| 2026")]
    assert sorted(kept) == sorted(rows)


def test_a_log_that_is_not_a_regular_file_is_one_sentence(tmp_path: Path) -> None:
    fifo = tmp_path / "rehearsal-log.md"
    os.mkfifo(fifo)
    with pytest.raises(StellaOpsError, match=r"rehearsal log.*not a regular file|rehearsal log.*FIFO|FIFO.*rehearsal log"):
        _rehearsal_log.add_row(str(fifo), format_row(["2026-12-06 10:00:00", "edge", "drill", "rolled back", "1.0 s", "none"]))
