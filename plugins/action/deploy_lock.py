# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of deploy_lock: who holds the lock, and whether that run is still alive.

The lock file is on the managed host; the run that holds it is an ``ansible-playbook`` process on
a controller. This plugin records this controller and that process in the lock, and when the lock
is held by a run of this controller whose process is gone, it says so and (with break_stale)
asks the host to clear exactly that run's lock.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ansible.plugins.action import ActionBase
from ansible_collections.stellaops.deploy.plugins.module_utils._deploy_lock import controller_identity, is_stale


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        controller = controller_identity()
        if args.get("state", "present") == "present":
            args["controller"] = controller
            # Action plugins run in a worker forked by the ansible-playbook process that lives as long as the run.
            args.setdefault("pid", os.getppid())
        outcome = self._execute_module(module_name="stellaops.deploy.deploy_lock", module_args=args, task_vars=task_vars)
        holder = outcome.get("lock") if outcome.get("failed") else None
        if isinstance(holder, dict) and holder.get("run_id") and is_stale(holder, controller):
            if args.get("break_stale") and args.get("state", "present") == "present":
                args["stale_run_id"] = holder["run_id"]
                outcome = self._execute_module(module_name="stellaops.deploy.deploy_lock", module_args=args, task_vars=task_vars)
            else:
                outcome["stale"] = True
                outcome["msg"] = (
                    f"{outcome.get('msg', '').rstrip('.')}; it is stale: process {holder.get('pid')} of that run is gone "
                    "from this controller, and break_stale=true clears it."
                )
        result.update(outcome)
        return result
