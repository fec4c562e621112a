# SPDX-License-Identifier: GPL-3.0-or-later
"""The Helm modules' managers: what they plan, when they refuse, what check mode leaves alone.

A stand-in for AnsibleModule answers helm's commands with real helm 3.18 output captured against the
Kubernetes API emulator (tests/unit/plugins/module_utils/fixtures/helm) and records every command,
so a test sees that check mode never runs ``helm upgrade`` or ``helm rollback`` and that a refusal
runs nothing that writes. The real binaries (helm 3 and helm 4) run in tests/integration/test_helm_profile.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.journal import JobSpec, Journal
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.helm import workload_images
from ansible_collections.stellaops.deploy.plugins.modules.helm_history_info import HistoryInfo
from ansible_collections.stellaops.deploy.plugins.modules.helm_release import ReleaseUpgrade
from ansible_collections.stellaops.deploy.plugins.modules.helm_rollback import ReleaseRollback

FIXTURES = Path(__file__).resolve().parents[1] / "module_utils" / "fixtures" / "helm"
CHART = Path(__file__).resolve().parents[4] / "deploy" / "helm" / "stellaops"
Answer = tuple[int, str, str]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def history(*statuses: str) -> str:
    return json.dumps([{"revision": i + 1, "status": s, "chart": "stellaops-1.0.0", "app_version": "2025.10.0",
                        "description": "Preparing upgrade" if s.startswith("pending") else "", "updated": ""}
                       for i, s in enumerate(statuses)])


class StandInModule:
    """AnsibleModule as the managers use it: params, check_mode and run_command answered by helm subcommand."""

    def __init__(self, params: dict[str, Any], answers: dict[str, Any], check_mode: bool = False) -> None:
        self.params = {"release": "stellaops", "namespace": "stellaops", "kube_context": None, "kubeconfig": None, "helm_path": None,
                       "create_namespace": False, **params}  # fmt: skip
        self.check_mode = check_mode
        self.answers: dict[str, Any] = {"version": (0, "v3.18.0+gcc58e3f\n", ""), **answers}
        self.calls: list[list[str]] = []

    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[list[str]] = None) -> Optional[str]:
        return "/usr/bin/helm" if arg == "helm" else None

    def run_command(self, args: list[str], **kwargs: Any) -> Answer:
        self.calls.append(list(args))
        key = " ".join(args[1:3]) if args[1] == "get" else args[1]
        if key == "upgrade" and "--dry-run=client" in args:
            key = "dry-run"
        answer = self.answers.get(key)
        if answer is None:
            raise AssertionError(f"unexpected helm command {args}")
        return answer(args) if callable(answer) else answer

    def fail_json(self, msg: str, **kwargs: Any) -> Any:
        raise StellaOpsError(msg, **kwargs)

    def writes(self) -> list[list[str]]:
        return [c for c in self.calls if c[1] in ("upgrade", "rollback") and "--dry-run=client" not in c]


def upgrade_params(**extra: Any) -> dict[str, Any]:
    return {"chart": str(CHART), "values_files": [str(CHART / "values-dev.yaml")], "values": {}, "secret_values": {},
            "install": False, "atomic": True, "wait": True, "timeout": "15m", "git_dir": None, "journal_dir": None, "job": None, **extra}


JOB = {"environment": "dev", "host": "helm-dev", "release_id": "2025.10.0-edge", "release": "2025.10.0", "channel": "edge", "digests": {}, "backup_set": None}


def manifest_answers(history_text: str) -> dict[str, Any]:
    return {
        "history": (0, history_text, ""),
        "get manifest": (0, fixture("manifest-stage-secret.helm3.yaml"), ""),
        "get hooks": (0, fixture("hooks-2025.09.0.helm3.yaml"), ""),
        "dry-run": (0, fixture("dry-run-upgrade.helm3.json"), ""),
    }


# --------------------------------------------------------------------------- helm_release


def test_check_mode_plans_against_the_bookmark_and_runs_no_upgrade() -> None:
    module = StandInModule(upgrade_params(), manifest_answers(fixture("history-failed.helm3.json")), check_mode=True)
    result = ReleaseUpgrade(module).run()
    assert result["changed"] is True and result["differs"] is True and result["status"] == "planned"
    assert result["bookmark"]["revision"] == 4 and result["revision"] == 6
    assert ["/usr/bin/helm", "get", "manifest", "stellaops", "--revision", "4"] == module.calls[2][:6]
    assert module.writes() == []
    assert "hunter2" not in json.dumps(result)
    assert "(changed)" in result["diff"]["after"] and "(changed)" not in result["diff"]["before"]


def test_a_real_run_upgrades_atomically_and_journals_its_own_job(tmp_path: Path) -> None:
    answers = manifest_answers(history("superseded", "deployed"))
    answers["upgrade"] = (0, json.dumps({"version": 3, "info": {"status": "deployed"}}), "")
    module = StandInModule(upgrade_params(journal_dir=str(tmp_path), job={**JOB, "backup_set": "/var/backups/stellaops/set-1"}), answers)
    result = ReleaseUpgrade(module).run()
    assert result["revision"] == 3 and result["status"] == "deployed"
    assert len(module.writes()) == 1 and "--atomic" in module.writes()[0] and "--timeout" in module.writes()[0]
    (recorded,) = Journal(str(tmp_path)).jobs()
    assert recorded == result["job"]
    assert [step["status"] for step in recorded["history"]] == ["pending", "preparing", "running", "completing", "completed"]
    assert (recorded["release_id"], recorded["host"], recorded["deployment_id"], recorded["previous_deployment_id"]) == (
        "2025.10.0-edge", "helm-dev", "stellaops.v3", "stellaops.v2")
    assert recorded["details"]["revision"] == 3 and recorded["details"]["bookmark_revision"] == 2
    assert recorded["details"]["profile"] == "helm" and recorded["details"]["chart_version"] == "1.0.0"
    assert recorded["details"]["backup_set"] == "/var/backups/stellaops/set-1"


def test_check_mode_and_no_change_start_no_job(tmp_path: Path) -> None:
    module = StandInModule(upgrade_params(journal_dir=str(tmp_path), job=JOB), manifest_answers(history("superseded", "deployed")), check_mode=True)
    assert "job" not in ReleaseUpgrade(module).run()
    assert Journal(str(tmp_path)).jobs() == []


def test_equal_manifests_and_a_deployed_newest_revision_change_nothing() -> None:
    stored = fixture("manifest-stage-secret.helm3.yaml")
    hook = fixture("hooks-2025.09.0.helm3.yaml").split("\n", 2)[2]
    same = {"manifest": stored, "hooks": [{"path": "stellaops/templates/migrations-job.yaml", "manifest": hook}],
            "chart": {"metadata": {"name": "stellaops", "version": "1.0.0", "appVersion": "2025.10.0"}}, "version": 3}
    answers = manifest_answers(history("superseded", "deployed"))
    answers["dry-run"] = (0, json.dumps(same), "")
    module = StandInModule(upgrade_params(), answers)
    result = ReleaseUpgrade(module).run()
    assert result["changed"] is False and result["status"] == "unchanged" and result["revision"] == 2
    assert result["manifest_diff"] == "" and module.writes() == []


def test_a_pending_release_is_refused_before_anything_is_rendered() -> None:
    module = StandInModule(upgrade_params(), manifest_answers(history("deployed", "pending-upgrade")))
    with pytest.raises(StellaOpsError, match="is stuck in pending-upgrade at revision 2"):
        ReleaseUpgrade(module).run()
    assert [c[1] for c in module.calls] == ["history"]


def test_a_failed_atomic_upgrade_is_journalled_as_rolled_back(tmp_path: Path) -> None:
    states = iter([history("superseded", "deployed"), history("superseded", "superseded", "failed", "deployed")])
    answers: dict[str, Any] = manifest_answers("")
    answers["history"] = lambda _args: (0, next(states), "")
    answers["upgrade"] = (1, "", "Error: UPGRADE FAILED: release stellaops failed, and has been rolled back due to atomic being set: job failed\n")
    module = StandInModule(upgrade_params(journal_dir=str(tmp_path), job=JOB), answers)
    with pytest.raises(StellaOpsError) as err:
        ReleaseUpgrade(module).run()
    assert err.value.details["rolled_back"] is True
    assert str(err.value).endswith("job failed. Revision 3 failed; revision 4 is deployed (stellaops-1.0.0).")
    (recorded,) = Journal(str(tmp_path)).jobs()
    assert recorded == err.value.details["job"]
    assert recorded["status"] == "rolled_back" and {k: recorded["details"][k] for k in ("failed_revision", "revision")} == {"failed_revision": 3, "revision": 4}


def test_a_missing_values_file_stops_before_helm_runs(tmp_path: Path) -> None:
    module = StandInModule(upgrade_params(values_files=[str(tmp_path / "values-qa.yaml")]), {})
    with pytest.raises(StellaOpsError, match=r"values-qa\.yaml \(option values_files\) does not exist"):
        ReleaseUpgrade(module).run()
    assert module.calls == []


# --------------------------------------------------------------------------- helm_rollback


def rollback_params(**extra: Any) -> dict[str, Any]:
    return {"revision": None, "recover_pending": False, "wait": True, "force_conflicts": False, "restored_backup_set": None, "timeout": "10m",
            "journal_dir": None, "job": None, **extra}  # fmt: skip


def running_the_target(*_args: Any) -> dict[str, list[str]]:
    """The cluster as helm left it: every workload runs the images of the target revision's manifest."""
    return workload_images(fixture("manifest-stage-secret.helm3.yaml"))


def test_rollback_defaults_to_the_bookmark_not_to_the_previous_failed_revision() -> None:
    answers = manifest_answers(history("superseded", "deployed", "failed", "failed"))
    module = StandInModule(rollback_params(), answers, check_mode=True)
    result = ReleaseRollback(module).run()
    assert result["target"]["revision"] == 2 and result["changed"] is True and result["revision"] == 5
    assert module.writes() == []


def test_rollback_refuses_a_failed_target_and_a_pending_release() -> None:
    module = StandInModule(rollback_params(revision=3), manifest_answers(history("deployed", "superseded", "failed")))
    with pytest.raises(StellaOpsError, match=r"^Revision 3 of release stellaops is failed; a rollback returns to a revision that ran"):
        ReleaseRollback(module).run()
    module = StandInModule(rollback_params(), manifest_answers(history("deployed", "pending-upgrade")))
    recover = r"set recover_pending=true \(in playbooks/rollback.yml: -e helm_rollback_recover_pending=true\) to roll back to revision 1"
    with pytest.raises(StellaOpsError, match=recover):
        ReleaseRollback(module).run()
    assert module.writes() == []


def test_recovering_a_pending_release_rolls_back_with_wait_and_timeout() -> None:
    states = iter([history("deployed", "pending-upgrade"), history("superseded", "pending-upgrade", "deployed")])
    answers: dict[str, Any] = manifest_answers("")
    answers["history"] = lambda _args: (0, next(states), "")
    answers["rollback"] = (0, "Rollback was a success! Happy Helming!\n", "")
    module = StandInModule(rollback_params(recover_pending=True, timeout="600"), answers)
    result = ReleaseRollback(module, live_images=running_the_target).run()
    assert result["recovered"]["revision"] == 2 and result["revision"] == 3 and result["status"] == "deployed"
    assert module.writes()[0][:7] == ["/usr/bin/helm", "rollback", "stellaops", "1", "--timeout", "600s", "--wait"]


def upgrade_job(journal: Journal, bookmark_revision: int) -> dict[str, Any]:
    """A completed upgrade of the environment that recorded its bookmark, as helm_release journals it."""
    spec = JobSpec("2025.10.0-edge", "helm-dev", "dev", "2025.10.0", "edge", deployment_id="stellaops.v4",
                   details={"profile": "helm", "bookmark_revision": bookmark_revision, "backup_set": "/var/backups/stellaops/set-1"})  # fmt: skip
    job = journal.start(spec)
    for status in ("preparing", "running", "completing", "completed"):
        job = journal.transition(job["id"], status)
    return job


def test_a_journaled_rollback_returns_to_the_recorded_bookmark_and_records_what_it_undoes(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    upgraded = upgrade_job(journal, bookmark_revision=2)
    # revision 4, the upgrade, failed after its job completed (a later hand-made change): the rollback goes to 2, not to 3
    states = iter([history("superseded", "superseded", "deployed", "failed"), history("superseded", "superseded", "superseded", "failed", "deployed")])
    answers: dict[str, Any] = manifest_answers("")
    answers["history"] = lambda _args: (0, next(states), "")
    answers["rollback"] = (0, "Rollback was a success! Happy Helming!\n", "")
    job = {"environment": "dev", "host": "helm-dev"}
    result = ReleaseRollback(StandInModule(rollback_params(journal_dir=str(tmp_path), job=job), answers), live_images=running_the_target).run()
    assert result["target"]["revision"] == 2 and result["revision"] == 5
    # the backup set the upgrade undone took: what a rollback with the database restore restores
    assert result["backup_set"] == "/var/backups/stellaops/set-1"
    recorded = result["job"]
    assert recorded == journal.get(recorded["id"]) and recorded["status"] == "completed"
    assert (recorded["rollback_of"], recorded["previous_deployment_id"], recorded["deployment_id"]) == (upgraded["id"], "stellaops.v4", "stellaops.v5")
    assert recorded["details"]["target_revision"] == 2 and recorded["release_id"] == "stellaops.v2"


def test_workloads_that_do_not_run_the_target_images_fail_the_rollback_and_its_job(tmp_path: Path) -> None:
    journal = Journal(str(tmp_path))
    upgrade_job(journal, bookmark_revision=1)
    states = iter([history("deployed", "failed"), history("superseded", "failed", "deployed")])
    answers: dict[str, Any] = manifest_answers("")
    answers["history"] = lambda _args: (0, next(states), "")
    answers["rollback"] = (0, "Rollback was a success! Happy Helming!\n", "")
    stale = {name: ["registry.example/old:1"] for name in running_the_target()}
    module = StandInModule(rollback_params(journal_dir=str(tmp_path), job={"environment": "dev", "host": "helm-dev"}), answers)
    with pytest.raises(StellaOpsError, match=r"^After the rollback to revision 1 these workloads do not run its images: Deployment/") as err:
        ReleaseRollback(module, live_images=lambda *_args: stale).run()
    assert err.value.details["job"]["status"] == "failed"
    assert journal.jobs()[-1]["status"] == "failed" and "do not run its images" in journal.jobs()[-1]["message"]


# --------------------------------------------------------------------------- helm_history_info


def test_history_info_of_an_unknown_release() -> None:
    module = StandInModule({"must_exist": False, "revision": None, "platform_release": True}, {"history": (1, "", "Error: release: not found\n")})
    result = HistoryInfo(module).run()
    assert result["exists"] is False and result["last_deployed"] is None and result["changed"] is False
    assert result["platform_release"] is None  # nothing deployed: nothing asked of its values


def test_history_info_names_the_stuck_revision_and_the_images_of_a_revision() -> None:
    answers = manifest_answers(history("deployed", "pending-upgrade"))
    values = '{"global": {"release": {"version": "2025.09.2", "channel": "stable"}}, "credentials": {"PGPASSWORD": "s3cret"}}'
    module = StandInModule({"must_exist": True, "revision": 1, "platform_release": True}, {**answers, "get values": (0, values, "")})
    result = HistoryInfo(module).run()
    assert result["pending"]["revision"] == 2 and "pending-upgrade at revision 2" in result["pending_message"]
    # the platform release of the bookmark (revision 1), and nothing else of its values
    assert result["platform_release"] == {"version": "2025.09.2", "channel": "stable", "release_id": "2025.09.2-stable"}
    assert ["get", "values", "stellaops", "--revision", "1"] == next(c for c in module.calls if c[1:3] == ["get", "values"])[1:6]
    assert "s3cret" not in json.dumps(result)
    assert result["last_deployed"]["revision"] == 1
    assert result["images"]["Deployment/stellaops-signer"][0].startswith("registry.stella-ops.org/stellaops/signer@sha256:")
