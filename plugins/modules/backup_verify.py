#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_verify
short_description: Prove a backup set from its manifest before relying on it
description:
  - Re-checks a backup set taken by M(stellaops.deploy.backup) from its manifest, reading only.
  - The set must be C(complete); every artifact must be present with the size and sha256 of the manifest and
    must have passed verification when it was taken.
  - PostgreSQL dumps are read again with C(pg_restore --list); pymongo dumps are re-read and their counts and
    checksums compared with the manifest; C(mongodump) archives are read to the end of their gzip stream;
    local object copies are compared object by object with the listing, bucket copies too when
    O(object_storage) gives credentials.
  - Fails, with every problem listed, when the set cannot be proven (unless O(fail_on_problems=false)).
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
      - The module only reads; check mode runs the same checks.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  set_path:
    description: Directory of the set. Takes precedence over O(backup_dir) and O(set_id).
    type: path
  backup_dir:
    description: Directory of the sets; without O(set_id) the newest complete set there holding every one of O(kinds) is checked.
    type: path
  set_id:
    description: Id of the set in O(backup_dir).
    type: str
  label:
    description:
      - Without O(set_id), the newest complete set of this label in O(backup_dir), for example the one an upgrade
        took before it changed anything (C(before <deployment_id>)).
    type: str
  list_archives:
    description:
      - Read PostgreSQL and MongoDB archives again to the end, not only their sha256 - C(pg_restore --list) and
        C(pg_restore --file=/dev/null), which decompresses every data block, and the MongoDB dump re-read.
    type: bool
    default: true
  kinds:
    description: Check only artifacts of these kinds; all when empty.
    type: list
    elements: str
    default: []
    choices: [postgresql, mongodb, object_storage, kubernetes_config]
  object_storage:
    description: Endpoint and credentials to re-read object copies kept in a bucket; bucket copies are not re-read without it.
    type: dict
    suboptions:
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
  fail_on_problems:
    description: Fail when the set cannot be proven.
    type: bool
    default: true
seealso:
  - module: stellaops.deploy.backup
  - module: stellaops.deploy.backup_restore
"""

EXAMPLES = r"""
- name: Prove the newest backup set before a restore
  stellaops.deploy.backup_verify:
    backup_dir: /var/backups/stellaops

- name: Check one set and report without failing
  stellaops.deploy.backup_verify:
    set_path: /var/backups/stellaops/20251122T041700Z
    fail_on_problems: false
  register: proof
"""

RETURN = r"""
set_path:
  description: Directory of the checked set.
  returned: always
  type: str
  sample: /var/backups/stellaops/20251122T041700Z
set_id:
  description: Id of the checked set.
  returned: always
  type: str
  sample: 20251122T041700Z
status:
  description: Status recorded in the manifest.
  returned: always
  type: str
  sample: complete
verified:
  description: Whether every check passed.
  returned: always
  type: bool
  sample: true
problems:
  description: One sentence per failed check.
  returned: always
  type: list
  elements: str
  sample: []
artifacts:
  description: Per artifact, its name, kind, whether it passed (ok) and the checks run.
  returned: always
  type: list
  elements: dict
  sample: [{name: postgresql-127.0.0.1-5432-stellaops.dump, kind: postgresql, ok: true, checks: ["pg_restore --list: 23 entries"]}]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.options import POSTGRES_TOOLS_SPEC, S3_CREDENTIALS_SPEC
from ansible_collections.stellaops.deploy.plugins.module_utils.backup.verify import resolve_set, verify_set
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError


class BackupVerifier:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params: dict[str, Any] = module.params

    def run(self) -> dict[str, Any]:
        kinds = self.params["kinds"]
        set_path = resolve_set(self.params["set_path"], self.params["backup_dir"], self.params["set_id"],
                               kinds=kinds, label=self.params["label"])
        result = verify_set(
            set_path,
            self.module,
            bin_dir=self.params["postgres_bin_dir"],
            list_archives=self.params["list_archives"],
            s3_credentials=self.params["object_storage"],
            kinds=self.params["kinds"] or None,
        )
        result["changed"] = False
        if result["problems"] and self.params["fail_on_problems"]:
            shown = "; ".join(result["problems"][:5])
            raise StellaOpsError(f"Backup set {set_path} cannot be proven: {shown}.", **result)
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "set_path": {"type": "path"},
            "backup_dir": {"type": "path"},
            "set_id": {"type": "str"},
            "label": {"type": "str"},
            "list_archives": {"type": "bool", "default": True},
            **POSTGRES_TOOLS_SPEC,
            "kinds": {"type": "list", "elements": "str", "default": [],
                      "choices": ["postgresql", "mongodb", "object_storage", "kubernetes_config"]},
            "object_storage": {"type": "dict", "options": S3_CREDENTIALS_SPEC},
            "fail_on_problems": {"type": "bool", "default": True},
        },
        required_one_of=[("set_path", "backup_dir")],
        supports_check_mode=True,
    )
    try:
        module.exit_json(**BackupVerifier(module).run())
    except StellaOpsError as err:
        module.fail_json(msg=str(err), **err.details)


if __name__ == "__main__":
    main()
