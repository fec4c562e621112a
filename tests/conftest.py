# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared test set-up: the collection import path and the sandbox endpoints."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COLLECTIONS = ROOT / ".build"
_LINK = COLLECTIONS / "ansible_collections" / "stellaops" / "deploy"
if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    _LINK.symlink_to("../../..")
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

SANDBOX_INFO = ROOT / ".sandbox" / "sandbox.json"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sandbox() -> dict[str, Any]:
    """Endpoints of the running sandbox; a test that needs it fails (never skips) when it is down."""
    if not SANDBOX_INFO.exists():
        pytest.fail(f"the sandbox is not running ({SANDBOX_INFO} is missing): run 'make sandbox-up'")
    return json.loads(SANDBOX_INFO.read_text())
