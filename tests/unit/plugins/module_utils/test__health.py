# SPDX-License-Identifier: GPL-3.0-or-later
"""Health checks against real local servers (HTTP server thread, listening socket, real commands)."""

from __future__ import annotations

import http.server
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils._errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils._health import (
    command_runner,
    normalize_check,
    probe_command,
    probe_http,
    probe_tcp,
    run_checks,
    summarize_failures,
)
from ansible_collections.stellaops.deploy.plugins.module_utils._runner import LocalModule

# real commands, bounded by the real coreutils timeout, as the module runs them through run_command
RUN = command_runner(LocalModule().run_command, shutil.which("timeout"))


class _Handler(http.server.BaseHTTPRequestHandler):
    # path -> list of (status, body) served in turn; the last one repeats
    script: dict[str, list[tuple[int, bytes]]] = {}
    hits: dict[str, int] = {}

    def do_GET(self) -> None:
        answers = self.script.get(self.path, [(404, b"not found")])
        count = self.hits.get(self.path, 0)
        self.hits[self.path] = count + 1
        status, body = answers[min(count, len(answers) - 1)]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"script": {}, "hits": {}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def listening_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def closed_port() -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class FakeTime:
    """Records sleeps and advances a clock by them, so retries cost no wall time."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_http_ok_and_body(http_server: tuple[str, type[_Handler]]) -> None:
    base, handler = http_server
    handler.script["/health"] = [(200, b'{"status": "ok"}')]
    assert probe_http(f"{base}/health").healthy
    result = probe_http(f"{base}/health", body_contains='"status": "ok"')
    assert result.healthy and result.status_code == 200
    wrong_body = probe_http(f"{base}/health", body_contains="degraded")
    assert not wrong_body.healthy and "lacks 'degraded'" in wrong_body.message


def test_http_wrong_status_reports_code(http_server: tuple[str, type[_Handler]]) -> None:
    base, handler = http_server
    handler.script["/health"] = [(503, b"starting")]
    result = probe_http(f"{base}/health")
    assert not result.healthy
    assert result.status_code == 503
    assert result.message == f"GET {base}/health returned status 503, expected 200"
    assert probe_http(f"{base}/health", expected_status=503).healthy


def test_http_connection_refused() -> None:
    result = probe_http(f"http://127.0.0.1:{closed_port()}/health", timeout=2)
    assert not result.healthy and result.status_code is None
    assert "refused" in result.message.lower()


def test_tcp_open_and_closed(listening_port: int) -> None:
    assert probe_tcp("127.0.0.1", listening_port).healthy
    closed = probe_tcp("127.0.0.1", closed_port(), timeout=2)
    assert not closed.healthy and "refused" in closed.message.lower()


def test_command_exit_codes() -> None:
    assert shutil.which("timeout")
    assert probe_command([sys.executable, "-c", "raise SystemExit(0)"], 10, RUN).healthy
    failed = probe_command([sys.executable, "-c", "import sys; sys.stderr.write('db down\\n'); sys.exit(3)"], 10, RUN)
    assert not failed.healthy and "exited with 3" in failed.message and failed.message.endswith(": db down")
    assert probe_command(["/nonexistent/stella-probe"], 10, RUN).message == "command '/nonexistent/stella-probe' not found"
    slow = probe_command([sys.executable, "-c", "import time; time.sleep(5)"], 0.3, RUN)
    assert not slow.healthy and slow.message.endswith("did not finish within 0.3 s")


def test_command_without_timeout_binary() -> None:
    run = command_runner(LocalModule().run_command, None)
    assert probe_command([sys.executable, "-c", "raise SystemExit(0)"], 10, run).healthy
    assert probe_command(["/nonexistent/stella-probe"], 10, run).message == "command '/nonexistent/stella-probe' not found"
    with pytest.raises(StellaOpsError, match="need a command runner"):
        run_checks([{"type": "command", "command": ["true"]}], retries=1)


def test_retries_until_healthy_with_interval(http_server: tuple[str, type[_Handler]]) -> None:
    base, handler = http_server
    handler.script["/health"] = [(503, b""), (503, b""), (200, b"ok")]
    fake = FakeTime()
    healthy, results = run_checks(
        [{"name": "authority", "type": "http", "url": f"{base}/health"}], retries=5, interval=1.5, sleep=fake.sleep, clock=fake.clock
    )
    assert healthy
    assert results[0]["attempts"] == 3 and results[0]["status_code"] == 200
    assert results[0]["elapsed"] == 3.0
    assert fake.sleeps == [1.5, 1.5]
    assert handler.hits["/health"] == 3


def test_gives_up_after_retries_and_summarizes(http_server: tuple[str, type[_Handler]], listening_port: int) -> None:
    base, handler = http_server
    handler.script["/health"] = [(500, b"boom")]
    fake = FakeTime()
    checks = [
        {"name": "web", "type": "http", "url": f"{base}/health"},
        {"type": "tcp", "port": listening_port},
        {"name": "cli", "type": "command", "command": [sys.executable, "-c", "raise SystemExit(1)"]},
    ]
    healthy, results = run_checks(checks, retries=3, interval=2, sleep=fake.sleep, clock=fake.clock, run_command=RUN)
    assert not healthy
    assert [(r["name"], r["healthy"], r["attempts"]) for r in results] == [
        ("web", False, 3),
        (f"tcp 127.0.0.1:{listening_port}", True, 1),
        ("cli", False, 3),
    ]
    # no sleep after the last attempt
    assert fake.sleeps == [2, 2]
    assert handler.hits["/health"] == 3
    summary = summarize_failures(results).splitlines()
    assert summary[0] == "2 of 3 health checks failed:"
    assert summary[1] == f"- web: GET {base}/health returned status 500, expected 200 (after 3 attempts)"
    assert summary[2].startswith("- cli: command ") and summary[2].endswith("(after 3 attempts)")


def test_all_healthy_first_round_never_sleeps(listening_port: int) -> None:
    fake = FakeTime()
    healthy, results = run_checks([{"type": "tcp", "port": listening_port}], retries=10, sleep=fake.sleep, clock=fake.clock)
    assert healthy and results[0]["attempts"] == 1 and fake.sleeps == []


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"type": "ftp"}, "type must be one of http, tcp, command"),
        ({"type": "http"}, "needs field url"),
        ({"type": "http", "url": "file:///etc/passwd"}, "needs field url"),
        ({"type": "tcp", "host": "127.0.0.1"}, "needs field port"),
        ({"type": "tcp", "port": 70000}, "needs field port"),
        ({"type": "command", "command": "curl localhost"}, "list of strings"),
    ],
)
def test_invalid_checks_are_clear_errors(spec: dict[str, Any], error: str) -> None:
    with pytest.raises(StellaOpsError, match=error):
        normalize_check(spec, 2)


def test_defaults_and_names() -> None:
    check = normalize_check({"type": "tcp", "port": 5432, "host": None, "timeout": None})
    assert check == {"type": "tcp", "timeout": 5.0, "host": "127.0.0.1", "port": 5432, "name": "tcp 127.0.0.1:5432"}
    with pytest.raises(StellaOpsError, match="retries must be at least 1"):
        run_checks([check], retries=0)
