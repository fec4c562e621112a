# SPDX-License-Identifier: GPL-3.0-or-later
"""Health verification after a deployment: HTTP, TCP and command checks with retries.

Follows the release orchestrator's health verifier: every check is tried up to
``retries`` times with ``interval`` seconds between attempts, and reports whether
it became healthy, after how many attempts, and the last message. Checks run in
rounds (one attempt of every still-unhealthy check per round), so the total wait
is that of the slowest check rather than the sum of all. ``sleep`` and ``clock``
are injectable so tests control time; the probes themselves are real (``_http.fetch``,
socket, and commands as argument lists through the caller's ``run_command``, that
is ``AnsibleModule.run_command`` in the module, bounded by coreutils ``timeout``).

``timeout`` bounds a whole attempt (``_http`` holds the deadline, the same-origin rule for
credentials and the size bound). Results never carry secrets: the user and password of any
``scheme://user:password@`` are shown as ``********``, a command's output is not shown
unless ``show_output`` is set, and a ``no_log`` check shows neither its URL nor its arguments.
"""

from __future__ import annotations

import socket
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.http import HttpError, check_url, fetch
from ..core.numbers import field_number, number_in
from ..core.redact import MASK, USERINFO_RE, one_line, redact
from ..core.runner import TIMED_OUT, bounded_argv

CHECK_TYPES = ("http", "tcp", "command")
# rc of coreutils ``timeout``: the command timed out, could not be run, or was not found
_RC_CANNOT_RUN = 126
_RC_NOT_FOUND = 127

CommandRunner = Callable[[Sequence[str], float], "tuple[int, str, str]"]
DEFAULT_TIMEOUT = 5.0


@dataclass
class ProbeResult:
    """One attempt of one check."""

    healthy: bool
    message: str
    status_code: Optional[int] = None


def secret_values(checks: Sequence[Mapping[str, Any]]) -> set[str]:
    """The strings of ``checks`` that no output may show: the userinfo of URLs (and its password) anywhere."""
    found: set[str] = set()
    for spec in checks:
        texts = [spec.get("url")] + list(spec.get("command") or [])
        for text in texts:
            for match in USERINFO_RE.finditer(text if isinstance(text, str) else ""):
                userinfo = match.group("userinfo")
                password = userinfo.partition(":")[2]
                found.update(value for value in (userinfo, password, urllib.parse.unquote(password)) if value)
    return found


def redact_checks(checks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The checks as they may be shown (the module's invocation): userinfo masked, no_log checks' URL and arguments too."""
    shown = []
    for spec in checks:
        copy = dict(spec)
        if copy.get("no_log"):
            if copy.get("url") is not None:
                copy["url"] = MASK
            if isinstance(copy.get("command"), list) and copy["command"]:
                copy["command"] = [redact(str(copy["command"][0]))] + [MASK] * (len(copy["command"]) - 1)
        else:
            if isinstance(copy.get("url"), str):
                copy["url"] = redact(copy["url"])
            if isinstance(copy.get("command"), list):
                copy["command"] = [redact(arg) if isinstance(arg, str) else arg for arg in copy["command"]]
        shown.append(copy)
    return shown


def probe_http(
    url: str,
    expected_status: int = 200,
    body_contains: Optional[str] = None,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    follow_redirects: bool = True,
    shown: Optional[str] = None,
) -> ProbeResult:
    """GET ``url``; healthy when the status is ``expected_status`` and the body holds ``body_contains``.

    ``timeout`` bounds the whole attempt (connection, redirects, headers and body); ``shown`` is
    how messages name the URL (its userinfo masked when not given).
    """
    try:
        answer = fetch("GET", url, timeout=timeout, follow_redirects=follow_redirects, shown=shown, headers={"User-Agent": "stellaops.deploy health_check"})
    except HttpError as err:
        return ProbeResult(False, err.message)
    shown = redact(url) if shown is None else shown
    status, body = answer.status, answer.body
    if status != expected_status:
        return ProbeResult(False, f"GET {shown} returned status {status}, expected {expected_status}", status)
    if body_contains is not None and body_contains not in body.decode("utf-8", "replace"):
        return ProbeResult(False, f"GET {shown} returned status {status} but the body lacks {body_contains!r}", status)
    return ProbeResult(True, f"GET {shown} returned status {status}", status)


def probe_tcp(host: str, port: int, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """Healthy when a TCP connection to ``host:port`` opens."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as err:
        return ProbeResult(False, f"TCP connection to {host}:{port} failed: {err.strerror or err}")
    return ProbeResult(True, f"TCP connection to {host}:{port} opened")


def command_runner(run_command: Callable[..., Any], timeout_bin: Optional[str]) -> CommandRunner:
    """Run argument lists through ``run_command`` (``module.run_command``), bounded by ``timeout`` when found."""

    def run(argv: Sequence[str], timeout: float) -> tuple[int, str, str]:
        rc, out, err = run_command(bounded_argv(timeout_bin, timeout, argv, 2))
        return int(rc), str(out or ""), str(err or "")

    return run


def probe_command(
    argv: Sequence[str],
    timeout: float,
    run: CommandRunner,
    expected_rc: int = 0,
    *,
    shown: Optional[str] = None,
    show_output: bool = False,
) -> ProbeResult:
    """Run ``argv`` (no shell) through ``run``; healthy when it exits with ``expected_rc``.

    ``shown`` is how messages name the command (its arguments with userinfo masked when not given);
    the last line of its output is added to a failure only with ``show_output``.
    """
    shown = repr(redact(" ".join(argv))) if shown is None else shown
    program = repr(redact(argv[0]))
    try:
        rc, out, err = run(argv, timeout)
    except FileNotFoundError:
        return ProbeResult(False, f"command {program} not found")
    except OSError as exc:
        return ProbeResult(False, f"command {shown} could not run: {exc.strerror or exc}")
    if rc == expected_rc:
        return ProbeResult(True, f"command {shown} exited with {rc}")
    if rc in TIMED_OUT:
        return ProbeResult(False, f"command {shown} did not finish within {timeout:g} s")
    if rc == _RC_NOT_FOUND and "No such file" in err:
        return ProbeResult(False, f"command {program} not found")
    if rc == _RC_CANNOT_RUN and "Permission denied" in err:
        return ProbeResult(False, f"command {program} is not executable")
    lines = (err or out).strip().splitlines() if show_output else []
    tail = f": {redact(lines[-1])}" if lines else ""
    return ProbeResult(False, f"command {shown} exited with {rc}, expected {expected_rc}{tail}")


def _flag(spec: Mapping[str, Any], name: str, default: bool, where: str) -> bool:
    value = spec.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise StellaOpsError(f"{where}: field {name} must be true or false, got {value!r}.")
    return value


def normalize_check(spec: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """Validate one check and fill in its defaults and name (one sentence for any field of the wrong type)."""
    where = f"health check #{index + 1}"
    if not isinstance(spec, Mapping):
        raise StellaOpsError(f"{where} must be a mapping with a field type, got {type(spec).__name__}.")
    kind = spec.get("type")
    if kind not in CHECK_TYPES:
        raise StellaOpsError(f"{where}: field type must be one of {', '.join(CHECK_TYPES)}, got {kind!r}.")
    no_log = _flag(spec, "no_log", False, where)
    check: dict[str, Any] = {"type": kind, "timeout": float(field_number(spec, "timeout", DEFAULT_TIMEOUT, where, 0.001, 86400)), "no_log": no_log}
    if kind == "http":
        url = check_url(spec.get("url"), f"{where}: field url", MASK if no_log else None)
        body_contains = spec.get("body_contains")
        if body_contains is not None and not isinstance(body_contains, str):
            raise StellaOpsError(f"{where}: field body_contains must be a string, got {type(body_contains).__name__}.")
        check.update(
            url=url,
            shown=MASK if no_log else redact(url),
            expected_status=int(field_number(spec, "expected_status", 200, where, 100, 599, integer=True)),
            body_contains=body_contains,
            follow_redirects=_flag(spec, "follow_redirects", True, where),
        )
        default_name = f"http check #{index + 1}" if no_log else f"http {check['shown']}"
    elif kind == "tcp":
        port = spec.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise StellaOpsError(f"{where}: a tcp check needs field port, a number from 1 to 65535, got {port!r}.")
        host = spec.get("host") or "127.0.0.1"
        if not isinstance(host, str):
            raise StellaOpsError(f"{where}: field host must be a string, got {type(host).__name__}.")
        check.update(host=host, port=port)
        default_name = f"tcp {host}:{port}"
    else:
        argv = spec.get("command")
        if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
            raise StellaOpsError(f"{where}: a command check needs field command, a non-empty list of strings (argv).")
        program = redact(argv[0])
        check.update(
            command=list(argv),
            shown=repr(program + " " + " ".join([MASK] * (len(argv) - 1)) if len(argv) > 1 else program) if no_log else repr(redact(" ".join(argv))),
            expected_rc=int(field_number(spec, "expected_rc", 0, where, 0, 255, integer=True)),
            show_output=_flag(spec, "show_output", False, where) and not no_log,
        )
        default_name = f"command {program}"
    name = spec.get("name")
    if name is not None and not isinstance(name, str):
        raise StellaOpsError(f"{where}: field name must be a string, got {type(name).__name__}.")
    # a name is one line of text: it heads a line of the summary, it must not write lines of its own
    check["name"] = one_line(name) if name else default_name
    return check


def probe(check: Mapping[str, Any], run: Optional[CommandRunner] = None) -> ProbeResult:
    """One attempt of a normalized check; command checks run through ``run``."""
    if check["type"] == "http":
        return probe_http(
            check["url"],
            check["expected_status"],
            check.get("body_contains"),
            check["timeout"],
            follow_redirects=check.get("follow_redirects", True),
            shown=check.get("shown"),
        )
    if check["type"] == "tcp":
        return probe_tcp(check["host"], check["port"], check["timeout"])
    if run is None:
        raise StellaOpsError(f"health check {check['name']}: command checks need a command runner.")
    return probe_command(
        check["command"], check["timeout"], run, check.get("expected_rc", 0), shown=check.get("shown"), show_output=check.get("show_output", False)
    )


def run_checks(
    checks: Sequence[Mapping[str, Any]],
    retries: int = 10,
    interval: float = 2.0,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    run_command: Optional[CommandRunner] = None,
    prober: Callable[[Mapping[str, Any], Optional[CommandRunner]], ProbeResult] = probe,
) -> tuple[bool, list[dict[str, Any]]]:
    """Run every check up to ``retries`` times, ``interval`` seconds apart; (all healthy, per-check results).

    ``run_command`` (see ``command_runner``) runs the command checks.
    """
    if not checks:
        raise StellaOpsError("health checks: checks is empty; expected at least one check (an empty list proves nothing).")
    retries = int(number_in(retries, "health checks: retries", 1, 10_000, integer=True))
    interval = number_in(interval, "health checks: interval", 0, 3600)
    normalized = [normalize_check(spec, i) for i, spec in enumerate(checks)]
    started = clock()
    results: list[dict[str, Any]] = [{"name": c["name"], "type": c["type"], "healthy": False, "attempts": 0, "message": "not tried"} for c in normalized]
    for attempt in range(1, retries + 1):
        pending = [i for i, r in enumerate(results) if not r["healthy"]]
        if not pending:
            break
        for i in pending:
            outcome = prober(normalized[i], run_command)
            result = results[i]
            result.update(healthy=outcome.healthy, attempts=attempt, message=outcome.message)
            if outcome.status_code is not None:
                result["status_code"] = outcome.status_code
            result["elapsed"] = round(clock() - started, 3)
        if attempt < retries and any(not r["healthy"] for r in results):
            sleep(interval)
    return all(r["healthy"] for r in results), results


def summarize_failures(results: Sequence[Mapping[str, Any]]) -> str:
    """One line per unhealthy check: its name, its last message and the attempts made."""
    failing = [r for r in results if not r.get("healthy")]
    lines = [f"{len(failing)} of {len(results)} health checks failed:"]
    lines += [f"- {r['name']}: {r['message']} (after {r['attempts']} attempts)" for r in failing]
    return "\n".join(lines)
