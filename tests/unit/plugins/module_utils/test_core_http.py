# SPDX-License-Identifier: GPL-3.0-or-later
"""The one HTTP client against real local servers: deadlines, redirects, credentials, size, schemes."""

from __future__ import annotations

import base64
import http.server
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.http import BODY_LIMIT, HttpError, check_url, fetch
from hostile import Trickler, finishes


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers by path; every request is kept as (method, path, headers, body)."""

    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
        status, headers, body = self.routes.get(self.path, (404, {}, b"not found"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer  # noqa: N815 - http.server's names

    def log_message(self, *_args: Any) -> None:
        pass


def _serve() -> tuple[str, type[_Recorder], http.server.ThreadingHTTPServer]:
    handler = type("Recorder", (_Recorder,), {"routes": {}, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}", handler, server


@pytest.fixture
def servers() -> Iterator[tuple[str, type[_Recorder], str, type[_Recorder]]]:
    """Two servers: two origins (the same host, another port)."""
    first, first_handler, first_server = _serve()
    other, other_handler, other_server = _serve()
    try:
        yield first, first_handler, other, other_handler
    finally:
        for server in (first_server, other_server):
            server.shutdown()
            server.server_close()


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    "head",
    [b"HTTP/1.1 200 OK\r\nX-Slow: ", b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b""],
    ids=["trickled-headers", "trickled-body", "black-hole"],
)
def test_the_deadline_bounds_the_whole_request(method: str, head: bytes) -> None:
    trickler = Trickler(head)
    try:
        url = f"http://ops:s3cret@127.0.0.1:{trickler.port}/api"
        outcome = finishes(lambda: fetch(method, url, timeout=1, body=b"q=1"), seconds=10)
        assert isinstance(outcome, HttpError) and outcome.timed_out
        assert outcome.message == f"{method} http://********@127.0.0.1:{trickler.port}/api did not answer within 1 s"
    finally:
        trickler.close()


def test_credentials_go_to_the_first_origin_only(servers: tuple[str, type[_Recorder], str, type[_Recorder]]) -> None:
    first, first_handler, other, other_handler = servers
    first_handler.routes["/same"] = (302, {"Location": "/next"}, b"")
    first_handler.routes["/next"] = (302, {"Location": f"{other}/landing"}, b"")
    other_handler.routes["/landing"] = (200, {}, b"landed")
    url = first.replace("http://", "http://ops:hunter@2@") + "/same"
    headers = {"Authorization": "Bearer t0ken", "Cookie": "session=c00kie", "X-Trace": "kept"}
    answer = fetch("GET", url, timeout=5, headers=headers)
    assert (answer.status, answer.body) == (200, b"landed")
    # the caller's Authorization wins over the URL's userinfo, on both requests to the first origin
    assert [seen[2].get("Authorization") for seen in first_handler.seen] == ["Bearer t0ken"] * 2
    assert [seen[2].get("Cookie") for seen in first_handler.seen] == ["session=c00kie"] * 2
    (landing,) = other_handler.seen
    assert "Authorization" not in landing[2] and "Cookie" not in landing[2] and landing[2]["X-Trace"] == "kept"
    # without its own Authorization the URL's userinfo is sent, split at the last '@'
    first_handler.seen.clear()
    fetch("GET", url, timeout=5)
    assert first_handler.seen[0][2]["Authorization"] == "Basic " + base64.b64encode(b"ops:hunter@2").decode()
    assert "Authorization" not in other_handler.seen[-1][2]


def test_a_post_follows_303_as_get_and_307_as_post(servers: tuple[str, type[_Recorder], str, type[_Recorder]]) -> None:
    first, handler, _other, _other_handler = servers
    handler.routes["/see-other"] = (303, {"Location": "/result"}, b"")
    handler.routes["/temporary"] = (307, {"Location": "/result"}, b"")
    handler.routes["/result"] = (200, {}, b"ok")
    fetch("POST", f"{first}/see-other", timeout=5, body=b"scan=1")
    fetch("POST", f"{first}/temporary", timeout=5, body=b"scan=2")
    assert [(method, path, body) for method, path, _headers, body in handler.seen] == [
        ("POST", "/see-other", b"scan=1"),
        ("GET", "/result", b""),
        ("POST", "/temporary", b"scan=2"),
        ("POST", "/result", b"scan=2"),
    ]


def test_the_body_is_bounded_and_says_so(servers: tuple[str, type[_Recorder], str, type[_Recorder]]) -> None:
    first, handler, _other, _other_handler = servers
    handler.routes["/big"] = (200, {}, b"x" * (BODY_LIMIT + 10))
    handler.routes["/small"] = (500, {"Content-Type": "text/plain"}, b"broken")
    big = fetch("GET", f"{first}/big", timeout=10)
    assert len(big.body) == BODY_LIMIT and big.truncated
    small = fetch("GET", f"{first}/small", timeout=5, limit=6)
    assert (small.status, small.text(), small.truncated, small.content_type) == (500, "broken", False, "text/plain")


def test_only_http_and_https_also_after_a_redirect(servers: tuple[str, type[_Recorder], str, type[_Recorder]]) -> None:
    first, handler, _other, _other_handler = servers
    handler.routes["/away"] = (302, {"Location": "file:///etc/passwd"}, b"")
    handler.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(HttpError, match=r"^GET .*/away failed: redirected to file:///etc/passwd, which is not http or https$"):
        fetch("GET", f"{first}/away", timeout=5)
    with pytest.raises(HttpError, match="failed: more than 10 redirects$"):
        fetch("GET", f"{first}/loop", timeout=5)
    with pytest.raises(HttpError, match="^GET file:///etc/passwd failed: url must be an http:// or https:// address with a host"):
        fetch("GET", "file:///etc/passwd", timeout=5)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (17, "health check #1: field url must be an http:// or https:// address, got int."),
        ("ftp://u:pw@h/x", "health check #1: field url must be an http:// or https:// address with a host, got 'ftp://********@h/x'."),
        ("http://h:99999/", "health check #1: field url 'http://h:99999/' is not a valid address (Port out of range 0-65535)."),
        ("http://h/a b", "health check #1: field url 'http://h/a b' holds a space or a control character; encode it (%20, %0A)."),
        ("http://h/\r\nX-Injected: 1", "holds a space or a control character"),
    ],
)
def test_a_bad_url_is_one_sentence(url: object, message: str) -> None:
    with pytest.raises(StellaOpsError, match=re.escape(message)):
        check_url(url, "health check #1: field url")
