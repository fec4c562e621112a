# SPDX-License-Identifier: GPL-3.0-or-later
"""compose_lock, deployment_journal, deploy_lock, health_check and compose_info run through ansible-playbook.

Each scenario runs the module in check mode, then for real, then again, and compares the files it
wrote. compose_lock reads the release manifest and the template where it runs (PyYAML), so it runs
on the controller (localhost) and writes there; Docker Compose on this machine validates its lock.
The other modules run where users run them: on fleet-1 of the sandbox fleet, a compose host reached
over SSH with only python3's standard library, the docker CLI and Compose. Their files are read back
on that host over SSH and its containers from its engine; health checks probe the sandbox registry
from there. The compose project of this module is ``it-blocks`` on ports 19101-19106.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.deploy_lock import controller_identity, pid_alive
from fleet import SERVICES, FleetHost

ROOT = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(__file__).parent / "playbooks" / "compose_building_blocks.yml"
FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATE = FIXTURES / "compose-building-blocks.template.yml"
UNKNOWN_TEMPLATE = FIXTURES / "compose-unknown-service.template.yml"
PATIENT_TEMPLATE = FIXTURES / "stellaops-patient-health.template.yml"
HOST = "fleet-1"
PROJECT = "it-blocks"
PORT_BASE = 19100  # services on 19101-19106

pytestmark = pytest.mark.sandbox


_RUNNER: list[Any] = []


@pytest.fixture(autouse=True)
def _runner(playbook_runner: Any) -> None:
    _RUNNER[:] = [playbook_runner]


def run(*steps: str, check: bool = False, diff: bool = False, **variables: Any) -> Any:
    """One run of the building-blocks playbook (a PlaybookResult from tests/integration/conftest.py)."""
    return _RUNNER[0](PLAYBOOK, extra_vars={"blocks_steps": list(steps), **variables}, check=check, diff=diff, timeout=180)


def task(result: Any, name: str) -> dict[str, Any]:
    assert result.rc == 0 or result.failure_messages, result.stderr[-2000:]
    return result.result(name)


@pytest.fixture
def manifests(sandbox: dict[str, Any]) -> dict[str, str]:
    return sandbox["manifests"]


def lock_vars(manifest: str, dest: Path, template: Path = TEMPLATE, **extra: Any) -> dict[str, Any]:
    return {"blocks_manifest": manifest, "blocks_template": str(template), "blocks_dest": str(dest), **extra}


def test_compose_lock_check_apply_idempotent(tmp_path: Path, manifests: dict[str, str], sandbox: dict[str, Any]) -> None:
    dest = tmp_path / "releases" / "2025.09.0-stable" / "docker-compose.lock.yml"
    variables = lock_vars(manifests["2025.09.0-stable"], dest, blocks_channel="stable", blocks_promotion_id="promo-1")

    checked = task(run("lock", check=True, diff=True, **variables), "Compose lock")
    assert checked["changed"] is True
    assert not dest.exists() and not dest.parent.exists()
    assert [c["service"] for c in checked["image_changes"]] == ["attestor", "authority", "notify", "scheduler", "signer", "web"]

    applied = task(run("lock", **variables), "Compose lock")
    assert applied["changed"] is True
    text = dest.read_text()
    # check mode predicted exactly what the real run wrote
    assert checked["diff"]["after"] == text
    assert applied["digest"] == checked["digest"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644
    digests = sandbox["releases"]["2025.09.0"]["digests"]
    prefix = sandbox["repository_prefix"]
    assert applied["services"]["web"]["image"] == f"{prefix}/scanner-web@{digests['scanner-web']}"
    assert applied["services"]["web"]["component"] == "scanner-web"
    assert {name: s["digest"] for name, s in applied["services"].items() if name != "web"} == {
        name: digests[name] for name in ("attestor", "authority", "notify", "scheduler", "signer")
    }
    assert applied["tampered"] is False
    assert applied["digests"] == {name: s["digest"] for name, s in applied["services"].items()}

    # Docker Compose itself accepts the lock and sees the pinned images and labels
    config = subprocess.run(
        ["docker", "compose", "-p", "blocks-lock-test", "-f", str(dest), "config", "--format", "json"],
        capture_output=True, text=True, check=False,
    )
    assert config.returncode == 0, config.stderr
    services = json.loads(config.stdout)["services"]
    assert services["authority"]["image"] == f"{prefix}/authority@{digests['authority']}"
    assert services["authority"]["labels"]["stella.release.id"] == "2025.09.0-stable"
    assert services["authority"]["labels"]["org.stellaops.team"] == "identity"
    assert services["signer"]["environment"]["SIGNER_DEBUG"] == "no"
    assert services["web"]["environment"]["STELLA_DIGEST"] == digests["scanner-web"]

    before = dest.stat().st_mtime_ns
    again = task(run("lock", **variables), "Compose lock")
    assert again["changed"] is False
    assert again["image_changes"] == []
    assert dest.read_text() == text and dest.stat().st_mtime_ns == before


def test_compose_lock_upgrade_lists_changed_images_and_check_writes_nothing(tmp_path: Path, manifests: dict[str, str]) -> None:
    dest = tmp_path / "docker-compose.lock.yml"
    task(run("lock", **lock_vars(manifests["2025.09.0-stable"], dest)), "Compose lock")
    old_text = dest.read_text()

    upgrade = lock_vars(manifests["2025.10.0-stable"], dest)
    checked = task(run("lock", check=True, diff=True, **upgrade), "Compose lock")
    assert checked["changed"] is True
    assert dest.read_text() == old_text
    assert checked["diff"]["before"] == old_text
    assert {c["service"] for c in checked["image_changes"]} == {"attestor", "authority", "notify", "scheduler", "signer", "web"}
    for change in checked["image_changes"]:
        assert change["before"] != change["after"] and "@sha256:" in change["before"] and "@sha256:" in change["after"]

    applied = task(run("lock", **upgrade), "Compose lock")
    assert applied["image_changes"] == checked["image_changes"]
    assert applied["release_id"] == "2025.10.0-stable"
    assert dest.read_text() == checked["diff"]["after"]


def test_compose_lock_reports_tampering_and_restores(tmp_path: Path, manifests: dict[str, str]) -> None:
    dest = tmp_path / "docker-compose.lock.yml"
    variables = lock_vars(manifests["2025.10.0-stable"], dest)
    task(run("lock", **variables), "Compose lock")
    good = dest.read_text()
    dest.write_text(good.replace("restart: unless-stopped", "restart: always", 1))

    checked = run("lock", check=True, **variables)
    result = task(checked, "Compose lock")
    assert result["tampered"] is True and result["changed"] is True
    assert any("no longer matches its own digest" in w for w in result.get("warnings", []))
    assert "restart: always" in dest.read_text()

    fixed = task(run("lock", **variables), "Compose lock")
    assert fixed["tampered"] is True and fixed["changed"] is True
    assert dest.read_text() == good


def test_compose_lock_mode_and_bad_input(tmp_path: Path, manifests: dict[str, str]) -> None:
    dest = tmp_path / "docker-compose.lock.yml"
    task(run("lock", **lock_vars(manifests["2025.10.0-stable"], dest, blocks_mode="0600")), "Compose lock")
    assert stat.S_IMODE(dest.stat().st_mode) == 0o600
    unknown = run("lock", **lock_vars(manifests["2025.10.0-stable"], tmp_path / "unknown.lock.yml", template=UNKNOWN_TEMPLATE))
    assert unknown.rc != 0
    message = task(unknown, "Compose lock")["msg"]
    assert message.startswith(f"{UNKNOWN_TEMPLATE}: service gateway has no component 'gateway' in release 2025.10.0-stable")
    assert not (tmp_path / "unknown.lock.yml").exists()


@pytest.fixture(scope="module")
def fleet1(sandbox: dict[str, Any]) -> FleetHost:
    """fleet-1 of the sandbox fleet: SSH on 127.0.0.1, the machine's Docker engine."""
    [host] = [h for h in sandbox["fleet"]["hosts"] if h["name"] == HOST]
    return FleetHost(name=HOST, ssh_port=host["ssh_port"], docker_host=host["docker_host"], key_file=host["ssh_private_key_file"], port_base=PORT_BASE)


@pytest.fixture
def remote_dir(fleet1: FleetHost) -> Iterator[str]:
    """A directory of this test on fleet-1's own filesystem (not created; removed afterwards)."""
    path = f"/srv/{PROJECT}/{uuid.uuid4().hex[:12]}"
    yield path
    fleet1.ssh(f"rm -rf {shlex.quote(path)}", check=False)


def remote_json(host: FleetHost, path: str) -> Any:
    text = host.read_file(path)
    return None if text is None else json.loads(text)


def remote_exists(host: FleetHost, path: str) -> bool:
    return host.ssh(f"test -e {shlex.quote(path)}", check=False).returncode == 0


def test_journal_check_apply_idempotent(fleet1: FleetHost, remote_dir: str) -> None:
    journal = f"{remote_dir}/journal"
    base = {"blocks_journal": journal, "blocks_environment": "sandbox"}
    start = {
        **base,
        "blocks_release_id": "2025.10.0-stable",
        "blocks_release": "2025.10.0",
        "blocks_channel": "stable",
        "blocks_previous_release_id": "2025.09.0-stable",
        "blocks_digests": {"authority": "sha256:" + "c" * 64},
    }
    checked = task(run("journal_start", check=True, **start), "Journal start")
    assert checked["changed"] is True and checked["job"]["status"] == "pending"
    assert not remote_exists(fleet1, journal)

    started = task(run("journal_start", **start), "Journal start")
    job_id = started["job"]["id"]
    job_file = f"{journal}/jobs/{job_id}.json"
    # the job is a file on fleet-1, not on the controller
    assert remote_json(fleet1, job_file) == started["job"]
    assert not Path(job_file).exists()
    assert started["job"]["host"] == HOST and started["job"]["previous_release_id"] == "2025.09.0-stable"
    assert fleet1.journal(remote_dir) == [started["job"]]

    move = {**base, "blocks_job_id": job_id}
    checked = task(run("journal_transition", check=True, blocks_statuses=["preparing"], **move), "Journal transition")
    assert checked["changed"] is True and checked["results"][0]["job"]["status"] == "preparing"
    assert remote_json(fleet1, job_file)["status"] == "pending"

    # the same transition twice: the second one is no change; then the next run asks what happened
    moved = run("journal_transition", "journal_query", blocks_statuses=["preparing", "preparing"], **move)
    items = task(moved, "Journal transition")["results"]
    assert [item["changed"] for item in items] == [True, False]
    assert remote_json(fleet1, job_file)["status"] == "preparing"
    query = task(moved, "Journal query")
    assert [j["id"] for j in query["unfinished"]] == [job_id]
    assert query["last_completed"] is None

    illegal = run("journal_transition", blocks_statuses=["completed"], **move)
    assert illegal.rc != 0
    assert "cannot go from 'preparing' to 'completed'" in task(illegal, "Journal transition")["results"][0]["msg"]
    assert remote_json(fleet1, job_file)["status"] == "preparing"

    done = run(
        "journal_transition", "journal_query", blocks_statuses=["running", "completing", "completed"],
        blocks_exclude_release_id="2025.10.0-stable", blocks_message="upgrade verified", **move,
    )
    query = task(done, "Journal query")
    assert query["unfinished"] == [] and query["last_completed"]["id"] == job_id
    assert query["last_completed"]["ended_at"] is not None
    assert query["last_completed"]["message"] == "upgrade verified"
    assert [h["status"] for h in query["last_completed"]["history"]] == ["pending", "preparing", "running", "completing", "completed"]
    assert task(done, "Journal query excluding a release")["last_completed"] is None
    assert remote_json(fleet1, job_file) == query["last_completed"]


def dead_pid() -> int:
    """A pid of this machine whose process has exited (and was reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    assert not pid_alive(proc.pid)
    return proc.pid


def write_lock(host: FleetHost, path: str, record: dict[str, Any]) -> str:
    """A lock file on the host, as a run of ``record['controller']`` would have left it."""
    text = json.dumps(record, sort_keys=True) + "\n"
    host.ssh(f"mkdir -p {shlex.quote(os.path.dirname(path))} && printf %s {shlex.quote(text)} > {shlex.quote(path)}")
    return text


def test_environment_lock_check_take_again_release(fleet1: FleetHost, remote_dir: str) -> None:
    lock_path = f"{remote_dir}/locks/sandbox.lock"
    take = {"blocks_lock_path": lock_path, "blocks_run_id": "run-a", "blocks_owner": "alice", "blocks_release_id": "2025.10.0-stable"}

    checked = task(run("env_lock", check=True, **take), "Environment lock")
    assert checked["changed"] is True and checked["acquired"] is True
    assert not remote_exists(fleet1, lock_path)

    taken = task(run("env_lock", **take), "Environment lock")
    assert taken["changed"] is True and taken["acquired"] is True
    record = remote_json(fleet1, lock_path)
    assert record == taken["lock"]
    # the lock names this controller and the ansible-playbook process of the run, which has exited by now
    assert record["controller"] == controller_identity() and record["run_id"] == "run-a" and record["owner"] == "alice"
    assert record["release_id"] == "2025.10.0-stable" and record["environment"] == "sandbox"
    assert isinstance(record["pid"], int) and record["pid"] != os.getpid() and not pid_alive(record["pid"])

    again = task(run("env_lock", **take), "Environment lock")
    assert again["changed"] is False and again["acquired"] is True
    assert remote_json(fleet1, lock_path) == record

    release = {"blocks_lock_path": lock_path, "blocks_lock_state": "absent", "blocks_run_id": "run-a"}
    not_yet = task(run("env_lock", check=True, **release), "Environment lock")
    assert not_yet["changed"] is True and remote_json(fleet1, lock_path) == record
    released = task(run("env_lock", **release), "Environment lock")
    assert released["changed"] is True and released["lock"] == record
    assert not remote_exists(fleet1, lock_path)
    assert task(run("env_lock", **release), "Environment lock")["changed"] is False


def test_environment_lock_two_runs_at_once(fleet1: FleetHost, remote_dir: str) -> None:
    lock_path = f"{remote_dir}/locks/sandbox.lock"
    let_go = f"{remote_dir}/let-go"  # the run that takes the lock holds it until this file exists on fleet-1
    results: dict[str, Any] = {}

    def contender(run_id: str) -> None:
        results[run_id] = run(
            "env_lock", blocks_lock_path=lock_path, blocks_run_id=run_id, blocks_owner=run_id,
            blocks_release_id="2025.10.0-stable", blocks_hold_until=let_go,
        )

    threads = [threading.Thread(target=contender, args=(f"run-{i}",)) for i in (1, 2)]
    try:
        for thread in threads:
            thread.start()
        # the run that lost is refused at once; the other one still holds the lock
        deadline = time.monotonic() + 600
        while not results and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(results) == 1, results
        holder = remote_json(fleet1, lock_path)
        assert holder is not None and holder["run_id"] not in results
        # while it holds the lock, its pid is its ansible-playbook process on this machine
        cmdline = Path(f"/proc/{holder['pid']}/cmdline").read_bytes().split(b"\0")
        assert any(part.endswith(b"ansible-playbook") for part in cmdline), cmdline
        assert str(PLAYBOOK).encode() in cmdline and holder["run_id"].encode() in b" ".join(cmdline)
    finally:
        fleet1.ssh(f"mkdir -p {shlex.quote(remote_dir)} && touch {shlex.quote(let_go)}", check=False)
        for thread in threads:
            thread.join(timeout=600)

    winners = [run_id for run_id, result in results.items() if result.rc == 0]
    losers = [run_id for run_id, result in results.items() if result.rc != 0]
    assert len(winners) == 1 and len(losers) == 1, {k: (v.rc, v.failure_messages) for k, v in results.items()}
    [winner], [loser] = winners, losers
    assert holder["run_id"] == winner
    refusal = task(results[loser], "Environment lock")
    assert refusal["msg"].startswith(
        f"environment sandbox is locked by {winner}, run {winner} from controller {controller_identity()} (pid {holder['pid']}) since "
    )
    assert refusal["msg"].endswith("for 2025.10.0-stable; if that run is dead, clear it with state=absent force=true.")
    assert refusal["stale"] is False and refusal["lock"] == holder

    # the winner's ansible-playbook has exited, so its lock is now stale: refused, saying so, and left in place
    assert remote_json(fleet1, lock_path) == holder and not pid_alive(holder["pid"])
    refused = run("env_lock", blocks_lock_path=lock_path, blocks_run_id="run-3")
    assert refused.rc != 0
    stale = task(refused, "Environment lock")
    assert stale["stale"] is True and "stale" in stale["msg"] and f"process {holder['pid']}" in stale["msg"]
    assert remote_json(fleet1, lock_path) == holder

    broken = task(run("env_lock", blocks_lock_path=lock_path, blocks_run_id="run-3", blocks_break_stale=True), "Environment lock")
    assert broken["changed"] is True and broken["acquired"] is True and broken["broken_lock"] == holder
    assert remote_json(fleet1, lock_path)["run_id"] == "run-3"

    cleared = task(run("env_lock", blocks_lock_path=lock_path, blocks_lock_state="absent", blocks_run_id="run-3"), "Environment lock")
    assert cleared["changed"] is True and not remote_exists(fleet1, lock_path)


def test_environment_lock_stale_only_for_this_controller(fleet1: FleetHost, remote_dir: str) -> None:
    """A lock of this controller whose process is gone is broken with break_stale; one of another controller never is."""
    lock_path = f"{remote_dir}/locks/sandbox.lock"
    gone = dead_pid()
    record = {"owner": "bob", "controller": controller_identity(), "pid": gone, "run_id": "dead-run",
              "since": "2025-11-22T04:20:00Z", "release_id": "2025.09.0-stable", "environment": "sandbox"}
    text = write_lock(fleet1, lock_path, record)

    refused = run("env_lock", blocks_lock_path=lock_path, blocks_run_id="run-new")
    assert refused.rc != 0
    result = task(refused, "Environment lock")
    assert result["stale"] is True and result["lock"] == record
    assert "stale" in result["msg"] and f"process {gone}" in result["msg"] and "break_stale=true" in result["msg"]
    assert fleet1.read_file(lock_path) == text

    predicted = task(run("env_lock", check=True, blocks_lock_path=lock_path, blocks_run_id="run-new", blocks_break_stale=True), "Environment lock")
    assert predicted["changed"] is True and predicted["broken_lock"] == record
    assert fleet1.read_file(lock_path) == text

    taken = task(run("env_lock", blocks_lock_path=lock_path, blocks_run_id="run-new", blocks_break_stale=True), "Environment lock")
    assert taken["changed"] is True and taken["acquired"] is True and taken["broken_lock"] == record
    now = remote_json(fleet1, lock_path)
    assert now["run_id"] == "run-new" and now["controller"] == controller_identity() and now["pid"] not in (gone, None)

    # the same lock, but taken from another controller: its pid means nothing here
    other = {**record, "controller": f"other-controller/{uuid.uuid4()}"}
    text = write_lock(fleet1, lock_path, other)
    for break_stale in (False, True):
        refused = run("env_lock", blocks_lock_path=lock_path, blocks_run_id="run-new", blocks_break_stale=break_stale)
        assert refused.rc != 0
        result = task(refused, "Environment lock")
        assert result["stale"] is False and result["lock"] == other and "stale" not in result["msg"]
        assert f"from controller {other['controller']} (pid {gone})" in result["msg"]
        assert fleet1.read_file(lock_path) == text

    # only its own run releases it, or force
    not_owner = run("env_lock", blocks_lock_path=lock_path, blocks_lock_state="absent", blocks_run_id="run-new")
    assert not_owner.rc != 0 and "only that run releases it, or clear it with force=true" in task(not_owner, "Environment lock")["msg"]
    assert fleet1.read_file(lock_path) == text
    forced = task(run("env_lock", blocks_lock_path=lock_path, blocks_lock_state="absent", blocks_force=True), "Environment lock")
    assert forced["changed"] is True and forced["lock"] == other
    assert not remote_exists(fleet1, lock_path)


def test_health_check_from_the_host(sandbox: dict[str, Any], fleet1: FleetHost) -> None:
    host, port = sandbox["registry"].split(":")
    assert host == "127.0.0.1"
    docker = fleet1.ssh("command -v docker").stdout.strip()
    assert docker.startswith("/")
    # generous timeouts: the machine is shared, and the docker CLI alone can take 10 s under load
    checks = [
        {"name": "registry api", "type": "http", "url": f"http://{host}:{port}/v2/", "expected_status": 200, "timeout": 30},
        {"name": "registry port", "type": "tcp", "host": host, "port": int(port), "timeout": 30},
        {"name": "docker compose", "type": "command", "command": [docker, "compose", "version"], "timeout": 60},
    ]
    checked = task(run("health", check=True, blocks_checks=checks), "Health check")
    assert checked["healthy"] is True and checked["changed"] is False
    assert [r["attempts"] for r in checked["results"]] == [1, 1, 1]

    missing = [*checks, {"name": "nothing here", "type": "http", "url": f"http://{host}:{port}/no-such-path"}]
    failed = run("health", blocks_checks=missing, blocks_retries=2)
    assert failed.rc != 0
    message = task(failed, "Health check")["msg"]
    assert message.splitlines() == [
        "1 of 4 health checks failed:",
        f"- nothing here: GET http://{host}:{port}/no-such-path returned status 404, expected 200 (after 2 attempts)",
    ]
    # a program that exists on the controller but not on the host fails there
    absent = run("health", blocks_checks=[{"name": "python venv", "type": "command", "command": [sys.executable, "--version"]}], blocks_retries=1)
    assert absent.rc != 0 and f"- python venv: command {sys.executable!r} not found" in task(absent, "Health check")["msg"]


@pytest.fixture
def project(fleet1: FleetHost) -> Iterator[str]:
    """The compose project it-blocks on fleet-1, removed before and after (containers and files)."""
    project_dir = f"/srv/{PROJECT}/project"
    fleet1.remove_project(PROJECT)
    fleet1.ssh(f"rm -rf {project_dir}", check=False)
    yield project_dir
    fleet1.remove_project(PROJECT)
    fleet1.ssh(f"rm -rf {project_dir}", check=False)


def test_compose_info_reads_the_host_engine_and_deployments(fleet1: FleetHost, project: str, manifests: dict[str, str]) -> None:
    info = {"blocks_project": PROJECT, "blocks_project_dir": project}
    empty = task(run("info", **info), "Compose info")
    assert empty["changed"] is False and empty["running"] is False and empty["services"] == {}
    assert empty["deployment_id"] is None and empty["current"] is None and empty["deployments"] == []

    settings = {f"STELLAOPS_{name.upper().replace('-', '_')}_PORT": str(PORT_BASE + 1 + i) for i, name in enumerate(SERVICES)}
    deployed = run("deploy", blocks_manifest=manifests["2025.09.0-stable"], blocks_template=str(PATIENT_TEMPLATE),
                   blocks_settings={"STELLAOPS_ENVIRONMENT": PROJECT, **settings}, **info)
    assert deployed.rc == 0, deployed.failure_messages or deployed.stdout[-3000:]
    deployment_id = task(deployed, "Compose deploy")["deployment"]["deployment_id"]
    assert fleet1.health(PORT_BASE + 1) == {"status": "ok", "release": "2025.09.0", "component": "authority"}
    engine = fleet1.containers(PROJECT)
    assert sorted(engine) == sorted(SERVICES)

    checked = task(run("info", check=True, blocks_deployment_id=deployment_id, blocks_verify=True, **info), "Compose info")
    seen = task(run("info", blocks_deployment_id=deployment_id, blocks_verify=True, **info), "Compose info")
    for result in (checked, seen):
        assert result["changed"] is False and result["running"] is True
        assert result["release_id"] == "2025.09.0-stable" and result["mixed_releases"] is False and result["unlabelled"] is False
        # what the engine of fleet-1 runs, container by container (short container ids, as docker ps shows them)
        assert {s: (v["container_id"], v["config_hash"], v["state"]) for s, v in result["services"].items()} == {
            s: (c["id"][:12], c["config_hash"], "running") for s, c in engine.items()
        }
        assert result["deployment_id"] == deployment_id and result["current"] == deployment_id
        assert [(d["deployment_id"], d["release_id"], d["release"], d["channel"]) for d in result["deployments"]] == [
            (deployment_id, "2025.09.0-stable", "2025.09.0", "stable")
        ]
        assert result["verified"] is True and result["problems"] == [], result["problems"]
    # the kept deployment on the host records the hashes the engine runs
    recorded = remote_json(fleet1, f"{project}/deployments/{deployment_id}/deployment.json")
    assert recorded["config_hashes"] == {s: c["config_hash"] for s, c in engine.items()}
    assert fleet1.ssh(f"readlink {project}/current").stdout.strip() == f"deployments/{deployment_id}"

    # a service stopped behind the deployment's back: verification fails naming it, nothing is changed
    fleet1.docker("stop", engine["authority"]["id"])
    failed = run("info", blocks_deployment_id=deployment_id, blocks_verify=True, **info)
    assert failed.rc != 0
    result = task(failed, "Compose info")
    assert result["problems"] == [{"service": "authority", "reason": "not_running", "expected": "running", "found": "exited"}]
    assert result["msg"] == f"Project {PROJECT} does not run its deployment: authority: not_running (expected running, found exited)."
    assert fleet1.containers(PROJECT)["authority"]["state"] == "exited" and fleet1.health(PORT_BASE + 1) is None


def test_modules_have_docs() -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(Path(__file__).resolve().parents[2] / "ansible.cfg")}
    names = [f"stellaops.deploy.{name}" for name in ("compose_lock", "deployment_journal", "deploy_lock", "health_check", "compose_info")]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", "module", "--json", *names],
        capture_output=True, text=True, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    for name in names:
        assert docs[name]["doc"]["attributes"]["check_mode"]["support"] == "full"
