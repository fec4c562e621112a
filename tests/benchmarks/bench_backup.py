# SPDX-License-Identifier: GPL-3.0-or-later
"""Backup of a PostgreSQL database of at least 1 GB (pgbench scale 70) against raw ``pg_dump -Fc`` in the same run.

Creates a scratch database with pgbench, measures raw ``pg_dump -Fc`` (the floor), the backup code path
(module_utils, as the module runs it), the ``backup`` role through ``playbooks/backup.yml``, and the role with the
scratch-restore verification; prints each time and its ratio to the floor, then drops the scratch database.
Run: ``.venv/bin/python tests/benchmarks/bench_backup.py`` (needs the running sandbox).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".build"))

from ansible_collections.stellaops.deploy.plugins.module_utils.backup.run import BackupRun  # noqa: E402
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.sets import BackupSet  # noqa: E402
from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import PgConnection, Psql  # noqa: E402
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule  # noqa: E402

SCALE = int(os.environ.get("BENCH_BACKUP_SCALE", "70"))


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    info = json.loads((ROOT / ".sandbox" / "sandbox.json").read_text())
    pg = info["postgres"]
    bin_dir = pg["bin_dir"]
    password = Path(pg["password_file"]).read_text().strip()
    database = f"bench_backup_{uuid.uuid4().hex[:8]}"
    work = Path(tempfile.mkdtemp(prefix="bench-backup-"))
    passfile = work / "pgpass"
    passfile.write_text(f"{pg['host']}:{pg['port']}:*:{pg['user']}:{password}\n")
    passfile.chmod(0o600)
    env = {**os.environ, "PGPASSFILE": str(passfile), "LC_ALL": "C"}
    conn_args = [f"--host={pg['host']}", f"--port={pg['port']}", f"--username={pg['user']}", "--no-password"]
    conn = PgConnection(database=database, host=pg["host"], port=pg["port"], user=pg["user"], passfile=str(passfile))
    psql = Psql(LocalModule(), bin_dir)
    psql.create_database(conn, database, "postgres")
    try:
        start = time.perf_counter()
        subprocess.run([f"{bin_dir}/pgbench", *conn_args[:-1], "-i", "-q", "-s", str(SCALE), database], env=env, check=True,
                       capture_output=True)
        size = int(psql.query(conn, "SELECT pg_database_size(current_database());")[0][0])
        print(f"database {database}: {size / 1e9:.2f} GB (pgbench scale {SCALE}, made in {time.perf_counter() - start:.0f} s)")

        def raw() -> None:
            subprocess.run([f"{bin_dir}/pg_dump", "-Fc", f"--file={work / 'raw.dump'}", *conn_args, f"--dbname={database}"],
                           env=env, check=True)

        raw_times = [timed(raw)]
        dump_size = (work / "raw.dump").stat().st_size
        (work / "raw.dump").unlink()

        item = {"database": database, "host": pg["host"], "port": pg["port"], "user": pg["user"], "passfile": str(passfile)}

        def module_path() -> None:
            bset = BackupSet.create(str(work / "sets-module"))
            BackupRun({"postgres": [item], "postgres_bin_dir": bin_dir}, LocalModule()).run(bset)
            bset.complete()
            if bset.status != "complete":
                raise SystemExit(f"backup failed: {bset.error}")

        def role(verify_restore: bool) -> None:
            extra = {"backup_dir": str(work / f"sets-role-{verify_restore}"), "backup_postgres": item,
                     "backup_postgres_bin_dir": bin_dir, "backup_verify_restore": verify_restore}
            proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ansible-playbook"), "playbooks/backup.yml",
                                   "-e", json.dumps(extra)], check=False, cwd=ROOT, capture_output=True, text=True,
                                  env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")})
            if proc.returncode != 0:
                raise SystemExit(f"role failed:\n{proc.stdout[-3000:]}")

        module_time = timed(module_path)
        role_time = timed(lambda: role(False))
        raw_times.append(timed(raw))
        verify_time = timed(lambda: role(True))
        floor = min(raw_times)
        print(f"pg_dump -Fc size: {dump_size / 1e6:.0f} MB")
        print(f"raw pg_dump -Fc (floor):                  {floor:7.2f} s  (runs: {', '.join(f'{t:.2f}' for t in raw_times)})")
        print(f"backup code path (module_utils):          {module_time:7.2f} s  ratio {module_time / floor:.3f}x")
        print(f"backup role (ansible-playbook):           {role_time:7.2f} s  ratio {role_time / floor:.3f}x")
        print(f"backup role + scratch-restore verify:     {verify_time:7.2f} s  ratio {verify_time / floor:.3f}x")
    finally:
        psql.drop_database(conn, database, "postgres")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
