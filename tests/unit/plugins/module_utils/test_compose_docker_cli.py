# SPDX-License-Identifier: GPL-3.0-or-later
"""The docker CLI runner: argument lists and the parsing of what docker prints.

This is a unit test of parsing and argument building only. ``module`` is a stand-in, duck-typed
like ``_runner.LocalModule`` (get_bin_path, run_command, fail_json): it records every argument
list and answers with canned stdout/stderr in the shape docker 28 and Compose v2.40.3 print. No docker
binary runs here; the real engine and Compose are exercised by the integration tests.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import (
    PROJECT_LABEL,
    SERVICE_LABEL,
    ComposeProject,
    DockerRunner,
    config_hashes,
    docker_name,
)
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.state import CONFIG_HASH_LABEL, RunningService
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError

DOCKER = "/usr/bin/docker"
HOST = "unix:///run/fleet-2/docker.sock"
Answer = tuple[int, str, str]


class StandInModule:
    """Records argument lists; answers each with the first scripted reply whose key it starts with."""

    def __init__(self, replies: Optional[dict[tuple[str, ...], Answer | Callable[[list[str]], Answer]]] = None) -> None:
        self.replies = replies or {}
        self.calls: list[list[str]] = []
        self.environ: list[dict[str, str]] = []

    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[list[str]] = None) -> Optional[str]:
        return DOCKER if arg == "docker" else None

    def run_command(self, args: list[str], **kwargs: Any) -> Answer:
        self.calls.append(list(args))
        self.environ.append(dict(kwargs.get("environ_update") or {}))
        for prefix, reply in self.replies.items():
            if tuple(args[1 : 1 + len(prefix)]) == prefix:
                return reply(args) if callable(reply) else reply
        raise AssertionError(f"unexpected command {args}")

    def fail_json(self, msg: str, **kwargs: Any) -> Any:
        raise StellaOpsError(msg, **kwargs)


def runner(replies: dict[tuple[str, ...], Any]) -> tuple[DockerRunner, StandInModule]:
    module = StandInModule(replies)
    return DockerRunner(module, HOST), module


PROJECT = ComposeProject(
    "stellaops", "/srv/stellaops", ["/srv/stellaops/deployments/r+1/docker-compose.lock.yaml"], "/srv/stellaops/deployments/r+1/settings.env"
)
GLOBAL = [
    "--project-name",
    "stellaops",
    "--project-directory",
    "/srv/stellaops",
    "--file",
    "/srv/stellaops/deployments/r+1/docker-compose.lock.yaml",
    "--env-file",
    "/srv/stellaops/deployments/r+1/settings.env",
]


# --------------------------------------------------------------------------- runner and global arguments


def test_docker_runs_against_its_engine_with_lc_all_c() -> None:
    docker, module = runner({("--host", HOST, "info"): (0, "ok\n", "")})
    assert docker.docker(["info"], what="docker info") == (0, "ok\n", "")
    assert module.calls == [[DOCKER, "--host", HOST, "info"]]
    assert module.environ[0]["LC_ALL"] == "C"


def test_missing_docker_binary_fails_with_one_sentence() -> None:
    class NoDocker(StandInModule):
        def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[list[str]] = None) -> Optional[str]:
            return None

    with pytest.raises(StellaOpsError, match=r"^Cannot find the 'docker' executable; run 'make setup' or set its path option\.$"):
        DockerRunner(NoDocker(), HOST)


def test_global_args() -> None:
    assert PROJECT.global_args() == GLOBAL
    assert ComposeProject("p", "/d", ["/d/a.yaml", "/d/b.yaml"], None).global_args() == [
        "--project-name",
        "p",
        "--project-directory",
        "/d",
        "--file",
        "/d/a.yaml",
        "--file",
        "/d/b.yaml",
    ]
    assert ComposeProject("p", "/d", [], "").global_args() == ["--project-name", "p", "--project-directory", "/d"]


def test_compose_puts_global_args_before_the_subcommand() -> None:
    docker, module = runner({("--host", HOST, "compose"): (0, "", "")})
    docker.compose(PROJECT, ["up", "--detach"], what="docker compose up")
    assert module.calls == [[DOCKER, "--host", HOST, "compose", *GLOBAL, "up", "--detach"]]


def test_a_failed_compose_command_fails_with_its_last_stderr_line() -> None:
    docker, _module = runner(
        {("--host", HOST, "compose"): (1, "", "time=... level=warning msg=x\nno such service: notify\n"), ("compose", "version"): (0, "2.40.3\n", "")}
    )
    with pytest.raises(StellaOpsError) as caught:
        docker.compose(PROJECT, ["up"], what="docker compose up")
    assert str(caught.value) == "docker compose up failed: no such service: notify"
    assert caught.value.details["rc"] == 1
    assert caught.value.details["cmd"] == [DOCKER, "--host", HOST, "compose", *GLOBAL, "up"]


# --------------------------------------------------------------------------- config_hashes

# what `docker compose config --hash '*'` prints (Compose v2.40.3): "<service> <sha256 hex>" per line
HASH_OUTPUT = (
    "authority b1683373fdae161f85c0ec296bf9a20381894f05bbe5acee53ca360de7a9dda\n"
    "signer 585e08963bd96b84e2df96da683f601cdb57c1b44d3f9f09c4222d4df4210b8\n"
)


def test_config_hashes_parses_one_line_per_service() -> None:
    docker, module = runner({("--host", HOST, "compose"): (0, HASH_OUTPUT, "")})
    assert config_hashes(docker, PROJECT) == {
        "authority": "b1683373fdae161f85c0ec296bf9a20381894f05bbe5acee53ca360de7a9dda",
        "signer": "585e08963bd96b84e2df96da683f601cdb57c1b44d3f9f09c4222d4df4210b8",
    }
    # the '*' is an argument of its own: no shell ever expands it
    assert module.calls == [[DOCKER, "--host", HOST, "compose", *GLOBAL, "config", "--hash", "*"]]


def test_config_hashes_ignores_lines_that_are_not_service_hash_pairs() -> None:
    out = "\n   \nWARN[0000] a warning on stdout\nauthority  aaa \n\tsigner\tbbb\n"
    docker, _module = runner({("--host", HOST, "compose"): (0, out, "")})
    assert config_hashes(docker, PROJECT) == {"authority": "aaa", "signer": "bbb"}


@pytest.mark.parametrize("out", ["", "\n", "nothing useful here\n"])
def test_config_hashes_without_any_hash_is_an_error(out: str) -> None:
    docker, _module = runner({("--host", HOST, "compose"): (0, out, "")})
    with pytest.raises(StellaOpsError, match=r"^docker compose config --hash printed no service hash for project stellaops\.$"):
        config_hashes(docker, PROJECT)


def test_config_hashes_of_an_invalid_configuration_fails_with_composes_reason() -> None:
    reason = "open /srv/stellaops/deployments/r+1/docker-compose.lock.yaml: no such file or directory"
    docker, _module = runner({("--host", HOST, "compose"): (1, "", reason + "\n"), ("compose", "version"): (0, "2.40.3\n", "")})
    with pytest.raises(StellaOpsError, match=r"^docker compose config --hash failed: open .*: no such file or directory$"):
        config_hashes(docker, PROJECT)


# --------------------------------------------------------------------------- project_containers

IMG_AUTH = "sha256:" + "1" * 64
IMG_SIGN = "sha256:" + "2" * 64
DIGEST_AUTH = "127.0.0.1:5000/stellaops/authority@sha256:" + "a" * 64
DIGEST_SIGN = "127.0.0.1:5000/stellaops/signer@sha256:" + "b" * 64


def inspect_container(cid: str, service: Optional[str], image_id: str, status: str, health: Optional[str], **labels: str) -> dict[str, Any]:
    """The fields of `docker container inspect` that are read, in the shape docker prints them."""
    state: dict[str, Any] = {"Status": status, "Running": status == "running", "Pid": 4242, "ExitCode": 0}
    if health is not None:
        state["Health"] = {"Status": health, "FailingStreak": 0, "Log": []}
    all_labels = {PROJECT_LABEL: "stellaops", "com.docker.compose.version": "2.40.3", **labels}
    if service is not None:
        all_labels[SERVICE_LABEL] = service
    return {
        "Id": cid,
        "Created": "2025-11-22T04:00:00.000000000Z",
        "Name": f"/stellaops-{service or 'stray'}-1",
        "Image": image_id,
        "State": state,
        "Config": {"Image": "ignored", "Labels": all_labels, "Env": ["PATH=/usr/bin"]},
    }


CONTAINERS = [
    inspect_container("a" * 64, "authority", IMG_AUTH, "running", "healthy", **{CONFIG_HASH_LABEL: "h-auth", "stella.release.id": "2025.10.0-stable"}),
    inspect_container("b" * 64, "signer", IMG_SIGN, "exited", None, **{CONFIG_HASH_LABEL: "h-sign"}),
    inspect_container("c" * 64, "authority", IMG_AUTH, "running", "starting"),
]
IMAGES = [
    {"Id": IMG_AUTH, "RepoTags": [], "RepoDigests": [DIGEST_AUTH, "mirror.example/stellaops/authority@sha256:" + "a" * 64]},
    {"Id": IMG_SIGN, "RepoTags": ["local/signer:dev"], "RepoDigests": None},
]


def containers_runner(ps_out: str, containers: Any, images: Any) -> tuple[DockerRunner, StandInModule]:
    return runner(
        {
            ("--host", HOST, "ps"): (0, ps_out, ""),
            ("--host", HOST, "container", "inspect"): (0, containers if isinstance(containers, str) else json.dumps(containers, indent=4), ""),
            ("--host", HOST, "image", "inspect"): (0, images if isinstance(images, str) else json.dumps(images, indent=4), ""),
        }
    )


def test_project_containers_reads_state_health_labels_and_digests() -> None:
    docker, module = containers_runner("\n".join(c["Id"] for c in CONTAINERS) + "\n", CONTAINERS, IMAGES)
    found = docker.project_containers("stellaops")
    assert module.calls == [
        [DOCKER, "--host", HOST, "ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={PROJECT_LABEL}=stellaops"],
        [DOCKER, "--host", HOST, "container", "inspect", "a" * 64, "b" * 64, "c" * 64],
        [DOCKER, "--host", HOST, "image", "inspect", IMG_AUTH, IMG_SIGN],  # each image once
    ]
    assert found[0] == RunningService(
        service="authority",
        container_id="a" * 12,
        state="running",
        health="healthy",
        image_id=IMG_AUTH,
        repo_digests=(DIGEST_AUTH, "mirror.example/stellaops/authority@sha256:" + "a" * 64),
        labels=CONTAINERS[0]["Config"]["Labels"],
    )
    assert found[0].config_hash == "h-auth" and found[0].release_id == "2025.10.0-stable"
    assert found[0].runs_image(DIGEST_AUTH)
    assert (found[1].service, found[1].state, found[1].health, found[1].repo_digests, found[1].config_hash) == ("signer", "exited", None, (), "h-sign")
    assert (found[2].service, found[2].health, found[2].config_hash, found[2].release_id) == ("authority", "starting", None, None)


def test_project_without_containers_inspects_nothing() -> None:
    docker, module = containers_runner("\n", [], [])
    assert docker.project_containers("stellaops") == []
    assert len(module.calls) == 1


def test_container_without_a_service_label_is_named_after_the_container() -> None:
    stray = inspect_container("d" * 64, None, IMG_AUTH, "created", None)
    docker, _module = containers_runner("d" * 64, [stray], IMAGES[:1])
    [found] = docker.project_containers("stellaops")
    assert found.service == "stellaops-stray-1"
    assert found.state == "created"


def test_sparse_inspect_output_does_not_crash() -> None:
    docker, _module = containers_runner("e" * 64, [{"Id": "e" * 64, "State": None, "Config": {"Labels": None}}, "not a dict"], [])
    [found] = docker.project_containers("stellaops")
    assert found == RunningService(service="", container_id="e" * 12, state="unknown", health=None, image_id="", repo_digests=(), labels={})


@pytest.mark.parametrize("what", ["container", "image"])
def test_inspect_output_that_is_not_json_is_one_sentence(what: str) -> None:
    garbage = "Error: something printed on stdout"
    docker, _module = containers_runner("a" * 64, garbage if what == "container" else CONTAINERS[:1], garbage if what == "image" else IMAGES)
    with pytest.raises(StellaOpsError, match=rf"^docker {what} inspect printed output that is not JSON: Expecting value: line 1 column 1 \(char 0\)\.$"):
        docker.project_containers("stellaops")


def test_a_container_removed_between_ps_and_inspect_fails_with_dockers_reason() -> None:
    docker, _module = runner(
        {
            ("--host", HOST, "ps"): (0, "a" * 64 + "\n", ""),
            ("--host", HOST, "container", "inspect"): (1, "[]\n", "Error response from daemon: No such container: " + "a" * 64 + "\n"),
        }
    )
    with pytest.raises(StellaOpsError, match=r"^docker container inspect failed: Error response from daemon: No such container: a+$"):
        docker.project_containers("stellaops")


# --------------------------------------------------------------------------- require_engine

NO_ENGINE = (1, "\n", f"Cannot connect to the Docker daemon at {HOST}. Is the docker daemon running?\n")


def test_require_engine_returns_the_engine_version_without_starting_compose() -> None:
    docker, module = runner({("--host", HOST, "version"): (0, "28.5.1\n", "")})
    assert docker.require_engine() == "28.5.1"
    assert module.calls == [[DOCKER, "--host", HOST, "version", "--format", "{{.Server.Version}}"]]


def test_compose_plugin_is_probed_once_when_asked() -> None:
    docker, module = runner({("compose", "version"): (0, "2.40.3\n", "")})
    assert docker.require_compose() == "2.40.3"
    assert docker.require_compose() == "2.40.3"
    assert module.calls == [[DOCKER, "compose", "version", "--short"]]


def test_compose_version_with_a_v_prefix() -> None:
    docker, _module = runner({("compose", "version"): (0, "v2.40.3\n", "")})
    assert docker.require_compose() == "2.40.3"


def test_engine_that_does_not_answer_is_one_sentence() -> None:
    docker, module = runner({("--host", HOST, "version"): NO_ENGINE})
    with pytest.raises(StellaOpsError) as caught:
        docker.require_engine()
    assert str(caught.value) == (
        f"The Docker engine at {HOST} does not answer: Cannot connect to the Docker daemon at {HOST}. "
        "Is the docker daemon running?; start it or set docker_host."
    )
    assert len(module.calls) == 1  # compose is not probed without an engine


def test_engine_that_prints_nothing_is_one_sentence() -> None:
    docker, _module = runner({("--host", HOST, "version"): (0, "\n", "")})
    with pytest.raises(StellaOpsError) as caught:
        docker.require_engine()
    assert str(caught.value) == f"The Docker engine at {HOST} does not answer; start it or set docker_host."


# what docker 28.2.2 prints without the compose plugin: the reason first, then usage and a help hint
@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (
            (125, "", "unknown flag: --short\n\nUsage:  docker [OPTIONS] COMMAND [ARG...]\n\nRun 'docker --help' for more information\n"),
            "unknown flag: --short",
        ),
        ((1, "", "docker: unknown command: docker compose\n\nRun 'docker --help' for more information\n"), "docker: unknown command: docker compose"),
        ((1, "", ""), "no output"),
    ],
)
def test_missing_compose_plugin_is_one_sentence(answer: Answer, reason: str) -> None:
    docker, _module = runner({("compose", "version"): answer})
    with pytest.raises(StellaOpsError) as caught:
        docker.require_compose()
    assert str(caught.value) == (
        f"The Docker Compose v2 plugin is missing on this host ('docker compose version' failed: {reason}); install it as a Docker CLI plugin."
    )


def test_failed_compose_command_without_the_plugin_says_the_plugin_is_missing() -> None:
    unknown = (1, "", "docker: unknown command: docker compose\n\nRun 'docker --help' for more information\n")
    docker, module = runner({("--host", HOST, "compose"): unknown, ("compose", "version"): unknown})
    with pytest.raises(StellaOpsError, match=r"^The Docker Compose v2 plugin is missing on this host"):
        config_hashes(docker, PROJECT)
    assert [call[1:4] for call in module.calls] == [["--host", HOST, "compose"], ["compose", "version", "--short"]]


def test_failed_compose_command_unchecked_returns_without_probing() -> None:
    docker, module = runner({("--host", HOST, "compose"): (1, "", "no such service: x\n")})
    assert docker.compose(PROJECT, ["ps", "x"], what="docker compose ps", check=False) == (1, "", "no such service: x\n")
    assert len(module.calls) == 1


@pytest.mark.parametrize("name", ["--help", "-q", "..", "a b", "net\nwork", "", "é", "a" * 256, None, 5])
def test_docker_network_refuses_what_is_not_a_docker_name_before_docker_runs(name: object) -> None:
    from ansible_collections.stellaops.deploy.plugins.modules import docker_network  # noqa: PLC0415

    module = StandInModule()
    module.params = {"name": name, "driver": "bridge", "docker_host": HOST}  # type: ignore[attr-defined]
    module.check_mode = True  # type: ignore[attr-defined]
    with pytest.raises(StellaOpsError, match=r"^name must be a Docker name \(a letter or digit, then letters, digits, '_', '\.' or '-'\), got "):
        docker_network.ensure(module)  # type: ignore[arg-type]
    assert module.calls == []


@pytest.mark.parametrize("name", ["stellaops_frontdoor", "it-operator-frontdoor", "a.b", "0net"])
def test_docker_names_pass(name: str) -> None:
    assert docker_name(name, "name") == name
