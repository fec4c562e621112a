# SPDX-License-Identifier: GPL-3.0-or-later
"""The offline kit's debug store: mirror with metadata, idempotent second mirror, every tampering found."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.debug_store import apply_mirror, plan_mirror, verify_kit


def release(tmp_path: Path) -> Path:
    store = tmp_path / "release" / "debug" / ".build-id"
    for name, data in {"ab/cdef01.debug": b"\x7fELF" + bytes(range(200)), "12/3456.debug": b"\x7fELF second"}.items():
        (store / name).parent.mkdir(parents=True, exist_ok=True)
        (store / name).write_bytes(data)
    return tmp_path / "release"


def test_mirror_writes_size_and_sha256_of_every_file_and_a_second_mirror_changes_nothing(tmp_path: Path) -> None:
    source, kit = release(tmp_path), tmp_path / "kit"
    plan = plan_mirror(str(source), str(kit), "2025.10.0-airgap")
    assert plan["copy"] == [".build-id/12/3456.debug", ".build-id/ab/cdef01.debug"] and plan["metadata_changed"]
    apply_mirror(plan, str(kit))
    metadata = json.loads((kit / "metadata" / "debug-store.json").read_text())
    listed = {entry["path"]: entry for entry in metadata["files"]}
    data = (source / "debug/.build-id/ab/cdef01.debug").read_bytes()
    assert listed[".build-id/ab/cdef01.debug"] == {"path": ".build-id/ab/cdef01.debug", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert metadata["file_count"] == 2 and metadata["release_id"] == "2025.10.0-airgap"
    again = plan_mirror(str(source), str(kit), "2025.10.0-airgap")
    assert (again["copy"], again["remove"], again["metadata_changed"]) == ([], [], False)
    assert verify_kit(str(kit))["verified"]


def test_verify_lists_every_changed_missing_and_unlisted_file(tmp_path: Path) -> None:
    kit = tmp_path / "kit"
    apply_mirror(plan_mirror(str(release(tmp_path)), str(kit), None), str(kit))
    store = kit / "debug" / ".build-id"
    (store / "ab/cdef01.debug").write_bytes(b"\x7fELF" + bytes(range(199)) + b"\x00")  # same size, other bytes
    (store / "12/3456.debug").unlink()
    (store / "ff").mkdir()
    (store / "ff/extra.debug").write_bytes(b"x")
    checked = verify_kit(str(kit))
    assert not checked["verified"]
    assert {(p["path"], p["problem"]) for p in checked["problems"]} == {
        (".build-id/ab/cdef01.debug", "sha256"), (".build-id/12/3456.debug", "missing"), (".build-id/ff/extra.debug", "not listed")}  # fmt: skip


def test_a_release_without_a_debug_store_or_a_kit_without_metadata_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match=r"holds no file"):
        plan_mirror(str(tmp_path / "nothing"), str(tmp_path / "kit"), None)
    with pytest.raises(StellaOpsError, match=r"debug-store.json is missing"):
        verify_kit(str(tmp_path / "kit"))


@pytest.mark.parametrize("linked", ["debug", "debug/.build-id", "debug/.build-id/ab", "metadata"])
def test_a_link_in_the_kit_is_refused_and_nothing_outside_it_is_touched(tmp_path: Path, linked: str) -> None:
    source, kit = release(tmp_path), tmp_path / "kit"
    apply_mirror(plan_mirror(str(source), str(kit), None), str(kit))
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "precious.debug").write_bytes(b"not the kit's")
    real = kit / linked
    real.rename(tmp_path / "moved")
    real.symlink_to(outside, target_is_directory=True)
    with pytest.raises(StellaOpsError, match=r"is a symbolic link; the (debug )?store"):
        plan_mirror(str(source), str(kit), None)
    with pytest.raises(StellaOpsError, match=r"is a symbolic link"):
        verify_kit(str(kit))
    assert (outside / "precious.debug").read_bytes() == b"not the kit's"


def test_metadata_is_not_taken_at_its_word(tmp_path: Path) -> None:
    kit = tmp_path / "kit"
    (kit / "metadata").mkdir(parents=True)
    metadata = kit / "metadata" / "debug-store.json"
    metadata.write_text(json.dumps({"format": "stellaops-debug-store/1", "file_count": 0, "total_size": 0, "files": []}))
    with pytest.raises(StellaOpsError, match=r"lists no file; a debug store holds at least one\.$"):
        verify_kit(str(kit))
    apply_mirror(plan_mirror(str(release(tmp_path)), str(kit), None), str(kit))
    document = json.loads(metadata.read_text())
    metadata.write_text(json.dumps({**document, "file_count": 5}))
    with pytest.raises(StellaOpsError, match=r"field file_count is 5, but it lists 2 files\.$"):
        verify_kit(str(kit))


def test_metadata_that_is_a_fifo_is_one_sentence(tmp_path: Path) -> None:
    kit = tmp_path / "kit"
    (kit / "metadata").mkdir(parents=True)
    os.mkfifo(kit / "metadata" / "debug-store.json")
    with pytest.raises(StellaOpsError, match=r"debug-store\.json"):
        verify_kit(str(kit))
