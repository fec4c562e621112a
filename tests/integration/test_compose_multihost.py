# SPDX-License-Identifier: GPL-3.0-or-later
"""Rolling compose upgrades across two hosts: playbooks/upgrade.yml in batches of one host.

The two compose "hosts" are two real Docker engines on this one machine: the sandbox engine
(unix:///var/run/docker.sock) is host ``compose-a``, and a second ``dockerd`` that the module
fixture starts (its own socket, data root, exec root, pid file and bridge, iptables off, vfs
storage) is host ``compose-b``. The fixture stops that daemon by the PID it recorded. Both hosts
use a local connection; each has its own compose project (name, directory, environment, ports
18281-18286 and 18381-18386). The second engine starts empty: the upgrade itself pulls every image
from the sandbox registry (127.0.0.1:5000).

The backup and evidence-gate steps of the role are switched off here (test_compose_upgrade.py
covers them on the sandbox host); the subject is the batching: one play entry per batch in the
JSON report, the same release in every batch, and a failed first batch that stops the second.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ["authority", "signer", "attestor", "scanner-web", "scheduler", "notify"]
UPGRADE_PLAY = "Upgrade the compose hosts"
FAULTY = "2025.11.1-edge"

# The second engine's default bridge (created here, since dockerd only creates docker0 itself,
# which belongs to the sandbox engine) and the pool its compose networks are carved from.
BRIDGE = "stellaops-mh0"
BRIDGE_ADDRESS = "10.213.0.1/24"
ADDRESS_POOL = "base=10.214.0.0/16,size=24"

pytestmark = pytest.mark.sandbox


@dataclass
class Host:
    """One compose host of the test inventory: a Docker engine and a project of its own on it."""

    name: str
    docker_host: str
    client: docker.DockerClient
    project: str
    project_dir: Path
    port_base: int

    def inventory_vars(self) -> dict[str, Any]:
        return {
            "compose_upgrade_docker_host": self.docker_host,
            "compose_upgrade_project_name": self.project,
            "compose_upgrade_project_dir": str(self.project_dir),
            "compose_upgrade_environment": f"multihost-{self.name}",
            "stellaops_port_base": self.port_base,
        }


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    return [point for point in points if point == str(path) or point.startswith(f"{path}/")]


def _stop_started_containerd(exec_root: Path) -> None:
    """Stop the containerd that our dockerd started, if it outlived it (matched by pid file and exec root)."""
    pid_file = exec_root / "containerd" / "containerd.pid"
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().strip() or 0)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return
    if str(exec_root) not in cmdline:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    if Path(f"/proc/{pid}").exists():
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def second_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A second Docker engine of its own, started here and stopped by the PID recorded here."""
    if _ip("link", "show", BRIDGE, check=False).returncode == 0:
        pytest.fail(f"network interface {BRIDGE} already exists (left by an interrupted run?): remove it with 'ip link del {BRIDGE}'")
    routes = _ip("-4", "route", "show").stdout
    if "10.213." in routes or "10.214." in routes:
        pytest.fail(f"10.213.0.0/24 or 10.214.0.0/16 is already routed on this machine; the second engine needs them:\n{routes}")
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        pytest.fail("dockerd is not installed (apt-get install docker.io)")

    base = tmp_path_factory.mktemp("engine-b")
    socket = base / "docker.sock"
    data_root, exec_root = base / "data", base / "exec"
    docker_host = f"unix://{socket}"
    _ip("link", "add", "name", BRIDGE, "type", "bridge")
    proc: subprocess.Popen[bytes] | None = None
    client: docker.DockerClient | None = None
    try:
        _ip("addr", "add", BRIDGE_ADDRESS, "dev", BRIDGE)
        _ip("link", "set", BRIDGE, "up")
        with open(base / "dockerd.log", "wb") as log:
            proc = subprocess.Popen(
                [
                    dockerd,
                    f"--host={docker_host}",
                    f"--data-root={data_root}",
                    f"--exec-root={exec_root}",
                    f"--pidfile={base / 'dockerd.pid'}",
                    "--iptables=false",
                    "--storage-driver=vfs",
                    # Not --bridge=none: dockerd then deletes docker0, the sandbox engine's bridge.
                    f"--bridge={BRIDGE}",
                    f"--default-address-pool={ADDRESS_POOL}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"the second dockerd exited with {proc.returncode}:\n{(base / 'dockerd.log').read_text()[-3000:]}")
            info = subprocess.run(["docker", "-H", docker_host, "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True, check=False)
            if info.returncode == 0:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"the second dockerd did not answer within 90 s:\n{(base / 'dockerd.log').read_text()[-3000:]}")
            time.sleep(0.5)
        client = docker.DockerClient(base_url=docker_host)
        yield {"docker_host": docker_host, "pid": proc.pid, "client": client, "root": base}
    finally:
        if client is not None:
            try:
                for container in client.containers.list(all=True):
                    container.remove(force=True, v=True)
                client.networks.prune()
            finally:
                client.close()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)
        _stop_started_containerd(exec_root)
        _ip("link", "del", BRIDGE, check=False)
        if not _mounts_under(base):
            shutil.rmtree(data_root, ignore_errors=True)
            shutil.rmtree(exec_root, ignore_errors=True)


@pytest.fixture(scope="module")
def hosts(sandbox: dict[str, Any], second_engine: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Host]]:
    """compose-a on the sandbox engine, compose-b on the second engine, in this (inventory) order."""
    try:
        with urllib.request.urlopen(f"http://{sandbox['registry']}/v2/", timeout=5):
            pass
    except OSError as err:
        pytest.fail(f"the sandbox registry {sandbox['registry']} does not answer ({err}); the second engine pulls from it")
    base = tmp_path_factory.mktemp("multihost")
    main_engine = docker.DockerClient(base_url=sandbox["docker_host"])
    found = {
        "compose-a": Host("compose-a", sandbox["docker_host"], main_engine, "stellaops-mh-a", base / "compose-a", 18280),
        "compose-b": Host("compose-b", second_engine["docker_host"], second_engine["client"], "stellaops-mh-b", base / "compose-b", 18380),
    }
    for host in found.values():
        host.project_dir.mkdir()
    try:
        yield found
    finally:
        for host in found.values():
            for container in host.client.containers.list(all=True, filters={"label": f"com.docker.compose.project={host.project}"}):
                container.remove(force=True, v=True)
        for network in main_engine.networks.list(names=["stellaops-mh-a_default"]):
            network.remove()
        main_engine.close()


@pytest.fixture(scope="module")
def inventory(sandbox: dict[str, Any], hosts: dict[str, Host], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sandbox inventory's settings (inventory/local) with two compose hosts instead of one."""
    local = ROOT / "inventory" / "local"
    local_hosts = yaml.safe_load((local / "hosts.yml").read_text())
    all_vars = yaml.safe_load((local / "group_vars" / "all.yml").read_text())
    # inventory/local finds the sandbox relative to itself; this inventory lives elsewhere.
    all_vars["stellaops_sandbox_dir"] = sandbox["root"]
    compose_vars = yaml.safe_load((local / "group_vars" / "compose_hosts.yml").read_text())
    compose_vars.update(compose_upgrade_backup=False, compose_upgrade_evidence_gate=False)
    connection = local_hosts["all"]["children"]["compose_hosts"]["hosts"]["sandbox"]
    content = {
        "all": {
            "vars": all_vars,
            "hosts": {"localhost": local_hosts["all"]["hosts"]["localhost"]},
            "children": {
                "compose_hosts": {
                    "vars": compose_vars,
                    "hosts": {name: {**connection, **host.inventory_vars()} for name, host in hosts.items()},
                }
            },
        }
    }
    path = tmp_path_factory.mktemp("multihost-inventory") / "hosts.yml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


def upgrade(runner: Any, inventory: Path, **extra: Any) -> Any:
    return runner("playbooks/upgrade.yml", inventory=inventory, extra_vars={"stellaops_serial": 1, **extra})


def batches(result: Any) -> list[dict[str, dict[str, Any]]]:
    """Per batch of the serial play (one play entry each): host -> its 'Write the compose lock' result (or {})."""
    found = []
    for play in result.data.get("plays", []):
        if play["play"]["name"] != UPGRADE_PLAY:
            continue
        batch: dict[str, dict[str, Any]] = {}
        for task in play["tasks"]:
            for name, outcome in task["hosts"].items():
                batch.setdefault(name, {})
                if task["task"]["name"].split(" : ", 1)[-1] == "Write the compose lock":
                    batch[name] = outcome
        found.append(batch)
    return found


def containers(host: Host) -> dict[str, dict[str, Any]]:
    found = {}
    for container in host.client.containers.list(all=True, filters={"label": f"com.docker.compose.project={host.project}"}):
        image = host.client.images.get(container.attrs["Image"])
        found[container.labels["com.docker.compose.service"]] = {
            "id": container.id,
            "status": container.status,
            "repo_digests": image.attrs.get("RepoDigests") or [],
            "release_id": container.labels.get("stella.release.id"),
        }
    return found


def health(host: Host, service: str) -> dict[str, Any]:
    port = host.port_base + 1 + SERVICES.index(service)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


def assert_runs(host: Host, sandbox: dict[str, Any], release_id: str) -> None:
    """Every service on the host's engine runs the release: label, digest (engine RepoDigests), health."""
    version = release_id.split("-", 1)[0]
    running = containers(host)
    assert sorted(running) == sorted(SERVICES), (host.name, running)
    for service in SERVICES:
        pinned = f"{sandbox['repository_prefix']}/{service}@{sandbox['releases'][version]['digests'][service]}"
        assert pinned in running[service]["repo_digests"], (host.name, service, running[service])
        assert running[service]["status"] == "running", (host.name, service)
        assert running[service]["release_id"] == release_id, (host.name, service)
        assert health(host, service) == {"status": "ok", "release": version, "component": service}, (host.name, service)


def journal_jobs(host: Host) -> list[dict[str, Any]]:
    jobs = [json.loads(p.read_text()) for p in (host.project_dir / "journal" / "jobs").glob("*.json")]
    return sorted(jobs, key=lambda job: (job["started_at"], job["id"]))


def test_two_hosts_upgrade_in_two_batches_to_the_same_release(hosts, inventory, sandbox, playbook_runner):
    a, b = hosts["compose-a"], hosts["compose-b"]
    assert not b.client.images.list(), "the second engine must start without images"

    first = upgrade(playbook_runner, inventory, channel="stable", release="2025.09.0")
    assert first.rc == 0, first.failure_messages or first.stderr[-3000:]
    assert [sorted(batch) for batch in batches(first)] == [["compose-a"], ["compose-b"]]
    for host in (a, b):
        assert_runs(host, sandbox, "2025.09.0-stable")

    second = upgrade(playbook_runner, inventory, channel="stable", release="2025.10.0")
    assert second.rc == 0, second.failure_messages or second.stderr[-3000:]
    ran = batches(second)
    assert [sorted(batch) for batch in ran] == [["compose-a"], ["compose-b"]]
    # Every batch deployed the release resolved once before the first batch, from the same lock.
    locks = [(batch[name]["release_id"], batch[name]["digest"]) for batch in ran for name in batch]
    assert len(locks) == 2 and locks[0] == locks[1] and locks[0][0] == "2025.10.0-stable", locks
    lock_path = Path("releases") / "2025.10.0-stable" / "docker-compose.lock.yaml"
    assert (a.project_dir / lock_path).read_bytes() == (b.project_dir / lock_path).read_bytes()
    for host in (a, b):
        assert second.changed(host.name) > 0, host.name
        assert_runs(host, sandbox, "2025.10.0-stable")
        job = journal_jobs(host)[-1]
        assert (job["host"], job["release_id"], job["status"], job["previous_release_id"]) == (host.name, "2025.10.0-stable", "completed", "2025.09.0-stable")
    # Two engines, not one: each project exists only on its own host's engine.
    assert not a.client.containers.list(all=True, filters={"label": f"com.docker.compose.project={b.project}"})
    assert not b.client.containers.list(all=True, filters={"label": f"com.docker.compose.project={a.project}"})


def test_failure_in_first_batch_stops_the_second(hosts, inventory, sandbox, playbook_runner):
    a, b = hosts["compose-a"], hosts["compose-b"]
    if any(c["release_id"] != "2025.10.0-stable" for host in (a, b) for c in containers(host).values()) or not containers(b):
        ready = upgrade(playbook_runner, inventory, channel="stable", release="2025.10.0")
        assert ready.rc == 0, ready.failure_messages or ready.stderr[-3000:]
    before_a = {service: c["id"] for service, c in containers(a).items()}
    before_b = {service: c["id"] for service, c in containers(b).items()}
    jobs_b = journal_jobs(b)

    broken = upgrade(playbook_runner, inventory, channel="edge", stellaops_releases_dir=sandbox["faulty_releases_dir"])
    assert broken.rc != 0
    message = " ".join(broken.failure_messages)
    assert f"{FAULTY} failed" in message and "Rolled back: 2025.10.0-stable runs again" in message, message

    # One batch ran (compose-a, first in inventory order); the second batch never started.
    assert [sorted(batch) for batch in batches(broken)] == [["compose-a"]]
    assert broken.stats["compose-a"]["failures"] > 0
    assert "compose-b" not in broken.stats, broken.stats
    assert broken.tasks("compose-b") == []

    # compose-a ran the faulty release, failed its health checks and is back on 2025.10.0.
    assert_runs(a, sandbox, "2025.10.0-stable")
    assert {service: c["id"] for service, c in containers(a).items()} != before_a
    job = journal_jobs(a)[-1]
    assert (job["release_id"], job["status"]) == (FAULTY, "rolled_back")

    # compose-b was not touched: same containers, same journal, no faulty release on disk or in its engine.
    assert {service: c["id"] for service, c in containers(b).items()} == before_b
    assert_runs(b, sandbox, "2025.10.0-stable")
    assert journal_jobs(b) == jobs_b
    assert FAULTY not in {job["release_id"] for job in journal_jobs(b)}
    assert not (b.project_dir / "releases" / FAULTY).exists()
    faulty_digests = set(sandbox["releases"]["2025.11.1"]["digests"].values())
    pulled = {ref.split("@", 1)[1] for image in b.client.images.list() for ref in image.attrs.get("RepoDigests") or []}
    assert not pulled & faulty_digests, "the second engine pulled images of the faulty release"
