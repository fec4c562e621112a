#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_migrations
short_description: Apply database migrations with the platform's migration command, in a one-shot Compose service
version_added: 0.1.0
description:
  - Applies the migrations of O(migrations) that O(applied) does not list, as the upgrade runbook's steps 16
    and 18 do (C(stella system migrations-run --category A|B)), once the new release runs and is healthy.
  - The command runs in O(service) of the deployment that runs now (the one C(current) points at under
    O(project_dir)), with C(docker compose run --rm --no-deps); the service sits under a Compose profile in
    the platform's compose file, so C(docker compose up) never starts it.
  - The command reads the database from the libpq variables C(PGHOST), C(PGPORT), C(PGDATABASE), C(PGUSER)
    and C(PGPASSWORD), set from O(database); their values reach Compose through its environment, never its
    command line.
  - C(changed) is whether a migration was not applied yet. It does not prove that the command applied it;
    read the migrations table afterwards (M(stellaops.deploy.migrations_info) with O(stellaops.deploy.migrations_info#module:required)).
  - Needs only Python's standard library, the docker CLI and the Compose v2 plugin on the host.
options:
  category:
    description: The category of O(migrations) (A runs at startup and stays backward compatible; B is applied after review).
    type: str
    choices: [A, B]
    required: true
  migrations:
    description: Ids of the migrations to apply, as the migrations table records them (a release manifest's C(database.migrations)).
    type: list
    elements: str
    required: true
  applied:
    description: Ids the migrations table shows applied (M(stellaops.deploy.migrations_info)'s C(applied)); these are not run again.
    type: list
    elements: str
    default: []
  database:
    description: The database the command migrates.
    type: dict
    required: true
    suboptions:
      database:
        description: Database name.
        type: str
        required: true
      host:
        description: Database host, as the command's container reaches it.
        type: str
        default: 127.0.0.1
      port:
        description: Database port.
        type: int
        default: 5432
      user:
        description: Role the command connects as.
        type: str
        default: postgres
      password:
        description: Password of O(database.user).
        type: str
  service:
    description: The compose service of the platform's migration command.
    type: str
    default: migrator
  command:
    description:
      - The command given to O(service) (after its entrypoint); C({category}) and C({ids}) (comma-separated) are filled in.
    type: list
    elements: str
    default: [system, migrations-run, --category, "{category}", --ids, "{ids}"]
  timeout:
    description: Seconds the command may take before it is stopped and fails.
    type: int
    default: 600
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.compose_target
attributes:
  check_mode:
    support: full
    details: Says which migrations would run, and the command; runs nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: C(changed) comes from O(applied); with the table read again after a run, a second run changes nothing.
"""

EXAMPLES = r"""
- name: Apply the approved category B migrations of the release that runs now
  stellaops.deploy.compose_migrations:
    project_dir: /srv/stellaops
    category: B
    migrations: ["20251101000000"]
    applied: "{{ migrations_before.applied }}"
    database:
      database: stellaops
      host: db.internal
      user: stellaops
      password: "{{ vault_db_password }}"
"""

RETURN = r"""
pending:
  description: The migrations of O(migrations) not applied before, which the command was given (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["20251101000000"]
command:
  description: The command given to O(service).
  returned: always
  type: list
  elements: str
  sample: [system, migrations-run, --category, B, --ids, "20251101000000"]
deployment_id:
  description: The deployment whose service ran the command.
  returned: always
  type: str
  sample: 2025.11.0-stable+1
output:
  description: What the command printed, line by line.
  returned: always
  type: list
  elements: str
  sample: ["applied 20251101000000 backfill_scores"]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import DockerRunner
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.migrations import DEFAULT_COMMAND, pending, run_migrations
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.target import COMPOSE_TARGET_SPEC
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import PG_DATABASE_SPEC


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **COMPOSE_TARGET_SPEC,
            "category": {"type": "str", "choices": ["A", "B"], "required": True},
            "migrations": {"type": "list", "elements": "str", "required": True},
            "applied": {"type": "list", "elements": "str", "default": []},
            "database": {"type": "dict", "required": True, "options": PG_DATABASE_SPEC},
            "service": {"type": "str", "default": "migrator"},
            "command": {"type": "list", "elements": "str", "default": DEFAULT_COMMAND},
            "timeout": {"type": "int", "default": 600},
        },
        supports_check_mode=True,
    )
    ids = pending(module.params["migrations"], module.params["applied"])
    result = {"changed": bool(ids), "pending": ids}
    try:
        result.update(run_migrations(DockerRunner(module, module.params["docker_host"]), module.params, ids, module.check_mode))
    except StellaOpsError as error:
        module.fail_json(msg=str(error), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
