# SPDX-License-Identifier: GPL-3.0-or-later
"""Smoke tests after a cutover (the launch runbook's table): HTTP and command checks with expected results.

An HTTP test sends one request (any method, optional body and headers) and expects a status and
text in the body. A test with ``poll_url`` then follows the work it started, as the runbook's scan
submission does: ``{field}`` in ``poll_url`` is filled from the first response's JSON (for example
``{id}``), and the address is read every ``interval`` seconds until it answers ``poll_status`` with
``poll_body_contains``, or ``within`` seconds have passed. A command test runs an argument list (no
shell) and expects an exit code and text in its output. Every test runs; the result lists each.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse
from typing import Any, Callable, Mapping, Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.http import HttpError, check_url, fetch
from ..core.numbers import field_number
from ..core.redact import one_line, redact
from .health import CommandRunner

SMOKE_TYPES = ("http", "command")
_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")
_METHOD = re.compile(r"[A-Z]{1,20}")


def _method(value: Any, where: str) -> str:
    method = str(value or "GET").upper()
    if not _METHOD.fullmatch(method):
        raise StellaOpsError(f"{where}: field method must be an HTTP method such as GET or POST, got {value!r}.")
    return method


def normalize(spec: Mapping[str, Any], index: int) -> dict[str, Any]:
    """Validate one smoke test and fill in its defaults."""
    where = f"smoke test #{index + 1} ({spec.get('name') or 'unnamed'})"
    kind = spec.get("type")
    if kind not in SMOKE_TYPES:
        raise StellaOpsError(f"{where}: field type must be one of {', '.join(SMOKE_TYPES)}, got {kind!r}.")
    test: dict[str, Any] = {"type": kind, "timeout": field_number(spec, "timeout", 10.0, where, 0.001, 86400)}
    if kind == "http":
        url = check_url(spec.get("url"), f"{where}: field url")
        test.update(
            url=url,
            method=_method(spec.get("method"), where),
            body=spec.get("body"),
            headers=dict(spec.get("headers") or {}),
            expected_status=field_number(spec, "expected_status", 200, where, 100, 599, integer=True),
            body_contains=spec.get("body_contains"),
            poll_url=check_url(spec["poll_url"], f"{where}: field poll_url") if spec.get("poll_url") else None,
            poll_status=field_number(spec, "poll_status", 200, where, 100, 599, integer=True),
            poll_body_contains=spec.get("poll_body_contains"),
            within=field_number(spec, "within", 300.0, where, 0, 86400),
            interval=field_number(spec, "interval", 2.0, where, 0, 3600),
        )
        default_name = f"{test['method']} {redact(url)}"
    else:
        argv = spec.get("command")
        if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
            raise StellaOpsError(f"{where}: field command must be a non-empty list of strings (argv).")
        expected_rc = field_number(spec, "expected_rc", 0, where, 0, 255, integer=True)
        test.update(command=list(argv), expected_rc=expected_rc, output_contains=spec.get("output_contains"))
        default_name = f"command {argv[0]}"
    # a name is one line of text: it heads an item of the summary, it must not write lines of its own
    test["name"] = one_line(str(spec["name"])) if spec.get("name") else default_name
    return test


def request(method: str, url: str, body: Optional[str], headers: Mapping[str, str], timeout: float) -> tuple[Optional[int], str, str]:
    """(status, body, error): status None when the request did not get an answer within ``timeout``."""
    data = body.encode() if body is not None else None
    try:
        answer = fetch(method, url, timeout=timeout, body=data, headers={"User-Agent": "stellaops.deploy smoke_test", **headers})
    except HttpError as err:
        return None, "", err.message
    return answer.status, answer.text(), ""


def _expect(method: str, url: str, answer: tuple[Optional[int], str, str], status: int, contains: Optional[str]) -> Optional[str]:
    """Why an answer is not the expected one, or None (the URL's userinfo masked)."""
    url = redact(url)
    code, body, error = answer
    if code is None:
        return error
    if code != status:
        return f"{method} {url} returned status {code}, expected {status}"
    if contains is not None and contains not in body:
        return f"{method} {url} returned status {code} but the body lacks {contains!r}"
    return None


def fill(template: str, body: str) -> str:
    """``{field}`` placeholders filled from the JSON object in ``body``."""
    names = _PLACEHOLDER.findall(template)
    if not names:
        return template
    try:
        document = json.loads(body)
    except ValueError:
        raise StellaOpsError(f"poll_url {redact(template)!r} needs fields from the response, which is not JSON.") from None
    missing = [name for name in names if not isinstance(document, dict) or name not in document]
    if missing:
        raise StellaOpsError(f"poll_url {redact(template)!r} needs field {missing[0]!r}, which the response does not have.")
    # a value is data, never a path or a query of its own: ``../admin`` or ``a?b`` stays one segment
    return _PLACEHOLDER.sub(lambda match: urllib.parse.quote(str(document[match.group(1)]), safe=""), template)


def run_http(test: Mapping[str, Any], *, sleep: Callable[[float], None], clock: Callable[[], float]) -> tuple[bool, str]:
    method, url = test["method"], test["url"]
    answer = request(method, url, test["body"], test["headers"], test["timeout"])
    problem = _expect(method, url, answer, test["expected_status"], test["body_contains"])
    if problem or not test["poll_url"]:
        return problem is None, problem or f"{method} {redact(url)} returned status {answer[0]}"
    try:
        poll_url = fill(str(test["poll_url"]), answer[1])
    except StellaOpsError as error:
        return False, str(error)
    deadline = clock() + test["within"]
    while True:
        problem = _expect("GET", poll_url, request("GET", poll_url, None, {}, test["timeout"]), test["poll_status"], test["poll_body_contains"])
        if problem is None:
            return True, f"{method} {redact(url)} accepted, GET {redact(poll_url)} completed"
        if clock() >= deadline:
            return False, f"not completed within {test['within']:g} s: {problem}"
        sleep(test["interval"])


def run_command(test: Mapping[str, Any], runner: CommandRunner) -> tuple[bool, str]:
    shown = redact(" ".join(test["command"]))
    try:
        rc, out, err = runner(test["command"], test["timeout"])
    except OSError as error:
        return False, f"command {shown!r} could not run: {error.strerror or error}"
    if rc != test["expected_rc"]:
        lines = (err or out).strip().splitlines()
        return False, f"command {shown!r} exited with {rc}, expected {test['expected_rc']}{': ' + redact(lines[-1]) if lines else ''}"
    if test["output_contains"] is not None and test["output_contains"] not in out + err:
        return False, f"command {shown!r} exited with {rc} but its output lacks {test['output_contains']!r}"
    return True, f"command {shown!r} exited with {rc}"


def run_smoke_tests(
    specs: Sequence[Mapping[str, Any]],
    runner: Optional[CommandRunner],
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> list[dict[str, Any]]:
    """Run every test, in order; one result (name, type, passed, message, seconds) for each."""
    tests = [normalize(spec, i) for i, spec in enumerate(specs)]
    results = []
    for test in tests:
        started = clock()
        if test["type"] == "http":
            passed, message = run_http(test, sleep=sleep, clock=clock)
        elif runner is None:
            raise StellaOpsError(f"smoke test {test['name']}: command tests need a command runner.")
        else:
            passed, message = run_command(test, runner)
        results.append({"name": test["name"], "type": test["type"], "passed": passed, "message": message, "seconds": round(clock() - started, 3)})
    return results


def summarize(results: Sequence[Mapping[str, Any]]) -> str:
    failed = [r for r in results if not r["passed"]]
    if not failed:
        return f"All {len(results)} smoke tests passed."
    return f"{len(failed)} of {len(results)} smoke tests failed: " + "; ".join(f"{r['name']}: {r['message']}" for r in failed) + "."
