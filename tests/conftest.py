# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared test set-up: the collection import path and the sandbox endpoints."""

from __future__ import annotations

import base64
import http.server
import json
import sys
import threading
from collections.abc import Callable, Iterator
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


@pytest.fixture
def basic_auth_server() -> Iterator[Callable[[str, str], int]]:
    """Start HTTP servers on 127.0.0.1 that answer 200 "ok" only to basic authentication as (user, password), 401 otherwise.

    Call it with the user and password; it returns the port. The servers stop when the test ends.
    """
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(user: str, password: str) -> int:
        expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

        class Protected(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.headers.get("Authorization") == expected else 401)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_args: Any) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Protected)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
        servers.append(server)
        return int(server.server_address[1])

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
