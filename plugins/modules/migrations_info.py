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
  - The password reaches C(psql) through its environment, never its command line.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.info_module
options:
  database:
    description: Database name.
    type: str
    required: true
  host:
    description: Database host.
    type: str
    default: 127.0.0.1
  port:
    description: Database port.
    type: int
    default: 5432
  user:
    description: Database user.
    type: str
    default: postgres
  password:
    description: Password of O(user); never returned.
    type: str
  bin_dir:
    description: Directory of the PostgreSQL client tools (C(psql)). Defaults to PATH and Debian's C(/usr/lib/postgresql/*/bin).
    type: path
  table:
    description: The migrations table, C(name) or C(schema.name).
    type: str
    default: schema_migrations
  version_column:
    description: Column holding the migration's version.
    type: str
    default: version
  applied_column:
    description: Column holding when the migration was applied (null while pending).
    type: str
    default: applied_at
  expected:
    description: Versions the running release expects to be applied.
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
from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import PgConnection, Psql
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.migrations import pending, read_migrations


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "database": {"type": "str", "required": True},
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "default": 5432},
            "user": {"type": "str", "default": "postgres"},
            "password": {"type": "str", "no_log": True},
            "bin_dir": {"type": "path"},
            "table": {"type": "str", "default": "schema_migrations"},
            "version_column": {"type": "str", "default": "version"},
            "applied_column": {"type": "str", "default": "applied_at"},
            "expected": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    p = module.params
    conn = PgConnection(database=p["database"], host=p["host"], port=p["port"], user=p["user"], password=p["password"])
    try:
        migrations = read_migrations(Psql(module, p["bin_dir"]), conn, p["table"], p["version_column"], p["applied_column"])
    except StellaOpsError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, applied=[v for v, done in migrations.items() if done], pending=pending(migrations, p["expected"]))


if __name__ == "__main__":
    main()
