# SPDX-License-Identifier: GPL-3.0-or-later
"""Pending database migrations, read from the migrations table of the platform's database.

A migration is pending when its row in the table has no applied time yet (the services register a
migration before they apply it), or when the release expects a version that has no row at all.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from ..core.errors import StellaOpsError
from ..core.postgres import PG_DATABASE_SPEC, PgConnection, Psql, quote_ident
from ..core.runner import ModuleLike

# The options of the modules that read the table (documented by the migrations_table doc fragment).
MIGRATIONS_TABLE_SPEC: dict[str, Any] = {
    **PG_DATABASE_SPEC,
    "bin_dir": {"type": "path"},
    "table": {"type": "str", "default": "schema_migrations"},
    "version_column": {"type": "str", "default": "version"},
    "applied_column": {"type": "str", "default": "applied_at"},
}

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def _ident(name: str, field: str) -> str:
    if not _IDENTIFIER.match(name):
        raise StellaOpsError(f"migrations: field {field} must be a SQL identifier (schema.table or name), got {name!r}.")
    return ".".join(quote_ident(part) for part in name.split("."))


def migrations_query(table: str, version_column: str, applied_column: str) -> str:
    """Every migration row: version, and 't' when applied."""
    version, applied = _ident(version_column, "version_column"), _ident(applied_column, "applied_column")
    return f"SELECT {version}, ({applied} IS NOT NULL) FROM {_ident(table, 'table')} ORDER BY {version};\n"  # noqa: S608 - identifiers checked and quoted


def read_migrations(psql: Psql, conn: PgConnection, table: str, version_column: str, applied_column: str) -> dict[str, bool]:
    """Version -> applied, as the table says."""
    rows = psql.query(conn, migrations_query(table, version_column, applied_column))
    return {row[0]: row[1] == "t" for row in rows if len(row) == 2}


def pending(migrations: dict[str, bool], expected: Sequence[str]) -> list[str]:
    """Versions not applied: rows without an applied time, and expected versions with no row."""
    return sorted({version for version, applied in migrations.items() if not applied} | {v for v in expected if v not in migrations})


def read_table(module: ModuleLike, p: Mapping[str, Any]) -> dict[str, bool]:
    """Version -> applied, from the table that the MIGRATIONS_TABLE_SPEC options ``p`` name."""
    conn = PgConnection(database=p["database"], host=p["host"], port=p["port"], user=p["user"], password=p["password"])
    return read_migrations(Psql(module, p["bin_dir"]), conn, p["table"], p["version_column"], p["applied_column"])
