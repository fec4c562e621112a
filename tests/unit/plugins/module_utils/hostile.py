# SPDX-License-Identifier: GPL-3.0-or-later
"""Hostile inputs shared by the unit tests: FIFOs, alias bombs, deep nesting, a trickling peer, a guard against hangs."""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError

# A 1 KB YAML document of nested aliases that expands to 9**9 (387 million) strings.
ALIAS_BOMB = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + chr(ord('a') + i - 1)] * 9)}]\n" for i in range(1, 9)
)
DEEP = 100_000


def deep_flow_yaml(depth: int = DEEP) -> str:
    return "x: " + "[" * depth + "]" * depth + "\n"


def deep_json(depth: int = DEEP) -> str:
    return '{"id": ' + "[" * depth + "]" * depth + "}"


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _unblock(fifos: tuple[Path, ...]) -> None:
    """Open each FIFO for writing once, so that a reader blocked on it returns (with end of file)."""
    for path in fifos:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass


class BlackHole:
    """A real listening socket on 127.0.0.1 that accepts connections (the kernel does) and never answers."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]

    def close(self) -> None:
        self.server.close()


class Trickler:
    """A real server on 127.0.0.1 that answers every connection one byte every half second, for ever."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(8)
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                client, _address = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._trickle, args=(client,), daemon=True).start()

    def _trickle(self, client: socket.socket) -> None:
        with client:
            client.recv(65536)
            client.sendall(self.head)
            while not self.stop.wait(0.5):
                try:
                    client.sendall(b"x")
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.server.close()


def finishes(call: Callable[[], Any], *fifos: Path, seconds: float = 20.0) -> Any:
    """The outcome of ``call`` (its result or the exception it raised); fails the test if it hangs.

    ``call`` runs on a thread; when it is still running after ``seconds`` the test fails, and any
    reader blocked on one of ``fifos`` is released so the thread can end.
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = call()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            outcome["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        _unblock(fifos)
        pytest.fail(f"the call did not return within {seconds:g} s (it hangs)")
    if "error" in outcome:
        return outcome["error"]
    return outcome["result"]


def one_sentence(outcome: Any, *parts: str) -> str:
    """The message of a StellaOpsError outcome: one line, ending in '.', holding every part."""
    assert isinstance(outcome, StellaOpsError), f"expected a StellaOpsError, got {type(outcome).__name__}: {outcome!r}"
    message = str(outcome)
    assert "\n" not in message and message.endswith("."), message
    assert "Traceback" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"
    return message


COLLECTIONS = Path(__file__).resolve().parents[4] / ".build"


def error_in_child(statement: str, *, memory: int = 1 << 30, seconds: float = 60.0) -> str:
    """The StellaOpsError message that ``statement`` raises, run in a child Python process.

    The child may use no more than ``memory`` bytes of address space and ``seconds`` of time, so
    an input that exhausts memory, overflows the C stack or hangs fails the test, not the test run.
    """

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    code = "\n".join(
        [
            "import sys",
            f"sys.path.insert(0, {str(COLLECTIONS)!r})",
            "from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError",
            "try:",
            f"    {statement}",
            "except StellaOpsError as err:",
            "    print(err)",
            "else:",
            "    print('no error')",
        ]
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds, preexec_fn=limit, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the child did not finish within {seconds:g} s (it hangs)")
    tail = proc.stderr.strip().splitlines()[-1:] or [""]
    assert proc.returncode == 0, f"the child ended with {proc.returncode}: {tail[0]}"
    return proc.stdout.strip()
