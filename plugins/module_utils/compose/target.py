# SPDX-License-Identifier: GPL-3.0-or-later
"""A compose target: the project, its directory and engine, its environment, and how a deployment is checked.

Inventories describe a compose host once, in the ``stellaops_compose`` variable. The filter
``stellaops.deploy.compose_target`` validates it and fills every setting left out, from the same
argument specs that ``compose_deploy`` and ``compose_info`` take, so a default is written once.
"""

from __future__ import annotations

from typing import Any, Mapping

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ..core.errors import StellaOpsError

# The options that name a compose project, its kept deployments and the engine it runs on
# (doc fragment stellaops.deploy.compose_target).
COMPOSE_TARGET_SPEC: dict[str, Any] = {
    "project_name": {"type": "str", "default": "stellaops"},
    "project_dir": {"type": "path", "default": "/srv/stellaops"},
    "docker_host": {"type": "str", "default": "unix:///var/run/docker.sock"},
}

# How compose_deploy proves a deployment after it brings it up.
COMPOSE_CHECKS_SPEC: dict[str, Any] = {
    "wait_timeout": {"type": "int", "default": 120},
    "health_checks": {"type": "list", "elements": "dict", "default": []},
    "health_retries": {"type": "int", "default": 10},
    "health_interval": {"type": "float", "default": 2},
}

# stellaops_compose: the target, its environment (hosts that share a database and an evidence store;
# the inventory name of the host when not set) and its checks. project_dir is a path on the host: the
# controller must not expand it (type path would), so it is checked as an absolute path instead.
SETTINGS_SPEC: dict[str, Any] = {
    **COMPOSE_TARGET_SPEC,
    "project_dir": {"type": "str", "default": COMPOSE_TARGET_SPEC["project_dir"]["default"]},
    "environment": {"type": "str"},
    **COMPOSE_CHECKS_SPEC,
}


def compose_settings(given: Any, host: str, variable: str = "stellaops_compose") -> dict[str, Any]:
    """``given`` with every setting of SETTINGS_SPEC filled; one sentence naming ``variable`` when it is not one."""
    if given is None:
        given = {}
    if not isinstance(given, Mapping):
        raise StellaOpsError(f"{variable} must be a mapping of {', '.join(SETTINGS_SPEC)}; got {type(given).__name__}.")
    unknown = sorted(str(key) for key in given if key not in SETTINGS_SPEC)
    if unknown:
        raise StellaOpsError(f"{variable} has no setting {', '.join(map(repr, unknown))}; it takes {', '.join(SETTINGS_SPEC)}.")
    # A setting given as null takes its default, as a module option does.
    result = ArgumentSpecValidator(SETTINGS_SPEC).validate({key: value for key, value in given.items() if value is not None})
    if result.error_messages:
        raise StellaOpsError(f"{variable}: {'; '.join(message.rstrip('.') for message in result.error_messages)}.")
    settings = dict(result.validated_parameters)
    if not settings["project_dir"].startswith("/"):
        raise StellaOpsError(f"{variable}: project_dir must be an absolute path on the host, got {settings['project_dir']!r}.")
    settings["environment"] = settings["environment"] or host
    return settings
