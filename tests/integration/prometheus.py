# SPDX-License-Identifier: GPL-3.0-or-later
"""Traffic for the sandbox's Prometheus: drive the metrics exporter, wait until PromQL sees it."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
import uuid
from typing import Any


def drive(sandbox: dict[str, Any], **traffic: Any) -> str:
    """Start request traffic of a namespace label of its own through the exporter; return that namespace."""
    namespace = f"gate-{uuid.uuid4().hex[:8]}"
    body = json.dumps({"namespace": namespace, "service": "scanner-web", **traffic}).encode()
    request = urllib.request.Request(f"{sandbox['prometheus']['exporter']['url']}/traffic", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202
    return namespace


def wait_for_value(sandbox: dict[str, Any], query: str, timeout: float = 30) -> float:
    """Poll Prometheus until ``query`` has a value (rate() needs two scrapes inside its window)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        url = f"{sandbox['prometheus']['url']}/api/v1/query?" + urllib.parse.urlencode({"query": query})
        with urllib.request.urlopen(url, timeout=5) as response:
            result = json.load(response)["data"]["result"]
        if result and result[0]["value"][1] != "NaN":
            return float(result[0]["value"][1])
        time.sleep(0.5)
    raise AssertionError(f"Prometheus had no value for {query} within {timeout} s")


def error_rate(namespace: str, window: str = "15s") -> str:
    return (f'sum(rate(http_requests_total{{namespace="{namespace}",status=~"5.."}}[{window}]))'
            f' / sum(rate(http_requests_total{{namespace="{namespace}"}}[{window}]))')  # fmt: skip
