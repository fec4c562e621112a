#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: health_check
short_description: Verify that deployed services are healthy with HTTP, TCP or command checks
description:
  - Runs each check up to O(retries) times, O(interval) seconds apart, until it is healthy, as the
    release orchestrator's health verifier does after a deployment.
  - Checks are tried in rounds (one attempt of every check that is not yet healthy per round), so the
    total wait is that of the slowest check, not the sum of all.
  - An V(http) check is healthy when a GET of O(checks[].url) returns O(checks[].expected_status) and, when set,
    the body contains O(checks[].body_contains). It connects directly, never through a proxy, and follows
    redirects unless O(checks[].follow_redirects=false). A C(user:password@) in the URL is sent as basic
    authentication to that host only, and shown as C(********) in every result and in the module's invocation.
  - A V(tcp) check is healthy when a connection to O(checks[].host):O(checks[].port) opens.
  - A V(command) check is healthy when O(checks[].command) (an argument list, no shell) exits with 0.
    It runs under coreutils C(timeout) when that is installed, so O(checks[].timeout) bounds it.
    Its output is not shown unless O(checks[].show_output=true).
  - O(checks[].timeout) bounds a whole attempt, also against a server that answers a byte at a time.
  - The module only probes; it never changes anything and also runs in check mode.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The checks run in check mode too; they only probe.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
    details:
      - This action does not modify state.
options:
  checks:
    description: The checks to run.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name shown in results and messages. Defaults to the type and the address or program.
        type: str
      type:
        description: Kind of check.
        type: str
        choices: [http, tcp, command]
        required: true
      url:
        description: Address to GET, C(http://) or C(https://). Required for V(http).
        type: str
      expected_status:
        description: HTTP status that counts as healthy.
        type: int
        default: 200
      body_contains:
        description: Text the HTTP response body must contain.
        type: str
      host:
        description: Host to connect to for V(tcp).
        type: str
        default: 127.0.0.1
      port:
        description: Port to connect to. Required for V(tcp).
        type: int
      command:
        description: Program and arguments to run for V(command); it must exit with 0.
        type: list
        elements: str
      follow_redirects:
        description:
          - Follow redirects (up to 10) and judge the final answer. Set V(false) to check the redirect
            itself, for example O(checks[].expected_status=302).
        type: bool
        default: true
      show_output:
        description:
          - Add the last line of a failing command's output to its message. Off by default, because the
            output of a probe can hold a secret.
        type: bool
        default: false
      no_log:
        description:
          - The check's URL or command arguments are secrets. Results name only the kind of check or the
            program, and the module's invocation shows C(********) in their place.
          - Ansible still writes the arguments of a module to the host's syslog; the task keyword
            C(no_log) keeps them out of it.
        type: bool
        default: false
      timeout:
        description: Seconds one attempt may take, from connecting to the last byte of the answer.
        type: float
        default: 5
  retries:
    description: Attempts per check before it counts as unhealthy (at least 1).
    type: int
    default: 10
  interval:
    description: Seconds to wait between attempts.
    type: float
    default: 2
  fail_on_unhealthy:
    description: Fail the task, with one line per failing check, when any check stays unhealthy.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Wait for the services of the new release to be healthy
  stellaops.deploy.health_check:
    checks:
      - name: authority
        type: http
        url: http://127.0.0.1:8440/health
        body_contains: ok
      - name: scheduler port
        type: tcp
        port: 8450
      - name: notify answers inside its container
        type: command
        command: [docker, exec, stellaops-notify-1, wget, -q, -O, /dev/null, http://127.0.0.1:8080/health]
    retries: 15
    interval: 2

- name: Check the login redirect and an endpoint that needs a password
  stellaops.deploy.health_check:
    checks:
      - name: web redirects to the login page
        type: http
        url: http://127.0.0.1:8443/
        expected_status: 302
        follow_redirects: false
      - name: metrics with basic authentication (shown as ********)
        type: http
        url: "http://monitor:{{ stellaops_metrics_password }}@127.0.0.1:9090/-/healthy"
      - name: database answers
        type: command
        command: [pg_isready, --dbname, "postgresql://app:{{ stellaops_db_password }}@127.0.0.1:5432/stellaops"]
        no_log: true

- name: Probe without failing, to decide on a rollback
  stellaops.deploy.health_check:
    checks: "{{ (stellaops_compose | stellaops.deploy.compose_target(inventory_hostname)).health_checks }}"
    fail_on_unhealthy: false
  register: stellaops_health
"""

RETURN = r"""
healthy:
  description: Whether every check became healthy.
  returned: always
  type: bool
  sample: true
results:
  description: One entry per check, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Name of the check.
      type: str
      sample: authority
    type:
      description: Kind of check.
      type: str
      sample: http
    healthy:
      description: Whether the check was healthy at its last attempt.
      type: bool
      sample: true
    attempts:
      description: Attempts made.
      type: int
      sample: 3
    message:
      description: Outcome of the last attempt.
      type: str
      sample: GET http://127.0.0.1:8440/health returned status 200
    status_code:
      description: HTTP status of the last attempt (http checks that got an answer).
      type: int
      returned: when an HTTP status was received
      sample: 200
    elapsed:
      description: Seconds from the start of the checks to the last attempt of this check.
      type: float
      sample: 4.012
  sample:
    - {name: authority, type: http, healthy: true, attempts: 3, message: GET http://127.0.0.1:8440/health returned status 200,
       status_code: 200, elapsed: 4.012}
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.health import (
    CHECK_TYPES,
    command_runner,
    redact_checks,
    run_checks,
    secret_values,
    summarize_failures,
)


class HealthCheckManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params

    def run(self) -> dict[str, Any]:
        runner = command_runner(self.module.run_command, self.module.get_bin_path("timeout"))
        healthy, results = run_checks(self.params["checks"], self.params["retries"], self.params["interval"], run_command=runner)
        result: dict[str, Any] = {"changed": False, "healthy": healthy, "results": results}
        if not healthy and self.params["fail_on_unhealthy"]:
            result["failed"] = True
            result["msg"] = summarize_failures(results)
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "checks": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str"},
                    "type": {"type": "str", "choices": list(CHECK_TYPES), "required": True},
                    "url": {"type": "str"},
                    "expected_status": {"type": "int", "default": 200},
                    "body_contains": {"type": "str"},
                    "host": {"type": "str", "default": "127.0.0.1"},
                    "port": {"type": "int"},
                    "command": {"type": "list", "elements": "str"},
                    "follow_redirects": {"type": "bool", "default": True},
                    "show_output": {"type": "bool", "default": False},
                    "no_log": {"type": "bool", "default": False},
                    "timeout": {"type": "float", "default": 5},
                },
            },
            "retries": {"type": "int", "default": 10},
            "interval": {"type": "float", "default": 2},
            "fail_on_unhealthy": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    # Passwords of URLs are masked wherever Ansible prints this result; the invocation shows the checks redacted.
    module.no_log_values.update(secret_values(module.params["checks"]))
    invocation = {"module_args": {**module.params, "checks": redact_checks(module.params["checks"])}}
    try:
        result = HealthCheckManager(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err), invocation=invocation)
    result["invocation"] = invocation
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
