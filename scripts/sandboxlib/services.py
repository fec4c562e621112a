# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL, S3-compatible object storage, Redis, Prometheus with its metrics exporter, and the Kubernetes API emulator."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
from typing import Any

from .common import (
    BACKUP_BUCKET,
    EVIDENCE_BUCKET,
    METRICS_PORT,
    PG_BIN,
    POSTGRES_PORT,
    PROMETHEUS_PORT,
    REDIS_PORT,
    ROOT,
    S3_PORT,
    SANDBOX,
    VENV_BIN,
    SandboxError,
    http_ok,
    log,
    pid_alive,
    require_free_port,
    run,
    save_state,
    start_background,
    stop_pid,
    wait_for,
)
from .engine import pid_from_file, runs_with
from .releases import MIGRATIONS

# The migrations the sandbox database is seeded with: those of the releases its fleet runs (2025.09.0, 2025.10.0).
SEEDED_MIGRATIONS = ("20250901000000", "20251001000000")

# The schema of 2025.10.0 (the migrations of 2025.09.0 and 2025.10.0, applied) with sample data; built from
# constants of this script only.
SAMPLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (\n"  # noqa: S608
    "    version text PRIMARY KEY, name text NOT NULL, category char(1) NOT NULL, applied_at timestamptz NOT NULL);\n"
    + "".join(MIGRATIONS[mid][2] for mid in SEEDED_MIGRATIONS)
    + "INSERT INTO schema_migrations VALUES\n"
    + ",\n".join(f"    ('{mid}', '{MIGRATIONS[mid][0]}', '{MIGRATIONS[mid][1]}', '{mid[:4]}-{mid[4:6]}-{mid[6:8]}T00:00:00Z')" for mid in SEEDED_MIGRATIONS)
    + """
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
)


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
