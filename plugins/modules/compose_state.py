#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_state
short_description: Read what a compose project runs and compare it with a lock
version_added: 0.1.0
description:
  - Reads every container of a Docker Compose project from the Docker engine, with the digests
    the engine knows for each container's image (C(RepoDigests)) and the release labels the lock
    put on it.
  - With O(expected) or O(lock), plans which services bringing the lock up would create, recreate, start or
    remove, and verifies that every expected service runs, healthy, on exactly the locked digest.
  - The plan is the same in check mode and in a real run; the module only reads.
options:
  project_name:
    description: Compose project name (the C(com.docker.compose.project) label).
    type: str
    required: true
  docker_host:
    description: Docker engine address.
    type: str
    default: unix:///var/run/docker.sock
  expected:
    description:
      - The services of a lock, as returned by M(stellaops.deploy.compose_lock) in RV(stellaops.deploy.compose_lock#module:services)
        — a mapping of service name to a dictionary with C(image) (C(repository@sha256:...)) and optionally
        C(service_hash).
    type: dict
  lock:
    description:
      - Path of a compose lock file on the host; its services are the expected state.
      - Mutually exclusive with O(expected).
    type: path
  verify:
    description:
      - Fail when an expected service does not run, is unhealthy, or runs another digest, or when the
        project runs a service the lock does not have.
    type: bool
    default: false
author:
  - Stella Ops platform engineering (!UNKNOWN)
attributes:
  check_mode:
    support: full
    description: Read-only; reports the same plan as a real run.
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: none
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
"""

EXAMPLES = r"""
- name: Bookmark what runs now
  stellaops.deploy.compose_state:
    project_name: stellaops
  register: bookmark

- name: Verify the upgraded project against its lock
  stellaops.deploy.compose_state:
    project_name: stellaops
    expected: "{{ lock.services }}"
    verify: true

- name: Verify the project against a kept release's lock file
  stellaops.deploy.compose_state:
    project_name: stellaops
    lock: /srv/stellaops/releases/2025.10.0-stable/docker-compose.lock.yaml
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
  sample: false
services:
  description: Each service with its container, state, health, image id, repo digests, release id and digest label.
  returned: always
  type: dict
  sample: {"authority": {"container_id": "0b1c2d3e4f5a", "state": "running", "health": "healthy",
           "image_id": "sha256:5f...", "repo_digests": ["127.0.0.1:5000/stellaops/authority@sha256:c670..."],
           "release_id": "2025.10.0-stable", "digest": "sha256:c670..."}}
plan:
  description: Services bringing O(expected) up would create, recreate, start, remove or leave, and all changes.
  returned: when O(expected) or O(lock) is given
  type: dict
  sample: {"create": [], "recreate": ["authority"], "start": [], "remove": [], "unchanged": ["notify"], "changes": ["authority"]}
problems:
  description: Verification findings, each with service, reason, expected and found.
  returned: when O(expected) or O(lock) is given
  type: list
  elements: dict
  sample: [{"service": "signer", "reason": "digest_mismatch", "expected": "127.0.0.1:5000/stellaops/signer@sha256:bc4c...",
            "found": "127.0.0.1:5000/stellaops/signer@sha256:4e54..."}]
verified:
  description: True when there are no problems.
  returned: when O(expected) or O(lock) is given
  type: bool
  sample: true
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.yaml import yaml_load
from ansible_collections.stellaops.deploy.plugins.module_utils._compose_state import (
    ExpectedService,
    describe,
    expected_from_lock,
    plan_changes,
    verify,
)
from ansible_collections.stellaops.deploy.plugins.module_utils._docker_engine import engine_client, project_containers
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError


class ComposeStateManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params

    def expected(self) -> dict[str, ExpectedService]:
        if self.params["lock"]:
            try:
                with open(self.params["lock"], encoding="utf-8") as handle:
                    return expected_from_lock(yaml_load(handle) or {})
            except OSError as error:
                raise StellaOpsError(f"Cannot read the compose lock {self.params['lock']}: {error.strerror}.") from error
        expected = {}
        for name, service in (self.params["expected"] or {}).items():
            if not isinstance(service, dict) or "@sha256:" not in str(service.get("image", "")):
                raise StellaOpsError(f"expected.{name}.image must be a pinned image reference (repository@sha256:...).")
            expected[name] = ExpectedService(image=service["image"], service_hash=service.get("service_hash"))
        return expected

    def run(self) -> dict[str, Any]:
        client = engine_client(self.params["docker_host"])
        containers = project_containers(client, self.params["project_name"])
        result: dict[str, Any] = {"changed": False, **describe(containers)}
        if self.params["expected"] is not None or self.params["lock"]:
            expected = self.expected()
            problems = verify(containers, expected)
            result.update(plan=plan_changes(containers, expected).as_dict(), problems=problems, verified=not problems)
            if self.params["verify"] and problems:
                summary = "; ".join(f"{p['service']}: {p['reason']} (expected {p['expected']}, found {p['found']})" for p in problems)
                self.module.fail_json(msg=f"Project {self.params['project_name']} does not match its lock: {summary}", **result)
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project_name": {"type": "str", "required": True},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
            "expected": {"type": "dict"},
            "lock": {"type": "path"},
            "verify": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("expected", "lock")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**ComposeStateManager(module).run())
    except StellaOpsError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
