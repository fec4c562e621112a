# SPDX-License-Identifier: GPL-3.0-or-later
"""_kube.api_client: a kubeconfig that cannot be used is one sentence, a good one gives a client of its context."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.client import api_client
from hostile import BlackHole, fifo, finishes, one_sentence
from kubernetes.client import CoreV1Api

KUBECONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "sandbox", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
    "users": [{"name": "admin", "user": {"token": "not-a-real-token"}}],
    "contexts": [{"name": "prod", "context": {"cluster": "sandbox", "user": "admin"}}],
    "current-context": "prod",
}


def test_a_kubeconfig_gives_a_client_of_its_context(tmp_path: Path) -> None:
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(KUBECONFIG))
    assert api_client(str(path), "prod", "test").configuration.host == "https://127.0.0.1:6443"


@pytest.mark.parametrize(
    ("content", "context", "part"),
    [
        (None, None, "context (current): Invalid kube-config file. No configuration found."),
        (yaml.safe_dump(KUBECONFIG), "staging", "context staging: "),
        ("clusters: [", None, "context (current): while parsing a flow node"),
    ],
    ids=["missing-file", "unknown-context", "not-yaml"],
)
def test_an_unusable_kubeconfig_is_one_sentence(tmp_path: Path, content: str | None, context: str | None, part: str) -> None:
    path = tmp_path / "config"
    if content is not None:
        path.write_text(content)
    with pytest.raises(StellaOpsError) as caught:
        api_client(str(path), context, "test")
    one_sentence(caught.value, f"Cannot load the kubeconfig {path}", part)


def test_a_kubeconfig_that_is_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    path = fifo(tmp_path / "config")
    outcome = finishes(lambda: api_client(str(path), None, "test"), path, seconds=10)
    one_sentence(outcome, f"{path}", "FIFO")


def test_an_api_server_that_never_answers_fails_within_the_timeout(tmp_path: Path) -> None:
    hole = BlackHole()
    try:
        config = {**KUBECONFIG, "clusters": [{"name": "sandbox", "cluster": {"server": f"http://127.0.0.1:{hole.port}"}}]}
        path = tmp_path / "config"
        path.write_text(yaml.safe_dump(config))
        api = CoreV1Api(api_client(str(path), "prod", "test", timeout=(1, 1)))
        outcome = finishes(api.list_namespace, seconds=15)
        assert "timed out" in str(outcome).lower(), outcome
    finally:
        hole.close()
