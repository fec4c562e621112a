# SPDX-License-Identifier: GPL-3.0-or-later
"""Runners for the PostgreSQL client tools: ``pg_dump``, ``pg_restore`` and ``psql``.

Passwords reach the tools only through ``PGPASSWORD`` or a ``PGPASSFILE`` in the
environment; every command carries ``--no-password`` so a missing or wrong
password fails at once instead of waiting for a prompt. Failures raise
``StellaOpsError`` (never ``fail_json`` directly) so a caller can mark its backup
set failed and remove partial files before it reports the error.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import signal
from dataclasses import dataclass, field
from typing import Any, Optional, Sequence

from .errors import StellaOpsError
from .runner import ModuleLike, ToolRunner, tool_dirs

# Where Debian and Ubuntu install the PostgreSQL client tools, newest first.
_DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_SEP = "\x1f"

# One statement per user table, run through psql's \gexec: row count and an
# order-independent 128-bit checksum (two sums of 64-bit halves of md5(row text)),
# computed in one pass without sorting.
CHECKSUM_SQL = r"""
SELECT format(
  'SELECT %L, count(*), coalesce(sum((''x'' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0),'
  ' coalesce(sum((''x'' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)'
  ' FROM (SELECT md5(t::text) AS h FROM %I.%I AS t) AS s',
  quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname, c.relname)
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%'
  AND n.nspname NOT LIKE 'pg\_temp%'
ORDER BY 1
\gexec
"""


def database_name(name: str) -> str:
    """``name`` when libpq takes it as a database name: a ``dbname`` with ``=`` or a URI prefix is read as a
    whole connection string, which could send the password to another server."""
    if not isinstance(name, str) or not name or "=" in name or name.startswith(("postgresql://", "postgres://")):
        raise StellaOpsError(f"database must be a database name, not a connection string, got {name!r}.")
    return name


# How a database server is reached (PgConnection's fields): the options of every module that connects.
PG_SERVER_SPEC: dict[str, Any] = {
    "host": {"type": "str", "default": "127.0.0.1"},
    "port": {"type": "int", "default": 5432},
    "user": {"type": "str", "default": "postgres"},
    "password": {"type": "str", "no_log": True},
}
# One database on it.
PG_DATABASE_SPEC: dict[str, Any] = {"database": {"type": "str", "required": True}, **PG_SERVER_SPEC}


@dataclass(frozen=True)
class PgConnection:
    """Where a database is and who connects; ``password`` never appears in ``repr`` or ``describe``."""

    database: str
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: Optional[str] = field(default=None, repr=False)
    passfile: Optional[str] = None
    sslmode: Optional[str] = None
    connect_timeout: int = 10

    def __post_init__(self) -> None:
        database_name(self.database)

    def args(self, database: Optional[str] = None) -> list[str]:
        """Connection arguments for pg_dump, pg_restore and psql (no secret among them)."""
        return [
            f"--host={self.host}",
            f"--port={self.port}",
            f"--username={self.user}",
            f"--dbname={database_name(database or self.database)}",
            "--no-password",
        ]

    def env(self) -> dict[str, str]:
        env = {"PGCONNECT_TIMEOUT": str(self.connect_timeout), "PGAPPNAME": "stellaops.deploy"}
        if self.password is not None:
            env["PGPASSWORD"] = self.password
        if self.passfile:
            env["PGPASSFILE"] = self.passfile
        if self.sslmode:
            env["PGSSLMODE"] = self.sslmode
        return env

    def libpq_variables(self) -> dict[str, str]:
        """The connection as the libpq variables, for a client this module does not run (the password when given)."""
        variables = {"PGHOST": self.host, "PGPORT": str(self.port), "PGDATABASE": self.database, "PGUSER": self.user}
        if self.password:
            variables["PGPASSWORD"] = self.password
        return variables

    def describe(self) -> dict[str, Any]:
        """The source as recorded in a manifest: no password, no passfile."""
        return {"host": self.host, "port": self.port, "user": self.user, "database": self.database}

    def with_database(self, database: str) -> PgConnection:
        return PgConnection(
            database=database,
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            passfile=self.passfile,
            sslmode=self.sslmode,
            connect_timeout=self.connect_timeout,
        )


@dataclass(frozen=True)
class TableSum:
    rows: int
    checksum: str

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "checksum": self.checksum}


def find_bin_dir(bin_dir: Optional[str], binary: str) -> Optional[str]:
    """The path of ``binary``: in ``bin_dir`` when given, else PATH or the tools dir, else Debian's PostgreSQL dirs."""
    if bin_dir:
        candidate = os.path.join(bin_dir, binary)
        if not os.access(candidate, os.X_OK):
            raise StellaOpsError(f"PostgreSQL bin_dir {bin_dir!r} has no executable {binary!r}; expected the client tools there.")
        return candidate
    for directory in [*tool_dirs(), *os.environ.get("PATH", "").split(os.pathsep)]:
        candidate = os.path.join(directory, binary)
        if directory and os.access(candidate, os.X_OK):
            return candidate
    found = sorted(glob.glob(_DEBIAN_BIN_GLOB), key=_version_key, reverse=True)
    for directory in found:
        candidate = os.path.join(directory, binary)
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _version_key(path: str) -> tuple[int, ...]:
    parts = re.findall(r"\d+", os.path.basename(os.path.dirname(path)))
    return tuple(int(p) for p in parts)


def describe_failure(tool: str, rc: int, out: str, err: str) -> str:
    """One sentence for a failed tool run: the signal that killed it, or its last error line."""
    if rc < 0 or rc in (128 + signal.SIGKILL, 128 + signal.SIGTERM):
        signum = -rc if rc < 0 else rc - 128
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        return f"{tool} was killed by {name} before it finished"
    lines = [line.strip() for line in (err or out or "").splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower() or "fatal" in line.lower()]
    reason = (errors or lines or [f"exit code {rc}"])[-1]
    return f"{tool} failed: {reason}"


class _PgTool(ToolRunner):
    """Shared set-up: find the binary in ``bin_dir`` (or the usual places) and raise instead of failing."""

    def __init__(self, module: ModuleLike, bin_dir: Optional[str] = None) -> None:
        path = find_bin_dir(bin_dir, self.binary)
        if path is None:
            raise StellaOpsError(f"Cannot find the {self.binary!r} executable; set the PostgreSQL bin_dir option.")
        super().__init__(module, executable=path)

    def call(self, args: Sequence[str], conn: PgConnection, *, data: Optional[str] = None, what: str = "") -> str:
        rc, out, err = self.run(list(args), check=False, env=conn.env(), data=data)
        if rc != 0:
            message = describe_failure(what or self.binary, rc, out, err)
            raise StellaOpsError(message, rc=rc, stderr=err)
        return out


class PgDump(_PgTool):
    binary = "pg_dump"

    def dump(self, conn: PgConnection, path: str, *, jobs: int = 1, extra_args: Sequence[str] = ()) -> None:
        """``pg_dump --format=custom`` (``-Fc``) of ``conn.database`` into ``path``."""
        args = ["--format=custom", f"--file={path}", *conn.args(), *extra_args]
        self.call(args, conn, what=f"pg_dump of database {conn.database!r}")


class PgRestore(_PgTool):
    binary = "pg_restore"

    def list(self, path: str) -> list[str]:
        """The archive's table of contents (``pg_restore --list``); fails on an unreadable archive."""
        rc, out, err = self.run(["--list", path], check=False)
        if rc != 0:
            raise StellaOpsError(describe_failure(f"pg_restore --list of {path}", rc, out, err), rc=rc, stderr=err)
        entries = [line for line in out.splitlines() if line.strip() and not line.startswith(";")]
        if not entries:
            raise StellaOpsError(f"pg_restore --list of {path} shows an empty table of contents; expected a pg_dump archive.")
        return entries

    def read_all(self, path: str) -> None:
        """Read the whole archive, every data block decompressed, writing the script to the null device.

        ``--list`` reads only the table of contents, which a truncated or damaged archive still has.
        """
        rc, out, err = self.run(["--file=" + os.devnull, path], check=False)
        if rc != 0:
            raise StellaOpsError(describe_failure(f"pg_restore reading the whole of {path}", rc, out, err), rc=rc, stderr=err)

    def restore(
        self,
        conn: PgConnection,
        path: str,
        *,
        clean: bool = False,
        single_transaction: bool = False,
        no_owner: bool = False,
        jobs: int = 1,
    ) -> None:
        args = [*conn.args(), "--exit-on-error"]
        if clean:
            args += ["--clean", "--if-exists"]
        if single_transaction:
            args.append("--single-transaction")
        elif jobs > 1:
            args.append(f"--jobs={jobs}")
        if no_owner:
            args += ["--no-owner", "--no-privileges"]
        args.append(path)
        self.call(args, conn, what=f"pg_restore into database {conn.database!r}")


def table_data_entries(toc: Sequence[str]) -> list[str]:
    """``schema table`` of the TABLE DATA entries of a ``pg_restore --list`` output (owner removed)."""
    tables = []
    for line in toc:
        _head, sep, rest = line.partition(" TABLE DATA ")
        if sep:
            tables.append(rest.rsplit(" ", 1)[0])
    return tables


class Psql(_PgTool):
    binary = "psql"

    def query(self, conn: PgConnection, sql: str, *, database: Optional[str] = None) -> list[list[str]]:
        """Rows of ``sql`` (sent on stdin), fields split; stops at the first error."""
        args = [*conn.args(database), "--no-psqlrc", "--tuples-only", "--no-align", f"--field-separator={_SEP}",
                "--set=ON_ERROR_STOP=1", "--quiet"]
        out = self.call(args, conn, data=sql, what=f"psql on database {database or conn.database!r}")
        return [line.split(_SEP) for line in out.splitlines() if line]

    def table_checksums(self, conn: PgConnection, database: Optional[str] = None) -> dict[str, TableSum]:
        """Row count and checksum of every user table, keyed by quoted ``schema.table``."""
        sums: dict[str, TableSum] = {}
        for row in self.query(conn, CHECKSUM_SQL, database=database):
            if len(row) != 4:
                raise StellaOpsError(f"psql returned an unexpected checksum row {row!r}; expected 4 fields.")
            name, count, high, low = row
            digest = hashlib.sha256(f"{high}:{low}".encode()).hexdigest()[:32]
            sums[name] = TableSum(rows=int(count), checksum=digest)
        return sums

    def database_exists(self, conn: PgConnection, name: str, maintenance_db: str) -> bool:
        sql = f"SELECT 1 FROM pg_catalog.pg_database WHERE datname = {quote_literal(name)};"  # noqa: S608 - quoted literal
        rows = self.query(conn, sql, database=maintenance_db)
        return bool(rows)

    def create_database(self, conn: PgConnection, name: str, maintenance_db: str) -> None:
        self.query(conn, f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0;", database=maintenance_db)

    def drop_database(self, conn: PgConnection, name: str, maintenance_db: str) -> None:
        self.query(conn, f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE);", database=maintenance_db)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def compare_checksums(expected: dict[str, TableSum], actual: dict[str, TableSum]) -> list[str]:
    """Differences between two table checksum maps, one readable line each (empty when identical)."""
    problems = []
    for name in sorted(set(expected) | set(actual)):
        want, got = expected.get(name), actual.get(name)
        if want is None:
            problems.append(f"table {name} is not in the source")
        elif got is None:
            problems.append(f"table {name} is missing")
        elif want.rows != got.rows:
            problems.append(f"table {name} has {got.rows} rows, expected {want.rows}")
        elif want.checksum != got.checksum:
            problems.append(f"table {name} has checksum {got.checksum}, expected {want.checksum}")
    return problems
