# SPDX-License-Identifier: GPL-3.0-or-later
"""Options of the compose modules that name a project, its kept deployments and the engine it runs on."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  project_name:
    description: Compose project name (the C(com.docker.compose.project) label of its containers).
    type: str
    default: stellaops
  project_dir:
    description:
      - Directory on the host that keeps the deployments, C(current), the journal and the environment lock;
        also Compose's project directory.
    type: path
    default: /srv/stellaops
  docker_host:
    description: Docker engine address, passed to C(docker --host).
    type: str
    default: unix:///var/run/docker.sock
notes:
  - Inventories set these once per host or group in the C(stellaops_compose) variable, which the
    P(stellaops.deploy.compose_target#filter) filter validates and completes for the roles.
requirements:
  - the docker CLI and the Docker Compose v2 plugin on the host, and Python's standard library
"""
