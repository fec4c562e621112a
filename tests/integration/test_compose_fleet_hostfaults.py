# SPDX-License-Identifier: GPL-3.0-or-later
"""A faulty host in the batch stops the whole batch before anything changes on any host.

fleet-2 and fleet-3 run 2025.09.0 of this module's project; each test puts one faulty host between
them in the inventory and upgrades to 2025.10.0 in one batch (a change is pending on both healthy
hosts). The faults are real: an inventory host whose SSH port has nothing listening, a host started
with ``scripts/sandbox.py host-up`` whose engine socket does not exist, and one without the Compose
v2 plugin (with a real engine). The run must fail with a message that says what is wrong, and the
healthy hosts must be exactly as before: container ids, deployments, ``current``, journal, no lock.
"""

from __future__ import annotations

import json
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from fleet import ROOT, Fleet, FleetHost, project_fleet, sandbox_hosts

pytestmark = pytest.mark.sandbox

PLAN = "Plan the deployment with Compose"
DEPLOY = "Deploy the release and prove it"
EXTRA_PORTS = range(2291, 2300)  # sshd of the extra hosts of this module
EXTRA_PORT_BASE = 18470  # services of an extra host, should one ever deploy (none may)


@pytest.fixture(scope="module")
def healthy(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """fleet-2 and fleet-3 on 2025.09.0 with a project of this module's own (ports 182x7.., 183x7..)."""
    fleet = Fleet(
        workdir=tmp_path_factory.mktemp("fleet-hostfaults"),
        collections=installed_collection,
        runner=playbook_runner,
        hosts=sandbox_hosts(sandbox, port_offset=70)[1:],
        project="it-hostfaults",
        port_offset=70,
        extra_vars={"compose_upgrade_backup": False, "compose_upgrade_evidence_gate": False},
    )
    with project_fleet(fleet):
        ready = fleet.run("upgrade", channel="stable", release="2025.09.0")
        if ready.rc != 0 and any("is unhealthy" in message for message in ready.failure_messages):
            # The sandbox images check their health every 5 s with a 3 s timeout: on a machine loaded
            # by other test runs a container can turn unhealthy while starting. This run only prepares
            # the hosts (and is idempotent), so it gets one more try.
            ready = fleet.run("upgrade", channel="stable", release="2025.09.0")
        assert ready.rc == 0, ready.failure_messages or ready.stdout[-3000:]
        assert fleet.versions() == {host.name: "2025.09.0" for host in fleet.hosts}
        yield fleet


def listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def free_port(avoid: tuple[int, ...] = ()) -> int:
    for port in EXTRA_PORTS:
        if port not in avoid and not listening(port):
            return port
    raise AssertionError(f"every port of {EXTRA_PORTS} is taken")


def sandbox_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "sandbox.py"), *args], capture_output=True, text=True, check=False, timeout=300)


@pytest.fixture
def extra_host(healthy: Fleet) -> Iterator[Any]:
    """Start hosts with ``sandbox.py host-up`` (as FleetHosts); ``host-down`` each at teardown."""
    started: list[str] = []

    def start(name: str, *options: str) -> FleetHost:
        port = free_port()
        up = sandbox_cli("host-up", name, "--port", str(port), *options)
        assert up.returncode == 0, up.stderr
        started.append(name)
        record = json.loads(up.stdout.strip().splitlines()[-1])
        assert record["ssh_port"] == port
        return FleetHost(name=name, ssh_port=port, docker_host=record["docker_host"] or "", key_file=record["ssh_private_key_file"], port_base=EXTRA_PORT_BASE)

    yield start
    for name in started:
        down = sandbox_cli("host-down", name)
        assert down.returncode == 0, down.stderr


def host_state(fleet: Fleet, host: FleetHost) -> dict[str, Any]:
    """What a run could change on a host: containers, deployments, current, journal, lock."""
    return {
        "containers": host.containers(fleet.project),
        "deployments": sorted(host.ssh(f"ls -A {fleet.project_dir}/deployments", check=False).stdout.split()),
        "current": host.ssh(f"readlink {fleet.project_dir}/current", check=False).stdout.strip(),
        "jobs": host.journal(fleet.project_dir),
        "lock": host.read_file(f"{fleet.project_dir}/deploy.lock"),
    }


def upgrade_with(healthy: Fleet, faulty: Optional[FleetHost], *, check: bool = False, host_vars: Optional[dict[str, Any]] = None) -> Any:
    """Upgrade [fleet-2, faulty, fleet-3] to 2025.10.0 in one batch; assert fleet-2 and fleet-3 were not changed."""
    fleet = Fleet(
        workdir=healthy.workdir / (faulty.name if faulty else "lost"),
        collections=healthy.collections,
        runner=healthy.runner,
        hosts=[healthy.hosts[0], *([faulty] if faulty else []), healthy.hosts[1]],
        project=healthy.project,
        port_offset=healthy.port_offset,
        extra_vars=healthy.extra_vars,
        compose=healthy.compose,
    )
    fleet.workdir.mkdir(exist_ok=True)
    fleet.write(host_vars=host_vars)
    before = {host.name: host_state(healthy, host) for host in healthy.hosts}
    for host in healthy.hosts:
        assert before[host.name]["current"].startswith("deployments/2025.09.0-stable+") and before[host.name]["lock"] is None, before[host.name]
    result = fleet.run("upgrade", check=check, channel="stable", release="2025.10.0")
    assert result.rc != 0, result.stdout[-3000:]
    for host in healthy.hosts:
        planned = result.result(PLAN, host.name)
        assert planned["plan"]["recreate"], f"{host.name}: no change was pending: {planned['plan']}"
        ran = [name.split(" : ", 1)[-1] for name, task in result.tasks(host.name) if not task.get("skipped")]
        # The batch stopped after the plan: no host deployed (the deploy takes the lock and opens the job).
        assert DEPLOY not in ran, f"{host.name} went on to {ran}"
        assert host_state(healthy, host) == before[host.name], f"{host.name} was changed"
        assert healthy.versions()[host.name] == "2025.09.0"
        if not check:
            assert result.changed(host.name) == 0
    return result


def test_unreachable_host_stops_the_batch(healthy: Fleet) -> None:
    """A host whose SSH port has nothing listening: the run fails naming it; no healthy host takes its lock or changes."""
    port = free_port()
    unreachable = FleetHost(name="it-unreachable", ssh_port=port, docker_host="", key_file=healthy.hosts[0].key_file, port_base=EXTRA_PORT_BASE)
    result = upgrade_with(healthy, unreachable)
    assert result.result(PLAN, unreachable.name).get("unreachable") is True
    answered = result.result("Require the host to answer", unreachable.name)
    assert answered["failed"] is True
    assert answered["msg"].startswith("it-unreachable cannot be reached: "), answered["msg"]
    assert f"ssh: connect to host 127.0.0.1 port {port}: Connection refused" in answered["msg"], answered["msg"]
    assert result.stats[unreachable.name]["failures"] == 1


def test_host_without_engine_stops_the_batch(healthy: Fleet, extra_host) -> None:
    """A host whose engine socket does not exist: the plan says the engine does not answer; nothing else changes."""
    noengine = extra_host("it-noengine", "--engine-socket", "/nonexistent/docker.sock")
    result = upgrade_with(healthy, noengine)
    planned = result.result(PLAN, noengine.name)
    assert planned["failed"] is True
    assert "The Docker engine at unix:///var/run/docker.sock does not answer" in planned["msg"], planned["msg"]
    assert noengine.ssh("test -e /srv/it-hostfaults", check=False).returncode != 0, "the host without an engine got a project directory"


def test_host_without_compose_plugin_stops_the_batch(healthy: Fleet, extra_host) -> None:
    """A host with an engine but no Compose v2 plugin: check mode and the real run both say the plugin is missing."""
    nocompose = extra_host("it-nocompose", "--no-compose")
    assert nocompose.ssh("docker version --format '{{.Server.Version}}'").stdout.strip(), "the host must reach a real engine"
    for check in (True, False):
        result = upgrade_with(healthy, nocompose, check=check)
        planned = result.result(PLAN, nocompose.name)
        assert planned["failed"] is True
        message = planned["msg"]
        assert message.startswith("The Docker Compose v2 plugin is missing on this host"), message
        assert message.endswith("install it as a Docker CLI plugin."), message
        assert "\n" not in message and "Usage" not in message and "Traceback" not in message, message
    assert nocompose.ssh("test -e /srv/it-hostfaults", check=False).returncode != 0, "the host without Compose got a project directory"


def test_host_lost_after_the_plan_fails_the_run_and_the_fleet_rollback_returns_the_batch(healthy: Fleet, tmp_path: Path) -> None:
    """fleet-3 answers the plan, then its SSH connection fails: fleet-2 deploys in the same batch (each host's deploy is
    its own transaction), fleet-3 fails naming itself, and the fleet rollback returns fleet-2 to its bookmark.

    Cost: one upgrade and one rollback of fleet-2 (about 40 s on the sandbox).
    """
    first, lost = healthy.hosts
    # fleet-3's ssh client for this run: the first connection (the plan) goes through, every later one
    # fails the way ssh does when nothing listens (exit 255, which Ansible reports as unreachable).
    wrapper = tmp_path / "ssh-once"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"calls={tmp_path / 'calls'}\n"
        'n=$(( $(cat "$calls" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$calls"\n'
        f'[ "$n" -ge 2 ] && {{ echo "ssh: connect to host 127.0.0.1 port {lost.ssh_port}: Connection refused" >&2; exit 255; }}\n'
        'exec ssh "$@"\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    fleet = Fleet(
        workdir=healthy.workdir / "lost",
        collections=healthy.collections,
        runner=healthy.runner,
        hosts=healthy.hosts,
        project=healthy.project,
        port_offset=healthy.port_offset,
        extra_vars={**healthy.extra_vars, "stellaops_fleet_rollback": True},
    )
    fleet.workdir.mkdir(exist_ok=True)
    fleet.write(host_vars={lost.name: {"ansible_ssh_executable": str(wrapper)}})
    lost_before = host_state(healthy, lost)
    jobs_before = {job["id"] for job in first.journal(healthy.project_dir)}

    result = fleet.run("upgrade", channel="stable", release="2025.10.0")
    assert result.rc != 0
    assert result.result(PLAN, lost.name).get("failed") is not True, "fleet-3 must answer the plan (one ssh connection per task)"
    assert result.result(DEPLOY, lost.name).get("unreachable") is True
    assert result.result(DEPLOY, first.name)["outcome"] == "deployed"
    (message,) = [m for m in result.failure_messages if m.startswith("Upgrade of ")]
    assert f"({lost.name}) to 2025.10.0-stable failed at Require the host to have answered the deployment: " in message, message
    assert f"{lost.name} cannot be reached any more: " in message and f"port {lost.ssh_port}: Connection refused" in message, message
    assert message.endswith(f"Fleet rollback: {first.name} returned to their bookmarks."), message
    # fleet-2 runs its bookmark again, journaled as the rollback of this run's upgrade; fleet-3 never changed.
    assert healthy.versions() == {host.name: "2025.09.0" for host in healthy.hosts}
    new_jobs = [job for job in first.journal(healthy.project_dir) if job["id"] not in jobs_before]
    assert [(job["release_id"], job["status"]) for job in new_jobs] == [("2025.10.0-stable", "completed"), ("2025.09.0-stable", "completed")]
    assert new_jobs[1]["rollback_of"] == new_jobs[0]["id"]
    assert host_state(healthy, lost) == lost_before
    assert first.read_file(f"{healthy.project_dir}/deploy.lock") is None
