# SPDX-License-Identifier: GPL-3.0-or-later
"""Database migrations applied through the platform's own migration command, in a one-shot Compose service.

The runbooks apply migrations with ``stella system migrations-run --category A|B`` once the new release
is healthy. On a compose host that command is a service of the deployment that runs now (under a
Compose profile, so ``up`` never starts it): ``docker compose run --rm`` starts it once with the
deployment's own files. It reads the database from the libpq variables; their values reach Compose
through its environment, never its command line.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..core.errors import StellaOpsError
from ..core.postgres import PgConnection
from .deployments import ENV_FILE, LOCK_FILE, DeploymentStore
from .docker_cli import ComposeProject, DockerRunner, docker_name

# stella system migrations-run, after the service's entrypoint (stella).
DEFAULT_COMMAND = ["system", "migrations-run", "--category", "{category}", "--ids", "{ids}"]


def pending(migrations: Sequence[str], applied: Sequence[str]) -> list[str]:
    """The migrations not applied yet, in the order given."""
    done = set(applied)
    return [migration for migration in migrations if migration not in done]


def migration_command(template: Sequence[str], category: str, ids: Sequence[str]) -> list[str]:
    """``template`` with ``{category}`` and ``{ids}`` (comma-separated) filled in each argument."""
    return [argument.replace("{category}", category).replace("{ids}", ",".join(ids)) for argument in template]


def run_migrations(docker: DockerRunner, params: Mapping[str, Any], ids: Sequence[str], check_mode: bool) -> dict[str, Any]:
    """Run the migration command for ``ids`` in the service of the deployment that runs now (not in check mode)."""
    service = docker_name(params["service"], "service")
    store = DeploymentStore(params["project_dir"])
    deployment_id = store.current()
    command = migration_command(params["command"], params["category"], ids)
    result: dict[str, Any] = {"deployment_id": deployment_id, "command": command, "output": []}
    if check_mode or not ids:
        return result
    if not deployment_id:
        raise StellaOpsError(f"No deployment runs under {params['project_dir']}: the migration command runs in a service of the deployment that runs.")
    project = ComposeProject.of_files(params["project_name"], params["project_dir"], store.path(deployment_id), LOCK_FILE, ENV_FILE)
    environment = PgConnection(**params["database"]).libpq_variables()
    passed = [argument for variable in sorted(environment) for argument in ("-e", variable)]
    # One name per project: a container that a stopped run left behind (its client killed at the timeout, --rm never
    # reached) is removed before the next run, not kept with the database settings in its configuration.
    name = f"{params['project_name']}-{service}-migrations"
    docker.docker(["rm", "--force", name], what="docker rm", check=False, timeout=docker.query_timeout)
    rc, out, err = docker.compose(
        project,
        ["run", "--rm", "--no-deps", "-T", "--name", name, *passed, service, *command],
        what=f"the migration command ({service}: {' '.join(command)})",
        check=False,
        timeout=params["timeout"],
        env=environment,
    )
    result["output"] = out.splitlines()
    if rc != 0:
        said = (err or out).strip().splitlines()
        raise StellaOpsError(
            f"The category {params['category']} migration(s) {', '.join(ids)} failed in service {service} of {deployment_id} "
            f"({' '.join(command)}, exit code {rc}): {said[-1] if said else 'no output'}."
        )
    return result
