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
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.deploy_lock import controller_identity, judge_stale


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

        def execute(module_args: dict[str, Any]) -> dict[str, Any]:
            return self._execute_module(module_name="stellaops.deploy.deploy_lock", module_args=module_args, task_vars=task_vars)

        # a stale lock is broken only when taking the lock; a release just says that it is stale
        taking = args.get("state", "present") == "present"
        outcome = judge_stale({**args, "break_stale": taking and args.get("break_stale")}, execute(args), "lock", execute)
        result.update(outcome)
        return result
