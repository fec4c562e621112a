# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.objects import read_listing, relative_key
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from hostile import fifo, finishes, one_sentence


@pytest.mark.parametrize("key, prefix, rel", [("evidence/a/b.json", "evidence/", "a/b.json"), ("x.json", "", "x.json")])
def test_relative_key(key: str, prefix: str, rel: str) -> None:
    assert relative_key(key, prefix) == rel


@pytest.mark.parametrize("key", ["evidence/../../etc/passwd", "evidence/a//x", "evidence/./x", "evidence/"])
def test_relative_key_refuses_escapes(key: str) -> None:
    with pytest.raises(StellaOpsError, match="cannot be stored as a file"):
        relative_key(key, "evidence/")


def test_a_fifo_as_an_object_listing_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path / "objects.json")
    one_sentence(finishes(lambda: read_listing(str(path)), path), str(path), "is a FIFO; expected a regular file")
