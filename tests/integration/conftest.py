# SPDX-License-Identifier: GPL-3.0-or-later
"""Run playbooks against the sandbox and read their results as data (ansible.posix.json callback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str
    data: dict[str, Any] = field(default_factory=dict)

    def tasks(self, host: str | None = None) -> list[tuple[str, dict[str, Any]]]:
        """(task name, result) pairs in run order, for one host or all."""
        found = []
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                for name, result in task.get("hosts", {}).items():
                    if host is None or name == host:
                        found.append((task["task"]["name"], result))
        return found

    def result(self, task_name: str, host: str | None = None) -> dict[str, Any]:
        """The result of the last task called ``task_name`` (role tasks may omit their "role : " prefix)."""
        matches = [result for name, result in self.tasks(host) if task_name in (name, name.split(" : ", 1)[-1])]
        if not matches:
            raise AssertionError(f"task {task_name!r} did not run; ran: {[task_name for task_name, _result in self.tasks(host)]}")
        return matches[-1]

    @property
    def stats(self) -> dict[str, Any]:
        return self.data.get("stats", {})

    def changed(self, host: str) -> int:
        return int(self.stats.get(host, {}).get("changed", 0))

    @property
    def failure_messages(self) -> list[str]:
        return [str(r.get("msg", "")) for _name, r in self.tasks() if r.get("failed")]


def run_playbook(
    playbook: str | Path,
    *,
    inventory: str | Path | None = None,
    extra_vars: dict[str, Any] | None = None,
    check: bool = False,
    diff: bool = False,
    limit: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    cwd: Path | None = None,
) -> PlaybookResult:
    """Run ``ansible-playbook`` from the repository root and parse its JSON report."""
    args = [str(VENV_BIN / "ansible-playbook"), str(playbook)]
    if inventory is not None:
        args += ["-i", str(inventory)]
    if extra_vars:
        args += ["-e", json.dumps(extra_vars)]
    if check:
        args.append("--check")
    if diff:
        args.append("--diff")
    if limit:
        args += ["--limit", limit]
    environ = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_JSON_INDENT": "0",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{VENV_BIN}{os.pathsep}{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "STELLAOPS_TOOLS_DIR": str(ROOT / ".tools" / "bin"),
        **(env or {}),
    }
    proc = subprocess.run(args, cwd=cwd or ROOT, env=environ, capture_output=True, text=True, timeout=timeout, check=False)
    start = proc.stdout.find("{")
    data = json.loads(proc.stdout[start:]) if start >= 0 else {}
    return PlaybookResult(proc.returncode, proc.stdout, proc.stderr, data)


@pytest.fixture(scope="session")
def playbook_runner():
    return run_playbook


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built into a tarball and installed outside this checkout, as users get it."""
    from fleet import build_and_install  # noqa: PLC0415 - only the fleet tests need it

    return build_and_install(tmp_path_factory.mktemp("installed"))
