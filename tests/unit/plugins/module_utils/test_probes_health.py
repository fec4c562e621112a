# SPDX-License-Identifier: GPL-3.0-or-later
"""Health checks against real local servers (HTTP server thread, listening socket, real commands)."""

from __future__ import annotations

import base64
import http.server
import json
import shutil
import socket
import string
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.health import (
    ProbeResult,
    command_runner,
    normalize_check,
    probe_command,
    probe_http,
    probe_tcp,
    redact,
    redact_checks,
    run_checks,
    secret_values,
    summarize_failures,
)
from hostile import Trickler, finishes
from hypothesis import given, settings
from hypothesis import strategies as st

# real commands, bounded by the real coreutils timeout, as the module runs them through run_command
RUN = command_runner(LocalModule().run_command, shutil.which("timeout"))


class _Handler(http.server.BaseHTTPRequestHandler):
    # path -> list of (status, body) served in turn; the last one repeats
    script: dict[str, list[tuple[int, bytes]]] = {}
    hits: dict[str, int] = {}
    redirects: dict[str, str] = {}  # path -> Location sent with its answer
    required_auth: str | None = None  # the Authorization header every request must carry, else 401
    seen_auth: list[str | None] = []

    def do_GET(self) -> None:
        self.seen_auth.append(self.headers.get("Authorization"))
        answers = self.script.get(self.path, [(404, b"not found")])
        count = self.hits.get(self.path, 0)
        self.hits[self.path] = count + 1
        status, body = answers[min(count, len(answers) - 1)]
        if self.required_auth is not None and self.headers.get("Authorization") != self.required_auth:
            status, body = 401, b"who are you"
        self.send_response(status)
        if self.path in self.redirects:
            self.send_header("Location", self.redirects[self.path])
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def http_server() -> Iterator[tuple[str, type[_Handler]]]:
    handler = type("Handler", (_Handler,), {"script": {}, "hits": {}, "redirects": {}, "seen_auth": []})
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
    failing = [sys.executable, "-c", "import sys; sys.stderr.write('db ' + 'down\\n'); sys.exit(3)"]
    failed = probe_command(failing, 10, RUN)
    assert not failed.healthy and failed.message.endswith("exited with 3, expected 0") and "db down" not in failed.message
    shown = probe_command(failing, 10, RUN, show_output=True)
    assert not shown.healthy and shown.message.endswith("exited with 3, expected 0: db down")
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
    healthy, results = run_checks([{"name": "authority", "type": "http", "url": f"{base}/health"}], retries=5, interval=1.5, sleep=fake.sleep, clock=fake.clock)
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
        ({"type": "http"}, "field url must be an http:// or https:// address"),
        ({"type": "http", "url": "file:///etc/passwd"}, "field url must be an http:// or https:// address"),
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
    assert check == {"type": "tcp", "timeout": 5.0, "no_log": False, "host": "127.0.0.1", "port": 5432, "name": "tcp 127.0.0.1:5432"}
    with pytest.raises(StellaOpsError, match=r"^health checks: retries must be a whole number from 1 to 10000, got 0\.$"):
        run_checks([check], retries=0)


# --------------------------------------------------------------------------- hostile peers and secrets (issue 10)


@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b""],
    ids=["trickled-headers", "trickled-body", "trickled-status-line"],
)
def test_timeout_bounds_the_whole_attempt_against_a_trickling_peer(head: bytes) -> None:
    trickler = Trickler(head)
    try:
        url = f"http://127.0.0.1:{trickler.port}/health"
        result = finishes(lambda: probe_http(url, timeout=1.5), seconds=15)
        assert result == ProbeResult(False, f"GET {url} did not answer within 1.5 s")
        healthy, results = finishes(lambda: run_checks([{"type": "http", "url": url, "timeout": 1}], retries=2, interval=0), seconds=15)
        assert not healthy and results[0]["attempts"] == 2 and results[0]["message"].endswith("did not answer within 1 s")
    finally:
        trickler.close()


def test_a_redirect_is_followed_unless_follow_redirects_is_false(http_server: tuple[str, type[_Handler]]) -> None:
    base, handler = http_server
    handler.script["/login"] = [(200, b"login page")]
    handler.script["/"] = [(302, b"")]
    handler.redirects = {"/": "/login"}
    follow = {"type": "http", "url": f"{base}/", "expected_status": 302}
    assert run_checks([follow], retries=1)[1][0]["message"] == f"GET {base}/ returned status 200, expected 302"
    healthy, results = run_checks([{**follow, "follow_redirects": False}], retries=1)
    assert healthy and results[0]["status_code"] == 302
    assert run_checks([{"type": "http", "url": f"{base}/", "body_contains": "login"}], retries=1)[0]


def test_credentials_in_the_url_are_sent_and_never_shown(http_server: tuple[str, type[_Handler]]) -> None:
    base, handler = http_server
    handler.script["/private"] = [(200, b"ok")]
    handler.required_auth = "Basic " + base64.b64encode(b"monitor:s3cr3t/pw").decode()
    url = base.replace("http://", "http://monitor:s3cr3t%2Fpw@") + "/private"
    healthy, results = run_checks([{"type": "http", "url": url}], retries=1)
    assert healthy, results
    shown = base.replace("http://", "http://********@") + "/private"
    assert results[0]["name"] == f"http {shown}" and results[0]["message"] == f"GET {shown} returned status 200"
    wrong = url.replace("s3cr3t", "guess")
    healthy, results = run_checks([{"type": "http", "url": wrong}], retries=1)
    assert not healthy and results[0]["status_code"] == 401
    assert "guess" not in json.dumps(results) and "monitor" not in json.dumps(results)
    assert "guess" not in summarize_failures(results)


def test_credentials_do_not_follow_a_redirect_to_another_host(http_server: tuple[str, type[_Handler]]) -> None:
    base, handler = http_server
    other_handler = type("Other", (_Handler,), {"script": {"/landing": [(200, b"ok")]}, "hits": {}, "seen_auth": []})
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), other_handler)
    threading.Thread(target=other.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    try:
        handler.script["/go"] = [(302, b"")]
        handler.redirects = {"/go": f"http://127.0.0.1:{other.server_address[1]}/landing"}
        healthy, _results = run_checks([{"type": "http", "url": base.replace("http://", "http://u:p4ss@") + "/go"}], retries=1)
        assert healthy and other_handler.hits == {"/landing": 1} and other_handler.seen_auth == [None]
    finally:
        other.shutdown()
        other.server_close()


def test_command_output_and_no_log_arguments_stay_out_of_results() -> None:
    secret = "hunter2-db-password"
    # the output holds the secret (built at run time, so that only the URL's userinfo carries it in the arguments)
    leak = [sys.executable, "-c", "import sys; print('pass' + 'word=hunter2-' + 'db-password'); sys.exit(2)", f"postgresql://app:{secret}@127.0.0.1/db"]
    healthy, results = run_checks([{"type": "command", "command": leak}], retries=1, run_command=RUN)
    assert not healthy and results[0]["message"].count("********") == 1
    hidden = [{"type": "command", "command": [sys.executable, "-c", "import sys; sys.exit(2)", secret], "no_log": True, "show_output": True}]
    healthy, more = run_checks(hidden, retries=1, run_command=RUN)
    assert more[0]["message"] == f"command {sys.executable + ' ******** ******** ********'!r} exited with 2, expected 0"
    for text in (json.dumps(results + more), summarize_failures(results + more)):
        assert secret not in text and "password=" not in text
    assert secret_values([{"url": None, "command": leak}]) == {f"app:{secret}", secret}
    assert redact_checks(hidden)[0]["command"] == [sys.executable, "********", "********", "********"]
    assert redact_checks([{"type": "command", "command": leak}])[0]["command"][3] == "postgresql://********@127.0.0.1/db"


@settings(max_examples=200, deadline=None)
@given(
    user=st.text(alphabet=string.ascii_letters + string.digits + "-._~%!$&'()*+,;=", max_size=12),
    password=st.text(alphabet=string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:", min_size=1, max_size=16),
    scheme=st.sampled_from(["http", "https", "postgresql", "redis", "mongodb+srv"]),
)
def test_redact_masks_any_userinfo(user: str, password: str, scheme: str) -> None:
    text = f"--dsn={scheme}://{user}:{password}@db.internal:5432/app?x=1"
    assert redact(text) == f"--dsn={scheme}://********@db.internal:5432/app?x=1"
    assert password in secret_values([{"command": ["probe", text]}])


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        ({"type": "http", "url": "http://[::1/health"}, "health check #3: field url 'http://[::1/health' is not a valid address (Invalid IPv6 URL)."),
        ({"type": "http", "url": "http://[::1/health", "no_log": True}, "health check #3: field url ******** is not a valid address"),
        ({"type": "http", "url": "http://127.0.0.1:99999/"}, "is not a valid address (Port out of range 0-65535)."),
        ({"type": "http", "url": "http://u:pw@[fe80::1/"}, "field url 'http://********@[fe80::1/' is not a valid address"),
        ({"type": "http", "url": "http:///nohost"}, "field url must be an http:// or https:// address with a host"),
        ({"type": "http", "url": 17}, "field url must be an http:// or https:// address, got int"),
        ({"type": "http", "url": "http://127.0.0.1/", "timeout": "soon"}, "field timeout must be a number from 0.001 to 86400, got 'soon'."),
        ({"type": "http", "url": "http://127.0.0.1/", "timeout": float("nan")}, "field timeout must be a number"),
        ({"type": "http", "url": "http://127.0.0.1/", "expected_status": "ok"}, "field expected_status must be a whole number from 100 to 599"),
        ({"type": "http", "url": "http://127.0.0.1/", "follow_redirects": "no"}, "field follow_redirects must be true or false"),
        ({"type": "http", "url": "http://127.0.0.1/", "body_contains": 5}, "field body_contains must be a string"),
        ({"type": "command", "command": ["true"], "expected_rc": [0]}, "field expected_rc must be a whole number from 0 to 255"),
        ({"type": "command", "command": ["true"], "name": ["x"]}, "field name must be a string"),
        ({"type": "tcp", "port": 80, "host": 10}, "field host must be a string"),
        ("http", "health check #3 must be a mapping"),
    ],
)
def test_wrongly_typed_fields_are_one_sentence(spec: Any, error: str) -> None:
    with pytest.raises(StellaOpsError) as caught:
        normalize_check(spec, 2)
    assert error in str(caught.value) and "\n" not in str(caught.value)


def test_an_empty_list_of_checks_is_an_error() -> None:
    with pytest.raises(StellaOpsError, match=r"^health checks: checks is empty; expected at least one check"):
        run_checks([], retries=1)
