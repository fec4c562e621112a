# SPDX-License-Identifier: GPL-3.0-or-later
"""Pre-flight's verdict from the registered results of its checks: every failure listed, the record, one sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.verdict import ControllerChecks, message, profile_secrets, verdict

RELEASE = {"release_id": "2025.10.0-stable", "channel": "stable"}
PATTERN = "[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)[A-Z0-9_]*"
NOW = "2026-12-06T23:00:00Z"
SKIPPED = {"skipped": True, "changed": False, "skip_reason": "Conditional result was False"}
APPROVED = {"approved_by": "ops-lead", "ticket": "CHG-1234"}


@pytest.fixture()
def profile(tmp_path: Path) -> str:
    path = tmp_path / "stellaops.yaml"
    path.write_text(
        "services:\n  authority:\n    environment:\n"
        "      DB_PASSWORD: ${STELLAOPS_DATABASE_PASSWORD:?set it}\n      PORT: ${STELLAOPS_AUTHORITY_PORT:-8080}\n"
        "      TOKEN: ${STELLAOPS_SIGNING_TOKEN}\n      AGAIN: ${STELLAOPS_DATABASE_PASSWORD}\n"
    )
    return str(path)


def healthy_host(profile: str, **changes: Any) -> dict[str, Any]:
    return {
        "compose_host": True,
        "running": {"changed": False, "running": True, "release_id": "2025.09.0-stable"},
        "health": {"changed": False, "results": [{"name": "authority", "healthy": True, "message": "200"}]},
        "network": {"changed": True, "created": True},
        "network_name": "stellaops_frontdoor",
        "profile": profile,
        "secrets_given": ["STELLAOPS_DATABASE_PASSWORD", "STELLAOPS_SIGNING_TOKEN"],
        "backup": True,
        "backup_named": True,
        "evidence_gate": True,
        "evidence_store": True,
        **changes,
    }


def decide(hosts: dict[str, Any], **controller: Any) -> dict[str, Any]:
    return verdict(RELEASE, hosts, ControllerChecks(**{"approval": APPROVED, **controller}), secret_pattern=PATTERN, run_id="r1", now=NOW)


def test_every_check_passed_says_so_with_the_approval_and_records_what_runs(profile: str) -> None:
    record = decide({"fleet-1": healthy_host(profile), "helm-prod": {"compose_host": False}}, migrations=SKIPPED, queues={"depths": {"q": 0}, "over": []})
    assert record["failures"] == [] and record["protection_off"] == []
    assert record["running"] == {"fleet-1": "2025.09.0-stable", "helm-prod": None}
    assert record["approval"] == {"required": True, "approved_by": "ops-lead", "approved_at": NOW, "ticket": "CHG-1234"}
    assert (record["migrations_pending"], record["queue_depths"]) == (None, {"q": 0})
    assert message(record) == f"Pre-flight for 2025.10.0-stable passed on 2 host(s); approved by ops-lead at {NOW}."


def test_every_failure_of_every_host_and_of_the_controller_is_listed_controller_first(profile: str) -> None:
    hosts = {
        "fleet-1": healthy_host(
            profile,
            running={"unreachable": True, "msg": "ssh: connect to host 127.0.0.1 port 2201: Connection refused"},
            health={"results": [{"name": "authority", "healthy": False, "message": "GET http://127.0.0.1:18181/health failed"}]},
            network={"failed": True, "msg": "Cannot connect to the Docker daemon"},
            secrets_given=["STELLAOPS_DATABASE_PASSWORD"],
        ),
        "fleet-2": healthy_host(profile, health={"msg": "checks[0]: field url must be an http(s) URL"}, backup_named=False, evidence_store=False),
        "fleet-3": None,
    }
    record = decide(
        hosts,
        approval={},
        migrations={"pending": ["20991231000000"]},
        queues={"msg": "Redis at 127.0.0.1:16379 does not answer."},
        alignment={"aligned": False, "msg": "Release 2025.10.0-stable is not aligned: 1 blocking finding(s)"},
        profiles={"problems": ["values-prod.yaml: image not pinned"]},
    )
    assert record["failures"] == [
        "approval: an upgrade on the stable channel needs an approval (stellaops_approval.approved_by, from the AWX approval node or -e)",
        "migrations: 20991231000000 is pending in schema_migrations",
        "queues: Redis at 127.0.0.1:16379 does not answer.",
        "alignment: Release 2025.10.0-stable is not aligned: 1 blocking finding(s)",
        "profiles: values-prod.yaml: image not pinned",
        "fleet-1: cannot read what runs: ssh: connect to host 127.0.0.1 port 2201: Connection refused",
        "fleet-1: unhealthy: authority: GET http://127.0.0.1:18181/health failed",
        "fleet-1: front-door network stellaops_frontdoor: Cannot connect to the Docker daemon",
        "fleet-1: secret STELLAOPS_SIGNING_TOKEN, referenced by stellaops.yaml, is not supplied",
        "fleet-2: health checks did not run: checks[0]: field url must be an http(s) URL",
        "fleet-2: settings: backups before an upgrade are on (compose_upgrade_backup) and nothing is named to back up:"
        " set backup_postgres, backup_mongodb, backup_object_storage or backup_kubernetes (group_vars of the compose hosts),"
        " or compose_upgrade_backup: false to upgrade without a backup",
        "fleet-2: settings: the evidence gate is on (compose_upgrade_evidence_gate) and evidence_gate_store is not set:"
        " say where the evidence bundles live (group_vars of the compose hosts),"
        " or compose_upgrade_evidence_gate: false to upgrade without the evidence baseline and continuity proof",
        "fleet-3: did not finish its pre-flight checks",
    ]
    assert record["approval"] == {"required": True, "approved_by": None, "approved_at": None, "ticket": None}
    assert record["running"] == {"fleet-1": None, "fleet-2": "2025.09.0-stable", "fleet-3": None}
    assert message(record).startswith("Pre-flight for 2025.10.0-stable failed 13 check(s); nothing was changed: approval: ")


def test_checks_that_did_not_run_are_no_failure_and_a_helm_target_takes_only_the_controllers_checks(profile: str) -> None:
    record = decide(
        {"fleet-1": healthy_host(profile, health=SKIPPED, network=SKIPPED), "helm-prod": {"compose_host": False, "running": {}}},
        migrations={}, queues=SKIPPED, alignment=SKIPPED, profiles={},
    )  # fmt: skip
    assert record["failures"] == []
    edge_release = {"release_id": "2025.11.0-edge", "channel": "edge"}
    edge = verdict(edge_release, {"h": {"compose_host": False}}, ControllerChecks(), secret_pattern=PATTERN, run_id="r", now=NOW)
    assert edge["failures"] == [] and edge["approval"]["required"] is False


def test_protection_turned_off_is_said_once_and_is_no_failure(profile: str) -> None:
    hosts = {name: healthy_host(profile, backup=False, backup_named=False, evidence_gate=False, evidence_store=False) for name in ("a", "b")}
    record = decide(hosts)
    assert record["failures"] == []
    assert record["protection_off"] == [
        "no backup before the upgrade (compose_upgrade_backup: false)",
        "no evidence baseline or continuity proof (compose_upgrade_evidence_gate: false)",
    ]
    assert message(record).endswith("; turned off: no backup before the upgrade (compose_upgrade_backup: false), "
                                    "no evidence baseline or continuity proof (compose_upgrade_evidence_gate: false).")  # fmt: skip


def test_secrets_are_the_profiles_variables_that_match_the_pattern_once_each(profile: str) -> None:
    assert profile_secrets(profile, PATTERN) == ["STELLAOPS_DATABASE_PASSWORD", "STELLAOPS_SIGNING_TOKEN"]
    with pytest.raises(StellaOpsError, match="secret_pattern is not a regular expression"):
        profile_secrets(profile, "([")


def test_a_profile_that_is_not_a_regular_file_or_a_release_without_id_is_one_sentence(tmp_path: Path, profile: str) -> None:
    with pytest.raises(StellaOpsError) as err:
        decide({"fleet-1": healthy_host(str(tmp_path))})
    assert "compose profile" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(StellaOpsError, match=r"^release.release_id must be a non-empty string"):
        verdict({"channel": "stable"}, {}, ControllerChecks(), secret_pattern=PATTERN, run_id="r", now=NOW)


class Paths:
    """A channel of 2025.07.0 (nothing upgrades from it), 2025.09.0, 2025.10.0 and 2025.11.0 (from 2025.10.0 only,
    with the category B migration 20251101000000)."""

    problems = {
        "2025.09.0-stable": "2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first",
        "2025.07.0-stable": "2025.07.0 cannot upgrade to 2025.11.0: no chain of stable releases leads there",
    }
    walks = {"2025.09.0-stable": ["2025.10.0", "2025.11.0"], "2025.10.0-stable": ["2025.11.0"], None: ["2025.11.0"]}
    backfill = {"id": "20251101000000", "name": "backfill_scores", "release": "2025.11.0"}

    def problem(self, release_id: str) -> Optional[str]:
        return self.problems.get(release_id)

    def hops(self, release_id: Optional[str]) -> Optional[list[str]]:
        return self.walks.get(release_id)

    def category_b(self, release_id: Optional[str], versions: list[str]) -> list[dict[str, str]]:
        return [self.backfill] if "2025.11.0" in versions and release_id in ("2025.09.0-stable", "2025.10.0-stable") else []


B_APPROVED = {**APPROVED, "migrations": ["20251101000000"]}


def on(profile: str, *running: str) -> dict[str, Any]:
    return {f"fleet-{n}": healthy_host(profile, running={"running": True, "release_id": r}) for n, r in enumerate(running, 1)}


def test_a_host_that_cannot_upgrade_directly_fails_with_the_chain(profile: str) -> None:
    hosts = on(profile, "2025.09.0-stable", "2025.10.0-stable")
    record = verdict(RELEASE, hosts, ControllerChecks(approval=B_APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert record["failures"] == ["fleet-1: upgrade path: 2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first"]
    # A host that runs nothing has no path to check.
    empty = healthy_host(profile, running={"running": False, "release_id": None})
    nothing = verdict(RELEASE, {"h": empty}, ControllerChecks(approval=B_APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert nothing["failures"] == []


def test_an_upgrade_along_the_path_lists_each_hosts_hops_and_fails_only_a_host_without_a_chain(profile: str) -> None:
    hosts = {**on(profile, "2025.09.0-stable", "2025.10.0-stable", "2025.07.0-stable"), "helm": {"compose_host": False}}
    checks = ControllerChecks(approval=B_APPROVED)
    record = verdict(RELEASE, hosts, checks, secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths(), walk=True)
    assert record["hops"] == {"fleet-1": ["2025.10.0", "2025.11.0"], "fleet-2": ["2025.11.0"]}
    assert record["failures"] == ["fleet-3: upgrade path: 2025.07.0 cannot upgrade to 2025.11.0: no chain of stable releases leads there"]
    # Without walk (the direct path) the record has no hops, and the host that needs a chain fails too.
    direct = verdict(RELEASE, hosts, checks, secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert "hops" not in direct and len(direct["failures"]) == 2


def test_a_category_b_migration_needs_an_approval_that_names_it_unless_it_is_applied(profile: str) -> None:
    hosts = on(profile, "2025.10.0-stable", "2025.10.0-stable")
    unnamed = verdict(RELEASE, hosts, ControllerChecks(approval=APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert unnamed["failures"] == [
        "approval: category B migration(s) 20251101000000 (backfill_scores, 2025.11.0) may break the release that runs now"
        " and need an approval that names them (stellaops_approval.migrations)"
    ]
    assert unnamed["category_b"] == [{"id": "20251101000000", "name": "backfill_scores", "release": "2025.11.0", "applied": False, "approved": False}]
    named = verdict(RELEASE, hosts, ControllerChecks(approval=B_APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert named["failures"] == [] and named["category_b"][0]["approved"] is True
    # An id written without quotes is a number: the same id.
    unquoted = ControllerChecks(approval={**APPROVED, "migrations": [20251101000000]})
    assert verdict(RELEASE, hosts, unquoted, secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())["failures"] == []
    # Applied already (the migrations table has its row): nothing to approve.
    table = {"changed": False, "applied": ["20250901000000", "20251001000000", "20251101000000"], "pending": []}
    applied = verdict(RELEASE, hosts, ControllerChecks(approval=APPROVED, migrations=table), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert applied["failures"] == [] and applied["category_b"][0]["applied"] is True
    # A host already on 2025.11.0 deploys nothing that carries it: nothing to approve either.
    current = verdict(RELEASE, on(profile, "2025.11.0-stable"), ControllerChecks(approval=APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert current["failures"] == [] and current["category_b"] == []


@pytest.mark.parametrize("named", [5, "20251101000000", [True], [["20251101000000"]], {"id": "20251101000000"}])
def test_an_approval_whose_migrations_are_not_a_list_of_ids_is_one_sentence(profile: str, named: Any) -> None:
    approval = {**APPROVED, "migrations": named}
    with pytest.raises(StellaOpsError) as raised:
        verdict(RELEASE, on(profile, "2025.10.0-stable"), ControllerChecks(approval=approval), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert str(raised.value) == 'stellaops_approval.migrations must be a list of migration ids, for example ["20251101000000"].'


def helm_target(platform_release: Optional[dict[str, str]], **result: Any) -> dict[str, Any]:
    """A Helm target's checks: the registered helm_history_info result (platform_release read)."""
    return {"helm_target": True, "helm_release": {"changed": False, "exists": True, "pending_message": "", "platform_release": platform_release, **result}}


def test_a_helm_target_is_checked_on_the_platform_release_its_last_revision_runs(profile: str) -> None:
    hosts = {
        "helm-stage": helm_target({"version": "2025.09.0", "channel": "stable", "release_id": "2025.09.0-stable"}),
        "helm-prod": helm_target({"version": "2025.10.0", "channel": "stable", "release_id": "2025.10.0-stable"}),
        "helm-new": helm_target(None, exists=False),  # not installed yet: no path to check
    }
    # The migrations table shows 2025.11.0's category B migration applied: only the path is judged.
    table = {"changed": False, "applied": ["20250901000000", "20251001000000", "20251101000000"], "pending": []}
    checks = ControllerChecks(approval=APPROVED, migrations=table)
    record = verdict(RELEASE, hosts, checks, secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert record["failures"] == ["helm-stage: upgrade path: 2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first"]
    assert record["running"] == {"helm-stage": "2025.09.0-stable", "helm-prod": "2025.10.0-stable", "helm-new": None}
    walked = verdict(RELEASE, hosts, checks, secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths(), walk=True)
    assert walked["failures"] == [] and walked["hops"]["helm-stage"] == ["2025.10.0", "2025.11.0"]


def test_an_in_place_helm_upgrade_across_a_category_b_migration_not_applied_is_refused(profile: str) -> None:
    """The in-place Helm upgrade has no category B step: approved or not, the target is sent to blue/green."""
    hosts = {"helm-prod": helm_target({"version": "2025.10.0", "channel": "stable", "release_id": "2025.10.0-stable"}), **on(profile, "2025.10.0-stable")}
    record = verdict(RELEASE, hosts, ControllerChecks(approval=B_APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert record["failures"] == [
        "helm-prod: category B migration(s) 20251101000000 are applied only by a blue/green upgrade of a Helm target (playbooks/bluegreen.yml);"
        " the in-place upgrade does not run them"
    ]
    unnamed = verdict(RELEASE, hosts, ControllerChecks(approval=APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert [f.split(":")[0] for f in unnamed["failures"]] == ["approval", "helm-prod"]


def test_a_helm_release_that_cannot_be_read_is_stuck_or_names_no_release_fails_preflight() -> None:
    stuck = helm_target(None, pending_message="Release stellaops in namespace stellaops is stuck in pending-upgrade at revision 4 (...).")
    unread = {"helm_target": True, "helm_release": {"failed": True, "msg": "The Kubernetes API server of namespace stellaops is unreachable (...)."}}
    unnamed = helm_target(None, last_deployed={"revision": 3, "status": "deployed"})  # installed by hand, without global.release
    hosts = {"stuck": stuck, "unread": unread, "unnamed": unnamed}
    record = verdict(RELEASE, hosts, ControllerChecks(approval=APPROVED), secret_pattern=PATTERN, run_id="r", now=NOW)
    assert record["failures"] == [
        "stuck: Release stellaops in namespace stellaops is stuck in pending-upgrade at revision 4 (...).",
        "unread: cannot read the Helm release: The Kubernetes API server of namespace stellaops is unreachable (...).",
        "unnamed: cannot tell which platform release the Helm release runs: the values of its revision 3 name no global.release.version"
        " (the chart's values files and stellaops.deploy.helm_upgrade set it)",
    ]


def test_a_helm_target_that_backs_up_its_database_or_gates_its_evidence_must_name_them() -> None:
    running = {"version": "2025.10.0", "channel": "stable", "release_id": "2025.10.0-stable"}
    hosts = {
        "unnamed": {**helm_target(running), "helm_backup_database": True, "helm_evidence_gate": True},
        "named": {**helm_target(running), "helm_backup_database": True, "backup_named": True, "helm_evidence_gate": True, "evidence_store": True},
        "off": helm_target(running),
    }
    # 2025.11.0's category B migration already applied: only the settings are judged.
    table = {"changed": False, "applied": ["20250901000000", "20251001000000", "20251101000000"], "pending": []}
    record = verdict(RELEASE, hosts, ControllerChecks(approval=APPROVED, migrations=table), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert record["failures"] == [
        "unnamed: settings: the database backup before a Helm upgrade is on (helm_upgrade_backup_database) and nothing is named to back up:"
        " set backup_postgres (group_vars of the Helm targets), or helm_upgrade_backup_database: false",
        "unnamed: settings: the evidence gate of a Helm upgrade is on (helm_upgrade_evidence_gate) and evidence_gate_store is not set:"
        " say where the evidence bundles live (group_vars of the Helm targets), or helm_upgrade_evidence_gate: false",
    ]


def test_a_helm_revision_whose_values_name_no_channel_follows_the_run() -> None:
    hosts = {"helm-stage": helm_target({"version": "2025.09.0", "channel": "", "release_id": "2025.09.0"})}
    table = {"changed": False, "applied": ["20251101000000"], "pending": []}
    record = verdict(RELEASE, hosts, ControllerChecks(approval=APPROVED, migrations=table), secret_pattern=PATTERN, run_id="r", now=NOW, paths=Paths())
    assert record["running"] == {"helm-stage": "2025.09.0-stable"}
    assert record["failures"] == ["helm-stage: upgrade path: 2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first"]
