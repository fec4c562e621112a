# SPDX-License-Identifier: GPL-3.0-or-later
"""Metric gates: the HTTP client against a local server that replays answers captured from Prometheus
2.42 (Debian), and the gate logic (pass, breach, hold, inconclusive, limits) with a scripted clock."""

from __future__ import annotations

import http.server
import math
import re
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.prometheus import (
    Gate,
    PrometheusClient,
    PrometheusUnreachable,
    PromQLError,
    check_queries,
    evaluate,
    gates_from_list,
    read_gate,
)
from hostile import Trickler, finishes

# Answers of Prometheus 2.42.0+ds (Debian 12) to POST /api/v1/query, captured in the sandbox.
CAPTURED: dict[str, tuple[int, str]] = {
    "up": (200, '{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"up",'
                '"instance":"127.0.0.1:59091","job":"stellaops-sandbox"},"value":[1796174177.992,"1"]}]}}'),
    "empty": (200, '{"status":"success","data":{"resultType":"vector","result":[]}}'),
    "0/0": (200, '{"status":"success","data":{"resultType":"scalar","result":[1796174178.355,"NaN"]}}'),
    "sum(rate(": (400, '{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": '
                       '1:10: parse error: unclosed left parenthesis"}'),
    "up[1m]": (200, '{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"up"},'
                    '"values":[[1796174118.851,"1"],[1796174119.865,"1"]]}]}}'),
    "two": (200, '{"status":"success","data":{"resultType":"vector","result":['
                 '{"metric":{"service":"a"},"value":[1,"0.002"]},{"metric":{"service":"b"},"value":[1,"0.04"]},'
                 '{"metric":{"service":"c"},"value":[1,"NaN"]}]}}'),
    "broken": (200, '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":"1"}, 7]}}'),
}  # fmt: skip


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    class Replay(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers["Content-Length"])
            query = urllib.parse.parse_qs(self.rfile.read(length).decode())["query"][0]
            status, body = CAPTURED.get(query, (502, "<html>Bad Gateway</html>"))
            self.send_response(status)
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            """Quiet."""

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Replay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_query_reads_vector_and_scalar(prometheus: str) -> None:
    client = PrometheusClient(prometheus)
    assert client.query("up") == [({"__name__": "up", "instance": "127.0.0.1:59091", "job": "stellaops-sandbox"}, 1.0)]
    assert client.query("empty") == []
    [(labels, value)] = client.query("0/0")
    assert labels == {} and math.isnan(value)


def test_promql_error_is_one_sentence_naming_gate_and_query(prometheus: str) -> None:
    with pytest.raises(PromQLError) as raised:
        read_gate(PrometheusClient(prometheus), Gate("error_rate", "sum(rate(", 0.01))
    message = str(raised.value)
    assert message == ("Gate error_rate: prometheus rejected the query 'sum(rate(': invalid parameter \"query\": "
                       "1:10: parse error: unclosed left parenthesis.")  # fmt: skip
    assert "\n" not in message


def test_range_vector_is_refused(prometheus: str) -> None:
    with pytest.raises(PromQLError, match="returns a matrix result; a gate needs an instant vector or a scalar"):
        PrometheusClient(prometheus).query("up[1m]")


def test_non_api_answer_and_closed_port_are_unreachable(prometheus: str) -> None:
    with pytest.raises(PrometheusUnreachable, match="answered HTTP 502 without Prometheus' JSON API: <html>Bad Gateway</html>"):
        PrometheusClient(prometheus).query("anything else")
    with pytest.raises(PrometheusUnreachable, match="does not answer"):
        PrometheusClient("http://127.0.0.1:1", timeout=2).query("up")


def test_nan_is_no_data_and_the_worst_series_decides(prometheus: str) -> None:
    client = PrometheusClient(prometheus)
    assert read_gate(client, Gate("ratio", "0/0", 0.01)).state == "inconclusive"
    above = read_gate(client, Gate("errors", "two", 0.01))
    assert (above.state, above.value, above.series) == ("breach", 0.04, 2)
    below = read_gate(client, Gate("availability", "two", 0.001, comparison="below"))
    assert (below.state, below.value) == ("pass", 0.002)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], "gates: expected at least one gate."),
        ([{"name": "", "query": "up", "threshold": 1}], "gates[0].name: expected a non-empty string."),
        ([{"name": "a", "query": " ", "threshold": 1}], "gates[0].query (gate a): expected a non-empty PromQL expression."),
        ([{"name": "a", "query": "up", "threshold": "x"}], "gates[0].threshold (gate a) must be a number from -1e+15 to 1e+15, got 'x'."),
        ([{"name": "a", "query": "up", "threshold": 1, "action": "pause"}], "gates[0].action (gate a): expected one of abort, hold, rollback, got 'pause'."),
        ([{"name": "a", "query": "up", "threshold": 1, "hold_limit": -1}], "gates[0].hold_limit (gate a) must be a number from 0 to 604800, got -1."),
        ([{"name": "a", "query": "up", "threshold": 1}, {"name": "a", "query": "up", "threshold": 2}],
         "gates: the name 'a' is used twice; each gate needs its own name."),
        ([{"name": "a", "query": "up", "threshold": 1, "comparison": "over"}], "gates[0].comparison (gate a): expected one of above, below, got 'over'."),
    ],
)  # fmt: skip
def test_bad_gates_are_one_sentence(raw: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(StellaOpsError) as raised:
        gates_from_list(raw)
    assert str(raised.value) == message


def test_url_must_be_http() -> None:
    with pytest.raises(StellaOpsError, match="url must be an http:// or https:// address with a host, got 'prometheus:9090'."):
        PrometheusClient("prometheus:9090")


def test_a_trickling_prometheus_is_unreachable_within_the_timeout_and_its_password_stays_hidden() -> None:
    trickler = Trickler(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n{")
    try:
        client = PrometheusClient(f"http://gate:p@ss@word@127.0.0.1:{trickler.port}", timeout=1)
        outcome = finishes(lambda: client.query("up"), seconds=10)
        assert isinstance(outcome, PrometheusUnreachable), outcome
        shown = f"http://********@127.0.0.1:{trickler.port}"
        assert str(outcome) == f"Prometheus at {shown} does not answer: POST {shown}/api/v1/query did not answer within 1 s."
    finally:
        trickler.close()


def test_a_malformed_sample_is_one_sentence(prometheus: str) -> None:
    message = "The answer to the query 'broken' is not Prometheus' result format (a sample without a numeric value)."
    with pytest.raises(PrometheusUnreachable, match=re.escape(message)):
        PrometheusClient(prometheus).query("broken")


class Script:
    """Answers per query, one per evaluation (the last one repeats), and a clock the sleeps advance."""

    def __init__(self, answers: dict[str, list[list[float]]]) -> None:
        self.answers = answers
        self.calls: dict[str, int] = {}
        self.now = 100.0
        self.sleeps: list[float] = []

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        index = self.calls.get(promql, 0)
        self.calls[promql] = index + 1
        values = self.answers[promql][min(index, len(self.answers[promql]) - 1)]
        return [({}, value) for value in values]

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def run(script: Script, gates: list[Gate], interval: float = 5.0) -> Any:
    return evaluate(script, gates, interval=interval, clock=script.clock, sleep=script.sleep)


GUIDE = [
    Gate("error_rate", "errors", 0.01, action="abort", inconclusive_limit=20),
    Gate("latency_p99", "p99", 5.0, action="hold", hold_limit=30),
    Gate("evidence_failures", "evidence", 0.0, action="rollback"),
]


def test_all_pass_in_one_evaluation() -> None:
    script = Script({"errors": [[0.002]], "p99": [[0.8]], "evidence": [[0.0]]})
    verdict = run(script, GUIDE)
    assert (verdict.verdict, verdict.evaluations, script.sleeps) == ("pass", 1, [])
    assert [reading.state for reading in verdict.readings] == ["pass", "pass", "pass"]


def test_error_rate_over_one_percent_aborts_naming_gate_query_and_value() -> None:
    verdict = run(Script({"errors": [[0.0412]], "p99": [[0.8]], "evidence": [[0.0]]}), GUIDE)
    assert verdict.verdict == "abort"
    assert verdict.message == "Gate error_rate aborts: query 'errors' returned 0.0412, above the threshold 0.01."
    assert verdict.gate.gate.name == "error_rate"


def test_evidence_failure_rolls_back_before_an_abort() -> None:
    verdict = run(Script({"errors": [[0.5]], "p99": [[0.8]], "evidence": [[1.0]]}), GUIDE)
    assert verdict.verdict == "rollback"
    assert verdict.message == "Gate evidence_failures rolls back: query 'evidence' returned 1, above the threshold 0."


def test_latency_holds_then_passes_when_it_recovers() -> None:
    script = Script({"errors": [[0.0]], "p99": [[7.5], [6.1], [1.2]], "evidence": [[0.0]]})
    verdict = run(script, GUIDE)
    assert (verdict.verdict, verdict.evaluations, script.sleeps) == ("pass", 3, [5.0, 5.0])


def test_latency_held_past_its_limit_aborts() -> None:
    script = Script({"errors": [[0.0]], "p99": [[7.5]], "evidence": [[0.0]]})
    verdict = run(script, GUIDE, interval=10)
    assert verdict.verdict == "abort"
    assert verdict.evaluations == 4  # at 0, 10, 20 s it holds; at 30 s the limit is reached
    assert verdict.message == "Gate latency_p99 aborts after holding 30 s (its hold limit is 30 s): query 'p99' returned 7.5, above the threshold 5."


def test_no_data_is_inconclusive_never_a_pass_and_aborts_past_its_limit() -> None:
    script = Script({"errors": [[], [math.nan]], "p99": [[0.1]], "evidence": [[0.0]]})
    verdict = run(script, GUIDE, interval=10)
    assert verdict.verdict == "abort"
    assert verdict.evaluations == 3
    assert verdict.readings[0].state == "inconclusive"
    assert verdict.message == "Gate error_rate aborts: it stayed inconclusive for 20 s (its limit is 20 s); query 'errors' returned no data."


def test_inconclusive_then_data_passes_and_a_new_gap_starts_a_new_wait() -> None:
    script = Script({"errors": [[], [0.001]], "p99": [[0.1]], "evidence": [[0.0]]})
    assert run(script, GUIDE).verdict == "pass"
    # e: no data at 0 s, data at 10 s, no data again from 20 s; h keeps the gates asked (it holds)
    script = Script({"e": [[], [0.02], []], "h": [[9.0]]})
    gates = [Gate("e", "e", 0.05, inconclusive_limit=15), Gate("h", "h", 5.0, action="hold", hold_limit=100)]
    verdict = run(script, gates, interval=10)
    # the wait restarts at 20 s, so the limit of 15 s runs out at 40 s (the fifth evaluation), not at 20 s
    assert (verdict.verdict, verdict.evaluations, verdict.gate.gate.name) == ("abort", 5, "e")
    assert "stayed inconclusive for 20 s" in verdict.message


def test_check_queries_judges_nothing() -> None:
    readings = check_queries(Script({"errors": [[0.9]], "p99": [[]], "evidence": [[3.0]]}), GUIDE)
    assert [reading.state for reading in readings] == ["breach", "inconclusive", "breach"]
