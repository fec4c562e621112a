# SPDX-License-Identifier: GPL-3.0-or-later
"""Queue depths read from Redis over its own protocol (RESP), with the standard library only.

Stella Ops services queue work in Redis lists (``LLEN``) and streams (``XLEN``); pre-flight
reads each queue's depth and compares it with a threshold. One connection, commands sent as
RESP arrays, replies parsed as RESP; a password goes in ``AUTH`` and never into a result.
"""

from __future__ import annotations

import socket
import time
from typing import Any, Optional, Sequence, Union

from ..core.errors import StellaOpsError

Reply = Union[int, str, None, list[Any]]


def encode(*args: str) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


# What one reply may hold: a hostile or broken peer is refused at these bounds instead of exhausting the
# stack (nested arrays), memory (a huge length) or time (a reply trickled a byte at a time).
MAX_DEPTH = 8
MAX_BULK = 16 << 20
MAX_ITEMS = 1_000_000
# SCAN rounds before the key listing is given up (a peer that never returns cursor 0 would loop forever).
MAX_SCAN_ROUNDS = 10_000


class RespReader:
    """Parses RESP replies from a byte stream (``recv`` returns the next chunk, b"" at the end).

    ``deadline`` (a ``time.monotonic`` value, or None) bounds the whole reply, not each read.
    """

    def __init__(self, recv: Any, clock: Any = time.monotonic) -> None:
        self._recv = recv
        self._clock = clock
        self._buffer = b""
        self.deadline: Optional[float] = None

    def _more(self) -> None:
        if self.deadline is not None and self._clock() > self.deadline:
            raise StellaOpsError("Redis did not finish its reply in time.")
        chunk = self._recv(65536)
        if not chunk:
            raise StellaOpsError("Redis closed the connection in the middle of a reply.")
        self._buffer += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            if len(self._buffer) > 1024:
                raise StellaOpsError("Redis sent a reply line longer than 1024 bytes.")
            self._more()
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size + 2:
            self._more()
        data, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
        return data

    def _number(self, text: str, what: str, limit: int) -> int:
        try:
            number = int(text)
        except ValueError:
            raise StellaOpsError(f"Redis sent {what} that is not a number: {text[:40]!r}.") from None
        if number > limit:
            raise StellaOpsError(f"Redis sent {what} of {number}, more than {limit}.")
        return number

    def reply(self, depth: int = 0) -> Reply:
        if depth > MAX_DEPTH:
            raise StellaOpsError(f"Redis sent arrays nested more than {MAX_DEPTH} deep.")
        line = self._line()
        kind, rest = line[:1], line[1:].decode("utf-8", "replace")
        if kind == b"+":
            return rest
        if kind == b"-":
            raise StellaOpsError(f"Redis answered an error: {rest}")
        if kind == b":":
            return self._number(rest, "an integer", 1 << 62)
        if kind == b"$":
            size = self._number(rest, "a string length", MAX_BULK)
            return None if size < 0 else self._exact(size).decode("utf-8", "replace")
        if kind == b"*":
            count = self._number(rest, "an array length", MAX_ITEMS)
            return None if count < 0 else [self.reply(depth + 1) for _item in range(count)]
        raise StellaOpsError(f"Redis sent a reply this client does not know (starts with {kind!r}).")


class RedisClient:
    """A connection to one Redis server; use as a context manager."""

    def __init__(self, host: str, port: int, password: Optional[str] = None, database: int = 0, timeout: float = 5.0) -> None:
        self.address = f"{host}:{port}"
        try:
            self._socket = socket.create_connection((host, port), timeout=timeout)
        except OSError as error:
            raise StellaOpsError(f"Redis at {self.address} does not answer: {error.strerror or error}.") from None
        except UnicodeError:  # an empty or over-long label ("..", "a..b"): not a host name
            raise StellaOpsError(f"Redis host {host!r} is not a host name or address.") from None
        self._timeout = timeout
        self._reader = RespReader(self._socket.recv)
        if password:
            self.command("AUTH", password)
        if database:
            self.command("SELECT", str(database))

    def __enter__(self) -> RedisClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._socket.close()

    def command(self, *args: str) -> Reply:
        try:
            self._socket.sendall(encode(*args))
            # The timeout bounds the whole reply too, not only each read of it.
            self._reader.deadline = time.monotonic() + self._timeout
            return self._reader.reply()
        except OSError as error:
            raise StellaOpsError(f"Redis at {self.address} failed on {args[0]}: {error.strerror or error}.") from None

    def count(self, *args: str) -> int:
        """A command whose reply is a number."""
        reply = self.command(*args)
        if not isinstance(reply, int):
            raise StellaOpsError(f"Redis answered {args[0]} with {reply!r}, not a number.")
        return reply

    def depth(self, key: str) -> int:
        """Entries waiting in a list or stream; 0 when the key does not exist."""
        kind = self.command("TYPE", key)
        length_of = {"list": "LLEN", "stream": "XLEN", "zset": "ZCARD"}
        if kind == "none":
            return 0
        if isinstance(kind, str) and kind in length_of:
            return self.count(length_of[kind], key)
        raise StellaOpsError(f"Redis key {key!r} is a {kind}, not a queue (list, stream or sorted set).")

    def keys(self, pattern: str) -> list[str]:
        """Keys matching ``pattern``, through SCAN (never KEYS, which blocks the server)."""
        found: set[str] = set()
        cursor = "0"
        for _round in range(MAX_SCAN_ROUNDS):
            reply = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            if not isinstance(reply, list) or len(reply) != 2:
                raise StellaOpsError("Redis answered SCAN with something other than a cursor and a list of keys.")
            cursor = str(reply[0])
            found.update(str(key) for key in reply[1] or [])
            if cursor == "0":
                return sorted(found)
        raise StellaOpsError(f"Redis at {self.address} did not finish listing the keys of {pattern!r} after {MAX_SCAN_ROUNDS} SCAN rounds.")


def queue_depths(client: RedisClient, queues: Sequence[str], patterns: Sequence[str]) -> dict[str, int]:
    """Depth of every named queue and of every key matching a pattern."""
    names = list(dict.fromkeys([*queues, *(key for pattern in patterns for key in client.keys(pattern))]))
    return {name: client.depth(name) for name in names}


def over_threshold(depths: dict[str, int], threshold: int) -> list[str]:
    """One sentence per queue deeper than ``threshold``."""
    return [f"queue {name} holds {depth} entries (threshold {threshold})" for name, depth in sorted(depths.items()) if depth > threshold]
