# SPDX-License-Identifier: GPL-3.0-or-later
"""channel_promote run as Ansible runs it: a refused promotion is one sentence naming the file, and nothing is written."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from module_runner import ROOT, failed_with, run_module


def test_a_promotion_that_would_not_align_is_refused_in_one_sentence(tmp_path: Path) -> None:
    target = tmp_path / "docker-compose.stage.yaml"
    shutil.copy(ROOT / "deploy" / "compose" / "docker-compose.stage.yaml", target)
    # A release image by tag, not by digest: promotion rewrites digests only, and the stable channel requires them.
    text = target.read_text()
    pinned = next(line for line in text.splitlines() if "stellaops/authority@sha256:" in line)
    target.write_text(text.replace(pinned, pinned.split("@sha256:")[0] + ":2025.09.2"))
    before = target.read_text()
    result = run_module("channel_promote", {"manifest": str(ROOT / "deploy" / "releases" / "2025.09.2-stable.yaml"), "targets": [str(target)]}, tmp_path)
    message = failed_with(result, "The promoted files would not align with 2025.09.2-stable: ", f"{target}: authority: ", "nothing was written.")
    assert "KeyError" not in message and "/tmp/tmp" not in message.replace(str(tmp_path), "")
    assert target.read_text() == before


# --------------------------------------------------------------------------- commit=true, in a real git repository

STABLE_TARGETS = ["compose/docker-compose.prod.yaml", "helm/stellaops/values-prod.yaml"]
PREVIOUS_STABLE = str(ROOT / "deploy" / "releases" / "2025.09.1-stable.yaml")  # the targets name 2025.09.2-stable


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True).stdout


def _repository(tmp_path: Path) -> Path:
    """A deployment repository with the stable channel's prod files committed (they name 2025.09.2-stable)."""
    repo = tmp_path / "repo"
    for relative in STABLE_TARGETS:
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "deploy" / relative, repo / relative)
    (repo / "README.md").write_text("deployment repository\n")
    _git(repo.parent, "init", "--quiet", str(repo))
    _git(repo, "config", "user.name", "Release engineer")
    _git(repo, "config", "user.email", "release@example.invalid")
    _git(repo, "add", "--all")
    _git(repo, "commit", "--quiet", "--message", "initial")
    return repo


def _promote(repo: Path, tmp_path: Path, *, check_mode: bool = False, manifest: str = PREVIOUS_STABLE) -> dict[str, Any]:
    args = {"manifest": manifest, "targets": [str(repo / relative) for relative in STABLE_TARGETS], "commit": True, "repo": str(repo)}
    return run_module("channel_promote", args, tmp_path, check_mode=check_mode)


def _snapshot(repo: Path) -> dict[str, Any]:
    """HEAD, tags, the index and the work tree (every file's bytes) of a repository."""
    files = {str(path.relative_to(repo)): path.read_bytes() for path in repo.rglob("*") if path.is_file() and ".git" not in path.relative_to(repo).parts}
    return {
        "head": _git(repo, "rev-parse", "HEAD"),
        "tags": _git(repo, "tag", "--list"),
        "index": _git(repo, "ls-files", "--stage"),
        "status": _git(repo, "status", "--porcelain", "--untracked-files=all"),
        "files": files,
    }


def test_an_existing_tag_is_refused_before_anything_is_written_or_committed(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    _git(repo, "tag", "--annotate", "2025.09.1", "--message", "somebody else's 2025.09.1")
    before = _snapshot(repo)
    result = _promote(repo, tmp_path)
    failed_with(result, "Tag 2025.09.1 already exists on commit ", "a promotion does not move a tag")
    assert _snapshot(repo) == before


@pytest.mark.parametrize("local_change", ["modified", "staged", "untracked"])
def test_a_target_with_local_changes_is_refused_before_anything_is_written(local_change: str, tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    target = repo / STABLE_TARGETS[0]
    target.write_text(target.read_text() + "# a local note that is not part of the promotion\n")
    if local_change == "staged":
        _git(repo, "add", STABLE_TARGETS[0])
    elif local_change == "untracked":
        _git(repo, "rm", "--quiet", "--cached", STABLE_TARGETS[0])
        _git(repo, "commit", "--quiet", "--message", "not tracked any more")
    before = _snapshot(repo)
    result = _promote(repo, tmp_path)
    failed_with(result, f"{repo / STABLE_TARGETS[0]} has changes that are not committed", "nothing was written")
    assert _snapshot(repo) == before


def test_a_missing_git_identity_is_refused_before_anything_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = _repository(tmp_path)
    _git(repo, "config", "--unset", "user.name")
    _git(repo, "config", "--unset", "user.email")
    _git(repo, "config", "user.useConfigOnly", "true")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    before = _snapshot(repo)
    result = _promote(repo, tmp_path)
    failed_with(result, f"repo: git in {repo} has no GIT_AUTHOR_IDENT", "nothing was written")
    assert _snapshot(repo) == before


def test_a_target_outside_the_repository_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    outside = tmp_path / "docker-compose.prod.yaml"
    shutil.copy(repo / STABLE_TARGETS[0], outside)
    before = _snapshot(repo), outside.read_bytes()
    args = {"manifest": PREVIOUS_STABLE, "targets": [str(outside)], "commit": True, "repo": str(repo)}
    result = run_module("channel_promote", args, tmp_path)
    failed_with(result, f"targets: {outside} is not in the git work tree {repo} of repo", "nothing was written")
    assert (_snapshot(repo), outside.read_bytes()) == before


def test_the_promotion_commit_holds_only_the_files_it_wrote(tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    # another engineer's work in progress: a staged change, an unstaged one and a new file
    (repo / "README.md").write_text("deployment repository, staged edit\n")
    _git(repo, "add", "README.md")
    (repo / "README.md").write_text("deployment repository, staged edit, then unstaged edit\n")
    (repo / "NOTES.md").write_text("untracked\n")
    result = _promote(repo, tmp_path)
    assert result.get("failed") is not True, result
    assert result["changed"] and result["tag"] == "2025.09.1"
    assert sorted(_git(repo, "show", "--name-only", "--format=", "HEAD").split()) == sorted(STABLE_TARGETS)
    assert _git(repo, "log", "-1", "--format=%s").strip() == "deploy: promote 2025.09.1-stable"
    # the work in progress is as it was: still staged, still modified, still untracked
    assert _git(repo, "diff", "--cached", "--name-only").split() == ["README.md"]
    assert _git(repo, "show", ":README.md") == "deployment repository, staged edit\n"
    assert (repo / "README.md").read_text() == "deployment repository, staged edit, then unstaged edit\n"
    assert "?? NOTES.md" in _git(repo, "status", "--porcelain")
    assert _git(repo, "rev-parse", "2025.09.1^{commit}") == _git(repo, "rev-parse", "HEAD")


def _prepare(repo: Path, how: str) -> str:
    """Put the repository in the state ``how`` names; the manifest to promote."""
    if how == "promoted before, then a target changed by hand":
        # the files already name 2025.09.2-stable and it is tagged: only the hand edit differs, and it is no promotion
        _git(repo, "tag", "--annotate", "2025.09.2", "--message", "deploy: promote 2025.09.2-stable")
        target = repo / STABLE_TARGETS[1]
        target.write_text(target.read_text() + "# hand edit\n")
        return str(ROOT / "deploy" / "releases" / "2025.09.2-stable.yaml")
    if how == "promoted before":
        _git(repo, "tag", "--annotate", "2025.09.2", "--message", "deploy: promote 2025.09.2-stable")
        return str(ROOT / "deploy" / "releases" / "2025.09.2-stable.yaml")
    if how == "tag elsewhere":
        _git(repo, "tag", "2025.09.1", "HEAD")
    elif how == "not a git repository":
        shutil.rmtree(repo / ".git")
    return PREVIOUS_STABLE


@pytest.mark.parametrize("how", ["clean", "promoted before", "promoted before, then a target changed by hand", "tag elsewhere", "not a git repository"])
def test_check_mode_reports_what_the_real_run_does_and_writes_nothing(how: str, tmp_path: Path) -> None:
    repo = _repository(tmp_path)
    manifest = _prepare(repo, how)
    before = {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    checked = _promote(repo, tmp_path, check_mode=True, manifest=manifest)
    assert {str(p.relative_to(repo)): p.read_bytes() for p in repo.rglob("*") if p.is_file()} == before
    ran = _promote(repo, tmp_path, manifest=manifest)
    keys = ("failed", "msg", "changed", "release_id", "files", "tag")
    assert {key: checked.get(key) for key in keys} == {key: ran.get(key) for key in keys}
