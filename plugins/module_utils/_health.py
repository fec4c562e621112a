# SPDX-License-Identifier: GPL-3.0-or-later
"""Health verification after a deployment: HTTP, TCP and command checks with retries.

Follows the release orchestrator's health verifier: every check is tried up to
``retries`` times with ``interval`` seconds between attempts, and reports whether
it became healthy, after how many attempts, and the last message. Checks run in
rounds (one attempt of every still-unhealthy check per round), so the total wait
is that of the slowest check rather than the sum of all. ``sleep`` and ``clock``
are injectable so tests control time; the probes themselves are real (urllib,
socket, and commands as argument lists through the caller's ``run_command``, that
is ``AnsibleModule.run_command`` in the module, bounded by coreutils ``timeout``).
"""

from __future__ import annotations

import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from ._errors import StellaOpsError

CHECK_TYPES = ("http", "tcp", "command")
# rc of coreutils ``timeout``: the command timed out, could not be run, or was not found
_RC_TIMED_OUT = 124
_RC_CANNOT_RUN = 126
_RC_NOT_FOUND = 127
_RC_KILLED = 137

CommandRunner = Callable[[Sequence[str], float], "tuple[int, str, str]"]
DEFAULT_TIMEOUT = 5.0
_BODY_LIMIT = 1024 * 1024


@dataclass
class ProbeResult:
    """One attempt of one check."""

    healthy: bool
    message: str
    status_code: Optional[int] = None


def _opener() -> urllib.request.OpenerDirector:
    # health endpoints are the deployed services themselves: talk to them directly, never through a proxy
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def probe_http(url: str, expected_status: int = 200, body_contains: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT) -> ProbeResult:
    """GET ``url``; healthy when the status is ``expected_status`` and the body holds ``body_contains``."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "stellaops.deploy health_check"})  # noqa: S310
    try:
        with _opener().open(request, timeout=timeout) as response:
            status = int(response.status)
            body = response.read(_BODY_LIMIT)
    except urllib.error.HTTPError as err:
        status = int(err.code)
        body = err.read(_BODY_LIMIT) if err.fp is not None else b""
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        return ProbeResult(False, f"GET {url} failed: {reason}")
    if status != expected_status:
        return ProbeResult(False, f"GET {url} returned status {status}, expected {expected_status}", status)
    if body_contains is not None and body_contains not in body.decode("utf-8", "replace"):
        return ProbeResult(False, f"GET {url} returned status {status} but the body lacks {body_contains!r}", status)
    return ProbeResult(True, f"GET {url} returned status {status}", status)


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
        cmd = [timeout_bin, "--kill-after=2", f"{timeout:g}", *argv] if timeout_bin else list(argv)
        rc, out, err = run_command(cmd)
        return int(rc), str(out or ""), str(err or "")

    return run


def probe_command(argv: Sequence[str], timeout: float, run: CommandRunner, expected_rc: int = 0) -> ProbeResult:
    """Run ``argv`` (no shell) through ``run``; healthy when it exits with ``expected_rc``."""
    shown = " ".join(argv)
    try:
        rc, out, err = run(argv, timeout)
    except FileNotFoundError:
        return ProbeResult(False, f"command {argv[0]!r} not found")
    except OSError as exc:
        return ProbeResult(False, f"command {shown!r} could not run: {exc.strerror or exc}")
    if rc == expected_rc:
        return ProbeResult(True, f"command {shown!r} exited with {rc}")
    if rc in (_RC_TIMED_OUT, _RC_KILLED):
        return ProbeResult(False, f"command {shown!r} did not finish within {timeout:g} s")
    if rc == _RC_NOT_FOUND and "No such file" in err:
        return ProbeResult(False, f"command {argv[0]!r} not found")
    if rc == _RC_CANNOT_RUN and "Permission denied" in err:
        return ProbeResult(False, f"command {argv[0]!r} is not executable")
    lines = (err or out).strip().splitlines()
    tail = f": {lines[-1]}" if lines else ""
    return ProbeResult(False, f"command {shown!r} exited with {rc}, expected {expected_rc}{tail}")


def normalize_check(spec: Mapping[str, Any], index: int = 0) -> dict[str, Any]:
    """Validate one check and fill in its defaults and name."""
    where = f"health check #{index + 1}"
    kind = spec.get("type")
    if kind not in CHECK_TYPES:
        raise StellaOpsError(f"{where}: field type must be one of {', '.join(CHECK_TYPES)}, got {kind!r}.")
    timeout = float(spec.get("timeout") or DEFAULT_TIMEOUT)
    check: dict[str, Any] = {"type": kind, "timeout": timeout}
    if kind == "http":
        url = spec.get("url")
        if not url or urllib.parse.urlsplit(str(url)).scheme not in ("http", "https"):
            raise StellaOpsError(f"{where}: an http check needs field url with an http:// or https:// address, got {url!r}.")
        check.update(
            url=str(url),
            expected_status=int(spec.get("expected_status") or 200),
            body_contains=spec.get("body_contains"),
        )
        default_name = f"http {url}"
    elif kind == "tcp":
        port = spec.get("port")
        if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
            raise StellaOpsError(f"{where}: a tcp check needs field port, a number from 1 to 65535, got {port!r}.")
        check.update(host=str(spec.get("host") or "127.0.0.1"), port=port)
        default_name = f"tcp {check['host']}:{port}"
    else:
        argv = spec.get("command")
        if not isinstance(argv, (list, tuple)) or not argv or not all(isinstance(a, str) for a in argv):
            raise StellaOpsError(f"{where}: a command check needs field command, a non-empty list of strings (argv).")
        check.update(command=list(argv), expected_rc=int(spec.get("expected_rc") or 0))
        default_name = f"command {argv[0]}"
    check["name"] = str(spec.get("name") or default_name)
    return check


def probe(check: Mapping[str, Any], run: Optional[CommandRunner] = None) -> ProbeResult:
    """One attempt of a normalized check; command checks run through ``run``."""
    if check["type"] == "http":
        return probe_http(check["url"], check["expected_status"], check.get("body_contains"), check["timeout"])
    if check["type"] == "tcp":
        return probe_tcp(check["host"], check["port"], check["timeout"])
    if run is None:
        raise StellaOpsError(f"health check {check['name']}: command checks need a command runner.")
    return probe_command(check["command"], check["timeout"], run, check.get("expected_rc", 0))


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
    if retries < 1:
        raise StellaOpsError(f"health checks: retries must be at least 1, got {retries}.")
    if interval < 0:
        raise StellaOpsError(f"health checks: interval must not be negative, got {interval}.")
    normalized = [normalize_check(spec, i) for i, spec in enumerate(checks)]
    started = clock()
    results: list[dict[str, Any]] = [
        {"name": c["name"], "type": c["type"], "healthy": False, "attempts": 0, "message": "not tried"} for c in normalized
    ]
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
