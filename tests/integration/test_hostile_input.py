# SPDX-License-Identifier: GPL-3.0-or-later
"""Secrets and forged locks through ansible-playbook at -vvv, on this machine (connection local).

health_check probes a real HTTP server of this test on 127.0.0.1 that wants basic authentication,
and commands whose arguments and output hold a secret; nothing of the secret may reach Ansible's
output, invocation included. compose_deploy is given a lock whose image was swapped after it was
rendered: the action plugin refuses it on the controller before anything runs on the host.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.lock_file import build_lock, load_template, render_lock
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "Zq7-database-password-31337"


@pytest.fixture
def protected_port(basic_auth_server: Callable[[str, str], int]) -> int:
    return basic_auth_server("monitor", SECRET)


def tampered_lock() -> str:
    release = load_manifest(str(ROOT / "deploy" / "releases" / "2025.09.2-stable.yaml"))
    text = render_lock(build_lock(release, load_template("services:\n  authority:\n", "t.yml"), template_sha256="0" * 64))
    image = yaml.safe_load(text)["services"]["authority"]["image"]
    return text.replace(image, "evil.example/authority@sha256:" + "e" * 64)


def test_no_secret_at_vvv_and_a_forged_lock_is_refused(tmp_path: Path, protected_port: int, playbook_runner: Callable[..., Any]) -> None:
    secret_file = tmp_path / "secret.txt"
    secret_file.write_text(SECRET + "\n")
    inventory = tmp_path / "hosts.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    checks = [
        {"name": "metrics", "type": "http", "url": f"http://monitor:{SECRET}@127.0.0.1:{protected_port}/health"},
        {"type": "http", "url": f"http://monitor:wrong{SECRET}@127.0.0.1:{protected_port}/health", "timeout": 2},
        {"type": "command", "command": [sys.executable, "-c", "import sys; sys.exit(1)", f"--password={SECRET}"], "no_log": True},
        {"type": "command", "command": [sys.executable, "-c", "import sys; print(open(sys.argv[1]).read()); sys.exit(1)", str(secret_file)]},
    ]
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        json.dumps(
            [
                {
                    "name": "hostile input",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": "probe with secrets",
                            "stellaops.deploy.health_check": {"checks": checks, "retries": 1, "interval": 0, "fail_on_unhealthy": False},
                        },
                        {
                            "name": "deploy a forged lock",
                            "stellaops.deploy.compose_deploy": {
                                "project_name": "it-forged",
                                "project_dir": str(tmp_path / "project"),
                                "lock": tampered_lock(),
                                "release": {"release_id": "2025.09.2-stable", "version": "2025.09.2", "channel": "stable"},
                            },
                            "ignore_errors": True,
                        },
                    ],
                }
            ]
        )
    )
    result = playbook_runner(playbook, inventory=inventory, verbosity=3, env={"ANSIBLE_INJECT_INVOCATION": "1"}, timeout=300)
    output = result.stdout + result.stderr
    assert SECRET not in output
    probe = result.result("probe with secrets")
    assert [r["healthy"] for r in probe["results"]] == [True, False, False, False]
    assert probe["results"][1]["status_code"] == 401
    assert probe["invocation"]["module_args"]["checks"][0]["url"] == f"http://********@127.0.0.1:{protected_port}/health"
    forged = result.result("deploy a forged lock")
    assert forged["failed"] is True and forged["msg"].startswith("lock: the compose lock does not match its own digest (recorded sha256:")
    assert not (tmp_path / "project").exists()
