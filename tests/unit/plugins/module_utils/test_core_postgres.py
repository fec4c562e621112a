# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import (
    PgConnection,
    TableSum,
    compare_checksums,
    describe_failure,
    find_bin_dir,
    table_data_entries,
)

# Captured from `pg_restore --list` of a pg_dump -Fc archive of the sandbox database (PostgreSQL 15.18).
TOC = """;
; Archive created at 2025-11-22 04:23:29 UTC
;     dbname: stellaops
;     TOC Entries: 23
;
215; 1259 16390 TABLE public findings stellaops
3340; 0 16390 TABLE DATA public findings stellaops
3341; 0 16401 TABLE DATA "Other Schema" "Mixed Case" stellaops
3190; 2606 16397 CONSTRAINT public findings findings_pkey stellaops
""".splitlines()


def test_password_never_in_arguments() -> None:
    conn = PgConnection(database="db", user="u", password="s3cret")
    assert not any("s3cret" in a for a in conn.args())
    assert "--no-password" in conn.args()
    assert conn.env()["PGPASSWORD"] == "s3cret"
    assert "s3cret" not in repr(conn) and "s3cret" not in str(conn.describe())


def test_passfile_goes_to_environment() -> None:
    assert PgConnection(database="db", passfile="/x/pgpass").env()["PGPASSFILE"] == "/x/pgpass"


@pytest.mark.parametrize(
    "rc, err, expected",
    [
        (-9, "", "pg_dump was killed by SIGKILL before it finished"),
        (137, "", "pg_dump was killed by SIGKILL before it finished"),
        (1, 'pg_dump: error: connection to server at "127.0.0.1", port 55432 failed: FATAL:  password authentication failed '
            'for user "stellaops"', "password authentication failed"),
        (1, "pg_dump: error: could not write to output file: No space left on device", "No space left on device"),
        (1, "", "exit code 1"),
    ],
)
def test_describe_failure(rc: int, err: str, expected: str) -> None:
    assert expected in describe_failure("pg_dump", rc, "", err)


def test_table_data_entries() -> None:
    assert table_data_entries(TOC) == ["public findings", '"Other Schema" "Mixed Case"']


def test_compare_checksums() -> None:
    a = {"t": TableSum(1, "x"), "u": TableSum(2, "y")}
    assert compare_checksums(a, dict(a)) == []
    problems = compare_checksums(a, {"t": TableSum(1, "z"), "v": TableSum(0, "w")})
    assert problems == ["table t has checksum z, expected x", "table u is missing", "table v is not in the source"]


def test_bin_dir_without_tool(tmp_path) -> None:
    with pytest.raises(StellaOpsError, match="has no executable 'pg_dump'"):
        find_bin_dir(str(tmp_path), "pg_dump")


@pytest.mark.parametrize("database", ["host=evil.example dbname=app", "postgresql://evil.example/app", "postgres://x@evil/app", "", "a=b"])
def test_a_connection_string_in_database_is_refused(database: str) -> None:
    # libpq reads a dbname with '=' or a URI prefix as a whole connection string: the password would go where it says.
    with pytest.raises(StellaOpsError, match=r"^database must be a database name, not a connection string, got "):
        PgConnection(database=database, password="hunter2")
    if database:  # another database of the same server, as psql is pointed at for a restore
        with pytest.raises(StellaOpsError, match=r"^database must be a database name"):
            PgConnection(database="app").args(database)
