# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose target of a host: ``stellaops_compose`` validated, every setting left out filled."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.target import compose_settings
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.safe_load import check_depth


def _plain(value: Any) -> Any:
    """``value`` in plain dicts and lists. Variables reach a filter in the templating engine's lazy containers,
    whose deep copy (the argument spec validator takes one) copies the engine and its plugin loaders along:
    about 0.15 s a host for the sandbox's stellaops_compose, on every task that reads it."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def compose_target(given: Any, host: str) -> dict[str, Any]:
    try:
        # Bounded first: a recursive YAML alias or deep nesting would exhaust _plain's recursion.
        check_depth(given, "stellaops_compose", "the value")
        return compose_settings(_plain(given), host)
    except StellaOpsError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"compose_target": compose_target}
