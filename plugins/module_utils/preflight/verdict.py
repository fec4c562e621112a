# SPDX-License-Identifier: GPL-3.0-or-later
"""Pre-flight's verdict: every check's result in, one list of what failed and the record out.

The checks themselves are modules of their own (compose_info, health_check, docker_network,
migrations_info, queue_info, channel_alignment, profile_validation), run with ``failed_when: false``
so that every one of them runs. A check that could not run at all is told by the keys its result
lacks; its message is listed. Nothing here touches a host: the verdict is a function of the results.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Protocol, Sequence

from ..core.errors import StellaOpsError
from ..core.safe_load import read_text

NOT_FINISHED = "did not finish its pre-flight checks"


def _ran(result: Optional[Mapping[str, Any]]) -> bool:
    """Whether a registered check ran (a skipped task and an absent result did not)."""
    return bool(result) and not result.get("skipped")  # type: ignore[union-attr]


def _msg(result: Mapping[str, Any], default: str = "") -> str:
    return str(result.get("msg") or default).strip()


def _findings(label: str, result: Mapping[str, Any], key: str, say: Callable[[Any], str] = str) -> list[str]:
    """A check's findings under ``key``, each led by ``label``; its message when it ran without them; none when it did not run."""
    if not _ran(result):
        return []
    if key not in result:
        return [f"{label}: {_msg(result)}"]
    return [f"{label}: {say(item)}" for item in result[key]]


def profile_secrets(path: str, pattern: str) -> list[str]:
    """The ``${NAME}`` variables of a compose profile whose NAME matches ``pattern`` (secrets), in order of appearance."""
    try:
        matcher = re.compile(r"\$\{(" + pattern + r")(?::?[-?][^}]*)?\}")
    except re.error as err:
        raise StellaOpsError(f"secret_pattern is not a regular expression: {err}.") from None
    names: list[str] = []
    for found in matcher.findall(read_text(path, "compose profile")):
        name = found if isinstance(found, str) else found[0]
        if name not in names:
            names.append(name)
    return names


@dataclass
class HostChecks:
    """What pre-flight found on one target: a compose host's containers and settings, a Helm target's release."""

    compose_host: bool = False
    running: Mapping[str, Any] = field(default_factory=dict)
    helm_target: bool = False
    helm_release: Mapping[str, Any] = field(default_factory=dict)  # stellaops.deploy.helm_history_info with platform_release
    health: Mapping[str, Any] = field(default_factory=dict)
    network: Mapping[str, Any] = field(default_factory=dict)
    network_name: str = ""
    profile: str = ""
    secrets_given: Sequence[str] = ()
    backup: bool = True
    backup_named: bool = False
    helm_backup_database: bool = False  # helm_upgrade_backup_database of a Helm target
    helm_evidence_gate: bool = False  # helm_upgrade_evidence_gate of a Helm target
    evidence_gate: bool = True
    evidence_store: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HostChecks:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data and data[name] is not None}
        return cls(**known)

    def release_id(self, channel: str = "") -> Optional[str]:
        """The release id the compose host's containers carry, or the Helm target's deployed revision names (a revision whose
        values name no channel follows ``channel``, the run's); None when nothing runs."""
        if self.compose_host:
            return self.running.get("release_id")
        platform = (self.helm_release.get("platform_release") or {}) if self.helm_target else {}
        if not platform.get("version"):
            return None
        return f"{platform['version']}-{platform.get('channel') or channel}"

    def failures(self, secret_names: Sequence[str]) -> list[str]:
        if self.helm_target and _ran(self.helm_release):
            if "exists" not in self.helm_release:
                return [f"cannot read the Helm release: {_msg(self.helm_release)}"]
            if self.helm_release.get("pending_message"):
                return [self.helm_release["pending_message"]]
            bookmark = self.helm_release.get("last_deployed")
            if bookmark and not (self.helm_release.get("platform_release") or {}).get("version"):
                return [
                    f"cannot tell which platform release the Helm release runs: the values of its revision {bookmark.get('revision')}"
                    " name no global.release.version (the chart's values files and stellaops.deploy.helm_upgrade set it)"
                ]
            found = []
            if self.helm_backup_database and not self.backup_named:
                found.append(
                    "settings: the database backup before a Helm upgrade is on (helm_upgrade_backup_database) and nothing is named to back up:"
                    " set backup_postgres (group_vars of the Helm targets), or helm_upgrade_backup_database: false"
                )
            if self.helm_evidence_gate and not self.evidence_store:
                found.append(
                    "settings: the evidence gate of a Helm upgrade is on (helm_upgrade_evidence_gate) and evidence_gate_store is not set:"
                    " say where the evidence bundles live (group_vars of the Helm targets), or helm_upgrade_evidence_gate: false"
                )
            return found
        if not self.compose_host:
            return []
        found = []
        if self.running.get("unreachable") or "running" not in self.running:
            found.append(f"cannot read what runs: {_msg(self.running)}")
        if _ran(self.health):
            if "results" in self.health:
                found += [f"unhealthy: {check.get('name')}: {check.get('message')}" for check in self.health["results"] if not check.get("healthy")]
            else:
                found.append(f"health checks did not run: {_msg(self.health)}")
        if _ran(self.network) and "created" not in self.network:
            found.append(f"front-door network {self.network_name}: {_msg(self.network)}")
        found += [
            f"secret {name}, referenced by {os.path.basename(self.profile)}, is not supplied" for name in secret_names if name not in self.secrets_given
        ]
        if self.backup and not self.backup_named:
            found.append(
                "settings: backups before an upgrade are on (compose_upgrade_backup) and nothing is named to back up:"
                " set backup_postgres, backup_mongodb, backup_object_storage or backup_kubernetes (group_vars of the compose hosts),"
                " or compose_upgrade_backup: false to upgrade without a backup"
            )
        if self.evidence_gate and not self.evidence_store:
            found.append(
                "settings: the evidence gate is on (compose_upgrade_evidence_gate) and evidence_gate_store is not set:"
                " say where the evidence bundles live (group_vars of the compose hosts),"
                " or compose_upgrade_evidence_gate: false to upgrade without the evidence baseline and continuity proof"
            )
        return found

    def protection_off(self) -> list[str]:
        """What the operator turned off on purpose: the record, the success message and the run summary repeat it."""
        if not self.compose_host:
            return []
        off = []
        if not self.backup:
            off.append("no backup before the upgrade (compose_upgrade_backup: false)")
        if not self.evidence_gate:
            off.append("no evidence baseline or continuity proof (compose_upgrade_evidence_gate: false)")
        return off


class UpgradePaths(Protocol):
    """The upgrade paths of a channel's releases to the release of the run (the preflight_verdict module reads them)."""

    def problem(self, release_id: str) -> Optional[str]:
        """Why a host running ``release_id`` cannot upgrade directly; None when it can."""

    def hops(self, release_id: Optional[str]) -> Optional[list[str]]:
        """The versions such a host deploys in turn, the release last; None when no chain leads there."""

    def category_b(self, release_id: Optional[str], versions: Sequence[str]) -> list[dict[str, str]]:
        """The category B migrations (id, name, release) of ``versions`` (the hops of a host running ``release_id``) newer than what it runs."""


@dataclass
class ControllerChecks:
    """The checks that run once, on the controller, for every target of the run."""

    approval: Mapping[str, Any] = field(default_factory=dict)
    approval_channels: Sequence[str] = ("stable", "airgap")
    migrations: Mapping[str, Any] = field(default_factory=dict)
    migrations_table: str = "schema_migrations"
    queues: Mapping[str, Any] = field(default_factory=dict)
    alignment: Mapping[str, Any] = field(default_factory=dict)
    profiles: Mapping[str, Any] = field(default_factory=dict)

    def approval_required(self, channel: str) -> bool:
        return channel in self.approval_channels

    def failures(self, channel: str) -> list[str]:
        found = []
        if self.approval_required(channel) and not self.approval.get("approved_by"):
            found.append(
                f"approval: an upgrade on the {channel} channel needs an approval (stellaops_approval.approved_by, from the AWX approval node or -e)"
            )
        found += _findings("migrations", self.migrations, "pending", lambda version: f"{version} is pending in {self.migrations_table}")
        found += _findings("queues", self.queues, "over")
        if _ran(self.alignment) and not self.alignment.get("aligned"):
            found.append(f"alignment: {_msg(self.alignment, 'not aligned')}")
        found += _findings("profiles", self.profiles, "problems")
        return found


def verdict(
    release: Mapping[str, Any],
    hosts: Mapping[str, Optional[Mapping[str, Any]]],
    controller: ControllerChecks,
    *,
    secret_pattern: str,
    run_id: str,
    now: str,
    paths: Optional[UpgradePaths] = None,
    walk: bool = False,
) -> dict[str, Any]:
    """Failures (controller's first, then each host's, named), what was turned off, and the record of this pre-flight.

    With ``paths`` each compose host's and Helm target's upgrade path is checked: one that cannot upgrade directly fails with the chain
    that would work, unless ``walk`` (``upgrade_path=auto``) lets it walk that chain (the record lists its hops). The
    category B migrations of the releases the hosts deploy need an approval that names them
    (``approval.migrations``), unless the migrations table shows them applied.
    """
    for key in ("release_id", "channel"):
        if not isinstance(release.get(key), str) or not release[key]:
            raise StellaOpsError(f"release.{key} must be a non-empty string: the release returned by stellaops.deploy.release_manifest.")
    channel = release["channel"]
    secrets_of: dict[str, list[str]] = {}
    failures: list[str] = []
    protection_off: list[str] = []
    running: dict[str, Optional[str]] = {}
    walks: dict[str, list[str]] = {}
    crossed: dict[str, dict[str, str]] = {}
    helm_crosses: dict[str, list[str]] = {}  # Helm target to the category B migrations its path crosses
    for name, data in hosts.items():
        if data is None:
            failures.append(f"{name}: {NOT_FINISHED}")
            running[name] = None
            continue
        checks = HostChecks.from_dict(data)
        secret_names: list[str] = []
        if checks.compose_host and checks.profile:
            # each profile read once, however many hosts name it
            if checks.profile not in secrets_of:
                secrets_of[checks.profile] = profile_secrets(checks.profile, secret_pattern)
            secret_names = secrets_of[checks.profile]
        failures += [f"{name}: {failure}" for failure in checks.failures(secret_names)]
        release_id = checks.release_id(channel)
        if paths and (checks.compose_host or checks.helm_target):
            problem = paths.problem(release_id) if release_id else None
            chain = paths.hops(release_id)
            if walk and chain is not None:
                walks[name] = chain
            elif problem:
                failures.append(f"{name}: upgrade path: {problem}")
                chain = None
            for migration in paths.category_b(release_id, chain) if chain is not None else []:
                crossed.setdefault(migration["id"], migration)
                if checks.helm_target:
                    helm_crosses.setdefault(name, []).append(migration["id"])
        protection_off += [what for what in checks.protection_off() if what not in protection_off]
        running[name] = release_id
    category_b = _category_b(crossed, controller)
    # The in-place Helm upgrade has no category B step (blue/green runs them in a Job in green): such an upgrade
    # would leave the release on a database it may not run on.
    not_applied = {m["id"] for m in category_b if not m["applied"]}
    for name, ids in helm_crosses.items():
        pending_here = [i for i in ids if i in not_applied]
        if pending_here:
            failures.append(
                f"{name}: category B migration(s) {', '.join(pending_here)} are applied only by a blue/green upgrade of"
                " a Helm target (playbooks/bluegreen.yml); the in-place upgrade does not run them"
            )
    unapproved = [m for m in category_b if not m["applied"] and not m["approved"]]
    if unapproved:
        named = ", ".join(f"{m['id']} ({m['name'] or 'unnamed'}, {m['release']})" for m in unapproved)
        failures.insert(
            0,
            f"approval: category B migration(s) {named} may break the release that runs now and need an approval that names them"
            " (stellaops_approval.migrations)",
        )
    failures = controller.failures(channel) + failures
    approved_by = controller.approval.get("approved_by") or None
    record = {
        "run_id": run_id,
        "checked_at": now,
        "release_id": release["release_id"],
        "channel": channel,
        "running": running,
        "approval": {
            "required": controller.approval_required(channel),
            "approved_by": approved_by,
            "approved_at": (controller.approval.get("approved_at") or now) if approved_by else None,
            "ticket": controller.approval.get("ticket") or None,
        },
        "migrations_pending": controller.migrations.get("pending") if _ran(controller.migrations) else None,
        "queue_depths": controller.queues.get("depths") if _ran(controller.queues) else None,
        "failures": failures,
        "protection_off": protection_off,
    }
    if paths:
        record["category_b"] = category_b
    if walk:
        record["hops"] = walks
    return record


def _category_b(crossed: Mapping[str, Mapping[str, str]], controller: ControllerChecks) -> list[dict[str, Any]]:
    """Each category B migration crossed, whether the migrations table shows it applied and the approval names it."""
    applied = set(controller.migrations.get("applied") or []) if _ran(controller.migrations) else set()
    named = controller.approval.get("migrations") or []
    # an id written without quotes in YAML or JSON is a number: the same id
    if not isinstance(named, list) or not all(isinstance(item, (str, int)) and not isinstance(item, bool) for item in named):
        raise StellaOpsError('stellaops_approval.migrations must be a list of migration ids, for example ["20251101000000"].')
    approved = {str(item) for item in named}
    return [{**migration, "applied": migration["id"] in applied, "approved": migration["id"] in approved} for migration in crossed.values()]


def message(record: Mapping[str, Any]) -> str:
    """One sentence: what failed, or that pre-flight passed with the approval and what was turned off."""
    release_id = record["release_id"]
    failures = record["failures"]
    if failures:
        return f"Pre-flight for {release_id} failed {len(failures)} check(s); nothing was changed: {'; '.join(failures)}"
    said = f"Pre-flight for {release_id} passed on {len(record['running'])} host(s)"
    approval = record["approval"]
    if approval["approved_by"]:
        said += f"; approved by {approval['approved_by']} at {approval['approved_at']}"
    if record["protection_off"]:
        said += f"; turned off: {', '.join(record['protection_off'])}"
    return said + "."
