#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Hold an environment lock so that no two upgrades of the same environment run at once
description:
  - Takes or releases a lock file for one environment. The file is created with C(O_CREAT|O_EXCL),
    so of two runs racing for it exactly one wins; it records who runs (O(owner)), the controller the
    run comes from (host name and boot id), the C(ansible-playbook) process there, the run id, the time
    it was taken and the release being deployed.
  - A second run with a different O(run_id) fails at once with who holds the lock and since when.
    Taking the lock again with the same O(run_id) reports no change.
  - The lock file is on the managed host, the process that holds it on the controller; the action plugin
    tells staleness there. A lock taken from this controller whose C(ansible-playbook) process is gone is
    stale (RV(stale)); it is cleared only with O(break_stale=true), or with O(state=absent) and
    O(force=true). A lock from another controller cannot be judged from here and is cleared with O(force=true)
    once its run is known to be dead. An empty or garbled lock file (a crash between create and write) is stale.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  action:
    description: The action plugin records the controller and its process, and tells staleness there.
    support: full
  check_mode:
    support: full
    details:
      - Reports whether the lock would be taken or released; a lock held by another run fails as in a real run.
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  path:
    description: The lock file, for example C(/var/lib/stellaops/locks/production.lock). Its directory is created.
    type: path
    required: true
  state:
    description: V(present) takes the lock for O(run_id); V(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  run_id:
    description:
      - Identifies the run holding the lock; pass the same value to every task of one run
        (for example a value set once per play with C(ansible.builtin.set_fact)).
      - Required with O(state=present); with O(state=absent) only the holder's O(run_id) may release, unless O(force=true).
    type: str
  owner:
    description: Who runs the upgrade; shown to a run that is refused. Defaults to the user running the module.
    type: str
  release_id:
    description: Release the run deploys; shown to a run that is refused.
    type: str
  environment:
    description: Environment named in messages. Defaults to the lock file name without its extension.
    type: str
  pid:
    description:
      - Process on the controller that stays alive as long as the run; used to tell whether a lock is stale.
      - Set by the action plugin to the C(ansible-playbook) process of the run.
    type: int
  controller:
    description: The controller the run comes from (host name and boot id). Set by the action plugin.
    type: str
  stale_run_id:
    description: Run whose lock the controller found stale (its process is gone); set by the action plugin for O(break_stale=true).
    type: str
  force:
    description: With O(state=absent), release the lock whoever holds it.
    type: bool
    default: false
  break_stale:
    description: With O(state=present), remove a stale lock (its run's process is gone from this controller) and take it.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Lock the environment against a second upgrade
  stellaops.deploy.deploy_lock:
    path: /var/lib/stellaops/locks/production.lock
    run_id: "{{ stellaops_run_id }}"
    owner: "{{ lookup('ansible.builtin.env', 'USER') }}"
    release_id: "{{ release.release_id }}"

- name: Release the lock at the end of the run
  stellaops.deploy.deploy_lock:
    path: /var/lib/stellaops/locks/production.lock
    state: absent
    run_id: "{{ stellaops_run_id }}"

- name: Clear a lock left by a dead run
  stellaops.deploy.deploy_lock:
    path: /var/lib/stellaops/locks/production.lock
    state: absent
    force: true
"""

RETURN = r"""
lock:
  description:
    - With O(state=present), the record of the holder (this run once acquired).
    - With O(state=absent), the record that was found and released, or null when the lock was free.
    - Also returned when the module fails because another run holds the lock.
  returned: always
  type: dict
  sample:
    owner: deploy
    host: sandbox
    pid: 41023
    run_id: 20251122T042000-upgrade
    since: "2025-11-22T04:20:00Z"
    release_id: 2025.10.0-stable
    environment: production
acquired:
  description: Whether this run holds the lock after the task (would hold it, in check mode).
  returned: always
  type: bool
  sample: true
stale:
  description: Whether the lock found belongs to a process that is no longer running on this host.
  returned: always
  type: bool
  sample: false
broken_lock:
  description: The stale record that O(break_stale=true) removed, or null.
  returned: always
  type: dict
  sample: null
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.deploy_lock import DeployLock


class DeployLockManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.lock = DeployLock(self.params["path"], environment=self.params["environment"])

    def run(self) -> dict[str, Any]:
        p = self.params
        dry_run = self.module.check_mode
        if p["state"] == "present":
            outcome = self.lock.acquire(
                p["run_id"],
                owner=p["owner"],
                controller=p["controller"],
                pid=p["pid"],
                release_id=p["release_id"],
                break_stale=p["break_stale"],
                stale_run_id=p["stale_run_id"],
                dry_run=dry_run,
            )
        else:
            outcome = self.lock.release(p["run_id"], force=p["force"], dry_run=dry_run)
        return {
            "changed": outcome.changed,
            "lock": outcome.lock,
            "acquired": outcome.acquired,
            "stale": outcome.stale,
            "broken_lock": outcome.broken,
        }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "run_id": {"type": "str"},
            "owner": {"type": "str"},
            "release_id": {"type": "str"},
            "environment": {"type": "str"},
            "pid": {"type": "int"},
            "controller": {"type": "str"},
            "stale_run_id": {"type": "str"},
            "force": {"type": "bool", "default": False},
            "break_stale": {"type": "bool", "default": False},
        },
        required_if=[("state", "present", ("run_id",))],
        supports_check_mode=True,
    )
    try:
        result = DeployLockManager(module).run()
    except StellaOpsError as err:
        module.fail_json(
            msg=str(err), lock=err.details.get("lock"), acquired=False, stale=bool(err.details.get("stale")), broken_lock=None
        )
    module.exit_json(**result)


if __name__ == "__main__":
    main()
