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
  - The host needs only Python's standard library, the docker CLI and the Compose v2 plugin. The
    action plugin of the same name renders the lock on the controller from O(manifest) and
    O(template), which are controller paths.
  - In check mode the module plans from the same files, staged in a temporary directory, and stops.
options:
  project_name:
    description: Compose project name.
    type: str
    required: true
  project_dir:
    description: Directory on the host that keeps the deployments, C(current) and the journal; also Compose's project directory.
    type: path
    required: true
  docker_host:
    description: Docker engine address, passed to C(docker --host).
    type: str
    default: unix:///var/run/docker.sock
  state:
    description:
      - V(present) brings the deployment up and proves it.
      - V(absent) removes the project's containers with the files of O(deployment_id) (for a failed first release, when nothing ran before).
    type: str
    choices: [present, absent]
    default: present
  manifest:
    description:
      - Path on the controller of the release manifest whose digests the lock pins (handled by the action plugin).
      - Mutually exclusive with O(deployment_id) and O(lock).
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
  deployment_id:
    description: A deployment kept on the host (C(<release_id>+<n>)) to bring back, such as the C(deployment_id) of RV(bookmark).
    type: str
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
  job_id:
    description: Journal job moved to C(preparing), C(running) and C(completing) as the deployment proceeds.
    type: str
  keep:
    description: Deployments kept on the host; the running one and the bookmark are always kept.
    type: int
    default: 5
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
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
  - On failure the result keeps RV(touched), RV(bookmark) and RV(deployment), so a rescue can restore the bookmark.
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

- name: Return to the bookmarked deployment
  stellaops.deploy.compose_deploy:
    project_name: stellaops
    project_dir: /srv/stellaops
    deployment_id: "{{ plan.bookmark.deployment_id }}"
"""

RETURN = r"""
plan:
  description: Services the deployment creates, recreates, starts, removes or leaves, and all changes.
  returned: when O(state=present)
  type: dict
  sample: {"create": [], "recreate": ["authority"], "start": [], "remove": [], "unchanged": ["notify"], "changes": ["authority"]}
deployment:
  description: The deployment brought up - its id, whether it is new, release id, version and channel.
  returned: always
  type: dict
  sample: {"deployment_id": "2025.10.0-stable+2", "new": true, "release_id": "2025.10.0-stable", "release": "2025.10.0", "channel": "stable"}
bookmark:
  description: The kept deployment that ran before this run (its config hashes equal the running ones), or null.
  returned: always
  type: dict
  sample: {"deployment_id": "2025.09.0-stable+1", "release_id": "2025.09.0-stable", "release": "2025.09.0", "channel": "stable"}
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
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils._compose_deploy import ComposeDeployer
from ansible_collections.stellaops.deploy.plugins.module_utils._docker_cli import DockerRunner
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError

ARGUMENT_SPEC: dict[str, Any] = {
    "project_name": {"type": "str", "required": True},
    "project_dir": {"type": "path", "required": True},
    "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "manifest": {"type": "path"},
    "template": {"type": "path"},
    "channel": {"type": "str", "choices": ["edge", "stable", "airgap"]},
    "promotion_id": {"type": "str", "default": ""},
    "lock": {"type": "str"},
    "release": {"type": "dict"},
    "images": {"type": "dict"},
    "deployment_id": {"type": "str"},
    "settings": {"type": "dict", "default": {}},
    "secrets": {"type": "dict", "default": {}, "no_log": True},
    "pull": {"type": "bool", "default": True},
    "wait_timeout": {"type": "int", "default": 120},
    "health_checks": {"type": "list", "elements": "dict", "default": []},
    "health_retries": {"type": "int", "default": 10},
    "health_interval": {"type": "float", "default": 2},
    "journal_dir": {"type": "path"},
    "environment": {"type": "str"},
    "job_id": {"type": "str"},
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
        mutually_exclusive=[("lock", "deployment_id")],
        required_one_of=[("lock", "deployment_id")],
        required_together=[("lock", "release")],
        supports_check_mode=True,
    )
    deployer = None
    try:
        deployer = ComposeDeployer(
            module.params,
            DockerRunner(_RaisingModule(module), module.params["docker_host"]),
            check_mode=module.check_mode,
            run_command=module.run_command,
            timeout_bin=module.get_bin_path("timeout"),
        )
        result = deployer.run()
    except StellaOpsError as error:
        command = {key: value for key, value in error.details.items() if key in ("cmd", "rc", "stdout", "stderr")}
        module.fail_json(msg=str(error), **command, **(deployer.result if deployer else {}))
    for job in result["unfinished_jobs"]:
        module.warn(
            f"The journal holds job {job['id']} ({job['release_id']}, {job['status']} since {job['started_at']} on {job['host']}), "
            "left unfinished by an interrupted run."
        )
    if module._diff and "deployment" in result:
        result["diff"] = deployer.diff()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
