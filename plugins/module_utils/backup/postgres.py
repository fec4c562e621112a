# SPDX-License-Identifier: GPL-3.0-or-later
"""PostgreSQL artifacts of a backup set: dump, verify (two levels) and restore.

Level 1 (always): ``pg_restore --list`` reads the table of contents and ``pg_restore --file=/dev/null``
reads the whole archive, every data block decompressed, so a truncated or damaged dump fails.
Level 2 (``verify_restore``): the archive is restored into a scratch database, every
table's row count and checksum is compared with the source, and the scratch
database is dropped whatever the outcome. The scratch checksums are stored in the
manifest, so a later restore can be proven identical to the backup.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..core.errors import StellaOpsError
from ..core.postgres import PgConnection, PgDump, PgRestore, Psql, TableSum, compare_checksums, table_data_entries
from ..core.runner import ModuleLike
from .sets import Artifact, BackupSet, safe_name, utc_now

KIND = "postgresql"


class PgTools:
    """The three PostgreSQL runners, found once in the same ``bin_dir``."""

    def __init__(self, module: ModuleLike, bin_dir: Optional[str] = None) -> None:
        self.pg_dump = PgDump(module, bin_dir)
        self.pg_restore = PgRestore(module, bin_dir)
        self.psql = Psql(module, bin_dir)


def artifact_name(conn: PgConnection) -> str:
    return f"postgresql-{safe_name(conn.host)}-{conn.port}-{safe_name(conn.database)}.dump"


def scratch_name(database: str, set_id: str) -> str:
    return f"{database[:30]}_verify_{set_id.lower()}"[:63]


def plan(conn: PgConnection, verify_restore: bool) -> dict[str, Any]:
    return {
        "kind": KIND,
        "name": artifact_name(conn),
        "source": conn.describe(),
        "tool": "pg_dump --format=custom",
        "verification": ["pg_restore reads the whole archive"] + (["scratch restore compared table by table"] if verify_restore else []),
    }


def backup(
    bset: BackupSet,
    conn: PgConnection,
    tools: PgTools,
    *,
    verify_restore: bool = False,
    maintenance_db: str = "postgres",
    restore_jobs: int = 1,
) -> Artifact:
    """Dump ``conn.database`` into ``bset``, verify it and commit it; on failure no artifact remains."""
    name = artifact_name(conn)
    artifact = Artifact(name=name, kind=KIND, source=conn.describe(), tool="pg_dump",
                        tool_version=tools.pg_dump.version, details={"format": "custom (pg_dump -Fc)"})
    tmp = bset.temp_path(name)
    artifact.started = utc_now()
    try:
        tools.pg_dump.dump(conn, tmp)
        artifact.finished = utc_now()
        checks = verify_archive(tools.pg_restore, tmp)
        artifact.details["toc_entries"] = checks["toc_entries"]
        artifact.details["tables_with_data"] = checks["tables_with_data"]
        artifact.verification = {"status": "passed", "checks": [checks["summary"]], "verified": utc_now()}
        if verify_restore:
            tables = verify_by_scratch_restore(tools, conn, tmp, scratch_name(conn.database, bset.id),
                                               maintenance_db=maintenance_db, jobs=restore_jobs)
            artifact.details["tables"] = {k: v.as_dict() for k, v in sorted(tables.items())}
            artifact.verification["checks"].append(
                f"scratch restore: {len(tables)} tables identical to the source (row counts and checksums)")
            artifact.verification["level"] = "scratch_restore"
        else:
            artifact.verification["level"] = "list"
    except (StellaOpsError, OSError) as err:
        bset.discard(name)
        if isinstance(err, OSError):
            raise StellaOpsError(f"Backup of PostgreSQL database {conn.database!r} failed: {err.strerror or err}.") from err
        raise
    bset.commit_artifact(artifact)
    return artifact


def verify_archive(pg_restore: PgRestore, path: str) -> dict[str, Any]:
    """The archive's table of contents, and every byte of it read through pg_restore."""
    toc = pg_restore.list(path)
    pg_restore.read_all(path)
    tables = table_data_entries(toc)
    return {
        "toc_entries": len(toc),
        "tables_with_data": len(tables),
        "summary": f"pg_restore read the whole archive: {len(toc)} entries, {len(tables)} tables with data",
    }


def verify_by_scratch_restore(
    tools: PgTools, conn: PgConnection, path: str, scratch: str, *, maintenance_db: str = "postgres", jobs: int = 1
) -> dict[str, TableSum]:
    """Restore ``path`` into ``scratch``, compare every table with the source, drop ``scratch``."""
    psql = tools.psql
    if psql.database_exists(conn, scratch, maintenance_db):
        raise StellaOpsError(f"Scratch database {scratch!r} already exists; drop it or wait for the other backup to finish.")
    psql.create_database(conn, scratch, maintenance_db)
    try:
        tools.pg_restore.restore(conn.with_database(scratch), path, no_owner=True, jobs=jobs)
        restored = psql.table_checksums(conn, database=scratch)
        source = psql.table_checksums(conn)
    finally:
        psql.drop_database(conn, scratch, maintenance_db)
    problems = compare_checksums(source, restored)
    if problems:
        raise StellaOpsError(
            f"Scratch restore of the dump of {conn.database!r} differs from the source: {'; '.join(problems[:5])}.")
    return restored


def recorded_tables(artifact: dict[str, Any]) -> dict[str, TableSum]:
    """Row count and checksum per table as the backup recorded them (sets taken with ``verify_restore``)."""
    tables = artifact["details"].get("tables") or {}
    try:
        return {str(k): TableSum(int(v["rows"]), str(v["checksum"])) for k, v in tables.items()}
    except (AttributeError, KeyError, TypeError, ValueError) as err:
        raise StellaOpsError(f"The manifest of artifact {artifact['name']} has malformed details.tables; "
                             "expected rows and checksum per table.") from err


def differs_from_backup(tools: PgTools, conn: PgConnection, artifact: dict[str, Any]) -> bool:
    """Whether a restore would change ``conn.database``: its tables are not exactly those the backup recorded.

    A set without recorded checksums cannot be compared, so its restore counts as a change.
    """
    recorded = recorded_tables(artifact)
    return not recorded or tools.psql.table_checksums(conn) != recorded


def restore(
    tools: PgTools,
    conn: PgConnection,
    set_path: str,
    artifact: dict[str, Any],
    *,
    single_transaction: bool = True,
) -> dict[str, Any]:
    """``pg_restore --clean`` of one manifest artifact into ``conn.database``, then compare with the manifest."""
    path = os.path.join(set_path, str(artifact["name"]))
    verify_archive(tools.pg_restore, path)
    tools.pg_restore.restore(conn, path, clean=True, single_transaction=single_transaction)
    actual = tools.psql.table_checksums(conn)
    expected = recorded_tables(artifact)
    result: dict[str, Any] = {"database": conn.database, "artifact": artifact["name"], "tables": len(actual)}
    if expected:
        extra = sorted(set(actual) - set(expected))
        problems = compare_checksums(expected, {k: v for k, v in actual.items() if k in expected})
        if extra:
            result["tables_not_in_backup"] = extra
        if problems:
            raise StellaOpsError(
                f"Database {conn.database!r} after restore differs from backup {artifact['name']}: {'; '.join(problems[:5])}.")
        result["verification"] = f"{len(expected)} tables identical to the backup (row counts and checksums)"
    else:
        result["verification"] = (
            f"restored {len(actual)} tables; the set has no table checksums (taken without verify_restore)")
    return result
