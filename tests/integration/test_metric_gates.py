# SPDX-License-Identifier: GPL-3.0-or-later
"""metric_gate against the sandbox's real Prometheus (Debian's 2.42), which scrapes the sandbox's metrics
exporter every second. Each test drives request traffic of its own (a namespace label of its own) through
the exporter, waits until Prometheus' own PromQL sees it, and runs the module through ansible-playbook."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from prometheus import drive, error_rate, wait_for_value

pytestmark = pytest.mark.sandbox

PLAYBOOK = "tests/integration/playbooks/metric_gate.yml"


def p99(namespace: str) -> str:
    return f'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{namespace="{namespace}"}}[15s])))'


def guide_gates(namespace: str, **limits: Any) -> list[dict[str, Any]]:
    return [
        {"name": "error_rate", "query": error_rate(namespace), "threshold": 0.01, "action": "abort", **limits},
        {"name": "latency_p99", "query": p99(namespace), "threshold": 5, "action": "hold", "hold_limit": 3, **limits},
        {"name": "evidence_failures", "threshold": 0, "action": "rollback", **limits,
         "query": f'sum(increase(evidence_operations_total{{namespace="{namespace}",outcome="failure"}}[15s]))'},
    ]  # fmt: skip


def test_healthy_traffic_passes(sandbox: dict[str, Any], playbook_runner: Any) -> None:
    namespace = drive(sandbox, requests_per_second=40, error_ratio=0.0, latency_seconds=0.2, duration_seconds=20)
    wait_for_value(sandbox, error_rate(namespace))
    result = playbook_runner(PLAYBOOK, extra_vars={"gate_url": sandbox["prometheus"]["url"], "gate_gates": guide_gates(namespace)})
    assert result.rc == 0, result.failure_messages or result.stderr
    gate = result.result("Ask the gates")
    assert gate["verdict"] == "pass" and gate["changed"] is False
    values = {reading["name"]: reading["value"] for reading in gate["gates"]}
    assert values["error_rate"] == 0 and values["evidence_failures"] == 0
    assert 0.1 < values["latency_p99"] <= 0.25  # 0.2 s lands in the 0.25 s bucket


def test_error_rate_over_one_percent_aborts(sandbox: dict[str, Any], playbook_runner: Any) -> None:
    namespace = drive(sandbox, requests_per_second=40, error_ratio=0.1, latency_seconds=0.05, duration_seconds=20)
    seen = wait_for_value(sandbox, error_rate(namespace))
    assert seen > 0.01
    result = playbook_runner(PLAYBOOK, extra_vars={"gate_url": sandbox["prometheus"]["url"], "gate_gates": guide_gates(namespace)})
    assert result.rc == 2
    gate = result.result("Ask the gates")
    assert gate["failed"] is True and gate["verdict"] == "abort"
    assert gate["gate"]["name"] == "error_rate" and gate["gate"]["query"] == error_rate(namespace)
    assert 0.05 < gate["gate"]["value"] < 0.15, gate["gate"]
    assert gate["msg"] == (f"Gate error_rate aborts: query {error_rate(namespace)!r} returned {gate['gate']['value']:.6g}, "
                           "above the threshold 0.01.")  # fmt: skip


def test_evidence_failure_rolls_back(sandbox: dict[str, Any], playbook_runner: Any) -> None:
    namespace = drive(sandbox, requests_per_second=40, evidence_failures_per_second=2, duration_seconds=20)
    wait_for_value(sandbox, guide_gates(namespace)[2]["query"])
    result = playbook_runner(PLAYBOOK, extra_vars={"gate_url": sandbox["prometheus"]["url"], "gate_gates": guide_gates(namespace)})
    gate = result.result("Ask the gates")
    assert (result.rc, gate["verdict"], gate["gate"]["name"]) == (2, "rollback", "evidence_failures")
    assert gate["msg"].startswith("Gate evidence_failures rolls back: query ")


def test_no_data_is_inconclusive_then_aborts(sandbox: dict[str, Any], playbook_runner: Any) -> None:
    namespace = f"gate-silent-{uuid.uuid4().hex[:8]}"  # no traffic at all for this namespace
    gates = guide_gates(namespace, inconclusive_limit=2)
    started = time.monotonic()
    result = playbook_runner(PLAYBOOK, extra_vars={"gate_url": sandbox["prometheus"]["url"], "gate_gates": gates, "gate_interval": 1})
    gate = result.result("Ask the gates")
    assert result.rc == 2 and gate["verdict"] == "abort"
    assert [reading["state"] for reading in gate["gates"]] == ["inconclusive"] * 3
    assert gate["evaluations"] >= 3 and time.monotonic() - started < 60
    assert gate["msg"] == (f"Gate error_rate aborts: it stayed inconclusive for 2 s (its limit is 2 s); "
                           f"query {error_rate(namespace)!r} returned no data.")  # fmt: skip


def test_promql_error_is_one_sentence(sandbox: dict[str, Any], playbook_runner: Any) -> None:
    gates = [{"name": "error_rate", "query": "sum(rate(http_requests_total[1m])", "threshold": 0.01}]
    result = playbook_runner(PLAYBOOK, extra_vars={"gate_url": sandbox["prometheus"]["url"], "gate_gates": gates, "gate_validate_only": True})
    gate = result.result("Ask the gates")
    assert result.rc == 2
    assert gate["msg"] == ("Gate error_rate: prometheus rejected the query 'sum(rate(http_requests_total[1m])': "
                           "invalid parameter \"query\": 1:34: parse error: unclosed left parenthesis.")  # fmt: skip
    assert "Traceback" not in result.stdout + result.stderr
