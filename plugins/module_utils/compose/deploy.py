# SPDX-License-Identifier: GPL-3.0-or-later
"""Deploy a compose project in one process: plan, pull, up, verify, health, journal.

``ComposeDeployer`` is the body of the ``compose_deploy`` module (it runs on the compose host, with
the standard library only). The plan comes from Compose: ``docker compose config --hash`` of the
deployment against the config-hash label of each running container. Check mode computes the
same plan from the same files, staged in a temporary directory, and stops there.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Optional

from ..core.errors import StellaOpsError
from ..core.redact import one_line
from ..jobs.journal import JournalJob
from ..probes.health import command_runner, run_checks, summarize_failures
from .deployments import ENV_FILE, LOCK_FILE, DeploymentStore, check_kept_lock, render_env, sha256_text
from .docker_cli import ComposeProject, DockerRunner, config_hashes
from .state import RunningService, describe, plan_changes, running_hashes, summarize_problems, verify

VERSION_PLACEHOLDER = "{release_version}"


class NothingToDo(Exception):
    """A target that names nothing to bring back (target=previous with no earlier completed deployment)."""


@dataclass(frozen=True)
class _Pending:
    """What plan() found and apply() brings up."""

    deployment_id: str
    lock: str
    env: str
    record: dict[str, Any]
    new: bool
    bookmark_id: Optional[str]
    containers: list[RunningService]


def plan_id(deployment_id: str, hashes: Mapping[str, str], containers: list[RunningService]) -> str:
    """One digest of a plan: the deployment, its config hashes and the containers it was planned against.

    The real run of a transaction recomputes it and refuses when it differs: the host changed since the plan.
    """
    running = sorted((c.service, c.container_id, c.config_hash or "", c.image_id) for c in containers)
    text = json.dumps({"deployment": deployment_id, "hashes": dict(sorted(hashes.items())), "running": running}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def fill_version(value: Any, version: str) -> Any:
    """Replace ``{release_version}`` in every string of a health check definition."""
    if isinstance(value, str):
        return value.replace(VERSION_PLACEHOLDER, version)
    if isinstance(value, list):
        return [fill_version(item, version) for item in value]
    if isinstance(value, dict):
        return {key: fill_version(item, version) for key, item in value.items()}
    return value


class ComposeDeployer:
    def __init__(
        self, params: Mapping[str, Any], docker: DockerRunner, *, check_mode: bool, run_command: Callable[..., Any], timeout_bin: Optional[str]
    ) -> None:
        self.params = params
        self.docker = docker
        self.check_mode = check_mode
        self.store = DeploymentStore(params["project_dir"])
        self.run_command = run_command
        self.timeout_bin = timeout_bin
        # The journal job that the deployment's steps move along (started by the transaction that owns it).
        self.job = JournalJob(params["journal_dir"])
        self.result: dict[str, Any] = {"changed": False, "touched": False}
        self._pending: Optional[_Pending] = None
        self._before_content: tuple[str, str] = ("", "")
        self._before_secret_keys: set[str] = set()
        self._after_content: tuple[str, str] = ("", "")

    # ------------------------------------------------------------------ the target deployment

    def _target(self, bookmark_id: Optional[str]) -> tuple[str, str, str, dict[str, Any], bool]:
        """(deployment id, lock, env file, record, whether it is new) of what this run brings up."""
        p = self.params
        if p["target"]:
            deployment_id = self.resolve(p["target"], bookmark_id)
            lock, env = self.store.content(deployment_id)
            meta = self.store.meta(deployment_id)
            check_kept_lock(lock, meta.get("lock_sha256"), os.path.join(self.store.path(deployment_id), LOCK_FILE))
            return deployment_id, lock, env, meta, False
        release = p["release"] or {}
        for key in ("release_id", "version", "channel"):
            if not isinstance(release.get(key), str) or not release[key]:
                raise StellaOpsError(f"release.{key} must be a non-empty string (the release the lock pins).")
        env = render_env(p["settings"] or {}, p["secrets"] or {})
        found = self.store.find(release["release_id"], p["lock"], env)
        record = {
            "release_id": release["release_id"],
            "release": release["version"],
            "channel": release["channel"],
            # The evidence schema the release reads its evidence in: a later upgrade's baseline is taken in it.
            "evidence_schema": release.get("evidence_schema") or 1,
            "images": dict(sorted((p["images"] or {}).items())),
            # Names only: what a diff against this deployment must never show.
            "secret_keys": sorted(p["secrets"] or {}),
        }
        if found:
            return found, p["lock"], env, {**self.store.meta(found), **record}, False
        return self.store.next_id(release["release_id"]), p["lock"], env, record, True

    def resolve(self, target: str, bookmark_id: Optional[str]) -> str:
        """The kept deployment that O(target) names; NothingToDo for V(previous) when nothing completed before."""
        kept = self.store.ids()
        where = f"under {self.store.root}"
        if target == "previous":
            if not (self.job.journal and self.params["environment"]):
                raise StellaOpsError("target=previous reads the journal: set environment (and journal_dir).")
            job = self.job.journal.last_completed(self.params["environment"], exclude_deployment_id=bookmark_id)
            if not job or not job.get("deployment_id"):
                raise NothingToDo(
                    f"Nothing to roll back: the journal of {self.params['environment']} has no completed deployment "
                    f"before {bookmark_id or 'the running one'}."
                )
            chosen = str(job["deployment_id"])
        elif target == "current":
            chosen = self.store.current() or ""
            if not chosen:
                raise StellaOpsError(f"No current deployment under {self.params['project_dir']}; nothing was changed.")
        elif target == "newest":
            if not kept:
                raise StellaOpsError(f"No deployment is kept {where}; nothing was changed.")
            chosen = max(kept, key=self._created)
        elif "+" in target:
            chosen = target
        else:
            of_release = [deployment_id for deployment_id in kept if deployment_id.rsplit("+", 1)[0] == target]
            if not of_release:
                raise StellaOpsError(f"No kept deployment of release {one_line(target)} {where}; nothing was changed.")
            chosen = max(of_release, key=self._created)
        if chosen not in kept:
            raise StellaOpsError(f"Deployment {one_line(chosen)} is not kept {where}; nothing was changed.")
        return chosen

    def _created(self, deployment_id: str) -> str:
        try:
            return str(self.store.meta(deployment_id).get("created_at") or "")
        except StellaOpsError:
            return ""

    def _project(self, directory: str) -> ComposeProject:
        return ComposeProject.of_files(self.params["project_name"], self.params["project_dir"], directory, LOCK_FILE, ENV_FILE)

    def _hashes_of(self, lock: str, env: str, kept_dir: Optional[str]) -> dict[str, str]:
        """Compose's config hashes of a deployment (kept, or staged in a temporary directory)."""
        if kept_dir:
            return config_hashes(self.docker, self._project(kept_dir))
        staging = tempfile.mkdtemp(prefix="stellaops-plan-")
        try:
            for name, text in ((LOCK_FILE, lock), (ENV_FILE, env)):
                fd = os.open(os.path.join(staging, name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
            return config_hashes(self.docker, self._project(staging))
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # ------------------------------------------------------------------ steps

    def _unfinished(self) -> list[dict[str, Any]]:
        if not (self.job.journal and self.params["environment"]):
            return []
        jobs = self.job.journal.unfinished(self.params["environment"])
        own = self.job.job_id
        return [
            {key: job.get(key) for key in ("id", "status", "release_id", "deployment_id", "started_at", "host")}
            for job in jobs
            if job.get("id") != own
        ]

    def _health(self, version: str) -> None:
        checks = fill_version(self.params["health_checks"] or [], version)
        if not checks:
            return
        healthy, results = run_checks(
            checks,
            self.params["health_retries"],
            self.params["health_interval"],
            run_command=command_runner(self.run_command, self.timeout_bin),
        )
        self.result["health"] = results
        if not healthy:
            raise StellaOpsError(summarize_failures(results))

    def _up(self, project: ComposeProject, plan: Mapping[str, list[str]], images: Mapping[str, str]) -> None:
        self.job.step("preparing")
        starting = plan["create"] + plan["recreate"]
        # A pull of what is missing changes nothing when the engine has every image already (a rollback,
        # a host that pulled ahead): one inspect instead of starting Compose once more.
        if self.params["pull"] and starting and not self.docker.has_images([images.get(service, "") for service in starting]):
            self.docker.compose(project, ["pull", "--quiet", "--policy", "missing"], what="docker compose pull")
        self.job.step("running")
        self.result["touched"] = True
        self.docker.compose(
            project,
            ["up", "--detach", "--wait", "--wait-timeout", str(self.params["wait_timeout"]), "--remove-orphans", "--pull", "never", "--no-build"],
            what="docker compose up",
            # compose's own wait is the bound that matters; the runner's must not cut it short
            timeout=max(self.docker.timeout, self.params["wait_timeout"] + self.docker.query_timeout),
        )

    def _down(self, project: ComposeProject) -> None:
        self.result["touched"] = True
        self.docker.compose(project, ["down", "--remove-orphans", "--timeout", "30"], what="docker compose down")

    # ------------------------------------------------------------------ run

    def run(self) -> dict[str, Any]:
        """Plan, and outside check mode bring the plan up."""
        self.plan()
        return self.result if self.check_mode else self.apply()

    def plan(self) -> dict[str, Any]:
        """What the run would change, from Compose's config hashes against the running containers; changes nothing."""
        p = self.params
        self.result["engine_version"] = self.docker.require_engine()
        containers = self.docker.project_containers(p["project_name"])
        running = describe(containers)
        bookmark_id = self.store.bookmark(running_hashes(containers))
        bookmark = None
        if bookmark_id:
            meta = self.store.meta(bookmark_id)
            bookmark = {
                "deployment_id": bookmark_id,
                **{k: meta.get(k) for k in ("release_id", "release", "channel", "config_hashes", "images")},
                # a deployment kept before evidence schemas reads schema 1
                "evidence_schema": meta.get("evidence_schema") or 1,
            }
        self.result.update(before=running, bookmark=bookmark, unfinished_jobs=self._unfinished())

        deployment_id, lock, env, record, new = self._target(bookmark_id)
        self._after_content = (lock, env)
        if bookmark_id:
            self._before_content = self.store.content(bookmark_id)
            self._before_secret_keys = set(self.store.meta(bookmark_id).get("secret_keys") or [])
        kept_dir = None if new else self.store.path(deployment_id)
        if p["state"] == "stopped":
            running_now = sorted({c.service for c in containers if c.state == "running"})
            self.result.update(changed=bool(running_now), stop=running_now, deployment={"deployment_id": deployment_id})
        elif p["state"] == "absent":
            self.result.update(changed=bool(containers), deployment={"deployment_id": deployment_id})
            if kept_dir is None and containers:
                raise StellaOpsError(f"state=absent needs a kept deployment; {deployment_id} is not kept under {self.store.root}.")
        else:
            hashes = self._hashes_of(lock, env, kept_dir)
            plan = plan_changes(containers, hashes)
            self.result.update(
                plan=plan.as_dict(),
                deployment={
                    "deployment_id": deployment_id,
                    "new": new,
                    **{k: record.get(k) for k in ("release_id", "release", "channel")},
                    # the evidence schema the deployment's release reads (a deployment kept before evidence schemas: 1)
                    "evidence_schema": record.get("evidence_schema") or 1,
                },
                config_hashes=hashes,
                images=record.get("images", {}),
                changed=bool(plan.changes) or new or self.store.current() != deployment_id,
            )
            record = {**record, "config_hashes": record.get("config_hashes") or hashes}
        self.result["plan_id"] = plan_id(deployment_id, self.result.get("config_hashes") or {}, containers)
        self._pending = _Pending(deployment_id, lock, env, record, new, bookmark_id, containers)
        return self.result

    def apply(self) -> dict[str, Any]:
        """Bring up what plan() found, verify it and run the health checks."""
        pending = self._pending
        if pending is None:
            raise StellaOpsError("compose deployment: apply() needs plan() first.")
        if self.params["state"] == "absent":
            return self._absent(pending)
        if self.params["state"] == "stopped":
            return self._stop(pending)
        p = self.params
        record, deployment_id = pending.record, pending.deployment_id
        changes = self.result["plan"]["changes"]
        if pending.new:
            # A kept deployment is verified against the hashes recorded when it ran: one that Compose now
            # resolves differently (an edited file, another Compose version) would not restore what ran.
            record = {
                **record,
                "deployment_id": deployment_id,
                "compose_version": self.docker.require_compose(),
                "created_at": _now(),
                "lock_sha256": sha256_text(pending.lock),
            }
            self.store.write(deployment_id, pending.lock, pending.env, record)
        project = self._project(self.store.path(deployment_id))
        if changes:
            self._up(project, self.result["plan"], record.get("images") or {})
        after = self.docker.project_containers(p["project_name"])
        problems = verify(after, record["config_hashes"], record.get("images", {}))
        self.result.update(after=describe(after), problems=problems, verified=not problems)
        if problems:
            raise StellaOpsError(summarize_problems(p["project_name"], problems))
        self._health(str(record.get("release") or ""))
        if changes:
            self.job.step("completing")
        self.store.point_current(deployment_id)
        self.result["pruned"] = self.store.prune(p["keep"], (deployment_id, pending.bookmark_id))
        return self.result

    def _stop(self, pending: _Pending) -> dict[str, Any]:
        """Stop the project's containers, keeping them (a database restore runs while nothing writes)."""
        if not self.result["stop"]:
            return self.result
        self.result["touched"] = True
        self.docker.compose(self._project(self.store.path(pending.deployment_id)), ["stop", "--timeout", "30"], what="docker compose stop")
        still = sorted({c.service for c in self.docker.project_containers(self.params["project_name"]) if c.state == "running"})
        if still:
            raise StellaOpsError(f"Project {self.params['project_name']} still runs {', '.join(still)} after docker compose stop.")
        return self.result

    def _absent(self, pending: _Pending) -> dict[str, Any]:
        """Stop and remove the project's containers (used when nothing ran before a failed release)."""
        if not pending.containers:
            return self.result
        self.job.step("preparing")
        self.job.step("running")
        self._down(self._project(self.store.path(pending.deployment_id)))
        left = self.docker.project_containers(self.params["project_name"])
        if left:
            raise StellaOpsError(f"Project {self.params['project_name']} still has {len(left)} containers after docker compose down.")
        self.job.step("completing")
        return self.result

    def diff(self) -> list[dict[str, str]]:
        """The lock change and the settings change against the bookmark; only values of O(settings) are shown."""
        shown = set(self.params["settings"] or {}) - set(self.params["secrets"] or {}) - self._before_secret_keys

        def masked(env: str) -> str:
            # split at "\n" only, as render_env writes it: splitlines() would also split inside a value at
            # \x0b, \x0c, \x1c-\x1e, \x85, \u2028 or \u2029 and show what follows as a line of its own
            lines = [line for line in env.split("\n") if "=" in line and not line.startswith("#")]
            return "".join(f"{line.split('=', 1)[0]}=********\n" if line.split("=", 1)[0] not in shown else line + "\n" for line in lines)

        before_id = (self.result.get("bookmark") or {}).get("deployment_id") or "nothing"
        after_id = (self.result.get("deployment") or {}).get("deployment_id", "")
        return [
            {
                "before_header": f"{before_id}/{LOCK_FILE}",
                "after_header": f"{after_id}/{LOCK_FILE}",
                "before": self._before_content[0],
                "after": self._after_content[0],
            },
            {
                "before_header": f"{before_id}/{ENV_FILE}",
                "after_header": f"{after_id}/{ENV_FILE}",
                "before": masked(self._before_content[1]),
                "after": masked(self._after_content[1]),
            },
        ]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # noqa: UP017 - hosts may run Python < 3.11
