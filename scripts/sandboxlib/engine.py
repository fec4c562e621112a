# SPDX-License-Identifier: GPL-3.0-or-later
"""Docker engines: the machine's (started only when none answers) and the fleet's own, each with its bridge and pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import DOCKER_SOCKET, FLEET, SANDBOX, SANDBOX_LABEL, SandboxError, log, pid_alive, run, save_state, start_background, stop_pid

# overlay2 shares image layers between containers; vfs (the fallback) copies them for each one.
STORAGE_DRIVERS = ("overlay2", "vfs")


@dataclass(frozen=True)
class EngineSpec:
    """A Docker engine of the fleet besides the machine's: its own socket, roots, bridge and pool."""

    name: str
    bridge: str
    bridge_address: str
    address_pool: str

    @property
    def root(self) -> Path:
        return FLEET / "engines" / self.name.removeprefix("engine-")

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def docker_host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"


# Subnets of the engines that the sandbox starts. Each has a pool of its own: Docker's default pools
# (172.17-31.x and 192.168.x, 31 networks) are shared by every engine of the machine, and the br-*
# bridges of networks that a stopped engine left behind keep their subnets out of use.
MACHINE_ENGINE_POOL = "base=10.212.0.0/16,size=24"
FLEET_ENGINES = {
    "engine-2": EngineSpec("engine-2", "stellaops-fl2", "10.221.0.1/24", "base=10.222.0.0/16,size=24"),
    "engine-3": EngineSpec("engine-3", "stellaops-fl3", "10.231.0.1/24", "base=10.232.0.0/16,size=24"),
}


def docker_answers(host: str = DOCKER_SOCKET) -> bool:
    return subprocess.run(["docker", "-H", host, "info"], capture_output=True, check=False).returncode == 0


def storage_driver(host: str = DOCKER_SOCKET) -> str:
    return run(["docker", "-H", host, "info", "--format", "{{.Driver}}"]).stdout.strip()


def pid_from_file(pid_file: Path) -> int:
    try:
        return int(pid_file.read_text().strip() or 0)
    except (OSError, ValueError):
        return 0


def runs_with(pid: int, argument: str) -> bool:
    """Whether process ``pid`` runs with ``argument`` in its command line: pid numbers are reused."""
    try:
        return pid_alive(pid) and argument in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop_managed_containerd(name: str, exec_root: Path) -> None:
    """Stop the containerd that our dockerd started under ``exec_root``, if it outlived that dockerd."""
    pid = pid_from_file(exec_root / "containerd" / "containerd.pid")
    if not runs_with(pid, str(exec_root)):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    log(f"stopped the containerd of {name} (pid {pid})")


def remove_stale_pidfiles(name: str, pidfile_argument: str, exec_root: Path) -> None:
    """Remove the pid files of a dockerd and its containerd that were killed (machine or session stop).

    Left behind, they make a new dockerd refuse to start, or wait for a containerd that is gone
    when their numbers now name other processes.
    """
    pid_files = {
        Path(pidfile_argument.removeprefix("--pidfile=")): pidfile_argument,
        exec_root / "containerd" / "containerd.pid": str(exec_root),
    }
    for pid_file, argument in pid_files.items():
        pid = pid_from_file(pid_file)
        if pid_file.exists() and not runs_with(pid, argument):
            pid_file.unlink()
            log(f"{name}: removed {pid_file}; its process {pid} no longer runs")


def start_dockerd(name: str, args: list[str], docker_host: str, exec_root: Path, state: dict[str, Any]) -> str:
    """Start ``dockerd ARGS`` with overlay2, or with vfs when overlay2 does not start; return the driver."""
    remove_stale_pidfiles(name, next(arg for arg in args if arg.startswith("--pidfile=")), exec_root)
    for driver in STORAGE_DRIVERS:
        pid = start_background(name, ["dockerd", *args, f"--storage-driver={driver}"], state)
        deadline = time.monotonic() + 90
        while pid_alive(pid) and time.monotonic() < deadline and not docker_answers(docker_host):
            time.sleep(0.3)
        if pid_alive(pid) and docker_answers(docker_host):
            log(f"{name} answers on {docker_host} (storage driver {driver})")
            return driver
        if pid_alive(pid):
            stop_pid(name, state, timeout=30)
        else:
            state["pids"].pop(name, None)
            save_state(state)
        stop_managed_containerd(name, exec_root)
        log(f"{name} did not start with storage driver {driver}; see {SANDBOX / 'logs' / (name + '.log')}")
    raise SandboxError(f"{name} started with none of the storage drivers {', '.join(STORAGE_DRIVERS)}; see {SANDBOX / 'logs'}")


def ensure_docker(state: dict[str, Any]) -> None:
    if docker_answers():
        driver = storage_driver()
        ours = pid_alive(state["pids"].get("dockerd"))
        log(f"docker engine answers (storage driver {driver}" + (", started by the sandbox)" if ours else ")"))
        if driver == "vfs" and ours:
            log("it copies every image layer for each container: 'make sandbox-down' then 'make sandbox-up' restarts it with overlay2")
        return
    data_root = SANDBOX / "docker"
    data_root.mkdir(parents=True, exist_ok=True)
    start_dockerd(
        "dockerd",
        [
            "--iptables=false",
            f"--host={DOCKER_SOCKET}",
            f"--data-root={data_root}",
            f"--pidfile={SANDBOX / 'dockerd.pid'}",
            f"--default-address-pool={MACHINE_ENGINE_POOL}",
        ],
        DOCKER_SOCKET,
        Path("/var/run/docker"),
        state,
    )


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def ensure_bridge(spec: EngineSpec, record: dict[str, Any]) -> None:
    """The engine's default bridge: dockerd creates only docker0 itself, which is the machine engine's."""
    if ip("link", "show", spec.bridge, check=False).returncode != 0:
        network = spec.bridge_address.rsplit(".", 1)[0] + "."
        pool = spec.address_pool.split("=", 1)[1].split(".", 2)
        routes = ip("-4", "route", "show").stdout
        for line in routes.splitlines():
            device = line.split(" dev ", 1)[1].split()[0] if " dev " in line else ""
            # Networks that this engine made earlier keep their br-* bridges while it is stopped.
            if line.startswith(network) or (line.startswith(f"{pool[0]}.{pool[1]}.") and not device.startswith("br-")):
                raise SandboxError(f"{line.split()[0]} is already routed on this machine; {spec.name} needs it:\n{routes}")
        ip("link", "add", "name", spec.bridge, "type", "bridge")
        record["bridge_created"] = True
        log(f"created bridge {spec.bridge} ({spec.bridge_address}) for {spec.name}")
    if spec.bridge_address not in ip("-4", "addr", "show", "dev", spec.bridge).stdout:
        ip("addr", "add", spec.bridge_address, "dev", spec.bridge)
    ip("link", "set", spec.bridge, "up")


def ensure_engine(spec: EngineSpec, state: dict[str, Any]) -> dict[str, Any]:
    """A dockerd of its own for one fleet host; started when its socket does not answer."""
    record: dict[str, Any] = state["engines"].setdefault(spec.name, {})
    record.update(
        docker_host=spec.docker_host,
        socket=str(spec.socket),
        data_root=str(spec.root / "data"),
        exec_root=str(spec.exec_root),
        bridge=spec.bridge,
        bridge_address=spec.bridge_address,
        address_pool=spec.address_pool,
    )
    if docker_answers(spec.docker_host):
        record["storage_driver"] = storage_driver(spec.docker_host)
        save_state(state)
        log(f"{spec.name} answers on {spec.docker_host}" + (" (started by the sandbox)" if pid_alive(state["pids"].get(spec.name)) else ""))
        return record
    for path in (spec.root, spec.root / "data", spec.exec_root):
        path.mkdir(parents=True, exist_ok=True)
    longest = spec.exec_root / "containerd" / "containerd.sock.ttrpc"
    if len(str(longest)) > 100:
        raise SandboxError(f"{longest} is longer than a unix socket path may be; move the checkout to a shorter path")
    ensure_bridge(spec, record)
    save_state(state)
    # Its own key file: the engine ID that `docker info` reports comes from it (docker 20.10).
    # live-restore: without it, a dockerd with default-address-pools that restarts over its own
    # data root deletes the interface docker0 (moby's removeDefaultBridgeInterface), which belongs
    # to the machine's engine. `down` removes every container of this engine before stopping it.
    config = spec.root / "daemon.json"
    config.write_text(json.dumps({"deprecated-key-path": str(spec.root / "key.json"), "live-restore": True}, indent=2) + "\n")
    had_docker0 = ip("link", "show", "docker0", check=False).returncode == 0
    record["storage_driver"] = start_dockerd(
        spec.name,
        [
            f"--config-file={config}",
            f"--host={spec.docker_host}",
            f"--data-root={spec.root / 'data'}",
            f"--exec-root={spec.exec_root}",
            f"--pidfile={spec.root / 'dockerd.pid'}",
            "--iptables=false",
            f"--bridge={spec.bridge}",
            f"--default-address-pool={spec.address_pool}",
        ],
        spec.docker_host,
        spec.exec_root,
        state,
    )
    save_state(state)
    if had_docker0 and ip("link", "show", "docker0", check=False).returncode != 0:
        raise SandboxError(f"starting {spec.name} removed the interface docker0 of the machine's engine; see {SANDBOX / 'logs'}")
    return record


def remove_labelled_containers(docker_host: str) -> None:
    for label in ("stella.release.id", SANDBOX_LABEL):
        ids = run(["docker", "-H", docker_host, "ps", "-aq", "--filter", f"label={label}"]).stdout.split()
        if ids:
            run(["docker", "-H", docker_host, "rm", "-f", "-v", *ids])
            log(f"removed {len(ids)} sandbox containers from {docker_host}")


def stop_engine(name: str, state: dict[str, Any]) -> None:
    """Stop a fleet engine that the sandbox started (by its recorded PID) and delete the bridge it created."""
    record = state["engines"].get(name, {})
    if pid_alive(state["pids"].get(name)) and docker_answers(record["docker_host"]):
        # Everything on this engine belongs to the sandbox; with live-restore a container left
        # running would outlive the dockerd. Unused networks and their br-* bridges go too.
        ids = run(["docker", "-H", record["docker_host"], "ps", "-aq"]).stdout.split()
        if ids:
            run(["docker", "-H", record["docker_host"], "rm", "-f", "-v", *ids])
            log(f"removed {len(ids)} containers from {name}")
        run(["docker", "-H", record["docker_host"], "network", "prune", "-f"])
    stop_pid(name, state, timeout=60)
    if record.get("exec_root"):
        stop_managed_containerd(name, Path(record["exec_root"]))
    if record.get("bridge_created"):
        ip("link", "del", record["bridge"], check=False)
        log(f"deleted bridge {record['bridge']}")
    state["engines"].pop(name, None)
    save_state(state)
