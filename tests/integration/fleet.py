# SPDX-License-Identifier: GPL-3.0-or-later
"""The sandbox fleet as users reach it: the built and installed collection, hosts over real SSH.

``installed_collection`` builds the collection tarball (``ansible-galaxy collection build``) and
installs it into a scratch path, so playbooks run as ``stellaops.deploy.upgrade`` from that
install, never from this checkout. ``Fleet`` writes an inventory of the sandbox's SSH hosts (each
a container with its own filesystem and, for fleet-2 and fleet-3, a Docker engine of its own)
and an ``ansible.cfg`` that points at the installed collection, runs playbooks with them, and
reads each host's state: its engine through the docker CLI on the engine's socket, its files
over SSH.

A test names its own compose project and port offset, so tests do not depend on each other or
on the order in which they run.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SERVICES = ["authority", "signer", "attestor", "scanner-web", "scheduler", "notify"]
# The sandbox inventory's stellaops_compose as written (its health checks a template over each host's ports).
SANDBOX_COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "inventory" / "local" / "group_vars" / "compose_hosts.yml").read_text())["stellaops_compose"]


def stable_channel(sandbox: dict[str, Any], directory: Path, newest: str) -> Path:
    """A stable channel of 2025.09.0, 2025.10.0 and 2025.11.0, which upgrades from 2025.10.0 only and runs the images of
    the sandbox's manifest ``newest`` (the edge release, or the faulty one whose services never become healthy)."""
    directory.mkdir()
    for version in ("2025.09.0", "2025.10.0"):
        shutil.copy(sandbox["manifests"][f"{version}-stable"], directory)
    skipping = yaml.safe_load(Path(sandbox["manifests"][newest]).read_text())
    skipping["release"].update(version="2025.11.0", channel="stable", upgrade={"from": ["2025.10.0"]})
    (directory / "2025.11.0-stable.yaml").write_text(yaml.safe_dump(skipping, sort_keys=False))
    return directory


def build_and_install(destination: Path) -> Path:
    """Build the collection tarball and install it under ``destination``; the collections path."""
    dist = destination / "dist"
    installed = destination / "collections"
    galaxy = str(VENV_BIN / "ansible-galaxy")
    subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(dist)], cwd=ROOT, check=True, capture_output=True)
    tarball = next(dist.glob("stellaops-deploy-*.tar.gz"))
    subprocess.run([galaxy, "collection", "install", "--force", "--no-deps", "-p", str(installed), str(tarball)], check=True, capture_output=True)
    return installed


@dataclass
class FleetHost:
    """One compose host of the sandbox fleet."""

    name: str
    ssh_port: int
    docker_host: str  # the engine's socket as seen from this machine
    key_file: str
    port_base: int = 0

    def ssh(self, command: str, *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the host over SSH."""
        args = [
            "ssh", "-i", self.key_file, "-p", str(self.ssh_port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "root@127.0.0.1", command,
        ]  # fmt: skip
        return subprocess.run(args, capture_output=True, text=True, check=check, timeout=timeout)

    def read_file(self, path: str) -> Optional[str]:
        result = self.ssh(f"cat {path}", check=False)
        return result.stdout if result.returncode == 0 else None

    def docker(self, *args: str) -> str:
        return subprocess.run(["docker", "--host", self.docker_host, *args], capture_output=True, text=True, check=True).stdout

    def containers(self, project: str) -> dict[str, dict[str, Any]]:
        """Service -> id, image digest label, config hash, release label and state, read from the engine."""
        ids = self.docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={project}").split()
        if not ids:
            return {}
        found = {}
        for container in json.loads(self.docker("container", "inspect", *ids)):
            labels = container["Config"]["Labels"] or {}
            found[labels["com.docker.compose.service"]] = {
                "id": container["Id"],
                "image": container["Config"]["Image"],
                "config_hash": labels.get("com.docker.compose.config-hash"),
                "release_id": labels.get("stella.release.id"),
                "state": container["State"]["Status"],
                "env": container["Config"]["Env"],
                "ports": sorted((container["HostConfig"].get("PortBindings") or {}).values(), key=str),
            }
        return found

    def remove_project(self, project: str) -> None:
        ids = self.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={project}").split()
        if ids:
            self.docker("rm", "-f", "-v", *ids)

    def health(self, port: int, timeout: float = 3) -> Optional[dict[str, Any]]:
        """The JSON a sandbox service's /health answers on 127.0.0.1:port, None when it does not answer 200."""
        try:
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(f"http://127.0.0.1:{port}/health", timeout=timeout) as response:
                return json.loads(response.read())
        except (OSError, ValueError, urllib.error.HTTPError):
            return None

    def journal(self, project_dir: str) -> list[dict[str, Any]]:
        """Jobs of the host's journal, oldest first."""
        script = "import glob, json, sys; print(json.dumps([json.load(open(p)) for p in glob.glob(sys.argv[1] + '/journal/jobs/*.json')]))"
        jobs = json.loads(self.ssh(f"python3 -c {shlex.quote(script)} {shlex.quote(project_dir)}").stdout)
        return sorted(jobs, key=lambda job: (job["started_at"], job["id"]))


@dataclass
class Fleet:
    """A test's view of the fleet: its hosts, its inventory, its compose project, its runs."""

    workdir: Path
    collections: Path
    runner: Callable[..., Any]  # conftest.run_playbook
    hosts: list[FleetHost]
    project: str
    port_offset: int
    extra_vars: dict[str, Any] = field(default_factory=dict)
    compose: dict[str, Any] = field(default_factory=dict)  # settings of stellaops_compose over the sandbox inventory's

    @property
    def project_dir(self) -> str:
        return f"/srv/{self.project}"

    @property
    def inventory(self) -> Path:
        return self.workdir / "inventory"

    def write(self, host_vars: Optional[dict[str, dict[str, Any]]] = None) -> None:
        """The sandbox inventory (its group_vars) with these hosts, and an ansible.cfg for the installed collection."""
        if self.inventory.exists():
            shutil.rmtree(self.inventory)
        shutil.copytree(ROOT / "inventory" / "local", self.inventory)
        all_vars = self.inventory / "group_vars" / "all.yml"
        all_vars.write_text(all_vars.read_text().replace("(inventory_dir ~ '/../../.sandbox')", repr(str(ROOT / ".sandbox"))))
        hosts_vars = self.inventory / "group_vars" / "compose_hosts.yml"
        document = yaml.safe_load(hosts_vars.read_text())
        document["stellaops_compose"] = self.compose_settings()
        hosts_vars.write_text(yaml.safe_dump(document, sort_keys=False))
        fleet_vars = self.inventory / "group_vars" / "compose_fleet.yml"
        fleet_vars.write_text(fleet_vars.read_text().replace("(inventory_dir ~ '/../../.sandbox/fleet/id_ed25519')", repr(self.hosts[0].key_file)))
        hosts = {}
        for host in self.hosts:
            hosts[host.name] = {"ansible_port": host.ssh_port, "stellaops_port_base": host.port_base, **((host_vars or {}).get(host.name, {}))}
        document = {
            "all": {
                "hosts": {"localhost": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}},
                "children": {"compose_hosts": {"children": {"compose_fleet": {"hosts": hosts}}}},
            }
        }
        (self.inventory / "hosts.yml").write_text(yaml.safe_dump(document, sort_keys=False))
        (self.workdir / "ansible.cfg").write_text(
            "[defaults]\n"
            f"collections_path = {self.collections}\n"
            f"inventory = {self.inventory}\n"
            "host_key_checking = false\ninterpreter_python = auto_silent\nretry_files_enabled = false\nforks = 10\n"
            "[connection]\npipelining = true\n"
        )

    def compose_settings(self, **settings: Any) -> dict[str, Any]:
        """stellaops_compose of this test's hosts: its own project and environment, ``self.compose``, then ``settings``."""
        own = {"project_name": self.project, "project_dir": self.project_dir, "environment": f"sandbox-{self.project}"}
        return {**SANDBOX_COMPOSE, **own, **self.compose, **settings}

    def vars(self, **extra: Any) -> dict[str, Any]:
        return {
            # Pre-flight has its own scenarios (test_operator_playbooks.py); the upgrade scenarios start at the upgrade.
            "stellaops_preflight": False,
            **self.extra_vars,
            **extra,
        }

    def run(
        self, playbook: str, *, check: bool = False, diff: bool = False, limit: Optional[str] = None, timeout: float = 900, verbosity: int = 0, **extra: Any
    ) -> Any:
        """``ansible-playbook stellaops.deploy.<playbook>`` from the installed collection (``-v`` ``verbosity`` times)."""
        return self.runner(**self._command(playbook, check=check, diff=diff, limit=limit, extra=extra), timeout=timeout, verbosity=verbosity)

    def start(self, playbook: str, *, check: bool = False, diff: bool = False, limit: Optional[str] = None, **extra: Any) -> Any:
        """The same run as ``run``, started without waiting: a ``RunningPlaybook`` in a process group of its own."""
        return self.runner(**self._command(playbook, check=check, diff=diff, limit=limit, extra=extra), background=True)

    def _command(self, playbook: str, *, check: bool, diff: bool, limit: Optional[str], extra: dict[str, Any]) -> dict[str, Any]:
        return {
            "playbook": f"stellaops.deploy.{playbook}",
            "inventory": self.inventory,
            "extra_vars": self.vars(**extra),
            "check": check,
            "diff": diff,
            "limit": limit,
            "env": {"ANSIBLE_CONFIG": str(self.workdir / "ansible.cfg"), "ANSIBLE_COLLECTIONS_PATH": str(self.collections)},
            "cwd": self.workdir,
        }

    def port(self, host: FleetHost, service: str = "authority") -> int:
        return host.port_base + 1 + SERVICES.index(service)

    def versions(self) -> dict[str, Optional[str]]:
        """Host -> the release its authority's /health reports (None when it does not answer)."""
        return {host.name: (host.health(self.port(host)) or {}).get("release") for host in self.hosts}

    def clean(self) -> None:
        """Remove this test's project from every host: containers, deployments, journal, lock."""
        for host in self.hosts:
            host.remove_project(self.project)
            host.ssh(f"rm -rf {self.project_dir}", check=False)


def sandbox_hosts(sandbox: dict[str, Any], port_offset: int) -> list[FleetHost]:
    """The sandbox's fleet hosts, with service ports ``18000 + 100 * index + port_offset``."""
    hosts = []
    for index, host in enumerate(sandbox["fleet"]["hosts"], start=1):
        if not host["name"].startswith("fleet-"):
            continue
        hosts.append(
            FleetHost(
                name=host["name"],
                ssh_port=host["ssh_port"],
                docker_host=host["docker_host"],
                key_file=host["ssh_private_key_file"],
                port_base=18000 + 100 * index + port_offset,
            )
        )
    return hosts


@contextlib.contextmanager
def project_fleet(fleet: Fleet, also_clean: Callable[[], None] = lambda: None) -> Iterator[Fleet]:
    """``fleet`` with its project removed from every host before and after, and its inventory written:
    what every test module's fleet fixture does (``also_clean`` removes what the module adds)."""
    fleet.clean()
    also_clean()
    fleet.write()
    try:
        yield fleet
    finally:
        fleet.clean()
        also_clean()
