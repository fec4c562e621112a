# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose upgrade and rollback of a 10-service release on one sandbox host over SSH: role vs community.docker vs raw compose.

The host is fleet-1 (SSH on 127.0.0.1:2201, the machine's Docker engine). The role runs
`ansible-playbook playbooks/upgrade.yml` (and rollback.yml) with an inventory of only fleet-1 and
localhost, the compose template on the controller, and the project stellaops-bench-role in
/srv/stellaops-bench-role on the host: plan, environment lock, journal, lock rendered on the
controller, pull, `up --wait`, digest verification and an HTTP health check of every service.
Backups and evidence gates are off (they have benchmarks of their own), and so is pre-flight.

Floor, measured in the same run on the same host over the same SSH (with the connection sharing
Ansible uses): `ssh ... docker compose -p stellaops-bench-raw -f <lock> pull --quiet` then
`up -d --wait --remove-orphans`, on locks rendered by the collection's own renderer for the same
images, published on other ports. Both projects first deploy 2025.09.0 (not timed; this also
brings every image of both releases into the engine), then each is timed upgrading to 2025.10.0
and going back to 2025.09.0. Both projects are removed at the end.

The peer, in the same run: `community.docker.docker_compose_v2` (`pull: missing`, `wait: true`,
`remove_orphans: true`) from a playbook of one task on the same host, on locks of the same images in a
third project (other ports). It deploys and waits; it does not verify digests or config hashes, run
health checks, journal or lock. Goals: the role's upgrade at most 1.15x the peer's, its rollback at
most the peer's.

The remote module runs per host (tasks that ran a module on the host, not skipped, not delegated, not
a controller-only action) are printed for the upgrade, the rollback and a `--check` of the upgrade.

Each figure is the median of BENCH_ROUNDS rounds (default 3; one round is the upgrade and the rollback of
each of the three in turn), printed with every run and the load average after it (the machine is shared).
Run with `make bench` (the sandbox must be up).
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import yaml
from _sandbox import ROOT, SANDBOX, SANDBOX_DIR, VENV_BIN, Ssh, ansible_env, inventory_host, load, localhost, run

BUILD = ROOT / ".build"
_LINK = BUILD / "ansible_collections" / "stellaops" / "deploy"
if not _LINK.exists():
    _LINK.parent.mkdir(parents=True, exist_ok=True)
    _LINK.symlink_to("../../..")
sys.path.insert(0, str(BUILD))

from ansible_collections.stellaops.deploy.plugins.module_utils.compose.lock_file import build_lock, load_template, render_lock  # noqa: E402
from ansible_collections.stellaops.deploy.plugins.module_utils.release.manifest import load_manifest  # noqa: E402

HOST = next(host for host in SANDBOX["fleet"]["hosts"] if host["name"] == "fleet-1")
COMPONENTS = SANDBOX["components"]
SERVICES = {f"svc-{n:02d}": COMPONENTS[n % len(COMPONENTS)] for n in range(10)}
ROLE_PROJECT, ROLE_DIR, ROLE_PORT_BASE = "stellaops-bench-role", "/srv/stellaops-bench-role", 19400
RAW_PROJECT, RAW_DIR, RAW_PORT_BASE = "stellaops-bench-raw", "/srv/stellaops-bench-raw", 19500
PEER_PROJECT, PEER_DIR, PEER_PORT_BASE = "stellaops-bench-peer", "/srv/stellaops-bench-peer", 19600
# Actions that run on the controller only: no module is sent to the host for them.
CONTROLLER_ACTIONS = frozenset(
    "ansible.builtin." + name
    for name in ("set_fact", "assert", "debug", "fail", "include_tasks", "include_role", "meta", "add_host", "group_by", "validate_argument_spec")
)
PEER_PLAYBOOK = """\
- name: Deploy a lock with community.docker
  hosts: compose_hosts
  gather_facts: false
  tasks:
    - name: Pull what is missing, bring the project up and wait for it
      community.docker.docker_compose_v2:
        project_src: "{{ peer_dir }}"
        project_name: "{{ peer_project }}"
        files: ["{{ peer_version }}.lock.yaml"]
        pull: missing
        wait: true
        remove_orphans: true
"""
OLD, NEW = "2025.09.0", "2025.10.0"
# Upgrade and rollback, each of the three, this many times in turn (BENCH_ROUNDS): medians, every run printed.
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


# The images check their health every 5 s with a 3 s timeout and 3 retries: on this shared
# 2-core machine a loaded engine runs the check late enough to call a sound container unhealthy.
# Both projects wait as long for the first good answer; only the tolerance of late answers grows.
HEALTHCHECK = {"timeout": "10s", "retries": 10}


def template(port_base: int) -> dict:
    return {
        "services": {
            name: {"x-stella-component": component, "ports": [f"127.0.0.1:{port_base + 1 + index}:8080"], "healthcheck": HEALTHCHECK}
            for index, (name, component) in enumerate(SERVICES.items())
        }
    }


def health_check(service: str, port: int) -> dict:
    """As the sandbox inventory checks a service: its /health reports the release being deployed."""
    return {"name": service, "type": "http", "url": f"http://127.0.0.1:{port}/health", "body_contains": '"release": "{release_version}"'}


def raw_lock(version: str, template_text: str, source: str) -> str:
    """The lock the role's action plugin would render, from the collection's own renderer."""
    release = load_manifest(SANDBOX["manifests"][f"{version}-stable"], channel="stable")
    lock = build_lock(release, load_template(template_text, source), template_sha256=hashlib.sha256(template_text.encode()).hexdigest(), source=source)
    return render_lock(lock)


def median(runs: list[tuple[float, str]]) -> float:
    return statistics.median(seconds for seconds, _load in runs)


def spread(runs: list[tuple[float, str]]) -> str:
    """Each run's seconds and the load average after it, as measured."""
    return "(" + ", ".join(f"{seconds:.2f} {load}" for seconds, load in runs) + ")"


def measure(step: Callable[[], object]) -> tuple[float, str]:
    """Wall-clock seconds of a step and the load average after it."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start, load()


def remote_module_runs(report: dict, host: str) -> int:
    """Tasks of an ansible.posix.json report that ran a module on ``host`` (not skipped, not delegated)."""
    runs = 0
    for play in report.get("plays", []):
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if result is None or result.get("skipped") or result.get("action") in CONTROLLER_ACTIONS or result.get("_ansible_delegated_vars"):
                continue
            runs += 1
    return runs


def main() -> int:
    env = ansible_env()
    with tempfile.TemporaryDirectory(prefix="bench-compose-") as scratch:
        work = Path(scratch)
        ssh = Ssh(HOST["ssh_port"], work)
        role_template = work / "role-template.yaml"
        role_template.write_text(yaml.safe_dump(template(ROLE_PORT_BASE)))
        inventory = work / "hosts.yml"
        inventory.write_text(
            yaml.safe_dump(
                {
                    "all": {
                        "vars": {"stellaops_releases_dir": str(SANDBOX_DIR / "releases")},
                        "hosts": {"localhost": localhost()},
                        "children": {"compose_hosts": {"hosts": {HOST["name"]: inventory_host(HOST["ssh_port"])}}},
                    }
                }
            )
        )
        common = {
            "stellaops_compose": {
                "project_name": ROLE_PROJECT,
                "project_dir": ROLE_DIR,
                "environment": "bench-role",
                "health_checks": [health_check(name, ROLE_PORT_BASE + 1 + index) for index, name in enumerate(SERVICES)],
            },
            "compose_upgrade_template": str(role_template),
            "compose_upgrade_backup": False,
            "compose_upgrade_evidence_gate": False,
            # Pre-flight (health, migrations, queues, approval) is a gate of its own before the upgrade.
            "stellaops_preflight": False,
        }

        module_runs: dict[str, int] = {}
        samples: dict[str, list[tuple[float, str]]] = {f"{who} {step}": [] for who in ("role", "peer", "raw") for step in ("up", "back")}

        def playbook(name: str, *options: str, count: str = "", **extra: object) -> float:
            cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), f"playbooks/{name}", *options, "-e", json.dumps({**common, **extra})]
            elapsed, output = run(cmd, env={**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"}, what=f"ansible-playbook playbooks/{name} {extra}")
            if count:
                module_runs[count] = remote_module_runs(json.loads(output[output.find("{") :]), HOST["name"])
            return elapsed

        peer_playbook = work / "peer.yml"
        peer_playbook.write_text(PEER_PLAYBOOK)

        def peer(version: str) -> float:
            cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(peer_playbook), "-e",
                   json.dumps({"peer_dir": PEER_DIR, "peer_project": PEER_PROJECT, "peer_version": version})]  # fmt: skip
            return run(cmd, env=env, what=f"community.docker.docker_compose_v2 {version}")[0]

        # The floor's locks: the same images, another project and other ports, copied to the host.
        raw_text = yaml.safe_dump(template(RAW_PORT_BASE))
        peer_text = yaml.safe_dump(template(PEER_PORT_BASE))
        locks = {}
        for version in (OLD, NEW):
            locks[version] = f"{RAW_DIR}/{version}.lock.yaml"
            ssh.run(f"mkdir -p {RAW_DIR} && cat > {locks[version]}", stdin=raw_lock(version, raw_text, "raw-template.yaml"))
            ssh.run(f"mkdir -p {PEER_DIR} && cat > {PEER_DIR}/{version}.lock.yaml", stdin=raw_lock(version, peer_text, "peer-template.yaml"))

        def raw(version: str) -> float:
            base = f"docker compose -p {RAW_PROJECT} -f {locks[version]}"
            return ssh.run(f"{base} pull --quiet") + ssh.run(f"{base} up -d --wait --remove-orphans")

        try:
            for project in (ROLE_PROJECT, RAW_PROJECT, PEER_PROJECT):  # left over from an interrupted run
                ssh.run(f"cd / && docker compose -p {project} down -v --remove-orphans")
            ssh.run(f"rm -rf {ROLE_DIR}")
            # Not timed: the three projects on the old release, and the new release's images in the engine.
            ssh.run(f"docker compose -p {RAW_PROJECT} -f {locks[NEW]} pull --quiet")
            raw(OLD)
            peer(OLD)
            playbook("upgrade.yml", channel="stable", release=OLD)
            playbook("upgrade.yml", "--check", count="check", channel="stable", release=NEW)

            for _round in range(ROUNDS):
                samples["role up"].append(measure(lambda: playbook("upgrade.yml", count="upgrade", channel="stable", release=NEW)))
                samples["peer up"].append(measure(lambda: peer(NEW)))
                samples["raw up"].append(measure(lambda: raw(NEW)))
                samples["role back"].append(measure(lambda: playbook("rollback.yml", count="rollback")))
                samples["peer back"].append(measure(lambda: peer(OLD)))
                samples["raw back"].append(measure(lambda: raw(OLD)))
        finally:
            for project in (ROLE_PROJECT, RAW_PROJECT, PEER_PROJECT):
                ssh.quiet(f"cd / && docker compose -p {project} down -v --remove-orphans")
            ssh.quiet(f"rm -rf {ROLE_DIR} {RAW_DIR} {PEER_DIR}")
            ssh.close()

    for what, step, goal in (("upgrade: ", "up", 1.15), ("rollback:", "back", 1.0)):
        role, other, floor = (median(samples[f"{who} {step}"]) for who in ("role", "peer", "raw"))
        print(
            f"10-service {what} median of {ROUNDS}: role {role:6.2f} s {spread(samples[f'role {step}'])}"
            f"   community.docker {other:6.2f} s {spread(samples[f'peer {step}'])}"
            f"   raw compose pull + up --wait {floor:6.2f} s {spread(samples[f'raw {step}'])}"
            f"   ratio to community.docker {role / other:.2f}x (goal <= {goal}x), to raw {role / floor:.2f}x"
        )
    print("remote module runs on the host: " + ", ".join(f"{what} {runs}" for what, runs in module_runs.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
