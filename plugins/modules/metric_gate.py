#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: metric_gate
short_description: Judge a traffic step of a blue/green cutover by PromQL queries with thresholds
description:
  - Asks Prometheus (its HTTP API, C(/api/v1/query)) every query of O(gates) and compares the value with
    the gate's threshold. A breach does what the gate's O(gates[].action) says; the guide's defaults are
    an error rate above 1% aborts, a p99 latency above 5 s holds, and any evidence failure rolls back.
  - A query that returns no data, or only NaN (a ratio of zero traffic), is B(inconclusive), never a pass.
    The gates are asked again every O(interval) seconds until every gate passes, a gate decides, or a gate
    stays inconclusive past its O(gates[].inconclusive_limit) or holds past its O(gates[].hold_limit);
    both of these abort.
  - A query that returns several series is judged by its worst series (the highest for V(above), the lowest
    for V(below)).
  - The task fails when the verdict is V(abort) or V(rollback); the message names the gate, the query and
    the value it saw, and RV(verdict) says which, so that a C(rescue) can route the traffic back.
  - With O(validate_only) every query runs once and nothing is judged; a PromQL error or an unreachable
    Prometheus fails the task before any traffic moves.
  - The module only reads; it runs the same in check mode.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The gates are asked in check mode too; they only read.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
options:
  url:
    description:
      - Address of Prometheus, for example C(http://127.0.0.1:9090). A C(user:password@) in it is sent as basic
        auth to that origin only and shown masked in every message.
    type: str
    required: true
  bearer_token:
    description: Token sent as an C(Authorization) bearer token to Prometheus or a proxy in front of it; never returned.
    type: str
  timeout:
    description: Seconds one query may take.
    type: float
    default: 10
  interval:
    description: Seconds between two evaluations while a gate holds or is inconclusive.
    type: float
    default: 15
  validate_only:
    description: Run every query once and judge nothing (fails only on a PromQL error or an unreachable Prometheus).
    type: bool
    default: false
  gates:
    description: The gates, each a PromQL query and a threshold.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name of the gate, shown in results and messages; unique.
        type: str
        required: true
      query:
        description: PromQL expression returning an instant vector or a scalar.
        type: str
        required: true
      threshold:
        description: The value the query's result is compared with.
        type: float
        required: true
      comparison:
        description: Whether a value V(above) or V(below) the threshold is a breach.
        type: str
        choices: [above, below]
        default: above
      action:
        description:
          - What a breach does. V(abort) stops the progression, V(rollback) routes the traffic back at once,
            V(hold) asks again until O(gates[].hold_limit) and then aborts.
        type: str
        choices: [abort, hold, rollback]
        default: abort
      inconclusive_limit:
        description: Seconds the gate may return no data before it aborts.
        type: float
        default: 60
      hold_limit:
        description: Seconds a V(hold) gate may stay breached before it aborts.
        type: float
        default: 300
"""

EXAMPLES = r"""
- name: Gate the 25% step with the guide's thresholds
  stellaops.deploy.metric_gate:
    url: http://127.0.0.1:9090
    interval: 15
    gates:
      - name: error_rate
        query: >-
          sum(rate(http_requests_total{namespace="stellaops-green",status=~"5.."}[1m]))
          / sum(rate(http_requests_total{namespace="stellaops-green"}[1m]))
        threshold: 0.01
        action: abort
      - name: latency_p99
        query: >-
          histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="stellaops-green"}[1m])))
        threshold: 5
        action: hold
        hold_limit: 600
      - name: evidence_failures
        query: sum(increase(evidence_operations_total{namespace="stellaops-green",outcome="failure"}[5m]))
        threshold: 0
        action: rollback

- name: Check that every query parses before any traffic moves
  stellaops.deploy.metric_gate:
    url: http://127.0.0.1:9090
    gates: "{{ helm_bluegreen_gates }}"
    validate_only: true
"""

RETURN = r"""
verdict:
  description: V(pass), V(abort) or V(rollback); V(checked) with O(validate_only).
  returned: always
  type: str
  sample: abort
message:
  description: One sentence on the verdict; for an abort or a rollback it names the gate, the query and the value.
  returned: always
  type: str
  sample: "Gate error_rate aborts: query 'sum(rate(...))' returned 0.0998, above the threshold 0.01."
gate:
  description: The reading of the gate that decided an abort or a rollback (keys as in RV(gates)).
  returned: when the verdict is abort or rollback
  type: dict
  sample: {name: error_rate, query: "sum(rate(...))", state: breach, value: 0.0998, series: 1, threshold: 0.01,
           comparison: above, action: abort}
gates:
  description: The last reading of every gate.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the gate.
      type: str
      sample: error_rate
    query:
      description: Its PromQL query.
      type: str
      sample: sum(rate(http_requests_total{status=~"5.."}[1m]))
    state:
      description: V(pass), V(breach) or V(inconclusive) (no data).
      type: str
      sample: pass
    value:
      description: The worst value of the query's series; null when there was no data.
      type: float
      sample: 0.0031
    series:
      description: How many series had a value.
      type: int
      sample: 1
    threshold:
      description: The gate's threshold.
      type: float
      sample: 0.01
    comparison:
      description: V(above) or V(below).
      type: str
      sample: above
    action:
      description: What a breach does.
      type: str
      sample: abort
evaluations:
  description: How many times the gates were asked.
  returned: always
  type: int
  sample: 3
elapsed:
  description: Seconds from the first evaluation to the verdict.
  returned: always
  type: float
  sample: 30.2
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.numbers import number_in
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.prometheus import (
    ACTIONS,
    COMPARISONS,
    PASS,
    PrometheusClient,
    check_queries,
    evaluate,
    gates_from_list,
)


class MetricGateManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.params = module.params

    def run(self) -> dict[str, Any]:
        params = self.params
        params["interval"] = number_in(params["interval"], "interval", 0, 3600)
        params["timeout"] = number_in(params["timeout"], "timeout", 0.001, 3600)
        gates = gates_from_list(params["gates"])
        client = PrometheusClient(params["url"], timeout=params["timeout"], bearer_token=params["bearer_token"])
        if params["validate_only"]:
            readings = check_queries(client, gates)
            return {
                "changed": False,
                "verdict": "checked",
                "message": f"Prometheus answered all {len(readings)} gate queries.",
                "gates": [reading.as_dict() for reading in readings],
                "evaluations": 1,
                "elapsed": 0.0,
            }
        verdict = evaluate(client, gates, interval=params["interval"])
        result: dict[str, Any] = {"changed": False, **verdict.as_dict()}
        if result["gate"] is None:
            del result["gate"]
        if verdict.verdict != PASS:
            result["failed"] = True
            result["msg"] = verdict.message
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "bearer_token": {"type": "str", "no_log": True},
            "timeout": {"type": "float", "default": 10},
            "interval": {"type": "float", "default": 15},
            "validate_only": {"type": "bool", "default": False},
            "gates": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str", "required": True},
                    "query": {"type": "str", "required": True},
                    "threshold": {"type": "float", "required": True},
                    "comparison": {"type": "str", "choices": list(COMPARISONS), "default": "above"},
                    "action": {"type": "str", "choices": list(ACTIONS), "default": "abort"},
                    "inconclusive_limit": {"type": "float", "default": 60},
                    "hold_limit": {"type": "float", "default": 300},
                },
            },
        },
        supports_check_mode=True,
    )
    try:
        result = MetricGateManager(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
