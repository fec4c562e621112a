# SPDX-License-Identifier: GPL-3.0-or-later
"""`--check` of the upgrade across 50 SSH hosts against `ansible -m ping` of the same hosts, forks 25 both.

The hosts are light sandbox hosts (`scripts/sandbox.py host-up bench-NN --port 23NN`: a container
of the machine's engine running only sshd, with the docker CLI, the Compose plugin and the
machine's engine socket). host-up holds the sandbox's lock for its whole run, so hosts started in
parallel come up one after another anyway: they are started in turn (a few seconds each) and
removed with host-down at the end.

The inventory is the sandbox's (inventory/local's group_vars: SSH settings, service ports from
stellaops_port_base, health checks, env file settings and secrets) with the 50 hosts in
compose_hosts, each with its own port base, and a project that exists on none of them, so the
check plans the creation of every service on every host. Backups, evidence gates and pre-flight
(which needs an approval for stable) are off.

Floor, in the same run: `ansible compose_hosts -m ansible.builtin.ping -f 25`. Both are timed
with warm SSH connections (a ping before either, with a ControlPath directory of this run) and
report through the ansible.posix.json callback, from which the benchmark checks that every host
answered the ping and that every host's plan creates every service. Goal: the check takes at most
3x the ping. Printed with each time: the load average after it (the machine is shared; the 25
forks add to it) and the CPU time of this machine's side of the run (ansible, its workers and the
ssh clients), which includes the main process's result polling, so it grows with wall-clock time.

Run with `make bench` (the sandbox must be up); BENCH_FLEET_HOSTS=N runs it with N hosts (at most 99).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _sandbox import ROOT, SANDBOX, SANDBOX_DIR, VENV_BIN, ansible_env, children_cpu, load, localhost, run

HOSTS = {f"bench-{n:02d}": 2300 + n for n in range(1, int(os.environ.get("BENCH_FLEET_HOSTS", "50")) + 1)}
FORKS = 25
PROJECT = "stellaops-bench-fleet"
PORT_BASE = 20000  # host n publishes (only in the plan) on 20000 + 10 n + 1..6


SANDBOX_PY = [str(VENV_BIN / "python"), str(ROOT / "scripts" / "sandbox.py")]


def sandbox(*args: str) -> float:
    return run([*SANDBOX_PY, *args], what=f"sandbox.py {' '.join(args)}")[0]


def write_inventory(directory: Path) -> Path:
    """inventory/local's group_vars with the sandbox paths made absolute, and the 50 hosts in compose_hosts."""
    inventory = directory / "inventory"
    shutil.copytree(ROOT / "inventory" / "local" / "group_vars", inventory / "group_vars")
    all_vars = inventory / "group_vars" / "all.yml"
    all_vars.write_text(all_vars.read_text().replace("(inventory_dir ~ '/../../.sandbox')", repr(str(SANDBOX_DIR))))
    fleet_vars = inventory / "group_vars" / "compose_fleet.yml"
    key = repr(str(SANDBOX_DIR / "fleet" / "id_ed25519"))
    fleet_vars.write_text(fleet_vars.read_text().replace("(inventory_dir ~ '/../../.sandbox/fleet/id_ed25519')", key))
    hosts = {name: {"ansible_port": port, "stellaops_port_base": PORT_BASE + 10 * (port - 2300)} for name, port in HOSTS.items()}
    document = {"all": {"hosts": {"localhost": localhost()}, "children": {"compose_hosts": {"children": {"compose_fleet": {"hosts": hosts}}}}}}
    (inventory / "hosts.yml").write_text(yaml.safe_dump(document, sort_keys=False))
    return inventory


def report(output: str) -> dict:
    """The ansible.posix.json report of a run."""
    return json.loads(output[output.find("{") :])


def results(data: dict, task: str) -> dict[str, dict]:
    """Host -> its result of the last task whose name ends with ``task``."""
    found: dict[str, dict] = {}
    for play in data["plays"]:
        for entry in play["tasks"]:
            if entry["task"]["name"].endswith(task):
                found.update(entry["hosts"])
    return found


def require_pongs(data: dict) -> None:
    pongs = [name for name, result in results(data, "").items() if result.get("ping") == "pong"]
    if sorted(pongs) != sorted(HOSTS):
        raise SystemExit(f"ping: {len(pongs)} of {len(HOSTS)} hosts answered: {data['stats']}")


def require_plans(data: dict) -> None:
    """Every host planned the creation of every service of the template, and nothing failed."""
    services = sorted(SANDBOX["components"])
    plans = results(data, "Plan the deployment with Compose")
    wrong = {name: plans.get(name, {}).get("plan") for name in HOSTS if (plans.get(name, {}).get("plan") or {}).get("create") != services}
    failed = {name: stats for name, stats in data["stats"].items() if stats.get("failures") or stats.get("unreachable")}
    if wrong or failed:
        raise SystemExit(f"upgrade.yml --check did not plan to create {services} on every host: {wrong or ''} {failed or ''}")


def main() -> int:
    started: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as scratch:
        work = Path(scratch)
        inventory = write_inventory(work)
        env = ansible_env(
            ANSIBLE_SSH_CONTROL_PATH_DIR=str(work / "cp"),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
            ANSIBLE_JSON_INDENT="0",
        )
        ping = [str(VENV_BIN / "ansible"), "compose_hosts", "-i", str(inventory), "-m", "ansible.builtin.ping", "-f", str(FORKS)]
        extra = {
            "channel": "stable",
            "stellaops_compose": {"project_name": PROJECT, "project_dir": f"/srv/{PROJECT}", "environment": "bench-fleet"},
            "compose_upgrade_backup": False,
            "compose_upgrade_evidence_gate": False,
            "stellaops_preflight": False,
        }
        check = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/upgrade.yml", "--check", "-f", str(FORKS), "-e", json.dumps(extra)]
        try:
            start = time.perf_counter()
            for name, port in HOSTS.items():
                started.append(name)
                sandbox("host-up", name, "--port", str(port))
            print(f"host-up of {len(HOSTS)} hosts, one after another: {time.perf_counter() - start:.0f} s ({load()})")

            run(ping, env=env, what="warm-up ping")
            cpu = children_cpu()
            ping_time, output = run(ping, env=env, what="ping")
            ping_cpu, ping_load = children_cpu() - cpu, load()
            require_pongs(report(output))
            cpu = children_cpu()
            check_time, output = run(check, env=env, what="upgrade.yml --check")
            check_cpu, check_load = children_cpu() - cpu, load()
            require_plans(report(output))
        finally:
            stop = time.perf_counter()
            for name in started:
                gone = subprocess.run([*SANDBOX_PY, "host-down", name], capture_output=True, text=True, check=False)
                if gone.returncode != 0:
                    print(f"host-down {name} failed: {gone.stderr.strip()}", file=sys.stderr)
            if started:
                print(f"host-down of {len(started)} hosts: {time.perf_counter() - stop:.0f} s")

    print(f"ansible -m ping of {len(HOSTS)} hosts (forks {FORKS}):     {ping_time:7.2f} s (controller CPU {ping_cpu:6.2f} s, {ping_load})")
    print(f"upgrade.yml --check of {len(HOSTS)} hosts (forks {FORKS}): {check_time:7.2f} s (controller CPU {check_cpu:6.2f} s, {check_load})")
    print(f"ratio {check_time / ping_time:.2f}x (goal <= 3x); controller CPU ratio {check_cpu / ping_cpu:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
