# SPDX-License-Identifier: GPL-3.0-or-later
"""The local sandbox: real components on 127.0.0.1 that the collection drives and the tests use.

    sandbox.py up       start everything (idempotent), write .sandbox/sandbox.json
    sandbox.py status   say what runs; exit 0 when every part answers, 3 otherwise
    sandbox.py down     stop what `up` started (by recorded PID) and remove sandbox containers

Parts: a Docker engine (started only when none answers), a container registry holding the
sandbox releases (built here from busybox, since nothing can be pulled), PostgreSQL with a
`stellaops` database, S3-compatible object storage (moto) with sample evidence bundles, and
release manifests for the channels edge, stable and airgap written with the digests the
registry returned.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = Path(os.environ.get("STELLAOPS_SANDBOX_DIR", ROOT / ".sandbox"))
STATE_FILE = SANDBOX / "state.json"
INFO_FILE = SANDBOX / "sandbox.json"
VENV_BIN = ROOT / ".venv" / "bin"

REGISTRY_PORT = 5000
POSTGRES_PORT = 55432
S3_PORT = 59000
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
BUSYBOX_APPLETS = ("sh", "httpd", "wget", "cat", "echo", "sleep", "ls", "nc", "env", "true", "false")
DEBIAN_PACKAGES = {
    "dockerd": "docker.io",
    "docker-registry": "docker-registry",
    "busybox": "busybox-static",
    str(PG_BIN / "initdb"): "postgresql-15",
}


def log(message: str) -> None:
    print(f"[sandbox] {message}", flush=True)


class SandboxError(Exception):
    pass


# --------------------------------------------------------------------------- state and processes


def load_state() -> dict[str, Any]:
    if STATE_FILE.exists():
        return json.loads(STATE_FILE.read_text())
    return {"pids": {}}


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


def ensure_docker(state: dict[str, Any]) -> None:
    if docker_answers():
        log("docker engine answers" + (" (started by the sandbox)" if pid_alive(state["pids"].get("dockerd")) else ""))
        return
    data_root = SANDBOX / "docker"
    data_root.mkdir(parents=True, exist_ok=True)
    start_background(
        "dockerd",
        [
            "dockerd",
            "--iptables=false",
            "--storage-driver=vfs",
            f"--host={DOCKER_SOCKET}",
            f"--data-root={data_root}",
            f"--pidfile={SANDBOX / 'dockerd.pid'}",
        ],
        state,
    )
    wait_for("docker engine", docker_answers, timeout=90)


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


def build_context(version: str, component: str, healthy: bool) -> bytes:
    health = json.dumps({"status": "ok", "release": version, "component": component}) + "\n"
    dockerfile = "\n".join(
        [
            "FROM stellaops-sandbox/base:1",
            f'LABEL {SANDBOX_LABEL}="true" org.opencontainers.image.version="{version}" org.stellaops.component="{component}"',
            "COPY www /www",
            "EXPOSE 8080",
            "HEALTHCHECK --interval=1s --timeout=2s --start-period=1s --retries=3 "
            "CMD wget -q -O /dev/null http://127.0.0.1:8080/health || exit 1",
            'CMD ["httpd", "-f", "-p", "8080", "-h", "/www"]',
            "",
        ]
    )
    files = {"Dockerfile": dockerfile, "www/index.html": f"stellaops {component} {version}\n"}
    if healthy:
        files["www/health"] = health
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, content in sorted(files.items()):
            data = content.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer.getvalue()


def ensure_images() -> dict[str, dict[str, str]]:
    """Build and push every sandbox image that the registry lacks; return version -> component -> digest."""
    import docker  # from .venv

    client = docker.DockerClient(base_url=DOCKER_SOCKET)
    digests: dict[str, dict[str, str]] = {}
    base_ready = False
    for version, (_channels, healthy) in RELEASES.items():
        digests[version] = {}
        for component in COMPONENTS:
            repository = f"stellaops/{component}"
            digest = registry_digest(repository, version)
            if digest is None:
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
            with open(data / "postgresql.conf", "a") as conf:
                conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {POSTGRES_PORT}\nunix_socket_directories = '{sockets}'\n")
        as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "postgres.log"), "-w", "-t", "60", "start"])
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
    info = {
        "root": str(SANDBOX),
        "docker_host": DOCKER_SOCKET,
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
    }
    INFO_FILE.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    log(f"ready: {INFO_FILE}")
    return 0


def remove_sandbox_containers() -> None:
    if not docker_answers():
        return
    for label in ("stella.release.id", SANDBOX_LABEL):
        ids = run(["docker", "-H", DOCKER_SOCKET, "ps", "-aq", "--filter", f"label={label}"]).stdout.split()
        if ids:
            run(["docker", "-H", DOCKER_SOCKET, "rm", "-f", "-v", *ids])
            log(f"removed {len(ids)} sandbox containers")


def down() -> int:
    state = load_state()
    remove_sandbox_containers()
    stop_pid("s3", state)
    stop_postgres(state)
    stop_pid("registry", state)
    stop_pid("dockerd", state, timeout=60)
    INFO_FILE.unlink(missing_ok=True)
    log("down")
    return 0


def status() -> int:
    state = load_state()
    checks = {
        "docker": docker_answers(),
        "registry": http_ok(f"http://{REGISTRY}/v2/"),
        "postgres": postgres_ready() if (PG_BIN / "pg_isready").exists() else False,
        "s3": http_ok(f"http://127.0.0.1:{S3_PORT}/moto-api/"),
    }
    names = {"docker": "dockerd", "registry": "registry", "postgres": "postgres", "s3": "s3"}
    for part, ok in checks.items():
        pid = state["pids"].get(names[part])
        owner = f"pid {pid}, started by the sandbox" if pid_alive(pid) else "not started by the sandbox"
        print(f"{part:<9} {'up' if ok else 'DOWN':<5} ({owner})")
    return 0 if all(checks.values()) else 3


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "status": status}
    if len(argv) != 2 or argv[1] not in commands:
        print(f"usage: {argv[0]} up|down|status", file=sys.stderr)
        return 2
    try:
        return commands[argv[1]]()
    except (SandboxError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or ""
        print(f"[sandbox] error: {error} {detail}".strip(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
