#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: channel_promote
short_description: Promote a release to a channel, mirror its digests into the channel's Helm values and compose files
description:
  - The runbook's channel promotion workflow, on the controller. Validates the release manifest O(manifest), rewrites every
    file of O(targets) (the channel's Helm values and compose profiles) so that each image of a repository the release pins
    carries the release's digest, and the release the file names (C(x-release), C(global.release)) and its header comment follow.
  - Files are rewritten as text, so comments and layout stay. The rewritten files are checked for channel alignment before
    anything is written; a file that would not align fails the task and nothing is written.
  - "With O(commit=true) the files are committed in the git repository O(repo) with the message C(deploy: promote <version>-<channel>),
    and a stable or airgap promotion is tagged (C(<version>) for stable, C(<version>-airgap) for airgap; an annotated tag).
    A promotion already committed and tagged reports no change. A tag that exists elsewhere is never moved."
  - "The commit holds the files the promotion rewrote and nothing else (C(git commit --only)): other files of O(repo) that are
    modified or staged stay as they are, uncommitted. A target with changes of its own (modified, staged, untracked or ignored)
    is refused, since they would be committed as part of the release; commit or discard them first."
  - "Every refusal (a target with local changes, a target outside O(repo), a tag on another commit, no git identity) comes
    before anything is written: a refused promotion leaves the files, the index, HEAD and the tags as they were."
  - Check mode goes through the same checks and refusals and reports the same C(changed), files and tag as the real run,
    with the files as diffs; it writes, commits and tags nothing.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - One diff per file that changes.
  idempotent:
    support: full
options:
  manifest:
    description: The release manifest to promote (C(deploy/releases/<version>-<channel>.yaml)).
    type: path
    required: true
  targets:
    description: The channel's Helm values files and compose profiles.
    type: list
    elements: path
    required: true
  strict:
    description: Validate the manifest with the strict schema (every image pinned by digest).
    type: bool
    default: true
  ignore_repos:
    description: Repositories the release does not pin (auxiliary services such as C(nats)).
    type: list
    elements: str
    default: [nats]
  commit:
    description:
      - Commit the files the promotion rewrites (and tag stable and airgap promotions) in O(repo).
      - The targets must be committed as they are in O(repo) (no local changes); other files of O(repo) are not committed.
    type: bool
    default: false
  repo:
    description: The git work tree the files belong to. Required with O(commit=true).
    type: path
requirements:
  - git, with a committer identity configured, for O(commit=true).
"""

EXAMPLES = r"""
- name: Promote 2025.10.0 to edge and commit
  stellaops.deploy.channel_promote:
    manifest: deploy/releases/2025.10.0-edge.yaml
    targets:
      - deploy/helm/stellaops/values-dev.yaml
      - deploy/compose/docker-compose.dev.yaml
    commit: true
    repo: "{{ playbook_dir }}/.."
"""

RETURN = r"""
release_id:
  description: The release promoted.
  returned: always
  type: str
  sample: 2025.10.0-stable
files:
  description: Targets whose content changes (or changed).
  returned: always
  type: list
  elements: str
commit:
  description: The commit made (null when nothing was committed).
  returned: always
  type: str
tag:
  description: The tag of the promotion (null for edge, or without O(commit)).
  returned: always
  type: str
  sample: 2025.10.0
alignment:
  description: The channel alignment report of the promoted files (aligned, summary, findings).
  returned: always
  type: dict
"""

import os
import tempfile
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.release.alignment import check_alignment
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import load_manifest, read_text
from ansible_collections.stellaops.deploy.plugins.module_utils.release.promotion import Git, declared_release_id, mirror, tag_name


def promote(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    if p["commit"] and not p["repo"]:
        raise StellaOpsError("channel_promote: field repo must name the git work tree when commit is true.")
    release = load_manifest(p["manifest"], strict=p["strict"])
    before = {path: read_text(path, "promotion target") for path in p["targets"]}
    after = {path: mirror(text, release, declared_release_id(text)) for path, text in before.items()}
    unnamed = [path for path, text in after.items() if declared_release_id(text) != release.release_id]
    if unnamed:
        raise StellaOpsError(f"{unnamed[0]}: field x-release or global.release must name the release (version and channel); nothing was written.")
    # Alignment of the files as they will be, checked before any is written.
    with tempfile.TemporaryDirectory() as scratch:
        staged: dict[str, str] = {}
        for index, (path, text) in enumerate(after.items()):
            staged_path = os.path.join(scratch, f"{index}-{os.path.basename(path)}")
            with open(staged_path, "w", encoding="utf-8") as handle:
                handle.write(text)
            staged[staged_path] = path
        checked = check_alignment(release, list(staged), ignore_repos=p["ignore_repos"])
        report = checked.to_dict()
    if not report["aligned"]:
        # The first blocking finding, named by the file it is about (not by its staged copy).
        first = next(f for f in checked.findings if f.blocking)
        raise StellaOpsError(
            f"The promoted files would not align with {release.release_id}: {staged.get(first.target, first.target)}: "
            f"{first.service or first.repository}: {first.reason} (expected {first.expected or 'nothing'}, found {first.found or 'nothing'}); "
            "nothing was written."
        )
    changed_files = [path for path in p["targets"] if before[path] != after[path]]
    result: dict[str, Any] = {"release_id": release.release_id, "files": changed_files, "commit": None, "tag": None, "alignment": report}
    result["diff"] = [{"before_header": path, "after_header": path, "before": before[path], "after": after[path]} for path in changed_files]
    tag = tag_name(release) if p["commit"] else None
    git = Git(module) if p["commit"] else None
    # Every refusal comes before anything is written, so that a refused promotion leaves the work tree,
    # the index, HEAD and the tags as they were; check mode goes through the same refusals.
    top, relative, tag_at = _refuse_before_writing(git, p["repo"], p["targets"], changed_files, tag) if git else ("", {}, None)
    if not module.check_mode:
        for path in changed_files:
            module.atomic_move(_write_beside(path, after[path]), path)
    changed = bool(changed_files)
    if git:
        message = f"deploy: promote {release.release_id}"
        if changed_files and not module.check_mode:
            result["commit"] = git.commit(top, [relative[path] for path in changed_files], message)
        if tag:
            result["tag"] = tag
            if tag_at is None:
                changed = True
                if not module.check_mode:
                    git.tag(top, tag, message)
    result["changed"] = changed
    return result


def _refuse_before_writing(git: Git, repo: str, targets: list[str], changed_files: list[str], tag: Optional[str]) -> tuple[str, dict[str, str], Optional[str]]:
    """The work tree's top directory, each target's path in it and the commit ``tag`` is on; fails when the promotion cannot be committed."""
    top = git.top_level(repo)
    relative = {path: os.path.relpath(os.path.realpath(path), top) for path in targets}
    outside = [path for path, rel in relative.items() if rel == os.pardir or rel.startswith(os.pardir + os.sep)]
    if outside:
        raise StellaOpsError(f"targets: {outside[0]} is not in the git work tree {top} of repo; nothing was written.")
    # The promotion commit holds the promotion's rewrite and nothing else: a target with changes of its own
    # would have them committed as the release, so it is refused (other files of the repository are left alone).
    local = git.local_changes(top, list(relative.values()))
    if local:
        named = next((path for path, rel in relative.items() if rel in local), local[0])
        raise StellaOpsError(
            f"{named} has changes that are not committed (modified, staged, untracked or ignored); "
            "commit or discard them before promoting, nothing was written."
        )
    git.check_identity(top)
    tag_at = git.tag_target(top, tag) if tag else None
    # a tag is never moved: it may only be on HEAD already, with nothing left to commit (promoted before)
    if tag_at is not None and (changed_files or tag_at != git.head(top)):
        raise StellaOpsError(f"Tag {tag} already exists on commit {tag_at[:12]}; a promotion does not move a tag, nothing was written.")
    return top, relative, tag_at


def _write_beside(path: str, text: str) -> str:
    """A temporary file in the target's directory with the new text and the target's mode."""
    fd, temp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), prefix=".promote-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temp, os.stat(path).st_mode & 0o7777)
    return temp


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "manifest": {"type": "path", "required": True},
            "targets": {"type": "list", "elements": "path", "required": True},
            "strict": {"type": "bool", "default": True},
            "ignore_repos": {"type": "list", "elements": "str", "default": ["nats"]},
            "commit": {"type": "bool", "default": False},
            "repo": {"type": "path"},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**promote(module))
    except StellaOpsError as error:
        module.fail_json(msg=str(error))


if __name__ == "__main__":
    main()
