# SPDX-License-Identifier: GPL-3.0-or-later
"""A Kubernetes API emulator of a test's own (scripts/kube_emulator.py), on a free loopback port.

It is an emulator, not a cluster: no Pods run and no images are pulled. With ``ready`` (the default)
it fakes the controllers, so that ``helm --wait``, hook Jobs and ``--atomic`` /
``--rollback-on-failure`` complete. Use it in a test module with

    from kube import KubeEmulator, kube_emulator  # noqa: F401  (the fixture)

    def test_x(kube_emulator: KubeEmulator) -> None:
        helm("install", ..., kubeconfig=kube_emulator.kubeconfig)

``os.fspath(kube_emulator)`` is the kubeconfig path, so the fixture's value also serves where a
path is expected. The emulator is stopped by the PID this module started: SIGTERM, then SIGKILL
after 1 s (open watch streams can hold its exit). Helm and ansible-playbook children are started
in process groups of their own by :func:`run_killable`, which kills the whole group on a timeout
(helm 4 in a long wait ignores SIGTERM, and killing ansible-playbook leaves its helm child).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
TOOLS = Path(os.environ.get("STELLAOPS_TOOLS_DIR", ROOT / ".tools" / "bin"))
EMULATOR = ROOT / "scripts" / "kube_emulator.py"
# The emulator imports aiohttp and kmock: seconds on a loaded machine.
START_TIMEOUT = 60.0


@dataclass
class KubeEmulator:
    """A running emulator: its kubeconfig, port, PID and log."""

    kubeconfig: Path
    port: int
    pid: int
    log: Path
    context: str = "kube-emulator"

    @property
    def server(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __fspath__(self) -> str:
        return str(self.kubeconfig)

    def env(self) -> dict[str, str]:
        """The environment for helm, kubectl and ansible-playbook: KUBECONFIG and the helm tools on PATH."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": f"{TOOLS}:{VENV_BIN}:{os.environ.get('PATH', '')}", "LC_ALL": "C"}

    def requests_log(self) -> str:
        return self.log.read_text(errors="replace")


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
            return True
    except OSError:
        return False


def start_emulator(directory: Path, ready: bool = True) -> tuple[KubeEmulator, subprocess.Popen[bytes]]:
    """Start an emulator writing its kubeconfig, port and log under ``directory``; wait until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    port_file, kubeconfig, log = directory / "port", directory / "kubeconfig", directory / "emulator.log"
    args = [sys.executable, str(EMULATOR), "--port", "0", "--port-file", str(port_file), "--kubeconfig", str(kubeconfig)]
    if ready:
        args.append("--ready")
    with open(log, "wb") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not (port_file.exists() and _answers(int(port_file.read_text()))):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_emulator(process)
            raise RuntimeError(f"the Kubernetes API emulator did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    return KubeEmulator(kubeconfig, int(port_file.read_text()), process.pid, log), process


def stop_emulator(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the PID we started, SIGKILL when it is still there after 1 s; then the containers of its Jobs that ran in
    docker (labelled with that PID), should it have been killed before it removed them."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    mine = f"label=kube-emulator.pid={process.pid}"
    left = subprocess.run(["docker", "ps", "-aq", "--filter", mine], capture_output=True, text=True, check=False, timeout=30).stdout.split()
    if left:
        subprocess.run(["docker", "rm", "--force", *left], capture_output=True, check=False, timeout=60)


@pytest.fixture
def kube_emulator(tmp_path: Path) -> Iterator[KubeEmulator]:
    """A fresh emulator with fake controllers (--ready) for one test."""
    emulator, process = start_emulator(tmp_path / "kube-emulator", ready=True)
    try:
        yield emulator
    finally:
        stop_emulator(process)


@pytest.fixture
def kube_emulator_plain(tmp_path: Path) -> Iterator[KubeEmulator]:
    """A fresh emulator without fake controllers: nothing ever becomes ready, hooks never finish."""
    emulator, process = start_emulator(tmp_path / "kube-emulator-plain", ready=False)
    try:
        yield emulator
    finally:
        stop_emulator(process)


def run_killable(args: list[str], env: dict[str, str], timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command in a process group of its own; on timeout SIGKILL the whole group, then fail."""
    process = subprocess.Popen(args, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"{' '.join(args[:3])}... did not finish within {timeout:.0f}s and was killed: {stderr[-2000:]}")
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)
