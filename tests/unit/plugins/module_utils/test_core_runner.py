# SPDX-License-Identifier: GPL-3.0-or-later
"""ToolRunner bounds every command in time: real binaries (sleep, docker, helm) against peers that never answer."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.compose.docker_cli import DockerRunner
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.core.runner import LocalModule, ToolRunner, tool_dirs
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.helm import HelmRunner, KubeTarget, duration_seconds
from hostile import BlackHole, finishes, one_sentence

TOOLS = Path(__file__).resolve().parents[4] / ".tools" / "bin"  # where make setup puts helm


SILENT = "the engine, server or database it talks to may not be answering."


class Sleep(ToolRunner):
    binary = "sleep"


def test_a_command_past_its_bound_is_stopped_with_one_sentence() -> None:
    runner = Sleep(LocalModule(), timeout=1)
    outcome = finishes(lambda: runner.run(["30"], what="sleep 30"), seconds=15)
    assert one_sentence(outcome) == "sleep 30 did not finish within 1 s and was stopped; " + SILENT
    # even a caller that reads the exit code itself (check=False) never gets a cut-short answer
    outcome = finishes(lambda: runner.run(["30"], check=False), seconds=15)
    assert one_sentence(outcome, "sleep 30 did not finish within 1 s")
    assert runner.run(["0.1"]) == (0, "", "")
    assert runner.run(["2"], timeout=5)[0] == 0  # a caller's own bound goes past the runner's default


def test_a_docker_engine_that_never_answers_fails_within_the_bound() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("the docker CLI is installed by make setup")
    hole = BlackHole()
    try:
        runner = DockerRunner(LocalModule(), f"tcp://127.0.0.1:{hole.port}", docker, timeout=2)
        outcome = finishes(runner.require_engine, seconds=30)
        assert one_sentence(outcome) == "docker version did not finish within 2 s and was stopped; " + SILENT
    finally:
        hole.close()


def test_a_kubernetes_api_server_that_never_answers_fails_helm_within_the_bound(tmp_path: Path) -> None:
    helm = next((str(d / "helm") for d in [*map(Path, tool_dirs()), TOOLS] if (d / "helm").exists()), shutil.which("helm"))
    if helm is None:
        pytest.skip("helm is installed by make setup")
    hole = BlackHole()
    try:
        kubeconfig = tmp_path / "config"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{hole.port}"}}],
                    "contexts": [{"name": "c", "context": {"cluster": "c"}}],
                    "current-context": "c",
                    "users": [],
                }
            )
        )
        runner = HelmRunner(LocalModule(), KubeTarget("stellaops", kubeconfig=str(kubeconfig)), helm, timeout=2)
        outcome = finishes(lambda: runner.history("stellaops"), seconds=30)
        assert isinstance(outcome, StellaOpsError)
        assert one_sentence(outcome) == "helm history stellaops did not finish within 2 s and was stopped; " + SILENT
    finally:
        hole.close()


@pytest.mark.parametrize(("duration", "seconds"), [("15m", 900), ("600s", 600), ("1h30m", 5400), ("1h0m5s", 3605)])
def test_helm_durations_give_the_bound_of_an_upgrade(duration: str, seconds: float) -> None:
    assert duration_seconds(duration) == seconds
