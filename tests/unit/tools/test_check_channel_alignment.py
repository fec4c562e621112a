# SPDX-License-Identifier: GPL-3.0-or-later
"""check-channel-alignment compares images, not repository spellings (issue 10, class 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PINNED = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64
RELEASE = f"""release:
  version: "2025.10.0"
  channel: stable
  components:
    - name: authority
      image: registry.stella-ops.org/stellaops/authority:2025.10.0@{PINNED}
  infrastructure:
    postgres:
      image: docker.io/library/postgres@{PINNED}
"""


def _check(tmp_path: Path, postgres: str, authority: str) -> subprocess.CompletedProcess[str]:
    release = tmp_path / "2025.10.0-stable.yaml"
    release.write_text(RELEASE)
    target = tmp_path / "docker-compose.prod.yaml"
    target.write_text(f"services:\n  postgres:\n    image: {postgres}\n  authority:\n    image: {authority}\n")
    proc = subprocess.run([sys.executable, str(ROOT / "tools" / "check-channel-alignment"), "--release", str(release), "--target", str(target)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


AUTHORITY = f"registry.stella-ops.org/stellaops/authority:2025.10.0@{PINNED}"


@pytest.mark.parametrize("postgres", [f"postgres@{OTHER}", f"library/postgres@{OTHER}", f"index.docker.io/library/postgres@{OTHER}"])
def test_short_spelling_with_another_digest_exits_1(tmp_path: Path, postgres: str) -> None:
    proc = _check(tmp_path, postgres, AUTHORITY)
    assert proc.returncode == 1, proc.stdout
    assert "digest_mismatch" in proc.stdout and "docker.io/library/postgres" in proc.stdout


def test_tag_disagreeing_next_to_the_digest_exits_1(tmp_path: Path) -> None:
    proc = _check(tmp_path, f"postgres@{PINNED}", f"registry.stella-ops.org/stellaops/authority:2025.09.2@{PINNED}")
    assert proc.returncode == 1 and "tag_mismatch" in proc.stdout


def test_same_images_spelt_otherwise_exit_0(tmp_path: Path) -> None:
    proc = _check(tmp_path, f"postgres@{PINNED}", f"Registry.Stella-Ops.org:443/stellaops/authority@{PINNED}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
