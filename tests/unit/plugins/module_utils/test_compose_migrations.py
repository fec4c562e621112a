# SPDX-License-Identifier: GPL-3.0-or-later
"""The migration command in a one-shot Compose service: which migrations run, the argument list, and the
libpq variables passed through the environment (never the command line).

The docker CLI is the stand-in of test_compose_docker_cli (argument lists recorded, canned answers); the
real migrator service, docker compose run and PostgreSQL are exercised by the integration tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import DockerRunner
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.migrations import (
    DEFAULT_COMMAND,
    migration_command,
    pending,
    run_migrations,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import PgConnection
from test_compose_docker_cli import HOST, StandInModule

PASSWORD = "s3cr3t-migrations"  # noqa: S105 - a test value, looked for in the argument list
DATABASE = {"database": "stellaops", "host": "db.internal", "port": 5432, "user": "stellaops", "password": PASSWORD}


def params(project_dir: Path, **changes: Any) -> dict[str, Any]:
    return {
        "project_name": "stellaops", "project_dir": str(project_dir), "docker_host": HOST, "category": "B",
        "database": DATABASE, "service": "migrator", "command": DEFAULT_COMMAND, "timeout": 600, **changes,
    }  # fmt: skip


def kept(project_dir: Path, deployment_id: str = "2025.11.0-stable+1") -> Path:
    """A project directory whose ``current`` points at a kept deployment."""
    directory = project_dir / "deployments" / deployment_id
    directory.mkdir(parents=True)
    (directory / "deployment.json").write_text(json.dumps({"deployment_id": deployment_id}))
    (project_dir / "current").symlink_to(directory)
    return directory


def test_only_migrations_the_table_does_not_show_run_in_the_order_given() -> None:
    assert pending(["3", "1", "2"], ["1"]) == ["3", "2"]
    assert pending(["1"], ["1", "2"]) == []


def test_the_command_gets_the_category_and_the_ids() -> None:
    assert migration_command(DEFAULT_COMMAND, "B", ["20251101000000", "20251102000000"]) == [
        "system", "migrations-run", "--category", "B", "--ids", "20251101000000,20251102000000",
    ]  # fmt: skip


def test_libpq_variables_leave_out_what_is_not_given() -> None:
    assert PgConnection(database="d", host="h", port=5433, user="u", password=None).libpq_variables() == {
        "PGDATABASE": "d", "PGHOST": "h", "PGPORT": "5433", "PGUSER": "u",
    }  # fmt: skip


def test_the_service_of_the_running_deployment_runs_with_the_password_in_its_environment_only(tmp_path: Path) -> None:
    directory = kept(tmp_path)
    module = StandInModule({
        ("--host", HOST, "rm"): (1, "", "Error: No such container: stellaops-migrator-migrations\n"),
        ("--host", HOST, "compose"): (0, "applied 20251101000000 backfill_scores\n", ""),
    })  # fmt: skip
    result = run_migrations(DockerRunner(module, HOST), params(tmp_path), ["20251101000000"], check_mode=False)

    assert result["deployment_id"] == "2025.11.0-stable+1" and result["output"] == ["applied 20251101000000 backfill_scores"]
    removed, call = module.calls
    assert removed[-3:] == ["rm", "--force", "stellaops-migrator-migrations"]  # what a run stopped at its timeout left
    assert call[call.index("--file") + 1] == str(directory / "docker-compose.lock.yaml")
    assert call[call.index("--env-file") + 1] == str(directory / "settings.env")
    run = call[call.index("run") :]
    assert run == [
        "run", "--rm", "--no-deps", "-T", "--name", "stellaops-migrator-migrations",
        "-e", "PGDATABASE", "-e", "PGHOST", "-e", "PGPASSWORD", "-e", "PGPORT", "-e", "PGUSER",
        "migrator", "system", "migrations-run", "--category", "B", "--ids", "20251101000000",
    ]  # fmt: skip
    assert not any(PASSWORD in argument for argument in call)
    assert module.environ[1]["PGPASSWORD"] == PASSWORD and module.environ[1]["PGHOST"] == "db.internal"
    assert "PGPASSWORD" not in module.environ[0]


def test_check_mode_and_nothing_pending_run_nothing(tmp_path: Path) -> None:
    kept(tmp_path)
    module = StandInModule()
    docker = DockerRunner(module, HOST)
    assert run_migrations(docker, params(tmp_path), ["20251101000000"], check_mode=True)["command"][-1] == "20251101000000"
    assert run_migrations(docker, params(tmp_path), [], check_mode=False)["output"] == []
    assert module.calls == []


def test_a_failed_command_is_one_sentence_with_its_last_line(tmp_path: Path) -> None:
    kept(tmp_path)
    failing = StandInModule({
        ("--host", HOST, "rm"): (1, "", ""),
        ("--host", HOST, "compose"): (3, "", 'psql:/migrations/x.sql:1: ERROR:  relation "findings" does not exist\n'),
    })  # fmt: skip
    with pytest.raises(StellaOpsError) as raised:
        run_migrations(DockerRunner(failing, HOST), params(tmp_path), ["20251101000000"], check_mode=False)
    assert str(raised.value) == (
        "The category B migration(s) 20251101000000 failed in service migrator of 2025.11.0-stable+1 (system migrations-run --category B"
        ' --ids 20251101000000, exit code 3): psql:/migrations/x.sql:1: ERROR:  relation "findings" does not exist.'
    )


def test_nothing_deployed_or_a_service_that_is_an_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match="No deployment runs under"):
        run_migrations(DockerRunner(StandInModule(), HOST), params(tmp_path), ["1"], check_mode=False)
    with pytest.raises(StellaOpsError, match="service must be a Docker name"):
        run_migrations(DockerRunner(StandInModule(), HOST), params(tmp_path, service="--privileged"), ["1"], check_mode=False)
