#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_restore
short_description: Restore a proven backup set into PostgreSQL, MongoDB or object storage
description:
  - Restores artifacts of a backup set taken by M(stellaops.deploy.backup), after proving the set as
    M(stellaops.deploy.backup_verify) does. A set that is not C(complete), or whose artifacts are missing,
    altered or were never verified, is refused before anything changes.
  - V(postgresql) runs C(pg_restore --clean --if-exists --exit-on-error), by default in one transaction, then compares
    every table (row count and checksum) with the checksums the backup recorded (sets taken with C(verify_restore)).
  - V(mongodb) loads a pymongo dump (collections dropped first, options, documents and indexes) and compares counts
    and checksums with the dump, or runs C(mongorestore --archive --gzip --drop) for a C(mongodump) archive.
  - V(object_storage) copies every object of the listing back (from the set or the backup bucket) and reads each one
    back to compare its sha256 with the listing. Objects absent from the listing are left alone.
  - Stop the services that use the data before a restore; the role C(stellaops.deploy.database_restore) does it.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
  - stellaops.deploy.postgres_tools
attributes:
  check_mode:
    support: full
    details:
      - Proves the set and returns what it would restore and whether that changes the target; restores nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - V(postgresql) reports a change only when the database's tables differ from the checksums the backup recorded
        (sets taken with C(verify_restore)); the restore itself runs every time.
      - V(mongodb) and V(object_storage) always report a change.
options:
  set_path:
    description: Directory of the set; takes precedence over O(backup_dir).
    type: path
  backup_dir:
    description:
      - Directory of the sets; without O(set_id) the newest complete set holding an artifact of O(kind)
        (named O(artifact) when given) is restored, however many newer sets of other sources there are.
    type: path
  set_id:
    description: Id of the set in O(backup_dir).
    type: str
  kind:
    description: What to restore.
    type: str
    required: true
    choices: [postgresql, mongodb, object_storage]
  artifact:
    description: Name of the artifact; by default the one artifact of O(kind) that matches the target.
    type: str
  single_transaction:
    description: Run C(pg_restore) in one transaction so a failure leaves the database unchanged.
    type: bool
    default: true
  postgres:
    description: Target database for O(kind=postgresql); O(postgres.database) defaults to the backed-up database.
    type: dict
    suboptions:
      database:
        description: Database to restore into.
        type: str
      host:
        description: Host name, address or socket directory.
        type: str
        default: 127.0.0.1
      port:
        description: Port.
        type: int
        default: 5432
      user:
        description: User that connects.
        type: str
        default: postgres
      password:
        description: Password, passed through C(PGPASSWORD).
        type: str
      passfile:
        description: A C(.pgpass) file (mode 0600) used instead of O(postgres.password).
        type: path
      sslmode:
        description: libpq C(sslmode).
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
  mongodb:
    description: Target server for O(kind=mongodb).
    type: dict
    suboptions:
      uri:
        description: Connection URI without a password.
        type: str
        required: true
      username:
        description: User that connects.
        type: str
      password:
        description: Password.
        type: str
  object_storage:
    description: Target and credentials for O(kind=object_storage); bucket and prefix default to the backed-up ones.
    type: dict
    suboptions:
      bucket:
        description: Bucket to restore into.
        type: str
      prefix:
        description: Key prefix to restore under.
        type: str
      endpoint:
        description: S3 endpoint URL; the one in the listing when omitted.
        type: str
      region:
        description: Region.
        type: str
      access_key:
        description: Access key.
        type: str
      secret_key:
        description: Secret key.
        type: str
seealso:
  - module: stellaops.deploy.backup
  - module: stellaops.deploy.backup_verify
"""

EXAMPLES = r"""
- name: Restore the database from the newest complete set (services already stopped)
  stellaops.deploy.backup_restore:
    backup_dir: /var/backups/stellaops
    kind: postgresql
    postgres:
      database: stellaops
      user: stellaops
      password: "{{ stellaops_db_password }}"
"""

RETURN = r"""
set_path:
  description: Directory of the restored set.
  returned: always
  type: str
  sample: /var/backups/stellaops/20251122T041700Z
artifact:
  description: Name of the restored artifact.
  returned: always
  type: str
  sample: postgresql-127.0.0.1-5432-stellaops.dump
restored:
  description: What was restored and how it was verified; in check mode what would be.
  returned: always
  type: dict
  sample: {database: stellaops, tables: 4, verification: 4 tables identical to the backup}
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.backup import mongodb as mongo
from ansible_collections.stellaops.deploy.plugins.module_utils.backup import objects
from ansible_collections.stellaops.deploy.plugins.module_utils.backup import postgres as pg
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.options import (
    PG_CONNECTION_SPEC,
    POSTGRES_TOOLS_SPEC,
    S3_CREDENTIALS_SPEC,
    location_from_identity,
    pg_connection,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.sets import load_manifest
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.verify import resolve_set, verify_set
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.postgres import PgConnection


class RestoreManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params: dict[str, Any] = module.params
        self.kind: str = self.params["kind"]

    def pick(self, set_path: str) -> dict[str, Any]:
        candidates = [a for a in load_manifest(set_path)["artifacts"] if a["kind"] == self.kind]
        wanted = self.params["artifact"]
        target_db = (self.params["postgres"] or {}).get("database")
        if wanted:
            candidates = [a for a in candidates if a.get("name") == wanted]
        elif self.kind == "postgresql" and target_db and len(candidates) > 1:
            candidates = [a for a in candidates if a["source"].get("database") == target_db]
        if len(candidates) != 1:
            names = ", ".join(str(a.get("name")) for a in candidates) or "none"
            raise StellaOpsError(f"Backup set {set_path} has {len(candidates)} matching {self.kind} artifacts ({names}); "
                                 "expected exactly one: set the artifact option.")
        return candidates[0]

    def run(self) -> dict[str, Any]:
        set_path = resolve_set(self.params["set_path"], self.params["backup_dir"], self.params["set_id"],
                               kinds=[self.kind], artifact=self.params["artifact"])
        proof = verify_set(set_path, self.module, bin_dir=self.params["postgres_bin_dir"], kinds=[self.kind],
                           s3_credentials=self.params["object_storage"])
        if proof["problems"]:
            raise StellaOpsError(f"Refusing to restore from {set_path}: {'; '.join(proof['problems'][:5])}.")
        artifact = self.pick(set_path)
        changed = self.would_change(artifact)
        result: dict[str, Any] = {"changed": changed, "set_path": set_path, "artifact": artifact["name"]}
        if self.module.check_mode:
            result["restored"] = {"would_restore": artifact["name"], "source": artifact["source"]}
            return result
        result["restored"] = getattr(self, f"restore_{self.kind}")(set_path, artifact)
        return result

    def would_change(self, artifact: dict[str, Any]) -> bool:
        """The same comparison in check mode and in a real run; only PostgreSQL has recorded checksums to compare with."""
        if self.kind != "postgresql":
            return True
        return pg.differs_from_backup(self.pg_tools(), self.pg_target(artifact), artifact)

    def pg_tools(self) -> pg.PgTools:
        return pg.PgTools(self.module, self.params["postgres_bin_dir"])

    def pg_target(self, artifact: dict[str, Any]) -> PgConnection:
        params = dict(self.params["postgres"] or {})
        params["database"] = params.get("database") or artifact["source"].get("database")
        return pg_connection(params)

    def restore_postgresql(self, set_path: str, artifact: dict[str, Any]) -> dict[str, Any]:
        return pg.restore(self.pg_tools(), self.pg_target(artifact), set_path, artifact,
                          single_transaction=self.params["single_transaction"])

    def restore_mongodb(self, set_path: str, artifact: dict[str, Any]) -> dict[str, Any]:
        target = self.params["mongodb"]
        if not target:
            raise StellaOpsError("Option mongodb (uri, username, password) is required for kind=mongodb.")
        path = os.path.join(set_path, artifact["name"])
        if artifact["name"].endswith(".archive.gz"):
            mongo.Mongorestore(self.module).restore(target["uri"], path, target.get("password"))
            return {"archive": artifact["name"], "verification": "mongorestore exit status"}
        client = mongo.connect(target["uri"], target.get("username"), target.get("password"))
        try:
            return mongo.restore(client, path)
        except StellaOpsError:
            raise
        except Exception as err:  # noqa: BLE001 - pymongo errors become one sentence
            raise mongo.mongo_error(err, target["uri"]) from err
        finally:
            client.close()

    def restore_object_storage(self, set_path: str, artifact: dict[str, Any]) -> dict[str, Any]:
        creds = dict(self.params["object_storage"] or {})
        listing = objects.read_listing(os.path.join(set_path, artifact["name"]))
        source = dict(listing["source"])
        if creds.get("bucket"):
            source["bucket"] = creds["bucket"]
        if creds.get("prefix") is not None:
            source["prefix"] = creds["prefix"]
        target = location_from_identity(source, creds)
        destination = listing["destination"]
        if destination.get("type") == "local":
            return objects.restore(listing, target, local_dir=os.path.join(set_path, str(destination["path"])))
        return objects.restore(listing, target, backup=location_from_identity(destination, creds))


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "set_path": {"type": "path"},
            "backup_dir": {"type": "path"},
            "set_id": {"type": "str"},
            "kind": {"type": "str", "required": True, "choices": ["postgresql", "mongodb", "object_storage"]},
            "artifact": {"type": "str"},
            **POSTGRES_TOOLS_SPEC,
            "single_transaction": {"type": "bool", "default": True},
            "postgres": {"type": "dict", "options": {"database": {"type": "str"}, **PG_CONNECTION_SPEC}},
            "mongodb": {"type": "dict", "options": {
                "uri": {"type": "str", "required": True},
                "username": {"type": "str"},
                "password": {"type": "str", "no_log": True},
            }},
            "object_storage": {"type": "dict", "options": {
                "bucket": {"type": "str"},
                "prefix": {"type": "str"},
                **S3_CREDENTIALS_SPEC,
            }},
        },
        required_one_of=[("set_path", "backup_dir")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**RestoreManager(module).run())
    except StellaOpsError as err:
        module.fail_json(msg=str(err))


if __name__ == "__main__":
    main()
