# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Controller side of compose_deploy: render the compose lock here, deploy it on the host.

The release manifest and the compose template are files on the controller, and reading them needs
PyYAML and jsonschema, which a compose host does not have. This plugin reads and validates them
with the same code as the release_manifest and compose_lock modules, and sends the host module the
rendered lock text, the release and the pinned images.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Optional

from ansible.plugins.action import ActionBase
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.lock_file import (
    build_lock,
    load_template,
    render_lock,
    require_intact_lock,
    services_summary,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.deploy_lock import controller_identity, judge_stale
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import load_manifest, read_text

_CONTROLLER_ONLY = ("manifest", "template", "channel", "promotion_id")


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp: Optional[str] = None, task_vars: Optional[dict[str, Any]] = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        controller = {key: args.pop(key, None) for key in _CONTROLLER_ONLY}
        if controller["manifest"] or controller["template"]:
            if args.get("deployment_id") or args.get("lock"):
                return {**result, "failed": True, "msg": "manifest and template render a new lock; do not combine them with deployment_id or lock."}
            if not (controller["manifest"] and controller["template"]):
                return {**result, "failed": True, "msg": "manifest and template go together: set both (paths on the controller)."}
            try:
                args.update(self._render(controller))
            except StellaOpsError as error:
                return {**result, "failed": True, "msg": str(error)}
        elif isinstance(args.get("lock"), str):
            # a lock given as text is checked here, where PyYAML can recompute its digest
            try:
                require_intact_lock(args["lock"], "lock")
            except StellaOpsError as error:
                return {**result, "failed": True, "msg": str(error)}
        if args.get("run_id"):
            # The journal names the host as the inventory does; the lock records this controller and the
            # ansible-playbook process (the parent of this worker) that lives as long as the run.
            args.setdefault("host", self._task.delegate_to or (task_vars or {}).get("inventory_hostname"))
            args.update(controller=controller_identity(), pid=os.getppid())

        def execute(module_args: dict[str, Any]) -> dict[str, Any]:
            return self._execute_module(module_name="stellaops.deploy.compose_deploy", module_args=module_args, task_vars=task_vars)

        result.update(judge_stale(args, execute(args), "lock_holder", execute))
        return result

    def _render(self, controller: dict[str, Any]) -> dict[str, Any]:
        release = load_manifest(controller["manifest"], channel=controller["channel"])
        template_path = self._find_needle("files", controller["template"])
        template_text = read_text(template_path, "compose template")
        lock = build_lock(
            release,
            load_template(template_text, template_path),
            template_sha256=hashlib.sha256(template_text.encode("utf-8")).hexdigest(),
            promotion_id=controller["promotion_id"] or "",
            source=template_path,
        )
        return {
            "lock": render_lock(lock),
            "release": {
                "release_id": release.release_id,
                "version": release.version,
                "channel": release.channel,
                "evidence_schema": release.evidence_schema_version or 1,
            },
            "images": {name: service["image"] for name, service in services_summary(lock).items()},
        }
