# SPDX-License-Identifier: GPL-3.0-or-later
"""The Helm profile on Helm 3 (3.18) and Helm 4 (4.1) against the Kubernetes API emulator.

The API server is an emulator (scripts/kube_emulator.py with fake controllers, one per test on a
free loopback port), not a cluster: no Pods run and no image is pulled, so "ready" is the emulator's
fake status and a bad digest would look healthy. What is real: the helm binaries and everything they
do (release records, hooks, --atomic / --rollback-on-failure, --wait, rollback), the chart
deploy/helm/stellaops, the release manifests of deploy/releases, kubernetes.core and the Python
client, the roles and modules of this collection. Failures are produced as the API would produce
them: a pre-upgrade migration Job that fails (the emulator's job-outcome annotation) and an object
name the API rejects (422). A release stuck in pending-upgrade is made the way a killed helm leaves
it: a release record of status pending-upgrade written after the deployed one.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.deploy_lock import make_record
from conftest import ROOT, PlaybookResult, run_playbook
from databases import B_MIGRATION, FINDINGS, MIGRATIONS_BEFORE_B, query, scratch_database
from kube import TOOLS, KubeEmulator

PLAYBOOKS = ROOT / "tests" / "integration" / "playbooks"
RELEASES = ROOT / "deploy" / "releases"
HOST = "helm-test"
NAMESPACE = "stellaops"
FAILING_HOOK = {"migrations": {"annotations": {"kube-emulator/job-outcome": "failed"}}}
# The API refuses the pre-upgrade Job (422): the upgrade fails before any object of the release changes.
# (Renaming the release's objects instead would leave a failed revision whose manifest names objects that
# do not exist, from which helm cannot roll back on a real cluster either.)
REJECTED_HOOK = {"migrations": {"annotations": {"kube-emulator/reject": "exceeded quota for migration jobs"}}}
SECRET = "sandbox-credential-7f3a"


def release_images(version: str) -> dict[str, str]:
    """Component -> image of a stable release manifest of this repository."""
    document = yaml.safe_load((RELEASES / f"{version}-stable.yaml").read_text())["release"]
    images = {c["name"]: c["image"] for c in document["components"]}
    images.update({name: item["image"] for name, item in document["infrastructure"].items()})
    return images


class HelmTarget:
    """One Helm target (release `stellaops` in namespace `stellaops`) of a test's own inventory."""

    def __init__(self, emulator: KubeEmulator, helm: str, workdir: Path) -> None:
        self.emulator = emulator
        self.helm = str(TOOLS / helm)
        self.workdir = workdir
        self.journal_dir = workdir / "journal"
        self.backup_dir = workdir / "backups"
        self.inventory = workdir / "hosts.yml"
        self.timings: list[tuple[str, float]] = []
        host = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "helm_upgrade_kubeconfig": str(emulator.kubeconfig),
            "helm_upgrade_kube_context": emulator.context,
            "helm_upgrade_namespace": NAMESPACE,
            "helm_upgrade_release_name": "stellaops",
            "helm_upgrade_chart": str(ROOT / "deploy" / "helm" / "stellaops"),
            "helm_upgrade_environment": "stage",
            "helm_upgrade_helm_path": self.helm,
            "helm_upgrade_journal_dir": str(self.journal_dir),
            "helm_upgrade_backup_dir": str(self.backup_dir),
            "helm_upgrade_install": True,
            "helm_upgrade_create_namespace": True,
            "helm_upgrade_timeout": "60s",
            "helm_rollback_timeout": "60s",
        }
        document = {"all": {"vars": {"stellaops_releases_dir": str(RELEASES)},
                            "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
                                      HOST: host}}}
        self.inventory.write_text(yaml.safe_dump(document))

    def play(self, playbook: str, *, check: bool = False, diff: bool = False, **extra: Any) -> PlaybookResult:
        started = time.monotonic()
        result = run_playbook(PLAYBOOKS / playbook, inventory=self.inventory, extra_vars={"target": HOST, **extra},
                              check=check, diff=diff, timeout=600)
        self.timings.append((f"{playbook} {extra.get('helm_action', '')} {extra.get('release', '')}".strip(), time.monotonic() - started))
        return result

    def upgrade(self, release: str, *, check: bool = False, diff: bool = False, **extra: Any) -> PlaybookResult:
        return self.play("helm_upgrade.yml", check=check, diff=diff, channel="stable", release=release, **extra)

    def rollback(self, **extra: Any) -> PlaybookResult:
        return self.play("helm_upgrade.yml", helm_action="rollback", **extra)

    def history(self) -> list[dict[str, Any]]:
        out = subprocess.run([self.helm, "history", "stellaops", "-n", NAMESPACE, "-o", "json"], env=self.emulator.env(),
                             capture_output=True, text=True, check=True, timeout=120).stdout
        return json.loads(out)

    def statuses(self) -> list[tuple[int, str]]:
        return [(row["revision"], row["status"]) for row in self.history()]

    def jobs(self) -> list[dict[str, Any]]:
        files = sorted((self.journal_dir / "jobs").glob("*.json"))
        return sorted((json.loads(f.read_text()) for f in files), key=lambda j: j["started_at"])

    def running_images(self) -> dict[str, list[str]]:
        """What the emulator holds for each Deployment and StatefulSet of the release (read with the Python client)."""
        from kubernetes import client, config  # noqa: PLC0415

        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(self.emulator.kubeconfig)))
        found = {}
        for lister in (apps.list_namespaced_deployment, apps.list_namespaced_stateful_set):
            for item in lister(NAMESPACE, label_selector="app.kubernetes.io/instance=stellaops").items:
                found[item.metadata.labels["app.kubernetes.io/name"]] = [c.image for c in item.spec.template.spec.containers]
        return found

    def replicas(self) -> dict[str, int]:
        """Service -> spec.replicas of each Deployment of the platform's services (NATS, infrastructure, left out)."""
        from kubernetes import client, config  # noqa: PLC0415

        apps = client.AppsV1Api(config.new_client_from_config(config_file=str(self.emulator.kubeconfig)))
        found = apps.list_namespaced_deployment(NAMESPACE, label_selector="app.kubernetes.io/instance=stellaops,app.kubernetes.io/name notin (nats)").items
        return {item.metadata.labels["app.kubernetes.io/name"]: item.spec.replicas for item in found}

    def write_pending_revision(self) -> int:
        """What a helm killed in the middle of an upgrade leaves: the next release record, in pending-upgrade."""
        from kubernetes import client, config  # noqa: PLC0415

        core = client.CoreV1Api(config.new_client_from_config(config_file=str(self.emulator.kubeconfig)))
        records = core.list_namespaced_secret(NAMESPACE, label_selector="owner=helm,name=stellaops").items
        latest = max(records, key=lambda s: int(s.metadata.labels["version"]))
        release = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(latest.data["release"]))))
        number = release["version"] + 1
        release.update(version=number)
        release["info"].update(status="pending-upgrade", description="Preparing upgrade")
        data = base64.b64encode(base64.b64encode(gzip.compress(json.dumps(release).encode()))).decode()
        labels = {**latest.metadata.labels, "status": "pending-upgrade", "version": str(number)}
        core.create_namespaced_secret(NAMESPACE, client.V1Secret(
            metadata=client.V1ObjectMeta(name=f"sh.helm.release.v1.stellaops.v{number}", labels=labels),
            type="helm.sh/release.v1", data={"release": data}))
        return number


def expected_services(version: str) -> dict[str, list[str]]:
    """Workload -> images the chart renders for a release with values-stage.yaml (concelier keeps the values file's)."""
    images = {name: [image] for name, image in release_images(version).items()}
    stage = yaml.safe_load((ROOT / "deploy" / "helm" / "stellaops" / "values-stage.yaml").read_text())
    concelier = stage["services"]["concelier"]["image"]
    images.setdefault("concelier", [f"{concelier['repository']}@{concelier['digest']}"])
    return images


@pytest.fixture(params=["helm", "helm4"], ids=["helm3", "helm4"])
def target(request: pytest.FixtureRequest, kube_emulator: KubeEmulator, tmp_path: Path) -> Iterator[HelmTarget]:
    found = HelmTarget(kube_emulator, request.param, tmp_path)
    yield found
    print(f"\n{request.node.name}: " + ", ".join(f"{name} {seconds:.1f}s" for name, seconds in found.timings))


def host_result(result: PlaybookResult, task: str) -> dict[str, Any]:
    return result.result(task, HOST)


def test_upgrade_check_mode_diff_journal_and_idempotence(target: HelmTarget) -> None:
    installed = target.upgrade("2025.09.1")
    assert installed.rc == 0, installed.failure_messages
    assert target.statuses() == [(1, "deployed")]
    assert target.running_images() == expected_services("2025.09.1")

    # Check mode with --diff: the real manifest difference (the bookmark's against helm's dry run), nothing changed.
    checked = target.upgrade("2025.09.2", check=True, diff=True, helm_upgrade_secret_values={"credentials": {"STELLAOPS_DATABASE_PASSWORD": SECRET}})
    assert checked.rc == 0, checked.failure_messages
    plan = host_result(checked, "Plan the upgrade (rendered manifests of the bookmark against the new ones)")
    assert plan["changed"] is True and plan["bookmark"]["revision"] == 1
    old, new = release_images("2025.09.1")["authority"], release_images("2025.09.2")["authority"]
    assert f"-          image: {old}\n" in plan["manifest_diff"] and f"+          image: {new}\n" in plan["manifest_diff"]
    assert "STELLAOPS_DATABASE_PASSWORD: ********" in plan["manifest_diff"]
    assert SECRET not in checked.stdout and base64.b64encode(SECRET.encode()).decode() not in checked.stdout
    assert target.statuses() == [(1, "deployed")] and len(target.jobs()) == 1

    upgraded = target.upgrade("2025.09.2", helm_upgrade_secret_values={"credentials": {"STELLAOPS_DATABASE_PASSWORD": SECRET}})
    assert upgraded.rc == 0, upgraded.failure_messages
    assert target.statuses() == [(1, "superseded"), (2, "deployed")]
    assert target.running_images() == expected_services("2025.09.2")
    assert SECRET not in upgraded.stdout and base64.b64encode(SECRET.encode()).decode() not in upgraded.stdout
    job = target.jobs()[-1]
    assert job["status"] == "completed" and job["release_id"] == "2025.09.2-stable" and job["deployment_id"] == "stellaops.v2"
    assert job["previous_deployment_id"] == "stellaops.v1"
    assert job["details"]["revision"] == 2 and job["details"]["bookmark_revision"] == 1 and job["details"]["chart_version"] == "1.0.0"
    assert job["digests"]["authority"] == new.rsplit("@", 1)[1]
    assert subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{job['details']['git_sha']}^{{commit}}"], check=False).returncode == 0
    assert [h["status"] for h in job["history"]] == ["pending", "preparing", "running", "completing", "completed"]
    # The configuration saved before the upgrade: files of mode 0600 holding the ConfigMap (no Secret existed yet).
    saved = sorted(target.backup_dir.glob("*/kubernetes-stellaops-*.json"))
    assert [p.name for p in saved] == ["kubernetes-stellaops-configmaps.json", "kubernetes-stellaops-secrets.json"]
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in saved)
    assert [o["metadata"]["name"] for o in json.loads(saved[0].read_text())] == ["stellaops-config"]

    again = target.upgrade("2025.09.2", helm_upgrade_secret_values={"credentials": {"STELLAOPS_DATABASE_PASSWORD": SECRET}})
    assert again.rc == 0, again.failure_messages
    assert again.changed(HOST) == 0 and host_result(again, "Plan the upgrade (rendered manifests of the bookmark against the new ones)")["differs"] is False
    assert target.statuses() == [(1, "superseded"), (2, "deployed")] and len(target.jobs()) == 2


def test_failed_upgrade_rolls_back_atomically_and_rollback_returns_to_the_bookmark(target: HelmTarget, sandbox: dict[str, Any]) -> None:
    """A failed upgrade rolls back atomically; the rollback to the bookmark is judged by the database (of this test, on
    the sandbox's PostgreSQL): refused across a category B migration; with helm_rollback_restore_database=true and a
    restore that fails, the services stay at zero; with one that works, the services are scaled to zero, the backup set
    that the upgrade to 2025.09.2 took before it changed anything comes back (its rows, judged in the database) and
    revision 1 runs with the replicas of before; a restore while blue/green holds the environment lock is refused
    before anything stops. Cost: about 70 s per Helm major."""
    with scratch_database(sandbox, MIGRATIONS_BEFORE_B + FINDINGS) as database:
        connection = {k: database[k] for k in ("database", "host", "port", "user", "password")}
        backup = {"helm_upgrade_backup_database": True, "backup_dir": str(target.workdir / "database-backups"),
                  "backup_postgres": [connection], "backup_postgres_bin_dir": database["bin_dir"]}  # fmt: skip
        assert target.upgrade("2025.09.1", **backup).rc == 0
        upgraded = target.upgrade("2025.09.2", **backup)
        assert upgraded.rc == 0, upgraded.failure_messages
        assert target.statuses() == [(1, "superseded"), (2, "deployed")]
        # the install took no set (nothing ran before it); the upgrade's job names the set it took
        backup_set = target.jobs()[1]["details"]["backup_set"]
        assert target.jobs()[0]["details"]["backup_set"] is None and Path(backup_set, "manifest.json").is_file()

        # A pre-upgrade migration Job that fails: helm rolls the release back to the bookmark (revision 2) by itself.
        failed = target.upgrade("2025.09.1", helm_upgrade_values=FAILING_HOOK)
        assert failed.rc != 0
        message = failed.failure_messages[-1]
        assert "Rolled back atomically to the bookmark, revision 2." in message and "2025.09.1-stable" in message
        assert target.statuses() == [(1, "superseded"), (2, "superseded"), (3, "failed"), (4, "deployed")]
        assert target.history()[-1]["description"] == "Rollback to 2"
        assert target.running_images() == expected_services("2025.09.2")
        job = target.jobs()[-1]
        assert job["status"] == "rolled_back" and job["details"]["failed_revision"] == 3 and job["details"]["revision"] == 4
        assert "migrations" in job["message"]

        # Two upgrades that the API rejects (422), without atomic: two failed revisions on top. "helm rollback"
        # without a revision would now go to revision 5, a failed one.
        for _attempt in range(2):
            rejected = target.upgrade("2025.09.1", helm_upgrade_values=REJECTED_HOOK, helm_upgrade_atomic=False)
            assert rejected.rc != 0 and "exceeded quota for migration jobs" in rejected.failure_messages[-1]
        assert target.statuses()[-2:] == [(5, "failed"), (6, "failed")]
        assert target.jobs()[-1]["status"] == "failed"

        # Since the backup: 2025.10.0-edge's category B migration, and a row written. The return to 2025.09.1 is refused
        # before anything changes.
        since = f"INSERT INTO schema_migrations VALUES ('{B_MIGRATION}', 'backfill_scores', 'B', now()); UPDATE findings SET severity = 'info' WHERE id = 2;"
        query(database, since)
        journaled = len(target.jobs())
        refused = target.rollback(helm_rollback_database=database)
        assert refused.rc != 0
        said = host_result(refused, "Decide whether the database suits the release returned to")
        assert said["msg"] == (
            f"The database (schema 3) does not suit the rollback: 2025.09.1-stable does not know category B migration(s) {B_MIGRATION}"
            " (backfill_scores, 2025.10.0), applied since; its code may not run on it. Nothing was changed: -e helm_rollback_restore_database=true"
            " stops the services, restores the backup set taken before the upgrade, then returns."
        ), said["msg"]
        assert target.statuses()[-2:] == [(5, "failed"), (6, "failed")] and len(target.jobs()) == journaled

        # Check mode with the restore: the plan says restore and which Deployments would stop; nothing stops or is restored.
        restore = {"helm_rollback_database": database, "helm_rollback_restore_database": True,
                   "database_restore_postgres": connection, "database_restore_postgres_bin_dir": database["bin_dir"]}  # fmt: skip
        running = target.replicas()
        assert running and 0 not in running.values()
        predicted = target.play("helm_upgrade.yml", check=True, helm_action="rollback", **restore)
        assert predicted.rc == 0, predicted.failure_messages
        assert host_result(predicted, "Decide whether the database suits the release returned to")["decision"] == "restore"
        assert host_result(predicted, "Stop the services (their Deployments scaled to zero)")["changed"] is True
        assert target.replicas() == running
        assert query(database, f"SELECT version FROM schema_migrations WHERE version = '{B_MIGRATION}';") == [[B_MIGRATION]]

        # While a blue/green run holds the environment's lock (its category B Job; here a live process of this controller),
        # the restore is refused before anything stops.
        lock = target.workdir / "migrations.lock"
        holder = make_record("bluegreen-another-run", environment="stage", owner="someone", pid=os.getpid(), release_id="2025.10.0")
        lock.write_text(json.dumps(holder))
        locked = target.rollback(**restore)
        assert locked.rc != 0 and "environment stage is locked by someone, run bluegreen-another-run" in locked.failure_messages[-1]
        assert "scaled to zero" not in locked.failure_messages[-1] and target.replicas() == running and lock.exists()
        lock.unlink()

        # A restore that fails (a wrong password for the database restored into): the services stay at zero, the release
        # as it was, and the sentence says so.
        broken = target.rollback(**{**restore, "database_restore_postgres": {**connection, "password": "wrong"}})
        assert broken.rc != 0
        assert "Its services were scaled to zero for the database restore and stay so" in broken.failure_messages[-1], broken.failure_messages
        assert set(target.replicas().values()) == {0} and target.statuses()[-1] == (6, "failed")
        assert query(database, f"SELECT version FROM schema_migrations WHERE version = '{B_MIGRATION}';") == [[B_MIGRATION]]

        # rollback.yml's role with the restore: services stopped (already), the set of the upgrade rolled back restored, then
        # the bookmark of the last completed upgrade (revision 1, release 2025.09.1), with wait.
        rolled = target.rollback(**restore)
        assert rolled.rc == 0, rolled.failure_messages
        assert host_result(rolled, "Decide whether the database suits the release returned to")["decision"] == "restore"
        stopped = host_result(broken, "Stop the services (their Deployments scaled to zero)")
        assert sorted(r["result"]["metadata"]["name"] for r in stopped["results"]) == sorted(f"stellaops-{name}" for name in running)
        assert {r["result"]["spec"]["replicas"] for r in stopped["results"]} == {0} and stopped["changed"] is True
        assert host_result(rolled, "Check that the restored database suits the release returned to")["decision"] == "redeploy"
        assert query(database, "SELECT version FROM schema_migrations ORDER BY version;") == [["20250901000000"], ["20251001000000"]]
        assert query(database, "SELECT severity FROM findings WHERE id = 2;") == [["low"]]
        plan = host_result(rolled, "Plan the rollback")
        assert plan["target"]["revision"] == 1 and plan["backup_set"] == backup_set
    assert target.statuses()[-1] == (7, "deployed") and target.history()[-1]["description"] == "Rollback to 1"
    assert target.running_images() == expected_services("2025.09.1")
    assert target.replicas() == running
    # the module read every Deployment and StatefulSet of the release from the API after the rollback
    assert host_result(rolled, "Roll back with wait and check the workloads")["job"]["status"] == "completed"
    job = target.jobs()[-1]
    assert job["status"] == "completed" and job["rollback_of"] == target.jobs()[1]["id"] and job["details"]["revision"] == 7
    assert job["release_id"] == "2025.09.1-stable" and job["previous_release_id"] == "2025.09.2-stable"
    assert job["details"]["restored_backup_set"] == backup_set
    assert not lock.exists(), "the restore released the environment lock (the failed one too: the next run took it)"

    # A second rollback goes nowhere new: the last deployed revision already runs.
    again = target.rollback()
    assert again.rc == 0, again.failure_messages
    assert again.changed(HOST) == 0 and target.statuses()[-1] == (7, "deployed")


def test_stuck_pending_upgrade_is_named_and_recovered_only_by_choice(target: HelmTarget) -> None:
    assert target.upgrade("2025.09.1").rc == 0
    pending = target.write_pending_revision()
    before = target.statuses()
    assert before == [(1, "deployed"), (pending, "pending-upgrade")]

    upgrade = target.upgrade("2025.09.2")
    assert upgrade.rc != 0
    assert "is stuck in pending-upgrade at revision 2" in upgrade.failure_messages[-1]
    recover = "set recover_pending=true (in playbooks/rollback.yml: -e helm_rollback_recover_pending=true) to roll back to revision 1"
    assert recover in upgrade.failure_messages[-1]
    refused = target.rollback(helm_rollback_revision=1)
    assert refused.rc != 0 and "is stuck in pending-upgrade at revision 2" in refused.failure_messages[-1]
    assert target.statuses() == before and target.jobs()[-1]["status"] == "completed" and len(target.jobs()) == 1

    recovered = target.rollback(helm_rollback_revision=1, helm_rollback_recover_pending=True)
    assert recovered.rc == 0, recovered.failure_messages
    assert host_result(recovered, "Plan the rollback")["recovered"]["revision"] == 2
    assert target.statuses()[-1] == (3, "deployed")
    assert target.jobs()[-1]["details"]["recovered_pending"] == 2
    assert target.upgrade("2025.09.2").rc == 0
    assert target.statuses()[-1] == (4, "deployed")


def test_bad_input_is_one_sentence_and_changes_nothing(target: HelmTarget, tmp_path: Path) -> None:
    assert target.upgrade("2025.09.1").rc == 0
    before = target.history()
    dead = tmp_path / "dead-kubeconfig"
    config = yaml.safe_load(target.emulator.kubeconfig.read_text())
    # A port that nothing listens on: the emulator's own, plus one, is free only by chance, so ask the OS.
    import socket  # noqa: PLC0415

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{free_port}"
    dead.write_text(yaml.safe_dump(config))
    result = target.play("helm_faults.yml", dead_kubeconfig=str(dead))
    assert result.rc == 0
    messages = {name: host_result(result, name)["msg"] for name in (
        "Roll back a release that does not exist", "Roll back to a revision that does not exist",
        "Upgrade with the values file of an environment that has none", "Read the history through an API server that does not answer",
        "Install into a namespace that does not exist",
        "Save the configuration through an API server that does not answer")}
    assert messages["Roll back a release that does not exist"] == (
        f"Release nowhere does not exist in namespace {NAMESPACE} of context {target.emulator.context} (releases there: stellaops); nothing was changed.")
    # Without a revision, a release that never existed there is nothing to roll back: no failure, no change.
    nothing = host_result(result, "Roll back a release that does not exist to its bookmark")
    assert not nothing.get("failed") and nothing["changed"] is False and nothing["nothing_to_roll_back"] is True
    assert nothing["msg"] == f"Release nowhere does not exist in namespace {NAMESPACE} of context {target.emulator.context}: nothing to roll back."
    assert messages["Roll back to a revision that does not exist"] == "Release stellaops has no revision 42 (revisions 1 to 1 exist); nothing was changed."
    assert messages["Upgrade with the values file of an environment that has none"].startswith("Values file ")
    assert "values-qa.yaml (option values_files) does not exist" in messages["Upgrade with the values file of an environment that has none"]
    # the emulator refuses objects in a namespace that does not exist, as a cluster does: the plan says so first
    assert messages["Install into a namespace that does not exist"] == (
        "Namespace nowhere-ns does not exist; create it, or set create_namespace (helm_upgrade_create_namespace=true in the roles) "
        "so that the first install creates it. Nothing was changed.")
    assert messages["Read the history through an API server that does not answer"].startswith(
        f"The Kubernetes API server of namespace {NAMESPACE} of context {target.emulator.context} is unreachable (")
    assert "the Kubernetes API server is unreachable; nothing was changed." in messages["Save the configuration through an API server that does not answer"]
    for message in messages.values():
        assert "\n" not in message.strip() and "Traceback" not in message
    assert target.history() == before
    assert not (target.backup_dir / "unreachable").exists()


def test_configuration_backup_is_private_and_restorable(target: HelmTarget, tmp_path: Path) -> None:
    assert target.upgrade("2025.09.1", helm_upgrade_secret_values={"credentials": {"STELLAOPS_DATABASE_PASSWORD": SECRET}}).rc == 0
    backup = tmp_path / "config-backup"
    result = target.play("k8s_config_backup.yml", backup_path=str(backup))
    assert result.rc == 0, result.failure_messages
    check, first, again = (host_result(result, name) for name in ("Save (check mode)", "Save", "Save again"))
    assert check["changed"] and first["changed"] and not again["changed"]
    # helm's own release records are not configuration: never saved
    assert first["objects"] == {"ConfigMap": ["stellaops-config"], "Secret": ["stellaops-credentials"]}
    assert stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in backup.iterdir())
    restore_check, restore, restore_again = (host_result(result, name) for name in ("Restore (check mode)", "Restore", "Restore again"))
    assert restore_check["changed"] and restore["changed"] and not restore_again["changed"]
    assert sorted((s["kind"], s["action"]) for s in restore["restore"]) == [("ConfigMap", "replace"), ("Secret", "replace")]
    assert SECRET not in result.stdout and base64.b64encode(SECRET.encode()).decode() not in result.stdout

    from kubernetes import client, config  # noqa: PLC0415

    core = client.CoreV1Api(config.new_client_from_config(config_file=str(target.emulator.kubeconfig)))
    assert core.read_namespaced_config_map("stellaops-config", NAMESPACE).data["STELLAOPS_LOG_LEVEL"] == "Information"
    secret = core.read_namespaced_secret("stellaops-credentials", NAMESPACE).data["STELLAOPS_DATABASE_PASSWORD"]
    assert base64.b64decode(secret).decode() == SECRET
