#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rehearsal_log
short_description: Append a drill's row to the upgrade rehearsal log
description:
  - Adds one row to the Markdown table of the rehearsal log in the runbook's form, with the columns
    date (UTC), channel, what was exercised, outcome, rollback duration and follow-up. The file and its
    table are created when missing; rows already in the table stay as they are.
  - The outcome and the rollback duration come from the deployment journal jobs of the drill (O(jobs)),
    those of O(failing_release_id) - V(rolled back) when every host that started it came back, with the
    time from the first C(rolling_back) to the last C(rolled_back) of their status histories.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Computes the row and whether the log would change, and writes nothing.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  path:
    description: The rehearsal log (Markdown), for example C(docs/ops/rehearsal-log.md).
    type: path
    required: true
  channel:
    description: Channel of the drill.
    type: str
    required: true
  exercised:
    description: What the drill exercised, in a few words.
    type: str
    required: true
  jobs:
    description: Journal jobs of the drill, as M(stellaops.deploy.deployment_journal) returns them.
    type: list
    elements: dict
    required: true
  failing_release_id:
    description: Release id of the forced failure; its jobs give the outcome and the rollback duration.
    type: str
    required: true
  follow_up:
    description: Follow-up of the drill.
    type: str
    default: none
  date:
    description: Time of the drill (UTC, C(YYYY-MM-DDTHH:MM:SSZ)); default is now.
    type: str
"""

EXAMPLES = r"""
- name: Append the drill to the rehearsal log
  stellaops.deploy.rehearsal_log:
    path: docs/ops/rehearsal-log.md
    channel: edge
    exercised: upgrade to 2025.11.0-edge, forced failure with 2025.11.1-edge, automatic rollback
    jobs: "{{ drill_jobs }}"
    failing_release_id: 2025.11.1-edge
    follow_up: none
"""

RETURN = r"""
row:
  description: The row of this drill.
  returned: always
  type: str
  sample: "| 2026-12-02 01:40:12 | edge | upgrade, forced failure, automatic rollback | rolled back | 9.8 s | none |"
outcome:
  description: V(rolled back), V(rollback failed), V(not exercised) or V(not rolled back (...)).
  returned: always
  type: str
  sample: rolled back
rollback_seconds:
  description: Rollback duration from the journal, or null when nothing rolled back.
  returned: always
  type: float
  sample: 9.812
diff:
  description: The log before and after.
  returned: when diff mode is on
  type: dict
"""

from datetime import datetime, timezone
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.reports.rehearsal_log import add_row, drill_outcome, drill_row


def _when(text: str | None) -> datetime:
    if not text:
        return datetime.now(timezone.utc)  # noqa: UP017 - hosts may run Python < 3.11
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)  # noqa: UP017
    except ValueError as err:
        raise StellaOpsError(f"rehearsal_log: option date must look like 2026-12-02T01:40:12Z, got {text!r}.") from err


def run(module: AnsibleModule) -> dict[str, Any]:
    p = module.params
    outcome, seconds = drill_outcome(p["jobs"], p["failing_release_id"])
    row = drill_row(when=_when(p["date"]), channel=p["channel"], exercised=p["exercised"], outcome=outcome, seconds=seconds, follow_up=p["follow_up"])
    before, after, changed = add_row(p["path"], row, dry_run=module.check_mode)
    result: dict[str, Any] = {"changed": changed, "row": row, "outcome": outcome, "rollback_seconds": seconds}
    if module._diff:
        result["diff"] = {"before": before, "after": after, "before_header": p["path"], "after_header": p["path"]}
    return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "channel": {"type": "str", "required": True},
            "exercised": {"type": "str", "required": True},
            "jobs": {"type": "list", "elements": "dict", "required": True},
            "failing_release_id": {"type": "str", "required": True},
            "follow_up": {"type": "str", "default": "none"},
            "date": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        result = run(module)
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
