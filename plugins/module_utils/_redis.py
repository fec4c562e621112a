# SPDX-License-Identifier: GPL-3.0-or-later
"""Queue depths read from Redis over its own protocol (RESP), with the standard library only.

Stella Ops services queue work in Redis lists (``LLEN``) and streams (``XLEN``); pre-flight
reads each queue's depth and compares it with a threshold. One connection, commands sent as
RESP arrays, replies parsed as RESP; a password goes in ``AUTH`` and never into a result.
"""

from __future__ import annotations

import socket
from typing import Any, Optional, Sequence, Union

from ._errors import StellaOpsError

Reply = Union[int, str, None, list[Any]]


def encode(*args: str) -> bytes:
    """One command as a RESP array of bulk strings."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class RespReader:
    """Parses RESP replies from a byte stream (``recv`` returns the next chunk, b"" at the end)."""

    def __init__(self, recv: Any) -> None:
        self._recv = recv
        self._buffer = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            chunk = self._recv(65536)
            if not chunk:
                raise StellaOpsError("Redis closed the connection in the middle of a reply.")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\r\n", 1)
        return line

    def _exact(self, size: int) -> bytes:
        while len(self._buffer) < size + 2:
            chunk = self._recv(65536)
            if not chunk:
                raise StellaOpsError("Redis closed the connection in the middle of a reply.")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size + 2 :]
        return data

    def reply(self) -> Reply:
        line = self._line()
        kind, rest = line[:1], line[1:].decode("utf-8", "replace")
        if kind == b"+":
            return rest
        if kind == b"-":
            raise StellaOpsError(f"Redis answered an error: {rest}")
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size).decode("utf-8", "replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.reply() for _item in range(count)]
        raise StellaOpsError(f"Redis sent a reply this client does not know (starts with {kind!r}).")


class RedisClient:
    """A connection to one Redis server; use as a context manager."""

    def __init__(self, host: str, port: int, password: Optional[str] = None, database: int = 0, timeout: float = 5.0) -> None:
        self.address = f"{host}:{port}"
        try:
            self._socket = socket.create_connection((host, port), timeout=timeout)
        except OSError as error:
            raise StellaOpsError(f"Redis at {self.address} does not answer: {error.strerror or error}.") from None
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
        while True:
            reply = self.command("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
            if not isinstance(reply, list) or len(reply) != 2:
                raise StellaOpsError("Redis answered SCAN with something other than a cursor and a list of keys.")
            cursor = str(reply[0])
            found.update(str(key) for key in reply[1] or [])
            if cursor == "0":
                return sorted(found)


def queue_depths(client: RedisClient, queues: Sequence[str], patterns: Sequence[str]) -> dict[str, int]:
    """Depth of every named queue and of every key matching a pattern."""
    names = list(dict.fromkeys([*queues, *(key for pattern in patterns for key in client.keys(pattern))]))
    return {name: client.depth(name) for name in names}


def over_threshold(depths: dict[str, int], threshold: int) -> list[str]:
    """One sentence per queue deeper than ``threshold``."""
    return [f"queue {name} holds {depth} entries (threshold {threshold})" for name, depth in sorted(depths.items()) if depth > threshold]
