# SPDX-License-Identifier: GPL-3.0-or-later
"""The compose target of a host: ``stellaops_compose`` validated, every setting left out filled."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.target import compose_settings
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError


def compose_target(given: Any, host: str) -> dict[str, Any]:
    try:
        return compose_settings(given, host)
    except StellaOpsError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"compose_target": compose_target}
