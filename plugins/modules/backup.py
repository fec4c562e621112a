#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup
short_description: Take a verified backup set of PostgreSQL, MongoDB, object storage and Kubernetes configuration
description:
  - Creates a timestamped backup set under O(backup_dir) holding one artifact per source and a backup manifest
    (C(manifest.json)) that records, for every artifact, its kind, source (never a secret), size, sha256, tool and
    tool version, start and end time, and the result of its verification.
  - PostgreSQL databases are dumped with C(pg_dump --format=custom) (C(-Fc)) and always checked with
    C(pg_restore --list); with O(verify_restore) the dump is also restored into a scratch database whose tables are
    compared with the source (row count and checksum per table) before the scratch database is dropped.
  - MongoDB is dumped with C(mongodump --archive --gzip) when the host has it, otherwise with pymongo (raw BSON per
    collection, collection options, indexes, counts and checksums), and the dump is re-read and compared with the server.
  - Object storage (a bucket or a prefix) is mirrored through the S3 API into the set or into another bucket, and every
    copied object is read back and its sha256 compared with the source.
  - ConfigMaps and Secrets of a Kubernetes namespace are written to files of mode 0600; only names and counts are returned.
  - Artifacts are written under temporary names and renamed when complete; the set directory is C(ID.partial) while the
    run is under way, C(ID) when every artifact passed verification and C(ID.failed) when anything failed. A failed set
    is never a restore point. Retention then keeps, for every source (a database, a bucket, a namespace's kind),
    the last O(keep) complete sets that hold it, so the last restore point of a source is never removed.
  - Passwords reach C(pg_dump), C(pg_restore) and C(psql) only through C(PGPASSWORD) or a passfile, never a command line.
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
      - Returns the artifacts it would take (RV(planned)) and the sets retention would remove; takes nothing.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Every run takes a new set, unless O(reuse_within) finds a complete set of the same sources taken that recently.
options:
  backup_dir:
    description: Directory holding the backup sets; created with mode 0700 when missing.
    type: path
    required: true
  label:
    description: Free text stored in the manifest, for example the release being upgraded from.
    type: str
    default: ""
  keep:
    description:
      - Number of complete sets retention keeps per source (the new one included); a set stays while it is one of
        the newest O(keep) of any source it holds. Failed sets older than the newest complete set are removed.
    type: int
    default: 5
  reuse_within:
    description: When above 0, a complete set of the same artifacts taken less than this many seconds ago is returned instead of a new one.
    type: int
    default: 0
  verify_restore:
    description: Restore every PostgreSQL dump into a scratch database and compare it with the source table by table.
    type: bool
    default: false
  restore_jobs:
    description: Parallel jobs of the scratch C(pg_restore).
    type: int
    default: 1
  postgres:
    description: PostgreSQL databases to dump.
    type: list
    elements: dict
    default: []
    suboptions:
      database:
        description: Database to dump.
        type: str
        required: true
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
        description: A C(.pgpass) file (mode 0600) used instead of O(postgres[].password).
        type: path
      sslmode:
        description: libpq C(sslmode).
        type: str
        choices: [disable, allow, prefer, require, verify-ca, verify-full]
      maintenance_db:
        description: Database to connect to when creating and dropping the scratch database.
        type: str
        default: postgres
      verify_restore:
        description: Overrides O(verify_restore) for this database.
        type: bool
  mongodb:
    description: MongoDB deployments to dump.
    type: list
    elements: dict
    default: []
    suboptions:
      uri:
        description: Connection URI without a password.
        type: str
        required: true
      name:
        description: Name of the artifact (C(mongodb-NAME.tar.gz)).
        type: str
        default: mongodb
      username:
        description: User that connects.
        type: str
      password:
        description: Password (passed apart from the URI; to C(mongodump) in a 0600 config file).
        type: str
      databases:
        description: Databases to dump; all but admin, local and config when empty.
        type: list
        elements: str
        default: []
      method:
        description: C(mongodump) or C(pymongo); V(auto) uses C(mongodump) when it is on the PATH.
        type: str
        default: auto
        choices: [auto, mongodump, pymongo]
  object_storage:
    description: Buckets or prefixes to mirror.
    type: list
    elements: dict
    default: []
    suboptions:
      bucket:
        description: Source bucket.
        type: str
        required: true
      prefix:
        description: Key prefix to mirror; the whole bucket when empty.
        type: str
        default: ""
      endpoint:
        description: S3 endpoint URL.
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
      destination:
        description: V(local) copies the objects into the set; V(bucket) into O(object_storage[].destination_bucket).
        type: str
        default: local
        choices: [local, bucket]
      destination_bucket:
        description: Bucket receiving the copy when O(object_storage[].destination=bucket).
        type: str
      destination_prefix:
        description: Key prefix of the copy; C(BUCKET/SET_ID/) by default.
        type: str
  kubernetes:
    description: Namespaces whose ConfigMaps and Secrets are saved (files of mode 0600).
    type: list
    elements: dict
    default: []
    suboptions:
      namespace:
        description: Namespace.
        type: str
        required: true
      kubeconfig:
        description: Kubeconfig file; the default loading rules when omitted.
        type: path
      context:
        description: Kubeconfig context.
        type: str
      kinds:
        description: Kinds to save.
        type: list
        elements: str
        default: [ConfigMap, Secret]
        choices: [ConfigMap, Secret]
requirements:
  - pymongo, or mongodump, for O(mongodb)
  - boto3 for O(object_storage)
  - kubernetes for O(kubernetes)
seealso:
  - module: stellaops.deploy.backup_verify
  - module: stellaops.deploy.backup_restore
"""

EXAMPLES = r"""
- name: Back up the database before the upgrade, proven by a scratch restore
  stellaops.deploy.backup:
    backup_dir: /var/backups/stellaops
    label: before 2025.10.0
    keep: 5
    verify_restore: true
    postgres:
      - database: stellaops
        host: 127.0.0.1
        port: 5432
        user: stellaops
        password: "{{ stellaops_db_password }}"
    object_storage:
      - bucket: stellaops-evidence
        endpoint: http://127.0.0.1:9000
        access_key: "{{ s3_access_key }}"
        secret_key: "{{ s3_secret_key }}"
  register: backup_result
"""

RETURN = r"""
set_id:
  description: Id of the set (UTC time C(YYYYMMDDTHHMMSSZ)); empty in check mode.
  returned: always
  type: str
  sample: 20251122T041700Z
set_path:
  description: Directory of the set; empty in check mode.
  returned: always
  type: str
  sample: /var/backups/stellaops/20251122T041700Z
manifest_path:
  description: The set's manifest; empty in check mode.
  returned: always
  type: str
  sample: /var/backups/stellaops/20251122T041700Z/manifest.json
status:
  description: "V(complete), or V(planned) in check mode."
  returned: always
  type: str
  sample: complete
reused:
  description: Whether a recent set was returned instead of a new one (O(reuse_within)).
  returned: always
  type: bool
  sample: false
planned:
  description: Artifacts the run takes (kind, name, source, tool, verification).
  returned: always
  type: list
  elements: dict
  sample: [{kind: postgresql, name: postgresql-127.0.0.1-5432-stellaops.dump}]
artifacts:
  description: Manifest entries of the taken artifacts (name, kind, source, size, sha256, tool, tool_version, started, finished, details, verification).
  returned: always
  type: list
  elements: dict
  sample: [{name: postgresql-127.0.0.1-5432-stellaops.dump, kind: postgresql, size: 29455, verification: {status: passed}}]
removed:
  description: Sets removed by retention (would be removed, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/var/backups/stellaops/20251101T020000Z]
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.options import (
    KUBERNETES_SPEC,
    MONGODB_SPEC,
    OBJECT_STORAGE_SPEC,
    POSTGRES_SPEC,
    POSTGRES_TOOLS_SPEC,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.run import (
    BackupRun,
    plan,
    recent_restore_point,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.sets import (
    BackupSet,
    apply_retention,
    plan_retention,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.client import core_v1_api


def kube_api(item: dict[str, Any]) -> Any:
    return core_v1_api(item.get("kubeconfig"), item.get("context"), "Kubernetes configuration backup")


class BackupManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params: dict[str, Any] = module.params

    def run(self) -> dict[str, Any]:
        backup_dir = self.params["backup_dir"]
        keep = self.params["keep"]
        if keep < 1:
            raise StellaOpsError(f"Option keep is {keep}; expected at least 1 so one restore point remains.")
        planned = plan(self.params, self.module)
        if not planned:
            raise StellaOpsError("Nothing to back up: set at least one of postgres, mongodb, object_storage, kubernetes.")
        result: dict[str, Any] = {"changed": False, "set_id": "", "set_path": "", "manifest_path": "", "reused": False,
                                  "planned": planned, "artifacts": [], "removed": []}
        recent = recent_restore_point(backup_dir, planned, self.params["reuse_within"], time.time())
        if recent is not None:
            result.update(status="complete", reused=True, set_id=recent.id, set_path=recent.path,
                          manifest_path=f"{recent.path}/manifest.json",
                          artifacts=(recent.manifest or {}).get("artifacts", []))
            return result
        if self.module.check_mode:
            doomed = plan_retention(backup_dir, keep, new_sources=frozenset((p["kind"], p["name"]) for p in planned))
            result.update(changed=True, status="planned", removed=[s.path for s in doomed])
            return result
        bset = BackupSet.create(backup_dir, label=self.params["label"])
        BackupRun(self.params, self.module, kube_api).run(bset)
        try:
            final = bset.complete()
        except StellaOpsError as err:
            final = bset.fail(str(err))
        if bset.status != "complete":
            raise StellaOpsError(f"Backup set {final} failed: {bset.error}; it is not a restore point.")
        removed = apply_retention(plan_retention(backup_dir, keep))
        result.update(changed=True, status="complete", set_id=bset.id, set_path=final,
                      manifest_path=f"{final}/manifest.json", artifacts=[a.as_dict() for a in bset.artifacts],
                      removed=removed)
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "backup_dir": {"type": "path", "required": True},
            "label": {"type": "str", "default": ""},
            "keep": {"type": "int", "default": 5},
            "reuse_within": {"type": "int", "default": 0},
            "verify_restore": {"type": "bool", "default": False},
            "restore_jobs": {"type": "int", "default": 1},
            **POSTGRES_TOOLS_SPEC,
            "postgres": {"type": "list", "elements": "dict", "default": [], "options": POSTGRES_SPEC},
            "mongodb": {"type": "list", "elements": "dict", "default": [], "options": MONGODB_SPEC},
            "object_storage": {"type": "list", "elements": "dict", "default": [], "options": OBJECT_STORAGE_SPEC},
            "kubernetes": {"type": "list", "elements": "dict", "default": [], "options": KUBERNETES_SPEC},
        },
        supports_check_mode=True,
    )
    try:
        module.exit_json(**BackupManager(module).run())
    except StellaOpsError as err:
        module.fail_json(msg=str(err), **{k: v for k, v in err.details.items() if k in ("rc", "stderr")})


if __name__ == "__main__":
    main()
