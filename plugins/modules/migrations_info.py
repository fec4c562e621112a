#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: migrations_info
short_description: Read pending migrations from the platform database's migrations table
description:
  - Reads every row of the migrations table (O(table)) with C(psql) and reports the versions that are
    pending, as C(stella system migrations-status) does before an upgrade (the upgrade runbook's pre-flight).
  - A migration is pending when its row has no applied time (O(applied_column) is null), or when
    O(expected) names a version that has no row at all.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.info_module
  - stellaops.deploy.migrations_table
options:
  expected:
    description: Versions the running release expects to be applied.
    type: list
    elements: str
    default: []
  required:
    description:
      - Versions that must be applied (those an upgrade just ran); the module fails, naming the ones the table
        does not show applied.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read pending migrations
  stellaops.deploy.migrations_info:
    database: stellaops
    host: db.internal
    user: stellaops
    password: "{{ vault_db_password }}"
  register: migrations
"""

RETURN = r"""
applied:
  description: Versions applied, oldest first.
  returned: always
  type: list
  elements: str
  sample: ["20250901000000", "20251001000000"]
pending:
  description: Versions not applied yet.
  returned: always
  type: list
  elements: str
  sample: ["20251201000000"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.migrations import MIGRATIONS_TABLE_SPEC, pending, read_table


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **MIGRATIONS_TABLE_SPEC,
            "expected": {"type": "list", "elements": "str", "default": []},
            "required": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    try:
        migrations = read_table(module, module.params)
    except StellaOpsError as error:
        module.fail_json(msg=str(error))
    result = {"changed": False, "applied": [v for v, done in migrations.items() if done], "pending": pending(migrations, module.params["expected"])}
    missing = [version for version in module.params["required"] if not migrations.get(version)]
    if missing:
        module.fail_json(msg=f"Migration(s) {', '.join(missing)} not applied in {module.params['table']} of database {module.params['database']}.", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
