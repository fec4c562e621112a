#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: preflight_verdict
short_description: Decide a pre-flight from the results of its checks, and record it
description:
  - Takes the registered results of every pre-flight check (run with C(failed_when) false, so that all of them
    run) and returns one list of what failed, the record of the pre-flight and one sentence. A check that could
    not run at all (its result lacks the keys it returns) is listed with its message.
  - Per compose host (O(hosts)) - what runs could not be read, an unhealthy service, a front-door network that could
    not be looked up, a secret that the compose profile references and that is not supplied, a backup or an evidence
    gate that is on without its settings. Per Helm target - its release could not be read, is stuck in
    C(pending-*), or its values name no platform release (C(global.release.version)); its path crosses a category B
    migration that O(migrations) does not show applied (only a blue/green upgrade applies those on Helm). A host
    whose checks are missing (null) did not finish them.
  - With O(releases_dir), per compose host and Helm target - a running version that cannot upgrade directly to the release
    (its C(upgrade.from)), named with the chain of the channel's releases that would work.
  - Once (the controller's checks) - a missing approval on a channel that needs one, pending migrations, queues
    over their threshold, a release not aligned with the channel's deployment files, invalid deployment profiles.
  - Fails with the list when anything failed (nothing has changed at that point); with O(record_dir) writes the
    record as C(preflight-<run id>.json) first (not in check mode), a log of the run rather than managed state.
  - Runs where the compose profiles and O(record_dir) are, the controller (C(delegate_to) localhost, C(run_once)).
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details: Decides the same; writes no record.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Changes nothing it manages; the record is a log of the run.
options:
  release:
    description: The release about to be deployed (RV(stellaops.deploy.release_manifest#module:release)), with release_id and channel.
    type: dict
    required: true
  hosts:
    description:
      - Target name to what pre-flight found there, or null when the target did not finish its checks.
      - Keys - C(compose_host) (bool), C(helm_target) (bool) and C(helm_release) (its registered
        M(stellaops.deploy.helm_history_info) result, with O(stellaops.deploy.helm_history_info#module:platform_release)), the registered results
        C(running) (M(stellaops.deploy.compose_info)), C(health) (M(stellaops.deploy.health_check)) and C(network)
        (M(stellaops.deploy.docker_network)), C(network_name), C(profile) (compose profile on the controller whose
        secret variables must be supplied), C(secrets_given) (names of the secrets supplied with a value, never the
        values), C(backup) and C(backup_named) (backups are on; something is named to back up), C(evidence_gate) and
        C(evidence_store) (the evidence gate is on; its store is set).
    type: dict
    required: true
  approval:
    description:
      - The approval (approved_by, approved_at, ticket), as an AWX approval node or an operator supplies it.
      - Its C(migrations) names the category B migrations approved (their ids). With O(releases_dir), each category B
        migration of the releases the targets deploy needs it, unless O(migrations) shows it applied.
    type: dict
    default: {}
  approval_channels:
    description: Channels whose upgrades need an approval.
    type: list
    elements: str
    default: [stable, airgap]
  migrations:
    description: The registered result of M(stellaops.deploy.migrations_info); empty or skipped when not checked.
    type: dict
    default: {}
  migrations_table:
    description: Migrations table named in the failures.
    type: str
    default: schema_migrations
  queues:
    description: The registered result of M(stellaops.deploy.queue_info); empty or skipped when not checked.
    type: dict
    default: {}
  alignment:
    description: The registered result of M(stellaops.deploy.channel_alignment); empty or skipped when not checked.
    type: dict
    default: {}
  profiles:
    description: The registered result of M(stellaops.deploy.profile_validation); empty or skipped when not checked.
    type: dict
    default: {}
  releases_dir:
    description:
      - Directory on the controller of the release manifests; with it, each target's running version is checked
        against the release's C(upgrade.from) and the chain through the channel's releases is named
        (C(2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first)).
    type: path
  upgrade_path:
    description:
      - V(direct) - a target that cannot upgrade directly to the release fails pre-flight (needs O(releases_dir)
        for the check).
      - V(auto) - such a host walks the chain instead, and RV(intermediate_releases) lists the releases it deploys before
        the release, each its own deployment and journal job; a host with no chain fails. Needs O(releases_dir).
    type: str
    choices: [direct, auto]
    default: direct
  secret_pattern:
    description: A C(${NAME}) of a compose profile is a secret when NAME matches this regular expression.
    type: str
    default: "[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)[A-Z0-9_]*"
  record_dir:
    description: Directory on the controller for the record; empty writes none.
    type: path
  run_id:
    description: Run id the record is named after; empty - the time of the verdict.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Decide the pre-flight
  stellaops.deploy.preflight_verdict:
    release: "{{ release }}"
    hosts:
      stella-1:
        compose_host: true
        running: "{{ running }}"
        health: "{{ health }}"
        secrets_given: [STELLAOPS_DATABASE_PASSWORD]
        profile: /srv/deploy/compose/templates/stellaops.yaml
        backup_named: true
        evidence_store: true
    approval: "{{ stellaops_approval | default({}) }}"
    record_dir: /var/log/stellaops/preflight
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
failures:
  description: What failed, the controller's checks first, then each target's, led by the target's name.
  returned: always
  type: list
  elements: str
  sample: ["approval: an upgrade on the stable channel needs an approval (stellaops_approval.approved_by, ...)"]
protection_off:
  description: What the operator turned off on purpose (backup, evidence gate), on any compose host.
  returned: always
  type: list
  elements: str
record:
  description: The record of the pre-flight - run_id, checked_at, release_id, channel, running (target to release id),
    approval (required, approved_by, approved_at, ticket), migrations_pending, queue_depths, failures, protection_off;
    with O(releases_dir) also category_b (each category B migration of the releases deployed - id, name, release,
    applied, approved), with O(upgrade_path=auto) hops (target to the versions it deploys in turn, the release last).
  returned: always
  type: dict
intermediate_releases:
  description:
    - Target (compose host or Helm target) to the releases (as RV(stellaops.deploy.release_manifest#module:release) returns them, oldest first)
      it deploys before the release, each as a deployment and journal job of its own; empty for a host that upgrades
      directly.
  returned: with O(upgrade_path=auto)
  type: dict
  sample: {"stella-1": [{"release_id": "2025.10.0-stable", "version": "2025.10.0", "path": "/srv/releases/2025.10.0-stable.yaml"}]}
record_path:
  description: The record's file on the controller, when written.
  returned: when O(record_dir) is set and not in check mode
  type: str
"""

import os
from datetime import datetime, timezone
from typing import Optional, Sequence

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_json
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.verdict import ControllerChecks, message, verdict
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import Release, list_manifests, load_manifest, version_key
from ansible_collections.stellaops.deploy.plugins.module_utils.release.paths import hops, path_problem, version_of


class _Paths:
    """The upgrade paths of the channel's releases (the manifests of ``releases_dir``) to ``release``."""

    def __init__(self, release: dict, releases_dir: str) -> None:
        self.target = load_manifest(release["path"])
        self.releases = {r.version: r for r in list_manifests(releases_dir, self.target.channel)}
        self.releases[self.target.version] = self.target
        self.channel = list(self.releases.values())

    def problem(self, release_id: str) -> Optional[str]:
        running = version_of(release_id)
        return path_problem(self.channel, running, self.target) if running else None

    def hops(self, release_id: Optional[str]) -> Optional[list[str]]:
        return hops(self.channel, version_of(release_id) if release_id else None, self.target)

    def category_b(self, release_id: Optional[str], versions: Sequence[str]) -> list[dict[str, str]]:
        running = version_of(release_id) if release_id else None
        deployed = [v for v in versions if running is None or version_key(v) > version_key(running)]
        return [{"id": m.id, "name": m.name or "", "release": v} for v in deployed for m in self.releases[v].migrations if m.category == "B"]

    def release(self, version: str) -> Release:
        return self.releases[version]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "release": {"type": "dict", "required": True},
            "hosts": {"type": "dict", "required": True},
            "approval": {"type": "dict", "default": {}},
            "approval_channels": {"type": "list", "elements": "str", "default": ["stable", "airgap"]},
            "migrations": {"type": "dict", "default": {}},
            "migrations_table": {"type": "str", "default": "schema_migrations"},
            "queues": {"type": "dict", "default": {}},
            "alignment": {"type": "dict", "default": {}},
            "profiles": {"type": "dict", "default": {}},
            "secret_pattern": {"type": "str", "default": "[A-Z0-9_]*(PASSWORD|SECRET|TOKEN|PRIVATE_KEY)[A-Z0-9_]*", "no_log": False},
            "record_dir": {"type": "path"},
            "releases_dir": {"type": "path"},
            "upgrade_path": {"type": "str", "choices": ["direct", "auto"], "default": "direct"},
            "run_id": {"type": "str", "default": ""},
        },
        supports_check_mode=True,
    )
    p = module.params
    now = datetime.now(timezone.utc)  # noqa: UP017 - same spelling as the other modules
    controller = ControllerChecks(
        approval=p["approval"] or {},
        approval_channels=p["approval_channels"],
        migrations=p["migrations"] or {},
        migrations_table=p["migrations_table"],
        queues=p["queues"] or {},
        alignment=p["alignment"] or {},
        profiles=p["profiles"] or {},
    )
    try:
        run_id = p["run_id"] or now.strftime("%Y%m%dT%H%M%SZ")
        paths = _Paths(p["release"], p["releases_dir"]) if p["releases_dir"] and p["release"].get("path") else None
        auto = p["upgrade_path"] == "auto"
        if auto and paths is None:
            raise StellaOpsError("upgrade_path=auto walks a chain of the channel's releases: set releases_dir (stellaops_releases_dir) too.")
        record = verdict(
            p["release"], p["hosts"], controller, secret_pattern=p["secret_pattern"], run_id=run_id,
            now=now.strftime("%Y-%m-%dT%H:%M:%SZ"), paths=paths, walk=auto,
        )  # fmt: skip
        result = {"changed": False, "failures": record["failures"], "protection_off": record["protection_off"], "record": record}
        if auto and paths:
            result["intermediate_releases"] = {
                host: [paths.release(version).to_dict() for version in chain[:-1]] for host, chain in record["hops"].items()
            }
        if p["record_dir"] and not module.check_mode:
            path = os.path.join(p["record_dir"], f"preflight-{os.path.basename(run_id)}.json")
            write_json(path, record, what="pre-flight record")
            result["record_path"] = path
    except StellaOpsError as error:
        module.fail_json(msg=str(error))
    if record["failures"]:
        module.fail_json(msg=message(record), **result)
    module.exit_json(msg=message(record), **result)


if __name__ == "__main__":
    main()
