# SPDX-License-Identifier: GPL-3.0-or-later
"""The local sandbox: real components on 127.0.0.1 that the collection drives and the tests use.

    sandbox.py up       start everything (idempotent), write .sandbox/sandbox.json
    sandbox.py status   say what runs; exit 0 when every part answers, 3 otherwise
    sandbox.py down     stop what `up` started (by recorded PID) and remove sandbox containers
    sandbox.py host-up NAME --port P [--engine-socket PATH] [--no-compose]
                        start (or keep) one compose host container reached over SSH on 127.0.0.1:P
    sandbox.py host-down NAME
                        remove that host container

Parts: a Docker engine (started only when none answers), a container registry holding the
sandbox releases (built here from busybox, since nothing can be pulled), PostgreSQL with a
`stellaops` database, S3-compatible object storage (moto) with sample evidence bundles, and
release manifests for the channels edge, stable and airgap written with the digests the
registry returned.

The fleet: compose hosts reached over real SSH. Each host is a container of the machine's engine
(host network, its own root filesystem: Debian bookworm minbase with openssh-server and python3,
built once with debootstrap) running only sshd on 127.0.0.1:PORT, with the machine's docker CLI
and the Compose v2 plugin mounted read-only and a Docker engine socket mounted at
/var/run/docker.sock. fleet-1 uses the machine's engine; fleet-2 and fleet-3 each use a dockerd
of their own that `up` starts (own socket, data root, exec root, bridge and address pool).

This file is the command line and the order of `up` and `down`; the parts are in scripts/sandboxlib/:
common (paths, ports, the state file and its lock, process helpers), engine (Docker engines),
releases (registry, release images and manifests), services (PostgreSQL, object storage, Redis,
Prometheus, the Kubernetes API emulator) and fleet (the compose hosts).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

# scripts.sandboxlib from the repository root, as the tools import plugins.module_utils
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.sandboxlib.common import (  # noqa: E402
    BACKUP_BUCKET,
    DOCKER_SOCKET,
    EVIDENCE_BUCKET,
    INFO_FILE,
    PG_BIN,
    POSTGRES_PORT,
    REDIS_PORT,
    REGISTRY,
    RELEASES,
    REPOSITORY_PREFIX,
    S3_PORT,
    SANDBOX,
    SandboxError,
    ensure_packages,
    http_ok,
    load_state,
    locked,
    log,
    pid_alive,
    run,
    stop_pid,
)
from scripts.sandboxlib.engine import (  # noqa: E402
    FLEET_ENGINES,
    docker_answers,
    ensure_docker,
    remove_labelled_containers,
    stop_engine,
    stop_managed_containerd,
    storage_driver,
)
from scripts.sandboxlib.fleet import (  # noqa: E402
    FLEET_HOSTS,
    MACHINE_ENGINE_SOCKET,
    check_ssh,
    ensure_fleet,
    ensure_fleet_key,
    ensure_host_image,
    host_container,
    remove_host,
    ssh_banner,
    start_host,
)
from scripts.sandboxlib.releases import COMPONENTS, ensure_images, ensure_registry, write_manifests  # noqa: E402
from scripts.sandboxlib.services import (  # noqa: E402
    ensure_kube_emulator,
    ensure_object_storage,
    ensure_postgres,
    ensure_prometheus,
    ensure_redis,
    kube_emulator_ready,
    metrics_exporter_ready,
    postgres_ready,
    prometheus_ready,
    redis_ready,
    stop_postgres,
)


def secret(name: str) -> str:
    directory = SANDBOX / "secrets"
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / name
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(16))
    return path.read_text().strip()


def up() -> int:
    SANDBOX.mkdir(parents=True, exist_ok=True)
    # postgres must be able to reach its data directory below the checkout.
    os.chmod(SANDBOX, 0o755)  # noqa: S103
    state = load_state()
    ensure_packages()
    ensure_docker(state)
    ensure_registry(state)
    digests = ensure_images()
    manifests = write_manifests(digests)
    pg_password = secret("postgres_password")
    ensure_postgres(state, pg_password)
    s3_access, s3_secret = "stellaops-sandbox", secret("s3_secret_key")
    ensure_object_storage(state, s3_access, s3_secret)
    prometheus = ensure_prometheus(state)
    kubernetes = ensure_kube_emulator(state)
    ensure_redis(state)
    fleet = ensure_fleet(state)
    info = {
        "root": str(SANDBOX),
        "docker_host": DOCKER_SOCKET,
        "storage_driver": storage_driver(),
        "registry": REGISTRY,
        "repository_prefix": REPOSITORY_PREFIX,
        "components": list(COMPONENTS),
        "releases": {
            version: {"channels": list(channels), "healthy": healthy, "digests": digests[version]}
            for version, (channels, healthy) in RELEASES.items()
        },
        "releases_dir": str(SANDBOX / "releases"),
        "faulty_releases_dir": str(SANDBOX / "releases-faulty"),
        "manifests": manifests,
        "postgres": {
            "host": "127.0.0.1",
            "port": POSTGRES_PORT,
            "database": "stellaops",
            "user": "stellaops",
            "password_file": str(SANDBOX / "secrets" / "postgres_password"),
            "admin_user": "postgres",
            "socket_dir": str(SANDBOX / "postgres" / "run"),
            "bin_dir": str(PG_BIN),
        },
        "s3": {
            "endpoint": f"http://127.0.0.1:{S3_PORT}",
            "region": "us-east-1",
            "access_key": s3_access,
            "secret_key_file": str(SANDBOX / "secrets" / "s3_secret_key"),
            "evidence_bucket": EVIDENCE_BUCKET,
            "backup_bucket": BACKUP_BUCKET,
        },
        "redis": {"host": "127.0.0.1", "port": REDIS_PORT},
        "prometheus": prometheus,
        "kubernetes": kubernetes,
        "fleet": fleet,
    }
    INFO_FILE.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    log(f"ready: {INFO_FILE}")
    return 0


def remove_sandbox_containers() -> None:
    if docker_answers():
        remove_labelled_containers(DOCKER_SOCKET)


def down() -> int:
    state = load_state()
    for name in list(state["hosts"]):
        remove_host(name, state)
    remove_sandbox_containers()
    for name in list(state["engines"]):
        stop_engine(name, state)
    stop_pid("prometheus", state)
    # The emulator can hold its exit while watch streams are open: SIGKILL after 1 s.
    stop_pid("kube-emulator", state, timeout=1.0)
    stop_pid("metrics-exporter", state)
    stop_pid("s3", state)
    stop_pid("redis", state)
    stop_postgres(state)
    stop_pid("registry", state)
    started_dockerd = pid_alive(state["pids"].get("dockerd"))
    if started_dockerd and docker_answers():
        # Its data root is the sandbox's: every network on it is the sandbox's, and a network left
        # there would keep its br-* bridge and subnet after the engine stops.
        run(["docker", "-H", DOCKER_SOCKET, "network", "prune", "-f"])
    stop_pid("dockerd", state, timeout=60)
    if started_dockerd:
        stop_managed_containerd("dockerd", Path("/var/run/docker"))
    INFO_FILE.unlink(missing_ok=True)
    log("down")
    return 0


def host_up(name: str, port: int, engine_socket: str, compose: bool) -> int:
    state = load_state()
    if not docker_answers():
        raise SandboxError("the machine's Docker engine does not answer: run 'make sandbox-up'")
    image_id = ensure_host_image()
    ensure_fleet_key()
    record = start_host(state, name, port, engine_socket, compose=compose, image_id=image_id)
    check_ssh([record])
    print(json.dumps(record, sort_keys=True))
    return 0


def host_down(name: str) -> int:
    state = load_state()
    remove_host(name, state)
    return 0


def status() -> int:
    state = load_state()
    checks = {
        "docker": docker_answers(),
        "registry": http_ok(f"http://{REGISTRY}/v2/"),
        "postgres": postgres_ready() if (PG_BIN / "pg_isready").exists() else False,
        "prometheus": prometheus_ready(),
        "metrics": metrics_exporter_ready(),
        "s3": http_ok(f"http://127.0.0.1:{S3_PORT}/moto-api/"),
        "redis": redis_ready(),
        "kubernetes": kube_emulator_ready(),
    }
    names = {"docker": "dockerd", "registry": "registry", "postgres": "postgres", "s3": "s3", "redis": "redis"}
    names.update(prometheus="prometheus", metrics="metrics-exporter", kubernetes="kube-emulator")
    for name, spec in FLEET_ENGINES.items():
        checks[name] = docker_answers(spec.docker_host)
        names[name] = name
    for part, ok in checks.items():
        pid = state["pids"].get(names[part])
        owner = f"pid {pid}, started by the sandbox" if pid_alive(pid) else "not started by the sandbox"
        print(f"{part:<9} {'up' if ok else 'DOWN':<5} ({owner})")
    hosts = {name: port for name, (port, _engine) in FLEET_HOSTS.items()}
    hosts.update({name: record["ssh_port"] for name, record in state["hosts"].items()})
    for name, port in hosts.items():
        checks[name] = ssh_banner(port)
        print(f"{name:<9} {'up' if checks[name] else 'DOWN':<5} (sshd on 127.0.0.1:{port}, container {host_container(name)})")
    return 0 if all(checks.values()) else 3


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=Path(argv[0]).name, description="The local sandbox on 127.0.0.1.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="start everything (idempotent), write .sandbox/sandbox.json")
    commands.add_parser("down", help="stop what up started (by recorded PID), remove sandbox containers and hosts")
    commands.add_parser("status", help="say what answers; exit 3 when a part does not")
    host = commands.add_parser("host-up", help="start (or keep) one compose host reached over SSH on 127.0.0.1:PORT")
    host.add_argument("name", help="host name; the container is stellaops-host-NAME")
    host.add_argument("--port", type=int, required=True, help="sshd port on 127.0.0.1")
    host.add_argument(
        "--engine-socket",
        default=MACHINE_ENGINE_SOCKET,
        help=f"Docker engine socket on the machine, mounted at /var/run/docker.sock (default {MACHINE_ENGINE_SOCKET}); "
        "a path that does not exist is not mounted",
    )
    host.add_argument("--no-compose", dest="compose", action="store_false", help="without the Compose v2 plugin")
    gone = commands.add_parser("host-down", help="remove a host started by host-up")
    gone.add_argument("name")
    args = parser.parse_args(argv[1:])
    try:
        if args.command == "status":
            return status()
        with locked():
            if args.command == "up":
                return up()
            if args.command == "down":
                return down()
            if args.command == "host-up":
                return host_up(args.name, args.port, args.engine_socket, args.compose)
            return host_down(args.name)
    except (SandboxError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or ""
        print(f"[sandbox] error: {error} {detail}".strip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
