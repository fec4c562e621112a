# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils._backup_objects import relative_key
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError


@pytest.mark.parametrize("key, prefix, rel", [("evidence/a/b.json", "evidence/", "a/b.json"), ("x.json", "", "x.json")])
def test_relative_key(key: str, prefix: str, rel: str) -> None:
    assert relative_key(key, prefix) == rel


@pytest.mark.parametrize("key", ["evidence/../../etc/passwd", "evidence/a//x", "evidence/./x", "evidence/"])
def test_relative_key_refuses_escapes(key: str) -> None:
    with pytest.raises(StellaOpsError, match="cannot be stored as a file"):
        relative_key(key, "evidence/")
