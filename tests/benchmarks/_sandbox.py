# SPDX-License-Identifier: GPL-3.0-or-later
"""What the SSH benchmarks share: the sandbox, timed commands, SSH to a fleet host, inventory hosts.

Not a benchmark itself (`make bench` runs only bench_*.py).
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SANDBOX_DIR = ROOT / ".sandbox"
SANDBOX: dict[str, Any] = json.loads((SANDBOX_DIR / "sandbox.json").read_text())
FLEET_KEY = SANDBOX["fleet"]["ssh_private_key_file"]
# What the sandbox inventory gives Ansible (inventory/local/group_vars/compose_fleet.yml); Ansible adds
# its default ssh_args (-C -o ControlMaster=auto -o ControlPersist=60s).
SSH_COMMON_ARGS = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"


def ansible_env(**extra: str) -> dict[str, str]:
    """The environment of `make bench`'s Ansible runs: this checkout's ansible.cfg and the virtualenv first on PATH."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "1",
        "PATH": f"{VENV_BIN}{os.pathsep}{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ['PATH']}",
        **extra,
    }


def load() -> str:
    """The 1-minute load average, printed next to each figure (the machine is shared)."""
    return f"load {os.getloadavg()[0]:.1f}"


def children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes of this one: Ansible's controller side, ssh clients."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(cmd: list[str], *, env: Optional[dict[str, str]] = None, stdin: Optional[str] = None, what: str = "") -> tuple[float, str]:
    """Run a command; its wall-clock time and its stdout. A failure ends the benchmark with the command's output."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{what or ' '.join(cmd[:3])} failed (rc {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return elapsed, proc.stdout


def inventory_host(ssh_port: int, **host_vars: Any) -> dict[str, Any]:
    """An inventory entry for a sandbox host reached over SSH on 127.0.0.1, as inventory/local sets it up."""
    return {
        "ansible_host": "127.0.0.1",
        "ansible_port": ssh_port,
        "ansible_user": SANDBOX["fleet"]["ssh_user"],
        "ansible_ssh_private_key_file": FLEET_KEY,
        "ansible_python_interpreter": SANDBOX["fleet"]["python_interpreter"],
        "ansible_ssh_common_args": SSH_COMMON_ARGS,
        **host_vars,
    }


def localhost() -> dict[str, Any]:
    return {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}


class Ssh:
    """Commands on one sandbox host over SSH, with the connection sharing Ansible uses (ControlPersist)."""

    def __init__(self, port: int, control_dir: Path) -> None:
        self.port = port
        self.control_path = str(control_dir / f"ssh-{port}")

    def args(self, command: str) -> list[str]:
        return [
            "ssh", "-C", "-o", "ControlMaster=auto", "-o", "ControlPersist=60s", "-o", f"ControlPath={self.control_path}",
            "-i", FLEET_KEY, "-p", str(self.port), *shlex.split(SSH_COMMON_ARGS), "-o", "LogLevel=ERROR", "-o", "BatchMode=yes",
            f"{SANDBOX['fleet']['ssh_user']}@127.0.0.1", command,
        ]  # fmt: skip

    def run(self, command: str, *, stdin: Optional[str] = None) -> float:
        """Run a shell command on the host; its wall-clock time."""
        return run(self.args(command), stdin=stdin, what=f"ssh -p {self.port} {command}")[0]

    def quiet(self, command: str) -> None:
        """Run a clean-up command on the host; its failure is not the benchmark's."""
        subprocess.run(self.args(command), capture_output=True, check=False, timeout=300)

    def close(self) -> None:
        subprocess.run(["ssh", "-o", f"ControlPath={self.control_path}", "-O", "exit", "127.0.0.1"], capture_output=True, check=False)
