# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose hosts: containers with their own root filesystem (debootstrap) reached over SSH on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from .common import DOCKER_SOCKET, FLEET, SANDBOX, SANDBOX_LABEL, SandboxError, log, run, save_state
from .engine import FLEET_ENGINES, docker_answers, ensure_engine

HOST_IMAGE = "stellaops-sandbox/compose-host:bookworm"
HOST_SUITE = "bookworm"
HOST_PACKAGES = ("openssh-server", "python3")
HOST_ROOTFS_TAR = FLEET / "compose-host-bookworm.tar"
FLEET_KEY = FLEET / "id_ed25519"
AUTHORIZED_KEYS = FLEET / "authorized_keys"
HOST_PYTHON = "/usr/bin/python3"
HOST_USER = "root"
HOST_CONTAINER_PREFIX = "stellaops-host-"
MACHINE_ENGINE_SOCKET = "/var/run/docker.sock"
HOST_PLUGIN_PATH = "/usr/libexec/docker/cli-plugins/docker-compose"
HOST_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,40}$")
SSH_OPTIONS = (
    "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
    "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
)  # fmt: skip
# name -> (SSH port on 127.0.0.1, engine: None for the machine's)
FLEET_HOSTS: dict[str, tuple[int, str | None]] = {
    "fleet-1": (2201, None),
    "fleet-2": (2202, "engine-2"),
    "fleet-3": (2203, "engine-3"),
}


def debian_mirror() -> str:
    """The Debian mirror this machine installs from (the first ``URIs:`` of debian.sources)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and line.split()[1:]:
                return line.split()[1]
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            fields = line.split()
            if len(fields) >= 3 and fields[0] == "deb" and not fields[1].startswith("["):
                return fields[1]
    raise SandboxError("no Debian mirror found in /etc/apt/sources.list.d/debian.sources or /etc/apt/sources.list")


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1].replace("\\040", " ") for line in mounts]
    return [point for point in points if point == str(path) or point.startswith(f"{path}/")]


def remove_tree(path: Path) -> None:
    """Remove a directory that debootstrap worked in, after unmounting what it left mounted there."""
    for point in sorted(mounts_under(path), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], check=False)
    if mounts_under(path):
        raise SandboxError(f"{path} still has mounts below it ({', '.join(mounts_under(path))}); unmount them and run again")
    shutil.rmtree(path, ignore_errors=True)


def build_host_rootfs() -> None:
    """Debian bookworm minbase with openssh-server and python3, kept as a tarball for `docker import`."""
    rootfs = FLEET / "rootfs"
    if rootfs.exists():
        remove_tree(rootfs)  # an interrupted build
    FLEET.mkdir(parents=True, exist_ok=True)
    mirror = debian_mirror()
    started = time.monotonic()
    log(f"building the compose host root filesystem with debootstrap from {mirror} (about a minute)")
    logs = SANDBOX / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / "debootstrap.log", "wb") as out:
        built = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={','.join(HOST_PACKAGES)}", HOST_SUITE, str(rootfs), mirror],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    if built.returncode != 0:
        remove_tree(rootfs)
        tail = (logs / "debootstrap.log").read_text(errors="replace")[-2000:]
        raise SandboxError(f"debootstrap failed with exit code {built.returncode}:\n{tail}")
    run(["chroot", str(rootfs), "ssh-keygen", "-A"])
    (rootfs / "run" / "sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    (rootfs / "root" / ".ssh").mkdir(mode=0o700, exist_ok=True)
    # Package caches and lists are not needed on a host that never runs apt.
    for leftover in (rootfs / "var" / "cache" / "apt", rootfs / "var" / "lib" / "apt" / "lists"):
        for item in leftover.glob("*"):
            if item.is_file() and item.name != "lock":
                item.unlink()
        for item in leftover.glob("archives/*.deb"):
            item.unlink()
    tmp = HOST_ROOTFS_TAR.with_suffix(".tar.tmp")
    run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(tmp), "."])
    tmp.replace(HOST_ROOTFS_TAR)
    remove_tree(rootfs)
    log(f"built {HOST_ROOTFS_TAR} ({HOST_ROOTFS_TAR.stat().st_size // 2**20} MiB) in {time.monotonic() - started:.0f} s")


def ensure_host_image() -> str:
    """The compose host image on the machine's engine (imported from the kept tarball); its ID."""
    found = subprocess.run(["docker", "-H", DOCKER_SOCKET, "image", "inspect", "--format", "{{.Id}}", HOST_IMAGE], capture_output=True, text=True, check=False)
    if found.returncode == 0:
        return found.stdout.strip()
    if not HOST_ROOTFS_TAR.exists():
        build_host_rootfs()
    started = time.monotonic()
    run(["docker", "-H", DOCKER_SOCKET, "import", str(HOST_ROOTFS_TAR), HOST_IMAGE])
    image_id = run(["docker", "-H", DOCKER_SOCKET, "image", "inspect", "--format", "{{.Id}} {{.Size}}", HOST_IMAGE]).stdout.split()
    log(f"imported {HOST_IMAGE} ({int(image_id[1]) // 2**20} MiB) in {time.monotonic() - started:.1f} s")
    return image_id[0]


def ensure_fleet_key() -> None:
    """The sandbox's SSH key (ed25519, 0600) and the authorized_keys that every host mounts."""
    FLEET.mkdir(parents=True, exist_ok=True)
    if not FLEET_KEY.exists() or not FLEET_KEY.with_suffix(".pub").exists():
        FLEET_KEY.unlink(missing_ok=True)
        FLEET_KEY.with_suffix(".pub").unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "stellaops-sandbox", "-f", str(FLEET_KEY)])
        log(f"generated the fleet SSH key {FLEET_KEY}")
    os.chmod(FLEET_KEY, 0o600)
    public = FLEET_KEY.with_suffix(".pub").read_text()
    if not AUTHORIZED_KEYS.exists() or AUTHORIZED_KEYS.read_text() != public:
        AUTHORIZED_KEYS.write_text(public)
    os.chmod(AUTHORIZED_KEYS, 0o644)


def host_container(name: str) -> str:
    return f"{HOST_CONTAINER_PREFIX}{name}"


def ssh_args(port: int, *command: str) -> list[str]:
    return ["ssh", "-i", str(FLEET_KEY), "-p", str(port), *SSH_OPTIONS, f"{HOST_USER}@127.0.0.1", *command]


def ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
            return connection.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def compose_plugin() -> Path:
    """The Compose v2 plugin that `make setup` installs."""
    plugin = Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker")) / "cli-plugins" / "docker-compose"
    if not plugin.exists():
        raise SandboxError(f"{plugin} is missing: run 'make setup'")
    return plugin


def container_state(name: str) -> dict[str, str] | None:
    found = subprocess.run(
        ["docker", "-H", DOCKER_SOCKET, "inspect", "--format", '{{.State.Status}} {{index .Config.Labels "org.stellaops.sandbox.spec"}}', name],
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0:
        return None
    status, _separator, spec = found.stdout.strip().partition(" ")
    return {"status": status, "spec": spec}


def start_host(state: dict[str, Any], name: str, port: int, engine_socket: str | None, compose: bool, image_id: str) -> dict[str, Any]:
    """One compose host: a container of the machine's engine running only sshd on 127.0.0.1:PORT.

    Kept as it is when it already runs with the same settings (image, port, engine socket, compose
    plugin and the files mounted); otherwise (re)created. An engine socket path that does not exist
    is not mounted: the host's docker CLI then finds no engine.
    """
    if not HOST_NAME_PATTERN.match(name):
        raise SandboxError(f"host name {name!r}: expected lower-case letters, digits and '-'")
    if not 1024 <= port <= 65535:
        raise SandboxError(f"host {name}: port {port} is outside 1024-65535")
    for other, record in state["hosts"].items():
        if other != name and record["ssh_port"] == port:
            raise SandboxError(f"host {name}: port {port} belongs to host {other}")
    docker_cli = shutil.which("docker")
    if docker_cli is None:
        raise SandboxError("the docker CLI is not installed")
    socket_path = engine_socket.removeprefix("unix://") if engine_socket else None
    mounts = [
        (str(AUTHORIZED_KEYS), f"/{HOST_USER}/.ssh/authorized_keys"),
        (os.path.realpath(docker_cli), "/usr/bin/docker"),
    ]
    if compose:
        mounts.append((str(compose_plugin()), HOST_PLUGIN_PATH))
    if socket_path and os.path.exists(socket_path):
        mounts.append((socket_path, "/var/run/docker.sock"))
    elif socket_path:
        log(f"host {name}: {socket_path} does not exist; no engine socket is mounted")
    # The settings and the identity (inode) of every mounted file: a restarted engine has a new
    # socket, and a bind mount of the old one would no longer answer.
    identity = [image_id, port, [(source, target, os.stat(source).st_ino) for source, target in mounts]]
    spec = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    container = host_container(name)
    current = container_state(container)
    if current and current["status"] == "running" and current["spec"] == spec and ssh_banner(port):
        log(f"host {name} runs (container {container}, ssh 127.0.0.1:{port})")
    else:
        if current:
            run(["docker", "-H", DOCKER_SOCKET, "rm", "-f", "-v", container])
        if ssh_banner(port):
            raise SandboxError(f"host {name}: something else already answers on 127.0.0.1:{port}")
        args = [
            "docker", "-H", DOCKER_SOCKET, "run", "-d", "--network", "host", "--name", container,
            "--label", f"{SANDBOX_LABEL}=compose-host", "--label", f"{SANDBOX_LABEL}.host={name}",
            "--label", f"{SANDBOX_LABEL}.spec={spec}",
        ]  # fmt: skip
        for source, target in mounts:
            readonly = "" if target == "/var/run/docker.sock" else ",readonly"
            args += ["--mount", f"type=bind,source={source},target={target}{readonly}"]
        args += [HOST_IMAGE, "/usr/sbin/sshd", "-D", "-e", "-p", str(port), "-o", "ListenAddress=127.0.0.1", "-o", "PasswordAuthentication=no"]
        run(args)
        deadline = time.monotonic() + 30
        while not ssh_banner(port):
            status = container_state(container)
            if time.monotonic() > deadline or not status or status["status"] != "running":
                logs = subprocess.run(["docker", "-H", DOCKER_SOCKET, "logs", "--tail", "20", container], capture_output=True, text=True, check=False)
                raise SandboxError(f"host {name}: sshd does not answer on 127.0.0.1:{port}: {logs.stdout}{logs.stderr}")
            time.sleep(0.1)
        log(f"started host {name} (container {container}, ssh 127.0.0.1:{port})")
    record = {
        "name": name,
        "container": container,
        "ssh_host": "127.0.0.1",
        "ssh_port": port,
        "ssh_user": HOST_USER,
        "ssh_private_key_file": str(FLEET_KEY),
        "python_interpreter": HOST_PYTHON,
        "engine_socket": socket_path,
        "docker_host": f"unix://{socket_path}" if socket_path else None,
        "engine_socket_mounted": any(target == "/var/run/docker.sock" for _source, target in mounts),
        "compose": compose,
    }
    state["hosts"][name] = record
    save_state(state)
    return record


def check_ssh(records: list[dict[str, Any]]) -> None:
    """Log in to every host with the sandbox key (in parallel)."""
    logins = [(record, subprocess.Popen(ssh_args(record["ssh_port"], "true"), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)) for record in records]
    for record, login in logins:
        _out, err = login.communicate(timeout=60)
        if login.returncode != 0:
            raise SandboxError(f"host {record['name']}: SSH login to 127.0.0.1:{record['ssh_port']} failed: {err.strip()}")


def remove_host(name: str, state: dict[str, Any]) -> None:
    container = host_container(name)
    if docker_answers() and container_state(container) is not None:
        run(["docker", "-H", DOCKER_SOCKET, "rm", "-f", "-v", container])
        log(f"removed host {name} (container {container})")
    state["hosts"].pop(name, None)
    save_state(state)


def ensure_fleet(state: dict[str, Any]) -> dict[str, Any]:
    """The host image, the SSH key, engines 2 and 3, and hosts fleet-1..3; the fleet part of sandbox.json."""
    image_id = ensure_host_image()
    ensure_fleet_key()
    engines = {name: ensure_engine(spec, state) for name, spec in FLEET_ENGINES.items()}
    hosts = []
    for name, (port, engine) in FLEET_HOSTS.items():
        socket_path = FLEET_ENGINES[engine].socket if engine else Path(MACHINE_ENGINE_SOCKET)
        record = start_host(state, name, port, str(socket_path), compose=True, image_id=image_id)
        hosts.append({**record, "engine": engine or "machine"})
    check_ssh(hosts)
    return {
        "image": HOST_IMAGE,
        "rootfs_tarball": str(HOST_ROOTFS_TAR),
        "ssh_private_key_file": str(FLEET_KEY),
        "ssh_user": HOST_USER,
        "python_interpreter": HOST_PYTHON,
        "hosts": hosts,
        "engines": {
            name: {
                key: record.get(key)
                for key in ("docker_host", "socket", "data_root", "exec_root", "storage_driver", "bridge", "bridge_address", "address_pool")
            }
            | {"pid": state["pids"].get(name)}
            for name, record in engines.items()
        },
    }
