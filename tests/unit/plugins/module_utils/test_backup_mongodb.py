# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import os
from pathlib import Path

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.mongodb import (
    _split_bson,
    check_gzip,
    dump_args,
    write_tool_config,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.redact import redact
from bson import encode


def test_tool_config_holds_secret_at_0600(tmp_path: Path) -> None:
    path = write_tool_config(str(tmp_path), "mongodb://app@127.0.0.1:27017/", "p@ss")
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert 'password: "p@ss"' in Path(path).read_text()
    assert not any("p@ss" in a for a in dump_args("/b/x.archive.gz", path))


@pytest.mark.parametrize(
    "uri, shown",
    [("mongodb://app:pw@h:1/db", "mongodb://********@h:1/db"), ("mongodb://h:1/", "mongodb://h:1/"),
     ("mongodb+srv://u:p@ss@c.example/x?tls=true", "mongodb+srv://********@c.example/x?tls=true")],
)
def test_a_uri_is_shown_without_its_userinfo(uri: str, shown: str) -> None:
    assert redact(uri) == shown


def test_split_bson_and_truncation() -> None:
    docs = [encode({"_id": i, "v": "x" * i}) for i in range(5)]
    assert list(_split_bson(b"".join(docs))) == docs
    with pytest.raises(StellaOpsError, match="truncated"):
        list(_split_bson(b"".join(docs)[:-3]))


def test_truncated_gzip_fails(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "a.archive.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(os.urandom(100_000))
    check_gzip(str(path))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(StellaOpsError, match="not a complete gzip stream"):
        check_gzip(str(path))
