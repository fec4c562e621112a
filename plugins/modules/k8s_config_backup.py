#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: k8s_config_backup
short_description: Save a namespace's ConfigMaps and Secrets to private files, and restore them
version_added: 0.1.0
description:
  - With O(state=backup), exports the ConfigMaps and Secrets of O(namespace) through the Kubernetes API
    into O(path) on the host that runs the module (the controller for Helm targets), one JSON file per kind,
    C(kubernetes-<namespace>-configmaps.json) and C(kubernetes-<namespace>-secrets.json), each of mode 0600
    in a directory of mode 0700. Server-set fields are left out, so the files can be applied again.
  - Helm's release records (Secrets of type C(helm.sh/release.v1)), service-account tokens and
    C(kube-root-ca.crt) are the cluster's and helm's own state; they are never saved nor restored.
  - With O(state=restore), compares each saved object with the live one and creates the missing ones and
    replaces those that differ (data, type, labels, annotations); live objects that were not saved stay.
  - No Secret value appears in any result or log; results carry kinds, names and counts.
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The same export, or the same comparison with the live objects; nothing is written.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  state:
    description: V(backup) saves the namespace's objects into O(path); V(restore) applies the saved objects.
    type: str
    choices: [backup, restore]
    default: backup
  namespace:
    description: Namespace whose ConfigMaps and Secrets are saved or restored.
    type: str
    required: true
  path:
    description: Directory of the backup files on the host that runs the module.
    type: path
    required: true
  kinds:
    description: Kinds to save or restore.
    type: list
    elements: str
    choices: [ConfigMap, Secret]
    default: [ConfigMap, Secret]
  kube_context:
    description: Kubeconfig context; the current one when omitted.
    type: str
  kubeconfig:
    description: Kubeconfig file; C(KUBECONFIG) or C(~/.kube/config) when omitted.
    type: path
requirements:
  - kubernetes (the Python client)
author:
  - Stella Ops platform engineering (!UNKNOWN)
seealso:
  - module: stellaops.deploy.backup
"""

EXAMPLES = r"""
- name: Save the configuration before the upgrade
  stellaops.deploy.k8s_config_backup:
    namespace: stellaops
    kube_context: prod
    path: /var/backups/stellaops/helm/prod/20251122T041700Z

- name: Put it back
  stellaops.deploy.k8s_config_backup:
    state: restore
    namespace: stellaops
    kube_context: prod
    path: /var/backups/stellaops/helm/prod/20251122T041700Z
"""

RETURN = r"""
files:
  description: The backup file of each kind.
  returned: always
  type: dict
  sample: {ConfigMap: /var/backups/stellaops/helm/prod/kubernetes-stellaops-configmaps.json}
objects:
  description: Names of the saved (or restored) objects per kind, never their values.
  returned: always
  type: dict
  sample: {ConfigMap: [stellaops-config], Secret: [stellaops-credentials]}
written:
  description: For O(state=backup), the files written (would be written, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/var/backups/stellaops/helm/prod/kubernetes-stellaops-secrets.json]
restore:
  description: For O(state=restore), what happens to each saved object (kind, name, action V(create), V(replace) or V(unchanged)).
  returned: always
  type: list
  elements: dict
  sample: [{kind: Secret, name: stellaops-credentials, action: replace}]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.client import core_v1_api
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.k8s_config import (
    apply_restore,
    backup_file,
    export,
    live_objects,
    load,
    plan_restore,
    save,
)


def core_api(kubeconfig: Any, context: Any) -> Any:
    return core_v1_api(kubeconfig, context, "k8s_config_backup")


class ConfigBackup:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params: dict[str, Any] = module.params

    def run(self) -> dict[str, Any]:
        p = self.params
        kinds = list(dict.fromkeys(p["kinds"]))
        namespace, path = p["namespace"], p["path"]
        result: dict[str, Any] = {
            "changed": False,
            "files": {kind: backup_file(path, namespace, kind) for kind in kinds},
            "written": [],
            "restore": [],
        }
        if p["state"] == "restore":
            saved = load(path, namespace, kinds)
            api = core_api(p["kubeconfig"], p["kube_context"])
            steps = plan_restore(saved, live_objects(api, namespace, kinds))
            result.update(restore=[s.to_dict() for s in steps], changed=any(s.action != "unchanged" for s in steps))
            if result["changed"] and not self.module.check_mode:
                apply_restore(api, namespace, saved, steps)
        else:
            saved = export(core_api(p["kubeconfig"], p["kube_context"]), namespace, kinds)
            result["written"] = save(path, namespace, saved, self.module.check_mode)
            result["changed"] = bool(result["written"])
        result["objects"] = {kind: [str(o["metadata"].get("name")) for o in items] for kind, items in saved.items()}
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["backup", "restore"], "default": "backup"},
            "namespace": {"type": "str", "required": True},
            "path": {"type": "path", "required": True},
            "kinds": {"type": "list", "elements": "str", "choices": ["ConfigMap", "Secret"], "default": ["ConfigMap", "Secret"]},
            "kube_context": {"type": "str"},
            "kubeconfig": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        result = ConfigBackup(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
