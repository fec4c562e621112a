# SPDX-License-Identifier: GPL-3.0-or-later
"""The RESP client's encoding and reply parsing, over captured protocol bytes fed in small chunks."""

from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.redis import RedisClient, RespReader, encode, over_threshold


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


@pytest.mark.parametrize(
    ("data", "sentence"),
    [
        (b"*1\r\n" * 10_000 + b":1\r\n", "Redis sent arrays nested more than 8 deep."),
        (b"$99999999999\r\n", "Redis sent a string length of 99999999999, more than 16777216."),
        (b"*1000000000\r\n", "Redis sent an array length of 1000000000, more than 1000000."),
        (b":twelve\r\n", "Redis sent an integer that is not a number: 'twelve'."),
        (b"+" + b"x" * 5000, "Redis sent a reply line longer than 1024 bytes."),
    ],
    ids=["nested", "huge-bulk", "huge-array", "not-a-number", "endless-line"],
)
def test_a_hostile_peer_is_one_sentence_not_a_crash(data: bytes, sentence: str) -> None:
    with pytest.raises(StellaOpsError) as err:
        reader(data, chunk=4096).reply()
    assert str(err.value) == sentence


def test_a_reply_trickled_a_byte_at_a_time_ends_at_the_deadline() -> None:
    now = [0.0]

    def trickle(_size: int) -> bytes:
        now[0] += 1.0  # each byte takes a second: no single read ever times out
        return b"x"

    slow = RespReader(trickle, clock=lambda: now[0])
    slow.deadline = 5.0
    with pytest.raises(StellaOpsError, match=r"^Redis did not finish its reply in time\.$"):
        slow.reply()
    assert now[0] <= 7.0


def test_a_scan_that_never_ends_is_given_up() -> None:
    client = RedisClient.__new__(RedisClient)
    client.address = "127.0.0.1:1"
    rounds = []

    def command(*args: str) -> object:
        rounds.append(args)
        return [str(len(rounds)), []]  # a new cursor every time, never "0"

    client.command = command  # type: ignore[method-assign]
    with pytest.raises(StellaOpsError, match=r"did not finish listing the keys of 'q:\*' after 10000 SCAN rounds\.$"):
        client.keys("q:*")
    assert len(rounds) == 10_000
