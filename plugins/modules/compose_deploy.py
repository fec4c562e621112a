#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_deploy
short_description: Deploy a release and its settings to a Docker Compose host in one step
version_added: 0.1.0
description:
  - Brings a deployment (a compose lock and the settings that fill its C(${VAR}) values) up on a
    compose host and proves it, in one process on the host - plan, pull of missing images,
    C(docker compose up --wait), verification of every container against Compose's config hash
    and the locked digest, health checks, journal transitions, C(current) link, pruning.
  - The plan is Compose's own - C(docker compose config --hash) of the deployment against the
    C(com.docker.compose.config-hash) label of each running container - so a change of image,
    environment, ports or any other setting counts, and check mode predicts exactly what a real
    run changes.
  - Each deployment is kept in C(<project_dir>/deployments/<release_id>+<n>/) with its lock, its env
    file (mode 0600) and a record of the config hashes it ran with. The same release with other
    settings is a deployment of its own. RV(bookmark) is the kept deployment that runs now
    (recorded config hashes equal the running ones); roll back by passing its id as O(deployment_id).
  - With O(run_id) the deployment is one transaction of the environment, in one process on the host
    - it takes the environment lock C(<project_dir>/deploy.lock), plans, opens a job in the journal,
    brings the deployment up, verifies it, runs the health checks and O(smoke_tests), and completes the job.
    When a step fails it returns the host to RV(bookmark) itself (O(on_failure=restore)) or leaves the
    failed deployment in place (O(on_failure=leave)), journals which, releases the lock and fails with
    one sentence that says what failed and what runs now. Killed at any point, the lock stays behind
    (the next run finds it stale) and the job stays unfinished (the next run reports it).
  - The host needs only Python's standard library, the docker CLI and the Compose v2 plugin. The
    action plugin of the same name renders the lock on the controller from O(manifest) and
    O(template), which are controller paths, and tells there whether a lock's run is still alive.
  - In check mode the module plans from the same files, staged in a temporary directory, and stops;
    with O(run_id) it also tries the lock, so a lock held by another run fails the plan.
options:
  state:
    description:
      - V(present) brings the deployment up and proves it.
      - V(started) brings the project's current deployment (or O(target)) up again and proves it, as V(present) does.
      - V(stopped) stops the containers of the current deployment (or O(target)) and keeps them, so that a
        database restore runs while nothing writes; V(started) brings them back.
      - V(absent) removes the project's containers with the files of O(target) (for a failed first release, when nothing ran before).
    type: str
    choices: [present, started, stopped, absent]
    default: present
  manifest:
    description:
      - Path on the controller of the release manifest whose digests the lock pins (handled by the action plugin).
      - Mutually exclusive with O(target) and O(lock).
    type: path
  template:
    description: Path on the controller of the compose template (handled by the action plugin). Required with O(manifest).
    type: path
  channel:
    description: Channel the manifest must belong to (handled by the action plugin).
    type: str
    choices: [edge, stable, airgap]
  promotion_id:
    description: Promotion id recorded in the lock (handled by the action plugin).
    type: str
    default: ""
  lock:
    description: Text of the compose lock, as the action plugin renders it from O(manifest) and O(template).
    type: str
  release:
    description: Release the lock pins, with C(release_id), C(version) and C(channel). Set by the action plugin.
    type: dict
  images:
    description: Service name to pinned image (C(repository@sha256:...)) of the lock. Set by the action plugin.
    type: dict
  target:
    description:
      - A deployment kept on the host to bring back, chosen on the host -
        V(previous) is the deployment that completed last in the journal of O(environment) before the one
        running now (nothing to do, not a failure, when there is none);
        V(current) is the deployment that C(<project_dir>/current) points to;
        V(newest) is the kept deployment created last;
        a release id (C(2025.09.0-stable)) is its newest kept deployment;
        a deployment id (C(<release_id>+<n>)), such as the C(deployment_id) of RV(bookmark), is exactly that one.
      - With O(run_id), the job records the job that brought up what runs now as the one it rolls back.
    type: str
    aliases: [deployment_id]
  settings:
    description: Values written to the deployment's env file (non-secret).
    type: dict
    default: {}
  secrets:
    description: Values written to the env file that never appear in a result or log.
    type: dict
    default: {}
  pull:
    description: Pull images the engine does not have before touching a container (a failed pull touches nothing).
    type: bool
    default: true
  wait_timeout:
    description: Seconds C(docker compose up --wait) waits for running and healthy containers.
    type: int
    default: 120
  health_checks:
    description:
      - Checks as in the O(stellaops.deploy.health_check#module:checks) option of M(stellaops.deploy.health_check), run after the verification.
      - C({release_version}) in any string is replaced by the version of the deployment brought up.
    type: list
    elements: dict
    default: []
  health_retries:
    description: Attempts of each health check.
    type: int
    default: 10
  health_interval:
    description: Seconds between attempts.
    type: float
    default: 2
  journal_dir:
    description: Deployment journal directory on the host.
    type: path
  environment:
    description: Environment name; with O(journal_dir), jobs of it left unfinished by an interrupted run are reported.
    type: str
  run_id:
    description:
      - The run this deployment belongs to. Makes the deployment one transaction of O(environment) - lock,
        journal job, deploy, verification, health checks, O(smoke_tests), O(on_failure) - and the same run
        holding the lock already is no conflict.
    type: str
  owner:
    description: Who runs, as the lock records it (default - the remote user).
    type: str
  break_stale:
    description: Take the lock over a stale one (its run's process is gone from this controller, or it was never written).
    type: bool
    default: false
  host:
    description: Inventory name of the host, as the journal records it. Set by the action plugin.
    type: str
  controller:
    description: The controller the run comes from (host name and boot id), as the lock records it. Set by the action plugin.
    type: str
  pid:
    description: Process on the controller that lives as long as the run; tells whether a lock is stale. Set by the action plugin.
    type: int
  stale_run_id:
    description: Run whose lock the controller found stale; set by the action plugin for O(break_stale=true).
    type: str
  on_failure:
    description:
      - What a transaction does when pull, start, verification, a health check or a smoke test fails.
      - V(restore) brings RV(bookmark) back and proves it (or removes the failed release when nothing ran before);
        when the containers that ran before match no kept deployment, the failed release is left in place.
      - V(leave) leaves the failed deployment in place (drills).
    type: str
    choices: [restore, leave]
    default: restore
  smoke_tests:
    description:
      - Smoke tests as in the O(stellaops.deploy.smoke_test#module:tests) option of M(stellaops.deploy.smoke_test),
        run after the health checks when containers changed; a failure counts like a failed health check.
    type: list
    elements: dict
    default: []
  expected_plan:
    description:
      - RV(plan_id) of the check-mode plan of this run. The deployment is refused, with nothing changed, when the
        host no longer matches that plan (another run or a hand-made change in between).
    type: str
  job_details:
    description: Details recorded in the journal job (for example the evidence baseline's root).
    type: dict
  job_message:
    description: Message recorded in the journal job.
    type: str
  keep:
    description: Deployments kept on the host; the running one and the bookmark are always kept.
    type: int
    default: 5
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.compose_target
attributes:
  action:
    description: The action plugin renders the lock on the controller.
    support: full
  check_mode:
    support: full
    details:
      - Plans with Compose from the same files and stops.
  diff_mode:
    support: full
    details:
      - Shows the lock change against the deployment that runs now, and which settings change.
  idempotent:
    support: full
    details:
      - A second run with the same release and settings reports no change.
notes:
  - On failure the result keeps RV(outcome), RV(touched), RV(bookmark), RV(deployment) and RV(job).
"""

EXAMPLES = r"""
- name: Plan the upgrade (check mode)
  stellaops.deploy.compose_deploy:
    project_name: stellaops
    project_dir: /srv/stellaops
    manifest: "{{ playbook_dir }}/releases/2025.10.0-stable.yaml"
    template: "{{ playbook_dir }}/compose/stellaops.yaml"
    settings: {STELLAOPS_AUTHORITY_PORT: "8440"}
    secrets: {STELLAOPS_DATABASE_PASSWORD: "{{ vault_db_password }}"}
  check_mode: true
  register: plan

- name: Upgrade as one transaction - lock, journal, deploy, verify, smoke tests, restore the bookmark on failure
  stellaops.deploy.compose_deploy:
    project_name: stellaops
    project_dir: /srv/stellaops
    environment: production
    run_id: "{{ stellaops_run_id }}"
    manifest: "{{ playbook_dir }}/releases/2025.10.0-stable.yaml"
    template: "{{ playbook_dir }}/compose/stellaops.yaml"
    expected_plan: "{{ plan.plan_id }}"
    smoke_tests:
      - {name: authority, type: http, url: "http://127.0.0.1:8440/health"}

- name: Roll back to the deployment that completed before the running one
  stellaops.deploy.compose_deploy:
    project_name: stellaops
    project_dir: /srv/stellaops
    environment: production
    run_id: "{{ stellaops_run_id }}"
    target: previous
"""

RETURN = r"""
plan:
  description: Services the deployment creates, recreates, starts, removes or leaves, and all changes.
  returned: when O(state=present)
  type: dict
  sample: {"create": [], "recreate": ["authority"], "start": [], "remove": [], "unchanged": ["notify"], "changes": ["authority"]}
deployment:
  description:
    - The deployment brought up - its id, whether it is new, release id, version and channel.
    - With O(state=present), C(evidence_schema) is the evidence schema of its release (1 for a deployment kept before the field).
  returned: always
  type: dict
  sample: {"deployment_id": "2025.10.0-stable+2", "new": true, "release_id": "2025.10.0-stable", "release": "2025.10.0", "channel": "stable",
           "evidence_schema": 1}
bookmark:
  description:
    - The kept deployment that ran before this run (its config hashes equal the running ones), or null.
    - C(evidence_schema) is the evidence schema of its release (1 for a deployment kept before the field).
  returned: always
  type: dict
  sample: {"deployment_id": "2025.09.0-stable+1", "release_id": "2025.09.0-stable", "release": "2025.09.0", "channel": "stable", "evidence_schema": 1}
before:
  description: What ran before - release id when all containers agree, mixed or unlabelled containers, and each service.
  returned: always
  type: dict
after:
  description: What runs after the deployment, in the same form as RV(before).
  returned: when the deployment ran
  type: dict
config_hashes:
  description: Compose's config hash of each service of the deployment.
  returned: when O(state=present)
  type: dict
images:
  description: Pinned image of each service.
  returned: when O(state=present)
  type: dict
problems:
  description: Verification findings (service, reason, expected, found); empty when verified.
  returned: when the deployment ran
  type: list
  elements: dict
verified:
  description: Every service runs on its config hash and locked digest, healthy.
  returned: when the deployment ran
  type: bool
health:
  description: Result of each health check.
  returned: when health checks ran
  type: list
  elements: dict
touched:
  description: Whether running containers were changed (pull and planning touch none).
  returned: always
  type: bool
unfinished_jobs:
  description: Jobs of O(environment) that an interrupted run left unfinished in the journal.
  returned: always
  type: list
  elements: dict
pruned:
  description: Deployments removed beyond O(keep).
  returned: when the deployment ran
  type: list
  elements: str
engine_version:
  description: Version of the Docker engine.
  returned: always
  type: str
plan_id:
  description: Digest of the plan (the deployment, its config hashes and the containers planned against), for O(expected_plan).
  returned: when the plan was made
  type: str
outcome:
  description:
    - With O(run_id) - V(deployed), V(unchanged), V(nothing to do) (O(target=previous) with nothing before);
      on failure V(untouched) (nothing running changed), V(rolled back), V(left) (the failed deployment runs) or V(failed)
      (the rollback failed too).
  returned: with O(run_id)
  type: str
job:
  description: The journal job of the transaction as it ended (none when nothing changed).
  returned: with O(run_id), when containers changed
  type: dict
smoke:
  description: Result of each smoke test.
  returned: when smoke tests ran
  type: list
  elements: dict
lock_holder:
  description: Who holds the environment lock, when another run's lock refused this one.
  returned: on failure
  type: dict
restored:
  description: The deployment a failed transaction brought back, what runs after, whether it was verified.
  returned: when a transaction rolled back
  type: dict
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deploy import ComposeDeployer, NothingToDo
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import DockerRunner
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.target import COMPOSE_CHECKS_SPEC, COMPOSE_TARGET_SPEC
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.transaction import ComposeTransaction
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError

ARGUMENT_SPEC: dict[str, Any] = {
    **COMPOSE_TARGET_SPEC,
    "state": {"type": "str", "choices": ["present", "started", "stopped", "absent"], "default": "present"},
    "manifest": {"type": "path"},
    "template": {"type": "path"},
    "channel": {"type": "str", "choices": ["edge", "stable", "airgap"]},
    "promotion_id": {"type": "str", "default": ""},
    "lock": {"type": "str"},
    "release": {"type": "dict"},
    "images": {"type": "dict"},
    "target": {"type": "str", "aliases": ["deployment_id"]},
    "settings": {"type": "dict", "default": {}},
    "secrets": {"type": "dict", "default": {}, "no_log": True},
    "pull": {"type": "bool", "default": True},
    **COMPOSE_CHECKS_SPEC,
    "journal_dir": {"type": "path"},
    "environment": {"type": "str"},
    "run_id": {"type": "str"},
    "owner": {"type": "str"},
    "break_stale": {"type": "bool", "default": False},
    "host": {"type": "str"},
    "controller": {"type": "str"},
    "pid": {"type": "int"},
    "stale_run_id": {"type": "str"},
    "on_failure": {"type": "str", "choices": ["restore", "leave"], "default": "restore"},
    "smoke_tests": {"type": "list", "elements": "dict", "default": []},
    "expected_plan": {"type": "str"},
    "job_details": {"type": "dict"},
    "job_message": {"type": "str"},
    "keep": {"type": "int", "default": 5},
}


class _RaisingModule:
    """The module as the docker runner sees it: a failed docker command raises instead of exiting.

    The failure then goes through main()'s handler with the deployer's result, so that ``touched``
    and ``bookmark`` say whether anything running changed (a failed pull touches nothing).
    """

    def __init__(self, module: AnsibleModule) -> None:
        self._module = module

    def get_bin_path(self, *args: Any, **kwargs: Any) -> Any:
        return self._module.get_bin_path(*args, **kwargs)

    def run_command(self, *args: Any, **kwargs: Any) -> Any:
        return self._module.run_command(*args, **kwargs)

    def fail_json(self, msg: str, **kwargs: Any) -> Any:
        raise StellaOpsError(msg, **kwargs)


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("lock", "target")],
        required_if=[("state", "present", ("lock", "target"), True), ("state", "absent", ("target",))],
        required_together=[("lock", "release")],
        supports_check_mode=True,
    )
    params = dict(module.params)
    if params["state"] in ("started", "stopped"):
        # the project's current deployment, brought up again and proven (started) or stopped and kept
        params.update(target=params["target"] or "current", state="present" if params["state"] == "started" else "stopped", lock=None)
    docker = DockerRunner(_RaisingModule(module), params["docker_host"])
    context = {"check_mode": module.check_mode, "run_command": module.run_command, "timeout_bin": module.get_bin_path("timeout")}
    runner: Any = None
    try:
        runner = ComposeTransaction(params, docker, **context) if params["run_id"] else ComposeDeployer(params, docker, **context)
        result = runner.run()
    except StellaOpsError as error:
        said = {key: value for key, value in error.details.items() if key in ("cmd", "rc", "stdout", "stderr", "stale", "outcome")}
        if error.details.get("lock"):
            said["lock_holder"] = error.details["lock"]
        module.fail_json(msg=str(error), **{**(runner.result if runner else {}), **said})
    except NothingToDo as nothing:
        module.exit_json(changed=False, msg=str(nothing))
    for job in result.get("unfinished_jobs") or []:
        module.warn(
            f"The journal holds job {job['id']} ({job['release_id']}, {job['status']} since {job['started_at']} on {job['host']}), "
            "left unfinished by an interrupted run."
        )
    if module._diff and result.get("deployment"):
        result["diff"] = (runner.deployer if isinstance(runner, ComposeTransaction) else runner).diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
