# SPDX-License-Identifier: GPL-3.0-or-later
"""Where the modules that read or write PostgreSQL dumps find the PostgreSQL client tools."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  postgres_bin_dir:
    description:
      - Directory of the PostgreSQL client tools (C(pg_dump), C(pg_restore), C(psql)); by default C(STELLAOPS_TOOLS_DIR),
        then C(PATH), then C(/usr/lib/postgresql/*/bin), newest first.
    type: path
requirements:
  - PostgreSQL client tools (pg_dump, pg_restore, psql) on the host that runs the module, for PostgreSQL dumps
"""
