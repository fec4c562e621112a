# SPDX-License-Identifier: GPL-3.0-or-later
"""Backups proven restorable, against the sandbox's real PostgreSQL 15 and S3 API (moto), and a MongoDB-compatible server.

Every test works on its own scratch database, bucket or prefix (created and removed by the test); the sandbox's
``stellaops`` database and the seeded ``stellaops-evidence`` objects are only read. The MongoDB path runs against a
MongoDB-compatible server (a wire-protocol server started by the fixture), not a real mongod.

The playbooks run against the sandbox inventory, whose compose hosts are the fleet reached over SSH: the backup
is taken once per run on the controller (where the client tools and the backup sets are), and the change that
follows a backup happens on every compose host, in its own filesystem (checked over SSH). playbooks/restore.yml
stops the services of every compose host, restores once and brings every host's deployment back, so the restore
tests run it from the installed collection against a project of this module's own (``it-backups`` on ports
19201-19206, 19211-19216 and 19221-19226 of fleet-1..3), deployed once, never against the sandbox's ``stellaops``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.postgres import PgTools
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.run import BackupRun
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.sets import BackupSet, list_sets, load_manifest
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.verify import verify_set
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import PgConnection
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.s3 import S3Location, iter_objects, make_client, stream_sha256
from fleet import Fleet, FleetHost, project_fleet

ROOT = Path(__file__).resolve().parents[2]
BACKUP_PLAYBOOK = ROOT / "playbooks" / "backup.yml"
BACKUP_TASK = "stellaops.deploy.backup : Back up PostgreSQL, MongoDB, object storage and Kubernetes configuration"
RESTORE_TASK = "stellaops.deploy.database_restore : Restore the backup set"
GUARDED_PLAYBOOK = ROOT / "tests" / "integration" / "playbooks" / "backup_then_change.yml"
# The sandbox's compose template with a healthcheck a loaded shared machine can meet.
PATIENT_TEMPLATE = ROOT / "tests" / "integration" / "fixtures" / "stellaops-patient-health.template.yml"
# The sandbox inventory backs up its own database and evidence bucket; each test backs up only what it names.
NOTHING_ELSE = {"backup_postgres": [], "backup_mongodb": [], "backup_object_storage": [], "backup_kubernetes": []}

SEED_SQL = """
CREATE TABLE kinds (id bigserial PRIMARY KEY, name text NOT NULL, amount numeric(12, 3), seen timestamptz,
                    tags text[], doc jsonb, raw bytea, flag boolean);
INSERT INTO kinds (name, amount, seen, tags, doc, raw, flag)
SELECT 'row ' || g, g * 1.5, timestamptz '2025-01-01 00:00+00' + g * interval '1 minute',
       ARRAY['a' || g, 'b'], jsonb_build_object('g', g, 'q', 'it''s'), decode(md5(g::text), 'hex'), g % 2 = 0
FROM generate_series(1, 3000) AS g;
CREATE SCHEMA "Other Schema";
CREATE TABLE "Other Schema"."Mixed Case" (k int PRIMARY KEY, v text);
INSERT INTO "Other Schema"."Mixed Case" SELECT g, repeat(chr(65 + g % 26), g % 40) FROM generate_series(1, 500) AS g;
"""


@pytest.fixture(scope="module")
def compose_hosts(sandbox: dict[str, Any]) -> list[FleetHost]:
    """The compose hosts of the sandbox inventory (the fleet over SSH)."""
    inventory = yaml.safe_load((ROOT / "inventory" / "local" / "hosts.yml").read_text())
    names = set(inventory["all"]["children"]["compose_hosts"]["children"]["compose_fleet"]["hosts"])
    hosts = [FleetHost(name=h["name"], ssh_port=h["ssh_port"], docker_host=h["docker_host"], key_file=h["ssh_private_key_file"])
             for h in sandbox["fleet"]["hosts"] if h["name"] in names]
    assert sorted(h.name for h in hosts) == sorted(names)
    return hosts


@pytest.fixture
def marker(compose_hosts: list[FleetHost]) -> Iterator[str]:
    """A file that the guarded play writes on every compose host after its backup; removed afterwards."""
    path = f"/tmp/it-backups-{uuid.uuid4().hex[:12]}.changed"
    yield path
    for host in compose_hosts:
        host.ssh(f"rm -f {path}", check=False)


@pytest.fixture(scope="module")
def fleet(compose_hosts: list[FleetHost], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The compose hosts running this module's project it-backups (2025.09.0-stable), for playbooks/restore.yml."""
    hosts = [FleetHost(name=h.name, ssh_port=h.ssh_port, docker_host=h.docker_host, key_file=h.key_file, port_base=19200 + 10 * i)
             for i, h in enumerate(sorted(compose_hosts, key=lambda h: h.name))]
    fleet = Fleet(
        workdir=tmp_path_factory.mktemp("backups-fleet"), collections=installed_collection, runner=playbook_runner, hosts=hosts,
        project="it-backups", port_offset=0,
        extra_vars={"compose_upgrade_backup": False, "compose_upgrade_evidence_gate": False, "compose_upgrade_template": str(PATIENT_TEMPLATE)},
    )
    with project_fleet(fleet):
        deployed = fleet.run("upgrade", channel="stable", release="2025.09.0")
        assert deployed.rc == 0, deployed.failure_messages or deployed.stdout[-3000:]
        assert fleet.versions() == {host.name: "2025.09.0" for host in hosts}
        yield fleet


def _services(fleet: Fleet) -> dict[str, dict[str, tuple[str, str, str]]]:
    """Host -> service -> (container id, state, when it last started), read from each host's engine."""
    found = {}
    for host in fleet.hosts:
        containers = host.containers(fleet.project)
        started = {c["Id"]: c["State"]["StartedAt"] for c in json.loads(host.docker("container", "inspect", *[c["id"] for c in containers.values()]))}
        found[host.name] = {name: (c["id"], c["state"], started[c["id"]]) for name, c in containers.items()}
    return found


def _on_hosts(hosts: list[FleetHost], path: str) -> dict[str, bool]:
    """Whether ``path`` exists on each host."""
    return {host.name: host.ssh(f"test -e {path}", check=False).returncode == 0 for host in hosts}


def _password(sandbox: dict[str, Any]) -> str:
    return Path(sandbox["postgres"]["password_file"]).read_text().strip()


@pytest.fixture
def passfile(sandbox: dict[str, Any], tmp_path: Path) -> str:
    """A 0600 libpq passfile for the sandbox user, so no password travels in playbook arguments."""
    pg = sandbox["postgres"]
    path = tmp_path / "pgpass"
    path.write_text(f"{pg['host']}:{pg['port']}:*:{pg['user']}:{_password(sandbox)}\n")
    path.chmod(0o600)
    return str(path)


@pytest.fixture
def tools() -> PgTools:
    return PgTools(LocalModule(), None)


def _conn(sandbox: dict[str, Any], database: str, **kw: Any) -> PgConnection:
    pg = sandbox["postgres"]
    return PgConnection(database=database, host=pg["host"], port=pg["port"], user=pg["user"],
                        password=kw.pop("password", _password(sandbox)), **kw)


@pytest.fixture
def scratch_db(sandbox: dict[str, Any], tools: PgTools) -> Iterator[str]:
    """A scratch database of the sandbox user with typed rows in two schemas; dropped afterwards."""
    name = f"bk_test_{uuid.uuid4().hex[:8]}"
    conn = _conn(sandbox, name)
    tools.psql.create_database(conn, name, "postgres")
    try:
        tools.psql.query(conn, SEED_SQL)
        yield name
    finally:
        tools.psql.drop_database(conn, name, "postgres")


def _pg_item(sandbox: dict[str, Any], database: str, passfile: str) -> dict[str, Any]:
    pg = sandbox["postgres"]
    return {"database": database, "host": pg["host"], "port": pg["port"], "user": pg["user"], "passfile": passfile}


def _complete_files(backup_dir: Path) -> list[str]:
    """Files with a final name inside sets that are not marked failed (what could be mistaken for a backup)."""
    found = []
    for info in list_sets(str(backup_dir)):
        if info.status == "complete":
            found += [f for f in os.listdir(info.path) if f != "manifest.json"]
    return found


# --- PostgreSQL: back up, destroy, restore, prove identical -------------------------------------------------------


def test_backup_destroy_restore_identical(sandbox, scratch_db, passfile, tools, tmp_path, playbook_runner, compose_hosts, fleet) -> None:
    conn = _conn(sandbox, scratch_db)
    before = tools.psql.table_checksums(conn)
    assert before['public.kinds'].rows == 3000 and before['"Other Schema"."Mixed Case"'].rows == 500
    pg_item = _pg_item(sandbox, scratch_db, passfile)
    common = {**NOTHING_ELSE, "backup_dir": str(tmp_path / "sets"), "backup_postgres_bin_dir": sandbox["postgres"]["bin_dir"]}

    check = playbook_runner(BACKUP_PLAYBOOK, check=True, extra_vars={**common, "backup_postgres": pg_item})
    assert check.rc == 0, check.failure_messages
    assert check.result(BACKUP_TASK)["planned"][0]["kind"] == "postgresql"
    assert not (tmp_path / "sets").exists() or list_sets(str(tmp_path / "sets")) == []

    run = playbook_runner(BACKUP_PLAYBOOK, extra_vars={**common, "backup_postgres": pg_item, "backup_verify_restore": True})
    assert run.rc == 0, run.failure_messages
    # one backup for the environment, taken on the controller; nothing on the compose hosts
    assert [name for name, _result in run.tasks()].count(BACKUP_TASK) == 1
    assert [s.status for s in list_sets(common["backup_dir"])] == ["complete"]
    assert _on_hosts(compose_hosts, common["backup_dir"]) == {host.name: False for host in compose_hosts}
    taken = run.result(BACKUP_TASK)
    artifact = taken["artifacts"][0]
    assert artifact["verification"]["status"] == "passed" and artifact["verification"]["level"] == "scratch_restore"
    assert artifact["details"]["tables"]["public.kinds"]["checksum"] == before["public.kinds"].checksum
    assert os.stat(os.path.join(taken["set_path"], artifact["name"])).st_mode & 0o077 == 0
    assert "password" not in json.dumps(load_manifest(taken["set_path"])).lower()
    # the scratch database is gone
    assert not tools.psql.database_exists(conn, f"{scratch_db}_verify_{taken['set_id'].lower()}", "postgres")

    tools.psql.query(conn, "DELETE FROM kinds WHERE id % 3 = 0; UPDATE kinds SET name = 'x' WHERE id < 10; "
                           'DROP TABLE "Other Schema"."Mixed Case";')
    assert tools.psql.table_checksums(conn) != before

    running = _services(fleet)
    restore = fleet.run(
        "restore",
        database_restore_backup_dir=common["backup_dir"],
        database_restore_postgres_bin_dir=sandbox["postgres"]["bin_dir"],
        database_restore_postgres=pg_item,
    )
    assert restore.rc == 0, restore.failure_messages or restore.stdout[-3000:]
    # restored once, not once per compose host
    assert [name for name, _result in restore.tasks()].count(RESTORE_TASK) == 1
    assert "identical to the backup" in restore.result(RESTORE_TASK)["results"][0]["restored"]["verification"]
    assert tools.psql.table_checksums(conn) == before
    # every host's services were stopped for the restore and run their deployment again, the same containers
    after = _services(fleet)
    for host in fleet.hosts:
        assert restore.result("Stop the services", host.name)["changed"] is True
        assert restore.result("Bring the running deployment back up and prove it", host.name)["verified"] is True
        assert {s: c[:2] for s, c in after[host.name].items()} == {s: (c[0], "running") for s, c in running[host.name].items()}
        assert all(after[host.name][s][2] != running[host.name][s][2] for s in running[host.name])
    assert fleet.versions() == {host.name: "2025.09.0" for host in fleet.hosts}


def test_restore_refuses_altered_or_failed_set(sandbox, scratch_db, passfile, tmp_path, playbook_runner, compose_hosts, marker, fleet) -> None:
    backup_dir = tmp_path / "sets"
    pg_item = _pg_item(sandbox, scratch_db, passfile)
    # the guarded play with a backup that succeeds: the change then happens on every compose host
    run = _guarded(playbook_runner, tmp_path, marker, {"backup_postgres": pg_item})
    assert run.rc == 0, run.failure_messages
    assert _on_hosts(compose_hosts, marker) == {host.name: True for host in compose_hosts}
    set_path = Path(run.result(BACKUP_TASK)["set_path"])
    dump = next(set_path.glob("*.dump"))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    running = _services(fleet)
    restore = fleet.run("restore", database_restore_backup_dir=str(backup_dir), database_restore_postgres=pg_item)
    assert restore.rc != 0
    assert any("cannot be proven" in m and "sha256" in m for m in restore.failure_messages), restore.failure_messages
    assert [name for name, _result in restore.tasks()].count(RESTORE_TASK) == 0
    # refused before anything stopped: every host runs the same containers, never restarted
    assert "Stop the services" not in [name.split(" : ", 1)[-1] for name, _result in restore.tasks()]
    assert _services(fleet) == running


# --- Retention per source, restore picks the newest set holding the kind, restore reports a change only for one -----


RESTORE_LOCAL = ROOT / "tests" / "integration" / "playbooks" / "backup_restore_local.yml"
RESTORE_LOCAL_TASK = "Restore from the backup sets"


def test_object_storage_backups_never_remove_the_last_database_restore_point(
        sandbox, scratch_db, passfile, tools, own_bucket, tmp_path, playbook_runner) -> None:
    """Issue 10, class 3: keep 1 of object storage, run after run, leaves the only PostgreSQL set in place and restorable."""
    backup_dir = tmp_path / "sets"
    pg_item = _pg_item(sandbox, scratch_db, passfile)
    objects_item = {"bucket": own_bucket.bucket, "prefix": own_bucket.prefix, "endpoint": own_bucket.endpoint,
                    "region": own_bucket.region, "access_key": own_bucket.access_key, "secret_key": own_bucket.secret_key}
    common = {**NOTHING_ELSE, "backup_dir": str(backup_dir), "backup_keep": 1, "backup_postgres_bin_dir": sandbox["postgres"]["bin_dir"]}
    database = playbook_runner(BACKUP_PLAYBOOK, extra_vars={**common, "backup_postgres": pg_item, "backup_verify_restore": True})
    assert database.rc == 0, database.failure_messages
    database_set = database.result(BACKUP_TASK)["set_path"]

    planned = playbook_runner(BACKUP_PLAYBOOK, check=True, extra_vars={**common, "backup_object_storage": objects_item})
    assert planned.rc == 0 and planned.result(BACKUP_TASK)["removed"] == []
    removed = []
    for _run in range(2):
        objects = playbook_runner(BACKUP_PLAYBOOK, extra_vars={**common, "backup_object_storage": objects_item})
        assert objects.rc == 0, objects.failure_messages
        removed += objects.result(BACKUP_TASK)["removed"]
    complete = [s for s in list_sets(str(backup_dir)) if s.status == "complete"]
    assert [s.path for s in complete][0] == database_set and len(complete) == 2 and len(removed) == 1
    assert database_set not in removed

    restore_vars = {"restore_backup_dir": str(backup_dir), "restore_postgres": pg_item, "restore_bin_dir": sandbox["postgres"]["bin_dir"]}
    conn = _conn(sandbox, scratch_db)
    before = tools.psql.table_checksums(conn)
    same = playbook_runner(RESTORE_LOCAL, check=True, extra_vars=restore_vars)
    assert same.rc == 0, same.failure_messages
    assert same.result(RESTORE_LOCAL_TASK)["set_path"] == database_set  # not the newer object-storage set
    assert same.result(RESTORE_LOCAL_TASK)["changed"] is False  # the database equals the backup
    tools.psql.query(conn, "DELETE FROM kinds WHERE id % 7 = 0;")
    checked = playbook_runner(RESTORE_LOCAL, check=True, extra_vars=restore_vars)
    assert checked.rc == 0 and checked.result(RESTORE_LOCAL_TASK)["changed"] is True
    assert tools.psql.table_checksums(conn)["public.kinds"].rows == 3000 - 428  # check mode restored nothing
    applied = playbook_runner(RESTORE_LOCAL, extra_vars=restore_vars)
    assert applied.rc == 0 and applied.result(RESTORE_LOCAL_TASK)["changed"] is True
    assert tools.psql.table_checksums(conn) == before
    again = playbook_runner(RESTORE_LOCAL, check=True, extra_vars=restore_vars)
    assert again.rc == 0 and again.result(RESTORE_LOCAL_TASK)["changed"] is False


def test_truncated_dump_with_recomputed_manifest_does_not_verify(sandbox, scratch_db, passfile, tools, tmp_path) -> None:
    """Issue 10, class 4: pg_restore --list reads only the table of contents; verification must read every byte."""
    params = {"postgres": [_pg_item(sandbox, scratch_db, passfile)], "postgres_bin_dir": sandbox["postgres"]["bin_dir"]}
    bset = BackupSet.create(str(tmp_path / "sets"))
    BackupRun(params, LocalModule()).run(bset)
    set_path = bset.complete()
    assert verify_set(set_path, LocalModule())["verified"] is True
    manifest = load_manifest(set_path)
    artifact = manifest["artifacts"][0]
    dump = Path(set_path, artifact["name"])
    dump.write_bytes(dump.read_bytes()[: artifact["size"] - 64])
    artifact["size"] = dump.stat().st_size  # the manifest rewritten to match, as anyone who can write the set can
    artifact["sha256"] = hashlib.sha256(dump.read_bytes()).hexdigest()
    Path(set_path, "manifest.json").write_text(json.dumps(manifest))
    assert len(tools.pg_restore.list(str(dump))) > 0  # the table of contents still reads
    result = verify_set(set_path, LocalModule())
    assert result["verified"] is False
    assert any("pg_restore reading the whole of" in p and "end of file" in p for p in result["problems"]), result["problems"]


# --- Faults: clear message, no complete-looking artifact, the play stops before any change ------------------------


def _guarded(playbook_runner, tmp_path: Path, marker: str, extra: dict[str, Any]) -> Any:
    return playbook_runner(
        GUARDED_PLAYBOOK, extra_vars={**NOTHING_ELSE, "backup_dir": str(tmp_path / "sets"), "guard_marker": marker, **extra}
    )


def _assert_failed_cleanly(result: Any, marker: str, hosts: list[FleetHost], backup_dir: Path, expected: str) -> None:
    assert result.rc != 0
    assert any(expected in m for m in result.failure_messages), result.failure_messages
    assert any("marked failed" in m for m in result.failure_messages), result.failure_messages
    # the backup failed once, on the controller, and stopped the play on every compose host
    assert sum(1 for _name, r in result.tasks() if r.get("failed")) == 1, result.failure_messages
    assert _on_hosts(hosts, marker) == {host.name: False for host in hosts}, "the play went on to change something after a failed backup"
    assert "Change something after the backup" not in [name for name, _result in result.tasks()]
    assert _complete_files(backup_dir) == []
    sets = list_sets(str(backup_dir))
    assert sets and all(s.status == "failed" and s.path.endswith(".failed") for s in sets)
    for info in sets:
        assert not [f for f in os.listdir(info.path) if f.endswith(".dump")], os.listdir(info.path)


def test_fault_wrong_password(sandbox, scratch_db, tmp_path, playbook_runner, compose_hosts, marker) -> None:
    bad = tmp_path / "badpass"
    pg = sandbox["postgres"]
    bad.write_text(f"{pg['host']}:{pg['port']}:*:{pg['user']}:not-the-password\n")
    bad.chmod(0o600)
    result = _guarded(playbook_runner, tmp_path, marker, {"backup_postgres": _pg_item(sandbox, scratch_db, str(bad))})
    _assert_failed_cleanly(result, marker, compose_hosts, tmp_path / "sets", "password authentication failed")
    assert "not-the-password" not in result.stdout


def test_fault_missing_database(sandbox, passfile, tmp_path, playbook_runner, compose_hosts, marker) -> None:
    item = _pg_item(sandbox, "bk_does_not_exist", passfile)
    result = _guarded(playbook_runner, tmp_path, marker, {"backup_postgres": item})
    _assert_failed_cleanly(result, marker, compose_hosts, tmp_path / "sets", 'database "bk_does_not_exist" does not exist')


def test_fault_unreachable_bucket(sandbox, tmp_path, playbook_runner, compose_hosts, marker) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    item = {"bucket": "stellaops-evidence", "endpoint": f"http://127.0.0.1:{port}", "access_key": "x", "secret_key": "y"}
    result = _guarded(playbook_runner, tmp_path, marker, {"backup_object_storage": item})
    _assert_failed_cleanly(result, marker, compose_hosts, tmp_path / "sets", f"Cannot reach the S3 endpoint http://127.0.0.1:{port}")


def test_fault_pg_dump_killed(sandbox, scratch_db, passfile, tmp_path, playbook_runner, compose_hosts, marker) -> None:
    """pg_dump is killed with SIGKILL after it wrote part of the archive (a wrapper in the bin dir does it)."""
    real = sandbox["postgres"]["bin_dir"]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("pg_restore", "psql"):
        (bin_dir / tool).symlink_to(os.path.join(real, tool))
    wrapper = bin_dir / "pg_dump"
    wrapper.write_text(f"""#!/bin/bash
if [ "$1" = "--version" ]; then exec {real}/pg_dump --version; fi
out=""; args=()
for a in "$@"; do case "$a" in --file=*) out="${{a#--file=}}";; *) args+=("$a");; esac; done
{real}/pg_dump "${{args[@]}}" | head -c 2048 > "$out"
kill -KILL $$
""")
    wrapper.chmod(0o755)
    item = _pg_item(sandbox, scratch_db, passfile)
    result = _guarded(playbook_runner, tmp_path, marker, {"backup_postgres": item, "backup_postgres_bin_dir": str(bin_dir)})
    _assert_failed_cleanly(result, marker, compose_hosts, tmp_path / "sets", "pg_dump of database")
    assert any("killed by SIGKILL" in m for m in result.failure_messages), result.failure_messages


def test_fault_disk_full(sandbox, scratch_db, passfile, tools, tmp_path, playbook_runner, compose_hosts, marker) -> None:
    """A 256 KiB tmpfs mounted by the test is the backup directory; the dump of the scratch database does not fit."""
    conn = _conn(sandbox, scratch_db)
    tools.psql.query(conn, "CREATE TABLE noise AS SELECT g, md5(random()::text) || md5(random()::text) AS v "
                           "FROM generate_series(1, 40000) AS g;")
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], check=True)
    try:
        result = playbook_runner(GUARDED_PLAYBOOK, extra_vars={
            **NOTHING_ELSE, "backup_dir": str(mount / "sets"), "guard_marker": marker,
            "backup_postgres": _pg_item(sandbox, scratch_db, passfile)})
        _assert_failed_cleanly(result, marker, compose_hosts, mount / "sets", "No space left on device")
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# --- Object storage: mirror, destroy, restore, prove identical by sha256 -------------------------------------------


def _s3(sandbox: dict[str, Any], bucket: str, prefix: str = "") -> S3Location:
    s3 = sandbox["s3"]
    secret = Path(s3["secret_key_file"]).read_text().strip()
    return S3Location(bucket, prefix, s3["endpoint"], s3["region"], s3["access_key"], secret)


@pytest.fixture
def own_bucket(sandbox: dict[str, Any]) -> Iterator[S3Location]:
    """A fresh bucket with a copy of 12 seeded evidence bundles; it and the backup copies are removed afterwards."""
    location = _s3(sandbox, f"test-backup-{uuid.uuid4().hex[:10]}", "evidence/")
    client = make_client(location)
    client.create_bucket(Bucket=location.bucket)
    seeded = list(iter_objects(client, sandbox["s3"]["evidence_bucket"], "evidence/"))[:12]
    for info in seeded:
        client.copy_object(Bucket=location.bucket, Key=info.key,
                           CopySource={"Bucket": sandbox["s3"]["evidence_bucket"], "Key": info.key})
    try:
        yield location
    finally:
        for bucket, prefix in ((location.bucket, ""), (sandbox["s3"]["backup_bucket"], location.bucket + "/")):
            for info in list(iter_objects(client, bucket, prefix)):
                client.delete_object(Bucket=bucket, Key=info.key)
        client.delete_bucket(Bucket=location.bucket)


def _digests(location: S3Location) -> dict[str, str]:
    client = make_client(location)
    return {i.key: stream_sha256(client, location.bucket, i.key)[0] for i in iter_objects(client, location.bucket, location.prefix)}


@pytest.mark.parametrize("destination", ["local", "bucket"])
def test_object_storage_mirror_destroy_restore(sandbox, own_bucket, tmp_path, playbook_runner, destination, fleet) -> None:
    before = _digests(own_bucket)
    assert len(before) == 12
    item: dict[str, Any] = {"bucket": own_bucket.bucket, "prefix": own_bucket.prefix, "endpoint": own_bucket.endpoint,
                            "region": own_bucket.region, "access_key": own_bucket.access_key,
                            "secret_key": own_bucket.secret_key, "destination": destination}
    if destination == "bucket":
        item["destination_bucket"] = sandbox["s3"]["backup_bucket"]
    run = playbook_runner(BACKUP_PLAYBOOK, extra_vars={**NOTHING_ELSE, "backup_dir": str(tmp_path / "sets"), "backup_object_storage": item})
    assert run.rc == 0, run.failure_messages
    artifact = run.result(BACKUP_TASK)["artifacts"][0]
    assert artifact["details"]["objects"] == 12 and artifact["verification"]["status"] == "passed"

    client = make_client(own_bucket)
    keys = sorted(before)
    client.delete_object(Bucket=own_bucket.bucket, Key=keys[0])
    client.put_object(Bucket=own_bucket.bucket, Key=keys[1], Body=b"tampered")
    assert _digests(own_bucket) != before

    restore = fleet.run(
        "restore",
        database_restore_backup_dir=str(tmp_path / "sets"),
        database_restore_kinds=["object_storage"],
        database_restore_object_storage={k: item[k] for k in ("endpoint", "region", "access_key", "secret_key")},
    )
    assert restore.rc == 0, restore.failure_messages or restore.stdout[-3000:]
    assert [name for name, _result in restore.tasks()].count(RESTORE_TASK) == 1
    assert _digests(own_bucket) == before


# --- MongoDB against a MongoDB-compatible server ------------------------------------------------------------------


@pytest.fixture
def mongo_server(tmp_path: Path) -> Iterator[str]:
    """A MongoDB-compatible server on a free 127.0.0.1 port, stopped by its PID."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = Path(sys.executable).parent / "secantusd-py"
    proc = subprocess.Popen([str(server), "--host", "127.0.0.1", "--port", str(port), "--storage-path",
                             str(tmp_path / "mongo-data"), "--standalone"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"mongodb://127.0.0.1:{port}/"
    finally:
        os.kill(proc.pid, 15)
        proc.wait(timeout=30)


def _all_bson_types() -> list[dict[str, Any]]:
    import uuid as _uuid

    from bson import Binary, Code, DBRef, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp
    from bson.binary import UuidRepresentation

    return [
        {"_id": 1, "double": 1.25, "string": "héllo", "doc": {"a": {"b": [1, 2]}}, "array": [1, "two", None],
         "bin0": Binary(b"\x00\xff", 0), "bin4": Binary.from_uuid(_uuid.UUID(int=7), UuidRepresentation.STANDARD),
         "bin5": Binary(hashlib.md5(b"x").digest(), 5), "bin128": Binary(b"user", 128), "oid": ObjectId("64b7f1f1f1f1f1f1f1f1f1f1"),
         "bool": True, "date": datetime.datetime(2025, 11, 22, 4, 17, 0, 123000), "null": None, "regex": Regex("^a.*z$", "imsx"),
         "code": Code("function () { return 1; }"), "code_w_scope": Code("function () { return x; }", {"x": 1}),
         "int32": 2147483647, "timestamp": Timestamp(1700000000, 3), "int64": Int64(2**62), "decimal": Decimal128("-1.000E+5"),
         "minkey": MinKey(), "maxkey": MaxKey(), "dbref": DBRef("other", 5, "db2")},
        {"_id": ObjectId("64b7f1f1f1f1f1f1f1f1f1f2"), "nested": [{"k": Decimal128("NaN")}, {"k": float("inf")}]},
        {"_id": "str-id", "empty_doc": {}, "empty_arr": [], "neg_zero": -0.0},
    ]


def test_mongodb_dump_drop_restore_every_bson_type(mongo_server, tmp_path) -> None:
    import pymongo
    from bson import encode
    from bson.raw_bson import RawBSONDocument

    client: Any = pymongo.MongoClient(mongo_server, serverSelectionTimeoutMS=10000, document_class=RawBSONDocument)
    try:
        docs = _all_bson_types()
        client.app.types.insert_many([RawBSONDocument(encode(d)) for d in docs])
        client.app.many.insert_many([{"_id": i, "v": "x" * (i % 50)} for i in range(2500)])
        client.app.types.create_index([("string", 1), ("int32", -1)], unique=True, sparse=True, name="s_i")
        client.app.many.create_index("v", sparse=True, name="v_sparse")
        client.app.many.create_index("v", name="v_ttl_like", partialFilterExpression={"v": {"$exists": True}})
        client.other.c.insert_one({"_id": 1, "x": 1})
        original = {(db, c): {d["_id"]: d.raw for d in client[db][c].find({})} for db, c in
                    (("app", "types"), ("app", "many"), ("other", "c"))}
        indexes = {c: {ix["name"] for ix in client.app[c].list_indexes()} for c in ("types", "many")}

        bset = BackupSet.create(str(tmp_path / "sets"))
        BackupRun({"mongodb": [{"uri": mongo_server, "name": "main", "method": "pymongo"}]}, LocalModule()).run(bset)
        set_path = bset.complete()
        assert bset.status == "complete"
        proof = verify_set(set_path, LocalModule())
        assert proof["verified"], proof["problems"]

        client.drop_database("app")
        client.other.c.update_one({"_id": 1}, {"$set": {"x": 2}})
        from ansible_collections.stellaops.deploy.plugins.module_utils.backup.mongodb import connect, restore

        target = connect(mongo_server)
        try:
            result = restore(target, os.path.join(set_path, "mongodb-main.tar.gz"))
        finally:
            target.close()
        assert result["collections"] == 3
        restored = {(db, c): {d["_id"]: d.raw for d in client[db][c].find({})} for db, c in original}
        assert restored == original  # byte-exact documents, every BSON type
        assert {c: {ix["name"] for ix in client.app[c].list_indexes()} for c in ("types", "many")} == indexes
    finally:
        client.close()


def test_mongodb_unreachable_fails_set(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bset = BackupSet.create(str(tmp_path / "sets"))
    with pytest.raises(StellaOpsError, match=f"Cannot reach the MongoDB server at mongodb://127.0.0.1:{port}"):
        BackupRun({"mongodb": [{"uri": f"mongodb://127.0.0.1:{port}/?serverSelectionTimeoutMS=500",
                                "method": "pymongo"}]}, LocalModule()).run(bset)
    assert [s.status for s in list_sets(str(tmp_path / "sets"))] == ["failed"]
