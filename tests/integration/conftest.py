# SPDX-License-Identifier: GPL-3.0-or-later
"""Run playbooks against the sandbox and read their results as data (ansible.posix.json callback)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from kube import kube_emulator, kube_emulator_plain  # noqa: F401 pylint: disable=unused-import

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

    def of(self, module: str, host: str | None = None) -> dict[str, Any]:
        """The result of the last run of ``module`` (``stellaops.deploy.<module>`` or a full name), found by data, not by task
        name; a task that was skipped did not run it."""
        full = module if "." in module else f"stellaops.deploy.{module}"
        matches = [result for _name, result in self.tasks(host) if result.get("action") == full and not result.get("skipped")]
        if not matches:
            raise AssertionError(f"{full} did not run; ran: {sorted({str(result.get('action')) for _name, result in self.tasks(host)})}")
        return matches[-1]

    @property
    def stats(self) -> dict[str, Any]:
        return self.data.get("stats", {})

    def changed(self, host: str) -> int:
        return int(self.stats.get(host, {}).get("changed", 0))

    @property
    def failure_messages(self) -> list[str]:
        return [str(r.get("msg", "")) for _name, r in self.tasks() if r.get("failed")]


def _parse(rc: int, stdout: str, stderr: str) -> PlaybookResult:
    """The report of the ansible.posix.json callback: the JSON document that runs to the end of stdout."""
    decoder = json.JSONDecoder()
    for line in re.finditer(r"^\{", stdout, re.MULTILINE):
        try:
            data, end = decoder.raw_decode(stdout, line.start())
        except ValueError:
            continue
        if isinstance(data, dict) and not stdout[end:].strip():
            return PlaybookResult(rc, stdout, stderr, data)
    return PlaybookResult(rc, stdout, stderr, {})


class RunningPlaybook:
    """An ``ansible-playbook`` started without waiting, in a process group of its own (``pid`` is its pgid)."""

    def __init__(self, process: subprocess.Popen, stdout: IO[str], stderr: IO[str]) -> None:
        self.process = process
        self.pid = process.pid
        self._stdout = stdout
        self._stderr = stderr

    def poll(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        """SIGKILL the run's whole process group: the ansible-playbook process and its workers."""
        os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()

    def wait(self, timeout: float = 900) -> PlaybookResult:
        rc = self.process.wait(timeout=timeout)
        outputs = []
        for handle in (self._stdout, self._stderr):
            handle.seek(0)
            outputs.append(handle.read())
            handle.close()
        return _parse(rc, outputs[0], outputs[1])


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
    background: bool = False,
    verbosity: int = 0,
) -> Any:
    """Run ``ansible-playbook`` from the repository root and parse its JSON report.

    With ``background`` it returns a ``RunningPlaybook`` at once, the same command line started
    in a process group of its own; its ``wait()`` gives the ``PlaybookResult``. With ``verbosity``
    (``-v`` that many times) Ansible's own lines come before the report.
    """
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
    if verbosity:
        args.append("-" + "v" * verbosity)
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
    if background:
        # Files, not pipes: nobody reads the output until the run ends.
        stdout, stderr = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by wait()
        process = subprocess.Popen(args, cwd=cwd or ROOT, env=environ, stdout=stdout, stderr=stderr, text=True, start_new_session=True)
        return RunningPlaybook(process, stdout, stderr)
    proc = subprocess.run(args, cwd=cwd or ROOT, env=environ, capture_output=True, text=True, timeout=timeout, check=False)
    return _parse(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="session")
def playbook_runner():
    return run_playbook


@pytest.fixture(scope="session")
def installed_collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The collection built into a tarball and installed outside this checkout, as users get it."""
    from fleet import build_and_install  # noqa: PLC0415 - only the fleet tests need it

    return build_and_install(tmp_path_factory.mktemp("installed"))


# `make integration` hands whole modules to two workers (--dist loadfile --no-loadscope-reorder) in the order they are
# collected: the longest modules (docs/development.md has their costs) go first, so that no long one starts while the
# other worker is running out of work. The order of the tests inside a module, on which some scenarios build, is kept.
LONGEST_FIRST = (
    "test_operator_playbooks.py",
    "test_compose_fleet.py",
    "test_bluegreen.py",
    "test_helm_profile.py",
    "test_compose_fleet_faults.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)
