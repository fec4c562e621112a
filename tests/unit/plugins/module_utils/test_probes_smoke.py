# SPDX-License-Identifier: GPL-3.0-or-later
"""Smoke tests against a real local HTTP server (a scan that completes on its second read) and real commands."""

from __future__ import annotations

import http.server
import json
import shutil
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.health import command_runner
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.smoke import fill, run_smoke_tests, summarize
from hostile import Trickler, finishes

RUN = command_runner(LocalModule().run_command, shutil.which("timeout"))


class Scanner(http.server.BaseHTTPRequestHandler):
    reads: dict[str, int] = {}

    def _answer(self, status: int, document: dict[str, Any]) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path == "/health":
            self._answer(200, {"status": "ok"})
        elif self.path.startswith("/scans/"):
            scan = self.path.rsplit("/", 1)[1]
            self.reads[scan] = self.reads.get(scan, 0) + 1
            self._answer(200, {"id": scan, "status": "completed" if self.reads[scan] > 1 else "running"})
        else:
            self._answer(404, {"status": "unknown"})

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        size = int(self.headers.get("Content-Length") or 0)
        sbom = json.loads(self.rfile.read(size))
        self._answer(202, {"id": f"scan-{len(sbom['components'])}", "status": "queued"})

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scanner)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def scan(base: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": "Scan submit", "type": "http", "method": "POST", "url": f"{base}/scans", "body": '{"components": [1, 2]}',
        "expected_status": 202, "poll_url": f"{base}/scans/{{id}}", "poll_body_contains": '"status": "completed"', "interval": 0, **extra,
    }  # fmt: skip


def test_every_test_passes_and_the_scan_is_followed_until_it_completes(base: str) -> None:
    results = run_smoke_tests(
        [
            {"name": "API health", "type": "http", "url": f"{base}/health", "body_contains": '"status": "ok"'},
            scan(base),
            {"name": "python", "type": "command", "command": [sys.executable, "-c", "print('queue ok')"], "output_contains": "queue ok"},
        ],
        RUN,
    )
    assert [(r["name"], r["passed"]) for r in results] == [("API health", True), ("Scan submit", True), ("python", True)]
    assert results[1]["message"] == f"POST {base}/scans accepted, GET {base}/scans/scan-2 completed"
    assert Scanner.reads["scan-2"] == 2  # "running" first, then "completed"
    assert summarize(results) == "All 3 smoke tests passed."


def test_every_failure_is_listed(base: str) -> None:
    ticks = iter(range(0, 1000, 10))
    results = run_smoke_tests(
        [
            {"name": "status", "type": "http", "url": f"{base}/missing"},
            {"name": "body", "type": "http", "url": f"{base}/health", "body_contains": "Healthy"},
            scan(base, name="never completes", poll_body_contains="signed", within=15),
            {"name": "exit", "type": "command", "command": [sys.executable, "-c", "import sys; sys.exit(3)"]},
            {"name": "output", "type": "command", "command": [sys.executable, "-c", "print('x')"], "output_contains": "y"},
        ],
        RUN,
        sleep=lambda _seconds: None,
        clock=lambda: float(next(ticks)),
    )
    assert [r["passed"] for r in results] == [False] * 5
    messages = [r["message"] for r in results]
    assert messages[0] == f"GET {base}/missing returned status 404, expected 200"
    assert messages[1] == f"GET {base}/health returned status 200 but the body lacks 'Healthy'"
    assert messages[2].startswith("not completed within 15 s: GET ") and messages[2].endswith("the body lacks 'signed'")
    assert "exited with 3, expected 0" in messages[3] and "output lacks 'y'" in messages[4]
    assert summarize(results).startswith("5 of 5 smoke tests failed: status: GET ")


def test_no_answer_is_a_failure_not_an_error() -> None:
    (result,) = run_smoke_tests([{"name": "down", "type": "http", "url": "http://127.0.0.1:9/health", "timeout": 2}], RUN)
    assert result["passed"] is False and result["message"] == "GET http://127.0.0.1:9/health failed: Connection refused"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "ftp"}, "smoke test #1 (unnamed): field type must be one of http, command, got 'ftp'."),
        (
            {"name": "x", "type": "http", "url": "127.0.0.1/h"},
            "smoke test #1 (x): field url must be an http:// or https:// address with a host, got '127.0.0.1/h'.",
        ),
        ({"type": "command", "command": "ls -l"}, "smoke test #1 (unnamed): field command must be a non-empty list of strings (argv)."),
    ],
)
def test_bad_input_is_one_sentence(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(StellaOpsError) as raised:
        run_smoke_tests([spec], RUN)
    assert str(raised.value) == message


def test_poll_url_fields_come_from_the_json_answer() -> None:
    assert fill("http://h/scans/{id}", '{"id": "abc"}') == "http://h/scans/abc"
    with pytest.raises(StellaOpsError, match="needs field 'id', which the response does not have"):
        fill("http://h/scans/{id}", '{"scan": "abc"}')


def test_a_filled_placeholder_is_one_encoded_path_segment() -> None:
    assert fill("http://h/scans/{id}", '{"id": "../admin?x=1#"}') == "http://h/scans/..%2Fadmin%3Fx%3D1%23"


def test_a_trickling_service_fails_within_the_timeout() -> None:
    trickler = Trickler(b"HTTP/1.1 202 Accepted\r\nContent-Length: 100000\r\n\r\n{")
    try:
        url = f"http://127.0.0.1:{trickler.port}/scans"
        results = finishes(lambda: run_smoke_tests([{"name": "slow", "type": "http", "method": "POST", "url": url, "timeout": 1}], RUN), seconds=10)
        assert results[0]["message"] == f"POST {url} did not answer within 1 s"
    finally:
        trickler.close()


def test_no_secret_of_a_url_or_command_reaches_a_result(base: str) -> None:
    secret_url = base.replace("http://", "http://scanner:pa@ss@") + "/health"
    tests = [
        {"name": "ok", "type": "http", "url": secret_url},
        {"name": "poll", "type": "http", "method": "POST", "url": secret_url.replace("/health", "/scans"), "body": '{"components": []}',
         "expected_status": 202, "poll_url": secret_url.replace("/health", "/scans/{id}"), "interval": 0},
        {"name": "cmd", "type": "command", "command": [sys.executable, "-c", "import sys; print('postgres://app:pa@ss@db/x'); sys.exit(3)"]},
    ]  # fmt: skip
    results = run_smoke_tests(tests, RUN)
    assert [result["passed"] for result in results] == [True, True, False]
    assert "pa@ss" not in json.dumps(results) and "ss@" not in json.dumps(results), results
