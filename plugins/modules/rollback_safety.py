#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: rollback_safety
short_description: Decide whether a rollback may keep the database as it is, or must restore it first
description:
  - Reads the migrations applied in the platform database (O(table)) and the release manifests of every
    channel in O(releases_dir), and decides for the releases a rollback returns to (O(returns_to)) which
    way the upgrade runbook's steps R1-R4 take.
  - A migration that the release returned to (and every older release) does not add came with a newer
    release. Category A migrations stay backward compatible, so the release is redeployed on the database
    as it is (R2). A category B migration may break its code, and a migration that no manifest names cannot
    be judged; then the rollback needs the database restore (R3, R4) - the services stop, the database
    returns to the backup set taken before the upgrade, and the release is deployed - and without
    O(restore_database) the module fails with one sentence, before anything changes.
  - It only reads, in check mode as in a real run, and never reports a change.
  - Used by the roles stellaops.deploy.compose_rollback and stellaops.deploy.helm_rollback; the manifests and
    C(psql) are on the host that runs it (the controller there).
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.info_module
  - stellaops.deploy.migrations_table
options:
  releases_dir:
    description: Directory of the release manifests of every channel (C(<version>-<channel>.yaml)).
    type: path
    required: true
  returns_to:
    description: Release ids (C(<version>-<channel>)) or versions the rollback returns to; the database must suit each.
    type: list
    elements: str
    required: true
  restore_database:
    description:
      - Whether the operator chose the database restore (C(compose_rollback_restore_database) of the role).
      - With it the decision is V(restore) whatever the migrations; without it a rollback that needs one fails.
    type: bool
    default: false
  restore_hint:
    description: What the refusal tells the operator to do to restore the database and return anyway.
    type: str
    default: -e compose_rollback_restore_database=true stops the services, restores the backup set taken before the upgrade, then returns
"""

EXAMPLES = r"""
- name: Decide whether the database suits the release returned to
  stellaops.deploy.rollback_safety:
    releases_dir: /srv/stellaops/releases
    returns_to: [2025.10.0-stable]
    database: stellaops
    host: db.internal
    user: stellaops
    password: "{{ vault_db_password }}"
  register: rollback_safety
  delegate_to: localhost
"""

RETURN = r"""
decision:
  description: V(redeploy) (the database stays as it is) or V(restore) (stop, restore the backup set, deploy).
  returned: success
  type: str
  sample: redeploy
compatible:
  description: Whether the code of every release returned to runs on the database as it is.
  returned: always
  type: bool
breaking:
  description: Applied category B migrations that a release returned to does not know (id, name, release that adds it).
  returned: always
  type: list
  elements: dict
  sample: [{"id": "20251101000000", "name": "backfill_scores", "release": "2025.11.0"}]
unknown:
  description: Applied migrations that no release manifest names.
  returned: always
  type: list
  elements: str
live_schema_version:
  description: Schema version of the newest release whose migrations (and those of every older release) are all applied; null when no manifest says one.
  returned: always
  type: int
applied:
  description: Migration ids applied in the table.
  returned: always
  type: list
  elements: str
"""

import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.migrations import MIGRATIONS_TABLE_SPEC, read_table
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import CHANNELS, list_manifests
from ansible_collections.stellaops.deploy.plugins.module_utils.release.paths import database_return, version_of

RESTORE_HINT = "-e compose_rollback_restore_database=true stops the services, restores the backup set taken before the upgrade, then returns"
_VERSION = re.compile(r"[0-9]+(\.[0-9]+)+")


def _said(verdict: dict[str, Any]) -> str:
    parts = [
        "category B migration(s) " + ", ".join(f"{m['id']} ({m['name']}, {m['release']})" for m in verdict["breaking"]),
    ] if verdict["breaking"] else []  # fmt: skip
    if verdict["unknown"]:
        parts.append("migration(s) " + ", ".join(verdict["unknown"]) + " that no release manifest names")
    return " and ".join(parts)


def decide(params: dict[str, Any], applied: list[str]) -> dict[str, Any]:
    """The result of the module for the migrations ``applied``; a StellaOpsError when a needed restore was not chosen."""
    if not params["releases_dir"]:
        raise StellaOpsError("releases_dir is empty; name the directory of the release manifests (compose_rollback_releases_dir, stellaops_releases_dir).")
    releases = [release for channel in CHANNELS for release in list_manifests(params["releases_dir"], channel)]
    versions = {}
    for release_id in params["returns_to"]:
        version = version_of(release_id) or (release_id if _VERSION.fullmatch(release_id) else None)
        if version is None:
            raise StellaOpsError(f"returns_to: {release_id!r} is neither a release id (<version>-<channel>) nor a version.")
        versions[release_id] = version
    verdicts = {release_id: database_return(releases, version, applied) for release_id, version in versions.items()}
    blocked = {release_id: verdict for release_id, verdict in verdicts.items() if not verdict["compatible"]}
    live = next(iter(verdicts.values()))["live_schema_version"] if verdicts else None
    schema = f"schema {live}" if live is not None else "its migrations"
    breaking = {m["id"]: m for verdict in blocked.values() for m in verdict["breaking"]}
    result: dict[str, Any] = {
        "changed": False,
        "compatible": not blocked,
        "breaking": [breaking[migration_id] for migration_id in sorted(breaking)],
        "unknown": sorted({m for verdict in blocked.values() for m in verdict["unknown"]}),
        "live_schema_version": live,
        "applied": applied,
    }
    names = ", ".join(sorted(versions)) or "nothing"
    if blocked:
        why = "; ".join(f"{release_id} does not know {_said(verdict)}" for release_id, verdict in sorted(blocked.items()))
        if not params["restore_database"]:
            raise StellaOpsError(
                f"The database ({schema}) does not suit the rollback: {why}, applied since; its code may not run on it. "
                f"Nothing was changed: {params.get('restore_hint') or RESTORE_HINT}.",
                **result,
            )
        return {**result, "decision": "restore", "msg": f"The database ({schema}) needs the restore: {why}, applied since."}
    chosen = " (the restore was asked for)" if params["restore_database"] else ""
    return {
        **result,
        "decision": "restore" if params["restore_database"] else "redeploy",
        "msg": f"The database ({schema}) suits {names}: every migration applied since is backward compatible{chosen}.",
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            **MIGRATIONS_TABLE_SPEC,
            "releases_dir": {"type": "path", "required": True},
            "returns_to": {"type": "list", "elements": "str", "required": True},
            "restore_database": {"type": "bool", "default": False},
            "restore_hint": {"type": "str", "default": RESTORE_HINT},
        },
        supports_check_mode=True,
    )
    try:
        applied = [version for version, done in read_table(module, module.params).items() if done]
        result = decide(module.params, applied)
    except StellaOpsError as error:
        module.fail_json(msg=str(error), **{k: v for k, v in error.details.items() if k != "kind"})
    module.exit_json(**result)


if __name__ == "__main__":
    main()
