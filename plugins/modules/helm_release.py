#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_release
short_description: Upgrade a Helm release atomically, with check mode that shows the real manifest difference
version_added: 0.1.0
description:
  - Runs C(helm upgrade) of a local chart with the environment's values files and values given as data
    (image digests from the release manifest, secrets), atomically with a timeout on Helm 3 (C(--atomic))
    and Helm 4 (C(--rollback-on-failure)).
  - Before anything changes it reads the release history. The bookmark is the last I(deployed) revision,
    never a failed one. A release stuck in C(pending-*) is refused with its name and revision; recovering it is
    the operator's choice (M(stellaops.deploy.helm_rollback) with O(stellaops.deploy.helm_rollback#module:recover_pending=true)).
  - The plan is helm's own dry run (C(helm upgrade --dry-run)) compared with the manifests and hooks of the
    bookmark revision (C(helm get manifest), C(helm get hooks)). RV(changed) comes from that comparison,
    in check mode and in a real run alike; a real run then upgrades only when something differs.
  - Values given as data reach helm on its standard input, never on its command line. Secret values in the
    diff are masked; a changed one is shown as changed, never its value.
  - Unlike C(kubernetes.core.helm), check mode needs no helm-diff plugin and reports no change when the
    manifests are equal, and the timeout is honoured with O(atomic=true) whatever O(wait) says.
attributes:
  check_mode:
    support: full
    details:
      - The same dry run and comparison as a real run; check mode stops before C(helm upgrade).
  diff_mode:
    support: full
    details:
      - The rendered manifests and hooks of the bookmark revision against the new ones, Secret values masked.
  idempotent:
    support: full
options:
  chart:
    description: Path of the chart directory or packaged chart on the host that runs helm.
    type: path
    required: true
  values_files:
    description: Values files of the environment, in order; each must exist.
    type: list
    elements: path
    default: []
  values:
    description: Values given as data, applied after O(values_files) (for example the images of the release manifest).
    type: dict
    default: {}
  secret_values:
    description: Values that are secrets, applied last; never logged, masked in the diff.
    type: dict
    default: {}
  install:
    description: Install the release when it does not exist yet; otherwise an unknown release is an error.
    type: bool
    default: false
  create_namespace:
    description:
      - Let the first install create O(namespace) (C(helm upgrade --install --create-namespace)).
      - When false, a first install into a namespace that does not exist fails before anything changes,
        naming the namespace (checked with the C(kubernetes) Python package when it is installed).
    type: bool
    default: false
  atomic:
    description: Roll the release back to the bookmark when the upgrade fails (C(--atomic) or C(--rollback-on-failure)); implies waiting.
    type: bool
    default: true
  wait:
    description: Wait until the workloads are ready before the upgrade counts as done.
    type: bool
    default: true
  timeout:
    description: How long helm waits for the workloads and hooks (a duration such as C(15m), or seconds).
    type: str
    default: 15m
  git_dir:
    description: A checkout of the deploy repository whose commit (C(git rev-parse HEAD)) is returned in RV(git_sha).
    type: path
  journal_dir:
    description: Deployment journal (M(stellaops.deploy.deployment_journal)) in which the upgrade records its job (O(job)).
    type: path
  job:
    description:
      - With O(journal_dir), the upgrade is one journaled job - when the plan differs, the module starts a job in the
        journal (its details - namespace, release name, context, revision and bookmark revision, chart and app
        version, git SHA, helm version - come from the plan), moves it to V(preparing), V(running), V(completing)
        and V(completed); on a failure to V(rolled_back) when helm rolled the release back atomically, else to
        V(failed), with helm's message. RV(job) is the job as it ended.
    type: dict
    suboptions:
      environment:
        description: Environment the job belongs to.
        type: str
        required: true
      host:
        description: Inventory name of the target, as the journal records it.
        type: str
        required: true
      release_id:
        description: Release id deployed (C(<version>-<channel>)).
        type: str
        required: true
      release:
        description: Release version.
        type: str
        default: ""
      channel:
        description: Release channel.
        type: str
        default: ""
      digests:
        description: Component to pinned image of the release.
        type: dict
        default: {}
      backup_set:
        description:
          - Path of the backup set of the platform database taken before the upgrade (M(stellaops.deploy.backup)), on the
            controller. The job records it; a rollback of this upgrade that restores the database restores this set.
        type: path
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.helm_target
seealso:
  - module: stellaops.deploy.helm_history_info
  - module: stellaops.deploy.helm_rollback
"""

EXAMPLES = r"""
- name: Show what the upgrade changes (check mode, with --diff)
  stellaops.deploy.helm_release:
    release: stellaops
    namespace: stellaops
    kube_context: stage
    chart: deploy/helm/stellaops
    values_files: [deploy/helm/stellaops/values-stage.yaml]
    values:
      services:
        authority:
          image: registry.stella-ops.org/stellaops/authority@sha256:0a55850270904158f3a328e31c56a74ad3e1356f61f1a713e907742dcb678c35
  check_mode: true
  diff: true

- name: Upgrade atomically within 15 minutes
  stellaops.deploy.helm_release:
    release: stellaops
    namespace: stellaops
    chart: deploy/helm/stellaops
    values_files: [deploy/helm/stellaops/values-prod.yaml]
    secret_values:
      credentials:
        STELLAOPS_DATABASE_PASSWORD: "{{ database_password }}"
    timeout: 15m
  register: upgraded
"""

RETURN = r"""
differs:
  description: >-
    Whether the new manifests or hooks differ from the bookmark revision, or its newest revision is not the bookmark;
    equal to RV(changed), and kept when a task overrides C(changed).
  returned: always
  type: bool
  sample: true
changed:
  description: Whether the rendered manifests or hooks differ from the bookmark revision, or the newest revision is not the bookmark.
  returned: always
  type: bool
  sample: true
bookmark:
  description: The last deployed revision before the upgrade (RV(stellaops.deploy.helm_history_info#module:last_deployed)), or null for a new release.
  returned: always
  type: dict
  sample: {revision: 3, status: deployed, chart: stellaops-1.0.0, chart_version: 1.0.0, app_version: "2025.10.0"}
revision:
  description: The revision the upgrade made; in check mode, or when nothing changed, the one it would make or the bookmark's.
  returned: always
  type: int
  sample: 4
status:
  description: Status of RV(revision) after the run (V(deployed)), V(planned) in check mode, V(unchanged) when nothing differed.
  returned: always
  type: str
  sample: deployed
chart:
  description: Name, version and app version of the chart that was (or would be) deployed.
  returned: always
  type: dict
  sample: {name: stellaops, version: 1.0.0, app_version: "2025.10.0"}
images:
  description: Images of each workload of the new manifest (C(Kind/name) to images).
  returned: always
  type: dict
  sample: {Deployment/stellaops-authority: ["registry.stella-ops.org/stellaops/authority@sha256:0a55..."]}
manifest_diff:
  description: Unified diff of the bookmark's manifests and hooks against the new ones, Secret values masked.
  returned: always
  type: str
  sample: "--- stellaops revision 3\n+++ stellaops upgrade\n@@ -10 +10 @@\n-  image: ...@sha256:0a55...\n+  image: ...@sha256:c49b...\n"
git_sha:
  description: Commit of O(git_dir), V(unknown) when it is not a git checkout, empty without O(git_dir).
  returned: always
  type: str
  sample: 81dd3530d1afc587abc9d5104ff03a7c2f0104f8
helm_version:
  description: Version of the helm binary that ran.
  returned: always
  type: str
  sample: 3.18.0
job:
  description: The journal job of the upgrade as it ended (O(job)); also on failure.
  returned: when O(job) is set and the plan differed, outside check mode
  type: dict
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.journal import JobSpec, JournalJob
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.client import namespace_exists
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.helm import (
    HELM_TARGET_SPEC,
    check_duration,
    compared,
    helm_from_params,
    hooks_text,
    last_deployed,
    merge_values,
    normalized,
    pending_message,
    stuck_pending,
    workload_images,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.release.promotion import Git


class ReleaseUpgrade:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params: dict[str, Any] = module.params
        self.job = JournalJob(self.params["journal_dir"])

    def check_input(self) -> str:
        p = self.params
        timeout = check_duration(p["timeout"], "timeout")
        if not os.path.exists(p["chart"]):
            raise StellaOpsError(f"Chart {p['chart']} (option chart) does not exist; expected a chart directory or a packaged chart.")
        for path in p["values_files"]:
            if not os.path.isfile(path):
                raise StellaOpsError(
                    f"Values file {path} (option values_files) does not exist; expected the environment's Helm values file. Nothing was changed."
                )
        return timeout

    def run(self) -> dict[str, Any]:
        p = self.params
        timeout = self.check_input()
        helm = helm_from_params(self.module, p)
        release = p["release"]
        history = helm.history(release) if p["install"] else helm.require_history(release)
        pending = stuck_pending(history)
        bookmark = last_deployed(history)
        if pending is not None:
            raise StellaOpsError(pending_message(release, p["namespace"], pending, bookmark))
        # a cluster refuses an install into a namespace that does not exist: said here, before any change
        if not history and not p["create_namespace"] and namespace_exists(p["kubeconfig"], p["kube_context"], p["namespace"], "helm_release") is False:
            raise StellaOpsError(
                f"Namespace {p['namespace']} does not exist; create it, or set create_namespace "
                "(helm_upgrade_create_namespace=true in the roles) so that the first install creates it. Nothing was changed."
            )
        values = merge_values(p["values"], p["secret_values"])
        rendered = helm.render(release, p["chart"], p["values_files"], values, install=p["install"])
        after = normalized(str(rendered.get("manifest") or "")) + normalized(hooks_text(rendered))
        before = ""
        if bookmark is not None:
            before = normalized(helm.manifest(release, bookmark.revision)) + normalized(helm.hooks(release, bookmark.revision))
        newest = history[-1].revision if history else 0
        changed = bookmark is None or before != after or newest != bookmark.revision
        metadata = (rendered.get("chart") or {}).get("metadata") or {}
        before_name = f"{release} revision {bookmark.revision}" if bookmark else f"{release} (not installed)"
        result: dict[str, Any] = {
            "changed": changed,
            "differs": changed,
            "bookmark": bookmark.to_dict() if bookmark else None,
            "revision": newest + 1 if changed else newest,
            "status": "planned" if changed else "unchanged",
            "chart": {"name": metadata.get("name", ""), "version": metadata.get("version", ""), "app_version": metadata.get("appVersion", "")},
            "images": workload_images(str(rendered.get("manifest") or "")),
            "helm_version": helm.version,
            "git_sha": self.git_sha(),
            **compared(before, after, before_name, f"{release} upgrade"),
        }
        if self.module.check_mode or not changed:
            return result
        if p["job"]:
            self.job.start(self.job_spec(result))
        self.job.step("preparing")
        self.job.step("running")
        try:
            upgraded = helm.upgrade(release, p["chart"], p["values_files"], values, install=p["install"],
                                    wait=p["wait"], atomic=p["atomic"], timeout=timeout, create_namespace=p["create_namespace"])
        except StellaOpsError as err:
            raise self.failed(helm, err, bookmark) from None
        result.update(revision=int(upgraded.get("version") or 0), status=str((upgraded.get("info") or {}).get("status", "")))
        self.job.step("completing", details={"revision": result["revision"], "chart_version": result["chart"]["version"]})
        self.job.step("completed")
        return {**result, **self.job.returned()}

    def job_spec(self, planned: dict[str, Any]) -> JobSpec:
        p, job = self.params, self.params["job"]
        bookmark = planned["bookmark"]
        return JobSpec(
            release_id=job["release_id"],
            host=job["host"],
            environment=job["environment"],
            release=job["release"],
            channel=job["channel"],
            digests=job["digests"],
            deployment_id=f"{p['release']}.v{planned['revision']}",
            previous_deployment_id=f"{p['release']}.v{bookmark['revision']}" if bookmark else None,
            details={
                "profile": "helm",
                "namespace": p["namespace"],
                "release_name": p["release"],
                "kube_context": p["kube_context"] or "",
                "revision": planned["revision"],
                "bookmark_revision": bookmark["revision"] if bookmark else None,
                "chart_version": planned["chart"]["version"],
                "app_version": planned["chart"]["app_version"],
                "git_sha": planned["git_sha"],
                "helm_version": planned["helm_version"],
                "backup_set": job["backup_set"],
            },
        )

    def git_sha(self) -> str:
        if not self.params["git_dir"]:
            return ""
        rc, out, _err = Git(self.module).in_repo(self.params["git_dir"], ["rev-parse", "HEAD"], what="git rev-parse HEAD", check=False)
        return out.strip() if rc == 0 and out.strip() else "unknown"

    def failed(self, helm: Any, err: StellaOpsError, bookmark: Any) -> StellaOpsError:
        """The upgrade's failure with what the history says now (failed revision, atomic rollback), journalled."""
        after = helm.history(self.params["release"])
        now = last_deployed(after)
        newest = after[-1] if after else None
        rolled = bool(bookmark and now and newest and now.revision == newest.revision and newest.revision > bookmark.revision)
        failed_revision = next((r.revision for r in reversed(after) if r.status == "failed"), None)
        failed = f" Revision {failed_revision} failed;" if failed_revision else ""
        deployed = f" revision {now.revision} is deployed ({now.description or now.chart})." if now else " no revision is deployed."
        message = f"{str(err).rstrip('.')}.{failed}{deployed}"
        details = {"failed_revision": failed_revision, "revision": now.revision if now else None}
        if rolled:
            self.job.step("rolling_back", message=message)
            self.job.step("rolled_back", details=details)
        else:
            self.job.step("failed", message=message, details=details)
        return StellaOpsError(message, history=[r.to_dict() for r in after], rolled_back=rolled,
                              bookmark=bookmark.to_dict() if bookmark else None, **self.job.returned())


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **HELM_TARGET_SPEC,
            "chart": {"type": "path", "required": True},
            "values_files": {"type": "list", "elements": "path", "default": []},
            "values": {"type": "dict", "default": {}},
            "secret_values": {"type": "dict", "default": {}, "no_log": True},
            "install": {"type": "bool", "default": False},
            "create_namespace": {"type": "bool", "default": False},
            "atomic": {"type": "bool", "default": True},
            "wait": {"type": "bool", "default": True},
            "timeout": {"type": "str", "default": "15m"},
            "git_dir": {"type": "path"},
            "journal_dir": {"type": "path"},
            "job": {
                "type": "dict",
                "options": {
                    "environment": {"type": "str", "required": True},
                    "host": {"type": "str", "required": True},
                    "release_id": {"type": "str", "required": True},
                    "release": {"type": "str", "default": ""},
                    "channel": {"type": "str", "default": ""},
                    "digests": {"type": "dict", "default": {}},
                    "backup_set": {"type": "path"},
                },
            },
        },
        required_by={"job": ("journal_dir",)},
        supports_check_mode=True,
    )
    try:
        result = ReleaseUpgrade(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err), **{k: v for k, v in err.details.items() if k in ("rc", "history", "rolled_back", "bookmark", "job")})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
