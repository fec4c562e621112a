# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's parts are real: registry, Docker engine, PostgreSQL and S3-compatible storage.

Each sandbox release is pulled by digest from the registry, run by the Docker engine, and its
health endpoint must report the release and component it was built as (the deliberately broken
release must answer 404 there).

The fleet (compose hosts fleet-1..3) is reached over real SSH: Ansible pings each host of the
inventory's compose_fleet group, each host has a root filesystem of its own, drives a Docker engine
of its own (fleet-1 the machine's), carries the Compose v2 plugin and only Python's standard library,
and pulls from the sandbox registry. `sandbox.py host-up`/`host-down` start and remove one more host.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import docker
import pytest
import yaml

pytestmark = pytest.mark.sandbox


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_registry_serves_every_release_by_digest(sandbox: dict[str, Any]) -> None:
    for version, release in sandbox["releases"].items():
        for component, digest in release["digests"].items():
            request = urllib.request.Request(
                f"http://{sandbox['registry']}/v2/stellaops/{component}/manifests/{digest}",
                method="HEAD",
                headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                assert response.headers["Docker-Content-Digest"] == digest, (version, component)


def test_each_release_pulled_by_digest_runs_and_reports_itself(sandbox: dict[str, Any]) -> None:
    engine = docker.DockerClient(base_url=sandbox["docker_host"])
    started = []
    try:
        for version, release in sandbox["releases"].items():
            for component, digest in release["digests"].items():
                reference = f"{sandbox['repository_prefix']}/{component}@{digest}"
                pulled = subprocess.run(["docker", "-H", sandbox["docker_host"], "pull", reference], capture_output=True, text=True, check=False)
                assert pulled.returncode == 0, pulled.stderr
                assert digest in pulled.stdout
                container = engine.containers.run(
                    reference, detach=True, ports={"8080/tcp": ("127.0.0.1", None)}, labels={"org.stellaops.sandbox": "true"}
                )
                started.append((version, component, release["healthy"], container))
        for version, component, healthy, container in started:
            deadline = time.monotonic() + 30
            status, body = 0, b""
            while time.monotonic() < deadline:
                container.reload()
                port = container.ports.get("8080/tcp")
                if port:
                    status, body = get(f"http://127.0.0.1:{port[0]['HostPort']}/health")
                    if status in (200, 404):
                        break
                time.sleep(0.3)
            if healthy:
                assert status == 200, (version, component)
                assert json.loads(body) == {"status": "ok", "release": version, "component": component}
            else:
                assert status == 404, (version, component, status)
    finally:
        for *_meta, container in started:
            container.remove(force=True)


def test_release_manifests_carry_the_registry_digests(sandbox: dict[str, Any]) -> None:
    channels = set()
    for name, path in sandbox["manifests"].items():
        release = yaml.safe_load(Path(path).read_text())["release"]
        channels.add(release["channel"])
        digests = sandbox["releases"][release["version"]]["digests"]
        assert {c["name"]: c["image"].split("@")[1] for c in release["components"]} == digests, name
    assert channels == {"edge", "stable", "airgap"}


def test_postgres_holds_the_sample_database(sandbox: dict[str, Any]) -> None:
    import psycopg2

    pg = sandbox["postgres"]
    password = Path(pg["password_file"]).read_text().strip()
    with psycopg2.connect(host=pg["host"], port=pg["port"], dbname=pg["database"], user=pg["user"], password=password) as conn:
        with conn.cursor() as cursor:
            # the migrations of the releases the fleet runs (2025.09.0, 2025.10.0)
            cursor.execute("SELECT version FROM schema_migrations WHERE version IN ('20250901000000', '20251001000000')")
            assert len(cursor.fetchall()) == 2
            cursor.execute("SELECT count(*) FROM findings")
            assert cursor.fetchone()[0] >= 2000


def test_object_storage_holds_evidence_bundles(sandbox: dict[str, Any]) -> None:
    s3 = sandbox["s3"]
    client = boto3.client(
        "s3",
        endpoint_url=s3["endpoint"],
        region_name=s3["region"],
        aws_access_key_id=s3["access_key"],
        aws_secret_access_key=Path(s3["secret_key_file"]).read_text().strip(),
    )
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=s3["evidence_bucket"], Prefix="evidence/")["Contents"]]
    assert len(keys) >= 60
    assert all(key.endswith(".json") for key in keys)


# --------------------------------------------------------------------------- the fleet

FLEET = ["fleet-1", "fleet-2", "fleet-3"]
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"]


def ssh(host: dict[str, Any], command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` on a fleet host over SSH with the sandbox key."""
    return subprocess.run(
        ["ssh", "-i", host["ssh_private_key_file"], "-p", str(host["ssh_port"]), *SSH_OPTIONS, f"{host['ssh_user']}@{host['ssh_host']}", command],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def machine_docker(docker_host: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "-H", docker_host, *args], capture_output=True, text=True, timeout=120, check=False)


def ad_hoc(repo_root: Path, pattern: str, module: str, module_args: str | None = None) -> dict[str, dict[str, Any]]:
    """``ansible -i inventory/local PATTERN -m MODULE``; host -> result (ansible.posix.json callback)."""
    args = [str(Path(sys.executable).parent / "ansible"), "-i", str(repo_root / "inventory" / "local"), pattern, "-m", module]
    if module_args is not None:
        args += ["-a", module_args]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(repo_root / "ansible.cfg"),
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_JSON_INDENT": "0",
        "ANSIBLE_NOCOLOR": "1",
    }
    proc = subprocess.run(args, cwd=repo_root, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads(proc.stdout[proc.stdout.find("{") :])
    return data["plays"][0]["tasks"][0]["hosts"]


@pytest.fixture(scope="module")
def fleet(sandbox: dict[str, Any]) -> dict[str, dict[str, Any]]:
    hosts = {host["name"]: host for host in sandbox.get("fleet", {}).get("hosts", [])}
    assert sorted(hosts) == FLEET, f"sandbox.json lists fleet hosts {sorted(hosts)}: run 'make sandbox-up'"
    return hosts


def test_inventory_fleet_answers_ansible_over_ssh(fleet: dict[str, dict[str, Any]], repo_root: Path) -> None:
    pings = ad_hoc(repo_root, "compose_fleet", "ansible.builtin.ping")
    assert sorted(pings) == FLEET
    assert all(result["ping"] == "pong" and not result.get("failed") for result in pings.values()), pings
    # The module ran in the host container over SSH on the host's port: sshd on that port is its PID 1.
    probes = ad_hoc(repo_root, "compose_fleet", "ansible.builtin.shell", 'echo "$SSH_CONNECTION"; tr "\\0" " " </proc/1/cmdline')
    for name, result in probes.items():
        port = fleet[name]["ssh_port"]
        connection, pid1 = result["stdout_lines"]
        assert connection.split()[2:] == ["127.0.0.1", str(port)], (name, connection)
        assert pid1.startswith("sshd: /usr/sbin/sshd -D -e -p ") and f" -p {port} " in pid1, (name, pid1)


def test_fleet_hosts_have_filesystems_of_their_own(fleet: dict[str, dict[str, Any]]) -> None:
    marker = f"/root/stellaops-fs-probe-{secrets.token_hex(8)}"
    first = fleet["fleet-1"]
    try:
        written = ssh(first, f"echo fleet-1 > {marker} && cat {marker}")
        assert written.returncode == 0 and written.stdout == "fleet-1\n", written.stderr
        for name in ("fleet-2", "fleet-3"):
            probe = ssh(fleet[name], f"test -e {marker}; echo $?")
            assert probe.returncode == 0 and probe.stdout.strip() == "1", (name, probe.stdout, probe.stderr)
        assert not Path(marker).exists(), "the marker file landed on the machine"
    finally:
        ssh(first, f"rm -f {marker}")
    for name, host in fleet.items():
        release = ssh(host, ". /etc/os-release && echo $VERSION_CODENAME")
        assert release.stdout.strip() == "bookworm", (name, release.stdout, release.stderr)


def test_fleet_hosts_drive_docker_engines_of_their_own(sandbox: dict[str, Any], fleet: dict[str, dict[str, Any]]) -> None:
    form = "{{.ID}} {{.DockerRootDir}}"
    seen = {}
    for name, host in fleet.items():
        inside = ssh(host, f"docker info --format '{form}'")
        assert inside.returncode == 0, (name, inside.stderr)
        outside = machine_docker(host["docker_host"], "info", "--format", form)
        assert outside.returncode == 0, (name, outside.stderr)
        assert inside.stdout == outside.stdout, (name, inside.stdout, outside.stdout)
        seen[name] = inside.stdout.split()
    assert len({engine_id for engine_id, _root in seen.values()}) == 3, seen
    machine = machine_docker(sandbox["docker_host"], "info", "--format", form)
    assert seen["fleet-1"] == machine.stdout.split()
    engines = sandbox["fleet"]["engines"]
    assert seen["fleet-2"][1] == engines["engine-2"]["data_root"]
    assert seen["fleet-3"][1] == engines["engine-3"]["data_root"]


def test_fleet_host_pulls_from_the_sandbox_registry_by_digest(sandbox: dict[str, Any], fleet: dict[str, dict[str, Any]]) -> None:
    host = fleet["fleet-2"]
    reference = f"{sandbox['repository_prefix']}/authority@{sandbox['releases']['2025.09.0']['digests']['authority']}"
    present = machine_docker(host["docker_host"], "image", "inspect", reference).returncode == 0
    try:
        pulled = ssh(host, f"docker pull {reference}")
        assert pulled.returncode == 0, pulled.stderr
        assert sandbox["releases"]["2025.09.0"]["digests"]["authority"] in pulled.stdout
        # The image is in fleet-2's own engine, read from the machine through that engine's socket.
        digests = machine_docker(host["docker_host"], "image", "inspect", "--format", "{{json .RepoDigests}}", reference)
        assert reference in json.loads(digests.stdout), digests.stderr
    finally:
        if not present:
            machine_docker(host["docker_host"], "image", "rm", reference)


def test_fleet_hosts_carry_compose_and_only_the_standard_library(fleet: dict[str, dict[str, Any]]) -> None:
    machine = subprocess.run(["docker", "compose", "version", "--short"], capture_output=True, text=True, check=True)
    probe = (
        "import importlib.util, json, sys; "
        "print(json.dumps([sys.version_info >= (3, 9), [importlib.util.find_spec(m) is not None for m in ('yaml', 'docker')]]))"
    )
    for name, host in fleet.items():
        found = ssh(host, f'docker compose version --short && {host["python_interpreter"]} -c "{probe}"')
        assert found.returncode == 0, (name, found.stderr)
        compose, python = found.stdout.splitlines()
        assert compose == machine.stdout.strip(), (name, compose)
        # Python 3 with its standard library only: no PyYAML, no Docker SDK.
        assert json.loads(python) == [True, [False, False]], (name, python)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _sandbox_cli(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(repo_root / "scripts" / "sandbox.py"), *args], capture_output=True, text=True, timeout=600, check=False)


def test_host_up_without_compose_on_an_engine_that_does_not_answer(sandbox: dict[str, Any], repo_root: Path, tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(dead))  # closed at once: nothing answers on it
    name, port = f"probe-{secrets.token_hex(3)}", _free_port()
    state_file = Path(sandbox["root"]) / "state.json"
    try:
        started = _sandbox_cli(repo_root, "host-up", name, "--port", str(port), "--engine-socket", str(dead), "--no-compose")
        assert started.returncode == 0, started.stdout + started.stderr
        host = json.loads(started.stdout.strip().splitlines()[-1])
        assert (host["name"], host["ssh_port"], host["compose"], host["engine_socket"]) == (name, port, False, str(dead))
        assert name in json.loads(state_file.read_text())["hosts"]

        login = ssh(host, "test -S /var/run/docker.sock && echo socket")
        assert login.returncode == 0 and login.stdout.strip() == "socket", login.stderr
        compose = ssh(host, "docker compose version")
        assert compose.returncode != 0 and "compose" in compose.stderr, compose.stdout + compose.stderr
        info = ssh(host, "docker info --format '{{.ID}}'")
        assert info.returncode != 0 and "Cannot connect to the Docker daemon" in info.stdout + info.stderr, info.stdout + info.stderr
    finally:
        stopped = _sandbox_cli(repo_root, "host-down", name)
    assert stopped.returncode == 0, stopped.stderr
    assert machine_docker(sandbox["docker_host"], "ps", "-aq", "--filter", f"name=^stellaops-host-{name}$").stdout == ""
    assert name not in json.loads(state_file.read_text())["hosts"]
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
