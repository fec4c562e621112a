# SPDX-License-Identifier: GPL-3.0-or-later
"""Metric gates between the traffic steps of a blue/green cutover, judged by Prometheus.

A gate is a PromQL query, a threshold and what a breach does: ``abort`` (stop, traffic back to
blue), ``hold`` (stay at this step and ask again until the hold limit, then abort) or
``rollback`` (traffic back to blue at once, canary removed). The guide's defaults: error rate
above 1 % aborts, p99 latency above 5 s holds, any evidence failure rolls back.

A query that returns no data, or only NaN (a ratio of zero traffic), is *inconclusive*: never a
pass. The gates are asked again every ``interval`` seconds; a gate inconclusive past its limit
aborts. A query that returns several series is judged by its worst one. Messages name the gate,
the query and the value it saw.

Queries go through the collection's one HTTP client (``_http``: a deadline on the whole request,
credentials to Prometheus' origin only, a bounded answer, no proxy); ``clock`` and ``sleep`` are
injectable so that unit tests control time. Messages name Prometheus with its userinfo masked.
"""

from __future__ import annotations

import json
import math
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.http import HttpError, check_url, fetch
from ..core.numbers import number_in
from ..core.redact import redact

ACTIONS = ("abort", "hold", "rollback")
COMPARISONS = ("above", "below")
PASS, BREACH, INCONCLUSIVE = "pass", "breach", "inconclusive"
_BODY_LIMIT = 8 * 1024 * 1024


class PromQLError(StellaOpsError):
    """Prometheus rejected a query (syntax, unknown function, wrong result type)."""


class PrometheusUnreachable(StellaOpsError):
    """Prometheus did not answer, or did not answer with its API."""


@dataclass(frozen=True)
class Gate:
    name: str
    query: str
    threshold: float
    comparison: str = "above"
    action: str = "abort"
    inconclusive_limit: float = 60.0
    hold_limit: float = 300.0

    def breached_by(self, value: float) -> bool:
        return value > self.threshold if self.comparison == "above" else value < self.threshold

    def worst(self, values: Sequence[float]) -> float:
        return max(values) if self.comparison == "above" else min(values)


@dataclass
class Reading:
    """What one gate saw at one evaluation."""

    gate: Gate
    state: str
    value: Optional[float] = None
    series: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.gate.name,
            "query": self.gate.query,
            "state": self.state,
            "value": self.value,
            "series": self.series,
            "threshold": self.gate.threshold,
            "comparison": self.gate.comparison,
            "action": self.gate.action,
        }


@dataclass
class Verdict:
    """``pass``, ``abort`` or ``rollback``, the gate that decided it and why."""

    verdict: str
    message: str
    readings: list[Reading] = field(default_factory=list)
    gate: Optional[Reading] = None
    evaluations: int = 0
    elapsed: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        decided = self.gate.as_dict() if self.gate else None
        return {
            "verdict": self.verdict,
            "message": self.message,
            "gate": decided,
            "gates": [reading.as_dict() for reading in self.readings],
            "evaluations": self.evaluations,
            "elapsed": round(self.elapsed, 3),
        }


def gate_from_dict(raw: dict[str, Any], where: str) -> Gate:
    """A Gate from an option dict; ``where`` (e.g. ``gates[2]``) names it in errors."""
    name = raw.get("name")
    query = raw.get("query")
    if not isinstance(name, str) or not name.strip():
        raise StellaOpsError(f"{where}.name: expected a non-empty string.")
    if not isinstance(query, str) or not query.strip():
        raise StellaOpsError(f"{where}.query (gate {name}): expected a non-empty PromQL expression.")
    threshold = number_in(raw.get("threshold"), f"{where}.threshold (gate {name})", -1e15, 1e15)
    comparison = raw.get("comparison") or "above"
    action = raw.get("action") or "abort"
    if comparison not in COMPARISONS:
        raise StellaOpsError(f"{where}.comparison (gate {name}): expected one of {', '.join(COMPARISONS)}, got {comparison!r}.")
    if action not in ACTIONS:
        raise StellaOpsError(f"{where}.action (gate {name}): expected one of {', '.join(ACTIONS)}, got {action!r}.")
    limits = {}
    for key, default in (("inconclusive_limit", 60.0), ("hold_limit", 300.0)):
        value = raw.get(key)
        limits[key] = default if value is None else float(number_in(value, f"{where}.{key} (gate {name})", 0, 7 * 86400))
    return Gate(name.strip(), query.strip(), float(threshold), comparison, action, **limits)


def gates_from_list(raw: Sequence[dict[str, Any]]) -> list[Gate]:
    if not raw:
        raise StellaOpsError("gates: expected at least one gate.")
    gates = [gate_from_dict(item, f"gates[{index}]") for index, item in enumerate(raw)]
    seen: set[str] = set()
    for gate in gates:
        if gate.name in seen:
            raise StellaOpsError(f"gates: the name {gate.name!r} is used twice; each gate needs its own name.")
        seen.add(gate.name)
    return gates


def _first_line(text: str) -> str:
    return " ".join(text.split())[:300]


class PrometheusClient:
    """Instant queries through Prometheus' HTTP API (``/api/v1/query``)."""

    def __init__(self, url: str, timeout: float = 10.0, bearer_token: Optional[str] = None) -> None:
        self.url = check_url(url).rstrip("/")
        self.shown = redact(self.url)
        self.timeout = timeout
        self._headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        if bearer_token:
            self._headers["Authorization"] = f"Bearer {bearer_token}"

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """The series of an instant query as (labels, value); raises PromQLError or PrometheusUnreachable."""
        body = urllib.parse.urlencode({"query": promql}).encode()
        try:
            # Prometheus answers a bad query with 400 or 422 and its JSON error document: judged below
            answer = fetch("POST", f"{self.url}/api/v1/query", timeout=self.timeout, body=body, headers=self._headers, limit=_BODY_LIMIT)
        except HttpError as failure:
            raise PrometheusUnreachable(f"Prometheus at {self.shown} does not answer: {failure.message}.") from None
        status = answer.status
        if answer.truncated:
            limit = f"{_BODY_LIMIT // (1024 * 1024)} MiB"
            raise PrometheusUnreachable(f"Prometheus at {self.shown} answered the query {promql!r} with more than {limit}; narrow it.")
        try:
            document = json.loads(answer.body)
        except ValueError:
            raise PrometheusUnreachable(f"{self.shown} answered HTTP {status} without Prometheus' JSON API: {_first_line(answer.text())}") from None
        if not isinstance(document, dict) or document.get("status") != "success":
            error_type = document.get("errorType", "error") if isinstance(document, dict) else "error"
            error = document.get("error", "") if isinstance(document, dict) else ""
            if error_type in ("bad_data", "execution") or status == 400:
                raise PromQLError(f"Prometheus rejected the query {promql!r}: {_first_line(str(error))}.")
            raise PrometheusUnreachable(f"Prometheus at {self.shown} failed the query {promql!r} (HTTP {status}, {error_type}): {_first_line(str(error))}.")
        return _series(document.get("data") or {}, promql)


def _series(data: dict[str, Any], promql: str) -> list[tuple[dict[str, str], float]]:
    kind = data.get("resultType")
    result = data.get("result")
    try:
        if kind == "scalar" and isinstance(result, list) and len(result) == 2:
            return [({}, float(result[1]))]
        if kind == "vector" and isinstance(result, list):
            return [(dict(item.get("metric") or {}), float(item["value"][1])) for item in result]
    except (AttributeError, IndexError, KeyError, TypeError, ValueError):
        raise PrometheusUnreachable(f"The answer to the query {promql!r} is not Prometheus' result format (a sample without a numeric value).") from None
    raise PromQLError(f"The query {promql!r} returns a {kind or 'malformed'} result; a gate needs an instant vector or a scalar.")


def read_gate(client: PrometheusClient, gate: Gate) -> Reading:
    """One evaluation of one gate. NaN values (0/0 ratios) count as no data."""
    try:
        series = client.query(gate.query)
    except PromQLError as error:
        raise PromQLError(f"Gate {gate.name}: {error.message[0].lower()}{error.message[1:]}") from None
    values = [value for _labels, value in series if not math.isnan(value)]
    if not values:
        return Reading(gate, INCONCLUSIVE)
    worst = gate.worst(values)
    return Reading(gate, BREACH if gate.breached_by(worst) else PASS, worst, len(values))


def _value(value: Optional[float]) -> str:
    return "no data" if value is None else f"{value:.6g}"


def _breach_message(reading: Reading, verdict: str, extra: str = "") -> str:
    gate = reading.gate
    return (
        f"Gate {gate.name} {'rolls back' if verdict == 'rollback' else 'aborts'}{extra}: "
        f"query {gate.query!r} returned {_value(reading.value)}, {gate.comparison} the threshold {gate.threshold:g}."
    )


def evaluate(
    client: PrometheusClient,
    gates: Sequence[Gate],
    interval: float = 15.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Verdict:
    """Ask every gate until all pass, one decides (rollback before abort), or a limit runs out."""
    start = clock()
    # (gate, state) -> when the gate entered that state; a gate that changes state starts a new wait
    since: dict[tuple[str, str], float] = {}
    evaluations = 0
    while True:
        readings = [read_gate(client, gate) for gate in gates]
        evaluations += 1
        now = clock()
        outcome = _decide(readings, since, now)
        if outcome is not None:
            kind, message, reading = outcome
            return Verdict(kind, message, readings, reading, evaluations, now - start)
        if all(reading.state == PASS for reading in readings):
            return Verdict(PASS, f"All {len(readings)} gates pass.", readings, None, evaluations, now - start)
        sleep(interval)


def _decide(readings: Sequence[Reading], since: dict[tuple[str, str], float], now: float) -> Optional[tuple[str, str, Reading]]:
    """The verdict that one evaluation forces (rollback before abort before a limit), or None to go on."""
    breaches = [reading for reading in readings if reading.state == BREACH]
    for action in ("rollback", "abort"):
        for reading in breaches:
            if reading.gate.action == action:
                return action, _breach_message(reading, action), reading
    for reading in readings:
        gate = reading.gate
        for state in (BREACH, INCONCLUSIVE):
            if state != reading.state:
                since.pop((gate.name, state), None)
        if reading.state == PASS:
            continue
        waited = now - since.setdefault((gate.name, reading.state), now)
        if reading.state == BREACH and waited >= gate.hold_limit:
            return "abort", _breach_message(reading, "abort", f" after holding {waited:.0f} s (its hold limit is {gate.hold_limit:g} s)"), reading
        if reading.state == INCONCLUSIVE and waited >= gate.inconclusive_limit:
            message = (
                f"Gate {gate.name} aborts: it stayed inconclusive for {waited:.0f} s (its limit is "
                f"{gate.inconclusive_limit:g} s); query {gate.query!r} returned no data."
            )
            return "abort", message, reading
    return None


def check_queries(client: PrometheusClient, gates: Sequence[Gate]) -> list[Reading]:
    """Run every query once (PromQL errors and an unreachable Prometheus surface), judging nothing."""
    return [read_gate(client, gate) for gate in gates]
