# SPDX-License-Identifier: GPL-3.0-or-later
"""Faults of the compose profile on the sandbox fleet, over real SSH from the installed collection.

A broken release rolls back to the bookmark on every host (or is left in place for drills, or is
removed when nothing ran before); containers that match no kept deployment leave no bookmark and
are never removed wholesale; an unreachable registry fails before any running container is
touched; a second run is refused while the first holds the environment lock; a killed run leaves
a stale lock that only ``break_stale`` clears; bad input fails with one sentence and changes
nothing. Every outcome is read from the engines (container ids, config hashes, release labels),
the hosts' files (deployments, ``current``, journal, lock) and the services' health answers.

fleet-1 (the machine's engine) and fleet-2 (an engine of its own) take the fleet-wide scenarios;
fleet-3 alone takes those about one run against another (lock, kill, registry). Each test brings
its hosts to the state it starts from, so the tests do not depend on each other.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from fleet import SERVICES, Fleet, FleetHost, project_fleet, sandbox_hosts

pytestmark = pytest.mark.sandbox

PROJECT = "it-faults"
PORT_OFFSET = 40
FAULTY = "2025.11.1-edge"
ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
PATIENT_TEMPLATE = FIXTURES / "stellaops-patient-health.template.yml"


def make_fleet(name: str, hosts: list[FleetHost], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Fleet:
    return Fleet(
        workdir=tmp_path_factory.mktemp(name),
        collections=installed_collection,
        runner=playbook_runner,
        hosts=hosts,
        project=PROJECT,
        port_offset=PORT_OFFSET,
        extra_vars={
            "compose_upgrade_backup": False,
            "compose_upgrade_evidence_gate": False,
            # The machine is shared and loaded: a healthcheck and health checks that a healthy release
            # meets there (the faulty release's /health answers 404 however long it is given).
            "compose_upgrade_template": str(PATIENT_TEMPLATE),
        },
        compose={"wait_timeout": 240, "health_retries": 30, "health_interval": 2},
    )


@pytest.fixture(scope="module")
def pair(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """fleet-1 and fleet-2 (ports 18141.. and 18241..)."""
    hosts = sandbox_hosts(sandbox, PORT_OFFSET)[:2]
    with project_fleet(make_fleet("faults-pair", hosts, installed_collection, playbook_runner, tmp_path_factory)) as fleet:
        yield fleet


@pytest.fixture(scope="module")
def solo(sandbox: dict[str, Any], installed_collection: Path, playbook_runner, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """fleet-3 alone (ports 18341..)."""
    hosts = sandbox_hosts(sandbox, PORT_OFFSET)[2:3]
    with project_fleet(make_fleet("faults-solo", hosts, installed_collection, playbook_runner, tmp_path_factory)) as fleet:
        yield fleet


# ---------------------------------------------------------------------------------------- reading


def container_ids(host: FleetHost) -> list[str]:
    """Every container of the project on the host's engine, by the project label alone."""
    return sorted(host.docker("ps", "-aq", "--no-trunc", "--filter", f"label=com.docker.compose.project={PROJECT}").split())


def releases(fleet: Fleet, host: FleetHost) -> dict[str, Optional[str]]:
    """Service -> the release its /health reports (None when it does not answer)."""
    return {service: (host.health(fleet.port(host, service)) or {}).get("release") for service in SERVICES}


def current(fleet: Fleet, host: FleetHost) -> Optional[str]:
    link = host.ssh(f"readlink {fleet.project_dir}/current", check=False)
    return link.stdout.strip().rsplit("/", 1)[-1] if link.returncode == 0 else None


def lock_record(fleet: Fleet, host: FleetHost) -> Optional[dict[str, Any]]:
    text = host.read_file(f"{fleet.project_dir}/deploy.lock")
    return json.loads(text) if text is not None else None


def deployment_hashes(fleet: Fleet, host: FleetHost, deployment_id: str) -> dict[str, str]:
    text = host.read_file(f"{fleet.project_dir}/deployments/{deployment_id}/deployment.json")
    assert text is not None, f"{host.name} keeps no deployment {deployment_id}"
    return json.loads(text)["config_hashes"]


def state(fleet: Fleet) -> dict[str, Any]:
    """What a run must not change: containers (id, hash, state), ``current``, the journal, the lock."""
    return {
        host.name: {
            "containers": {s: (c["id"], c["config_hash"], c["state"]) for s, c in host.containers(PROJECT).items()},
            "current": current(fleet, host),
            "journal": [(job["id"], job["status"]) for job in host.journal(fleet.project_dir)],
            "lock": lock_record(fleet, host),
        }
        for host in fleet.hosts
    }


def job_of(fleet: Fleet, host: FleetHost, release_id: str) -> dict[str, Any]:
    jobs = [job for job in host.journal(fleet.project_dir) if job["release_id"] == release_id]
    assert jobs, f"{host.name}: no job for {release_id} in the journal"
    return jobs[-1]


def outcome(result: Any, host: FleetHost) -> str:
    """The message the rescue fails with on ``host``."""
    return str(result.result("Fail with what failed and what the fleet runs now", host.name)["msg"])


def on_host(host: FleetHost, script: str, timeout: float) -> bool:
    """Run a Python script on the host (over SSH); True when it exits 0."""
    return host.ssh(f"python3 -c {shlex.quote(script)}", check=False, timeout=timeout + 30).returncode == 0


def compose_up_script(project: str, *, running: bool, timeout: float) -> str:
    """A script that waits until a ``docker compose ... up`` of ``project`` runs on the host (or, not running, none does)."""
    return f"""
import os, sys, time
def up():
    for pid in os.listdir('/proc'):
        try:
            argv = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')
        except OSError:
            continue
        if b'compose' in argv and b'up' in argv and {project.encode()!r} in argv:
            return True
    return False
deadline = time.time() + {timeout}
while time.time() < deadline:
    if up() is {running}:
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
"""


def kill_module_script(project: str) -> str:
    """A script that kills (SIGKILL) the compose_deploy module process that runs ``docker compose ... up`` of ``project``.

    The module is the nearest Python ancestor of the compose process (``timeout`` is between them; with pipelining
    its command line is only the interpreter): a process this test's run started, found by its pid. Killing the
    controller alone would not interrupt it: the module finishes its transaction on the host.
    """
    return f"""
import os, signal, sys
def argv(pid):
    return open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')
def parent(pid):
    return int(open('/proc/%s/stat' % pid).read().rsplit(')', 1)[1].split()[1])
for pid in os.listdir('/proc'):
    try:
        found = b'compose' in argv(pid) and b'up' in argv(pid) and {project.encode()!r} in argv(pid)
    except OSError:
        continue
    while found and int(pid) > 1:
        pid = parent(pid)
        if os.path.basename(argv(pid)[0]).startswith(b'python'):
            os.kill(pid, signal.SIGKILL)
            sys.exit(0)
sys.exit(1)
"""


def wait_for_file(host: FleetHost, path: str, timeout: float) -> bool:
    script = f"""
import os, sys, time
deadline = time.time() + {timeout}
while time.time() < deadline and not os.path.exists({path!r}):
    time.sleep(0.05)
sys.exit(0 if os.path.exists({path!r}) else 1)
"""
    return on_host(host, script, timeout)


def runs(fleet: Fleet, host: FleetHost, version: str) -> bool:
    """The host runs the stable release ``version`` exactly: its six services, nothing else, each answering it."""
    found = host.containers(PROJECT)
    return (
        len(container_ids(host)) == len(SERVICES)
        and sorted(found) == sorted(SERVICES)
        and all(c["release_id"] == f"{version}-stable" and c["state"] == "running" for c in found.values())
        and set(releases(fleet, host).values()) == {version}
        and lock_record(fleet, host) is None
    )


def ensure_running(fleet: Fleet, version: str) -> None:
    """Bring every host of ``fleet`` to the stable release ``version``, unless it runs it already."""
    if all(runs(fleet, host, version) for host in fleet.hosts):
        return
    result = fleet.run("upgrade", channel="stable", release=version)
    assert result.rc == 0, result.failure_messages or result.stderr[-3000:]
    assert all(runs(fleet, host, version) for host in fleet.hosts)


def assert_one_sentence(result: Any, *needles: str) -> None:
    """The run failed with one message (one line, the same on every host that failed) and no traceback."""
    assert result.rc != 0
    messages = sorted(set(result.failure_messages))
    assert len(messages) == 1, messages
    message = messages[0]
    assert "\n" not in message.strip() and message.strip().endswith("."), message
    for needle in needles:
        assert needle in message, (needle, message)
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr


# ---------------------------------------------------------------------------------------- the fleet-wide faults


def test_broken_release_rolls_back_to_the_bookmark_on_every_host(pair: Fleet, sandbox: dict[str, Any]) -> None:
    """The faulty edge release fails its healthchecks; every host runs its bookmark again, proven."""
    ensure_running(pair, "2025.09.0")
    bookmarks = {host.name: current(pair, host) for host in pair.hosts}
    assert all(b and b.startswith("2025.09.0-stable+") for b in bookmarks.values()), bookmarks

    broken = pair.run("upgrade", channel="edge", stellaops_releases_dir=sandbox["faulty_releases_dir"])
    assert broken.rc != 0
    for host in pair.hosts:
        bookmark = bookmarks[host.name]
        message = outcome(broken, host)
        assert f"to {FAULTY} failed at Deploy the release and prove it" in message, message
        # Its containers fail their healthcheck (the /health endpoint answers 404): docker compose up --wait says so.
        assert "docker compose up failed" in message and "is unhealthy" in message, message
        assert f"Rolled back: {bookmark} runs again" in message, message
        # The bookmark runs again: Compose's config hashes are the ones recorded when it ran.
        running = host.containers(PROJECT)
        assert {s: c["config_hash"] for s, c in running.items()} == deployment_hashes(pair, host, bookmark)
        assert {c["release_id"] for c in running.values()} == {"2025.09.0-stable"}
        assert len(container_ids(host)) == len(SERVICES)
        assert releases(pair, host) == dict.fromkeys(SERVICES, "2025.09.0")
        job = job_of(pair, host, FAULTY)
        assert (job["status"], job["previous_deployment_id"]) == ("rolled_back", bookmark)
        assert [step["status"] for step in job["history"]][-2:] == ["rolling_back", "rolled_back"]
        assert current(pair, host) == bookmark
        assert lock_record(pair, host) is None


def test_bad_input_fails_with_one_sentence_and_changes_nothing(pair: Fleet, sandbox: dict[str, Any], tmp_path: Path) -> None:
    """Unknown channel, missing version, unknown service in the template, unpinned image: refused before any change."""
    ensure_running(pair, "2025.09.0")
    before = state(pair)

    unknown_channel = pair.run("upgrade", channel="nightly")
    assert_one_sentence(unknown_channel, "edge|stable|airgap", "nightly")

    missing = pair.run("upgrade", channel="stable", release="1999.01.0")
    assert_one_sentence(missing, "1999.01.0")

    template = FIXTURES / "compose-unknown-service.template.yml"
    unknown_service = pair.run("upgrade", channel="stable", release="2025.10.0", compose_upgrade_template=str(template))
    assert_one_sentence(unknown_service, "gateway")
    assert {name for name, r in unknown_service.tasks() if r.get("failed")} == {"stellaops.deploy.compose_upgrade : Plan the deployment with Compose"}

    releases_dir = tmp_path / "releases"
    releases_dir.mkdir()
    manifest = yaml.safe_load(Path(sandbox["manifests"]["2025.10.0-stable"]).read_text())
    manifest["release"]["version"] = "2025.12.0"
    for component in manifest["release"]["components"]:
        if component["name"] == "authority":
            component["image"] = f"{sandbox['repository_prefix']}/authority:2025.10.0"
    (releases_dir / "2025.12.0-stable.yaml").write_text(yaml.safe_dump(manifest))
    unpinned = pair.run("upgrade", channel="stable", stellaops_releases_dir=str(releases_dir))
    assert_one_sentence(unpinned, "authority", "2025.12.0")

    assert state(pair) == before
    for host in pair.hosts:
        assert releases(pair, host) == dict.fromkeys(SERVICES, "2025.09.0")


def test_auto_rollback_off_leaves_the_failed_release_in_place(pair: Fleet, sandbox: dict[str, Any]) -> None:
    """For drills: the failed release keeps running on every host and its job is ``failed``."""
    ensure_running(pair, "2025.09.0")
    drill = pair.run("upgrade", channel="edge", stellaops_releases_dir=sandbox["faulty_releases_dir"], compose_upgrade_auto_rollback=False)
    assert drill.rc != 0
    for host in pair.hosts:
        message = outcome(drill, host)
        assert f"Automatic rollback is off (on_failure=leave): {FAULTY}+" in message and message.endswith("is left in place."), message
        running = host.containers(PROJECT)
        assert {c["release_id"] for c in running.values()} == {FAULTY} and sorted(running) == sorted(SERVICES)
        assert all(c["state"] == "running" for c in running.values())
        # The faulty release answers 404 on /health.
        assert releases(pair, host) == dict.fromkeys(SERVICES)
        assert current(pair, host).startswith("2025.09.0-stable+"), "current moved to a release that was never proven"
        job = job_of(pair, host, FAULTY)
        assert job["status"] == "failed" and "is unhealthy" in job["message"], job
        assert lock_record(pair, host) is None


def test_containers_matching_no_deployment_leave_no_bookmark_and_are_not_removed(pair: Fleet, sandbox: dict[str, Any]) -> None:
    """A container started by hand in the project: no bookmark to return to; it survives the failed upgrade.

    fleet-1 runs 2025.09.0 and the hand-started container (mixed release labels); fleet-2 runs only
    the hand-started container (missing release label, no kept deployment).
    """
    ensure_running(pair, "2025.09.0")
    first, second = pair.hosts
    second.remove_project(PROJECT)
    second.ssh(f"rm -rf {pair.project_dir}")
    image = f"{sandbox['repository_prefix']}/authority@{sandbox['releases']['2025.09.0']['digests']['authority']}"
    hand = {}
    for host in pair.hosts:
        hand[host.name] = host.docker(
            "run", "--detach", "--name", f"{PROJECT}-by-hand", "--label", f"com.docker.compose.project={PROJECT}",
            "--label", "com.docker.compose.service=authority", image,
        ).strip()  # fmt: skip
    try:
        before = {host.name: container_ids(host) for host in pair.hosts}
        assert len(before[first.name]) == len(SERVICES) + 1 and before[second.name] == [hand[second.name]]

        failed = pair.run("upgrade", channel="edge", stellaops_releases_dir=sandbox["faulty_releases_dir"])
        assert failed.rc != 0
        for host in pair.hosts:
            plan = failed.result("Plan the deployment with Compose", host.name)
            assert plan["bookmark"] is None and plan["before"]["unlabelled"] is True
            message = outcome(failed, host)
            assert "matched no kept deployment (mixed or missing release labels), so there is no bookmark to return to" in message, message
            assert f": {FAULTY}+" in message and message.endswith("is left in place."), message
            assert "Rolled back" not in message and "nothing ran before" not in message, message
            # Never a removal of the whole project: the hand-started container is still there, untouched.
            assert hand[host.name] in container_ids(host)
            assert host.docker("container", "inspect", "--format", "{{.State.Status}}", hand[host.name]).strip() == "running"
            assert job_of(pair, host, FAULTY)["status"] == "failed"
            assert lock_record(pair, host) is None
    finally:
        for host in pair.hosts:
            host.docker("rm", "--force", "--volumes", hand[host.name])


def test_failed_first_release_is_removed_when_nothing_ran_before(pair: Fleet, sandbox: dict[str, Any]) -> None:
    """On a clean project the faulty release fails and leaves no container behind on any host."""
    pair.clean()
    failed = pair.run("upgrade", channel="edge", stellaops_releases_dir=sandbox["faulty_releases_dir"])
    assert failed.rc != 0
    for host in pair.hosts:
        message = outcome(failed, host)
        assert "is unhealthy" in message, message
        assert "Rolled back: nothing ran before, the failed release was removed." in message, message
        assert container_ids(host) == []
        assert host.health(pair.port(host)) is None
        assert current(pair, host) is None
        assert job_of(pair, host, FAULTY)["status"] == "rolled_back"
        assert lock_record(pair, host) is None


# ---------------------------------------------------------------------------------------- one host, one run against another


def test_unreachable_registry_fails_before_any_running_container_is_touched(solo: Fleet, sandbox: dict[str, Any], tmp_path: Path) -> None:
    """A release whose images are on a registry where nothing listens: the pull fails, nothing running changes."""
    ensure_running(solo, "2025.09.0")
    (host,) = solo.hosts
    manifest = yaml.safe_load(Path(sandbox["manifests"]["2025.10.0-stable"]).read_text())
    manifest["release"]["version"] = "2025.10.5"
    for component in manifest["release"]["components"]:
        assert component["image"].startswith(f"{sandbox['registry']}/")
        component["image"] = "127.0.0.1:5999/" + component["image"].split("/", 1)[1]
    (tmp_path / "2025.10.5-stable.yaml").write_text(yaml.safe_dump(manifest))
    before = state(solo)

    result = solo.run("upgrade", channel="stable", stellaops_releases_dir=str(tmp_path))
    assert result.rc != 0
    message = outcome(result, host)
    bookmark = before[host.name]["current"]
    assert "to 2025.10.5-stable failed at Deploy the release and prove it: docker compose pull" in message, message
    assert "127.0.0.1:5999" in message, message
    assert f"No running container was touched; {bookmark} still runs." in message, message
    after = state(solo)[host.name]
    assert after["containers"] == before[host.name]["containers"]
    assert after["current"] == bookmark and after["lock"] is None
    assert releases(solo, host) == dict.fromkeys(SERVICES, "2025.09.0")
    job = job_of(solo, host, "2025.10.5-stable")
    assert job["status"] == "failed" and "docker compose pull" in job["message"]
    assert "running" not in [step["status"] for step in job["history"]]


def test_second_run_is_refused_while_the_first_holds_the_lock(solo: Fleet) -> None:
    """The second run fails at once, naming the holder, and changes nothing; the first completes."""
    ensure_running(solo, "2025.09.0")
    (host,) = solo.hosts
    jobs_before = [job["id"] for job in host.journal(solo.project_dir)]
    # The first run's last health check waits on the host until this test has seen the second run refused, so that it
    # holds the lock however slowly the second run starts (at most 120 s, then the first run fails).
    release = f"{solo.project_dir}.release-the-lock"
    host.ssh(f"rm -f {release}")
    hold = ["sh", "-c", f"while [ ! -e {release} ]; do sleep 0.2; done"]
    checks = [
        {"name": service, "type": "http", "url": f"http://127.0.0.1:{solo.port(host, service)}/health", "body_contains": '"release": "{release_version}"'}
        for service in SERVICES
    ] + [{"name": "hold the lock", "type": "command", "command": hold, "timeout": 120}]
    first = solo.start("upgrade", channel="stable", release="2025.10.0", stellaops_compose=solo.compose_settings(health_checks=checks))
    try:
        assert wait_for_file(host, f"{solo.project_dir}/deploy.lock", 300), "the first run never took the environment lock"
        holder = lock_record(solo, host)
        assert holder is not None and holder["pid"] == first.pid

        second = solo.run("upgrade", channel="stable", release="2025.10.0")
        assert first.poll() is None, "the first run ended before the second was refused: the test proves nothing"
        assert lock_record(solo, host) == holder, "the refused run touched the first run's lock"
        assert second.rc != 0
        # The plan tries the lock: the second run stops there, before any host of its batch changes.
        message = second.result("Plan the deployment with Compose", host.name)["msg"]
        for part in (
            f"is locked by {holder['owner']}", f"run {holder['run_id']}", f"from controller {holder['controller']}", f"since {holder['since']}",
        ):  # fmt: skip
            assert part in message, (part, message)
        ran = [name.split(" : ", 1)[-1] for name, task in second.tasks(host.name) if not task.get("skipped")]
        assert "Deploy the release and prove it" not in ran, ran
        assert "Traceback" not in second.stdout + second.stderr
    finally:
        host.ssh(f"touch {release}")
        done = first.wait(timeout=600)
    assert done.rc == 0, done.failure_messages or done.stderr[-3000:]
    assert releases(solo, host) == dict.fromkeys(SERVICES, "2025.10.0")
    new_jobs = [job for job in host.journal(solo.project_dir) if job["id"] not in jobs_before]
    assert [(job["release_id"], job["status"]) for job in new_jobs] == [("2025.10.0-stable", "completed")]
    assert lock_record(solo, host) is None


def test_killed_run_leaves_a_stale_lock_that_break_stale_clears(solo: Fleet) -> None:
    """SIGKILL of the run and of its module on the host during ``docker compose up``: the rerun is refused as stale;
    with break_stale it converges."""
    ensure_running(solo, "2025.09.0")
    (host,) = solo.hosts
    jobs_before = [job["id"] for job in host.journal(solo.project_dir)]
    run = solo.start("upgrade", channel="stable", release="2025.10.0")
    try:
        assert on_host(host, compose_up_script(PROJECT, running=True, timeout=300), 300), "docker compose up never ran"
        assert on_host(host, kill_module_script(PROJECT), 30), "the compose_deploy process running docker compose up was not found"
    finally:
        run.kill()
    # The host goes on with what it was doing; wait until its compose process is gone.
    assert on_host(host, compose_up_script(PROJECT, running=False, timeout=180), 180)
    killed = lock_record(solo, host)
    assert killed is not None and killed["pid"] == run.pid and killed["release_id"] == "2025.10.0-stable"
    interrupted = [job for job in host.journal(solo.project_dir) if job["id"] not in jobs_before]
    assert len(interrupted) == 1 and interrupted[0]["status"] not in ("completed", "failed", "rolled_back"), interrupted
    job_id = interrupted[0]["id"]
    before = state(solo)

    refused = solo.run("upgrade", channel="stable", release="2025.10.0")
    assert refused.rc != 0
    message = refused.result("Plan the deployment with Compose", host.name)["msg"]
    assert f"run {killed['run_id']}" in message and f"it is stale: process {run.pid} of that run is gone from this controller" in message, message
    assert "break_stale=true clears it" in message, message
    assert state(solo) == before, "the refused run changed something"

    again = solo.run("upgrade", channel="stable", release="2025.10.0", compose_upgrade_break_stale_lock=True)
    assert again.rc == 0, again.failure_messages or again.stderr[-3000:]
    warning = f"The journal holds job {job_id} (2025.10.0-stable"
    assert warning in again.stdout + again.stderr and "left unfinished by an interrupted run" in again.stdout + again.stderr
    assert releases(solo, host) == dict.fromkeys(SERVICES, "2025.10.0")
    assert runs(solo, host, "2025.10.0")
    assert current(solo, host).startswith("2025.10.0-stable+")
    assert lock_record(solo, host) is None
