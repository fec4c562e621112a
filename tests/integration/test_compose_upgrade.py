# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose upgrade and rollback against the real sandbox: Docker engine, registry, Compose v2.

Every scenario runs playbooks/upgrade.yml or playbooks/rollback.yml on the sandbox host with a
project of its own (name, directory, ports), and checks the outcome on the engine itself: the
containers' image digests, their ids (recreated or not) and what their health endpoints report.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import docker
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "stellaops-it"
PORT_BASE = 18180
SERVICES = ["authority", "signer", "attestor", "scanner-web", "scheduler", "notify"]

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def engine(sandbox: dict[str, Any]) -> docker.DockerClient:
    return docker.DockerClient(base_url=sandbox["docker_host"])


@pytest.fixture(scope="module")
def project(sandbox: dict[str, Any], engine: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory, playbook_runner):
    """A compose project of these tests' own, removed afterwards."""
    project_dir = tmp_path_factory.mktemp("compose-host")
    settings = {
        "compose_upgrade_project_name": PROJECT,
        "compose_upgrade_project_dir": str(project_dir),
        "compose_upgrade_environment": "sandbox-it",
        "stellaops_port_base": PORT_BASE,
        # Backups and evidence gates are exercised by the first scenario only, to keep the others short.
        "compose_upgrade_backup": False,
        "compose_upgrade_evidence_gate": False,
    }
    yield {"dir": project_dir, "vars": settings, "run": playbook_runner}
    for container in engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}):
        container.remove(force=True, v=True)


def upgrade(project: dict[str, Any], *, check: bool = False, **extra: Any):
    return project["run"]("playbooks/upgrade.yml", extra_vars={**project["vars"], **extra}, check=check)


def rollback(project: dict[str, Any], **extra: Any):
    return project["run"]("playbooks/rollback.yml", extra_vars={**project["vars"], **extra})


def containers(engine: docker.DockerClient) -> dict[str, dict[str, Any]]:
    found = {}
    for container in engine.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}):
        image = engine.images.get(container.attrs["Image"])
        found[container.labels["com.docker.compose.service"]] = {
            "id": container.id,
            "status": container.status,
            "repo_digests": image.attrs.get("RepoDigests") or [],
            "release": container.labels.get("stella.release.id"),
        }
    return found


def engine_state(engine: docker.DockerClient) -> dict[str, tuple[str, str]]:
    return {service: (c["id"], c["status"]) for service, c in containers(engine).items()}


def health(service: str) -> dict[str, Any]:
    port = PORT_BASE + 1 + SERVICES.index(service)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
        return json.loads(response.read())


def assert_runs(engine: docker.DockerClient, sandbox: dict[str, Any], version: str) -> None:
    """Every service runs the release's digest (engine RepoDigests) and reports the release."""
    running = containers(engine)
    assert sorted(running) == sorted(SERVICES)
    for service in SERVICES:
        pinned = f"{sandbox['repository_prefix']}/{service}@{sandbox['releases'][version]['digests'][service]}"
        assert pinned in running[service]["repo_digests"], (service, running[service])
        assert running[service]["status"] == "running"
        assert health(service) == {"status": "ok", "release": version, "component": service}


def journal_jobs(project: dict[str, Any]) -> list[dict[str, Any]]:
    jobs = [json.loads(p.read_text()) for p in sorted((project["dir"] / "journal" / "jobs").glob("*.json"))]
    return sorted(jobs, key=lambda job: (job["started_at"], job["id"]))


def test_upgrade_check_apply_idempotent(project, engine, sandbox):
    first = upgrade(project, channel="stable", release="2025.09.0")
    assert first.rc == 0, first.failure_messages or first.stderr
    assert_runs(engine, sandbox, "2025.09.0")

    gates = {
        "compose_upgrade_backup": True,
        "compose_upgrade_evidence_gate": True,
        "backup_dir": str(project["dir"] / "backups"),
        "evidence_gate_baseline_path": str(project["dir"] / "evidence" / "baseline.json"),
        "evidence_gate_cache_path": str(project["dir"] / "evidence" / "cache.json"),
        "evidence_gate_report_dir": str(project["dir"] / "evidence" / "reports"),
    }
    before = engine_state(engine)
    dry = upgrade(project, check=True, channel="stable", **gates)
    assert dry.rc == 0, dry.failure_messages or dry.stderr
    planned = dry.result("Plan the services this release changes", "sandbox")["plan"]["changes"]
    assert engine_state(engine) == before, "check mode changed the engine"
    assert not (project["dir"] / "releases" / "2025.10.0-stable").exists(), "check mode wrote a release directory"
    assert not (project["dir"] / "backups").exists() and not (project["dir"] / "evidence").exists(), "check mode took a backup or baseline"

    applied = upgrade(project, channel="stable", **gates)
    assert applied.rc == 0, applied.failure_messages or applied.stderr
    backup_sets = [p for p in (project["dir"] / "backups").iterdir() if p.is_dir()]
    assert len(backup_sets) == 1
    manifest = json.loads((backup_sets[0] / "manifest.json").read_text())
    assert manifest["status"] == "complete" and {a["kind"] for a in manifest["artifacts"]} >= {"postgresql"}
    continuity = json.loads((project["dir"] / "evidence" / "reports" / "continuity-report.json").read_text())
    assert continuity["status"] == "passed" and continuity["roots_match"] and not continuity["lost"] and not continuity["modified"]
    after = engine_state(engine)
    recreated = sorted(service for service in after if after[service][0] != before.get(service, ("",))[0])
    assert planned == recreated == sorted(SERVICES)
    assert_runs(engine, sandbox, "2025.10.0")
    assert journal_jobs(project)[-1]["status"] == "completed"
    assert journal_jobs(project)[-1]["previous_release_id"] == "2025.09.0-stable"

    again = upgrade(project, channel="stable", **gates)
    assert again.rc == 0
    assert len([p for p in (project["dir"] / "backups").iterdir() if p.is_dir()]) == 1, "an idempotent run took a backup"
    assert again.changed("sandbox") == 0, [name for name, r in again.tasks("sandbox") if r.get("changed")]
    assert engine_state(engine) == after


def test_rollback_to_previous_release_and_back(project, engine, sandbox):
    back = rollback(project)
    assert back.rc == 0, back.failure_messages or back.stderr
    assert_runs(engine, sandbox, "2025.09.0")
    job = journal_jobs(project)[-1]
    assert (job["release_id"], job["status"]) == ("2025.09.0-stable", "completed")
    assert job["rollback_of"]

    forward = upgrade(project, channel="stable")
    assert forward.rc == 0, forward.failure_messages
    assert_runs(engine, sandbox, "2025.10.0")


def test_broken_release_rolls_back_automatically(project, engine, sandbox):
    broken = upgrade(project, channel="edge", stellaops_releases_dir=sandbox["faulty_releases_dir"])
    assert broken.rc != 0
    message = " ".join(broken.failure_messages)
    assert "2025.11.1-edge failed" in message and "Rolled back: 2025.10.0-stable runs again" in message, message
    assert_runs(engine, sandbox, "2025.10.0")
    job = journal_jobs(project)[-1]
    assert (job["release_id"], job["status"]) == ("2025.11.1-edge", "rolled_back")


def test_auto_rollback_off_leaves_failed_release_for_drills(project, engine, sandbox):
    drill = upgrade(project, channel="edge", stellaops_releases_dir=sandbox["faulty_releases_dir"], compose_upgrade_auto_rollback=False)
    assert drill.rc != 0
    assert "Automatic rollback is off" in " ".join(drill.failure_messages)
    assert {c["release"] for c in containers(engine).values()} == {"2025.11.1-edge"}
    assert journal_jobs(project)[-1]["status"] == "failed"
    restored = upgrade(project, channel="stable")
    assert restored.rc == 0, restored.failure_messages
    assert_runs(engine, sandbox, "2025.10.0")


def test_second_concurrent_upgrade_is_refused(project, engine, sandbox):
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    extra = json.dumps({**project["vars"], "channel": "stable", "release": "2025.09.0"})
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/upgrade.yml", "-e", extra]
    first = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = project["dir"] / "deploy.lock"
    deadline = time.monotonic() + 60
    while not lock.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert lock.exists(), "the first run never took the environment lock"
    second = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    first_out, _stderr = first.communicate(timeout=600)
    assert first.returncode == 0, first_out[-3000:]
    assert second.returncode != 0
    assert "is locked by" in second.stdout, second.stdout[-3000:]
    assert_runs(engine, sandbox, "2025.09.0")


def test_killed_run_converges_when_run_again(project, engine, sandbox):
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    extra = json.dumps({**project["vars"], "channel": "stable"})
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "playbooks/upgrade.yml", "-e", extra]
    run = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    # Kill it once it is starting containers: the journal has a running job by then.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(j["status"] == "running" for j in journal_jobs(project) if j["release_id"] == "2025.10.0-stable"):
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    interrupted = [j for j in journal_jobs(project) if j["status"] == "running"]
    assert interrupted, "the run was not killed in the middle"

    refused = upgrade(project, channel="stable")
    assert refused.rc != 0 and "clear it" in " ".join(refused.failure_messages)

    again = upgrade(project, channel="stable", compose_upgrade_break_stale_lock=True)
    assert again.rc == 0, again.failure_messages or again.stderr
    assert_runs(engine, sandbox, "2025.10.0")


def test_registry_down_before_pull_touches_nothing(project, engine, sandbox):
    before = engine_state(engine)
    # The images of 2025.11.0 must come from the registry: drop the engine's copies first.
    for service in SERVICES:
        for ref in (
            f"{sandbox['repository_prefix']}/{service}:2025.11.0",
            f"{sandbox['repository_prefix']}/{service}@{sandbox['releases']['2025.11.0']['digests'][service]}",
        ):
            try:
                engine.images.remove(ref, force=True)
            except docker.errors.ImageNotFound:
                pass
    state = json.loads((Path(sandbox["root"]) / "state.json").read_text())
    registry_pid = state["pids"]["registry"]
    os.kill(registry_pid, signal.SIGTERM)
    try:
        result = upgrade(project, channel="edge")
    finally:
        subprocess.run([sys.executable, str(ROOT / "scripts" / "sandbox.py"), "up"], check=True, capture_output=True)
    assert result.rc != 0
    message = " ".join(result.failure_messages)
    assert "No running container was touched" in message, message
    assert engine_state(engine) == before
    assert journal_jobs(project)[-1]["status"] == "failed"


def test_bad_input_stops_before_any_change(project, engine, sandbox, tmp_path):
    before = engine_state(engine)
    unknown = upgrade(project, channel="nightly")
    assert unknown.rc != 0 and "edge|stable|airgap" in " ".join(unknown.failure_messages)

    missing = upgrade(project, channel="stable", release="1999.01.0")
    assert missing.rc != 0 and "1999.01.0" in " ".join(missing.failure_messages)

    template = tmp_path / "template.yaml"
    template.write_text(yaml.safe_dump({"services": {"authority": {}, "billing": {}}}))
    unknown_service = upgrade(project, channel="stable", compose_upgrade_template=str(template))
    assert unknown_service.rc != 0 and "billing" in " ".join(unknown_service.failure_messages)

    releases = tmp_path / "releases"
    releases.mkdir()
    manifest = yaml.safe_load(Path(sandbox["manifests"]["2025.10.0-stable"]).read_text())
    manifest["release"]["version"] = "2025.12.0"
    manifest["release"]["components"][0]["image"] = f"{sandbox['repository_prefix']}/authority:2025.10.0"
    (releases / "2025.12.0-stable.yaml").write_text(yaml.safe_dump(manifest))
    unpinned = upgrade(project, channel="stable", stellaops_releases_dir=str(releases))
    assert unpinned.rc != 0 and "authority" in " ".join(unpinned.failure_messages)

    assert engine_state(engine) == before
