#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: queue_info
short_description: Read the depth of the platform's Redis queues and compare it with a threshold
description:
  - Connects to Redis over its own protocol (no client library or C(redis-cli) needed) and reads the
    depth of each queue named in O(queues) and of each key matching O(patterns)
    (lists by C(LLEN), streams by C(XLEN), sorted sets by C(ZCARD); a missing key is an empty queue).
  - Before an upgrade every queue should be empty or near-empty (the upgrade runbook's pre-flight);
    RV(over) names each queue deeper than O(threshold). The module only reads and never fails for a deep
    queue; it fails when Redis does not answer.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.info_module
options:
  host:
    description: Redis host.
    type: str
    default: 127.0.0.1
  port:
    description: Redis port.
    type: int
    default: 6379
  password:
    description: Password for C(AUTH); never returned.
    type: str
  database:
    description: Redis database number.
    type: int
    default: 0
  queues:
    description: Queue keys to read.
    type: list
    elements: str
    default: []
  patterns:
    description: Key patterns (C(SCAN MATCH)) whose keys are queues too, for example C(stellaops:queue:*).
    type: list
    elements: str
    default: []
  threshold:
    description: Largest depth that counts as drained.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: Read the queue depths before an upgrade
  stellaops.deploy.queue_info:
    host: 127.0.0.1
    port: 6379
    patterns: ["stellaops:queue:*"]
    threshold: 10
  register: queues
"""

RETURN = r"""
depths:
  description: Queue key to the entries waiting in it.
  returned: always
  type: dict
  sample: {"stellaops:queue:scanner": 0, "stellaops:queue:notify": 3}
over:
  description: One sentence for each queue deeper than O(threshold).
  returned: always
  type: list
  elements: str
  sample: ["queue stellaops:queue:scanner holds 500 entries (threshold 10)"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.redis import RedisClient, over_threshold, queue_depths


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "default": 6379},
            "password": {"type": "str", "no_log": True},
            "database": {"type": "int", "default": 0},
            "queues": {"type": "list", "elements": "str", "default": []},
            "patterns": {"type": "list", "elements": "str", "default": []},
            "threshold": {"type": "int", "default": 0},
        },
        supports_check_mode=True,
    )
    p = module.params
    try:
        with RedisClient(p["host"], p["port"], p["password"], p["database"]) as client:
            depths = queue_depths(client, p["queues"], p["patterns"])
    except StellaOpsError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, depths=depths, over=over_threshold(depths, p["threshold"]))


if __name__ == "__main__":
    main()
