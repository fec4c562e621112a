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
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
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

COMPONENTS = ("authority", "signer", "attestor", "scanner-web", "scheduler", "notify")
# version -> (channels it is published on, healthy?)
RELEASES: dict[str, tuple[tuple[str, ...], bool]] = {
    "2025.09.0": (("stable",), True),
    "2025.10.0": (("stable", "airgap"), True),
    "2025.11.0": (("edge",), True),
    # Deliberately broken: its health endpoint answers 404. Kept out of the channel directory so
    # that "newest release of a channel" never picks it; rollback tests name it explicitly.
    "2025.11.1": (("edge",), False),
}
RELEASE_DATES = {
    "2025.09.0": "2025-09-15T00:00:00Z",
    "2025.10.0": "2025-10-20T00:00:00Z",
    "2025.11.0": "2025-11-10T00:00:00Z",
    "2025.11.1": "2025-11-12T00:00:00Z",
}
EVIDENCE_BUCKET = "stellaops-evidence"
BACKUP_BUCKET = "stellaops-backups"
BUSYBOX_APPLETS = ("sh", "httpd", "wget", "cat", "echo", "sleep", "ls", "nc", "env", "true", "false", "head", "mkdir", "sha256sum", "cut", "tr")
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
# overlay2 shares image layers between containers; vfs (the fallback) copies them for each one.
STORAGE_DRIVERS = ("overlay2", "vfs")

# The fleet: compose hosts reached over SSH.
FLEET = SANDBOX / "fleet"
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
# name -> (SSH port on 127.0.0.1, engine: None for the machine's)
FLEET_HOSTS: dict[str, tuple[int, str | None]] = {
    "fleet-1": (2201, None),
    "fleet-2": (2202, "engine-2"),
    "fleet-3": (2203, "engine-3"),
}


def log(message: str) -> None:
    print(f"[sandbox] {message}", flush=True)


class SandboxError(Exception):
    pass


# --------------------------------------------------------------------------- state and processes


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


# --------------------------------------------------------------------------- Debian packages


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


# --------------------------------------------------------------------------- Docker engine


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


# --------------------------------------------------------------------------- registry and images


def ensure_registry(state: dict[str, Any]) -> None:
    if http_ok(f"http://{REGISTRY}/v2/"):
        log(f"registry answers on {REGISTRY}")
        return
    root = SANDBOX / "registry"
    (root / "data").mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {REGISTRY}\n"
    )
    start_background("registry", ["docker-registry", "serve", str(config)], state)
    wait_for("registry", lambda: http_ok(f"http://{REGISTRY}/v2/"))


def registry_digest(repository: str, tag: str) -> str | None:
    """The manifest digest the registry reports for ``repository:tag``, or None."""
    request = urllib.request.Request(
        f"http://{REGISTRY}/v2/{repository}/manifests/{tag}",
        method="HEAD",
        headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.headers.get("Docker-Content-Digest")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def busybox_rootfs() -> bytes:
    """A minimal root filesystem (busybox-static and its applets) as a tar archive."""
    busybox = shutil.which("busybox")
    if not busybox:
        raise SandboxError("busybox is not installed (Debian package busybox-static)")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for directory in ("bin", "tmp", "www", "etc"):
            info = tarfile.TarInfo(directory)
            info.type = tarfile.DIRTYPE
            info.mode = 0o1777 if directory == "tmp" else 0o755
            archive.addfile(info)
        archive.add(busybox, arcname="bin/busybox")
        for applet in BUSYBOX_APPLETS:
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type = tarfile.SYMTYPE
            link.linkname = "busybox"
            archive.addfile(link)
        passwd = b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
        info = tarfile.TarInfo("etc/passwd")
        info.size = len(passwd)
        archive.addfile(info, io.BytesIO(passwd))
    return buffer.getvalue()


# What the smoke tests after a cutover ask for: the Authority's OpenID configuration, and a scan
# submission (POST /cgi-bin/scans, busybox httpd CGI) that records the SBOM's digest and answers
# on GET /cgi-bin/scans/<id> with the completed scan.
SCAN_CGI = r"""#!/bin/sh
mkdir -p /tmp/scans
if [ "$REQUEST_METHOD" = POST ]; then
    digest=$(head -c "${CONTENT_LENGTH:-0}" | sha256sum | cut -c1-64)
    id=$(echo "$digest" | cut -c1-16)
    echo "{\"id\": \"$id\", \"status\": \"completed\", \"sbom_sha256\": \"$digest\"}" > "/tmp/scans/$id"
    printf 'Status: 202 Accepted\r\nContent-Type: application/json\r\n\r\n{"id": "%s", "status": "queued"}\n' "$id"
    exit 0
fi
id=$(echo "${PATH_INFO#/}" | tr -cd 'a-f0-9')
if [ -n "$id" ] && [ -f "/tmp/scans/$id" ]; then
    printf 'Content-Type: application/json\r\n\r\n'
    cat "/tmp/scans/$id"
else
    printf 'Status: 404 Not Found\r\nContent-Type: application/json\r\n\r\n{"status": "unknown"}\n'
fi
"""
OPENID_CONFIGURATION = json.dumps(
    {
        "issuer": "https://authority.sandbox.stellaops.local",
        "token_endpoint": "https://authority.sandbox.stellaops.local/connect/token",
        "jwks_uri": "https://authority.sandbox.stellaops.local/jwks",
        "grant_types_supported": ["client_credentials"],
    }
)
SMOKE_ENDPOINTS = {
    "authority": {"www/.well-known/openid-configuration": OPENID_CONFIGURATION + "\n"},
    "scanner-web": {"www/cgi-bin/scans": SCAN_CGI},
}


def build_context(version: str, component: str, healthy: bool) -> bytes:
    health = json.dumps({"status": "ok", "release": version, "component": component}) + "\n"
    dockerfile = "\n".join(
        [
            "FROM stellaops-sandbox/base:1",
            f'LABEL {SANDBOX_LABEL}="true" org.opencontainers.image.version="{version}" org.stellaops.component="{component}"',
            "COPY www /www",
            "EXPOSE 8080",
            # Every probe is a runc exec that costs this 2-core machine about 0.1 s of CPU: at one per
            # second, 18 containers (one fleet project) kept both cores 90 % busy. At one per 5 s a
            # container is found healthy up to 5 s later, and a broken release unhealthy after 15 s.
            "HEALTHCHECK --interval=5s --timeout=3s --start-period=1s --retries=3 "
            "CMD wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1",
            'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
            "",
        ]
    )
    files = {"Dockerfile": dockerfile, "www/index.html": f"stellaops {component} {version}\n"}
    if healthy:
        files["www/health"] = health
    files.update(SMOKE_ENDPOINTS.get(component, {}))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o755 if name.startswith("www/cgi-bin/") else 0o644
            archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer.getvalue()


def ensure_images() -> dict[str, dict[str, str]]:
    """Build and push every sandbox image that the registry lacks; return version -> component -> digest."""
    import docker  # from .venv

    client = docker.DockerClient(base_url=DOCKER_SOCKET)
    digests: dict[str, dict[str, str]] = {}
    base_ready = False
    # The recipe of each pushed image: an image whose recipe changed (new endpoints) is built again.
    recipes_file = SANDBOX / "images.json"
    recipes = json.loads(recipes_file.read_text()) if recipes_file.exists() else {}
    for version, (_channels, healthy) in RELEASES.items():
        digests[version] = {}
        for component in COMPONENTS:
            repository = f"stellaops/{component}"
            recipe = hashlib.sha256(build_context(version, component, healthy)).hexdigest()
            digest = registry_digest(repository, version)
            if digest is None or recipes.get(f"{component}:{version}") != recipe:
                if not base_ready:
                    try:
                        client.images.get("stellaops-sandbox/base:1")
                    except docker.errors.ImageNotFound:
                        client.api.import_image_from_data(busybox_rootfs(), repository="stellaops-sandbox/base", tag="1")
                    base_ready = True
                tag = f"{REPOSITORY_PREFIX}/{component}:{version}"
                client.images.build(fileobj=io.BytesIO(build_context(version, component, healthy)), custom_context=True, tag=tag, rm=True)
                for line in client.images.push(f"{REPOSITORY_PREFIX}/{component}", tag=version, stream=True, decode=True):
                    if "error" in line:
                        raise SandboxError(f"push of {tag} failed: {line['error']}")
                digest = registry_digest(repository, version)
                if digest is None:
                    raise SandboxError(f"registry has no manifest for {tag} after push")
                log(f"pushed {tag} {digest}")
                recipes[f"{component}:{version}"] = recipe
                recipes_file.write_text(json.dumps(recipes, indent=2, sort_keys=True) + "\n")
            digests[version][component] = digest
    return digests


def write_manifests(digests: dict[str, dict[str, str]]) -> dict[str, str]:
    import yaml

    channel_dir = SANDBOX / "releases"
    faulty_dir = SANDBOX / "releases-faulty"
    written: dict[str, str] = {}
    for version, (channels, healthy) in RELEASES.items():
        for channel in channels:
            manifest = {
                "release": {
                    "version": version,
                    "channel": channel,
                    "date": RELEASE_DATES[version],
                    "components": [
                        {"name": component, "image": f"{REPOSITORY_PREFIX}/{component}@{digests[version][component]}"}
                        for component in COMPONENTS
                    ],
                }
            }
            directory = channel_dir if healthy else faulty_dir
            directory.mkdir(parents=True, exist_ok=True)
            path = directory / f"{version}-{channel}.yaml"
            text = yaml.safe_dump(manifest, sort_keys=False)
            if not path.exists() or path.read_text() != text:
                path.write_text(text)
            written[f"{version}-{channel}"] = str(path)
    return written


# --------------------------------------------------------------------------- PostgreSQL

SAMPLE_SQL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY, name text NOT NULL, category char(1) NOT NULL, applied_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (id serial PRIMARY KEY, slug text UNIQUE NOT NULL, created_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS findings (
    id bigserial PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants(id), cve text NOT NULL,
    severity text NOT NULL, score numeric(3,1) NOT NULL, details jsonb NOT NULL, observed_at timestamptz NOT NULL);
CREATE TABLE IF NOT EXISTS evidence_index (
    key text PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants(id), kind text NOT NULL, sha256 text NOT NULL, size bigint NOT NULL);
INSERT INTO schema_migrations VALUES
    ('20250901000000', 'create_core_tables', 'A', '2025-09-01T00:00:00Z'),
    ('20251001000000', 'add_evidence_index', 'A', '2025-10-01T00:00:00Z'),
    ('20251101000000', 'backfill_scores', 'B', '2025-11-01T00:00:00Z')
    ON CONFLICT DO NOTHING;
INSERT INTO tenants (slug, created_at) VALUES ('acme', '2025-01-01T00:00:00Z'), ('globex', '2025-02-01T00:00:00Z')
    ON CONFLICT DO NOTHING;
INSERT INTO findings (tenant_id, cve, severity, score, details, observed_at)
    SELECT 1 + (n % 2), format('CVE-2025-%s', 10000 + n), (ARRAY['low','medium','high','critical'])[1 + n % 4],
           (n % 100) / 10.0, jsonb_build_object('package', format('pkg-%s', n % 37), 'fixed', n % 3 = 0),
           timestamptz '2025-06-01T00:00:00Z' + n * interval '1 minute'
    FROM generate_series(1, 2000) AS n
    WHERE NOT EXISTS (SELECT 1 FROM findings);
"""


def as_postgres(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return run(["runuser", "-u", "postgres", "--", *args], **kwargs)


def postgres_ready() -> bool:
    probe = subprocess.run(
        [str(PG_BIN / "pg_isready"), "-h", "127.0.0.1", "-p", str(POSTGRES_PORT)], capture_output=True, check=False
    )
    return probe.returncode == 0


def ensure_postgres(state: dict[str, Any], password: str) -> None:
    base = SANDBOX / "postgres"
    data = base / "data"
    sockets = base / "run"
    if not postgres_ready():
        for directory in (base, sockets):
            directory.mkdir(parents=True, exist_ok=True)
            shutil.chown(directory, "postgres", "postgres")
        if not (data / "PG_VERSION").exists():
            data.mkdir(exist_ok=True)
            shutil.chown(data, "postgres", "postgres")
            as_postgres([str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8"])
        require_free_port(POSTGRES_PORT, "postgres")
        server_log = base / "postgres.log"
        try:
            # Address, port and socket directory on the command line, so that a data directory made by an
            # older checkout starts where this one looks for it.
            settings = f"-c listen_addresses=127.0.0.1 -c port={POSTGRES_PORT} -c unix_socket_directories={shlex.quote(str(sockets))}"
            as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(server_log), "-o", settings, "-w", "-t", "60", "start"])
        except subprocess.CalledProcessError as error:
            tail = server_log.read_text(errors="replace").splitlines()[-5:] if server_log.exists() else []
            raise SandboxError(f"postgres did not start; the end of {server_log}: " + " | ".join(tail)) from error
        state["pids"]["postgres"] = int((data / "postmaster.pid").read_text().split()[0])
        save_state(state)
        log(f"started postgres (pid {state['pids']['postgres']})")
    psql = [str(PG_BIN / "psql"), "-h", str(sockets), "-p", str(POSTGRES_PORT), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q"]
    roles = as_postgres([*psql, "-tAc", "SELECT 1 FROM pg_roles WHERE rolname = 'stellaops'"]).stdout.strip()
    # The password goes through stdin, never the command line.
    verb = "ALTER" if roles == "1" else "CREATE"
    as_postgres([*psql, "-d", "postgres"], input=f"{verb} ROLE stellaops LOGIN CREATEDB PASSWORD '{password}';\n")
    if as_postgres([*psql, "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'stellaops'"]).stdout.strip() != "1":
        as_postgres([*psql, "-c", "CREATE DATABASE stellaops OWNER stellaops"])
    as_postgres([*psql, "-d", "stellaops"], input="SET ROLE stellaops;\n" + SAMPLE_SQL)


def stop_postgres(state: dict[str, Any]) -> None:
    pid = state["pids"].get("postgres")
    data = SANDBOX / "postgres" / "data"
    if pid_alive(pid) and (data / "postmaster.pid").exists() and int((data / "postmaster.pid").read_text().split()[0]) == pid:
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        log(f"stopped postgres (pid {pid})")
    state["pids"].pop("postgres", None)
    save_state(state)


# --------------------------------------------------------------------------- object storage


def ensure_object_storage(state: dict[str, Any], access_key: str, secret_key: str) -> None:
    endpoint = f"http://127.0.0.1:{S3_PORT}"
    if not http_ok(f"{endpoint}/moto-api/"):
        require_free_port(S3_PORT, "object storage")
        start_background("s3", [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(S3_PORT)], state)
        wait_for("object storage", lambda: http_ok(f"{endpoint}/moto-api/"))
    import boto3

    s3 = boto3.client(
        "s3", endpoint_url=endpoint, aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name="us-east-1"
    )
    existing = {bucket["Name"] for bucket in s3.list_buckets().get("Buckets", [])}
    for bucket in (EVIDENCE_BUCKET, BACKUP_BUCKET):
        if bucket not in existing:
            s3.create_bucket(Bucket=bucket)
    if s3.list_objects_v2(Bucket=EVIDENCE_BUCKET, MaxKeys=1).get("KeyCount", 0):
        return
    count = 0
    for tenant in ("acme", "globex"):
        for kind in ("sbom", "attestation", "scan-report"):
            for number in range(1, 11):
                body = json.dumps(
                    {"tenant": tenant, "kind": kind, "id": f"bundle-{number:04d}", "payload": "x" * (97 * number)},
                    sort_keys=True,
                ).encode()
                s3.put_object(Bucket=EVIDENCE_BUCKET, Key=f"evidence/{tenant}/{kind}/bundle-{number:04d}.json", Body=body)
                count += 1
    log(f"seeded {count} evidence bundles into s3://{EVIDENCE_BUCKET}")


# --------------------------------------------------------------------------- Redis (queues)


def redis_ready() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout=2) as connection:
            connection.sendall(b"PING\r\n")
            return connection.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def ensure_redis(state: dict[str, Any]) -> None:
    """Redis (Debian's redis-server) on 127.0.0.1: the queues whose depth pre-flight checks; nothing persisted."""
    if redis_ready():
        return
    directory = SANDBOX / "redis"
    directory.mkdir(parents=True, exist_ok=True)
    args = ["redis-server", "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--save", "", "--appendonly", "no",
            "--dir", str(directory), "--protected-mode", "yes"]  # fmt: skip
    require_free_port(REDIS_PORT, "redis")
    start_background("redis", args, state)
    wait_for("redis", redis_ready)


# --------------------------------------------------------------------------- Prometheus and what it scrapes


def prometheus_ready() -> bool:
    return http_ok(f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready")


def metrics_exporter_ready() -> bool:
    return http_ok(f"http://127.0.0.1:{METRICS_PORT}/health")


def ensure_prometheus(state: dict[str, Any]) -> dict[str, Any]:
    """Prometheus (Debian's ``prometheus``) on 127.0.0.1 with its own data directory, scraping every second
    the sandbox's metrics exporter (scripts/metrics_exporter.py), whose request counters tests drive so
    that the metric gates see real PromQL results."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise SandboxError("prometheus is not installed (Debian package prometheus): run 'make setup'")
    if not pid_alive(state["pids"].get("metrics-exporter")):
        require_free_port(METRICS_PORT, "the metrics exporter")
        exporter = [str(VENV_BIN / "python"), str(ROOT / "scripts" / "metrics_exporter.py"), "--port", str(METRICS_PORT)]
        start_background("metrics-exporter", exporter, state)
        wait_for("metrics exporter", metrics_exporter_ready)
    directory = SANDBOX / "prometheus"
    (directory / "data").mkdir(parents=True, exist_ok=True)
    config = directory / "prometheus.yml"
    text = (
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: stellaops-sandbox\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{METRICS_PORT}']\n"
    )
    rewritten = not config.exists() or config.read_text() != text
    if rewritten:
        config.write_text(text)
    pid = state["pids"].get("prometheus")
    if pid_alive(pid) and prometheus_ready():
        if rewritten:
            os.kill(pid, signal.SIGHUP)  # Prometheus reloads its configuration on SIGHUP
    else:
        require_free_port(PROMETHEUS_PORT, "prometheus")
        args = [binary, f"--config.file={config}", f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{PROMETHEUS_PORT}", "--storage.tsdb.retention.time=2d", "--log.level=warn"]  # fmt: skip
        start_background("prometheus", args, state)
        wait_for("prometheus", prometheus_ready)
    return {
        "url": f"http://127.0.0.1:{PROMETHEUS_PORT}",
        "pid": state["pids"]["prometheus"],
        "config": str(config),
        "data_dir": str(directory / "data"),
        "scrape_interval_seconds": 1,
        "exporter": {"url": f"http://127.0.0.1:{METRICS_PORT}", "pid": state["pids"]["metrics-exporter"]},
    }


# --------------------------------------------------------------------------- Kubernetes API emulator

KUBE_DIR = SANDBOX / "kube"
KUBECONFIG = KUBE_DIR / "config"
KUBE_CONTEXT = "stellaops-sandbox"
KUBE_EMULATOR = ROOT / "scripts" / "kube_emulator.py"


def kube_emulator_port() -> int:
    return pid_from_file(KUBE_DIR / "port")


def kube_emulator_ready() -> bool:
    port = kube_emulator_port()
    return bool(port) and http_ok(f"http://127.0.0.1:{port}/readyz")


def ensure_kube_emulator(state: dict[str, Any]) -> dict[str, Any]:
    """The Kubernetes API emulator (scripts/kube_emulator.py; not a cluster: no Pods, no images) on a free
    loopback port, with fake controllers (--ready) so that helm --wait, hooks and --atomic complete; a
    kubeconfig for it at .sandbox/kube/config (context stellaops-sandbox)."""
    pid = state["pids"].get("kube-emulator")
    if not (runs_with(pid or 0, str(KUBE_EMULATOR)) and kube_emulator_ready() and KUBECONFIG.exists()):
        if pid_alive(pid):
            stop_pid("kube-emulator", state, timeout=1.0)
        (KUBE_DIR / "port").unlink(missing_ok=True)
        args = [str(VENV_BIN / "python"), str(KUBE_EMULATOR), "--port", "0", "--ready", "--port-file", str(KUBE_DIR / "port"),
                "--kubeconfig", str(KUBECONFIG), "--context", KUBE_CONTEXT]  # fmt: skip
        KUBE_DIR.mkdir(parents=True, exist_ok=True)
        start_background("kube-emulator", args, state)
        wait_for("the Kubernetes API emulator", kube_emulator_ready)
    else:
        log(f"Kubernetes API emulator answers on 127.0.0.1:{kube_emulator_port()}")
    return {
        "kubeconfig": str(KUBECONFIG),
        "port": kube_emulator_port(),
        "pid": state["pids"]["kube-emulator"],
        "context": KUBE_CONTEXT,
        "server": f"http://127.0.0.1:{kube_emulator_port()}",
        "emulator": True,
        "ready_controllers": True,
    }


# --------------------------------------------------------------------------- the fleet: host image


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


# --------------------------------------------------------------------------- the fleet: engines


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


# --------------------------------------------------------------------------- the fleet: hosts


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


# --------------------------------------------------------------------------- commands


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
