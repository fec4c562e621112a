# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox's metrics exporter (scripts/metrics_exporter.py), run as the sandbox runs it, on a free port."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "metrics_exporter.py"


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(SCRIPT), "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/health", timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                process.kill()
                raise
            time.sleep(0.1)
    yield url
    process.kill()
    process.wait()


def post(url: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"{url}/traffic", data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def sample(text: str, series: str) -> float:
    match = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    assert match, f"{series} not in the exposition"
    return float(match.group(1))


def test_driven_traffic_shows_as_counters_and_histogram(exporter: str) -> None:
    status, plan = post(exporter, {"namespace": "ns-a", "service": "web", "requests_per_second": 100, "error_ratio": 0.25,
                                   "latency_seconds": 0.3, "duration_seconds": 1})  # fmt: skip
    assert status == 202 and plan["error_ratio"] == 0.25
    time.sleep(1.6)
    text = urllib.request.urlopen(f"{exporter}/metrics", timeout=5).read().decode()
    ok = sample(text, 'http_requests_total{namespace="ns-a",service="web",status="200"}')
    errors = sample(text, 'http_requests_total{namespace="ns-a",service="web",status="500"}')
    assert errors / (ok + errors) == pytest.approx(0.25)
    assert sample(text, 'http_request_duration_seconds_bucket{namespace="ns-a",service="web",le="0.25"}') == 0
    assert sample(text, 'http_request_duration_seconds_bucket{namespace="ns-a",service="web",le="0.5"}') == ok + errors
    assert sample(text, 'evidence_operations_total{namespace="ns-a",outcome="failure"}') == 0


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"service": "web"}, "namespace: expected a non-empty string without quotes or backslashes"),
        ({"namespace": 'a"b', "service": "web"}, "namespace: expected a non-empty string without quotes or backslashes"),
        ({"namespace": "a", "service": "web", "error_ratio": 2}, "error_ratio: expected a number between 0 and 1"),
        ({"namespace": "a", "service": "web", "duration_seconds": -1}, "duration_seconds: expected a number >= 0"),
    ],
)
def test_bad_traffic_request_is_refused_with_the_field(exporter: str, body: dict[str, object], error: str) -> None:
    assert post(exporter, body) == (400, {"error": error})
