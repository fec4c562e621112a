# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose profile on the sandbox fleet: hosts over real SSH, the built and installed collection.

Each host is a container with its own filesystem reached over SSH on 127.0.0.1; fleet-2 and
fleet-3 drive Docker engines of their own. The playbooks run as ``stellaops.deploy.upgrade`` and
``stellaops.deploy.rollback`` from a collection built into a tarball and installed outside this
checkout. Every step is checked on the engines themselves (container ids, config hashes, images),
on the hosts' files (over SSH) and on what the services' health endpoints answer.

Each test brings the project to the state it starts from (``bring_to``): a test that finds the
state the one before it left runs no playbook for it, one run alone deploys it first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from fleet import ROOT, SERVICES, Fleet, FleetHost, project_fleet, sandbox_hosts

pytestmark = pytest.mark.sandbox

DATABASE_PASSWORD = (ROOT / ".sandbox" / "secrets" / "postgres_password").read_text().strip()
BACKUP_TASK = "Back up PostgreSQL, MongoDB, object storage and Kubernetes configuration"
BASELINE_TASK = "Capture the evidence baseline and the roots export"
CONTINUITY_TASK = "Verify evidence continuity against the baseline"


@pytest.fixture(scope="module")
def fleet(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The three fleet hosts with a project of this module's own (ports 181x1.., 182x1.., 183x1..)."""
    fleet = Fleet(
        workdir=tmp_path_factory.mktemp("fleet-lifecycle"),
        collections=installed_collection,
        runner=playbook_runner,
        hosts=sandbox_hosts(sandbox, port_offset=10),
        project="it-lifecycle",
        port_offset=10,
        extra_vars={"compose_upgrade_backup": False, "compose_upgrade_evidence_gate": False},
    )
    assert [host.name for host in fleet.hosts] == ["fleet-1", "fleet-2", "fleet-3"]
    with project_fleet(fleet):
        yield fleet


# ---------------------------------------------------------------------------------------- helpers


def default_ports(host: FleetHost) -> dict[str, int]:
    """Service -> host port, as inventory/local/group_vars/compose_hosts.yml derives them from stellaops_port_base."""
    return {service: host.port_base + 1 + index for index, service in enumerate(SERVICES)}


def host_settings(fleet: Fleet, host: FleetHost, *, environment: str = "sandbox", moved: Optional[dict[str, int]] = None) -> dict[str, Any]:
    """Host vars with the settings of the sandbox inventory, another STELLAOPS_ENVIRONMENT or services on other ports.

    The health checks follow the ports: each service's /health must report the release deployed.
    """
    ports = {**default_ports(host), **(moved or {})}
    return {
        "compose_upgrade_env": {
            "STELLAOPS_ENVIRONMENT": environment,
            **{f"STELLAOPS_{service.upper().replace('-', '_')}_PORT": str(port) for service, port in ports.items()},
        },
        "stellaops_compose": fleet.compose_settings(
            health_checks=[
                {"name": service, "type": "http", "url": f"http://127.0.0.1:{port}/health", "body_contains": '"release": "{release_version}"'}
                for service, port in ports.items()
            ]
        ),
    }


def releases(host: FleetHost, ports: dict[str, int]) -> dict[str, Optional[str]]:
    """Service -> the release its /health reports on that port (None when it does not answer)."""
    return {service: (host.health(port) or {}).get("release") for service, port in ports.items()}


def host_ports(container: dict[str, Any]) -> set[int]:
    return {int(binding["HostPort"]) for bindings in container["ports"] for binding in bindings}


def ids(containers: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {service: container["id"] for service, container in containers.items()}


def recreated(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> list[str]:
    """Services whose container the engine replaced (or created)."""
    return sorted(service for service, container in after.items() if before.get(service, {}).get("id") != container["id"])


def current(fleet: Fleet, host: FleetHost) -> Optional[str]:
    link = host.ssh(f"readlink {fleet.project_dir}/current", check=False).stdout.strip()
    return link.removeprefix("deployments/") or None


def kept(fleet: Fleet, host: FleetHost) -> list[str]:
    return sorted(host.ssh(f"ls {fleet.project_dir}/deployments", check=False).stdout.split())


def record(fleet: Fleet, host: FleetHost, deployment_id: str) -> dict[str, Any]:
    text = host.read_file(f"{fleet.project_dir}/deployments/{deployment_id}/deployment.json")
    assert text is not None, f"{host.name}: deployment {deployment_id} is not kept"
    return json.loads(text)


def assert_runs(fleet: Fleet, host: FleetHost, deployment_id: str, version: str, ports: dict[str, int]) -> dict[str, dict[str, Any]]:
    """The host runs the kept deployment: ``current`` points at it, every container carries the config
    hash it recorded and its release, and every service answers /health on its port with the version."""
    containers = host.containers(fleet.project)
    assert current(fleet, host) == deployment_id, host.name
    assert {service: c["config_hash"] for service, c in containers.items()} == record(fleet, host, deployment_id)["config_hashes"], host.name
    assert {c["release_id"] for c in containers.values()} == {deployment_id.rsplit("+", 1)[0]}, host.name
    assert {c["state"] for c in containers.values()} == {"running"}, host.name
    assert {service: host_ports(c) for service, c in containers.items()} == {service: {port} for service, port in ports.items()}, host.name
    assert releases(host, ports) == dict.fromkeys(ports, version), host.name
    return containers


def environment_of(container: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in container["env"])


def bring_to(fleet: Fleet, versions: list[str]) -> None:
    """The project keeps exactly ``<version>-stable+1`` of each version, deployed in that order with the
    inventory's settings, and runs the last one; deployed from nothing unless that is already so."""
    fleet.write()
    wanted = [f"{version}-stable+1" for version in versions]

    def there(host: FleetHost) -> bool:
        if kept(fleet, host) != sorted(wanted) or current(fleet, host) != wanted[-1] or host.read_file(f"{fleet.project_dir}/deploy.lock") is not None:
            return False
        containers = host.containers(fleet.project)
        return (
            {s: c["config_hash"] for s, c in containers.items()} == record(fleet, host, wanted[-1])["config_hashes"]
            and all(environment_of(c)["STELLAOPS_ENVIRONMENT"] == "sandbox" for c in containers.values())
            and releases(host, default_ports(host)) == dict.fromkeys(SERVICES, versions[-1])
        )

    if all(there(host) for host in fleet.hosts):
        return
    fleet.clean()
    for version in versions:
        result = fleet.run("upgrade", channel="stable", release=version)
        assert result.rc == 0, (version, result.failure_messages, result.stdout[-3000:])


def ran(result: Any, task_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(host, result) of every run of a task that was not skipped, over all batches."""
    return [
        (host, task_result)
        for play in result.data.get("plays", [])
        for task in play.get("tasks", [])
        if task["task"]["name"].split(" : ", 1)[-1] == task_name
        for host, task_result in task["hosts"].items()
        if not task_result.get("skipped")
    ]


# ------------------------------------------------------------------------------------------ tests


def test_check_apply_check_apply(fleet: Fleet) -> None:
    """Check mode predicts the real run exactly; a second run changes nothing."""
    fleet.clean()
    fleet.write()
    checked = fleet.run("upgrade", check=True, channel="stable", release="2025.09.0")
    assert checked.rc == 0, checked.stdout[-3000:]
    for host in fleet.hosts:
        plan = checked.result("Plan the deployment with Compose", host.name)
        assert plan["changed"] is True
        assert sorted(plan["plan"]["create"]) == sorted(["attestor", "authority", "notify", "scanner-web", "scheduler", "signer"])
        assert host.containers(fleet.project) == {}, "check mode started containers"
        assert host.read_file(f"{fleet.project_dir}/current") is None

    applied = fleet.run("upgrade", channel="stable", release="2025.09.0")
    assert applied.rc == 0, applied.stdout[-3000:]
    assert fleet.versions() == {host.name: "2025.09.0" for host in fleet.hosts}
    before = {host.name: host.containers(fleet.project) for host in fleet.hosts}
    for host in fleet.hosts:
        deployed = applied.result("Deploy the release and prove it", host.name)
        assert deployed["changed"] is True and deployed["verified"] is True
        assert {s: c["config_hash"] for s, c in before[host.name].items()} == deployed["config_hashes"]

    again_check = fleet.run("upgrade", check=True, channel="stable", release="2025.09.0")
    again = fleet.run("upgrade", channel="stable", release="2025.09.0")
    assert again_check.rc == 0 and again.rc == 0
    for host in fleet.hosts:
        assert again_check.result("Plan the deployment with Compose", host.name)["plan"]["changes"] == []
        assert again.changed(host.name) == 0
        assert {s: c["id"] for s, c in host.containers(fleet.project).items()} == {s: c["id"] for s, c in before[host.name].items()}


def test_settings_change_checked_applied_rolled_back_and_upgraded(fleet: Fleet) -> None:
    """A settings-only change is a deployment of its own (<release_id>+2): check mode plans exactly the
    containers the real run replaces and shows the changed setting, never the database password (not
    even with -vvv); the rollback returns every host to +1 as recorded, and the upgrade to 2025.10.0
    takes the new settings along."""
    bring_to(fleet, ["2025.09.0"])
    fleet_1, fleet_2, fleet_3 = fleet.hosts
    # fleet-1: another STELLAOPS_ENVIRONMENT, which every service reads; fleet-2: the authority on
    # another port; fleet-3: the scheduler on another port. Nothing else differs.
    changes = {
        fleet_1.name: {"environment": "sandbox-lifecycle-b"},
        fleet_2.name: {"moved": {"authority": fleet_2.port_base + 7}},
        fleet_3.name: {"moved": {"scheduler": fleet_3.port_base + 8}},
    }
    expected = {fleet_1.name: sorted(SERVICES), fleet_2.name: ["authority"], fleet_3.name: ["scheduler"]}
    changed_lines = {
        fleet_1.name: ("STELLAOPS_ENVIRONMENT='sandbox'", "STELLAOPS_ENVIRONMENT='sandbox-lifecycle-b'"),
        fleet_2.name: (f"STELLAOPS_AUTHORITY_PORT='{fleet_2.port_base + 1}'", f"STELLAOPS_AUTHORITY_PORT='{fleet_2.port_base + 7}'"),
        fleet_3.name: (f"STELLAOPS_SCHEDULER_PORT='{fleet_3.port_base + 5}'", f"STELLAOPS_SCHEDULER_PORT='{fleet_3.port_base + 8}'"),
    }
    new_ports = {host.name: {**default_ports(host), **changes[host.name].get("moved", {})} for host in fleet.hosts}
    new_settings = {host.name: host_settings(fleet, host, **changes[host.name]) for host in fleet.hosts}
    first = {host.name: host.containers(fleet.project) for host in fleet.hosts}
    # The secret reaches the containers, so its absence from the output below means something.
    assert len(DATABASE_PASSWORD) >= 8
    assert all(environment_of(c)["STELLAOPS_DATABASE_PASSWORD"] == DATABASE_PASSWORD for c in first[fleet_1.name].values())

    # --check --diff -vvv: the plan of each host, nothing touched, the password nowhere.
    fleet.write(host_vars=new_settings)
    checked = fleet.run("upgrade", check=True, diff=True, verbosity=3, channel="stable", release="2025.09.0")
    assert checked.rc == 0, (checked.failure_messages, checked.stdout[-3000:])
    assert "ESTABLISH SSH CONNECTION" in checked.stdout, "the run was not verbose"
    assert DATABASE_PASSWORD not in checked.stdout and DATABASE_PASSWORD not in checked.stderr
    plans = {}
    for host in fleet.hosts:
        plan = checked.result("Plan the deployment with Compose", host.name)
        plans[host.name] = plan
        assert plan["changed"] is True, host.name
        assert plan["deployment"] == {
            "deployment_id": "2025.09.0-stable+2", "new": True, "release_id": "2025.09.0-stable", "release": "2025.09.0", "channel": "stable",
            "evidence_schema": 1,
        }  # fmt: skip
        assert plan["bookmark"]["deployment_id"] == "2025.09.0-stable+1", host.name
        assert sorted(plan["plan"]["recreate"]) == expected[host.name], host.name
        assert plan["plan"]["create"] == [] and plan["plan"]["remove"] == [], host.name
        assert sorted(plan["plan"]["unchanged"]) == sorted(set(SERVICES) - set(expected[host.name])), host.name
        lock_diff, env_diff = plan["diff"]
        assert lock_diff["before"] == lock_diff["after"], f"{host.name}: a settings-only change changed the lock"
        before_lines, after_lines = set(env_diff["before"].splitlines()), set(env_diff["after"].splitlines())
        assert (before_lines - after_lines, after_lines - before_lines) == ({changed_lines[host.name][0]}, {changed_lines[host.name][1]}), host.name
        assert "STELLAOPS_DATABASE_PASSWORD=********" in after_lines, host.name
        assert ids(host.containers(fleet.project)) == ids(first[host.name]), f"{host.name}: check mode replaced containers"
        assert kept(fleet, host) == ["2025.09.0-stable+1"] and current(fleet, host) == "2025.09.0-stable+1", host.name

    # The real run replaces exactly the planned containers, with the predicted config hashes.
    applied = fleet.run("upgrade", verbosity=3, channel="stable", release="2025.09.0")
    assert applied.rc == 0, (applied.failure_messages, applied.stdout[-3000:])
    assert DATABASE_PASSWORD not in applied.stdout and DATABASE_PASSWORD not in applied.stderr
    second = {}
    for host in fleet.hosts:
        deployed = applied.result("Deploy the release and prove it", host.name)
        assert deployed["changed"] is True and deployed["deployment"]["deployment_id"] == "2025.09.0-stable+2", host.name
        assert deployed["config_hashes"] == plans[host.name]["config_hashes"], host.name
        second[host.name] = assert_runs(fleet, host, "2025.09.0-stable+2", "2025.09.0", new_ports[host.name])
        assert recreated(first[host.name], second[host.name]) == sorted(plans[host.name]["plan"]["recreate"]), host.name
        assert host.ssh(f"stat -c %a {fleet.project_dir}/deployments/2025.09.0-stable+2/settings.env").stdout.strip() == "600"
        job = host.journal(fleet.project_dir)[-1]
        assert (job["deployment_id"], job["status"], job["previous_deployment_id"]) == ("2025.09.0-stable+2", "completed", "2025.09.0-stable+1")
    assert {environment_of(c)["STELLAOPS_ENVIRONMENT"] for c in second[fleet_1.name].values()} == {"sandbox-lifecycle-b"}
    assert fleet_2.health(fleet_2.port_base + 1) is None, "the authority of fleet-2 still answers on its old port"

    # Roll back (the inventory back to its settings, whose health checks probe the old ports): every
    # host returns to +1 as recorded, and only the containers of the change are replaced again.
    fleet.write()
    rolled = fleet.run("rollback")
    assert rolled.rc == 0, (rolled.failure_messages, rolled.stdout[-3000:])
    for host in fleet.hosts:
        third = assert_runs(fleet, host, "2025.09.0-stable+1", "2025.09.0", default_ports(host))
        assert recreated(second[host.name], third) == expected[host.name], host.name
        assert {environment_of(c)["STELLAOPS_ENVIRONMENT"] for c in third.values()} == {"sandbox"}, host.name
        jobs = host.journal(fleet.project_dir)
        changed_job = next(job for job in reversed(jobs) if job["deployment_id"] == "2025.09.0-stable+2")
        assert jobs[-1]["deployment_id"] == "2025.09.0-stable+1" and jobs[-1]["status"] == "completed", host.name
        assert (jobs[-1]["rollback_of"], jobs[-1]["previous_deployment_id"]) == (changed_job["id"], "2025.09.0-stable+2"), host.name
        assert kept(fleet, host) == ["2025.09.0-stable+1", "2025.09.0-stable+2"], host.name

    # Upgrade again, to 2025.10.0 with the new settings.
    fleet.write(host_vars=new_settings)
    upgraded = fleet.run("upgrade", channel="stable", release="2025.10.0")
    assert upgraded.rc == 0, (upgraded.failure_messages, upgraded.stdout[-3000:])
    for host in fleet.hosts:
        fourth = assert_runs(fleet, host, "2025.10.0-stable+1", "2025.10.0", new_ports[host.name])
        assert upgraded.result("Deploy the release and prove it", host.name)["bookmark"]["deployment_id"] == "2025.09.0-stable+1", host.name
        assert host.read_file(f"{fleet.project_dir}/deployments/2025.10.0-stable+1/settings.env") is not None
        assert {environment_of(c)["STELLAOPS_ENVIRONMENT"] for c in fourth.values()} == {changes[host.name].get("environment", "sandbox")}, host.name


def test_backup_and_evidence_gates_once_per_environment(fleet: Fleet, tmp_path: Path) -> None:
    """One backup set and one evidence baseline per environment and run, taken on the controller by
    one host, continuity proven after; none on a run that changes nothing; one for a run in batches of one."""
    fleet.clean()
    fleet.write()
    gates = {
        "compose_upgrade_backup": True,
        "compose_upgrade_evidence_gate": True,
        "backup_dir": str(tmp_path / "backups"),
        "evidence_gate_baseline_path": str(tmp_path / "evidence" / "baseline.json"),
        "evidence_gate_cache_path": str(tmp_path / "evidence" / "hash-cache.json"),
        "evidence_gate_report_dir": str(tmp_path / "evidence" / "reports"),
    }

    def sets() -> list[Path]:
        backups = tmp_path / "backups"
        return sorted(path for path in backups.iterdir() if path.is_dir()) if backups.exists() else []

    def assert_gated_once(result: Any, set_path: Path) -> None:
        backed_up = ran(result, BACKUP_TASK)
        assert len(backed_up) == 1, [host for host, _result in backed_up]
        assert backed_up[0][1]["_ansible_delegated_vars"]["ansible_delegated_host"] == "localhost"
        assert backed_up[0][1]["set_path"] == str(set_path) and (set_path / "manifest.json").is_file()
        baselined = ran(result, BASELINE_TASK)
        assert len(baselined) == 1 and baselined[0][1]["_ansible_delegated_vars"]["ansible_delegated_host"] == "localhost"
        assert Path(baselined[0][1]["path"]).is_file()
        # the roots are also kept outside the baseline file: in the journal job of the host that took it
        host = next(host for host in fleet.hosts if host.name == baselined[0][0])
        assert host.journal(fleet.project_dir)[-1]["details"] == {
            "evidence_root": baselined[0][1]["total"]["root"],
            "evidence_count": baselined[0][1]["total"]["count"],
        }
        proven = ran(result, CONTINUITY_TASK)
        assert proven and all(r["continuity"] is True and r["status"] == "passed" for _host, r in proven), proven
        assert (tmp_path / "evidence" / "reports" / "continuity-report.json").is_file()

    # From nothing: every host of the one batch changes.
    first = fleet.run("upgrade", channel="stable", release="2025.09.0", **gates)
    assert first.rc == 0, (first.failure_messages, first.stdout[-3000:])
    assert len(sets()) == 1 and re.fullmatch(r"[0-9]{8}T[0-9]{6}Z", sets()[0].name), sets()  # complete: not .partial nor .failed
    assert_gated_once(first, sets()[0])
    assert fleet.versions() == {host.name: "2025.09.0" for host in fleet.hosts}

    # Nothing changes: no backup, no baseline, no continuity proof.
    again = fleet.run("upgrade", channel="stable", release="2025.09.0", **gates)
    assert again.rc == 0, (again.failure_messages, again.stdout[-3000:])
    assert len(sets()) == 1
    assert ran(again, BACKUP_TASK) == [] and ran(again, BASELINE_TASK) == [] and ran(again, CONTINUITY_TASK) == []
    assert all(again.changed(host.name) == 0 for host in fleet.hosts)

    # In batches of one host: still one backup set and one baseline for the run, before the first batch.
    taken = sets()
    serial = fleet.run("upgrade", channel="stable", release="2025.10.0", stellaops_serial=1, **gates)
    assert serial.rc == 0, (serial.failure_messages, serial.stdout[-3000:])
    new_sets = [path for path in sets() if path not in taken]
    assert len(new_sets) == 1 and len(sets()) == 2
    assert_gated_once(serial, new_sets[0])
    assert ran(serial, BACKUP_TASK)[0][0] == fleet.hosts[0].name
    assert fleet.versions() == {host.name: "2025.10.0" for host in fleet.hosts}


def test_rollback_to_a_named_release_or_deployment(fleet: Fleet) -> None:
    """A rollback target named by release id or by deployment id; a release that is not kept fails in
    one sentence and changes nothing on any host."""
    bring_to(fleet, ["2025.09.0", "2025.10.0"])
    before = {host.name: host.containers(fleet.project) for host in fleet.hosts}
    journals = {host.name: host.journal(fleet.project_dir) for host in fleet.hosts}

    missing = fleet.run("rollback", rollback_release_id="2025.08.0-stable")
    assert missing.rc != 0
    for host in fleet.hosts:
        assert missing.result("Fail with what failed", host.name)["msg"] == (
            # the sandbox inventory names the database: the rollback is planned first, for the database's decision
            f"Rollback of sandbox-it-lifecycle ({host.name}) failed at Plan the rollback: "
            f"No kept deployment of release 2025.08.0-stable under {fleet.project_dir}/deployments; nothing was changed."
        )
        assert missing.stats[host.name]["failures"] == 1 and missing.changed(host.name) == 0, host.name
        assert ids(host.containers(fleet.project)) == ids(before[host.name]), host.name
        assert current(fleet, host) == "2025.10.0-stable+1" and host.journal(fleet.project_dir) == journals[host.name], host.name
        assert host.read_file(f"{fleet.project_dir}/deploy.lock") is None, f"{host.name}: the failed rollback left its lock"

    by_release = fleet.run("rollback", rollback_release_id="2025.09.0-stable")
    assert by_release.rc == 0, (by_release.failure_messages, by_release.stdout[-3000:])
    for host in fleet.hosts:
        assert_runs(fleet, host, "2025.09.0-stable+1", "2025.09.0", default_ports(host))
        upgrade_job = next(job for job in reversed(journals[host.name]) if job["deployment_id"] == "2025.10.0-stable+1")
        job = host.journal(fleet.project_dir)[-1]
        assert (job["deployment_id"], job["status"], job["rollback_of"]) == ("2025.09.0-stable+1", "completed", upgrade_job["id"]), host.name

    by_deployment = fleet.run("rollback", rollback_release_id="2025.10.0-stable+1")
    assert by_deployment.rc == 0, (by_deployment.failure_messages, by_deployment.stdout[-3000:])
    for host in fleet.hosts:
        assert_runs(fleet, host, "2025.10.0-stable+1", "2025.10.0", default_ports(host))
        jobs = host.journal(fleet.project_dir)
        assert (jobs[-1]["deployment_id"], jobs[-1]["status"], jobs[-1]["rollback_of"]) == ("2025.10.0-stable+1", "completed", jobs[-2]["id"]), host.name
        assert kept(fleet, host) == ["2025.09.0-stable+1", "2025.10.0-stable+1"], host.name
