#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: helm_rollback
short_description: Roll a Helm release back to a revision that ran, by default the bookmark
version_added: 0.1.0
description:
  - Runs C(helm rollback) to O(revision), or by default to the bookmark, the last I(deployed) revision of the
    history. It never goes blindly to "the previous revision", which after a failed upgrade can be a failed one;
    a failed or pending revision is refused as a target.
  - A release stuck in C(pending-*) is refused with its name and revision unless O(recover_pending=true);
    recovering it is the operator's choice, made once no helm process still works on the release.
  - C(changed) comes from a comparison of the newest revision (its status and manifests) with the target's;
    check mode makes the same comparison and stops before C(helm rollback).
  - Waits for the workloads (C(--wait)) within O(timeout), 10 minutes by default, on Helm 3 and Helm 4.
  - Returns the images of each workload of the target revision; after a rollback (and a rollback that changed
    nothing) every Deployment and StatefulSet of the release must run them, read from the cluster with the
    C(kubernetes) Python package, or the module fails naming each workload that does not.
  - With O(journal_dir) and O(job), the rollback is one journaled job - the target defaults to the bookmark that the
    last completed upgrade of O(job.environment) recorded, the job records the job it rolls back (C(rollback_of)),
    and the module starts it, moves it through V(preparing), V(running), V(completing) and V(completed), or ends
    it V(failed) with what failed.
  - A release that does not exist, when no O(revision) is given, is not a failure; the result says there is
    nothing to roll back (RV(nothing_to_roll_back)) and nothing changes; with O(revision) it is an error.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The manifests of the newest revision against the target's, Secret values masked.
  idempotent:
    support: full
options:
  revision:
    description: Revision to return to; the last deployed revision (the bookmark) when omitted. It must have run (deployed or superseded).
    type: int
  recover_pending:
    description: Roll back a release stuck in C(pending-*); without it such a release is refused and nothing changes.
    type: bool
    default: false
  wait:
    description: Wait until the workloads are ready.
    type: bool
    default: true
  force_conflicts:
    description:
      - Take back, on Helm 4, the fields of the release's objects that another field manager changed since (C(--force-conflicts)
        of server-side apply), such as the replicas that a database restore scaled to zero. Helm 3's three-way merge
        takes them back without it; on Helm 3 the option changes nothing.
    type: bool
    default: false
  restored_backup_set:
    description: The backup set of the database restored before this rollback (runbook R3); the journal job records it.
    type: path
  timeout:
    description: How long helm waits (a duration such as C(10m), or seconds).
    type: str
    default: 10m
  journal_dir:
    description: Deployment journal (M(stellaops.deploy.deployment_journal)) in which the rollback records its job (O(job)).
    type: path
  job:
    description: With O(journal_dir), the rollback is a journaled job of this environment and target.
    type: dict
    suboptions:
      environment:
        description: Environment the job belongs to; its last completed job names the bookmark and is the job rolled back.
        type: str
        required: true
      host:
        description: Inventory name of the target, as the journal records it.
        type: str
        required: true
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.helm_target
seealso:
  - module: stellaops.deploy.helm_history_info
  - module: stellaops.deploy.helm_release
"""

EXAMPLES = r"""
- name: Return to the bookmark taken before the upgrade
  stellaops.deploy.helm_rollback:
    release: stellaops
    namespace: stellaops
    revision: "{{ stellaops_helm_bookmark.revision }}"
  register: stellaops_rollback

- name: Recover a release stuck in pending-upgrade (an operator's decision)
  stellaops.deploy.helm_rollback:
    release: stellaops
    namespace: stellaops
    recover_pending: true
"""

RETURN = r"""
differs:
  description: >-
    Whether the rollback changes the release (the newest revision is not deployed, or its manifests differ from the target);
    equal to C(changed), and kept when a task overrides C(changed).
  returned: always
  type: bool
  sample: true
nothing_to_roll_back:
  description: True when the release does not exist (and no O(revision) was given); nothing was changed.
  returned: always
  type: bool
  sample: false
backup_set:
  description:
    - The backup set of the platform database that the upgrade rolled back (the last completed job of O(job.environment))
      took before it changed anything, as its job recorded it; null without one. A rollback that restores the database
      restores this set.
  returned: always
  type: str
  sample: /var/backups/stellaops/20251012T101500Z-1a2b3c
release_id:
  description: The release id that a completed job of the journal brought up as the target revision; null when the journal does not say.
  returned: always
  type: str
  sample: 2025.09.1-stable
target:
  description: The revision returned to; null when there is nothing to roll back.
  returned: always
  type: dict
  sample: {revision: 2, status: superseded, chart: stellaops-1.0.0, chart_version: 1.0.0, app_version: "2025.09.2"}
revision:
  description: The revision the rollback made; in check mode, or when nothing changed, the newest existing one.
  returned: always
  type: int
  sample: 5
status:
  description: Status of RV(revision) after the run; V(planned) in check mode, V(unchanged) when nothing differed.
  returned: always
  type: str
  sample: deployed
recovered:
  description: The stuck C(pending-*) revision that the rollback replaced, or null.
  returned: always
  type: dict
  sample: {revision: 4, status: pending-upgrade}
digests:
  description: Image digest of each workload of the target revision (C(Kind/name)), as the journal records digests.
  returned: always
  type: dict
  sample: {Deployment/stellaops-authority: "sha256:0a55850270904158f3a328e31c56a74ad3e1356f61f1a713e907742dcb678c35"}
images:
  description: Images of each workload of the target revision (C(Kind/name) to images).
  returned: always
  type: dict
  sample: {Deployment/stellaops-authority: ["registry.stella-ops.org/stellaops/authority@sha256:0a55..."]}
manifest_diff:
  description: Unified diff of the newest revision's manifests against the target's, Secret values masked.
  returned: always
  type: str
  sample: "--- stellaops revision 4\n+++ stellaops revision 2\n..."
helm_version:
  description: Version of the helm binary that ran.
  returned: always
  type: str
  sample: 3.18.0
job:
  description: The journal job of the rollback as it ended (O(job)); also on failure.
  returned: when O(job) is set and the rollback changed the release, outside check mode
  type: dict
"""

from typing import Any, Callable, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.journal import JobSpec, JournalJob
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.client import live_workload_images
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.helm import (
    HELM_TARGET_SPEC,
    RAN_STATUSES,
    check_duration,
    compared,
    find_revision,
    helm_from_params,
    image_digests,
    last_deployed,
    normalized,
    pending_message,
    stuck_pending,
    workload_images,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.release.paths import version_of


class ReleaseRollback:
    def __init__(self, module: AnsibleModule, live_images: Callable[..., dict[str, list[str]]] = live_workload_images) -> None:
        self.module = module
        self.live_images = live_images
        self.params: dict[str, Any] = module.params
        self.job = JournalJob(self.params["journal_dir"])
        # The last completed job of the environment: the upgrade whose bookmark a rollback returns to.
        self.undoes: dict[str, Any] = {}
        if self.job.journal is not None and self.params["job"]:
            self.undoes = self.job.journal.last_completed(self.params["job"]["environment"]) or {}

    def run(self) -> dict[str, Any]:
        p = self.params
        release = p["release"]
        timeout = check_duration(p["timeout"], "timeout")
        helm = helm_from_params(self.module, p)
        revision = p["revision"] if p["revision"] is not None else (self.undoes.get("details") or {}).get("bookmark_revision")
        history = helm.history(release) if revision is None else helm.require_history(release)
        if not history:
            # A target that never had the release (an environment this channel has not reached yet) is no failure.
            return {
                "changed": False,
                "differs": False,
                "nothing_to_roll_back": True,
                "msg": f"Release {release} does not exist in {helm.target.describe()}: nothing to roll back.",
                "target": None,
                "release_id": None,
                "backup_set": None,
                "revision": None,
                "status": "absent",
                "recovered": None,
                "images": {},
                "digests": {},
                "helm_version": helm.version,
                **compared("", "", release, release),
            }
        bookmark = last_deployed(history)
        if revision is not None:
            target = find_revision(history, int(revision), release)
        elif bookmark is not None:
            target = bookmark
        else:
            raise StellaOpsError(f"Release {release} has no deployed or superseded revision to return to; give revision. Nothing was changed.")
        if target.status not in RAN_STATUSES:
            raise StellaOpsError(
                f"Revision {target.revision} of release {release} is {target.status}; a rollback returns to a revision that ran "
                f"(deployed or superseded){f', such as the bookmark {bookmark.revision}' if bookmark else ''}. Nothing was changed."
            )
        pending = stuck_pending(history)
        if pending is not None and not p["recover_pending"]:
            raise StellaOpsError(pending_message(release, p["namespace"], pending, target))
        current = history[-1]
        before = normalized(helm.manifest(release, current.revision))
        after = normalized(helm.manifest(release, target.revision))
        changed = current.status != "deployed" or before != after
        before_name, after_name = f"{release} revision {current.revision}", f"{release} revision {target.revision}"
        result: dict[str, Any] = {
            "changed": changed,
            "differs": changed,
            "target": target.to_dict(),
            "release_id": self.journaled_release(target),
            "backup_set": (self.undoes.get("details") or {}).get("backup_set"),
            "revision": current.revision + 1 if changed else current.revision,
            "status": "planned" if changed else "unchanged",
            "recovered": pending.to_dict() if pending else None,
            "images": workload_images(after),
            "digests": image_digests(workload_images(after)),
            "helm_version": helm.version,
            "nothing_to_roll_back": False,
            **compared(before, after, before_name, after_name),
        }
        if self.module.check_mode:
            return result
        if changed and p["job"]:
            self.job.start(self.job_spec(result, target))
        try:
            if changed:
                self.job.step("preparing")
                self.job.step("running")
                helm.rollback(release, target.revision, wait=p["wait"], timeout=timeout, force_conflicts=p["force_conflicts"])
                newest = helm.history(release)[-1]
                result.update(revision=newest.revision, status=newest.status)
                self.job.step("completing", details={"revision": newest.revision})
            self.verify_workloads(target.revision, result["images"])
        except StellaOpsError as err:
            self.job.step("failed", message=str(err))
            raise StellaOpsError(str(err), **self.job.returned()) from None
        self.job.step("completed")
        return {**result, **self.job.returned()}

    def verify_workloads(self, revision: int, images: dict[str, list[str]]) -> None:
        """Every Deployment and StatefulSet of the target revision runs its images, as the cluster says."""
        p = self.params
        wanted = {name: refs for name, refs in images.items() if name.split("/")[0] in ("Deployment", "StatefulSet")}
        live = self.live_images(p["kubeconfig"], p["kube_context"], p["namespace"], f"app.kubernetes.io/instance={p['release']}", "helm_rollback")
        wrong = [
            f"{name} runs {', '.join(live.get(name) or ['nothing'])}, expected {', '.join(refs)}" for name, refs in wanted.items() if live.get(name) != refs
        ]
        if wrong:
            raise StellaOpsError(f"After the rollback to revision {revision} these workloads do not run its images: {'; '.join(wrong)}.")

    def journaled_release(self, target: Any) -> Optional[str]:
        """The release id that a completed job of the journal brought up as the target revision; None when none did."""
        p = self.params
        deployment = f"{p['release']}.v{target.revision}"
        jobs = self.job.journal.jobs(p["job"]["environment"]) if self.job.journal and p["job"] else []
        ran = [job for job in jobs if job.get("status") == "completed" and job.get("deployment_id") == deployment]
        # a rollback journals the revision's name (<release>.v<n>) when it did not know the release either
        return str(ran[-1]["release_id"]) if ran and version_of(str(ran[-1]["release_id"])) else None

    def job_spec(self, planned: dict[str, Any], target: Any) -> JobSpec:
        p, undoes = self.params, self.undoes
        return JobSpec(
            # the release an upgrade journaled for that revision, else the revision itself
            release_id=planned["release_id"] or f"{p['release']}.v{target.revision}",
            host=p["job"]["host"],
            environment=p["job"]["environment"],
            deployment_id=f"{p['release']}.v{planned['revision']}",
            previous_release_id=undoes.get("release_id"),
            previous_deployment_id=undoes.get("deployment_id"),
            rollback_of=undoes.get("id"),
            digests=planned["digests"],
            details={
                "profile": "helm",
                "namespace": p["namespace"],
                "release_name": p["release"],
                "target_revision": target.revision,
                "chart_version": target.chart_version,
                "recovered_pending": (planned["recovered"] or {}).get("revision"),
                "helm_version": planned["helm_version"],
                "restored_backup_set": p["restored_backup_set"],
            },
        )


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **HELM_TARGET_SPEC,
            "revision": {"type": "int"},
            "recover_pending": {"type": "bool", "default": False},
            "wait": {"type": "bool", "default": True},
            "force_conflicts": {"type": "bool", "default": False},
            "restored_backup_set": {"type": "path"},
            "timeout": {"type": "str", "default": "10m"},
            "journal_dir": {"type": "path"},
            "job": {"type": "dict", "options": {"environment": {"type": "str", "required": True}, "host": {"type": "str", "required": True}}},
        },
        required_by={"job": ("journal_dir",)},
        supports_check_mode=True,
    )
    try:
        result = ReleaseRollback(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err), **{k: v for k, v in err.details.items() if k == "job"})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
