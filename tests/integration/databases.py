# SPDX-License-Identifier: GPL-3.0-or-later
"""Databases of a test's own on the sandbox's PostgreSQL: made from SQL, read back with psql, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import PgConnection, Psql
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule

# The sandbox's migrations table as 2025.10.0 leaves it (its category A migrations applied), and the table the
# category B migration of 2025.11.0 (B_MIGRATION) changes: it adds findings.weight and renames findings.score.
MIGRATIONS_BEFORE_B = """
CREATE TABLE schema_migrations (version text PRIMARY KEY, name text NOT NULL, category char(1) NOT NULL, applied_at timestamptz);
INSERT INTO schema_migrations VALUES ('20250901000000', 'create_core_tables', 'A', now()), ('20251001000000', 'add_evidence_index', 'A', now());
"""
FINDINGS = """
CREATE TABLE findings (id int PRIMARY KEY, severity text NOT NULL, score numeric(3,1) NOT NULL);
INSERT INTO findings VALUES (1, 'critical', 9.8), (2, 'low', 2.5);
"""
B_MIGRATION = "20251101000000"


def _connection(settings: dict[str, Any]) -> PgConnection:
    return PgConnection(database=settings["database"], host=settings["host"], port=settings["port"], user=settings["user"], password=settings["password"])


def query(settings: dict[str, Any], sql: str) -> list[list[str]]:
    """The rows of ``sql`` on the database ``settings`` name (as scratch_database yields them)."""
    return Psql(LocalModule(), settings["bin_dir"]).query(_connection(settings), sql)


@contextmanager
def scratch_database(sandbox: dict[str, Any], sql: str) -> Iterator[dict[str, Any]]:
    """A database of this test, made from ``sql``: its settings (database, host, port, user, password, bin_dir), as
    preflight_database and compose_rollback_database name one. Dropped after."""
    pg = sandbox["postgres"]
    settings = {
        "database": f"it_scratch_{uuid.uuid4().hex[:8]}", "host": pg["host"], "port": pg["port"], "user": pg["user"],
        "password": Path(pg["password_file"]).read_text().strip(), "bin_dir": pg["bin_dir"],
    }  # fmt: skip
    psql = Psql(LocalModule(), pg["bin_dir"])
    psql.create_database(_connection(settings), settings["database"], "postgres")
    try:
        psql.query(_connection(settings), sql)
        yield settings
    finally:
        psql.drop_database(_connection(settings), settings["database"], "postgres")


def columns(settings: dict[str, Any], table: str) -> list[str]:
    """The columns of ``table``, in order."""
    sql = f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}' ORDER BY ordinal_position;\n"
    return [row[0] for row in query(settings, sql)]
