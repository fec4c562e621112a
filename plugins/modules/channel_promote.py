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
  - Check mode computes the same files and shows them as diffs; it writes, commits and tags nothing.
version_added: 1.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed when in diff mode.
    support: full
    details:
      - One diff per file that changes.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
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
    description: Commit the files (and tag stable and airgap promotions) in O(repo).
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
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils._alignment import check_alignment
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils._manifest import load_manifest, read_text
from ansible_collections.stellaops.deploy.plugins.module_utils._promotion import Git, declared_release_id, mirror, tag_name


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
    if not module.check_mode:
        for path in changed_files:
            module.atomic_move(_write_beside(path, after[path]), path)
    changed = bool(changed_files)
    if p["commit"]:
        git = Git(module)
        repo = p["repo"]
        relative = [os.path.relpath(os.path.realpath(path), os.path.realpath(repo)) for path in p["targets"]]
        message = f"deploy: promote {release.release_id}"
        pending = changed_files if module.check_mode else git.pending_paths(repo, relative)
        if pending:
            changed = True
            result["commit"] = None if module.check_mode else git.commit(repo, relative, message)
        tag = tag_name(release)
        if tag:
            result["tag"] = tag
            at = git.tag_target(repo, tag)
            if at is None:
                changed = True
                if not module.check_mode:
                    git.tag(repo, tag, message)
            elif not pending and at == git.head(repo):
                pass  # promoted and tagged before
            else:
                raise StellaOpsError(f"Tag {tag} already exists on commit {at[:12]}; a promotion does not move a tag.")
    result["changed"] = changed
    return result


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
