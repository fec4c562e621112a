# SPDX-License-Identifier: GPL-3.0-or-later
"""The run report callback: what it records of each task result and the outcome line it ends the run with."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Optional

import pytest
from ansible import constants as C
from ansible_collections.stellaops.deploy.plugins.callback.run_report import CallbackModule
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.run_report import RunRecorder


class Display:
    def __init__(self) -> None:
        self.lines: list[tuple[str, Optional[str]]] = []

    def display(self, msg: str, color: Optional[str] = None) -> None:
        self.lines.append((msg, color))


class Stats:
    def __init__(self, counts: dict[str, dict[str, int]]) -> None:
        self.processed = dict.fromkeys(counts, 1)
        self.counts = counts

    def summarize(self, host: str) -> dict[str, int]:
        return self.counts[host]


def result(host: str, task: str, action: str, outcome: dict[str, Any]) -> Any:
    """A task result as the callback receives it: the task, its host and what the module returned."""
    role = SimpleNamespace(get_name=lambda: "stellaops.deploy.compose_rollback")
    task_object = SimpleNamespace(_uuid=task, _role=role, resolved_action=action, action=action, get_name=lambda: task, run_once=False,
                                  get_path=lambda: "/c/roles/compose_rollback/tasks/main.yml:2")  # fmt: skip
    return SimpleNamespace(_task=task_object, _host=SimpleNamespace(get_name=lambda: host), _result=outcome)


@pytest.fixture
def callback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CallbackModule:
    monkeypatch.setenv("ANSIBLE_STDOUT_CALLBACK", "ansible.builtin.default")
    plugin = CallbackModule()
    plugin._display = Display()
    plugin._recorder = RunRecorder("rollback", "/c/playbooks/rollback.yml", datetime.now(timezone.utc))  # noqa: UP017
    plugin._extra_vars = {"stellaops_report_dir": str(tmp_path)}
    return plugin


def test_an_unreachable_target_is_a_failed_target(callback: CallbackModule, tmp_path: Path) -> None:
    lock = result(
        "target-1", "Take the environment lock", "stellaops.deploy.deploy_lock", {"msg": "Failed to connect to the host via ssh", "unreachable": True}
    )
    callback.v2_runner_on_start(lock._host, lock._task)
    callback.v2_runner_on_unreachable(lock)
    callback.v2_playbook_on_stats(Stats({"target-1": {"ok": 0, "failures": 0, "unreachable": 1}}))
    report = json.loads(next(tmp_path.glob("*-rollback.json")).read_text())
    assert report["outcome"] == "failed" and report["failed_hosts"] == ["target-1"]
    assert report["failures"][0]["message"] == "Failed to connect to the host via ssh"
    first, colour = callback._display.lines[1]
    assert first.startswith("ROLLBACK FAILED on 1 of 1 target: ") and colour == C.COLOR_ERROR


@pytest.mark.parametrize(
    ("counts", "job", "line", "colour"),
    [
        ({"ok": 2, "changed": 1}, {"status": "completed"}, "ROLLBACK SUCCEEDED: 1 host(s)", C.COLOR_OK),
        ({"ok": 2, "failures": 1}, {"status": "rolled_back"}, "ROLLBACK FAILED on 1 of 1 target: ", C.COLOR_ERROR),
        ({"ok": 2, "rescued": 1}, {"status": "rolled_back"}, "ROLLBACK ROLLED BACK: 1 host(s)", C.COLOR_CHANGED),
        ({"ok": 2}, None, "ROLLBACK NO CHANGE: 1 host(s)", None),
    ],
)
def test_the_outcome_line_is_green_only_when_the_run_succeeded(
    callback: CallbackModule, counts: dict[str, int], job: Optional[dict[str, str]], line: str, colour: Optional[str]
) -> None:
    returned = {"job": {"id": "job-1", "host": "target-1", "release_id": "2025.11.0-stable", "previous_release_id": "2025.10.0-stable", **job}} if job else {}
    callback.v2_runner_on_ok(result("target-1", "Journal the job", "stellaops.deploy.deployment_journal", returned))
    callback.v2_playbook_on_stats(Stats({"target-1": counts}))
    assert callback._display.lines[1][0].startswith(line) and callback._display.lines[1][1] == colour
    assert all(shown is None for _line, shown in callback._display.lines[2:])
