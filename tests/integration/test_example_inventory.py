# SPDX-License-Identifier: GPL-3.0-or-later
"""A user's first fleet: inventory/example/ copied and filled in, run from the built and installed collection.

The copy gets what a user would write into it: one compose host of the sandbox reached over real SSH
(fleet-2, with a Docker engine of its own), one Helm target on the sandbox's Kubernetes API emulator
(an emulator, not a cluster), the release directory, the database to back up and the evidence bucket.
Then, as docs/getting-started.md tells: the missing settings named by pre-flight before anything
changes, check mode, the upgrade, a second upgrade that changes nothing (changed=0 in the recap and in
ansible-runner's job events, as AWX reads them), and the rollback of the channel.

Cost: about 3 min on 2 cores (four upgrades or rollbacks of one host and one Helm target, four
pre-flight runs that stop before any change, one of them at a misspelled stellaops_compose in about 10 s).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fleet import ROOT, VENV_BIN, FleetHost, sandbox_hosts, stable_channel

pytestmark = pytest.mark.sandbox

PROJECT = "it-example"
PORT_OFFSET = 20
NAMESPACE = "it-example-stage"
APPROVAL = {"stellaops_approval": {"approved_by": "first-time operator", "ticket": "CHG-1"}}
SERVICES = ["authority", "signer", "attestor", "scanner-web", "scheduler", "notify"]


class ExampleFleet:
    """The filled-in copy of inventory/example/ and the runs a user makes with it."""

    def __init__(self, workdir: Path, collections: Path, runner: Any, host: FleetHost, sandbox: dict[str, Any]) -> None:
        self.workdir = workdir
        self.collections = collections
        self.runner = runner
        self.host = host
        self.sandbox = sandbox
        self.inventory = workdir / "inventory"

    def fill(self, **overrides: Any) -> None:
        """Copy inventory/example/ and set every REQUIRED value to the sandbox's; ``overrides`` replace group variables."""
        if self.inventory.exists():
            shutil.rmtree(self.inventory)
        shutil.copytree(ROOT / "inventory" / "example", self.inventory)
        sandbox, host = self.sandbox, self.host
        hosts = self._load("hosts.yml")
        hosts["all"]["children"]["compose_hosts"]["hosts"] = {
            host.name: {"ansible_host": "127.0.0.1", "ansible_port": host.ssh_port},
        }
        hosts["all"]["children"]["helm_targets"]["hosts"] = {
            "helm-stage": {"helm_upgrade_environment": "stage", "helm_upgrade_namespace": NAMESPACE, "stellaops_channel": "stable"},
        }
        # helm-stage first in every play: the controller's checks must still take the compose host's settings.
        children = hosts["all"]["children"]
        hosts["all"]["children"] = {"helm_targets": children.pop("helm_targets"), **children}
        self._dump("hosts.yml", hosts)

        self._update("all.yml", stellaops_releases_dir=sandbox["releases_dir"])
        secret = Path(sandbox["s3"]["secret_key_file"]).read_text().strip()
        password = Path(sandbox["postgres"]["password_file"]).read_text().strip()
        settings = {f"STELLAOPS_{name.upper().replace('-', '_')}_PORT": str(host.port_base + 1 + i) for i, name in enumerate(SERVICES)}
        evidence = self.workdir / "evidence"
        self._update(
            "compose_hosts.yml",
            # The sandbox's own SSH key and throwaway host keys; a project and ports of this test's own.
            ansible_ssh_private_key_file=host.key_file,
            ansible_ssh_common_args="-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            stellaops_compose={
                "project_name": PROJECT,
                "project_dir": f"/srv/{PROJECT}",
                "environment": f"sandbox-{PROJECT}",
                "health_checks": [
                    {
                        "name": "authority",
                        "type": "http",
                        "url": f"http://127.0.0.1:{host.port_base + 1}/health",
                        "body_contains": '"release": "{release_version}"',
                    }
                ],
            },
            compose_upgrade_env={"STELLAOPS_ENVIRONMENT": "sandbox", **settings},
            compose_upgrade_secrets={"STELLAOPS_DATABASE_PASSWORD": password},
            backup_dir=str(self.workdir / "backups"),
            # One source as a mapping (a list of them works as well).
            backup_postgres={**{k: sandbox["postgres"][k] for k in ("host", "port", "database", "user")}, "password": password},
            backup_postgres_bin_dir=sandbox["postgres"]["bin_dir"],
            # Pre-flight's migrations check: set for the compose hosts only, as a user of several profiles would.
            preflight_database={**{k: sandbox["postgres"][k] for k in ("host", "port", "database", "user")}, "password": password,
                                "bin_dir": sandbox["postgres"]["bin_dir"]},
            evidence_gate_store={
                "type": "s3", "endpoint": sandbox["s3"]["endpoint"], "bucket": sandbox["s3"]["evidence_bucket"], "prefix": "evidence/",
                "region": sandbox["s3"]["region"], "access_key": sandbox["s3"]["access_key"], "secret_key": secret,
            },
            evidence_gate_baseline_path=str(evidence / "baseline.json"),
            evidence_gate_cache_path=str(evidence / "hash-cache.json"),
            evidence_gate_report_dir=str(evidence / "reports"),
        )
        kube = sandbox["kubernetes"]
        self._update(
            "helm_targets.yml",
            helm_upgrade_kubeconfig=kube["kubeconfig"],
            helm_upgrade_kube_context=kube["context"],
            # A new environment: its first upgrade installs the release, in a namespace of its own.
            helm_upgrade_install=True,
            helm_upgrade_create_namespace=True,
            helm_upgrade_journal_dir=str(self.workdir / "helm" / "journal"),
            helm_upgrade_backup_dir=str(self.workdir / "helm" / "backups"),
            backup_dir=str(self.workdir / "helm" / "database-backups"),
            backup_postgres=[{**{k: sandbox["postgres"][k] for k in ("host", "port", "database", "user")}, "password": password}],
            backup_postgres_bin_dir=sandbox["postgres"]["bin_dir"],
            helm_rollback_database={**{k: sandbox["postgres"][k] for k in ("host", "port", "database", "user")}, "password": password,
                                    "bin_dir": sandbox["postgres"]["bin_dir"]},
            helm_bluegreen_prometheus_url=sandbox["prometheus"]["url"],
            evidence_gate_store={
                "type": "s3", "endpoint": sandbox["s3"]["endpoint"], "bucket": sandbox["s3"]["evidence_bucket"], "prefix": "evidence/",
                "region": sandbox["s3"]["region"], "access_key": sandbox["s3"]["access_key"], "secret_key": secret,
            },
            evidence_gate_baseline_path=str(self.workdir / "helm" / "evidence" / "baseline.json"),
            evidence_gate_cache_path=str(self.workdir / "helm" / "evidence" / "hash-cache.json"),
            evidence_gate_report_dir=str(self.workdir / "helm" / "evidence" / "reports"),
        )
        for name, group_vars in overrides.items():
            self._update(name, **group_vars)

    def _load(self, name: str) -> Any:
        path = self.inventory / name if name == "hosts.yml" else self.inventory / "group_vars" / name
        return yaml.safe_load(path.read_text())

    def _dump(self, name: str, document: Any) -> None:
        path = self.inventory / name if name == "hosts.yml" else self.inventory / "group_vars" / name
        path.write_text(yaml.safe_dump(document, sort_keys=False))

    def _update(self, name: str, **values: Any) -> None:
        document = self._load(name)
        for key, value in values.items():
            if value is None:
                document.pop(key, None)
            else:
                document[key] = value
        self._dump(name, document)

    def environment(self) -> dict[str, str]:
        """No ansible.cfg of ours: the installed collection and the user's inventory only."""
        return {
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_INVENTORY": str(self.inventory),
            "ANSIBLE_CALLBACKS_ENABLED": "stellaops.deploy.run_report",
            "STELLAOPS_REPORT_DIR": str(self.workdir / "reports"),
            "ANSIBLE_HOST_KEY_CHECKING": "false",
            "STELLAOPS_TOOLS_DIR": str(ROOT / ".tools" / "bin"),
        }

    def run(self, playbook: str, *, check: bool = False, limit: str | None = None, **extra: Any) -> Any:
        # An empty ansible.cfg of the user's: Ansible's defaults, not the checkout's settings.
        config = self.workdir / "ansible.cfg"
        config.write_text("[defaults]\n")
        return self.runner(
            f"stellaops.deploy.{playbook}", inventory=self.inventory, extra_vars=extra, check=check, limit=limit,
            env={**self.environment(), "ANSIBLE_CONFIG": str(config)}, cwd=self.workdir,
        )

    def helm(self, *args: str, check: bool = True) -> str:
        """helm on the sandbox's emulator, in the Helm target's namespace."""
        kube = self.sandbox["kubernetes"]
        scope = ["--kubeconfig", kube["kubeconfig"], "--kube-context", kube["context"], "--namespace", NAMESPACE]
        done = subprocess.run([str(ROOT / ".tools" / "bin" / "helm"), *args, *scope], capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 0 or not check, done.stderr
        return done.stdout

    def version(self) -> str | None:
        return (self.host.health(self.host.port_base + 1) or {}).get("release")


@pytest.fixture(scope="module")
def example(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleFleet]:
    host = sandbox_hosts(sandbox, PORT_OFFSET)[1]
    fleet = ExampleFleet(tmp_path_factory.mktemp("example"), installed_collection, playbook_runner, host, sandbox)

    def clean() -> None:
        host.remove_project(PROJECT)
        host.ssh(f"rm -rf /srv/{PROJECT}", check=False)
        fleet.helm("uninstall", "stellaops", "--wait", "--timeout", "60s", check=False)

    clean()
    yield fleet
    clean()


def test_missing_settings_are_named_and_nothing_to_roll_back_is_no_failure(example: ExampleFleet) -> None:
    # No release directory: one sentence naming the variable and where it goes.
    example.fill(**{"all.yml": {"stellaops_releases_dir": None}})
    result = example.run("upgrade", channel="stable", **APPROVAL)
    assert result.rc != 0
    messages = [m for m in result.failure_messages if m]
    assert messages == [
        "Set stellaops_releases_dir (group_vars/all.yml of the inventory, see inventory/example): the directory on the controller"
        " that holds the release manifests of every channel; nothing was changed."
    ], messages

    # Backups and the evidence gate on (the defaults) with nothing to back up and no evidence store: both listed
    # by pre-flight, with the missing approval, in one failure; nothing deployed.
    example.fill(**{"compose_hosts.yml": {"backup_postgres": None, "evidence_gate_store": None}})
    result = example.run("upgrade", channel="stable")
    assert result.rc != 0
    failure = result.of("preflight_verdict")["msg"]
    assert "failed 3 check(s); nothing was changed" in failure, failure
    assert "settings: backups before an upgrade are on (compose_upgrade_backup) and nothing is named to back up" in failure
    assert "backup_postgres, backup_mongodb, backup_object_storage or backup_kubernetes" in failure
    assert "settings: the evidence gate is on (compose_upgrade_evidence_gate) and evidence_gate_store is not set" in failure
    assert "approval: an upgrade on the stable channel needs an approval" in failure
    assert example.host.containers(PROJECT) == {}

    # A misspelled setting of stellaops_compose: one sentence naming the variable and what it takes, before the host
    # is touched (the run summary shows the sentence without ansible-core's wrapping: test_reports_run_report.py).
    example.fill()
    misspelled = {**example._load("compose_hosts.yml")["stellaops_compose"], "projectdir": "/srv/elsewhere"}
    example.fill(**{"compose_hosts.yml": {"stellaops_compose": misspelled}})
    result = example.run("upgrade", channel="stable", **APPROVAL)
    assert result.rc != 0
    said = "stellaops_compose has no setting 'projectdir'; it takes project_name, project_dir, docker_host, environment, wait_timeout,"
    assert [m for m in result.failure_messages if m and said in m], result.failure_messages
    assert example.host.containers(PROJECT) == {}

    # A rollback before any upgrade: nothing to roll back on either target, which is no failure and no change.
    example.fill()
    rolled = example.run("rollback", channel="stable")
    assert rolled.rc == 0, rolled.failure_messages
    assert (rolled.changed(example.host.name), rolled.changed("helm-stage")) == (0, 0)
    planned = rolled.of("compose_deploy", example.host.name)
    assert planned["outcome"] == "nothing to do" and planned["msg"].startswith("Nothing to roll back: the journal of "), planned["msg"]
    assert rolled.result("Plan the rollback", "helm-stage")["nothing_to_roll_back"] is True

    # The approval guards the Helm target alone too (--limit to it leaves the controller and the compose host out).
    result = example.run("upgrade", channel="stable", limit="helm-stage")
    assert result.rc != 0
    failure = result.of("preflight_verdict", "helm-stage")["msg"]
    assert "failed 1 check(s)" in failure and "approval: an upgrade on the stable channel needs an approval" in failure, failure


def test_check_upgrade_no_op_and_rollback_from_the_installed_collection(example: ExampleFleet, tmp_path: Path) -> None:
    example.fill()
    # A starting point, so that the rollback has a deployment to return to.
    first = example.run("upgrade", channel="stable", release="2025.09.0", **APPROVAL)
    assert first.rc == 0, first.failure_messages
    assert example.version() == "2025.09.0"

    # The Helm target's upgrade path is checked on the platform release its last revision runs (2025.09.0): a channel
    # whose newest release upgrades from 2025.10.0 only is refused with the chain, before helm changes anything. That
    # 2025.11.0 has no migration (the images of 2025.11.1-edge, which nothing runs on the emulator): an in-place Helm
    # upgrade across a category B migration is refused for another reason (unit tests of preflight_verdict).
    releases = stable_channel(example.sandbox, tmp_path / "releases", "2025.11.1-edge")
    revisions = example.helm("history", "stellaops", "--output", "json")
    skipped = example.run("upgrade", channel="stable", limit="helm-stage", stellaops_releases_dir=str(releases), **APPROVAL)
    assert skipped.rc != 0
    failure = skipped.of("preflight_verdict", "helm-stage")["msg"]
    assert failure.startswith("Pre-flight for 2025.11.0-stable failed 1 check(s); nothing was changed"), failure
    assert "helm-stage: upgrade path: 2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first" in failure
    assert example.helm("history", "stellaops", "--output", "json") == revisions

    # Check mode, with the backup turned off on purpose: the report repeats it.
    checked = example.run("upgrade", channel="stable", check=True, compose_upgrade_backup=False, **APPROVAL)
    assert checked.rc == 0, checked.failure_messages
    assert checked.changed(example.host.name) > 0 and example.version() == "2025.09.0"
    report = json.loads(sorted((example.workdir / "reports").glob("*-upgrade.json"))[-1].read_text())
    assert (report["outcome"], report["protection_off"]) == ("checked", ["no backup before the upgrade (compose_upgrade_backup: false)"])
    # The database is named for the compose host only: pre-flight checks it once, with that host's settings, though
    # helm-stage, whose variables do not name it, comes first in the play (and runs the verdict).
    verdict = checked.of("preflight_verdict", "helm-stage")
    assert verdict["record"]["migrations_pending"] == [], verdict["record"]
    assert checked.of("migrations_info", example.host.name)["pending"] == []

    upgraded = example.run("upgrade", channel="stable", **APPROVAL)
    assert upgraded.rc == 0, upgraded.failure_messages
    newest = yaml.safe_load(Path(upgraded.result("Find the release manifest")["release"]["path"]).read_text())["release"]["version"]
    assert newest != "2025.09.0" and example.version() == newest

    # Nothing to deploy: changed=0 on every target, in the recap and in the job events AWX stores.
    import ansible_runner  # noqa: PLC0415

    (tmp_path / "runner").mkdir()
    runner = ansible_runner.run(
        private_data_dir=str(tmp_path / "runner"),
        playbook=str(example.collections / "ansible_collections" / "stellaops" / "deploy" / "playbooks" / "upgrade.yml"),
        inventory=str(example.inventory),
        extravars={"channel": "stable", **APPROVAL},
        envvars={**example.environment(), "PATH": f"{VENV_BIN}{os.pathsep}{ROOT / '.tools' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"},
        quiet=True,
        timeout=900,
    )
    stdout = runner.stdout.read()
    assert (runner.status, runner.rc) == ("successful", 0), stdout[-3000:]
    events = list(runner.events)
    stats = next(e for e in events if e["event"] == "playbook_on_stats")["event_data"]
    assert stats["changed"] == {} and not stats["failures"], stats
    assert set(stats["ok"]) == {example.host.name, "helm-stage"}
    assert not [e for e in events if e["event"] == "runner_on_ok" and e["event_data"]["res"].get("changed")]
    assert "UPGRADE NO CHANGE" in stdout

    rolled = example.run("rollback", channel="stable")
    assert rolled.rc == 0, rolled.failure_messages
    assert example.version() == "2025.09.0"
    # helm-stage's rollback read the database the example inventory names for it: 2025.10.0's category A migration,
    # applied since, is backward compatible, so 2025.09.0 returns on the database as it is.
    safety = rolled.of("rollback_safety", "helm-stage")
    assert (safety["decision"], safety["compatible"]) == ("redeploy", True), safety
    assert safety["msg"].startswith("The database (schema 2) suits 2025.09.0-stable: every migration applied since is backward compatible"), safety

    # With stellaops_upgrade_path=auto the Helm target walks that chain instead: 2025.10.0, then 2025.11.0, each an
    # atomic helm upgrade and journal job of its own. The first walk's second hop fails (its pre-upgrade migrations Job
    # fails on the emulator, asked for that release only): helm rolls it back, and the target stays on the first hop.
    known = len(json.loads(example.helm("history", "stellaops", "--output", "json")))
    walk = {"channel": "stable", "limit": "helm-stage", "stellaops_releases_dir": str(releases), "stellaops_upgrade_path": "auto", **APPROVAL}
    second_hop_fails = "{{ {'migrations': {'annotations': {'kube-emulator/job-outcome': 'failed'}}} if helm_upgrade_release.version == '2025.11.0' else {} }}"
    failed = example.run("upgrade", **walk, helm_upgrade_values=second_hop_fails)
    assert failed.rc != 0
    assert "to 2025.11.0-stable failed" in failed.failure_messages[-1] and "Rolled back atomically to the bookmark" in failed.failure_messages[-1]
    walked = example.run("upgrade", **walk)
    assert walked.rc == 0, walked.failure_messages
    history = json.loads(example.helm("history", "stellaops", "--output", "json"))[known:]
    values = [json.loads(example.helm("get", "values", "stellaops", "--revision", str(r["revision"]), "--output", "json")) for r in history]
    runs = [(v["global"]["release"]["version"], r["status"]) for v, r in zip(values, history, strict=True)]
    # the failed hop's revision, then helm's return to the first hop's; the rerun walks the one hop left
    assert runs == [("2025.10.0", "superseded"), ("2025.11.0", "failed"), ("2025.10.0", "superseded"), ("2025.11.0", "deployed")], runs
    jobs = sorted((json.loads(p.read_text()) for p in (example.workdir / "helm" / "journal" / "jobs").glob("*.json")), key=lambda j: j["started_at"])
    hops = [(job["release_id"], job["status"]) for job in jobs[-3:]]
    assert hops == [("2025.10.0-stable", "completed"), ("2025.11.0-stable", "rolled_back"), ("2025.11.0-stable", "completed")], hops
    # Each hop backed the database up first, as the example inventory asks (helm_upgrade_backup_database), and its job
    # names the set a rollback with the restore would return to.
    sets = [Path(job["details"]["backup_set"]) for job in jobs[-3:]]
    assert len(set(sets)) == 3, sets
    assert all((path / "manifest.json").is_file() and path.parent == example.workdir / "helm" / "database-backups" for path in sets), sets
    # The evidence gate of the Helm target (helm_upgrade_evidence_gate): the failed hop proved continuity on the release
    # helm returned to (schema 1); the rerun's hop to 2025.11.0, which reads the evidence in schema 2, proved it through
    # the cross-reference of the roots written beside the baseline.
    proofs = [r for _name, r in failed.tasks("helm-stage") if r.get("action") == "stellaops.deploy.evidence_verify" and not r.get("skipped")]
    assert len(proofs) == 2, proofs  # the first hop's, and the failed hop's after helm's return
    assert all(p["continuity"] and p.get("cross_reference") is None for p in proofs), proofs
    crossed = walked.of("evidence_verify", "helm-stage")
    assert crossed["continuity"] and (crossed["cross_reference"]["from_schema"], crossed["cross_reference"]["to_schema"]) == (1, 2), crossed
