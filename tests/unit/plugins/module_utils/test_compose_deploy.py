# SPDX-License-Identifier: GPL-3.0-or-later
"""ComposeDeployer with a stand-in for the docker CLI: check mode, the plan, kept deployments, diff.

``FakeDocker`` replaces ``DockerRunner``. The test decides which containers run; ``docker compose
config --hash`` is imitated by hashing each service of the lock after substituting the env file,
so a setting changes the hash of exactly the services that read it, as it does in Compose. This is
a unit test of ComposeDeployer's decisions and of what it writes; the real Docker engine and
Compose are covered by the integration tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Optional

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deploy import ComposeDeployer, fill_version
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.deployments import DeploymentStore
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import ComposeProject
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.state import CONFIG_HASH_LABEL, RunningService
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from hypothesis import given, settings
from hypothesis import strategies as st

REG = "127.0.0.1:5000/stellaops"
RELEASE_ID = "2025.10.0-stable"
RELEASE = {"release_id": RELEASE_ID, "version": "2025.10.0", "channel": "stable"}
IMAGES = {"authority": f"{REG}/authority@sha256:{'a' * 64}", "signer": f"{REG}/signer@sha256:{'b' * 64}"}
LOCK = f"""\
name: stellaops
services:
  authority:
    image: {IMAGES["authority"]}
    labels:
      stella.release.id: {RELEASE_ID}
    environment:
      LOG_LEVEL: ${{AUTHORITY_LOG_LEVEL}}
      DB_PASSWORD: ${{DB_PASSWORD}}
  signer:
    image: {IMAGES["signer"]}
    labels:
      stella.release.id: {RELEASE_ID}
    environment:
      LOG_LEVEL: ${{SIGNER_LOG_LEVEL}}
"""
SETTINGS = {"AUTHORITY_LOG_LEVEL": "info", "SIGNER_LOG_LEVEL": "info"}
SECRET = "S3CR3T-hunter2"
SECRETS = {"DB_PASSWORD": SECRET}


def read_env(text: str) -> dict[str, str]:
    return {k: v[1:-1] for k, v in (line.split("=", 1) for line in text.split("\n") if line and not line.startswith("#"))}


def compose_hashes(lock: str, env: str) -> dict[str, str]:
    """What `docker compose config --hash '*'` gives, imitated: a hash of each resolved service."""
    values = read_env(env)

    def interpolate(node: Any) -> Any:  # on the parsed YAML, as Compose interpolates
        if isinstance(node, str):
            return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: values.get(m.group(1), ""), node)
        if isinstance(node, dict):
            return {key: interpolate(item) for key, item in node.items()}
        if isinstance(node, list):
            return [interpolate(item) for item in node]
        return node

    services = interpolate(yaml.safe_load(lock))["services"]
    return {name: hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest() for name, spec in services.items()}


def running(hashes: dict[str, str], release_id: str = RELEASE_ID, state: str = "running") -> list[RunningService]:
    return [
        RunningService(
            service=name,
            container_id=f"{name[:6]}000001",
            state=state,
            health="healthy",
            image_id="sha256:" + hashlib.sha256(IMAGES[name].encode()).hexdigest(),
            repo_digests=(IMAGES[name],),
            labels={CONFIG_HASH_LABEL: value, "stella.release.id": release_id},
        )
        for name, value in sorted(hashes.items())
    ]


class FakeDocker:
    """The DockerRunner interface ComposeDeployer uses; `up` makes the containers run the project's hashes."""

    timeout = 3600.0
    query_timeout = 120.0

    def __init__(self, containers: Optional[list[RunningService]] = None) -> None:
        self.containers = list(containers or [])
        self.calls: list[list[str]] = []
        self.staged_env_modes: list[int] = []
        # The images the engine has (none unless a test says so: every start then pulls what is missing).
        self.images: set[str] = set()

    def require_engine(self) -> str:
        return "28.5.1"

    def require_compose(self) -> str:
        return "2.40.3"

    def has_images(self, references: list[str]) -> bool:
        return bool(references) and all(reference in self.images for reference in references)

    def project_containers(self, project_name: str) -> list[RunningService]:
        assert project_name == "stellaops"
        return list(self.containers)

    def _files(self, project: ComposeProject) -> tuple[str, str]:
        assert len(project.files) == 1 and project.env_file
        return Path(project.files[0]).read_text(), Path(project.env_file).read_text()

    def compose(self, project: ComposeProject, args: list[str], *, what: str, check: bool = True, timeout: Optional[float] = None) -> tuple[int, str, str]:
        self.calls.append(list(args))
        assert project.name == "stellaops"
        if args == ["config", "--hash", "*"]:
            assert project.env_file is not None
            self.staged_env_modes.append(stat.S_IMODE(os.stat(project.env_file).st_mode))
            return 0, "".join(f"{name} {value}\n" for name, value in compose_hashes(*self._files(project)).items()), ""
        if args[0] == "pull":
            return 0, "", ""
        if args[0] == "up":
            self.containers = running(compose_hashes(*self._files(project)))
            return 0, "", ""
        if args[0] == "down":
            self.containers = []
            return 0, "", ""
        if args[0] == "stop":
            self.containers = [dataclasses.replace(c, state="exited", health=None) for c in self.containers]
            return 0, "", ""
        raise AssertionError(f"unexpected compose call {args}")

    def actions(self) -> list[str]:
        """The compose subcommands that act on the engine (every call but config)."""
        return [args[0] for args in self.calls if args[0] != "config"]


def no_command(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError("no health check command is expected here")


def make_params(project_dir: Path, **over: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "project_name": "stellaops",
        "project_dir": str(project_dir),
        "docker_host": "unix:///var/run/docker.sock",
        "state": "present",
        "lock": LOCK,
        "release": dict(RELEASE),
        "images": dict(IMAGES),
        "target": None,
        "settings": dict(SETTINGS),
        "secrets": dict(SECRETS),
        "pull": True,
        "wait_timeout": 120,
        "health_checks": [],
        "health_retries": 1,
        "health_interval": 0.0,
        "journal_dir": None,
        "environment": None,
        "run_id": None,
        "owner": "tester",
        "break_stale": False,
        "host": "fleet-1",
        "controller": None,
        "pid": None,
        "stale_run_id": None,
        "on_failure": "restore",
        "smoke_tests": [],
        "expected_plan": None,
        "job_details": None,
        "job_message": None,
        "keep": 5,
    }
    params.update(over)
    return params


def deployer(project_dir: Path, docker: FakeDocker, *, check_mode: bool, **over: Any) -> ComposeDeployer:
    return ComposeDeployer(make_params(project_dir, **over), docker, check_mode=check_mode, run_command=no_command, timeout_bin=None)  # type: ignore[arg-type]


def deploy(project_dir: Path, docker: FakeDocker, **over: Any) -> dict[str, Any]:
    """A real (not check mode) run against the fake engine: what an earlier run left on the host."""
    return deployer(project_dir, docker, check_mode=False, **over).run()


def snapshot(root: Path) -> dict[str, Any]:
    """Every path under root with its mode, mtime and content (or link target)."""
    found: dict[str, Any] = {}
    if not root.exists():
        return found
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if path.is_symlink():
            found[str(path.relative_to(root))] = ("link", os.readlink(path))
        elif path.is_dir():
            found[str(path.relative_to(root))] = ("dir", stat.S_IMODE(info.st_mode), info.st_mtime_ns)
        else:
            found[str(path.relative_to(root))] = ("file", stat.S_IMODE(info.st_mode), info.st_mtime_ns, path.read_text())
    return found


@pytest.fixture
def scratch_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where tempfile puts the plan's staging directory, to see that nothing is left there."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    return scratch


# --------------------------------------------------------------------------- fill_version


def test_fill_version_replaces_the_placeholder_in_every_string() -> None:
    checks = [
        {"type": "http", "url": "http://127.0.0.1:18080/health", "body_contains": '"release":"{release_version}"', "timeout": 5},
        {"type": "command", "command": ["stellaops-cli", "--expect", "{release_version}", "v{release_version}/{release_version}"], "expected_rc": 0},
        {"nested": {"deeper": ["{release_version}", None, True, 3.5]}},
    ]
    original = json.loads(json.dumps(checks))
    assert fill_version(checks, "2025.10.0") == [
        {"type": "http", "url": "http://127.0.0.1:18080/health", "body_contains": '"release":"2025.10.0"', "timeout": 5},
        {"type": "command", "command": ["stellaops-cli", "--expect", "2025.10.0", "v2025.10.0/2025.10.0"], "expected_rc": 0},
        {"nested": {"deeper": ["2025.10.0", None, True, 3.5]}},
    ]
    assert checks == original  # the input is not modified


def test_fill_version_leaves_other_braces_and_keys_alone() -> None:
    assert fill_version({"{release_version}": "{release}", "n": "{{release_version}}"}, "1.2") == {"{release_version}": "{release}", "n": "{1.2}"}
    assert fill_version("", "1.2") == ""
    assert fill_version(7, "1.2") == 7


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(alphabet="abc{}_ ", max_size=12)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values, version=st.text(alphabet="0123456789.", min_size=1, max_size=10))
def test_fill_version_property(value: Any, version: str) -> None:
    filled = fill_version(value, version)
    # the same shape, and the only difference is the placeholder turned into the version: marking
    # both with NUL gives the same text (the value's strings hold no digits or dots to confuse this)
    assert json.dumps(filled).replace(version, "\0") == json.dumps(value).replace("{release_version}", "\0").replace(version, "\0")
    if "{release_version}" not in json.dumps(value):
        assert filled == value


# --------------------------------------------------------------------------- check mode


def test_check_mode_with_nothing_running_plans_create_and_writes_nothing(tmp_path: Path, scratch_tmp: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    result = deployer(project, docker, check_mode=True).run()
    hashes = compose_hashes(LOCK, "".join(f"{k}='{v}'\n" for k, v in {**SETTINGS, **SECRETS}.items()))
    assert result["changed"] is True
    assert result["touched"] is False
    assert result["bookmark"] is None
    assert result["deployment"] == {
        "deployment_id": f"{RELEASE_ID}+1", "new": True, "release_id": RELEASE_ID, "release": "2025.10.0", "channel": "stable", "evidence_schema": 1,
    }  # fmt: skip
    assert result["plan"] == {"create": ["authority", "signer"], "recreate": [], "start": [], "remove": [], "unchanged": [], "changes": ["authority", "signer"]}
    assert result["config_hashes"] == hashes
    assert result["images"] == IMAGES
    assert result["before"]["running"] is False and result["before"]["services"] == {}
    assert result["engine_version"] == "28.5.1"
    assert docker.actions() == []
    assert docker.staged_env_modes == [0o600]  # the staged env file holds secrets
    assert not project.exists()
    assert os.listdir(scratch_tmp) == []  # the staging directory is gone
    assert SECRET not in json.dumps(result)


def test_the_pull_is_left_out_only_when_the_engine_has_every_image_it_starts(tmp_path: Path, scratch_tmp: Path) -> None:
    docker = FakeDocker([])
    docker.images = set(IMAGES.values()) - {IMAGES["authority"]}
    deploy(tmp_path / "one", docker)
    assert docker.actions() == ["pull", "up"]

    docker = FakeDocker([])
    docker.images = set(IMAGES.values())
    result = deploy(tmp_path / "two", docker)
    assert docker.actions() == ["up"] and result["verified"] is True


def test_check_mode_with_the_same_deployment_running_changes_nothing(tmp_path: Path, scratch_tmp: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    first = deploy(project, docker)
    assert first["changed"] is True and first["verified"] is True
    assert docker.actions() == ["pull", "up"]
    before = snapshot(project)
    docker.calls.clear()

    result = deployer(project, docker, check_mode=True).run()
    assert result["changed"] is False
    assert result["plan"] == {"create": [], "recreate": [], "start": [], "remove": [], "unchanged": ["authority", "signer"], "changes": []}
    assert result["deployment"] == {
        "deployment_id": f"{RELEASE_ID}+1", "new": False, "release_id": RELEASE_ID, "release": "2025.10.0", "channel": "stable", "evidence_schema": 1,
    }  # fmt: skip
    assert result["bookmark"] == {
        "deployment_id": f"{RELEASE_ID}+1",
        "release_id": RELEASE_ID,
        "release": "2025.10.0",
        "channel": "stable",
        "config_hashes": first["config_hashes"],
        "images": IMAGES,
        "evidence_schema": 1,  # the release of this test does not say its evidence schema
    }
    assert result["before"]["release_id"] == RELEASE_ID
    assert docker.actions() == []
    assert snapshot(project) == before
    assert os.listdir(scratch_tmp) == []


@pytest.mark.parametrize(
    ("change", "recreated"),
    [
        ({"settings": {**SETTINGS, "AUTHORITY_LOG_LEVEL": "debug"}}, ["authority"]),
        ({"settings": {**SETTINGS, "SIGNER_LOG_LEVEL": "debug"}}, ["signer"]),
        ({"secrets": {"DB_PASSWORD": "S3CR3T-rotated"}}, ["authority"]),
        ({"settings": {"AUTHORITY_LOG_LEVEL": "warn", "SIGNER_LOG_LEVEL": "warn"}}, ["authority", "signer"]),
    ],
)
def test_check_mode_settings_only_change_is_a_new_deployment_recreating_what_reads_it(
    tmp_path: Path, scratch_tmp: Path, change: dict[str, Any], recreated: list[str]
) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    first = deploy(project, docker)
    before = snapshot(project)
    docker.calls.clear()

    result = deployer(project, docker, check_mode=True, **change).run()
    assert result["changed"] is True
    assert result["deployment"]["deployment_id"] == f"{RELEASE_ID}+2" and result["deployment"]["new"] is True
    assert result["bookmark"]["deployment_id"] == f"{RELEASE_ID}+1"
    assert result["plan"]["recreate"] == recreated
    assert result["plan"]["unchanged"] == sorted(set(IMAGES) - set(recreated))
    assert result["plan"]["create"] == [] and result["plan"]["remove"] == []
    assert {name for name in IMAGES if result["config_hashes"][name] != first["config_hashes"][name]} == set(recreated)
    assert docker.actions() == []
    assert snapshot(project) == before
    assert os.listdir(scratch_tmp) == []


def test_check_mode_of_a_rollback_to_a_kept_deployment(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    first = deploy(project, docker)
    second = deploy(project, docker, settings={**SETTINGS, "AUTHORITY_LOG_LEVEL": "debug"})
    assert second["deployment"]["deployment_id"] == f"{RELEASE_ID}+2"
    before = snapshot(project)
    docker.calls.clear()

    result = deployer(project, docker, check_mode=True, target=f"{RELEASE_ID}+1", lock=None, release=None).run()
    assert result["changed"] is True
    assert result["deployment"] == {
        "deployment_id": f"{RELEASE_ID}+1", "new": False, "release_id": RELEASE_ID, "release": "2025.10.0", "channel": "stable", "evidence_schema": 1,
    }  # fmt: skip
    assert result["bookmark"]["deployment_id"] == f"{RELEASE_ID}+2"
    assert result["plan"]["recreate"] == ["authority"] and result["plan"]["unchanged"] == ["signer"]
    assert result["config_hashes"] == first["config_hashes"]
    assert docker.actions() == []
    assert snapshot(project) == before


def test_check_mode_counts_moving_current_as_a_change(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    deploy(project, docker)
    deploy(project, docker, settings={**SETTINGS, "AUTHORITY_LOG_LEVEL": "debug"})
    # +2 runs, but current was pointed back at +1 by hand
    DeploymentStore(str(project)).point_current(f"{RELEASE_ID}+1")
    result = deployer(project, docker, check_mode=True, settings={**SETTINGS, "AUTHORITY_LOG_LEVEL": "debug"}).run()
    assert result["plan"]["changes"] == []
    assert result["deployment"]["deployment_id"] == f"{RELEASE_ID}+2"
    assert result["changed"] is True


def test_unknown_kept_deployment_and_incomplete_release_are_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(StellaOpsError, match=r"^Deployment 2025\.10\.0-stable\+7 is not kept under .*; nothing was changed\.$"):
        deployer(tmp_path, FakeDocker([]), check_mode=True, target=f"{RELEASE_ID}+7", lock=None, release=None).run()
    with pytest.raises(StellaOpsError, match=r"^release\.channel must be a non-empty string"):
        deployer(tmp_path, FakeDocker([]), check_mode=True, release={"release_id": RELEASE_ID, "version": "2025.10.0"}).run()
    with pytest.raises(StellaOpsError, match=r"^settings: the value of AUTHORITY_LOG_LEVEL holds a quote"):
        deployer(tmp_path, FakeDocker([]), check_mode=True, settings={"AUTHORITY_LOG_LEVEL": "it's"}).run()
    assert os.listdir(tmp_path) == []


def test_a_kept_lock_edited_by_hand_is_not_brought_back(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    deploy(project, docker)
    deploy(project, docker, settings={**SETTINGS, "AUTHORITY_LOG_LEVEL": "debug"})
    kept = project / "deployments" / f"{RELEASE_ID}+1" / "docker-compose.lock.yaml"
    assert DeploymentStore(str(project)).meta(f"{RELEASE_ID}+1")["lock_sha256"] == hashlib.sha256(kept.read_bytes()).hexdigest()
    kept.write_text(kept.read_text().replace(IMAGES["authority"], f"evil.example/authority@sha256:{'f' * 64}"))
    docker.calls.clear()
    for check_mode in (True, False):
        with pytest.raises(StellaOpsError) as caught:
            deployer(project, docker, check_mode=check_mode, target=f"{RELEASE_ID}+1", lock=None, release=None).run()
        assert str(caught.value) == (
            f"{kept}: the compose lock no longer matches the sha256 recorded when it was kept (lock_sha256 in deployment.json); "
            "it was edited, so it is not brought up; deploy the release again from its manifest."
        )
    assert docker.actions() == []
    assert deployer(project, docker, check_mode=True, target=f"{RELEASE_ID}+2", lock=None, release=None).run()["plan"]["changes"] == []


# --------------------------------------------------------------------------- real runs against the fake engine


def test_real_run_keeps_the_deployment_and_a_second_run_is_idempotent(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    first = deploy(project, docker)
    store = DeploymentStore(str(project))
    assert store.ids() == [f"{RELEASE_ID}+1"] and store.current() == f"{RELEASE_ID}+1"
    record = store.meta(f"{RELEASE_ID}+1")
    assert record["config_hashes"] == first["config_hashes"] == compose_hashes(*store.content(f"{RELEASE_ID}+1"))
    assert {k: record[k] for k in ("deployment_id", "release_id", "release", "channel", "images", "compose_version")} == {
        "deployment_id": f"{RELEASE_ID}+1",
        "release_id": RELEASE_ID,
        "release": "2025.10.0",
        "channel": "stable",
        "images": IMAGES,
        "compose_version": "2.40.3",
    }
    assert stat.S_IMODE((project / "deployments" / f"{RELEASE_ID}+1" / "settings.env").stat().st_mode) == 0o600
    assert first["touched"] is True and first["problems"] == [] and first["pruned"] == []
    assert [c for c in docker.calls if c[0] == "up"][0][:2] == ["up", "--detach"]

    docker.calls.clear()
    again = deploy(project, docker)
    assert again["changed"] is False and again["touched"] is False and again["verified"] is True
    assert docker.actions() == []
    assert store.ids() == [f"{RELEASE_ID}+1"]


def test_real_run_of_a_settings_change_then_back_reuses_the_kept_deployment(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    deploy(project, docker)
    debug = deploy(project, docker, settings={**SETTINGS, "AUTHORITY_LOG_LEVEL": "debug"})
    assert debug["deployment"]["deployment_id"] == f"{RELEASE_ID}+2"
    back = deploy(project, docker)
    assert back["deployment"] == {
        "deployment_id": f"{RELEASE_ID}+1", "new": False, "release_id": RELEASE_ID, "release": "2025.10.0", "channel": "stable", "evidence_schema": 1,
    }  # fmt: skip
    assert back["bookmark"]["deployment_id"] == f"{RELEASE_ID}+2"
    assert back["plan"]["recreate"] == ["authority"]
    assert DeploymentStore(str(project)).ids() == [f"{RELEASE_ID}+1", f"{RELEASE_ID}+2"]


def test_real_run_fails_when_the_engine_does_not_run_the_deployment(tmp_path: Path) -> None:
    class StuckDocker(FakeDocker):
        def compose(self, project: ComposeProject, args: list[str], *, what: str, check: bool = True, timeout: Optional[float] = None) -> tuple[int, str, str]:
            rc = super().compose(project, args, what=what, check=check, timeout=timeout)
            if args[0] == "up":  # the containers come up with an old configuration
                self.containers = running({name: "0" * 64 for name in IMAGES})
            return rc

    with pytest.raises(StellaOpsError, match=r"^Project stellaops does not run its deployment: authority: config_mismatch"):
        deploy(tmp_path / "project", StuckDocker([]))


# --------------------------------------------------------------------------- state=absent


@pytest.mark.parametrize("check_mode", [True, False])
def test_absent_with_no_containers_changes_nothing(tmp_path: Path, check_mode: bool) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    result = deployer(project, docker, check_mode=check_mode, state="absent").run()
    assert result["changed"] is False and result["touched"] is False
    assert result["deployment"] == {"deployment_id": f"{RELEASE_ID}+1"}
    assert docker.calls == []
    assert not project.exists()


def test_absent_in_check_mode_with_containers_reports_a_change_and_stops_nothing(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    deploy(project, docker)
    before = snapshot(project)
    docker.calls.clear()
    result = deployer(project, docker, check_mode=True, state="absent").run()
    assert result["changed"] is True and result["touched"] is False
    assert docker.calls == [] and len(docker.containers) == 2
    assert snapshot(project) == before


def test_absent_stops_a_kept_deployment(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    deploy(project, docker)
    docker.calls.clear()
    result = deployer(project, docker, check_mode=False, state="absent").run()
    assert result["changed"] is True and result["touched"] is True
    assert docker.actions() == ["down"] and docker.containers == []


# --------------------------------------------------------------------------- diff


def env_side(diff: list[dict[str, str]], side: str) -> dict[str, str]:
    lines = diff[1][side].split("\n")
    assert lines[-1] == ""
    found = dict(line.split("=", 1) for line in lines[:-1])
    assert len(found) == len(lines) - 1  # one line per key
    return found


def test_diff_shows_changed_settings_and_masks_secrets(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    deploy(project, docker)
    run = deployer(project, docker, check_mode=True, settings={**SETTINGS, "AUTHORITY_LOG_LEVEL": "debug"}, secrets={"DB_PASSWORD": "S3CR3T-rotated"})
    run.run()
    diff = run.diff()
    assert [(d["before_header"], d["after_header"]) for d in diff] == [
        (f"{RELEASE_ID}+1/docker-compose.lock.yaml", f"{RELEASE_ID}+2/docker-compose.lock.yaml"),
        (f"{RELEASE_ID}+1/settings.env", f"{RELEASE_ID}+2/settings.env"),
    ]
    assert diff[0]["before"] == diff[0]["after"] == LOCK
    assert env_side(diff, "before") == {"AUTHORITY_LOG_LEVEL": "'info'", "DB_PASSWORD": "********", "SIGNER_LOG_LEVEL": "'info'"}
    assert env_side(diff, "after") == {"AUTHORITY_LOG_LEVEL": "'debug'", "DB_PASSWORD": "********", "SIGNER_LOG_LEVEL": "'info'"}
    assert "S3CR3T" not in json.dumps(diff)


def test_diff_of_a_first_deployment_is_against_nothing(tmp_path: Path) -> None:
    run = deployer(tmp_path / "project", FakeDocker([]), check_mode=True)
    run.run()
    diff = run.diff()
    assert diff[0]["before_header"] == "nothing/docker-compose.lock.yaml" and diff[0]["before"] == "" and diff[0]["after"] == LOCK
    assert diff[1]["before"] == ""
    assert env_side(diff, "after") == {"AUTHORITY_LOG_LEVEL": "'info'", "DB_PASSWORD": "********", "SIGNER_LOG_LEVEL": "'info'"}


def test_diff_does_not_split_a_secret_at_a_unicode_line_separator(tmp_path: Path) -> None:
    # str.splitlines() breaks at U+2028; the env file (and Compose) does not: the tail is part of the secret
    secret = "hunter2\u2028AUTHORITY_LOG_LEVEL=tail-of-the-secret"
    run = deployer(tmp_path / "project", FakeDocker([]), check_mode=True, secrets={"DB_PASSWORD": secret})
    run.run()
    assert run.diff()[1]["after"] == "AUTHORITY_LOG_LEVEL='info'\nDB_PASSWORD=********\nSIGNER_LOG_LEVEL='info'\n"


def test_diff_masks_an_old_secret_whose_key_is_now_a_setting(tmp_path: Path) -> None:
    project = tmp_path / "project"
    docker = FakeDocker([])
    deploy(project, docker, secrets={"DB_PASSWORD": "S3CR3T-old"})
    run = deployer(project, docker, check_mode=True, settings={**SETTINGS, "DB_PASSWORD": "now-a-setting"}, secrets={})
    run.run()
    assert "S3CR3T" not in json.dumps(run.diff())


def test_diff_masks_a_key_passed_both_as_setting_and_secret(tmp_path: Path) -> None:
    run = deployer(tmp_path / "project", FakeDocker([]), check_mode=True, settings={**SETTINGS, "DB_PASSWORD": "placeholder"})
    run.run()
    assert env_side(run.diff(), "after")["DB_PASSWORD"] == "********"
    assert SECRET not in json.dumps(run.diff())


# every part of a secret carries the marker; some secrets hold a character that str.splitlines() breaks at
# (but an env file does not) followed by a settings key, which once let the rest of the secret through
secret_values = st.builds(
    lambda head, separator, key: f"S3CR3T{head}{separator}{key}S3CR3T-tail",
    st.text(st.characters(exclude_characters="'\n\r", exclude_categories=["Cs"]), max_size=12),
    st.sampled_from(["", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"]),
    st.sampled_from(["", "=", "AUTHORITY_LOG_LEVEL=", "SIGNER_LOG_LEVEL=x"]),
)
setting_values = st.text(alphabet="abcdefgh0123456789 .:/$", max_size=12)


@settings(max_examples=40, deadline=None)
@given(
    old_secret=secret_values,
    new_secret=secret_values,
    extra_secrets=st.dictionaries(st.from_regex(r"EXTRA_[A-Z]{1,4}", fullmatch=True), secret_values, max_size=3),
    authority=setting_values,
    signer=setting_values,
)
def test_diff_never_shows_a_secret_value(
    tmp_path_factory: pytest.TempPathFactory, old_secret: str, new_secret: str, extra_secrets: dict[str, str], authority: str, signer: str
) -> None:
    project = tmp_path_factory.mktemp("diff") / "project"
    docker = FakeDocker([])
    deploy(project, docker, secrets={"DB_PASSWORD": old_secret, **extra_secrets})
    new_settings = {"AUTHORITY_LOG_LEVEL": authority, "SIGNER_LOG_LEVEL": signer}
    run = deployer(project, docker, check_mode=True, settings=new_settings, secrets={"DB_PASSWORD": new_secret, **extra_secrets})
    result = run.run()
    diff = run.diff()
    text = json.dumps(diff)
    assert "S3CR3T" not in text and "S3CR3T" not in json.dumps(result)
    after = env_side(diff, "after")
    assert after["AUTHORITY_LOG_LEVEL"] == f"'{authority}'" and after["SIGNER_LOG_LEVEL"] == f"'{signer}'"
    assert {key for key, value in after.items() if value == "********"} == {"DB_PASSWORD", *extra_secrets}
