# SPDX-License-Identifier: GPL-3.0-or-later
"""The RESP client's encoding and reply parsing, over captured protocol bytes fed in small chunks."""

from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils._redis import RespReader, encode, over_threshold


def reader(data: bytes, chunk: int = 3) -> RespReader:
    parts = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return RespReader(lambda _size: parts.pop(0) if parts else b"")


def test_encode_is_a_resp_array_of_bulk_strings() -> None:
    assert encode("LLEN", "stellaops:queue:scan") == b"*2\r\n$4\r\nLLEN\r\n$20\r\nstellaops:queue:scan\r\n"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"+list\r\n", "list"),
        (b":25\r\n", 25),
        (b"$-1\r\n", None),
        (b"$5\r\nq\r\n:1\r\n", "q\r\n:1"),  # a bulk string holds CRLF
        (b"*2\r\n$1\r\n0\r\n*2\r\n$3\r\nq:a\r\n$3\r\nq:b\r\n", ["0", ["q:a", "q:b"]]),  # SCAN's reply
    ],
)
def test_replies(data: bytes, expected: object) -> None:
    assert reader(data).reply() == expected


def test_an_error_reply_and_a_cut_connection_are_one_sentence() -> None:
    with pytest.raises(StellaOpsError, match="^Redis answered an error: NOAUTH Authentication required.$"):
        reader(b"-NOAUTH Authentication required.\r\n").reply()
    with pytest.raises(StellaOpsError, match="closed the connection"):
        reader(b"$10\r\nabc").reply()


def test_over_threshold_names_each_deep_queue() -> None:
    assert over_threshold({"q:b": 11, "q:a": 10, "q:c": 0}, 10) == ["queue q:b holds 11 entries (threshold 10)"]
