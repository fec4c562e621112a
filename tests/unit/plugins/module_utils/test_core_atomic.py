# SPDX-License-Identifier: GPL-3.0-or-later
"""The one atomic file writer, on real files: whole files, their mode, and nothing left behind by a failure."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_json, write_text
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError


def test_a_file_is_replaced_whole_with_its_mode_and_its_directory_made(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "job.json"
    write_json(str(path), {"b": 1, "a": "é"}, 0o600, sync_directory=True)
    assert path.read_text(encoding="utf-8") == '{\n  "a": "é",\n  "b": 1\n}\n'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    write_json(str(path), [1, 2], indent=None)
    assert json.loads(path.read_text()) == [1, 2] and path.read_text() == "[1, 2]\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(path.parent)) == ["job.json"]  # no temporary file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    target.mkdir()  # a directory where the file goes: the rename fails
    with pytest.raises(StellaOpsError) as raised:
        write_text(str(target), "# report\n", what="run report")
    assert str(raised.value) == f"run report: cannot write {target}: Is a directory."
    assert os.listdir(tmp_path) == ["report.md"] and target.is_dir()
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a directory")
    with pytest.raises(StellaOpsError, match=rf"^Cannot write {blocked}/x\.json: File exists\.$"):
        write_json(str(blocked / "x.json"), {})
    assert blocked.read_text() == "a file, not a directory"
