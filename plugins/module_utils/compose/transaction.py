# SPDX-License-Identifier: GPL-3.0-or-later
"""One deployment of a compose host as one transaction, in one process on the host.

With a ``run_id``, ``compose_deploy`` runs ``ComposeTransaction``: it takes the environment lock,
plans with Compose, opens the journal job, brings the deployment up, verifies it, runs the health
checks and the smoke tests, and closes the job; when a step fails it returns the host to its
bookmark itself (``on_failure=restore``) or leaves the failed deployment in place (``leave``),
journals what happened and releases the lock. The outcome is one word and one sentence.

Killed at any point, the lock stays (the next run finds it stale) and the job stays unfinished (the
next run reports it): the same guarantees as when the steps ran as separate tasks.

Check mode tries the lock (a lock held by another run fails the plan) and plans; nothing is written.
"""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Optional

from ..core.errors import StellaOpsError
from ..jobs.deploy_lock import DeployLock
from ..jobs.journal import JobSpec, format_time, utc_now
from ..probes.health import command_runner
from ..probes.smoke import normalize, run_smoke_tests, summarize
from .deploy import ComposeDeployer, NothingToDo
from .docker_cli import DockerRunner

ENVIRONMENT_LOCK_FILE = "deploy.lock"
JOURNAL_DIR = "journal"
# What a transaction returns as ``outcome``.
DEPLOYED, UNCHANGED, NOTHING_TO_DO = "deployed", "unchanged", "nothing to do"
UNTOUCHED, ROLLED_BACK, LEFT, FAILED = "untouched", "rolled back", "left", "failed"


class ComposeTransaction:
    """compose_deploy with a run: lock, plan, job, deploy, verify, smoke, restore on failure, release."""

    def __init__(
        self,
        params: Mapping[str, Any],
        docker: DockerRunner,
        *,
        check_mode: bool,
        run_command: Callable[..., Any],
        timeout_bin: Optional[str],
        deployer_factory: Callable[..., ComposeDeployer] = ComposeDeployer,
    ) -> None:
        if not params["environment"]:
            raise StellaOpsError("run_id makes compose_deploy one transaction of an environment: set environment too.")
        self.params = {**params, "journal_dir": params["journal_dir"] or os.path.join(params["project_dir"], JOURNAL_DIR)}
        self.check_mode = check_mode
        self._new_deployer = lambda **over: deployer_factory(
            {**self.params, **over}, docker, check_mode=check_mode, run_command=run_command, timeout_bin=timeout_bin
        )
        self.deployer = self._new_deployer()
        # One job, moved by the transaction (start, end, rollback) and by the deployer's steps.
        self.job = self.deployer.job
        self.lock = DeployLock(os.path.join(params["project_dir"], ENVIRONMENT_LOCK_FILE), params["environment"])
        self.run_command = run_command
        self.timeout_bin = timeout_bin
        # What the run report shows on the host's timeline: each step with its start and end.
        self.phases: list[dict[str, str]] = []

    @property
    def result(self) -> dict[str, Any]:
        return {**self.deployer.result, **self.job.returned(), **({"phases": self.phases} if self.phases else {})}

    @contextmanager
    def _phase(self, name: str) -> Iterator[None]:
        entry = {"phase": name, "start": format_time(utc_now()), "end": "", "status": "failed"}
        self.phases.append(entry)
        try:
            yield
            entry["status"] = "ok"
        finally:
            entry["end"] = format_time(utc_now())

    # ------------------------------------------------------------------ lock

    def _take_lock(self) -> bool:
        """Take the environment lock (check mode: try it); False when this run held it already."""
        p = self.params
        try:
            outcome = self.lock.acquire(
                p["run_id"],
                owner=p["owner"],
                controller=p["controller"],
                pid=p["pid"],
                release_id=(p["release"] or {}).get("release_id") or p["target"],
                break_stale=p["break_stale"],
                stale_run_id=p["stale_run_id"],
                dry_run=self.check_mode,
                clear_hint="clear it with stellaops.deploy.deploy_lock (state=absent, force=true)",
            )
        except StellaOpsError as error:
            raise StellaOpsError(str(error), lock=error.details.get("lock"), stale=error.details.get("stale"), outcome=UNTOUCHED) from None
        return outcome.changed and not self.check_mode

    # ------------------------------------------------------------------ run

    def run(self) -> dict[str, Any]:
        p = self.params
        for index, spec in enumerate(p["smoke_tests"] or []):
            normalize(spec, index)  # bad input fails here, before the lock or any change
        took_lock = self._take_lock()
        try:
            return self._run()
        except StellaOpsError as error:
            if "outcome" not in error.details:  # a step outside the deploy (the journal, the plan) failed
                error.details["outcome"] = FAILED if self.deployer.result.get("touched") else UNTOUCHED
            raise
        finally:
            if took_lock:
                self.lock.release(p["run_id"])

    def _run(self) -> dict[str, Any]:
        p = self.params
        try:
            planned = self.deployer.plan()
        except NothingToDo as nothing:
            return {**self.result, "changed": False, "outcome": NOTHING_TO_DO, "msg": str(nothing)}
        if p["expected_plan"] and planned["plan_id"] != p["expected_plan"]:
            raise StellaOpsError(
                f"{p['project_name']} changed on this host since the plan of this run (another run or a hand-made change); "
                "nothing was changed: plan again.",
                outcome=UNTOUCHED,
            )
        if self.check_mode:
            return {**self.result, "outcome": DEPLOYED if planned["changed"] else UNCHANGED}
        # A job records a change of deployment: not a stop (the deployment stays, to be started again).
        changes = planned["plan"]["changes"] if p["state"] == "present" else planned["changed"] and p["state"] == "absent"
        if changes:
            self.job.start(self._job_spec(planned))
        try:
            # A return to a kept deployment (rollback, fleet rollback, restart after a restore) is a rollback on the timeline.
            with self._phase("rollback" if p["target"] else "deploy"):
                self.deployer.apply()
            self._smoke()
        except StellaOpsError as error:
            self._fail(error)
        self.job.step("completed")
        deployment = self.result["deployment"]["deployment_id"]
        return {
            **self.result,
            "outcome": DEPLOYED if self.result["changed"] else UNCHANGED,
            "msg": f"{deployment} runs on {self._where()}, verified{self._checked()}." if p["state"] == "present" else f"{self._where()} is {p['state']}.",
        }

    def _job_spec(self, planned: Mapping[str, Any]) -> JobSpec:
        p = self.params
        deployment = planned["deployment"]
        bookmark = planned.get("bookmark") or {}
        rollback_of = None
        if p["target"] and bookmark.get("deployment_id") and self.job.journal:
            # A kept deployment brought back undoes the job that brought up what runs now.
            undone = [job for job in self.job.journal.jobs(p["environment"]) if job.get("deployment_id") == bookmark["deployment_id"]]
            rollback_of = undone[-1]["id"] if undone else None
        return JobSpec(
            release_id=str(deployment.get("release_id") or str(deployment["deployment_id"]).rsplit("+", 1)[0]),
            host=p["host"] or socket.gethostname(),
            environment=p["environment"],
            release=str(deployment.get("release") or ""),
            channel=str(deployment.get("channel") or ""),
            previous_release_id=(planned.get("before") or {}).get("release_id"),
            digests=planned.get("images") or {},
            rollback_of=rollback_of,
            message=p["job_message"] or None,
            deployment_id=deployment["deployment_id"],
            previous_deployment_id=bookmark.get("deployment_id"),
            details=p["job_details"] or None,
        )

    def _smoke(self) -> None:
        tests = self.params["smoke_tests"] or []
        if not tests or not self.deployer.result.get("touched"):
            return
        with self._phase("smoke"):
            results = run_smoke_tests(tests, command_runner(self.run_command, self.timeout_bin))
            self.deployer.result["smoke"] = results
            if not all(result["passed"] for result in results):
                raise StellaOpsError(summarize(results))

    # ------------------------------------------------------------------ failure

    def _fail(self, error: StellaOpsError) -> None:
        """Return the host to its bookmark (or leave it), journal it, and raise one sentence of what happened."""
        p = self.params
        failure = str(error).rstrip()
        if not failure.endswith((".", "!", "?")):
            failure += "."  # each part of the message is a sentence of its own
        before = self.deployer.result.get("before") or {}
        bookmark = (self.deployer.result.get("bookmark") or {}).get("deployment_id")
        if not self.deployer.result.get("touched"):
            outcome, said = UNTOUCHED, f"No running container was touched; {bookmark or 'nothing'} still runs."
        elif p["on_failure"] == "leave":
            outcome, said = LEFT, f"Automatic rollback is off (on_failure=leave): {self.result['deployment']['deployment_id']} is left in place."
        elif before.get("services") and not bookmark:
            outcome = LEFT
            said = (
                "The containers that ran before matched no kept deployment (mixed or missing release labels), so there is "
                f"no bookmark to return to: {self.result['deployment']['deployment_id']} is left in place."
            )
        else:
            self.job.step("rolling_back", failure)
            try:
                with self._phase("rollback"):
                    self._restore(bookmark)
            except StellaOpsError as again:
                self.job.step("failed", f"{failure} Rollback failed: {again}")
                raise StellaOpsError(
                    f"{failure} The rollback to {bookmark or 'nothing'} failed too: {str(again).rstrip()} The host needs attention.",
                    outcome=FAILED,
                ) from None
            self.job.step("rolled_back")
            restored = (
                f"{bookmark} runs again, its config hashes and digests verified{self._checked()}"
                if bookmark
                else "nothing ran before, the failed release was removed"
            )
            raise StellaOpsError(f"{failure} Rolled back: {restored}.", outcome=ROLLED_BACK) from None
        self.job.step("failed", failure)
        raise StellaOpsError(f"{failure} {said}", outcome=outcome) from None

    def _restore(self, bookmark: Optional[str]) -> None:
        """Bring the bookmark back (or remove the failed release when nothing ran before), proven like a deploy."""
        deployment = self.result["deployment"]["deployment_id"]
        restorer = self._new_deployer(
            target=bookmark or deployment, state="present" if bookmark else "absent", lock=None, release=None, images=None, pull=False
        )
        restorer.plan()
        restorer.apply()
        self.deployer.result["restored"] = {key: restorer.result.get(key) for key in ("deployment", "after", "verified", "health") if key in restorer.result}

    def _where(self) -> str:
        return f"{self.params['project_name']} ({self.params['environment']})"

    def _checked(self) -> str:
        return " and health checks passed" if self.params["health_checks"] else ""
