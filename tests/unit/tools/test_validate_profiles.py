# SPDX-License-Identifier: GPL-3.0-or-later
"""tools/validate-profiles with the real docker compose and helm binaries on copies of deploy/."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def validate(deploy: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(ROOT / "tools" / "validate-profiles"), "--compose-dir", str(deploy / "compose"),
               "--helm-chart", str(deploy / "helm" / "stellaops"), "--releases-dir", str(deploy / "releases"), *args]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def deploy(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    return tmp_path / "deploy"


def test_every_problem_in_one_report(deploy: Path) -> None:
    prod_values = deploy / "helm" / "stellaops" / "values-prod.yaml"
    prod_values.write_text(prod_values.read_text().replace("sha256:0a55850270904158f3a328e31c56a74ad3e1356f61f1a713e907742dcb678c35", "sha256:" + "1" * 64))
    stage = deploy / "compose" / "docker-compose.stage.yaml"
    stage.write_text(stage.read_text().replace("restart: unless-stopped", "restart: [unless-stopped]", 1))
    proc = validate(deploy, "--json")
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["valid"] is False and len(report["profiles"]) == 8
    assert len(report["problems"]) == 2, report["problems"]
    stage_problem, prod_problem = sorted(report["problems"])
    assert stage_problem.startswith("docker-compose.stage.yaml: docker compose config failed:") and "restart" in stage_problem
    assert prod_problem.startswith("values-prod.yaml: renders registry.stella-ops.org/stellaops/authority@sha256:1111")
    assert "but 2025.09.2-stable pins registry.stella-ops.org/stellaops/authority@sha256:0a5585" in prod_problem


def test_a_chart_without_chart_yaml_is_skipped_with_a_message(deploy: Path) -> None:
    (deploy / "helm" / "stellaops" / "Chart.yaml").unlink()
    proc = validate(deploy)
    assert proc.returncode == 0, proc.stdout
    assert "has no Chart.yaml yet: helm lint and helm template were not run" in proc.stdout
    assert proc.stdout.count("ok   docker compose config: docker compose config rendered") == 4


def test_no_profiles_is_a_usage_error(tmp_path: Path) -> None:
    proc = validate(tmp_path)
    assert proc.returncode == 2 and proc.stderr.startswith("validate-profiles: ") and "no compose profile" in proc.stderr


def test_a_release_version_never_leads_out_of_the_releases_directory(deploy: Path) -> None:
    # A manifest of the attacker's beside releases/, which the profile's x-release would name through '..'.
    (deploy / "evil").mkdir()
    shutil.copy(deploy / "releases" / "2025.10.0-edge.yaml", deploy / "evil" / "2025.10.0-edge.yaml")
    dev = deploy / "compose" / "docker-compose.dev.yaml"
    dev.write_text(dev.read_text().replace('version: "2025.10.0"', 'version: "../evil/2025.10.0"', 1))
    proc = validate(deploy, "--json")
    assert proc.returncode == 1, proc.stdout
    problems = json.loads(proc.stdout)["problems"]
    assert problems == [
        "docker-compose.dev.yaml: x-release must name a release version (such as 2025.10.0) and channel (edge, stable, airgap),"
        " got '../evil/2025.10.0' and 'edge'"
    ], problems
