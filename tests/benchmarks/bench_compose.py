# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose upgrade and rollback of a 10-service release on the sandbox: role vs raw docker compose.

Floor, measured in the same run on the same locks: `docker compose pull` then `up -d --wait`.
The role run is `ansible-playbook playbooks/upgrade.yml` (and rollback.yml) with the environment
lock, bookmark, lock generation, journal, digest verification and HTTP health checks; backups and
evidence gates are off here because they are measured by their own benchmarks.
Run with `make bench` (the sandbox must be up).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SANDBOX = json.loads((ROOT / ".sandbox" / "sandbox.json").read_text())
COMPONENTS = SANDBOX["components"]
SERVICES = {f"svc-{n:02d}": COMPONENTS[n % len(COMPONENTS)] for n in range(10)}
ROLE_PORT_BASE = 18480
RAW_PORT_BASE = 18580


def template(port_base: int) -> dict:
    return {
        "services": {
            name: {"x-stella-component": component, "ports": [f"127.0.0.1:{port_base + 1 + index}:8080"]}
            for index, (name, component) in enumerate(SERVICES.items())
        }
    }


def run(cmd: list[str], env: dict[str, str] | None = None) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def raw_compose(project: str, lock: Path) -> float:
    base = ["docker", "compose", "-p", project, "-f", str(lock)]
    return run([*base, "pull", "--quiet"]) + run([*base, "up", "-d", "--wait", "--remove-orphans"])


def main() -> int:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}
    with tempfile.TemporaryDirectory(prefix="bench-compose-") as scratch:
        work = Path(scratch)
        (work / "role-template.yaml").write_text(yaml.safe_dump(template(ROLE_PORT_BASE)))
        checks = [
            {"name": name, "type": "http", "url": f"http://127.0.0.1:{ROLE_PORT_BASE + 1 + index}/health"}
            for index, name in enumerate(SERVICES)
        ]
        common = {
            "compose_upgrade_project_name": "stellaops-bench-role",
            "compose_upgrade_project_dir": str(work / "host"),
            "compose_upgrade_template": str(work / "role-template.yaml"),
            "compose_upgrade_environment": "bench",
            "compose_upgrade_health_checks": checks,
            "compose_upgrade_backup": False,
            "compose_upgrade_evidence_gate": False,
        }

        def playbook(name: str, **extra: object) -> float:
            return run([str(VENV_BIN / "ansible-playbook"), f"playbooks/{name}", "-e", json.dumps({**common, **extra})], env)

        # Locks for the raw floor: the same generator, another project and ports.
        (work / "raw-template.yaml").write_text(yaml.safe_dump(template(RAW_PORT_BASE)))
        locks = {}
        for version in ("2025.09.0", "2025.10.0"):
            lock = work / f"raw-{version}.yaml"
            run(
                [
                    str(VENV_BIN / "ansible"), "localhost", "-m", "stellaops.deploy.compose_lock",
                    "-a", json.dumps({"manifest": SANDBOX["manifests"][f"{version}-stable"], "template": str(work / "raw-template.yaml"), "dest": str(lock)}),
                ],
                env,
            )
            locks[version] = lock
        try:
            playbook("upgrade.yml", channel="stable", release="2025.09.0")
            raw_compose("stellaops-bench-raw", locks["2025.09.0"])

            role_up = playbook("upgrade.yml", channel="stable", release="2025.10.0")
            raw_up = raw_compose("stellaops-bench-raw", locks["2025.10.0"])
            role_back = playbook("rollback.yml")
            raw_back = raw_compose("stellaops-bench-raw", locks["2025.09.0"])
        finally:
            for project in ("stellaops-bench-role", "stellaops-bench-raw"):
                subprocess.run(["docker", "compose", "-p", project, "-f", str(locks["2025.09.0"]), "down", "-v"], capture_output=True, check=False)

    print(f"10-service upgrade:  role {role_up:6.2f} s   raw compose pull + up --wait {raw_up:6.2f} s   ratio {role_up / raw_up:.2f}x (goal <= 1.5x)")
    print(f"10-service rollback: role {role_back:6.2f} s   raw compose pull + up --wait {raw_back:6.2f} s   ratio {role_back / raw_back:.2f}x (goal <= 1.3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
