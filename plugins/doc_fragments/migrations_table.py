# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform database's migrations table, as the modules that read it name it."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
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
    description: Password of O(user); never returned. It reaches C(psql) through its environment, never its command line.
    type: str
  bin_dir:
    description: Directory of the PostgreSQL client tools (C(psql)). Defaults to PATH and Debian's C(/usr/lib/postgresql/*/bin).
    type: path
  table:
    description: The migrations table, C(name) or C(schema.name).
    type: str
    default: schema_migrations
  version_column:
    description: Column holding the migration's version (its id).
    type: str
    default: version
  applied_column:
    description: Column holding when the migration was applied (null while pending).
    type: str
    default: applied_at
requirements:
  - psql (PostgreSQL client tools) on the host that runs the module
"""
