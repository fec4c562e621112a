# SPDX-License-Identifier: GPL-3.0-or-later
"""Pre-flight, smoke tests and promotion on the sandbox: hosts over real SSH, the built and installed collection.

Pre-flight reads the sandbox's real PostgreSQL migrations table and real Redis queues (Debian's
redis-server), the services' health endpoints on the fleet hosts, and the compose profile's secrets;
the smoke tests call the sandbox services' real endpoints (health, the Authority's OpenID configuration,
a scan submission followed until it completes) and run ``docker compose exec`` on the hosts. Promotion
commits and tags in a scratch git repository, read back with git.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from databases import B_MIGRATION, FINDINGS, MIGRATIONS_BEFORE_B, columns, query, scratch_database
from fleet import ROOT, Fleet, project_fleet, sandbox_hosts, stable_channel

pytestmark = pytest.mark.sandbox

# Outside stellaops:queue:*, which the sandbox inventory's pre-flight (make demo's, running beside the tests in CI) watches.
QUEUE = "it-operator:queue:scans"
NETWORK = "it-operator-frontdoor"
APPROVAL = {"approved_by": "release manager", "ticket": "CHG-2041"}


def redis(sandbox: dict[str, Any], *args: str) -> str:
    """One command to the sandbox's Redis (redis-cli, Debian's redis-tools)."""
    command = ["redis-cli", "-h", sandbox["redis"]["host"], "-p", str(sandbox["redis"]["port"]), *args]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()


def compose_target(sandbox: dict[str, Any], directory: Path, version: str) -> str:
    """A compose file of the stable channel that pins the images of ``version`` (an alignment target)."""
    release = yaml.safe_load(Path(sandbox["manifests"][f"{version}-stable"]).read_text())["release"]
    path = directory / f"docker-compose.stable-{version}.yaml"
    path.write_text(yaml.safe_dump({"services": {c["name"]: {"image": c["image"]} for c in release["components"]}}))
    return str(path)


def remove_network(fleet: Fleet) -> None:
    """Remove the front-door network of this module from every host (a real pre-flight creates it)."""
    for host in fleet.hosts:
        subprocess.run(["docker", "--host", host.docker_host, "network", "rm", NETWORK], capture_output=True, check=False)


def network_exists(host: Any) -> bool:
    return subprocess.run(["docker", "--host", host.docker_host, "network", "inspect", NETWORK], capture_output=True, check=False).returncode == 0


@pytest.fixture(scope="module")
def fleet(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The fleet with a project of this module's own (ports 181x5.., 182x5.., 183x5..), pre-flight on."""
    fleet = Fleet(
        workdir=tmp_path_factory.mktemp("fleet-operator"),
        collections=installed_collection,
        runner=playbook_runner,
        hosts=sandbox_hosts(sandbox, port_offset=50),
        project="it-operator",
        port_offset=50,
        extra_vars={
            "compose_upgrade_backup": False,
            "compose_upgrade_evidence_gate": False,
            "preflight_frontdoor_network": NETWORK,
            "preflight_queues": [QUEUE],
            "preflight_queue_patterns": [],
            "preflight_record_dir": str(tmp_path_factory.mktemp("preflight-records")),
        },
    )

    def clean() -> None:
        redis(sandbox, "DEL", QUEUE)
        remove_network(fleet)

    with project_fleet(fleet, also_clean=clean):
        yield fleet


def deploy(fleet: Fleet, version: str) -> None:
    """Every host runs ``version`` of the stable channel (deployed without pre-flight)."""
    if set(fleet.versions().values()) != {version}:
        result = fleet.run("upgrade", channel="stable", release=version)
        assert result.rc == 0, (result.failure_messages, result.stdout[-3000:])


def state(fleet: Fleet) -> dict[str, Any]:
    """What a change would touch: each host's containers, kept deployments and journal."""
    return {
        host.name: (
            {service: c["id"] for service, c in host.containers(fleet.project).items()},
            host.ssh(f"ls {fleet.project_dir}/deployments", check=False).stdout.split(),
            len(host.journal(fleet.project_dir)),
        )
        for host in fleet.hosts
    }


def test_preflight_lists_every_failure_and_changes_nothing(fleet: Fleet, sandbox: dict[str, Any], tmp_path: Path) -> None:
    """An unhealthy service, a pending migration, a deep queue, a missing secret, a missing approval and a compose file
    still pinning the previous release: the upgrade stops in pre-flight with all six in one message; no container,
    deployment, journal entry or network changed."""
    fleet.write()
    deploy(fleet, "2025.09.0")
    fleet.write(host_vars={"fleet-3": {"compose_upgrade_secrets": {}}})
    fleet_2 = fleet.hosts[1]
    authority = fleet_2.containers(fleet.project)["authority"]["id"]
    fleet_2.docker("stop", "--time", "1", authority)
    redis(sandbox, "DEL", QUEUE)
    redis(sandbox, "RPUSH", QUEUE, *[f"scan-{n}" for n in range(25)])
    try:
        before = state(fleet)
        result = fleet.run(
            "upgrade", channel="stable", stellaops_preflight=True, preflight_queue_threshold=10, preflight_expected_migrations=["20991231000000"],
            preflight_alignment_targets=[compose_target(sandbox, tmp_path, "2025.09.0")],
        )  # fmt: skip
        after = state(fleet)
    finally:
        fleet_2.docker("start", authority)
        redis(sandbox, "DEL", QUEUE)
        fleet.write()

    assert result.rc != 0
    stop = result.of("preflight_verdict")
    message = stop["msg"]
    assert "failed 6 check(s); nothing was changed" in message, message
    assert "alignment: Release 2025.10.0-stable is not aligned: 6 blocking finding(s) in 1 target(s); first: " in message
    assert "approval: an upgrade on the stable channel needs an approval" in message
    assert "migrations: 20991231000000 is pending in schema_migrations" in message
    assert f"queues: queue {QUEUE} holds 25 entries (threshold 10)" in message
    assert "fleet-2: unhealthy: authority: GET http://127.0.0.1:18251/health failed" in message
    assert "fleet-3: secret STELLAOPS_DATABASE_PASSWORD, referenced by stellaops.yaml, is not supplied" in message
    assert Path(sandbox["postgres"]["password_file"]).read_text().strip() not in result.stdout
    assert [name for name, _r in result.tasks() if "Plan the deployment" in name] == [], "the upgrade started"
    assert after == before
    assert not any(network_exists(host) for host in fleet.hosts)
    newest = max(Path(fleet.extra_vars["preflight_record_dir"]).glob("preflight-*.json"), key=lambda path: path.stat().st_mtime)
    record = json.loads(newest.read_text())
    assert record["running"] == dict.fromkeys(["fleet-1", "fleet-2", "fleet-3"], "2025.09.0-stable")
    assert record["approval"] == {"required": True, "approved_by": None, "approved_at": None, "ticket": None}
    assert record["queue_depths"] == {QUEUE: 25} and record["migrations_pending"] == ["20991231000000"]
    assert len(record["failures"]) == 6


def jobs_of_run(fleet: Fleet, host: Any, known: int) -> list[tuple[str, str]]:
    """(release id, status) of the jobs a run added to a host's journal, which held ``known`` jobs before it."""
    return [(job["release_id"], job["status"]) for job in host.journal(fleet.project_dir)[known:]]


def test_an_upgrade_that_skips_a_release_stops_in_preflight_or_walks_the_chain(fleet: Fleet, sandbox: dict[str, Any], tmp_path: Path) -> None:
    """Hosts on 2025.09.0 asked for 2025.11.0 (which upgrades from 2025.10.0 only) stop in pre-flight, each named with
    the release to take first, and nothing changes. With stellaops_upgrade_path=auto they walk the chain: 2025.10.0 then
    2025.11.0, each a journal job of its own. Back on 2025.09.0 (a rollback), a 2025.11.0 whose services never become
    healthy fails the second hop: every host returns to the first hop's 2025.10.0, which runs on. Cost: about 3 min
    (a pre-flight, two upgrades of two hops, a rollback, the faulty hop's health wait and automatic rollback)."""
    fleet.write()
    deploy(fleet, "2025.09.0")
    releases = stable_channel(sandbox, tmp_path / "releases", "2025.11.0-edge")
    before = state(fleet)
    # 2025.11.0's category B migration is not applied in the sandbox database: the approval names it. The migrations
    # step stays off (it would apply that migration to the database the other tests share, and the rollback below would
    # be refused); test_a_category_b_migration_applied_by_the_upgrade_... proves it on a database of its own.
    approval = {**APPROVAL, "migrations": ["20251101000000"]}
    asked = {"channel": "stable", "release": "2025.11.0", "stellaops_preflight": True, "stellaops_approval": approval, "compose_upgrade_database": {}}

    result = fleet.run("upgrade", **asked, stellaops_releases_dir=str(releases))

    assert result.rc != 0
    message = result.of("preflight_verdict")["msg"]
    assert message.startswith("Pre-flight for 2025.11.0-stable failed 3 check(s); nothing was changed: "), message
    for host in fleet.hosts:
        assert f"{host.name}: upgrade path: 2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first" in message
    assert state(fleet) == before
    names = [host.name for host in fleet.hosts]
    assert fleet.versions() == dict.fromkeys(names, "2025.09.0")

    known = {host.name: len(host.journal(fleet.project_dir)) for host in fleet.hosts}
    walked = fleet.run("upgrade", **asked, stellaops_releases_dir=str(releases), stellaops_upgrade_path="auto")
    assert walked.rc == 0, (walked.failure_messages, walked.stdout[-3000:])
    assert walked.of("preflight_verdict")["record"]["hops"] == dict.fromkeys(names, ["2025.10.0", "2025.11.0"])
    assert fleet.versions() == dict.fromkeys(names, "2025.11.0")
    for host in fleet.hosts:
        assert jobs_of_run(fleet, host, known[host.name]) == [("2025.10.0-stable", "completed"), ("2025.11.0-stable", "completed")]

    back = fleet.run("rollback", rollback_release_id="2025.09.0-stable")
    assert back.rc == 0, back.failure_messages
    assert fleet.versions() == dict.fromkeys(names, "2025.09.0")
    broken = stable_channel(sandbox, tmp_path / "broken", "2025.11.1-edge")
    known = {host.name: len(host.journal(fleet.project_dir)) for host in fleet.hosts}
    failed = fleet.run("upgrade", **asked, stellaops_releases_dir=str(broken), stellaops_upgrade_path="auto")
    assert failed.rc != 0
    # Judged from the hosts: each answers as 2025.10.0, and its journal has the first hop completed, the second rolled back.
    assert fleet.versions() == dict.fromkeys(names, "2025.10.0")
    for host in fleet.hosts:
        assert jobs_of_run(fleet, host, known[host.name]) == [("2025.10.0-stable", "completed"), ("2025.11.0-stable", "rolled_back")]


# A migrations table that has the category A migrations of 2025.09.0 and 2025.10.0, not 2025.11.0's category B one.
def test_a_category_b_migration_needs_an_approval_that_names_it(fleet: Fleet, sandbox: dict[str, Any], tmp_path: Path) -> None:
    """Hosts on 2025.10.0 asked for 2025.11.0, whose category B migration 20251101000000 the migrations table (of this
    test's own database on the sandbox's PostgreSQL) does not show applied: pre-flight fails until the approval names
    it, then passes and records it approved. Cost: two pre-flight runs in check mode (about 30 s) once the fleet runs
    2025.10.0 (the test before leaves it there)."""
    fleet.write()
    deploy(fleet, "2025.10.0")
    releases = stable_channel(sandbox, tmp_path / "releases", "2025.11.0-edge")
    with scratch_database(sandbox, MIGRATIONS_BEFORE_B) as database:
        asked = {"channel": "stable", "release": "2025.11.0", "stellaops_preflight": True, "stellaops_releases_dir": str(releases)}
        asked["preflight_database"] = database

        refused = fleet.run("preflight", check=True, **asked, stellaops_approval=APPROVAL)
        assert refused.rc != 0
        message = refused.of("preflight_verdict")["msg"]
        assert message.startswith("Pre-flight for 2025.11.0-stable failed 1 check(s); nothing was changed: "), message
        assert (
            "approval: category B migration(s) 20251101000000 (backfill_scores, 2025.11.0) may break the release that runs now"
            " and need an approval that names them (stellaops_approval.migrations)"
        ) in message

        approved = fleet.run("preflight", check=True, **asked, stellaops_approval={**APPROVAL, "migrations": ["20251101000000"]})
        assert approved.rc == 0, approved.failure_messages
        record = approved.of("preflight_verdict")["record"]
        assert record["category_b"] == [{"id": "20251101000000", "name": "backfill_scores", "release": "2025.11.0", "applied": False, "approved": True}]
        assert record["migrations_pending"] == []  # the table of this test's database was read


# The table 2025.11.0's category B migration changes (the sandbox's migration renames score, which 2025.10.0's code reads).
def test_a_category_b_migration_applied_by_the_upgrade_makes_the_rollback_restore_the_database_or_refuse(
    fleet: Fleet, sandbox: dict[str, Any], tmp_path: Path
) -> None:
    """Hosts upgraded from 2025.10.0 to 2025.11.0 with a backup of this test's own database (on the sandbox's PostgreSQL).
    Without its approval the category B migration is not applied, and check mode of the rollback decides to redeploy on
    the database as it is. Approved, a rerun limited to one host holds it (the others may run a release it breaks); a
    rerun that finds the column it renames missing fails with the command's words and the table as it was; a
    rerun of the fleet (check mode first, which applies nothing) applies it with the platform's
    migration command (the migrator service of the deployment that runs, docker compose run over SSH on the first host)
    and verifies it in the table; a second rerun changes nothing. Then the rollback is refused before anything changes,
    and with compose_rollback_restore_database=true the services stop, the upgrade's backup set comes back (the table as
    it was) and every host runs 2025.10.0 again, its evidence baseline taken in schema 2 and crossed to schema 1; a restore
    that fails leaves every host stopped, none on 2025.10.0. Judged
    from the database's columns and rows and the hosts' containers. 2025.11.0 reads the evidence in schema 2: the upgrade
    proves continuity in schema 1 and writes the cross-reference of the roots beside the baseline. Cost: about 2.5 min (an upgrade with its backup,
    five reruns that deploy nothing, a rollback plan in check mode, a refused rollback, a rollback whose restore fails, a
    rollback with the restore)."""
    fleet.write()
    deploy(fleet, "2025.10.0")
    releases = stable_channel(sandbox, tmp_path / "releases", "2025.11.0-edge")
    with scratch_database(sandbox, MIGRATIONS_BEFORE_B + FINDINGS) as database:
        connection_settings = {k: database[k] for k in ("database", "host", "port", "user", "password")}
        backups = tmp_path / "backups"
        asked = {
            "channel": "stable", "stellaops_releases_dir": str(releases), "compose_upgrade_backup": True, "backup_dir": str(backups),
            "backup_postgres": [connection_settings], "backup_object_storage": [],
        }  # fmt: skip

        evidence = tmp_path / "evidence"
        gate = {
            "compose_upgrade_evidence_gate": True, "evidence_gate_baseline_path": str(evidence / "baseline.json"),
            "evidence_gate_cache_path": str(evidence / "hash-cache.json"), "evidence_gate_report_dir": str(evidence / "reports"),
        }  # fmt: skip
        upgraded = fleet.run("upgrade", release="2025.11.0", **asked, **gate)
        assert upgraded.rc == 0, (upgraded.failure_messages, upgraded.stdout[-3000:])
        assert set(fleet.versions().values()) == {"2025.11.0"}
        waiting = upgraded.result("Say which category B migrations wait for an approval", fleet.hosts[0].name)["msg"]
        assert waiting == f"Category B migration(s) {B_MIGRATION} of sandbox-{fleet.project} are not applied: stellaops_approval.migrations does not name them."
        assert columns(database, "findings") == ["id", "severity", "score"]
        # 2025.11.0 reads the evidence in schema 2: continuity proven in schema 1, then the cross-reference of the roots.
        crossed = upgraded.of("evidence_verify")
        assert crossed["continuity"] and crossed["cross_reference"]["from_schema"] == 1 and crossed["cross_reference"]["to_schema"] == 2, crossed
        assert crossed["cross_reference"]["total"]["old_root"] == upgraded.of("evidence_baseline")["total"]["root"]
        assert json.loads((evidence / "baseline.cross-reference.json").read_text()) == crossed["cross_reference"]

        checked = fleet.run("rollback", check=True, **asked)
        assert checked.rc == 0, checked.failure_messages
        safety = checked.of("rollback_safety")
        assert (safety["decision"], safety["live_schema_version"]) == ("redeploy", 2), safety
        assert safety["msg"] == "The database (schema 2) suits 2025.10.0-stable: every migration applied since is backward compatible."

        approved = {**asked, "stellaops_approval": {**APPROVAL, "migrations": [B_MIGRATION]}}
        predicted = fleet.run("upgrade", check=True, release="2025.11.0", **approved)
        assert predicted.rc == 0, predicted.failure_messages
        would = predicted.of("compose_migrations")
        assert (would["changed"], would["pending"], would["output"]) == (True, [B_MIGRATION], []), would
        assert columns(database, "findings") == ["id", "severity", "score"]

        # Approved but run on one host only (--limit): the others of the environment may run a release it breaks.
        first = fleet.hosts[0].name
        held = fleet.run("upgrade", limit=first, release="2025.11.0", **approved)
        assert held.rc == 0, held.failure_messages
        others = ", ".join(host.name for host in fleet.hosts[1:])
        assert held.result("Say which approved category B migrations wait for hosts of the environment this run left out", first)["msg"] == (
            f"Category B migration(s) {B_MIGRATION} of sandbox-{fleet.project} are not applied: {others} of that environment did not"
            " take part in this run and may run a release the migration breaks; upgrade them, then run again."
        )
        assert columns(database, "findings") == ["id", "severity", "score"]

        # A migration that fails (the column it renames is not there) fails the run with the command's own words; its
        # transaction leaves the table as it was, and the hosts run the release, healthy.
        query(database, "ALTER TABLE findings RENAME COLUMN score TO score_elsewhere;\n")
        failed = fleet.run("upgrade", release="2025.11.0", **approved)
        assert failed.rc != 0
        said = failed.result("Apply the approved category B migrations with the platform's migration command", first)["msg"]
        assert said.startswith(f"The category B migration(s) {B_MIGRATION} failed in service migrator of 2025.11.0-stable+") and said.endswith(
            'exit code 3): psql:/migrations/20251101000000_backfill_scores.B.sql:3: ERROR:  column "score" does not exist.'
        ), said
        assert columns(database, "findings") == ["id", "severity", "score_elsewhere"]
        assert query(database, "SELECT version FROM schema_migrations ORDER BY version;\n") == [["20250901000000"], ["20251001000000"]]
        assert set(fleet.versions().values()) == {"2025.11.0"}
        query(database, "ALTER TABLE findings RENAME COLUMN score_elsewhere TO score;\n")

        applied = fleet.run("upgrade", release="2025.11.0", **approved)
        assert applied.rc == 0, (applied.failure_messages, applied.stdout[-3000:])
        ran = applied.of("compose_migrations")
        assert ran["output"] == [f"applied {B_MIGRATION} backfill_scores"] and ran["deployment_id"].startswith("2025.11.0-stable+"), ran
        assert [name for name, r in applied.tasks() if r.get("action") == "stellaops.deploy.compose_migrations" and r.get("changed")] == [
            "stellaops.deploy.compose_upgrade : Apply the approved category B migrations with the platform's migration command"
        ]  # on one host: the hosts share the database
        assert columns(database, "findings") == ["id", "severity", "base_score", "weight"]
        assert query(database, "SELECT id, weight FROM findings ORDER BY id;\n") == [["1", "1.50"], ["2", "1.00"]]
        # Applied under the migrating host's environment lock (another run reaching it meanwhile is refused), released after.
        took = applied.result("Take the environment lock for the migrations", first)
        assert not took.get("failed") and not took.get("skipped") and fleet.hosts[0].read_file(f"{fleet.project_dir}/deploy.lock") is None, took
        again = fleet.run("upgrade", release="2025.11.0", **approved)
        assert again.rc == 0, again.failure_messages
        assert {host.name: again.changed(host.name) for host in fleet.hosts} == {host.name: 0 for host in fleet.hosts}
        # Every migration is in the table: the step only read it (no lock, no migration command).
        assert again.result("Read the migrations table", first)["applied"][-1] == B_MIGRATION
        assert again.result("Take the environment lock for the migrations", first).get("skipped"), "a table with nothing to apply was locked"
        assert not [r for _name, r in again.tasks(first) if r.get("action") == "stellaops.deploy.compose_migrations" and not r.get("skipped")]

        before = state(fleet)
        refused = fleet.run("rollback", **asked)
        assert refused.rc != 0
        message = refused.of("rollback_safety")["msg"]
        assert message.startswith(
            "The database (schema 3) does not suit the rollback: 2025.10.0-stable does not know category B migration(s) 20251101000000"
            " (backfill_scores, 2025.11.0), applied since; its code may not run on it. Nothing was changed:"
        ), message
        assert state(fleet) == before and set(fleet.versions().values()) == {"2025.11.0"}
        assert columns(database, "findings") == ["id", "severity", "base_score", "weight"]

        # A restore that fails after the stop (a wrong password for pg_restore): no host starts 2025.10.0 on the table
        # that was not restored; every host's services stay stopped, still those of 2025.11.0, and the failure says so.
        broken = fleet.run("rollback", compose_rollback_restore_database=True, **asked, database_restore_postgres={**connection_settings, "password": "wrong"})
        assert broken.rc != 0
        said = [message for message in broken.failure_messages if message.startswith("The database restore failed: ")]
        assert said and "stay stopped; none started the release returned to" in said[0], broken.failure_messages
        for host in fleet.hosts:
            containers = host.containers(fleet.project).values()
            assert {(c["release_id"], c["state"] == "running") for c in containers} == {("2025.11.0-stable", False)}, host.name
        assert columns(database, "findings") == ["id", "severity", "base_score", "weight"]

        # With the evidence gate: the baseline in the schema of the release left (2), continuity proven in it, and the
        # cross-reference to the schema of the release returned to (1).
        back_gate = {
            "compose_rollback_evidence_gate": True, "evidence_gate_baseline_path": str(evidence / "rollback-baseline.json"),
            "evidence_gate_cache_path": str(evidence / "hash-cache.json"), "evidence_gate_report_dir": str(evidence / "rollback-reports"),
        }  # fmt: skip
        restored = fleet.run("rollback", compose_rollback_restore_database=True, **asked, **back_gate)
        assert restored.rc == 0, (restored.failure_messages, restored.stdout[-3000:])
        back = restored.of("evidence_verify")
        assert json.loads((evidence / "rollback-baseline.json").read_text())["evidence_schema"] == 2
        assert back["continuity"] and (back["cross_reference"]["from_schema"], back["cross_reference"]["to_schema"]) == (2, 1), back
        # The decision before (restore, asked and needed), then the restored table judged again (it suits 2025.10.0).
        decisions = [r for _name, r in restored.tasks(fleet.hosts[0].name) if r.get("action") == "stellaops.deploy.rollback_safety" and not r.get("skipped")]
        assert [(r["decision"], r["live_schema_version"]) for r in decisions] == [("restore", 3), ("redeploy", 2)]
        assert set(fleet.versions().values()) == {"2025.10.0"}
        # The table as the upgrade's backup holds it: no B row, the score column back, no weight.
        assert query(database, "SELECT version FROM schema_migrations ORDER BY version;\n") == [["20250901000000"], ["20251001000000"]]
        assert columns(database, "findings") == ["id", "severity", "score"]
        assert query(database, "SELECT * FROM findings ORDER BY id;\n") == [["1", "critical", "9.8"], ["2", "low", "2.5"]]


def test_preflight_passes_with_approval_then_upgrade_smoke_tests(fleet: Fleet, sandbox: dict[str, Any], tmp_path: Path) -> None:
    """Approved: check mode says the front-door network would be created and creates nothing; the real run records
    who approved and when, validates every deployment profile, creates the network, upgrades, and the smoke tests
    (health, OpenID configuration, a scan that completes, a command in the scanner's container) pass on every host."""
    fleet.write()
    deploy(fleet, "2025.09.0")
    remove_network(fleet)  # an upgrade of a test before, through a real pre-flight, created it
    profiles = {
        "preflight_profiles_compose_dir": str(ROOT / "deploy" / "compose"),
        "preflight_profiles_helm_chart": str(ROOT / "deploy" / "helm" / "stellaops"),
        "preflight_profiles_releases_dir": str(ROOT / "deploy" / "releases"),
        "preflight_alignment_targets": [compose_target(sandbox, tmp_path, "2025.10.0")],
    }
    checked = fleet.run("preflight", check=True, channel="stable", stellaops_preflight=True, stellaops_approval=APPROVAL, **profiles)
    assert checked.rc == 0, checked.failure_messages
    for host in fleet.hosts:
        assert checked.result("Look for the front-door network", host.name)["changed"] is True
        assert not network_exists(host)

    result = fleet.run("upgrade", channel="stable", stellaops_preflight=True, stellaops_approval=APPROVAL, **profiles)
    assert result.rc == 0, (result.failure_messages, result.stdout[-3000:])
    passed = result.of("preflight_verdict")["msg"]
    assert passed.startswith("Pre-flight for 2025.10.0-stable passed on 3 host(s); approved by release manager at 20"), passed
    assert result.result("Validate the deployment profiles")["valid"] is True
    aligned = result.result("Check channel alignment")
    assert aligned["aligned"] is True and aligned["msg"] == "Release 2025.10.0-stable is aligned with 1 target(s).", aligned.get("msg")
    assert len(result.result("Validate the deployment profiles")["profiles"]) == 8
    assert all(network_exists(host) for host in fleet.hosts)
    assert fleet.versions() == dict.fromkeys([h.name for h in fleet.hosts], "2025.10.0")
    for host in fleet.hosts:
        # The smoke tests run inside the deploy's transaction, after the health checks.
        smoke = result.result("Deploy the release and prove it", host.name)["smoke"]
        assert [(r["name"], r["passed"]) for r in smoke] == [
            ("API health", True), ("Authority OpenID configuration", True), ("Scan submit", True), ("Scanner health inside its container", True)
        ], smoke  # fmt: skip
        assert "completed" in smoke[2]["message"]
    record_dir = Path(fleet.extra_vars["preflight_record_dir"])
    records = [json.loads(path.read_text()) for path in record_dir.glob("preflight-*.json")]
    approved = [r for r in records if r["approval"]["approved_by"] == "release manager"]
    assert approved and approved[-1]["approval"]["ticket"] == "CHG-2041" and approved[-1]["approval"]["approved_at"].endswith("Z")


def test_failed_smoke_test_rolls_back(fleet: Fleet) -> None:
    """A smoke test that fails after the services came up healthy returns every host to the release it ran before."""
    fleet.write()
    deploy(fleet, "2025.09.0")
    failing = {
        "name": "Authority issuer",
        "type": "http",
        "url": "http://127.0.0.1:{{ compose_upgrade_env.STELLAOPS_AUTHORITY_PORT }}/.well-known/openid-configuration",
        "body_contains": "https://authority.example.invalid",
    }
    result = fleet.run("upgrade", channel="stable", release="2025.10.0", compose_upgrade_smoke_tests=[failing])
    assert result.rc != 0
    for host in fleet.hosts:
        deployed = result.result("Deploy the release and prove it", host.name)
        assert deployed["failed"] and deployed["msg"].startswith("1 of 1 smoke tests failed: Authority issuer"), deployed["msg"]
        assert [r["passed"] for r in deployed["smoke"]] == [False] and deployed["outcome"] == "rolled back"
    assert any("Rolled back: 2025.09.0-stable+" in message for message in result.failure_messages), result.failure_messages
    assert fleet.versions() == dict.fromkeys([h.name for h in fleet.hosts], "2025.09.0")
    assert [job["status"] for job in fleet.hosts[0].journal(fleet.project_dir)][-1] == "rolled_back"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout.strip()


def test_promotion_check_commit_tag(fleet: Fleet, tmp_path: Path) -> None:
    """Check mode shows the diffs and writes nothing; the promotion commits, tags, aligns; a second run changes nothing."""
    repo = tmp_path / "deployment"
    shutil.copytree(ROOT / "deploy", repo / "deploy")
    git(repo.parent, "init", "--quiet", str(repo))
    git(repo, "config", "user.name", "Release Engineering")
    git(repo, "config", "user.email", "release@example.invalid")
    git(repo, "add", "deploy")
    git(repo, "commit", "--quiet", "--message", "deployment bundle")
    base = git(repo, "rev-parse", "HEAD")
    prod = repo / "deploy" / "compose" / "docker-compose.prod.yaml"
    before = prod.read_text()
    manifest = (repo / "deploy" / "releases" / "2025.09.1-stable.yaml").read_text()
    authority = next(line.split("image:", 1)[1].strip() for line in manifest.splitlines() if "stellaops/authority@" in line)

    checked = fleet.run("promote", check=True, diff=True, channel="stable", release="2025.09.1", commit=True, stellaops_promote_repo=str(repo))
    assert checked.rc == 0, checked.failure_messages
    plan = checked.result("Mirror the digests, check alignment, commit and tag")
    assert plan["changed"] is True and len(plan["files"]) == 4 and plan["commit"] is None
    diffs = {d["after_header"]: d for d in plan["diff"]}
    assert authority in diffs[str(prod)]["after"] and authority not in diffs[str(prod)]["before"]
    assert prod.read_text() == before and git(repo, "rev-parse", "HEAD") == base and git(repo, "tag") == ""

    promoted = fleet.run("promote", channel="stable", release="2025.09.1", commit=True, stellaops_promote_repo=str(repo))
    assert promoted.rc == 0, promoted.failure_messages
    result = promoted.result("Mirror the digests, check alignment, commit and tag")
    assert result["alignment"]["aligned"] is True
    assert git(repo, "log", "-1", "--format=%s") == "deploy: promote 2025.09.1-stable"
    assert git(repo, "rev-parse", "2025.09.1^{commit}") == git(repo, "rev-parse", "HEAD") == result["commit"]
    assert git(repo, "status", "--porcelain") == ""
    assert sorted(git(repo, "show", "--name-only", "--format=", "HEAD").split()) == sorted(
        f"deploy/{path}" for path in ("compose/docker-compose.prod.yaml", "compose/docker-compose.stage.yaml",
                                      "helm/stellaops/values-prod.yaml", "helm/stellaops/values-stage.yaml")
    )  # fmt: skip
    assert authority in prod.read_text() and 'version: "2025.09.1"' in prod.read_text()

    again = fleet.run("promote", channel="stable", release="2025.09.1", commit=True, stellaops_promote_repo=str(repo))
    assert again.rc == 0 and again.result("Mirror the digests, check alignment, commit and tag")["changed"] is False
    assert git(repo, "rev-list", "--count", "HEAD") == "2"


def test_redis_answers(sandbox: dict[str, Any]) -> None:
    """The sandbox's Redis is the Debian package's server on loopback, started by the sandbox with its PID recorded."""
    with socket.create_connection((sandbox["redis"]["host"], sandbox["redis"]["port"]), timeout=5) as connection:
        connection.sendall(b"PING\r\n")
        assert connection.recv(16) == b"+PONG\r\n"
    assert "redis_version:7." in redis(sandbox, "INFO", "server")
    pids = json.loads((ROOT / ".sandbox" / "state.json").read_text())["pids"]
    # redis-server names its process after its address
    assert Path(f"/proc/{pids['redis']}/cmdline").read_bytes().startswith(f"redis-server 127.0.0.1:{sandbox['redis']['port']}".encode())
