# SPDX-License-Identifier: GPL-3.0-or-later
"""Request metrics for the sandbox's Prometheus to scrape, driven by tests (standard library only).

    metrics_exporter.py --port P

GET  /metrics   Prometheus text format: ``http_requests_total{namespace,service,status}``,
                ``http_request_duration_seconds`` (histogram by ``namespace,service``) and
                ``evidence_operations_total{namespace,outcome}``.
POST /traffic   JSON ``{"namespace", "service", "requests_per_second", "error_ratio",
                "latency_seconds", "evidence_failures_per_second", "duration_seconds"}``: counts
                that much traffic, spread over the duration, so that ``rate()`` sees it.
GET  /health    200 while the exporter runs.

The numbers are what a test asks for, not traffic of a real service: they let the metric gates be
checked against real PromQL results of a real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TICK_SECONDS = 0.25
LIMITS = {"requests_per_second": 10_000.0, "duration_seconds": 3600.0, "latency_seconds": 120.0}


class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], float] = defaultdict(float)
        self.buckets: dict[tuple[str, str], list[float]] = {}
        self.sums: dict[tuple[str, str], float] = defaultdict(float)
        self.evidence: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, namespace: str, service: str, requests: float, errors: float, latency: float, evidence_failures: float) -> None:
        key = (namespace, service)
        with self.lock:
            self.requests[(namespace, service, "200")] += requests - errors
            self.requests[(namespace, service, "500")] += errors
            counts = self.buckets.setdefault(key, [0.0] * (len(BUCKETS) + 1))
            for index, bound in enumerate(BUCKETS):
                if latency <= bound:
                    counts[index] += requests
            counts[-1] += requests
            self.sums[key] += latency * requests
            self.evidence[(namespace, "success")] += requests - evidence_failures
            self.evidence[(namespace, "failure")] += evidence_failures

    def render(self) -> str:
        lines = ["# TYPE http_requests_total counter"]
        with self.lock:
            for (namespace, service, status), value in sorted(self.requests.items()):
                lines.append(f'http_requests_total{{namespace="{namespace}",service="{service}",status="{status}"}} {value:g}')
            lines.append("# TYPE http_request_duration_seconds histogram")
            for (namespace, service), counts in sorted(self.buckets.items()):
                labels = f'namespace="{namespace}",service="{service}"'
                for bound, count in zip((*(f"{b:g}" for b in BUCKETS), "+Inf"), counts, strict=True):
                    lines.append(f'http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {count:g}')
                lines.append(f"http_request_duration_seconds_sum{{{labels}}} {self.sums[(namespace, service)]:g}")
                lines.append(f"http_request_duration_seconds_count{{{labels}}} {counts[-1]:g}")
            lines.append("# TYPE evidence_operations_total counter")
            for (namespace, outcome), value in sorted(self.evidence.items()):
                lines.append(f'evidence_operations_total{{namespace="{namespace}",outcome="{outcome}"}} {value:g}')
        return "\n".join(lines) + "\n"


def traffic_plan(body: dict[str, Any]) -> dict[str, Any]:
    """The validated /traffic request; ValueError names the field that is wrong."""
    plan: dict[str, Any] = {}
    for field in ("namespace", "service"):
        value = body.get(field)
        if not isinstance(value, str) or not value or '"' in value or "\\" in value or "\n" in value:
            raise ValueError(f"{field}: expected a non-empty string without quotes or backslashes")
        plan[field] = value
    for field, default in (("requests_per_second", 20.0), ("error_ratio", 0.0), ("latency_seconds", 0.05),
                           ("evidence_failures_per_second", 0.0), ("duration_seconds", 10.0)):  # fmt: skip
        value = body.get(field, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"{field}: expected a number >= 0")
        if field in LIMITS and value > LIMITS[field]:
            raise ValueError(f"{field}: expected at most {LIMITS[field]:g}")
        plan[field] = float(value)
    if plan["error_ratio"] > 1:
        raise ValueError("error_ratio: expected a number between 0 and 1")
    return plan


def run_traffic(metrics: Metrics, plan: dict[str, Any]) -> None:
    end = time.monotonic() + plan["duration_seconds"]
    while time.monotonic() < end:
        requests = plan["requests_per_second"] * TICK_SECONDS
        metrics.observe(
            plan["namespace"], plan["service"], requests, requests * plan["error_ratio"], plan["latency_seconds"],
            plan["evidence_failures_per_second"] * TICK_SECONDS,
        )  # fmt: skip
        time.sleep(TICK_SECONDS)


def handler_for(metrics: Metrics) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def reply(self, code: int, body: str, content_type: str = "text/plain; version=0.0.4") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
            if self.path == "/metrics":
                self.reply(200, metrics.render())
            elif self.path == "/health":
                self.reply(200, "ok\n")
            else:
                self.reply(404, "not found\n")

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/traffic":
                self.reply(404, "not found\n")
                return
            try:
                length = int(self.headers.get("Content-Length", "0"))
                plan = traffic_plan(json.loads(self.rfile.read(length) or b"{}"))
            except (ValueError, json.JSONDecodeError) as error:
                self.reply(400, json.dumps({"error": str(error)}), "application/json")
                return
            threading.Thread(target=run_traffic, args=(metrics, plan), daemon=True).start()
            self.reply(202, json.dumps(plan), "application/json")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the signature http.server defines
            """Scrapes every second would flood the log."""

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(Metrics()))
    server.serve_forever()


if __name__ == "__main__":
    main()
