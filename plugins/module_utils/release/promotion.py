# SPDX-License-Identifier: GPL-3.0-or-later
"""Channel promotion (runbook section 5): mirror a release's digests into the channel's deployment files.

Files are rewritten as text, line by line, so comments and layout stay: an ``image:`` line of a
repository the release pins gets the release's image (repository, tag, digest); a Helm mapping
(``repository:`` then ``digest:``/``tag:`` lines) gets the digest; the release that the file names
(``x-release`` or ``global.release``: version and channel) and its header comment follow. ``Git``
commits the files with ``deploy: promote <version>-<channel>`` and tags stable and airgap promotions.
"""

from __future__ import annotations

import re
from typing import Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.runner import ToolRunner
from .manifest import Release

_IMAGE_LINE = re.compile(r"^(?P<lead>\s*(?:-\s*)?image:\s*)(?P<quote>[\"']?)(?P<ref>[^\s\"'#]+)(?P=quote)(?P<rest>.*)$")
_KEY_LINE = re.compile(r"^(?P<lead>\s*)(?P<key>repository|digest|tag|version|channel):\s*(?P<quote>[\"']?)(?P<value>[^\s\"'#]*)(?P=quote)(?P<rest>.*)$")
_RELEASE_BLOCK = re.compile(r"^\s*(x-release|release):\s*$")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def _repository(ref: str) -> str:
    """The repository of an image reference (without tag and digest)."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def mirror(text: str, release: Release, previous_release_id: Optional[str] = None) -> str:
    """``text`` with every pinned image of a release repository set to the release's, and the release it names."""
    by_repository = {c.repository: c for c in release.images() if c.digest}
    lines = text.split("\n")
    in_release_block = False
    release_indent = -1
    mapping_repository: Optional[str] = None
    mapping_indent = -1
    for index, line in enumerate(lines):
        image = _IMAGE_LINE.match(line)
        if image and image.group("ref") != "" and _repository(image.group("ref")) in by_repository and _DIGEST.search(image.group("ref")):
            component = by_repository[_repository(image.group("ref"))]
            lines[index] = f"{image.group('lead')}{image.group('quote')}{component.image}{image.group('quote')}{image.group('rest')}"
            continue
        stripped = len(line) - len(line.lstrip())
        if _RELEASE_BLOCK.match(line):
            in_release_block, release_indent = True, stripped
            continue
        if line.strip() and stripped <= release_indent:
            in_release_block, release_indent = False, -1
        key = _KEY_LINE.match(line)
        if not key:
            continue
        name, quote = key.group("key"), key.group("quote")
        if in_release_block and name in ("version", "channel"):
            value = release.version if name == "version" else release.channel
            lines[index] = f"{key.group('lead')}{name}: {quote}{value}{quote}{key.group('rest')}"
        elif name == "repository":
            mapping_repository = key.group("value") if key.group("value") in by_repository else None
            mapping_indent = len(key.group("lead"))
        elif mapping_repository and len(key.group("lead")) == mapping_indent and name == "digest" and key.group("value").startswith("sha256:"):
            lines[index] = f"{key.group('lead')}digest: {quote}{by_repository[mapping_repository].digest}{quote}{key.group('rest')}"
    result = "\n".join(lines)
    if previous_release_id and previous_release_id != release.release_id:
        # header comments name the release too ("release 2025.09.2-stable", "deploy/releases/2025.09.2-stable.yaml")
        result = "\n".join(line.replace(previous_release_id, release.release_id) if line.lstrip().startswith("#") else line for line in result.split("\n"))
    return result


def declared_release_id(text: str) -> Optional[str]:
    """``<version>-<channel>`` of the release block of a deployment file, or None."""
    version = channel = None
    in_block, indent = False, -1
    for line in text.split("\n"):
        stripped = len(line) - len(line.lstrip())
        if _RELEASE_BLOCK.match(line):
            in_block, indent = True, stripped
            continue
        if in_block and line.strip() and stripped <= indent:
            break
        key = _KEY_LINE.match(line) if in_block else None
        if key and key.group("key") == "version":
            version = key.group("value")
        elif key and key.group("key") == "channel":
            channel = key.group("value")
    return f"{version}-{channel}" if version and channel else None


def tag_name(release: Release) -> Optional[str]:
    """The tag of a promotion: the version for stable (``git checkout 2025.09.2``), ``<version>-airgap`` for airgap, none for edge."""
    if release.channel == "stable":
        return release.version
    if release.channel == "airgap":
        return release.release_id
    return None


class Git(ToolRunner):
    binary = "git"

    def in_repo(self, repo: str, args: Sequence[str], *, what: str, check: bool = True) -> tuple[int, str, str]:
        return self.run(["-C", repo, *args], what=what, check=check)

    def tag_target(self, repo: str, tag: str) -> Optional[str]:
        rc, out, _err = self.in_repo(repo, ["rev-parse", "--verify", "--quiet", f"refs/tags/{tag}^{{commit}}"], what="git rev-parse", check=False)
        return out.strip() if rc == 0 else None

    def head(self, repo: str) -> str:
        return self.in_repo(repo, ["rev-parse", "HEAD"], what="git rev-parse HEAD")[1].strip()

    def top_level(self, repo: str) -> str:
        """The top directory of the work tree ``repo`` is in; porcelain output names paths relative to it."""
        rc, out, err = self.in_repo(repo, ["rev-parse", "--show-toplevel"], what="git rev-parse", check=False)
        if rc != 0 or not out.strip():
            reason = (err.strip().splitlines() or ["no work tree"])[-1]
            raise StellaOpsError(f"repo: {repo} is not a git work tree ({reason}); nothing was written.")
        return out.strip()

    def local_changes(self, repo: str, paths: Sequence[str]) -> list[str]:
        """Of ``paths``, those that differ from HEAD in the index or the work tree, or are untracked or ignored."""
        out = self.in_repo(repo, ["status", "--porcelain", "--ignored", "--untracked-files=all", "--", *paths], what="git status")[1]
        return [line[3:] for line in out.splitlines() if line.strip()]

    def check_identity(self, repo: str) -> None:
        """Fail, before anything is written, when git could not sign a commit or tag (no author or committer identity)."""
        for variable in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT"):
            rc, _out, err = self.in_repo(repo, ["var", variable], what="git var", check=False)
            if rc != 0:
                reason = (err.strip().splitlines() or [f"exit code {rc}"])[-1]
                raise StellaOpsError(f"repo: git in {repo} has no {variable} ({reason}); set user.name and user.email, nothing was written.")

    def commit(self, repo: str, paths: Sequence[str], message: str) -> str:
        # --only: the commit holds these paths as they are in the work tree, never what else is staged
        self.in_repo(repo, ["commit", "--quiet", "--only", "--message", message, "--", *paths], what="git commit")
        return self.head(repo)

    def tag(self, repo: str, tag: str, message: str) -> None:
        existing = self.tag_target(repo, tag)
        if existing is not None:
            raise StellaOpsError(f"Tag {tag} already exists on commit {existing[:12]}; a promotion does not move a tag.")
        self.in_repo(repo, ["tag", "--annotate", tag, "--message", message], what="git tag")
