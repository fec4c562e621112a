# SPDX-License-Identifier: GPL-3.0-or-later
"""Paths, ports and names of the sandbox, its state file and lock, and the process helpers every part uses."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[2]
SANDBOX = Path(os.environ.get("STELLAOPS_SANDBOX_DIR", ROOT / ".sandbox"))
STATE_FILE = SANDBOX / "state.json"
INFO_FILE = SANDBOX / "sandbox.json"
VENV_BIN = ROOT / ".venv" / "bin"
# Every listening port lies below the kernel's ephemeral range (32768-60999 by default): a daemon that
# listens inside it fails to bind whenever an outgoing connection (an image push, an SSH login) happens to
# hold the same local port at that moment.
REGISTRY_PORT = 5000
POSTGRES_PORT = 15432
REDIS_PORT = 16379
S3_PORT = 17000
PROMETHEUS_PORT = 17090
METRICS_PORT = 17091
PG_BIN = Path("/usr/lib/postgresql/15/bin")
DOCKER_SOCKET = "unix:///var/run/docker.sock"
REGISTRY = f"127.0.0.1:{REGISTRY_PORT}"
REPOSITORY_PREFIX = f"{REGISTRY}/stellaops"
SANDBOX_LABEL = "org.stellaops.sandbox"
# version -> (channels it is published on, healthy?)
RELEASES: dict[str, tuple[tuple[str, ...], bool]] = {
    "2025.09.0": (("stable",), True),
    "2025.10.0": (("stable", "airgap"), True),
    "2025.11.0": (("edge",), True),
    # Deliberately broken: its health endpoint answers 404. Kept out of the channel directory so
    # that "newest release of a channel" never picks it; rollback tests name it explicitly.
    "2025.11.1": (("edge",), False),
}
EVIDENCE_BUCKET = "stellaops-evidence"
BACKUP_BUCKET = "stellaops-backups"
DEBIAN_PACKAGES = {
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "busybox": "busybox-static",
    str(PG_BIN / "initdb"): "postgresql-15",
    "debootstrap": "debootstrap",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
    "ip": "iproute2",
    "redis-server": "redis-server",
}
# The fleet: compose hosts reached over SSH.
FLEET = SANDBOX / "fleet"


def log(message: str) -> None:
    print(f"[sandbox] {message}", flush=True)


class SandboxError(Exception):
    pass


def load_state() -> dict[str, Any]:
    state: dict[str, Any] = json.loads(STATE_FILE.read_text()) if STATE_FILE.exists() else {}
    for key in ("pids", "engines", "hosts"):
        state.setdefault(key, {})
    return state


@contextlib.contextmanager
def locked() -> Iterator[None]:
    """One command at a time changes the sandbox (a `host-up` from a test waits for a running `up`)."""
    SANDBOX.mkdir(parents=True, exist_ok=True)
    with open(SANDBOX / "sandbox.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def save_state(state: dict[str, Any]) -> None:
    SANDBOX.mkdir(parents=True, exist_ok=True)
    tmp = STATE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
    tmp.replace(STATE_FILE)


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not running; /proc tells.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def start_background(name: str, args: list[str], state: dict[str, Any], env: dict[str, str] | None = None) -> int:
    logs = SANDBOX / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
    state["pids"][name] = proc.pid
    save_state(state)
    log(f"started {name} (pid {proc.pid})")
    return proc.pid


def stop_pid(name: str, state: dict[str, Any], timeout: float = 30.0) -> None:
    pid = state["pids"].pop(name, None)
    save_state(state)
    if not pid_alive(pid):
        return
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    log(f"stopped {name} (pid {pid})")


def require_free_port(port: int, service: str) -> None:
    """Fail with one sentence, before starting ``service``, when another process holds its port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise SandboxError(f"{service} cannot start: 127.0.0.1:{port} is taken by another process ({error.strerror})") from None


def wait_for(what: str, probe: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return
        time.sleep(0.3)
    raise SandboxError(f"{what} did not become ready within {timeout:.0f}s; see {SANDBOX / 'logs'}")


def http_ok(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, headers=headers or {}), timeout=2):
            return True
    except (urllib.error.URLError, OSError):
        return False


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=True, text=True, capture_output=True, **kwargs)  # noqa: S603


def ensure_packages() -> None:
    missing = sorted({pkg for binary, pkg in DEBIAN_PACKAGES.items() if not (shutil.which(binary) or Path(binary).exists())})
    if not shutil.which("docker"):
        missing.append("docker.io")
    if not missing:
        return
    log(f"installing Debian packages: {' '.join(sorted(set(missing)))}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *sorted(set(missing))], check=True, env=env)
