#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_info
short_description: Read what a compose project runs and which kept deployment that is
version_added: 0.1.0
description:
  - Reads every container of a Docker Compose project through the docker CLI, with the digests the
    engine knows for each image, the release labels and Compose's config hash.
  - Names the kept deployment under O(project_dir) that runs (the one whose recorded config hashes equal
    the running ones, see M(stellaops.deploy.compose_deploy)), the one C(current) points at, and every
    kept deployment.
  - With O(deployment_id), verifies that the project runs exactly that deployment - every service on
    its recorded config hash and locked digest, running and healthy.
  - Needs only Python's standard library, the docker CLI and the Compose v2 plugin on the host.
options:
  deployment_id:
    description: Kept deployment to verify the project against.
    type: str
  verify:
    description: Fail when the project does not run O(deployment_id) exactly.
    type: bool
    default: false
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.compose_target
  - stellaops.deploy.info_module
"""

EXAMPLES = r"""
- name: What runs, and which deployment it is
  stellaops.deploy.compose_info:
    project_name: stellaops
    project_dir: /srv/stellaops
  register: running

- name: Prove that the bookmarked deployment runs again
  stellaops.deploy.compose_info:
    project_name: stellaops
    project_dir: /srv/stellaops
    deployment_id: "{{ bookmark.deployment_id }}"
    verify: true
"""

RETURN = r"""
running:
  description: Whether any container of the project runs.
  returned: always
  type: bool
  sample: true
release_id:
  description: The release every container carries in its C(stella.release.id) label, or null when mixed or absent.
  returned: always
  type: str
  sample: 2025.10.0-stable
mixed_releases:
  description: Whether containers carry different release ids.
  returned: always
  type: bool
unlabelled:
  description: Whether a container carries no release id.
  returned: always
  type: bool
services:
  description: Each service with its container, state, health, image id, repo digests, release id, digest label and config hash.
  returned: always
  type: dict
deployment_id:
  description: The kept deployment that runs (recorded config hashes equal the running ones), or null.
  returned: always
  type: str
  sample: 2025.10.0-stable+1
current:
  description: The deployment C(current) points at, or null.
  returned: always
  type: str
deployments:
  description: Every kept deployment with its release id, version, channel and creation time.
  returned: always
  type: list
  elements: dict
problems:
  description: Verification findings against O(deployment_id) (service, reason, expected, found).
  returned: when O(deployment_id) is given
  type: list
  elements: dict
verified:
  description: True when the project runs O(deployment_id) exactly.
  returned: when O(deployment_id) is given
  type: bool
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deployments import DeploymentStore
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import DockerRunner
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.state import describe, running_hashes, summarize_problems, verify
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.target import COMPOSE_TARGET_SPEC
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError


def read(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    docker = DockerRunner(module, p["docker_host"])
    docker.require_engine()
    containers = docker.project_containers(p["project_name"])
    result: dict[str, Any] = {"changed": False, **describe(containers)}
    store = DeploymentStore(p["project_dir"])
    deployments = []
    for deployment_id in store.ids():
        meta = store.meta(deployment_id)
        deployments.append({"deployment_id": deployment_id, **{k: meta.get(k) for k in ("release_id", "release", "channel", "created_at")}})
    result.update(deployment_id=store.bookmark(running_hashes(containers)), current=store.current(), deployments=deployments)
    if p["deployment_id"]:
        meta = store.meta(p["deployment_id"])
        problems = verify(containers, meta["config_hashes"], meta.get("images") or {})
        result.update(problems=problems, verified=not problems)
        if p["verify"] and problems:
            module.fail_json(msg=summarize_problems(p["project_name"], problems), **result)
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **COMPOSE_TARGET_SPEC,
            "deployment_id": {"type": "str"},
            "verify": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**read(module))
    except StellaOpsError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
