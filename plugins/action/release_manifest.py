# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release_manifest runs on the controller, in the playbook's own process.

The manifests are files on the controller (stellaops_releases_dir), read where the playbook runs
whatever the task's host or delegate_to: a module would start another Python and import PyYAML and
jsonschema again for every lookup. Same options, checks and result as the module.
"""

from __future__ import annotations

from typing import Any, Optional

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.choose import ARGUMENT_SPEC, CONSTRAINTS, choose_release


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        validation = ArgumentSpecValidator(ARGUMENT_SPEC, **CONSTRAINTS).validate(self._task.args)
        if validation.error_messages:  # the first, as the module says it
            return {**result, "failed": True, "msg": validation.error_messages[0]}
        try:
            result.update(choose_release(validation.validated_parameters))
        except StellaOpsError as error:
            return {**result, "failed": True, "msg": str(error)}
        return result
