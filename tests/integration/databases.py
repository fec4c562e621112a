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
