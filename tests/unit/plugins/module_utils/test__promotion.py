# SPDX-License-Identifier: GPL-3.0-or-later
"""Promotion rewrites the channel's real deployment files as text: digests, the release they name, comments kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils._alignment import check_alignment
from ansible_collections.stellaops.deploy.plugins.module_utils._manifest import load_manifest
from ansible_collections.stellaops.deploy.plugins.module_utils._promotion import declared_release_id, mirror, tag_name

ROOT = Path(__file__).resolve().parents[4]
DEPLOY = ROOT / "deploy"
STABLE_FILES = ["compose/docker-compose.stage.yaml", "compose/docker-compose.prod.yaml", "helm/stellaops/values-stage.yaml", "helm/stellaops/values-prod.yaml"]


@pytest.mark.parametrize("relative", STABLE_FILES)
def test_mirror_aligns_a_stable_file_with_another_release(relative: str, tmp_path: Path) -> None:
    release = load_manifest(str(DEPLOY / "releases" / "2025.09.1-stable.yaml"), strict=True)
    before = (DEPLOY / relative).read_text()
    assert declared_release_id(before) == "2025.09.2-stable"
    after = mirror(before, release, declared_release_id(before))
    target = tmp_path / Path(relative).name
    target.write_text(after)
    assert check_alignment(release, [str(target)], ignore_repos=["nats"]).aligned
    assert declared_release_id(after) == "2025.09.1-stable"
    assert "2025.09.2" not in after  # header comments follow the release too
    # only image, digest, release and comment lines differ; the structure is unchanged
    assert len(before.split("\n")) == len(after.split("\n"))
    changed = [(a, b) for a, b in zip(before.split("\n"), after.split("\n"), strict=True) if a != b]
    assert changed and all(b.lstrip().startswith(("image:", "digest:", "version:", "#")) for _a, b in changed)
    assert yaml.safe_load(after).keys() == yaml.safe_load(before).keys()


def test_mirror_is_idempotent_and_leaves_unpinned_repositories() -> None:
    release = load_manifest(str(DEPLOY / "releases" / "2025.09.2-stable.yaml"), strict=True)
    text = (DEPLOY / "compose" / "docker-compose.prod.yaml").read_text()
    assert mirror(text, release, declared_release_id(text)) == text
    assert "nats:2.10.22-alpine" in mirror(text, release)


@pytest.mark.parametrize(("manifest", "tag"), [("2025.09.2-stable", "2025.09.2"), ("2025.09.2-airgap", "2025.09.2-airgap"), ("2025.10.0-edge", None)])
def test_stable_and_airgap_promotions_are_tagged(manifest: str, tag: str | None) -> None:
    assert tag_name(load_manifest(str(DEPLOY / "releases" / f"{manifest}.yaml"))) == tag
