#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: compose_lock
short_description: Write a compose lock file that pins every service image to the digest of a release
description:
  - Reads a release manifest and a compose template and writes a compose file (the lock) in which every
    service image is C(repository@sha256:...) from the manifest.
  - A template service takes the manifest component of the same name, or the one named by its
    C(x-stella-component) key. Every other key of the template (ports, healthcheck, volumes, env_file, ...) is kept.
  - Each service gets the labels C(stella.release.id), C(stella.component.name), C(stella.digest), C(stella.channel)
    and C(stella.service.hash) (a digest of the whole service definition) merged into its template labels, and the
    environment C(STELLA_RELEASE_ID) and C(STELLA_DIGEST) merged into its template environment (a list form becomes a mapping).
  - A top-level C(x-stella-lock) block records the release, release id, channel, promotion id, the template's sha256
    and the lock's digest, C(sha256:) over the canonical JSON of the whole document without that digest.
  - The lock holds no time of day, so the same inputs give a byte-identical file and a second run reports no change.
  - A template service with no component in the manifest, or a component without a digest, fails naming it.
  - An existing O(dest) whose content no longer matches its own digest, or that is not UTF-8 text (a damaged file),
    is reported as tampered (RV(tampered)) and rewritten, with a warning.
version_added: 0.1.0
requirements:
  - PyYAML
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - Computes the lock, its digest and the image changes and writes nothing.
  diff_mode:
    support: full
    details:
      - The diff shows the old and new lock file texts; RV(image_changes) lists the services whose image changes.
  idempotent:
    support: full
options:
  manifest:
    description: Release manifest file (C(<version>-<channel>.yaml)).
    type: path
    required: true
  template:
    description: Compose template file with a C(services) mapping; services may omit C(image).
    type: path
    required: true
  dest:
    description: Lock file to write. Missing parent directories are created.
    type: path
    required: true
  promotion_id:
    description: Promotion that deploys this release, recorded in C(x-stella-lock.promotion_id).
    type: str
    default: ""
  channel:
    description: Channel the manifest must be on; any channel when omitted.
    type: str
    choices: [edge, stable, airgap]
  mode:
    description: Permissions of O(dest), octal string or symbolic, as for M(ansible.builtin.file).
    type: raw
    default: "0644"
"""

EXAMPLES = r"""
- name: Pin the compose services to the digests of the release
  stellaops.deploy.compose_lock:
    manifest: "{{ playbook_dir }}/../deploy/releases/2025.10.0-stable.yaml"
    template: /opt/stellaops/compose/docker-compose.template.yml
    dest: /opt/stellaops/releases/2025.10.0-stable/docker-compose.lock.yml
    channel: stable
    promotion_id: "{{ stellaops_promotion_id | default('') }}"
  register: stellaops_lock

- name: Show which services get another image
  ansible.builtin.debug:
    msg: "{{ stellaops_lock.image_changes | map(attribute='service') | list }}"
"""

RETURN = r"""
dest:
  description: Path of the lock file.
  returned: always
  type: str
  sample: /opt/stellaops/releases/2025.10.0-stable/docker-compose.lock.yml
digest:
  description: Content digest of the lock (C(x-stella-lock.digest)).
  returned: always
  type: str
  sample: sha256:5c0f6e0d1d4a3f0c7c2e8b9a1f4e6d2c3b5a7980e1f2d3c4b5a69788a9b0c1d2
release_id:
  description: Release id of the manifest (C(<version>-<channel>)).
  returned: always
  type: str
  sample: 2025.10.0-stable
release:
  description: Release version of the manifest.
  returned: always
  type: str
  sample: 2025.10.0
channel:
  description: Channel of the manifest.
  returned: always
  type: str
  sample: stable
services:
  description: Per service of the lock, its pinned image, manifest component, digest and service hash.
  returned: always
  type: dict
  sample:
    authority:
      image: 127.0.0.1:5000/stellaops/authority@sha256:c670029c43b5b6cf9e6211522251385fa01a5deb0f206ccce6e3b639fb5899f6
      component: authority
      digest: sha256:c670029c43b5b6cf9e6211522251385fa01a5deb0f206ccce6e3b639fb5899f6
      service_hash: sha256:0b6d1f6f2b0c8d3f9e2a7c4b5d6e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e
digests:
  description: Service name to pinned digest, the form M(stellaops.deploy.deployment_journal) records.
  returned: always
  type: dict
  sample: {authority: "sha256:c670029c43b5b6cf9e6211522251385fa01a5deb0f206ccce6e3b639fb5899f6"}
image_changes:
  description: Services whose image differs from the existing O(dest) (all services when there is none), by name.
  returned: always
  type: list
  elements: dict
  sample:
    - service: authority
      before: 127.0.0.1:5000/stellaops/authority@sha256:14a498818755f2308cfaae2c1d1355d9a571609d1ec7a38e2946e2dec7a07357
      after: 127.0.0.1:5000/stellaops/authority@sha256:c670029c43b5b6cf9e6211522251385fa01a5deb0f206ccce6e3b639fb5899f6
tampered:
  description: Whether an existing O(dest) no longer matched its own digest (or was not a lock, or not UTF-8 text); it is then rewritten.
  returned: always
  type: bool
  sample: false
diff:
  description: Old and new lock file texts.
  returned: in diff mode
  type: dict
  sample: {before: "", after: "# Compose lock of release 2025.10.0-stable ..."}
"""

import hashlib
import os
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.lock_file import (
    build_lock,
    check_lock,
    image_changes,
    load_template,
    parse_compose_yaml,
    render_lock,
    services_summary,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.core.atomic import write_text
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.safe_load import HAS_YAML, YAML_IMPORT_ERROR, decode_utf8, read_bytes, read_text
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import CHANNELS, load_manifest


class ComposeLockManager:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params

    def _existing(self, dest: str) -> tuple[Optional[str], Optional[str]]:
        """The text of the lock at ``dest`` (None when there is none) and why it is damaged (None when it is UTF-8)."""
        if os.path.isdir(dest):
            raise StellaOpsError(f"{dest}: dest is a directory; expected the path of the lock file.")
        if not os.path.lexists(dest):
            return None, None
        data = read_bytes(dest, "compose lock")
        try:
            return decode_utf8(data, dest, "compose lock"), None
        except StellaOpsError as err:
            # a damaged lock is tampered with and rewritten, as documented; the diff shows what could be read
            return data.decode("utf-8", "replace"), str(err)

    def _write(self, dest: str, text: str) -> None:
        # 0600 until the module gives the file its mode (option mode, symbolic modes included)
        write_text(dest, text, 0o600, what="compose lock")

    def run(self) -> dict[str, Any]:
        p = self.params
        release = load_manifest(p["manifest"], channel=p["channel"])
        template_text = read_text(p["template"], "compose template")
        template = load_template(template_text, p["template"])
        lock = build_lock(
            release,
            template,
            template_sha256=hashlib.sha256(template_text.encode("utf-8")).hexdigest(),
            promotion_id=p["promotion_id"],
            source=p["template"],
        )
        text = render_lock(lock)
        dest = p["dest"]
        before, damage = self._existing(dest)
        tampered = False
        old_lock = None
        warnings = []
        if before is not None:
            status = check_lock(before, dest)
            # not UTF-8 is damage even where the digest still matches (a byte in a comment)
            tampered = damage is not None or not status.valid
            if damage is not None:
                warnings.append(f"{damage.rstrip('.')}; it is damaged and is rewritten.")
            elif tampered:
                warnings.append(
                    f"{dest} no longer matches its own digest (recorded {status.digest}, computed {status.computed}); "
                    "it was edited or is not a compose lock, and is rewritten."
                )
            try:
                parsed = parse_compose_yaml(before, dest)
                old_lock = parsed if isinstance(parsed, dict) else None
            except StellaOpsError:
                old_lock = None
        changed = before != text
        if changed and not self.module.check_mode:
            self._write(dest, text)
        if os.path.exists(dest):
            changed = self.module.set_mode_if_different(dest, p["mode"], changed)
        services = services_summary(lock)
        result: dict[str, Any] = {
            "changed": changed,
            "dest": dest,
            "digest": lock["x-stella-lock"]["digest"],
            "release_id": release.release_id,
            "release": release.version,
            "channel": release.channel,
            "services": services,
            "digests": {name: service["digest"] for name, service in services.items()},
            "image_changes": image_changes(old_lock, lock),
            "tampered": tampered,
        }
        for warning in warnings:
            self.module.warn(warning)
        if self.module._diff:
            result["diff"] = {"before": before or "", "after": text, "before_header": dest, "after_header": dest}
        return result


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "manifest": {"type": "path", "required": True},
            "template": {"type": "path", "required": True},
            "dest": {"type": "path", "required": True},
            "promotion_id": {"type": "str", "default": ""},
            "channel": {"type": "str", "choices": list(CHANNELS)},
            "mode": {"type": "raw", "default": "0644"},
        },
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg=missing_required_lib("PyYAML"), exception=str(YAML_IMPORT_ERROR))
    try:
        result = ComposeLockManager(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
