# SPDX-License-Identifier: GPL-3.0-or-later
"""compose_lock run as on a host: destinations it cannot write and files that are not regular are one sentence."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from module_runner import ROOT, failed_with, run_module

MANIFEST = str(ROOT / "deploy" / "releases" / "2025.09.2-stable.yaml")
TEMPLATE = """services:
  authority:
  notify:
"""


@pytest.fixture
def template(tmp_path: Path) -> str:
    path = tmp_path / "template.yml"
    path.write_text(TEMPLATE)
    return str(path)


def test_a_lock_is_written(tmp_path: Path, template: str) -> None:
    dest = tmp_path / "locks" / "lock.yml"
    result = run_module("compose_lock", {"manifest": MANIFEST, "template": template, "dest": str(dest)}, tmp_path)
    assert result["changed"] is True and dest.is_file() and result["release_id"] == "2025.09.2-stable"


@pytest.mark.parametrize("where", ["/proc/stellaops/lock.yml", "/proc/version", "file/lock.yml", "file/deeper/lock.yml"])
def test_an_unwritable_destination_is_one_sentence(tmp_path: Path, template: str, where: str) -> None:
    (tmp_path / "file").write_text("a file, not a directory")
    dest = where if where.startswith("/") else str(tmp_path / where)
    result = run_module("compose_lock", {"manifest": MANIFEST, "template": template, "dest": dest}, tmp_path)
    failed_with(result, dest)


@pytest.mark.parametrize("what", ["dest", "template", "manifest"])
def test_a_fifo_is_refused_without_blocking(tmp_path: Path, template: str, what: str) -> None:
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    args = {"manifest": MANIFEST, "template": template, "dest": str(tmp_path / "lock.yml"), what: str(fifo)}
    failed_with(run_module("compose_lock", args, tmp_path, seconds=30), f"{fifo}: ", "is a FIFO; expected a regular file")


@pytest.mark.parametrize(
    ("old", "new", "check_mode"),
    [
        (b"authority", b"auth\xffority", False),
        (b"authority", b"auth\xffority", True),
        (b"# Compose lock", b"# Compose\xff lock", False),  # in a comment only: the digest still matches, the file is still damaged
    ],
)
def test_a_lock_that_is_not_utf8_is_tampered_and_rewritten(tmp_path: Path, template: str, old: bytes, new: bytes, check_mode: bool) -> None:
    """As documented for a damaged lock (one that no longer matches its own digest): tampered, a warning, rewritten."""
    dest = tmp_path / "lock.yml"
    args = {"manifest": MANIFEST, "template": template, "dest": str(dest)}
    good = run_module("compose_lock", args, tmp_path)
    damaged = dest.read_bytes().replace(old, new, 1)
    dest.write_bytes(damaged)
    result = run_module("compose_lock", {**args, "_ansible_diff": True}, tmp_path, check_mode=check_mode)
    assert not result.get("failed"), result
    assert result["changed"] is True and result["tampered"] is True and result["digest"] == good["digest"]
    byte = damaged.index(b"\xff")
    warning = f"{dest}: compose lock is not UTF-8 text (byte {byte}); it is damaged and is rewritten."
    assert warning in str(result["warnings"])
    assert new.decode("utf-8", "replace") in result["diff"]["before"]
    if check_mode:
        assert dest.read_bytes() == damaged
    else:
        assert run_module("compose_lock", args, tmp_path) == {**good, "changed": False, "image_changes": []}
