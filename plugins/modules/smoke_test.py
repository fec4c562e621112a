#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: smoke_test
short_description: Run the smoke tests after a cutover, HTTP and command checks with expected results
description:
  - Runs every test of O(tests) in order, as the launch runbook's smoke test table does after a cutover,
    and fails with one message that lists every test that failed.
  - An V(http) test sends O(tests[].method) to O(tests[].url) (with O(tests[].body) and O(tests[].headers)) and expects
    O(tests[].expected_status) and O(tests[].body_contains). With O(tests[].poll_url) it then follows the work it
    started (a scan submission) until the address answers O(tests[].poll_status) with O(tests[].poll_body_contains),
    for at most O(tests[].within) seconds; C({field}) in O(tests[].poll_url) is filled from the first answer's JSON.
  - A V(command) test runs O(tests[].command) (an argument list, no shell, bounded by coreutils C(timeout) when
    installed) and expects O(tests[].expected_rc) and O(tests[].output_contains).
  - It only probes and changes nothing; it also runs in check mode.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The tests run in check mode too; a test that submits work (a scan) submits it then as well.
  diff_mode:
    support: N/A
    details:
      - This action does not modify deployed state.
  idempotent:
    support: full
options:
  tests:
    description: The smoke tests.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Name shown in results and messages.
        type: str
      type:
        description: Kind of test.
        type: str
        choices: [http, command]
        required: true
      url:
        description: Address of an V(http) test.
        type: str
      method:
        description: HTTP method.
        type: str
        default: GET
      body:
        description: Request body.
        type: str
      headers:
        description: Request headers.
        type: dict
        default: {}
      expected_status:
        description: Expected HTTP status.
        type: int
        default: 200
      body_contains:
        description: Text the response body must contain.
        type: str
      poll_url:
        description: Address to read until the work the request started has completed.
        type: str
      poll_status:
        description: Status of the completed work at O(tests[].poll_url).
        type: int
        default: 200
      poll_body_contains:
        description: Text the completed work's body contains.
        type: str
      within:
        description: Seconds the work may take to complete.
        type: float
        default: 300
      interval:
        description: Seconds between reads of O(tests[].poll_url).
        type: float
        default: 2
      command:
        description: Program and arguments of a V(command) test.
        type: list
        elements: str
      expected_rc:
        description: Expected exit code.
        type: int
        default: 0
      output_contains:
        description: Text the command's output must contain.
        type: str
      timeout:
        description:
          - Seconds one request or command may take, from connecting to the last byte of the answer (a peer that
            trickles its answer cannot hold a test longer). Credentials in the URL (sent as basic auth) and the
            C(Authorization) and C(Cookie) headers go to the test's own origin only, never to another host a
            redirect names.
        type: float
        default: 10
  fail_on_failure:
    description: Fail when a test fails. Off, the results are returned for the caller to judge.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Smoke-test the cutover
  stellaops.deploy.smoke_test:
    tests:
      - name: API health
        type: http
        url: http://127.0.0.1:8444/health
        body_contains: '"status": "ok"'
      - name: Scan submit
        type: http
        method: POST
        url: http://127.0.0.1:8444/cgi-bin/scans
        body: '{"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}'
        expected_status: 202
        poll_url: http://127.0.0.1:8444/cgi-bin/scans/{id}
        poll_body_contains: '"status": "completed"'
        within: 300
"""

RETURN = r"""
passed:
  description: Whether every test passed.
  returned: always
  type: bool
results:
  description: Each test with its name, type, whether it passed, a message and the seconds it took.
  returned: always
  type: list
  elements: dict
  sample: [{"name": "API health", "type": "http", "passed": true, "message": "GET http://127.0.0.1:8444/health returned status 200", "seconds": 0.01}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.health import command_runner
from ansible_collections.stellaops.deploy.plugins.module_utils.probes.smoke import SMOKE_TYPES, run_smoke_tests, summarize


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "tests": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "name": {"type": "str"},
                    "type": {"type": "str", "choices": list(SMOKE_TYPES), "required": True},
                    "url": {"type": "str"},
                    "method": {"type": "str", "default": "GET"},
                    "body": {"type": "str"},
                    "headers": {"type": "dict", "default": {}},
                    "expected_status": {"type": "int", "default": 200},
                    "body_contains": {"type": "str"},
                    "poll_url": {"type": "str"},
                    "poll_status": {"type": "int", "default": 200},
                    "poll_body_contains": {"type": "str"},
                    "within": {"type": "float", "default": 300},
                    "interval": {"type": "float", "default": 2},
                    "command": {"type": "list", "elements": "str"},
                    "expected_rc": {"type": "int", "default": 0},
                    "output_contains": {"type": "str"},
                    "timeout": {"type": "float", "default": 10},
                },
            },
            "fail_on_failure": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    try:
        results = run_smoke_tests(module.params["tests"], command_runner(module.run_command, module.get_bin_path("timeout")))
    except StellaOpsError as error:
        module.fail_json(msg=str(error))
    passed = all(r["passed"] for r in results)
    if not passed and module.params["fail_on_failure"]:
        module.fail_json(msg=summarize(results), passed=False, results=results)
    module.exit_json(changed=False, passed=passed, results=results, msg=summarize(results))


if __name__ == "__main__":
    main()
