# SPDX-License-Identifier: GPL-3.0-or-later
"""The offline kit: playbooks/offline_kit.yml mirrors a release's debug store (check, apply, idempotent
apply), and an airgap upgrade refuses a kit whose debug store does not verify, before anything else.

The debug store is made of real ELF files of this machine, placed by the GNU build id that
``readelf -n`` reads from them, as a release pipeline lays out ``debug/.build-id/<xx>/<rest>.debug``.
Only the controller takes part (the compose hosts are left out with ``--limit localhost``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARIES = ("/usr/bin/python3", "/usr/bin/ssh", "/usr/bin/git")


def release_with_debug_store(directory: Path) -> dict[str, Path]:
    """``directory/debug/.build-id/<xx>/<rest>.debug`` for each binary with a GNU build id."""
    placed = {}
    for binary in BINARIES:
        notes = subprocess.run(["readelf", "-n", str(Path(binary).resolve())], capture_output=True, text=True, check=True).stdout
        build_id = re.search(r"Build ID: ([0-9a-f]+)", notes)
        if build_id is None:
            continue
        target = directory / "debug" / ".build-id" / build_id.group(1)[:2] / f"{build_id.group(1)[2:]}.debug"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(binary).resolve(), target)
        placed[f".build-id/{build_id.group(1)[:2]}/{build_id.group(1)[2:]}.debug"] = target
    assert len(placed) >= 2, "fewer than two binaries with a build id on this machine"
    return placed


def test_mirror_then_airgap_takes_only_a_kit_that_verifies(playbook_runner, tmp_path: Path) -> None:
    placed = release_with_debug_store(tmp_path / "release")
    kit = tmp_path / "offline-kit"
    args = {"offline_kit_release_dir": str(tmp_path / "release"), "offline_kit_dir": str(kit), "offline_kit_release_id": "2025.10.0-airgap"}

    checked = playbook_runner(ROOT / "playbooks" / "offline_kit.yml", extra_vars=args, check=True)
    assert checked.rc == 0 and checked.result("Mirror the debug store into the kit")["changed"] and not kit.exists()

    applied = playbook_runner(ROOT / "playbooks" / "offline_kit.yml", extra_vars=args)
    assert applied.rc == 0 and applied.result("Verify every file of the kit against metadata/debug-store.json")["verified"]
    metadata = json.loads((kit / "metadata" / "debug-store.json").read_text())
    assert {entry["path"]: (entry["size"], entry["sha256"]) for entry in metadata["files"]} == {
        path: (source.stat().st_size, hashlib.sha256(source.read_bytes()).hexdigest()) for path, source in placed.items()
    }
    again = playbook_runner(ROOT / "playbooks" / "offline_kit.yml", extra_vars=args)
    assert again.rc == 0 and again.changed("localhost") == 0

    # One byte of one debug file changes in the kit: the airgap upgrade stops at the kit, naming the file.
    tampered_path, _source = sorted(placed.items())[0]
    tampered = kit / "debug" / tampered_path
    data = bytearray(tampered.read_bytes())
    data[-1] ^= 0xFF
    tampered.write_bytes(bytes(data))
    upgrade = playbook_runner(
        ROOT / "playbooks" / "upgrade.yml",
        extra_vars={"channel": "airgap", "stellaops_offline_kit_dir": str(kit), "stellaops_preflight": False},
        limit="fleet-1",
    )
    assert upgrade.rc != 0
    assert upgrade.failure_messages == [
        f"The debug store of the offline kit {kit} does not verify against metadata/debug-store.json: {tampered_path} (sha256)."
    ]
    # Nothing after the kit's check ran.
    ran = [name for name, _result in upgrade.tasks("fleet-1")]
    assert ran[-1] == "Require an offline kit whose debug store verifies (airgap)"


@pytest.mark.parametrize("missing", ["offline_kit_dir", "offline_kit_release_dir"])
def test_the_playbook_names_what_is_missing(playbook_runner, tmp_path: Path, missing: str) -> None:
    args = {"offline_kit_release_dir": str(tmp_path / "release"), "offline_kit_dir": str(tmp_path / "kit")}
    del args[missing]
    result = playbook_runner(ROOT / "playbooks" / "offline_kit.yml", extra_vars=args)
    assert result.rc != 0 and len(result.failure_messages) == 1 and missing in result.failure_messages[0]
