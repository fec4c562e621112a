# SPDX-License-Identifier: GPL-3.0-or-later
"""Promotion rewrites the channel's real deployment files as text: digests, the release they name, comments kept."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule
from ansible_collections.stellaops.deploy.plugins.module_utils.release.alignment import check_alignment
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import load_manifest
from ansible_collections.stellaops.deploy.plugins.module_utils.release.promotion import Git, declared_release_id, mirror, tag_name

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


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with two committed files, a.yaml and b.yaml, and *.local ignored."""
    _git(tmp_path, "init", "--quiet", "repo")
    repo = tmp_path / "repo"
    _git(repo, "config", "user.name", "Release engineer")
    _git(repo, "config", "user.email", "release@example.invalid")
    (repo / ".gitignore").write_text("*.local\n")
    (repo / "a.yaml").write_text("a: 1\n")
    (repo / "b.yaml").write_text("b: 1\n")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--message", "initial")
    return repo


def test_local_changes_are_modified_staged_untracked_and_ignored_targets_only(repo: Path) -> None:
    git = Git(LocalModule())
    assert git.local_changes(str(repo), ["a.yaml", "b.yaml", "new.yaml", "x.local"]) == []
    (repo / "a.yaml").write_text("a: 2\n")
    (repo / "b.yaml").write_text("b: 2\n")
    _git(repo, "add", "b.yaml")
    (repo / "new.yaml").write_text("new: 1\n")
    (repo / "x.local").write_text("ignored: 1\n")
    # an ignored target could not be committed: it counts as a local change too
    assert sorted(git.local_changes(str(repo), ["a.yaml", "b.yaml", "new.yaml", "x.local"])) == ["a.yaml", "b.yaml", "new.yaml", "x.local"]
    assert git.local_changes(str(repo), ["b.yaml"]) == ["b.yaml"]


def test_commit_holds_the_named_paths_and_leaves_what_else_is_staged(repo: Path) -> None:
    git = Git(LocalModule())
    (repo / "a.yaml").write_text("a: 2\n")
    (repo / "b.yaml").write_text("b: staged by someone else\n")
    _git(repo, "add", "b.yaml")
    head = git.commit(str(repo), ["a.yaml"], "deploy: promote 2025.09.2-stable")
    assert _git(repo, "show", "--name-only", "--format=", head).split() == ["a.yaml"]
    assert _git(repo, "diff", "--cached", "--name-only").split() == ["b.yaml"]


def test_no_git_identity_is_one_sentence_naming_the_repository(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _git(repo, "config", "--unset", "user.name")
    _git(repo, "config", "--unset", "user.email")
    _git(repo, "config", "user.useConfigOnly", "true")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    with pytest.raises(StellaOpsError, match=r"^repo: git in .*/repo has no GIT_AUTHOR_IDENT \(.*\); set user.name and user.email, nothing was written\.$"):
        Git(LocalModule()).check_identity(str(repo))


def test_a_directory_outside_git_is_not_a_work_tree(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match=r"^repo: .* is not a git work tree \(.*\); nothing was written\.$"):
        Git(LocalModule()).top_level(str(tmp_path))
