#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_history_info
short_description: Read a Helm release's history, its last deployed revision and whether it is stuck
version_added: 0.1.0
description:
  - Reads C(helm history) of a release (Helm 3 or Helm 4) and picks out the rollback bookmark, the last
    I(deployed) revision (or, when none is deployed, the last superseded one), never a failed revision.
  - Names a release stuck in C(pending-install), C(pending-upgrade) or C(pending-rollback), which helm
    refuses to upgrade until an operator recovers it.
  - With O(revision), also returns that revision's images per workload from its manifest (C(helm get manifest)).
  - A release that does not exist is reported with RV(exists=false), or fails with O(must_exist=true).
options:
  must_exist:
    description: Fail with one sentence (naming the releases of the namespace) when the release does not exist.
    type: bool
    default: false
  revision:
    description: A revision whose workload images to return in RV(images); it must exist.
    type: int
  platform_release:
    description:
      - Also return the platform release the last deployed revision runs (RV(platform_release)), from its values
        (C(helm get values), the key C(global.release) that the chart and stellaops.deploy.helm_upgrade set). Nothing
        else of the values is kept or returned.
    type: bool
    default: false
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.helm_target
  - stellaops.deploy.info_module
seealso:
  - module: stellaops.deploy.helm_release
  - module: stellaops.deploy.helm_rollback
"""

EXAMPLES = r"""
- name: Bookmark the last deployed revision before the upgrade
  stellaops.deploy.helm_history_info:
    release: stellaops
    namespace: stellaops
    kube_context: prod
  register: stellaops_helm_history

- name: Stop on a stuck release
  ansible.builtin.assert:
    that: stellaops_helm_history.pending is none
    fail_msg: "{{ stellaops_helm_history.pending_message }}"
"""

RETURN = r"""
exists:
  description: Whether helm knows the release.
  returned: always
  type: bool
  sample: true
history:
  description: Every revision, oldest first (revision, status, chart, chart_version, app_version, description, updated).
  returned: always
  type: list
  elements: dict
  sample: [{revision: 1, status: superseded, chart: stellaops-1.0.0, chart_version: 1.0.0, app_version: "2025.09.2", description: Install complete}]
current:
  description: The newest revision, whatever its status, or null.
  returned: always
  type: dict
  sample: {revision: 3, status: failed, chart: stellaops-1.0.0, description: "Upgrade \"stellaops\" failed: ..."}
last_deployed:
  description: The bookmark, the newest deployed (else superseded) revision, or null.
  returned: always
  type: dict
  sample: {revision: 2, status: deployed, chart: stellaops-1.0.0, chart_version: 1.0.0, app_version: "2025.10.0"}
pending:
  description: The newest revision when it is C(pending-*), or null.
  returned: always
  type: dict
  sample: {revision: 4, status: pending-upgrade, description: Preparing upgrade}
pending_message:
  description: One sentence naming the stuck revision and the recovery choice; empty when nothing is pending.
  returned: always
  type: str
  sample: "Release stellaops in namespace stellaops is stuck in pending-upgrade at revision 4 (...); ..."
images:
  description: Images of each workload of O(revision) (C(Kind/name) to images); empty without O(revision).
  returned: always
  type: dict
  sample: {Deployment/stellaops-authority: ["registry.stella-ops.org/stellaops/authority@sha256:0a55..."]}
platform_release:
  description:
    - With O(platform_release=true), the platform release of the last deployed revision (version, channel, and
      release_id as the release manifests name it); null without it, without a deployed revision, or when its values name none.
  returned: always
  type: dict
  sample: {version: "2025.10.0", channel: stable, release_id: "2025.10.0-stable"}
helm_version:
  description: Version of the helm binary that ran.
  returned: always
  type: str
  sample: 4.1.4
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.helm import (
    HELM_TARGET_SPEC,
    find_revision,
    helm_from_params,
    last_deployed,
    pending_message,
    stuck_pending,
    workload_images,
)


class HistoryInfo:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params: dict[str, Any] = module.params

    def run(self) -> dict[str, Any]:
        p = self.params
        helm = helm_from_params(self.module, p)
        history = helm.require_history(p["release"]) if p["must_exist"] else helm.history(p["release"])
        bookmark = last_deployed(history)
        pending = stuck_pending(history)
        images: dict[str, list[str]] = {}
        if p["revision"] is not None:
            find_revision(history, p["revision"], p["release"])
            images = workload_images(helm.manifest(p["release"], p["revision"]))
        platform = helm.platform_release(p["release"], bookmark.revision) if p["platform_release"] and bookmark else None
        return {
            "changed": False,
            "exists": bool(history),
            "history": [r.to_dict() for r in history],
            "current": history[-1].to_dict() if history else None,
            "last_deployed": bookmark.to_dict() if bookmark else None,
            "pending": pending.to_dict() if pending else None,
            "pending_message": pending_message(p["release"], p["namespace"], pending, bookmark) if pending else "",
            "images": images,
            "platform_release": platform,
            "helm_version": helm.version,
        }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **HELM_TARGET_SPEC,
            "must_exist": {"type": "bool", "default": False},
            "revision": {"type": "int"},
            "platform_release": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    try:
        result = HistoryInfo(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
