# SPDX-License-Identifier: GPL-3.0-or-later
"""Upgrade paths: which running versions reach a release directly, and the chain of releases for the others.

A release's ``upgrade.from`` lists the versions that upgrade to it directly. The chain from a running
version to a target is the shortest walk through the releases of the target's channel, each hop a
direct upgrade. A release that does not say ``upgrade.from`` (an edge release, a manifest written
before the field) takes any older version, as before.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Optional, Sequence

from .manifest import CHANNELS, Release, version_key


def version_of(release_id: str) -> Optional[str]:
    """The version of a release id ``<version>-<channel>``; None when it is not one."""
    version, _dash, channel = release_id.rpartition("-")
    return version if version and channel in CHANNELS else None


def _direct(release: Release, running: str) -> bool:
    if release.upgrades_from is None:
        return version_key(running) < version_key(release.version)
    return running in release.upgrades_from


def upgrade_chain(releases: Sequence[Release], running: str, target: Release) -> Optional[list[str]]:
    """The versions to deploy in turn from ``running`` to ``target`` (target last); None when no chain leads there."""
    hops = {release.version: release for release in releases if version_key(release.version) <= version_key(target.version)}
    hops[target.version] = target
    # Oldest first, so that of two chains as short the one through older releases is taken.
    oldest_first = sorted(hops, key=version_key)
    came_from: dict[str, Optional[str]] = {running: None}
    queue = deque([running])
    while queue:
        current = queue.popleft()
        for version in oldest_first:
            if version in came_from or not _direct(hops[version], current):
                continue
            came_from[version] = current
            if version == target.version:
                chain = [version]
                while came_from[chain[-1]] not in (None, running):
                    chain.append(str(came_from[chain[-1]]))
                return chain[::-1]
            queue.append(version)
    return None


def hops(releases: Sequence[Release], running: Optional[str], target: Release) -> Optional[list[str]]:
    """The versions a host deploys in turn to reach ``target`` (target last); None when no chain leads there.

    One hop, the target, when the host runs nothing known, the target or a newer release, or upgrades directly.
    """
    if not running or path_problem(releases, running, target) is None:
        return [target.version]
    return upgrade_chain(releases, running, target)


def path_problem(releases: Sequence[Release], running: str, target: Release) -> Optional[str]:
    """One sentence when ``running`` cannot upgrade to ``target`` directly; None when it can, or runs it already.

    A target older than what runs is a return, not an upgrade path, and is left to the rollback's own checks.
    """
    if running == target.version or version_key(running) > version_key(target.version) or _direct(target, running):
        return None
    chain = upgrade_chain(releases, running, target)
    if chain:
        return f"{running} cannot upgrade directly to {target.version}; upgrade to {' then '.join(chain[:-1])} first"
    said = ", ".join(target.upgrades_from or ()) or "nothing (a new installation only)"
    return f"{running} cannot upgrade to {target.version}: no chain of {target.channel} releases leads there ({target.version} upgrades from {said})"


def database_return(releases: Sequence[Release], target: str, applied: Sequence[str]) -> dict[str, Any]:
    """Whether the code of release ``target`` (a version) runs on a database with the migrations ``applied``.

    A migration the target's releases (it and every older one) do not add came with a newer release:
    category A stays backward compatible, category B may break the target's code, and one that no
    manifest names cannot be judged. The live schema version is that of the newest release whose
    migrations, and those of every older release, are all applied (None when no manifest says one).
    """
    known = {m.id for release in releases if version_key(release.version) <= version_key(target) for m in release.migrations}
    added_by = {m.id: (m, release.version) for release in sorted(releases, key=lambda r: version_key(r.version)) for m in release.migrations}
    breaking, unknown = [], []
    for migration_id in sorted(set(applied) - known):
        if migration_id not in added_by:
            unknown.append(migration_id)
        elif added_by[migration_id][0].category == "B":
            migration, version = added_by[migration_id]
            breaking.append({"id": migration.id, "name": migration.name, "release": version})
    # A release's schema is reached when its migrations and those of every older release are applied.
    done, needed, live = set(applied), set[str](), None
    for release in sorted(releases, key=lambda r: version_key(r.version)):
        needed.update(m.id for m in release.migrations)
        if needed <= done and release.schema_version is not None:
            live = release.schema_version
    return {
        "compatible": not breaking and not unknown,
        "breaking": breaking,
        "unknown": unknown,
        "live_schema_version": live,
    }
