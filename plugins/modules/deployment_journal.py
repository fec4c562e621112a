#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deployment_journal
short_description: Record deployment jobs and read which release last completed
description:
  - Keeps a journal of deployment jobs in a directory on the target, one JSON file per job
    (C(jobs/<job_id>.json)), written atomically so that an interrupted run leaves a readable journal.
  - Each job records the release id, version, channel, host, environment, the release it replaces,
    its status, start and end times, the image digests it deployed and a history of its statuses.
  - Statuses follow the job state machine of the release orchestrator, V(pending), V(preparing), V(running),
    V(completing), V(completed), V(failed), V(rolling_back) and V(rolled_back).
  - Legal moves are pending to preparing, preparing to running, running to completing, completing to completed,
    preparing, running or completing to rolling_back, rolling_back to running or rolled_back,
    failed to rolling_back, and any unfinished status to failed. Any other move fails.
  - Every action also returns the last completed job and the unfinished jobs of the environment,
    which tells a new run what an interrupted one left behind and where a rollback goes.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - O(action=start) and O(action=transition) compute the job they would write and write nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - O(action=transition) to the status the job already has reports no change.
      - O(action=start) always records a new job.
options:
  path:
    description: Directory of the journal; created on the first O(action=start).
    type: path
    required: true
  action:
    description:
      - V(start) records a new job in status V(pending).
      - V(transition) moves the job O(job_id) to O(status).
      - V(query) only reads the journal.
    type: str
    choices: [start, transition, query]
    default: query
  environment:
    description:
      - Environment the job deploys to. Required for O(action=start).
      - For O(action=query) it selects the jobs, the last completed job and the unfinished jobs.
    type: str
  job_id:
    description: Job to move (O(action=transition)) or to return (O(action=query)).
    type: str
  status:
    description: New status of the job. Required for O(action=transition).
    type: str
    choices: [pending, preparing, running, completing, completed, failed, rolling_back, rolled_back]
  release_id:
    description:
      - Release id of the new job. Required for O(action=start).
      - For O(action=query), the release that RV(last_completed) must not be (the one being rolled back).
    type: str
  release:
    description: Release version of the new job, for example C(2025.10.0).
    type: str
    default: ""
  channel:
    description: Release channel of the new job.
    type: str
    default: ""
  host:
    description: Host the job deploys to (pass C(inventory_hostname)). Required for O(action=start).
    type: str
  previous_release_id:
    description: Release id that was running before this job (the rollback bookmark).
    type: str
  deployment_id:
    description:
      - Deployment (release and settings, C(<release_id>+<n>)) of the new job, as M(stellaops.deploy.compose_deploy) returns it.
      - For O(action=query), the deployment that RV(last_completed) must not be (the one being rolled back).
    type: str
  previous_deployment_id:
    description: Deployment that was running before this job (the rollback bookmark).
    type: str
  digests:
    description: Image digest per service deployed by the job; a transition may replace them.
    type: dict
  rollback_of:
    description: Id of the job this job rolls back; it must exist in the journal.
    type: str
  details:
    description:
      - What the deployment profile adds to the job, for example for Helm the namespace, chart version,
        revision, bookmark revision and the deploy repository's git SHA. A transition merges them into the job's.
    type: dict
  job_message:
    description: Free text stored with the job, for example what failed.
    type: str
"""

EXAMPLES = r"""
- name: Open a deployment job
  stellaops.deploy.deployment_journal:
    path: /var/lib/stellaops/journal
    action: start
    environment: production
    host: "{{ inventory_hostname }}"
    release_id: "{{ release.release_id }}"
    release: "{{ release.version }}"
    channel: stable
    previous_release_id: "{{ bookmark.release_id | default(omit) }}"
    digests: "{{ stellaops_lock.digests }}"
  register: stellaops_job

- name: Mark the job completed
  stellaops.deploy.deployment_journal:
    path: /var/lib/stellaops/journal
    action: transition
    job_id: "{{ stellaops_job.job.id }}"
    status: completed

- name: Find the release to roll back to
  stellaops.deploy.deployment_journal:
    path: /var/lib/stellaops/journal
    action: query
    environment: production
    release_id: "{{ current_release_id }}"
  register: stellaops_journal
"""

RETURN = r"""
job:
  description: The job started or moved (in check mode, the job that would be written), or O(job_id) for a query.
  returned: when action is start or transition, or query with job_id
  type: dict
  sample:
    id: 20251122T042000.123456Z-9f1c2a7b
    release_id: 2025.10.0-stable
    release: 2025.10.0
    channel: stable
    host: sandbox
    environment: production
    previous_release_id: 2025.09.0-stable
    status: completed
    started_at: "2025-11-22T04:20:00.123456Z"
    ended_at: "2025-11-22T04:21:10.000001Z"
    digests: {authority: "sha256:c670029c43b5b6cf9e6211522251385fa01a5deb0f206ccce6e3b639fb5899f6"}
    rollback_of: null
    message: ""
    history: [{status: pending, at: "2025-11-22T04:20:00.123456Z"}, {status: completed, at: "2025-11-22T04:21:10.000001Z"}]
last_completed:
  description: The job of the environment that completed last (other than O(release_id) for a query), or null.
  returned: when an environment is known
  type: dict
  sample: {id: 20251101T100000.000000Z-0a1b2c3d, release_id: 2025.09.0-stable, status: completed}
unfinished:
  description: Jobs of the environment left in a non-final status by an interrupted run, oldest first.
  returned: when an environment is known
  type: list
  elements: dict
  sample: [{id: 20251122T030000.000000Z-7e6d5c4b, release_id: 2025.10.0-stable, status: running}]
jobs:
  description: All jobs (of O(environment) when given), oldest first.
  returned: when action is query
  type: list
  elements: dict
  sample: [{id: 20251101T100000.000000Z-0a1b2c3d, release_id: 2025.09.0-stable, status: completed}]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.journal import STATUSES, JobSpec, Journal


class JournalManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.journal = Journal(self.params["path"])

    def _require(self, *names: str) -> None:
        missing = [name for name in names if not self.params.get(name)]
        if missing:
            raise StellaOpsError(f"deployment_journal action={self.params['action']} needs option(s) {', '.join(missing)}.")

    def _context(self, environment: str | None, exclude: str | None = None, exclude_deployment: str | None = None) -> dict[str, Any]:
        if not environment:
            return {}
        return {
            "last_completed": self.journal.last_completed(environment, exclude_release_id=exclude, exclude_deployment_id=exclude_deployment),
            "unfinished": self.journal.unfinished(environment),
        }

    def start(self) -> dict[str, Any]:
        self._require("environment", "release_id", "host")
        p = self.params
        context = self._context(p["environment"])
        spec = JobSpec(
            release_id=p["release_id"],
            host=p["host"],
            environment=p["environment"],
            release=p["release"],
            channel=p["channel"],
            previous_release_id=p["previous_release_id"],
            digests=p["digests"],
            rollback_of=p["rollback_of"],
            message=p["job_message"],
            deployment_id=p["deployment_id"],
            previous_deployment_id=p["previous_deployment_id"],
            details=p["details"],
        )
        job = self.journal.plan_start(spec)
        if not self.module.check_mode:
            self.journal.write(job)
        return {"changed": True, "job": job, **context}

    def transition(self) -> dict[str, Any]:
        self._require("job_id", "status")
        p = self.params
        job, changed = self.journal.plan_transition(
            p["job_id"], p["status"], message=p["job_message"], digests=p["digests"], details=p["details"]
        )
        if changed and not self.module.check_mode:
            self.journal.write(job)
        return {"changed": changed, "job": job, **self._context(job.get("environment"))}

    def query(self) -> dict[str, Any]:
        p = self.params
        result: dict[str, Any] = {"changed": False, "jobs": self.journal.jobs(p["environment"])}
        if p["job_id"]:
            result["job"] = self.journal.get(p["job_id"])
        result.update(self._context(p["environment"], exclude=p["release_id"], exclude_deployment=p["deployment_id"]))
        return result

    def run(self) -> dict[str, Any]:
        return {"start": self.start, "transition": self.transition, "query": self.query}[self.params["action"]]()


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "action": {"type": "str", "choices": ["start", "transition", "query"], "default": "query"},
            "environment": {"type": "str"},
            "job_id": {"type": "str"},
            "status": {"type": "str", "choices": list(STATUSES)},
            "release_id": {"type": "str"},
            "release": {"type": "str", "default": ""},
            "channel": {"type": "str", "default": ""},
            "host": {"type": "str"},
            "previous_release_id": {"type": "str"},
            "deployment_id": {"type": "str"},
            "previous_deployment_id": {"type": "str"},
            "digests": {"type": "dict"},
            "rollback_of": {"type": "str"},
            "job_message": {"type": "str"},
            "details": {"type": "dict"},
        },
        required_if=[
            ("action", "start", ("environment", "release_id", "host")),
            ("action", "transition", ("job_id", "status")),
        ],
        supports_check_mode=True,
    )
    try:
        result = JournalManager(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
