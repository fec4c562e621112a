#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: docker_network
short_description: Make sure a Docker network exists on a compose host, with the docker CLI only
description:
  - Creates the network when C(docker network inspect) does not find it, as the cutover runbook's
    C(docker network create stellaops_frontdoor || true) does for the external reverse proxy network.
  - Needs only the docker CLI on the host (no Docker SDK for Python). An existing network is left as it is,
    whatever its driver.
  - In check mode it reports whether it would create the network and creates nothing.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description: Network name.
    type: str
    required: true
  driver:
    description: Driver of a network that is created.
    type: str
    default: bridge
  docker_host:
    description: Docker engine address.
    type: str
    default: unix:///var/run/docker.sock
"""

EXAMPLES = r"""
- name: Make sure the front-door network exists
  stellaops.deploy.docker_network:
    name: stellaops_frontdoor
"""

RETURN = r"""
network_id:
  description: Id of the network (null when check mode would create it).
  returned: always
  type: str
  sample: 3f0c0d2b1e9a
created:
  description: Whether the network was (or in check mode would be) created.
  returned: always
  type: bool
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import DockerRunner, docker_name
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError


def ensure(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    docker_name(p["name"], "name")
    docker_name(p["driver"], "driver")
    docker = DockerRunner(module, p["docker_host"])
    docker.require_engine()
    inspect = ["network", "inspect", "--format", "{{.Id}}", p["name"]]
    rc, out, _err = docker.docker(inspect, what="docker network inspect", check=False, timeout=docker.query_timeout)
    found = out.strip()[:12] if rc == 0 else None
    result: dict[str, Any] = {"changed": found is None, "created": found is None, "network_id": found}
    result["diff"] = {"before": {"networks": [p["name"]] if found else []}, "after": {"networks": [p["name"]]}}
    if found is None and not module.check_mode:
        _rc, out, _err = docker.docker(["network", "create", "--driver", p["driver"], p["name"]], what="docker network create")
        result["network_id"] = out.strip()[:12]
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "driver": {"type": "str", "default": "bridge"},
            "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**ensure(module))
    except StellaOpsError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
