# SPDX-License-Identifier: GPL-3.0-or-later
"""Upgrade paths: a direct upgrade, the shortest chain through the channel's releases, or one sentence why none."""

from __future__ import annotations

from typing import Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import Migration, Release
from ansible_collections.stellaops.deploy.plugins.module_utils.release.paths import database_return, hops, path_problem, upgrade_chain, version_of


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


def with_database(version: str, schema: int, *migrations: tuple[str, str]) -> Release:
    """A release of schema version ``schema`` that adds ``migrations`` as (id, category)."""
    return Release(
        version=version, channel="stable", date=None, components=(), infrastructure=(), source=f"{version}-stable.yaml",
        schema_version=schema, min_schema_version=1, migrations=tuple(Migration(id=i, category=c, name=f"m{i}") for i, c in migrations),
    )  # fmt: skip


# The sandbox's story: 2025.10.0 adds a category A migration, 2025.11.0 a category B one, 2025.11.1 none.
DATABASE = [
    with_database("2025.09.0", 1, ("1", "A")),
    with_database("2025.10.0", 2, ("2", "A")),
    with_database("2025.11.0", 3, ("3", "B")),
    with_database("2025.11.1", 3),
]


@pytest.mark.parametrize(
    ("target", "applied", "compatible", "breaking", "unknown", "live"),
    [
        ("2025.09.0", ["1", "2"], True, [], [], 2),  # across a category A migration: the old code runs on
        ("2025.10.0", ["1", "2", "3"], False, [{"id": "3", "name": "m3", "release": "2025.11.0"}], [], 3),
        ("2025.09.0", ["1", "2", "3"], False, [{"id": "3", "name": "m3", "release": "2025.11.0"}], [], 3),
        ("2025.11.0", ["1", "2", "3"], True, [], [], 3),  # the B migration is the target's own
        ("2025.10.0", ["1", "2"], True, [], [], 2),  # 2025.11.1 adds nothing, yet needs 2025.11.0's B migration
        ("2025.10.0", ["1", "2", "9"], False, [], ["9"], 2),  # no manifest names 9: it cannot be judged
        ("2025.10.0", [], True, [], [], None),
    ],
)
def test_a_return_is_safe_for_the_database_only_without_newer_category_b_or_unknown_migrations(
    target: str, applied: list[str], compatible: bool, breaking: list[dict[str, str]], unknown: list[str], live: Optional[int]
) -> None:
    assert database_return(DATABASE, target, applied) == {"compatible": compatible, "breaking": breaking, "unknown": unknown, "live_schema_version": live}
