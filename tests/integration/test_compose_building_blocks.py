# SPDX-License-Identifier: GPL-3.0-or-later
"""compose_lock, deployment_journal, deploy_lock and health_check run through ansible-playbook.

Each scenario runs the module in check mode, then for real, then again, and compares the files on
disk, using the sandbox's release manifests, its Docker Compose v2 (to validate the lock) and its
registry on 127.0.0.1 (as a health-check target).
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

PLAYBOOK = Path(__file__).parent / "playbooks" / "compose_building_blocks.yml"
FIXTURES = Path(__file__).parent / "fixtures"
TEMPLATE = FIXTURES / "compose-building-blocks.template.yml"
UNKNOWN_TEMPLATE = FIXTURES / "compose-unknown-service.template.yml"

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


def test_journal_check_apply_idempotent(tmp_path: Path) -> None:
    journal = tmp_path / "journal"
    base = {"blocks_journal": str(journal), "blocks_environment": "sandbox"}
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
    assert not journal.exists()

    started = task(run("journal_start", **start), "Journal start")
    job_id = started["job"]["id"]
    job_file = journal / "jobs" / f"{job_id}.json"
    assert json.loads(job_file.read_text()) == started["job"]
    assert started["job"]["host"] == "sandbox" and started["job"]["previous_release_id"] == "2025.09.0-stable"

    move = {**base, "blocks_job_id": job_id}
    checked = task(run("journal_transition", check=True, blocks_statuses=["preparing"], **move), "Journal transition")
    assert checked["changed"] is True and checked["results"][0]["job"]["status"] == "preparing"
    assert json.loads(job_file.read_text())["status"] == "pending"

    # the same transition twice: the second one is no change; then the next run asks what happened
    moved = run("journal_transition", "journal_query", blocks_statuses=["preparing", "preparing"], **move)
    items = task(moved, "Journal transition")["results"]
    assert [item["changed"] for item in items] == [True, False]
    assert json.loads(job_file.read_text())["status"] == "preparing"
    query = task(moved, "Journal query")
    assert [j["id"] for j in query["unfinished"]] == [job_id]
    assert query["last_completed"] is None

    illegal = run("journal_transition", blocks_statuses=["completed"], **move)
    assert illegal.rc != 0
    assert "cannot go from 'preparing' to 'completed'" in task(illegal, "Journal transition")["results"][0]["msg"]
    assert json.loads(job_file.read_text())["status"] == "preparing"

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


def test_environment_lock_two_runs_at_once(tmp_path: Path) -> None:
    lock_path = tmp_path / "locks" / "sandbox.lock"
    results: dict[str, Any] = {}

    def contender(run_id: str) -> None:
        results[run_id] = run(
            "env_lock", blocks_lock_path=str(lock_path), blocks_run_id=run_id, blocks_owner=run_id,
            blocks_release_id="2025.10.0-stable", blocks_hold_seconds=4,
        )

    threads = [threading.Thread(target=contender, args=(f"run-{i}",)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    winners = [run_id for run_id, result in results.items() if result.rc == 0]
    losers = [run_id for run_id, result in results.items() if result.rc != 0]
    assert len(winners) == 1 and len(losers) == 1, {k: (v.rc, v.failure_messages) for k, v in results.items()}
    message = task(results[losers[0]], "Environment lock")["msg"]
    assert message.startswith(f"environment sandbox is locked by {winners[0]} on ")
    assert "for 2025.10.0-stable; if that run is dead, clear it with state=absent force=true" in message

    # the winner's ansible-playbook has exited, so its lock is now stale
    holder = json.loads(lock_path.read_text())
    assert holder["run_id"] == winners[0] and isinstance(holder["pid"], int)
    refused = run("env_lock", blocks_lock_path=str(lock_path), blocks_run_id="run-3")
    assert refused.rc != 0 and task(refused, "Environment lock")["stale"] is True

    cleared = task(run("env_lock", blocks_lock_path=str(lock_path), blocks_lock_state="absent", blocks_force=True), "Environment lock")
    assert cleared["changed"] is True and not lock_path.exists()


def test_health_check_against_the_sandbox_registry(sandbox: dict[str, Any]) -> None:
    host, port = sandbox["registry"].split(":")
    assert host == "127.0.0.1"
    checks = [
        {"name": "registry api", "type": "http", "url": f"http://{host}:{port}/v2/", "expected_status": 200},
        {"name": "registry port", "type": "tcp", "host": host, "port": int(port)},
        {"name": "docker compose", "type": "command", "command": [shutil.which("docker") or "docker", "compose", "version"]},
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


def test_modules_have_docs() -> None:
    env = {**os.environ, "ANSIBLE_CONFIG": str(Path(__file__).resolve().parents[2] / "ansible.cfg")}
    names = [f"stellaops.deploy.{name}" for name in ("compose_lock", "deployment_journal", "deploy_lock", "health_check")]
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-t", "module", "--json", *names],
        capture_output=True, text=True, env=env, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    docs = json.loads(proc.stdout)
    for name in names:
        assert docs[name]["doc"]["attributes"]["check_mode"]["support"] == "full"
