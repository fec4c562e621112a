#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: profile_validation
short_description: Render every compose profile and Helm values file and check them against their release manifests
description:
  - The runbook's C(validate-profiles) as a module, on the controller where the profiles are. Each compose profile
    C(docker-compose.<environment>.yaml) of O(compose_dir) goes through C(docker compose config) with its
    environment's env file (C(env/<environment>.env), else C(env/<environment>.env.example)); each Helm values
    file C(values-<environment>.yaml) of O(helm_chart) through C(helm lint) and C(helm template).
  - A profile names its release (C(x-release) in a compose file, C(global.release) in Helm values); every image the
    tool rendered of a repository that release pins must carry the manifest's digest.
  - A chart directory without C(Chart.yaml) is skipped with a message (RV(skipped)).
  - One report (RV(profiles), RV(problems)); the module fails listing every problem unless O(fail_on_invalid=false).
  - The same code as C(tools/validate-profiles).
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - It only renders; it runs in check mode too.
  diff_mode:
    support: N/A
    details:
      - This action does not modify state.
  idempotent:
    support: full
options:
  compose_dir:
    description: Directory of the compose profiles. Omit to skip them.
    type: path
  helm_chart:
    description: Chart directory holding the Helm values files. Omit to skip them.
    type: path
  releases_dir:
    description: Directory of the release manifests (C(<version>-<channel>.yaml)).
    type: path
    required: true
  ignore_repos:
    description: Repositories the releases do not pin (auxiliary services such as C(nats)).
    type: list
    elements: str
    default: [nats]
  fail_on_invalid:
    description: Fail when a profile is not valid.
    type: bool
    default: true
requirements:
  - docker CLI with the Compose v2 plugin (no engine needed), helm 3 for the Helm values files.
"""

EXAMPLES = r"""
- name: Validate every deployment profile
  stellaops.deploy.profile_validation:
    compose_dir: "{{ playbook_dir }}/../deploy/compose"
    helm_chart: "{{ playbook_dir }}/../deploy/helm/stellaops"
    releases_dir: "{{ playbook_dir }}/../deploy/releases"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
valid:
  description: Whether every profile is valid.
  returned: always
  type: bool
profiles:
  description: Each profile with its kind, release id, steps (step, ok, message) and problems.
  returned: always
  type: list
  elements: dict
problems:
  description: Every problem, one sentence each, prefixed with the file name.
  returned: always
  type: list
  elements: str
  sample: ["docker-compose.prod.yaml: renders registry.example/stellaops/authority@sha256:0a55..., but 2025.09.2-stable pins ..."]
skipped:
  description: What was not validated and why.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.preflight.profiles import validate_profiles


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "compose_dir": {"type": "path"},
            "helm_chart": {"type": "path"},
            "releases_dir": {"type": "path", "required": True},
            "ignore_repos": {"type": "list", "elements": "str", "default": ["nats"]},
            "fail_on_invalid": {"type": "bool", "default": True},
        },
        required_one_of=[("compose_dir", "helm_chart")],
        supports_check_mode=True,
    )
    p = module.params
    try:
        report = validate_profiles(
            module, compose_dir=p["compose_dir"], helm_chart=p["helm_chart"], releases_dir=p["releases_dir"], ignore_repos=p["ignore_repos"]
        )
    except StellaOpsError as error:
        module.fail_json(msg=str(error))
    if not report["valid"] and p["fail_on_invalid"]:
        module.fail_json(**report)
    module.exit_json(changed=False, **report)


if __name__ == "__main__":
    main()
