# SPDX-License-Identifier: GPL-3.0-or-later
"""Upgrade paths: a direct upgrade, the shortest chain through the channel's releases, or one sentence why none."""

from __future__ import annotations

from typing import Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import Release
from ansible_collections.stellaops.deploy.plugins.module_utils.release.paths import hops, path_problem, upgrade_chain, version_of


def release(version: str, upgrades_from: Optional[list[str]], channel: str = "stable") -> Release:
    return Release(
        version=version, channel=channel, date=None, components=(), infrastructure=(), source=f"{version}-{channel}.yaml",
        upgrades_from=None if upgrades_from is None else tuple(upgrades_from),
    )  # fmt: skip


# 2025.09.0 -> 2025.10.0 -> 2025.11.0 -> 2025.12.0, and 2025.10.0 -> 2025.12.0 directly; 2025.08.0 installs only.
CHANNEL = [
    release("2025.08.0", []),
    release("2025.09.0", ["2025.08.0"]),
    release("2025.10.0", ["2025.09.0"]),
    release("2025.11.0", ["2025.10.0"]),
    release("2025.12.0", ["2025.10.0", "2025.11.0"]),
]
BY_VERSION = {r.version: r for r in CHANNEL}


@pytest.mark.parametrize(
    ("running", "target", "chain"),
    [
        ("2025.09.0", "2025.10.0", ["2025.10.0"]),
        ("2025.09.0", "2025.11.0", ["2025.10.0", "2025.11.0"]),
        ("2025.09.0", "2025.12.0", ["2025.10.0", "2025.12.0"]),  # the shortest, not through 2025.11.0
        ("2025.08.0", "2025.12.0", ["2025.09.0", "2025.10.0", "2025.12.0"]),
        ("2025.07.0", "2025.12.0", None),  # nothing upgrades from 2025.07.0
    ],
)
def test_the_shortest_chain_through_the_channel(running: str, target: str, chain: Optional[list[str]]) -> None:
    assert upgrade_chain(CHANNEL, running, BY_VERSION[target]) == chain


def test_a_direct_upgrade_or_the_running_version_is_no_problem() -> None:
    assert path_problem(CHANNEL, "2025.10.0", BY_VERSION["2025.12.0"]) is None
    assert path_problem(CHANNEL, "2025.12.0", BY_VERSION["2025.12.0"]) is None
    # going back is a rollback's question, not an upgrade path's
    assert path_problem(CHANNEL, "2025.12.0", BY_VERSION["2025.09.0"]) is None


def test_an_unsupported_path_names_the_chain_that_works() -> None:
    assert path_problem(CHANNEL, "2025.09.0", BY_VERSION["2025.11.0"]) == (
        "2025.09.0 cannot upgrade directly to 2025.11.0; upgrade to 2025.10.0 first"
    )
    assert path_problem(CHANNEL, "2025.08.0", BY_VERSION["2025.12.0"]) == (
        "2025.08.0 cannot upgrade directly to 2025.12.0; upgrade to 2025.09.0 then 2025.10.0 first"
    )
    assert path_problem(CHANNEL, "2025.07.0", BY_VERSION["2025.12.0"]) == (
        "2025.07.0 cannot upgrade to 2025.12.0: no chain of stable releases leads there (2025.12.0 upgrades from 2025.10.0, 2025.11.0)"
    )
    first = release("2025.08.0", [])
    assert path_problem([first], "2025.01.0", first) == (
        "2025.01.0 cannot upgrade to 2025.08.0: no chain of stable releases leads there (2025.08.0 upgrades from nothing (a new installation only))"
    )


@pytest.mark.parametrize(
    ("running", "target", "walk"),
    [
        ("2025.09.0", "2025.11.0", ["2025.10.0", "2025.11.0"]),
        ("2025.10.0", "2025.12.0", ["2025.12.0"]),  # a direct upgrade is one hop
        ("2025.12.0", "2025.12.0", ["2025.12.0"]),  # the running release: one hop that changes nothing
        ("2025.12.0", "2025.09.0", ["2025.09.0"]),  # going back is left to the rollback's own checks
        (None, "2025.11.0", ["2025.11.0"]),  # nothing known runs: a new installation
        ("2025.07.0", "2025.12.0", None),
    ],
)
def test_the_hops_of_an_upgrade_along_the_path(running: Optional[str], target: str, walk: Optional[list[str]]) -> None:
    assert hops(CHANNEL, running, BY_VERSION[target]) == walk


def test_a_release_that_does_not_say_takes_any_older_version() -> None:
    edge = [release("2025.10.0", None, "edge"), release("2025.11.0", None, "edge")]
    assert path_problem(edge, "2025.01.0", edge[1]) is None
    assert upgrade_chain(edge, "2025.01.0", edge[1]) == ["2025.11.0"]


@pytest.mark.parametrize(
    ("release_id", "version"),
    [("2025.10.0-stable", "2025.10.0"), ("2025.10.0-rc.1-airgap", "2025.10.0-rc.1"), ("2025.10.0", None), ("-edge", None), ("", None)],
)
def test_the_version_of_a_release_id(release_id: str, version: Optional[str]) -> None:
    assert version_of(release_id) == version
