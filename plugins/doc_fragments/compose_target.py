# SPDX-License-Identifier: GPL-3.0-or-later
"""Options of the compose modules that name a project and the engine it runs on."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  project_name:
    description: Compose project name (the C(com.docker.compose.project) label of its containers).
    type: str
    required: true
  docker_host:
    description: Docker engine address, passed to C(docker --host).
    type: str
    default: unix:///var/run/docker.sock
requirements:
  - the docker CLI and the Docker Compose v2 plugin on the host, and Python's standard library
"""
