# SPDX-License-Identifier: GPL-3.0-or-later
"""Rolling upgrades across the sandbox fleet in batches of one host (``stellaops_serial=1``).

The three fleet hosts run 2025.09.0 first; then an upgrade to 2025.10.0 fails on the second host
only: a host variable of fleet-2 replaces its health checks with one that accepts nothing but
2025.09.0. fleet-1 (batch 1) completes, fleet-2 (batch 2) fails its health check and returns to its
bookmark, fleet-3 (batch 3) is never started. Without ``stellaops_fleet_rollback`` fleet-1 stays on
2025.10.0 and the failure says the fleet is mixed; with it fleet-1 returns to its bookmark too.

Everything is read back from the hosts: container ids and config hashes from each engine, the
deployment records, ``current``, the journal and the lock file over SSH, /health over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from fleet import SERVICES, Fleet, FleetHost, project_fleet, sandbox_hosts

pytestmark = pytest.mark.sandbox

UPGRADE_PLAY = "Upgrade the compose hosts"
PLAN = "Plan the deployment with Compose"
DEPLOY = "Deploy the release and prove it"
FAIL = "Fail with what failed and what the fleet runs now"
# Three batches one after the other; on a machine loaded by other test runs they can take long.
RUN_TIMEOUT = 1800


@pytest.fixture(scope="module")
def fleet(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The three fleet hosts with a project of this module's own (ports 181x6.., 182x6.., 183x6..)."""
    fleet = Fleet(
        workdir=tmp_path_factory.mktemp("fleet-rolling"),
        collections=installed_collection,
        runner=playbook_runner,
        hosts=sandbox_hosts(sandbox, port_offset=60),
        project="it-rolling",
        port_offset=60,
        extra_vars={"compose_upgrade_backup": False, "compose_upgrade_evidence_gate": False, "stellaops_serial": 1},
    )
    with project_fleet(fleet):
        yield fleet


def batches(result: Any) -> list[dict[str, str]]:
    """One entry per play entry of the serial upgrade play: host -> the release id its plan and deploy brought."""
    found = []
    for play in result.data.get("plays", []):
        if play["play"]["name"] != UPGRADE_PLAY:
            continue
        batch: dict[str, str] = {}
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ", 1)[-1] not in (PLAN, DEPLOY):
                continue
            for name, outcome in task["hosts"].items():
                release_id = (outcome.get("deployment") or {}).get("release_id")
                assert batch.get(name, release_id) == release_id, (name, batch, outcome)
                batch[name] = release_id
        found.append(batch)
    return found


def host_state(fleet: Fleet, host: FleetHost) -> dict[str, Any]:
    """What a run could change on a host: containers, deployments, current, journal, lock."""
    listing = host.ssh(f"ls -A {fleet.project_dir}/deployments", check=False).stdout.split()
    current = host.ssh(f"readlink {fleet.project_dir}/current", check=False).stdout.strip()
    return {
        "containers": host.containers(fleet.project),
        "deployments": sorted(listing),
        "current": current,
        "jobs": host.journal(fleet.project_dir),
        "lock": host.read_file(f"{fleet.project_dir}/deploy.lock"),
    }


def recorded_hashes(fleet: Fleet, host: FleetHost, deployment_id: str) -> dict[str, str]:
    record = host.read_file(f"{fleet.project_dir}/deployments/{deployment_id}/deployment.json")
    assert record is not None, (host.name, deployment_id)
    return json.loads(record)["config_hashes"]


def assert_runs(fleet: Fleet, host: FleetHost, release_id: str, deployment_id: Optional[str] = None) -> None:
    """Every service of the host runs the release (engine labels, state, /health) and, when given, the deployment's recorded config hashes."""
    version = release_id.split("-", 1)[0]
    running = host.containers(fleet.project)
    assert sorted(running) == sorted(SERVICES), (host.name, sorted(running))
    for service, container in running.items():
        assert (container["release_id"], container["state"]) == (release_id, "running"), (host.name, service, container)
        assert host.health(fleet.port(host, service)) == {"status": "ok", "release": version, "component": service}, (host.name, service)
    if deployment_id is not None:
        assert {s: c["config_hash"] for s, c in running.items()} == recorded_hashes(fleet, host, deployment_id), (host.name, deployment_id)


def settle_on_2025_09(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Every host on 2025.09.0 (no fault in the inventory), one batch per host; the state of each host after it."""
    fleet.write()
    # A stale lock is one left by a killed run of this module (a timed-out test): cleared here, in
    # preparation, not in the runs under test.
    ready = fleet.run("upgrade", timeout=RUN_TIMEOUT, channel="stable", release="2025.09.0", compose_upgrade_break_stale_lock=True)
    if ready.rc != 0 and any("is unhealthy" in message for message in ready.failure_messages):
        # The sandbox images check their health every 5 s with a 3 s timeout: on a machine loaded
        # by other test runs a container can turn unhealthy while starting. This run only prepares
        # the fleet (and is idempotent), so it gets one more try.
        ready = fleet.run("upgrade", timeout=RUN_TIMEOUT, channel="stable", release="2025.09.0")
    assert ready.rc == 0, ready.failure_messages or ready.stdout[-3000:]
    assert batches(ready) == [{host.name: "2025.09.0-stable"} for host in fleet.hosts]  # one play entry per batch
    states = {host.name: host_state(fleet, host) for host in fleet.hosts}
    for host in fleet.hosts:
        assert states[host.name]["current"].startswith("deployments/2025.09.0-stable+"), (host.name, states[host.name])
        assert_runs(fleet, host, "2025.09.0-stable", Path(states[host.name]["current"]).name)
        assert states[host.name]["lock"] is None
    return states


def fail_second_batch(fleet: Fleet, **extra: Any) -> Any:
    """Upgrade to 2025.10.0 with fleet-2 accepting nothing but 2025.09.0 in its health check."""
    second = fleet.hosts[1]
    fleet.write(
        host_vars={
            second.name: {
                "stellaops_compose": fleet.compose_settings(
                    health_checks=[
                        {
                            "name": "authority-is-2025.09.0",
                            "type": "http",
                            "url": f"http://127.0.0.1:{fleet.port(second)}/health",
                            "body_contains": '"release": "2025.09.0"',
                        }
                    ],
                    health_retries=2,
                ),
            }
        }
    )
    try:
        return fleet.run("upgrade", timeout=RUN_TIMEOUT, channel="stable", release="2025.10.0", **extra)
    finally:
        fleet.write()


def assert_second_rolled_back_third_untouched(fleet: Fleet, result: Any, before: dict[str, dict[str, Any]]) -> None:
    first, second, third = fleet.hosts
    assert result.rc != 0
    # Two batches ran (one play entry each) and both deployed the one release resolved before the first.
    assert batches(result) == [{first.name: "2025.10.0-stable"}, {second.name: "2025.10.0-stable"}]
    # fleet-3 never started: its only task is the pre-flight play's, skipped (the fleet turns pre-flight off).
    assert [name for name, outcome in result.tasks(third.name) if not outcome.get("skipped")] == [], result.tasks(third.name)
    assert result.stats[third.name]["ok"] == result.stats[third.name]["changed"] == 0, result.stats

    # fleet-2 failed its health check on 2025.10.0 and runs its bookmark again, exactly.
    bookmark = Path(before[second.name]["current"]).name
    assert result.result(PLAN, second.name)["bookmark"]["deployment_id"] == bookmark
    deploy = result.result(DEPLOY, second.name)
    assert deploy["failed"] is True and deploy["touched"] is True and "authority-is-2025.09.0" in deploy["msg"], deploy.get("msg")
    assert_runs(fleet, second, "2025.09.0-stable", bookmark)
    after = host_state(fleet, second)
    assert after["current"] == before[second.name]["current"]
    new_jobs = after["jobs"][len(before[second.name]["jobs"]) :]
    assert after["jobs"][: len(before[second.name]["jobs"])] == before[second.name]["jobs"]
    assert [(job["release_id"], job["status"], job["previous_deployment_id"]) for job in new_jobs] == [("2025.10.0-stable", "rolled_back", bookmark)]
    assert after["lock"] is None

    # fleet-3 was never touched: same containers, journal, deployments, current; no lock left.
    assert host_state(fleet, third) == before[third.name]


def test_failed_second_batch_leaves_the_fleet_mixed(fleet: Fleet) -> None:
    """fleet-1 completes 2025.10.0, fleet-2 fails and returns to its bookmark, fleet-3 never starts; the failure names fleet-1."""
    before = settle_on_2025_09(fleet)
    first, second, _third = fleet.hosts

    result = fail_second_batch(fleet)
    assert_second_rolled_back_third_untouched(fleet, result, before)

    # fleet-1 completed its batch and stays on 2025.10.0, in a new deployment of its own.
    after = host_state(fleet, first)
    assert after["current"].startswith("deployments/2025.10.0-stable+"), after["current"]
    deployed = result.result(DEPLOY, first.name)
    assert deployed["changed"] is True and deployed["verified"] is True
    assert deployed["deployment"]["deployment_id"] == Path(after["current"]).name
    assert_runs(fleet, first, "2025.10.0-stable", Path(after["current"]).name)
    old_ids = {c["id"] for c in before[first.name]["containers"].values()}
    assert not old_ids & {c["id"] for c in after["containers"].values()}, "fleet-1 still runs containers of 2025.09.0"
    job = after["jobs"][-1]
    assert len(after["jobs"]) == len(before[first.name]["jobs"]) + 1
    assert (job["release_id"], job["status"], job["previous_deployment_id"]) == ("2025.10.0-stable", "completed", Path(before[first.name]["current"]).name)
    assert after["lock"] is None

    message = result.result(FAIL, second.name)["msg"]
    assert "The fleet is mixed: fleet-1 completed earlier batches and run 2025.10.0-stable" in message, message
    assert "compose_upgrade_fleet_rollback=true" in message and "Fleet rollback" not in message, message


def test_failed_second_batch_with_fleet_rollback(fleet: Fleet) -> None:
    """With stellaops_fleet_rollback=true fleet-1 returns to its bookmark too, journalled as a rollback of its upgrade job."""
    before = settle_on_2025_09(fleet)
    first, second, _third = fleet.hosts

    result = fail_second_batch(fleet, stellaops_fleet_rollback=True)
    assert_second_rolled_back_third_untouched(fleet, result, before)

    # fleet-1 completed 2025.10.0 in batch 1, then went back to its bookmark when batch 2 failed.
    bookmark = Path(before[first.name]["current"]).name
    deployed = result.result(DEPLOY, first.name)
    assert deployed["changed"] is True and deployed["deployment"]["release_id"] == "2025.10.0-stable"
    upgraded_to = deployed["deployment"]["deployment_id"]
    after = host_state(fleet, first)
    assert after["current"] == f"deployments/{bookmark}"
    assert_runs(fleet, first, "2025.09.0-stable", bookmark)
    assert upgraded_to in after["deployments"], "the deployment of 2025.10.0 is kept for a later upgrade"
    assert after["lock"] is None
    assert after["jobs"][: len(before[first.name]["jobs"])] == before[first.name]["jobs"]
    upgrade, rollback = after["jobs"][len(before[first.name]["jobs"]) :]
    assert (upgrade["release_id"], upgrade["deployment_id"], upgrade["status"]) == ("2025.10.0-stable", upgraded_to, "completed")
    assert (rollback["rollback_of"], rollback["status"]) == (upgrade["id"], "completed"), rollback
    assert (rollback["release_id"], rollback["deployment_id"], rollback["previous_deployment_id"]) == ("2025.09.0-stable", bookmark, upgraded_to)
    assert "fleet rollback" in rollback["message"] and second.name in rollback["message"], rollback["message"]

    message = result.result(FAIL, second.name)["msg"]
    assert "Fleet rollback: fleet-1 returned to their bookmarks." in message, message
    assert "The fleet is mixed" not in message, message
