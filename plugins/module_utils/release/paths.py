# SPDX-License-Identifier: GPL-3.0-or-later
"""Upgrade paths: which running versions reach a release directly, and the chain of releases for the others.

A release's ``upgrade.from`` lists the versions that upgrade to it directly. The chain from a running
version to a target is the shortest walk through the releases of the target's channel, each hop a
direct upgrade. A release that does not say ``upgrade.from`` (an edge release, a manifest written
before the field) takes any older version, as before.
"""

from __future__ import annotations

from collections import deque
from typing import Optional, Sequence

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
