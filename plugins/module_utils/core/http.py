# SPDX-License-Identifier: GPL-3.0-or-later
"""The one HTTP client of the collection: health checks, smoke tests and Prometheus all go through ``fetch``.

What every caller gets without asking:

- ``timeout`` bounds the whole request (connection, TLS handshake, redirects, headers and body): a
  timer shuts the socket down when the time is up, so a peer that trickles its answer a byte at a
  time cannot hold a run longer.
- Credentials go only to the origin they were given for: the URL's userinfo (sent as basic auth)
  and the ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` headers are dropped when a
  redirect names another scheme, host or port.
- Only http and https, also where a redirect points; never through a proxy of the environment.
- The body is read up to ``limit`` bytes; ``Response.truncated`` says when there was more.
- Every message names the URL with its userinfo masked (``_redact``), and no exception other than
  ``HttpError`` leaves ``fetch``.
"""

from __future__ import annotations

import base64
import http.client
import socket
import ssl
import threading
import urllib.parse
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .errors import StellaOpsError
from .redact import redact

BODY_LIMIT = 1024 * 1024
_MAX_REDIRECTS = 10
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# headers that carry credentials: sent to the first origin only
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class HttpError(StellaOpsError):
    """The request got no complete answer; ``timed_out`` when its deadline ran out."""

    def __init__(self, message: str, timed_out: bool = False) -> None:
        super().__init__(message)
        self.timed_out = timed_out


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    truncated: bool = False
    content_type: str = ""

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def check_url(url: object, field: str = "url", shown: Optional[str] = None) -> str:
    """``url`` if it is an http(s) address with a host and a valid port, else one sentence naming ``field``.

    ``shown`` is how the sentence names the URL (quoted, its userinfo masked, when not given).
    """
    if not isinstance(url, str):
        raise StellaOpsError(f"{field} must be an http:// or https:// address, got {type(url).__name__}.")
    shown = repr(redact(url)) if shown is None else shown
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number from 0 to 65535
    except ValueError as err:  # an invalid IPv6 literal or port
        raise StellaOpsError(f"{field} {shown} is not a valid address ({err}).") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise StellaOpsError(f"{field} must be an http:// or https:// address with a host, got {shown}.")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise StellaOpsError(f"{field} {shown} holds a space or a control character; encode it (%20, %0A).")
    return url


class _Deadline:
    """Shuts down the sockets it watches when ``seconds`` have passed, so that no read outlasts the request."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        # the plain socket's shutdown, also under TLS: it wakes a blocked read at once
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:
        pass


def _connection(parts: urllib.parse.SplitResult, timeout: float, deadline: _Deadline) -> http.client.HTTPConnection:
    host = parts.hostname or ""
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(host, parts.port, timeout=timeout, context=ssl.create_default_context())
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=timeout)
    # The socket factory that connect() calls (an instance attribute of http.client since Python 3.4): the
    # deadline watches the socket from the moment it exists, so it also bounds the TLS handshake that follows.
    create = connection._create_connection  # type: ignore[attr-defined]

    def watched(*args: Any, **kwargs: Any) -> socket.socket:
        return deadline.watch(create(*args, **kwargs))

    connection._create_connection = watched  # type: ignore[attr-defined]
    return connection


def _origin(parts: urllib.parse.SplitResult) -> tuple[str, Optional[str], Optional[int]]:
    return parts.scheme, parts.hostname, parts.port


def _exchange(
    method: str, url: str, body: Optional[bytes], headers: Mapping[str, str], timeout: float, limit: int, follow_redirects: bool, deadline: _Deadline
) -> Response:
    first = urllib.parse.urlsplit(url)
    for _hop in range(_MAX_REDIRECTS + 1):
        parts = urllib.parse.urlsplit(url)
        sent = dict(headers)
        if _origin(parts) != _origin(first):
            sent = {name: value for name, value in sent.items() if name.lower() not in _CREDENTIAL_HEADERS}
        elif first.username is not None and not any(name.lower() == "authorization" for name in sent):
            user = urllib.parse.unquote(first.username)
            password = urllib.parse.unquote(first.password or "")
            sent["Authorization"] = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        connection = _connection(parts, timeout, deadline)
        try:
            connection.request(method, urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, "")), body=body, headers=sent)
            response = connection.getresponse()
            status, location = response.status, response.getheader("Location")
            content_type = response.getheader("Content-Type") or ""
            data = response.read(limit + 1)
        finally:
            connection.close()
        if not (follow_redirects and status in _REDIRECTS and location):
            return Response(status, data[:limit], len(data) > limit, content_type)
        url = urllib.parse.urljoin(url, location)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"redirected to {redact(url)}, which is not http or https")
        if status == 303 or (status in (301, 302) and method == "POST"):
            # what browsers and urllib do: the redirected request is a GET without the body
            method, body = "GET", None
    raise ValueError(f"more than {_MAX_REDIRECTS} redirects")


def fetch(
    method: str,
    url: str,
    *,
    timeout: float,
    body: Optional[bytes] = None,
    headers: Optional[Mapping[str, str]] = None,
    follow_redirects: bool = True,
    limit: int = BODY_LIMIT,
    shown: Optional[str] = None,
) -> Response:
    """Send one request and read its answer within ``timeout`` seconds; ``HttpError`` when there is none.

    ``shown`` is how messages name the URL (the URL with its userinfo masked when not given). A status
    of 4xx or 5xx is an answer, not an error: the caller judges it.
    """
    shown = redact(url) if shown is None else shown
    request_headers = {"User-Agent": "stellaops.deploy", "Accept": "*/*", **(headers or {})}
    with _Deadline(timeout) as deadline:
        try:
            check_url(url)
            answer = _exchange(method, url, body, request_headers, timeout, limit, follow_redirects, deadline)
        except (http.client.HTTPException, OSError, ValueError, StellaOpsError) as err:
            if deadline.expired or isinstance(err, TimeoutError):
                raise HttpError(f"{method} {shown} did not answer within {timeout:g} s", timed_out=True) from None
            reason = getattr(err, "strerror", None) or str(err) or type(err).__name__
            raise HttpError(f"{method} {shown} failed: {redact(reason)}") from None
    if deadline.expired:  # the socket was shut down under a read: what came back is cut short
        raise HttpError(f"{method} {shown} did not answer within {timeout:g} s", timed_out=True)
    return answer
