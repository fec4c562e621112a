# SPDX-License-Identifier: GPL-3.0-or-later
"""ComposeTransaction: one deployment as one transaction - lock, job, deploy, verify, smoke, restore.

The engine is test_compose_deploy's ``FakeDocker`` (Compose's config hash imitated per service);
the lock, the journal and the kept deployments are the real files under tmp_path, and command health
checks and smoke tests run real commands. The real engine, Compose and SSH hosts are covered by the
integration tests (tests/integration/test_compose_fleet*.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deploy import ComposeDeployer
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deployments import DeploymentStore
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import ComposeProject
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.transaction import ComposeTransaction
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.journal import Journal
from test_compose_deploy import IMAGES, LOCK, RELEASE_ID, SETTINGS, FakeDocker, make_params, running, snapshot

OLD_ID = "2025.09.0-stable"
OLD_RELEASE = {"release_id": OLD_ID, "version": "2025.09.0", "channel": "stable"}
OLD_LOCK = LOCK.replace(RELEASE_ID, OLD_ID)


def transaction(project: Path, docker: FakeDocker, *, check_mode: bool = False, **over: Any) -> ComposeTransaction:
    params = make_params(project, run_id="run-1", environment="prod", **over)
    runner = LocalModule().run_command
    return ComposeTransaction(params, docker, check_mode=check_mode, run_command=runner, timeout_bin=shutil.which("timeout"))  # type: ignore[arg-type]


def upgrade(project: Path, docker: FakeDocker, **over: Any) -> dict[str, Any]:
    return transaction(project, docker, **over).run()


def statuses(project: Path, job: dict[str, Any]) -> list[str]:
    return [step["status"] for step in Journal(str(project / "journal")).get(job["id"])["history"]]


def runs(project: Path, docker: FakeDocker, deployment_id: str) -> bool:
    """Whether the fake engine runs exactly the config hashes recorded for a kept deployment."""
    recorded = DeploymentStore(str(project)).meta(deployment_id)["config_hashes"]
    return {c.service: c.config_hash for c in docker.containers} == recorded


def lock_file(project: Path) -> Path:
    return project / "deploy.lock"


class FailingUp(FakeDocker):
    """`up` brings the containers up on another configuration, so verification fails, while ``fail_up`` is set."""

    fail_up = True

    def compose(self, project: ComposeProject, args: list[str], *, what: str, check: bool = True, timeout: Optional[float] = None) -> tuple[int, str, str]:
        result = super().compose(project, args, what=what, check=check, timeout=timeout)
        if args[0] == "up" and self.fail_up:
            self.containers = running({name: "0" * 64 for name in IMAGES})
            self.fail_up = False  # the next `up` (the restore) works
        return result


class FailingPull(FakeDocker):
    def compose(self, project: ComposeProject, args: list[str], *, what: str, check: bool = True, timeout: Optional[float] = None) -> tuple[int, str, str]:
        if args[0] == "pull":
            raise StellaOpsError("docker compose pull failed (exit 1): manifest unknown.")
        return super().compose(project, args, what=what, check=check, timeout=timeout)


def test_a_transaction_locks_journals_deploys_and_releases(tmp_path: Path) -> None:
    project = tmp_path / "project"
    checks = [{"type": "command", "name": "version", "command": ["test", "{release_version}", "=", "2025.10.0"]}]
    smoke = [{"type": "command", "name": "smoke", "command": ["true"]}]
    docker = FakeDocker([])
    result = upgrade(project, docker, health_checks=checks, smoke_tests=smoke, job_details={"evidence_root": "ab" * 32})
    job = result["job"]
    assert result["outcome"] == "deployed" and result["changed"] is True
    assert result["msg"] == f"{RELEASE_ID}+1 runs on stellaops (prod), verified and health checks passed."
    assert statuses(project, job) == ["pending", "preparing", "running", "completing", "completed"] and job["status"] == "completed"
    assert (job["release_id"], job["deployment_id"], job["host"], job["environment"]) == (RELEASE_ID, f"{RELEASE_ID}+1", "fleet-1", "prod")
    assert job["details"] == {"evidence_root": "ab" * 32} and job["digests"] == IMAGES
    assert [h["name"] for h in result["health"]] == ["version"] and [s["passed"] for s in result["smoke"]] == [True]
    assert not lock_file(project).exists()

    again = upgrade(project, docker)
    assert (again["outcome"], again["changed"], "job" in again) == ("unchanged", False, False)
    assert len(Journal(str(project / "journal")).jobs()) == 1


def test_another_runs_lock_refuses_before_anything_changes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    holder = {"owner": "alice", "controller": "ctl/boot", "pid": 4242, "run_id": "run-0", "since": "2026-12-06T10:00:00Z"}
    holder.update(release_id=RELEASE_ID, environment="prod")
    lock_file(project).write_text(json.dumps(holder))
    before = snapshot(project)
    for check_mode in (True, False):
        with pytest.raises(StellaOpsError, match=r"^environment prod is locked by alice, run run-0 ") as caught:
            transaction(project, FakeDocker([]), check_mode=check_mode).run()
        assert caught.value.details["lock"]["run_id"] == "run-0" and caught.value.details["outcome"] == "untouched"
    assert snapshot(project) == before


def test_check_mode_tries_the_lock_and_writes_nothing(tmp_path: Path) -> None:
    project = tmp_path / "project"
    result = transaction(project, FakeDocker([]), check_mode=True).run()
    assert result["outcome"] == "deployed" and result["plan"]["create"] == ["authority", "signer"] and "job" not in result
    assert snapshot(project) == {}


def test_a_failed_verification_restores_the_bookmark_and_journals_it(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FailingUp([])
    docker.fail_up = False
    upgrade(project, docker, lock=OLD_LOCK, release=OLD_RELEASE)
    docker.fail_up = True
    with pytest.raises(StellaOpsError) as caught:
        upgrade(project, docker)
    message = str(caught.value)
    assert message.startswith("Project stellaops does not run its deployment: authority: config_mismatch"), message
    # the restore brings the bookmark up again (config hashes as recorded): the fake engine then runs them
    assert message.endswith(f"Rolled back: {OLD_ID}+1 runs again, its config hashes and digests verified."), message
    assert caught.value.details["outcome"] == "rolled back"
    jobs = Journal(str(project / "journal")).jobs()
    assert [j["status"] for j in jobs] == ["completed", "rolled_back"]
    assert statuses(project, jobs[-1])[-2:] == ["rolling_back", "rolled_back"]
    assert runs(project, docker, f"{OLD_ID}+1")
    assert not lock_file(project).exists()


def test_a_failed_first_release_is_removed_when_nothing_ran_before(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FailingUp([])
    with pytest.raises(StellaOpsError, match=r"Rolled back: nothing ran before, the failed release was removed\.$"):
        upgrade(project, docker)
    assert docker.containers == [] and docker.actions()[-1] == "down"


def test_on_failure_leave_keeps_the_failed_release_and_says_so(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FailingUp([])
    with pytest.raises(StellaOpsError, match=rf"Automatic rollback is off \(on_failure=leave\): {RELEASE_ID}\+1 is left in place\.$") as caught:
        upgrade(project, docker, on_failure="leave")
    assert caught.value.details["outcome"] == "left"
    (job,) = Journal(str(project / "journal")).jobs()
    assert job["status"] == "failed" and "config_mismatch" in job["message"]
    assert docker.actions() == ["pull", "up"]


def test_a_failed_pull_touches_nothing(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FailingPull([])
    upgrade(project, docker, lock=OLD_LOCK, release=OLD_RELEASE, pull=False)
    with pytest.raises(StellaOpsError, match=rf"manifest unknown\. No running container was touched; {OLD_ID}\+1 still runs\.$") as caught:
        upgrade(project, docker)
    assert caught.value.details["outcome"] == "untouched"
    assert [j["status"] for j in Journal(str(project / "journal")).jobs()] == ["completed", "failed"]
    assert not lock_file(project).exists()


def test_a_failed_smoke_test_rolls_back(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    upgrade(project, docker, lock=OLD_LOCK, release=OLD_RELEASE)
    failing = transaction(project, docker, smoke_tests=[{"type": "command", "name": "broken", "command": ["false"]}])
    with pytest.raises(StellaOpsError, match=r"^1 of 1 smoke tests failed: broken: .*Rolled back: ") as caught:
        failing.run()
    assert caught.value.details["outcome"] == "rolled back" and runs(project, docker, f"{OLD_ID}+1")
    # the run report's timeline: each phase with its own status, in order, each ending before the next starts
    phases = failing.result["phases"]
    assert [(entry["phase"], entry["status"]) for entry in phases] == [("deploy", "ok"), ("smoke", "failed"), ("rollback", "ok")]
    assert all(a["start"] <= a["end"] <= b["start"] for a, b in zip(phases, phases[1:], strict=False))


def test_a_rollback_that_fails_too_says_the_host_needs_attention(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    upgrade(project, docker, lock=OLD_LOCK, release=OLD_RELEASE)
    checks = [{"type": "command", "name": "never", "command": ["false"]}]
    with pytest.raises(StellaOpsError, match=rf"(?s)The rollback to {OLD_ID}\+1 failed too: .*The host needs attention\.$") as caught:
        upgrade(project, docker, health_checks=checks, health_retries=1)
    assert caught.value.details["outcome"] == "failed"
    assert Journal(str(project / "journal")).jobs()[-1]["status"] == "failed"
    assert not lock_file(project).exists()


def test_a_host_that_changed_since_the_plan_is_refused(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    upgrade(project, docker, lock=OLD_LOCK, release=OLD_RELEASE)
    planned = transaction(project, docker, check_mode=True).run()
    assert transaction(project, docker, check_mode=True).run()["plan_id"] == planned["plan_id"]
    docker.containers = docker.containers[:1]  # a container removed by hand after the plan
    docker.calls.clear()
    before = snapshot(project)
    with pytest.raises(StellaOpsError, match=r"^stellaops changed on this host since the plan of this run .*nothing was changed: plan again\.$"):
        upgrade(project, docker, expected_plan=planned["plan_id"])
    assert snapshot(project) == before and docker.actions() == []


def test_target_previous_returns_to_the_deployment_before_and_records_what_it_undoes(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    nothing = upgrade(project, docker, target="previous", lock=None, release=None)
    assert (nothing["outcome"], nothing["changed"]) == ("nothing to do", False)
    assert nothing["msg"] == "Nothing to roll back: the journal of prod has no completed deployment before the running one."
    upgrade(project, docker, lock=OLD_LOCK, release=OLD_RELEASE)
    upgraded = upgrade(project, docker, settings={**SETTINGS, "SIGNER_LOG_LEVEL": "debug"})
    back = upgrade(project, docker, target="previous", lock=None, release=None)
    assert back["deployment"]["deployment_id"] == f"{OLD_ID}+1" and back["outcome"] == "deployed"
    assert back["job"]["rollback_of"] == upgraded["job"]["id"] and back["job"]["previous_deployment_id"] == f"{RELEASE_ID}+1"
    assert runs(project, docker, f"{OLD_ID}+1")
    # a release id is its newest kept deployment; newest is the one created last
    assert upgrade(project, docker, target=RELEASE_ID, lock=None, release=None)["deployment"]["deployment_id"] == f"{RELEASE_ID}+1"
    assert transaction(project, docker, check_mode=True, target="newest", lock=None, release=None).run()["deployment"]["deployment_id"] == f"{RELEASE_ID}+1"
    with pytest.raises(StellaOpsError, match=r"^No kept deployment of release 2024\.01\.0-stable under .*; nothing was changed\.$"):
        upgrade(project, docker, target="2024.01.0-stable", lock=None, release=None)


def test_bad_smoke_tests_fail_before_the_lock(tmp_path: Path) -> None:
    project = tmp_path / "project"
    with pytest.raises(StellaOpsError, match=r"^smoke test #1 \(unnamed\): field type must be one of http, command"):
        upgrade(project, FakeDocker([]), smoke_tests=[{"type": "ftp"}])
    assert snapshot(project) == {}


def test_a_transaction_needs_an_environment(tmp_path: Path) -> None:
    params = make_params(tmp_path, run_id="run-1", environment=None)
    with pytest.raises(StellaOpsError, match="set environment too"):
        ComposeTransaction(params, FakeDocker([]), check_mode=False, run_command=LocalModule().run_command, timeout_bin=None)  # type: ignore[arg-type]
    assert ComposeDeployer  # the plain deployer stays usable without a run (test_compose_deploy)
    assert DeploymentStore(str(tmp_path)).ids() == []


def test_stopped_keeps_the_containers_and_present_on_current_brings_them_back(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    upgrade(project, docker)
    planned = transaction(project, docker, check_mode=True, state="stopped", target="current", lock=None, release=None).run()
    assert (planned["changed"], planned["stop"], docker.actions()) == (True, ["authority", "signer"], ["pull", "up"])
    stopped = upgrade(project, docker, state="stopped", target="current", lock=None, release=None)
    assert stopped["msg"] == "stellaops (prod) is stopped." and "job" not in stopped
    assert {c.state for c in docker.containers} == {"exited"} and len(docker.containers) == 2
    assert upgrade(project, docker, state="stopped", target="current", lock=None, release=None)["changed"] is False
    started = upgrade(project, docker, target="current", lock=None, release=None)
    assert started["plan"]["start"] == ["authority", "signer"] and started["verified"] is True
    assert {c.state for c in docker.containers} == {"running"}
    assert len(Journal(str(project / "journal")).jobs()) == 2  # the upgrade, and the start: containers changed


def test_target_current_without_a_current_deployment_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match=r"^No current deployment under .*; nothing was changed\.$"):
        upgrade(tmp_path / "project", FakeDocker([]), state="stopped", target="current", lock=None, release=None)
