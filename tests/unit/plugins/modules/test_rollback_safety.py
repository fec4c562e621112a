# SPDX-License-Identifier: GPL-3.0-or-later
"""rollback_safety: the decision between a redeploy on the database as it is and a restore first.

The migrations table is read with psql in the integration tests (tests/integration/test_operator_playbooks.py,
on the sandbox's PostgreSQL); here the decision is given the applied ids directly, with real manifests on disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.modules.rollback_safety import decide

# 2025.10.0 adds a category A migration, 2025.11.0 a category B one (as the sandbox's releases do).
RELEASES = {
    "2025.09.0": (1, [("20250901000000", "create_core_tables", "A")]),
    "2025.10.0": (2, [("20251001000000", "add_evidence_index", "A")]),
    "2025.11.0": (3, [("20251101000000", "backfill_scores", "B")]),
}
BEFORE_B = ["20250901000000", "20251001000000"]
WITH_B = [*BEFORE_B, "20251101000000"]


@pytest.fixture()
def releases_dir(tmp_path: Path) -> str:
    for version, (schema, migrations) in RELEASES.items():
        release = {
            "version": version, "channel": "edge", "components": [{"name": "authority", "image": f"registry.example/authority:{version}"}],
            "database": {"schema_version": schema, "min_schema_version": 1, "migrations": [{"id": i, "name": n, "category": c} for i, n, c in migrations]},
        }  # fmt: skip
        (tmp_path / f"{version}-edge.yaml").write_text(yaml.safe_dump({"release": release}))
    return str(tmp_path)


def params(releases_dir: str, *returns_to: str, restore: bool = False) -> dict[str, Any]:
    return {"releases_dir": releases_dir, "returns_to": list(returns_to), "restore_database": restore}


def test_across_a_category_a_migration_the_release_is_redeployed_on_the_database_as_it_is(releases_dir: str) -> None:
    result = decide(params(releases_dir, "2025.09.0-stable"), BEFORE_B)
    assert (result["decision"], result["compatible"], result["breaking"], result["live_schema_version"]) == ("redeploy", True, [], 2)
    assert result["msg"] == "The database (schema 2) suits 2025.09.0-stable: every migration applied since is backward compatible."


def test_across_a_category_b_migration_the_rollback_is_refused_without_the_restore(releases_dir: str) -> None:
    with pytest.raises(StellaOpsError) as refused:
        decide(params(releases_dir, "2025.10.0-stable"), WITH_B)
    assert str(refused.value) == (
        "The database (schema 3) does not suit the rollback: 2025.10.0-stable does not know category B migration(s) 20251101000000"
        " (backfill_scores, 2025.11.0), applied since; its code may not run on it. Nothing was changed: -e compose_rollback_restore_database=true"
        " stops the services, restores the backup set taken before the upgrade, then returns."
    )
    assert refused.value.details["breaking"] == [{"id": "20251101000000", "name": "backfill_scores", "release": "2025.11.0"}]


def test_with_the_restore_chosen_the_decision_is_restore_whatever_the_migrations(releases_dir: str) -> None:
    needed = decide(params(releases_dir, "2025.10.0-stable", restore=True), WITH_B)
    assert (needed["decision"], needed["compatible"]) == ("restore", False)
    assert needed["msg"].startswith("The database (schema 3) needs the restore: 2025.10.0-stable does not know category B migration(s) 20251101000000")
    asked = decide(params(releases_dir, "2025.10.0-stable", restore=True), BEFORE_B)
    assert (asked["decision"], asked["compatible"]) == ("restore", True)


def test_an_applied_migration_that_no_manifest_names_cannot_be_judged(releases_dir: str) -> None:
    with pytest.raises(StellaOpsError, match=r"2025\.10\.0-stable does not know migration\(s\) 20260101000000 that no release manifest names"):
        decide(params(releases_dir, "2025.10.0-stable"), [*BEFORE_B, "20260101000000"])


def test_every_release_returned_to_must_suit_the_database(releases_dir: str) -> None:
    # hosts of one environment returning to different releases: the oldest decides
    with pytest.raises(StellaOpsError, match=r"2025\.10\.0-stable does not know category B"):
        decide(params(releases_dir, "2025.11.0-edge", "2025.10.0-stable"), WITH_B)
    assert decide(params(releases_dir, "2025.11.0-edge"), WITH_B)["decision"] == "redeploy"


def test_a_release_id_that_is_not_one_is_said(releases_dir: str) -> None:
    with pytest.raises(StellaOpsError, match=r"returns_to: 'previous' is neither a release id"):
        decide(params(releases_dir, "previous"), BEFORE_B)
    # a Helm revision says its version (app_version), not its channel
    assert decide(params(releases_dir, "2025.09.0"), BEFORE_B)["decision"] == "redeploy"
