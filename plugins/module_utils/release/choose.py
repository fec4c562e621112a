# SPDX-License-Identifier: GPL-3.0-or-later
"""The release_manifest task: its options and the choice of one manifest.

Shared by the module (``plugins/modules/release_manifest.py``, where its documentation lives) and the
action plugin of the same name, which runs it in the playbook's own process: the manifests are files
on the controller, and a module run there would start a second Python for every lookup.
"""

from __future__ import annotations

from typing import Any

from .manifest import CHANNELS, find_manifest, list_manifests, load_manifest, newest_manifest, version_key
from .paths import path_problem

ARGUMENT_SPEC: dict[str, Any] = {
    "path": {"type": "path"},
    "directory": {"type": "path"},
    "version": {"type": "str"},
    "channel": {"type": "str", "choices": list(CHANNELS)},
    "strict": {"type": "bool", "default": False},
    "running": {"type": "str"},
}
CONSTRAINTS: dict[str, Any] = {
    "mutually_exclusive": [("path", "directory"), ("path", "version")],
    "required_one_of": [("path", "directory")],
    "required_by": {"directory": ("channel",), "version": ("directory",), "running": ("directory",)},
}


def choose_release(params: dict[str, Any]) -> dict[str, Any]:
    """The result of the task for validated ``params``: the normalized release and its pinned digests."""
    if params["path"]:
        release = load_manifest(params["path"], strict=params["strict"], channel=params["channel"])
    elif params["version"]:
        release = find_manifest(params["directory"], params["channel"], params["version"], strict=params["strict"])
    else:
        release = newest_manifest(params["directory"], params["channel"], strict=params["strict"])
    digests = {component.name: component.digest for component in release.images() if component.digest}
    result = {"changed": False, "release": release.to_dict(), "digests": digests}
    if params.get("running"):
        # the release chosen is one of them: running requires the directory it was chosen from
        releases = list_manifests(params["directory"], release.channel, strict=params["strict"])
        result["path_problem"] = path_problem(releases, params["running"], release)
        # an older release is a return (judged by the rollback), not an upgrade path
        result["older_than_running"] = version_key(release.version) < version_key(params["running"])
    return result
