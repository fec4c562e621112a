# SPDX-License-Identifier: GPL-3.0-or-later
"""channel_promote run as Ansible runs it: a refused promotion is one sentence naming the file, and nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

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
