# SPDX-License-Identifier: GPL-3.0-or-later
"""The platform chart deploy/helm/stellaops with every values file, on the real helm 3 and helm 4.

``helm lint`` and ``helm template`` run offline (no API server). The rendered manifests, all
documents in one ``kind: List``, go through tools/check-channel-alignment (the code of the
channel_alignment module) in strict mode against the release manifest of the values file's channel,
as the runbook's channel table pairs them; a values file checked against another channel's release
must be found misaligned.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT
from kube import TOOLS

CHART = ROOT / "deploy" / "helm" / "stellaops"
RELEASES = ROOT / "deploy" / "releases"
# The runbook's channel table: values file -> the release manifest of its channel.
CHANNELS = {
    "values-dev.yaml": "2025.10.0-edge.yaml",
    "values-stage.yaml": "2025.09.2-stable.yaml",
    "values-prod.yaml": "2025.09.2-stable.yaml",
    "values-airgap.yaml": "2025.09.2-airgap.yaml",
}
HELMS = pytest.mark.parametrize("helm", ["helm", "helm4"], ids=["helm3", "helm4"])


def run_helm(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TOOLS / binary), *args], capture_output=True, text=True, check=False, timeout=300)


def render(binary: str, values: str, directory: Path) -> Path:
    """helm template with one values file, every document in one List file (what the alignment checker reads)."""
    rendered = run_helm(binary, "template", "stellaops", str(CHART), "--namespace", "stellaops", "--values", str(CHART / values))
    assert rendered.returncode == 0, rendered.stderr
    assert "warning" not in rendered.stderr.lower(), rendered.stderr
    documents = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    path = directory / f"{values}.rendered.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": documents}))
    return path


def check_alignment(release: str, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check-channel-alignment"), "--release", str(RELEASES / release),
         "--target", str(target), "--ignore-repo", "nats", "--strict"],
        capture_output=True, text=True, check=False, timeout=120,
    )


def test_every_values_file_has_a_channel() -> None:
    assert sorted(p.name for p in CHART.glob("values-*.yaml")) == sorted(CHANNELS)


@HELMS
@pytest.mark.parametrize("values", sorted(CHANNELS))
def test_lint_template_and_alignment(helm: str, values: str, tmp_path: Path) -> None:
    linted = run_helm(helm, "lint", str(CHART), "--strict", "--values", str(CHART / values))
    assert linted.returncode == 0, linted.stdout + linted.stderr
    target = render(helm, values, tmp_path)
    items = yaml.safe_load(target.read_text())["items"]
    kinds = sorted({i["kind"] for i in items})
    assert kinds == ["ConfigMap", "Deployment", "Job", "Service", "StatefulSet"]
    aligned = check_alignment(CHANNELS[values], target)
    assert aligned.returncode == 0, aligned.stdout + aligned.stderr
    assert "is aligned with 1 target(s)" in aligned.stdout


@HELMS
def test_values_of_one_channel_do_not_align_with_another(helm: str, tmp_path: Path) -> None:
    target = render(helm, "values-dev.yaml", tmp_path)
    misaligned = check_alignment("2025.09.2-stable.yaml", target)
    assert misaligned.returncode == 1
    assert "digest_mismatch" in misaligned.stdout and "is not aligned" in misaligned.stdout


@HELMS
def test_an_image_without_digest_does_not_render(helm: str) -> None:
    rendered = run_helm(
        helm, "template", "stellaops", str(CHART), "--values", str(CHART / "values-dev.yaml"),
        "--set", "services.signer.image=registry.stella-ops.org/stellaops/signer:2025.10.0",
    )
    assert rendered.returncode != 0
    assert "services.signer.image must be pinned by digest" in rendered.stderr
