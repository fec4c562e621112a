# SPDX-License-Identifier: GPL-3.0-or-later
"""Profile validation (the runbook's ``validate-profiles``): every deployment profile rendered by its own tool.

Each compose profile goes through ``docker compose config`` (with its environment's example env
file), each Helm values file through ``helm lint`` and ``helm template`` against the chart. The
profile names its release (``x-release`` in a compose file, ``global.release`` in Helm values);
the images the tool rendered must carry the digests of that release's manifest. One report lists
every profile with each step and every finding. Controller-side: reads YAML with PyYAML.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

from ..compose.docker_cli import DockerRunner
from ..core.errors import StellaOpsError
from ..core.runner import ModuleLike
from ..kube.helm import HelmRunner, KubeTarget, workload_images
from ..release.image_ref import parse_image_ref, repo_matches
from ..release.manifest import Release, load_manifest, load_yaml_file
from ..release.manifest_schema import CHANNELS, VERSION_PATTERN

# Rendering needs neither a Docker engine nor a Kubernetes API server.
_RENDER_DOCKER_HOST = "unix:///var/run/docker.sock"
_RENDER_NAMESPACE = "stellaops"


@dataclass
class ProfileResult:
    path: str
    kind: str  # compose or helm
    release_id: Optional[str] = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: Optional[str] = None

    @property
    def valid(self) -> bool:
        return not self.problems

    def step(self, name: str, ok: bool, message: str) -> None:
        self.steps.append({"step": name, "ok": ok, "message": message})
        if not ok:
            self.problems.append(f"{os.path.basename(self.path)}: {message}")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "release_id": self.release_id, "valid": self.valid,
                "skipped": self.skipped, "steps": self.steps, "problems": self.problems}  # fmt: skip


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip() and not line.startswith("coalesce.go")]
    return lines[-1] if lines else "no output"


def declared_release(document: Any, kind: str) -> Optional[tuple[str, str]]:
    """(version, channel) the profile declares, or None."""
    if not isinstance(document, dict):
        return None
    node = document.get("x-release") if kind == "compose" else (document.get("global") or {}).get("release")
    if not isinstance(node, dict) or not node.get("version") or not node.get("channel"):
        return None
    return str(node["version"]), str(node["channel"])


def compare_images(images: Iterable[str], release: Release, ignore_repos: Iterable[str]) -> list[str]:
    """A sentence for each rendered image of a release repository that lacks the release's digest."""
    expected: dict[str, set[str]] = {}
    for component in release.images():
        if component.digest:
            expected.setdefault(component.repository, set()).add(component.digest)
    problems = []
    for image in sorted(set(images)):
        ref = parse_image_ref(image, "rendered image")
        if repo_matches(ref.repository, ignore_repos) or ref.repository not in expected:
            continue
        if ref.digest not in expected[ref.repository]:
            problems.append(f"renders {image}, but {release.release_id} pins {ref.repository}@{sorted(expected[ref.repository])[0]}")
    return problems


class ProfileValidator:
    """Validates compose profiles and Helm values files against the release manifests they name."""

    def __init__(self, module: ModuleLike, releases_dir: str, ignore_repos: Iterable[str] = ()) -> None:
        self.module = module
        self.releases_dir = releases_dir
        self.ignore_repos = tuple(ignore_repos)
        self._docker: Optional[DockerRunner] = None
        self._helm: Optional[HelmRunner] = None

    def _release(self, result: ProfileResult, document: Any) -> Optional[Release]:
        declared = declared_release(document, result.kind)
        where = "x-release" if result.kind == "compose" else "global.release"
        if declared is None:
            result.step("release", False, f"field {where} must name the release (version and channel)")
            return None
        # Only a version and a channel make the file name: '../evil/x' must not lead out of releases_dir.
        if not re.match(VERSION_PATTERN, declared[0]) or declared[1] not in CHANNELS:
            result.step("release", False, f"{where} must name a release version (such as 2025.10.0) and channel ({', '.join(CHANNELS)}), "
                                          f"got {declared[0]!r} and {declared[1]!r}")  # fmt: skip
            return None
        path = os.path.join(self.releases_dir, f"{declared[0]}-{declared[1]}.yaml")
        try:
            release = load_manifest(path, channel=declared[1])
        except StellaOpsError as error:
            result.step("release", False, f"{where} names {declared[0]}-{declared[1]}, whose manifest is not valid: {error}")
            return None
        result.release_id = release.release_id
        result.step("release", True, f"release manifest {path}")
        return release

    def compose(self, path: str, env_file: Optional[str]) -> ProfileResult:
        result = ProfileResult(path, "compose")
        try:
            document = load_yaml_file(path, "compose profile")
        except StellaOpsError as error:
            result.step("read", False, str(error))
            return result
        release = self._release(result, document)
        self._docker = self._docker or DockerRunner(self.module, _RENDER_DOCKER_HOST)
        args = ["compose", "--file", path, *(["--env-file", env_file] if env_file else []), "config", "--format", "json"]
        rc, out, err = self._docker.run(args, check=False, cwd=os.path.dirname(path) or ".")
        if rc != 0:
            result.step("docker compose config", False, f"docker compose config failed: {_last_line(err or out)}")
            return result
        services = (json.loads(out).get("services") or {}).values()
        images = [str(service["image"]) for service in services if service.get("image")]
        result.step("docker compose config", True, f"docker compose config rendered {len(images)} services")
        if release is not None:
            self._digests(result, images, release)
        return result

    def helm(self, chart: str, path: str) -> ProfileResult:
        result = ProfileResult(path, "helm")
        if not os.path.exists(os.path.join(chart, "Chart.yaml")):
            result.skipped = f"{chart} has no Chart.yaml yet: helm lint and helm template were not run"
            result.step("helm chart", True, result.skipped)
            return result
        try:
            document = load_yaml_file(path, "Helm values file")
        except StellaOpsError as error:
            result.step("read", False, str(error))
            return result
        release = self._release(result, document)
        self._helm = self._helm or HelmRunner(self.module, KubeTarget(_RENDER_NAMESPACE))
        rc, out, err = self._helm.helm(["lint", chart, "--values", path], what="helm lint", check=False)
        result.step("helm lint", rc == 0, "helm lint passed" if rc == 0 else f"helm lint failed: {_last_line(out + err)}")
        rc, out, err = self._helm.helm(["template", "stellaops", chart, "--values", path], what="helm template", check=False)
        if rc != 0:
            result.step("helm template", False, f"helm template failed: {_last_line(err or out)}")
            return result
        images = [image for found in workload_images(out).values() for image in found]
        result.step("helm template", True, f"helm template rendered {len(images)} images")
        if release is not None:
            self._digests(result, images, release)
        return result

    def _digests(self, result: ProfileResult, images: list[str], release: Release) -> None:
        problems = compare_images(images, release, self.ignore_repos)
        result.step("digests", not problems, "; ".join(problems) if problems else f"every image carries the digest of {release.release_id}")


def compose_env_file(path: str, env_dir: str) -> Optional[str]:
    """``env/<environment>.env`` or ``env/<environment>.env.example`` beside ``docker-compose.<environment>.yaml``."""
    environment = os.path.basename(path).removeprefix("docker-compose.").rsplit(".", 1)[0]
    for candidate in (f"{environment}.env", f"{environment}.env.example"):
        full = os.path.join(env_dir, candidate)
        if os.path.exists(full):
            return full
    return None


def validate_profiles(
    module: ModuleLike, *, compose_dir: Optional[str], helm_chart: Optional[str], releases_dir: str, ignore_repos: Iterable[str] = ()
) -> dict[str, Any]:
    """Validate every compose profile and Helm values file; the report as a dict."""
    validator = ProfileValidator(module, releases_dir, ignore_repos)
    results: list[ProfileResult] = []
    if compose_dir:
        profiles = sorted(glob.glob(os.path.join(compose_dir, "docker-compose.*.yaml")))
        if not profiles:
            raise StellaOpsError(f"{compose_dir}: no compose profile (docker-compose.<environment>.yaml) found.", kind="usage")
        results += [validator.compose(p, compose_env_file(p, os.path.join(compose_dir, "env"))) for p in profiles]
    if helm_chart:
        values = sorted(glob.glob(os.path.join(helm_chart, "values-*.yaml")))
        if not values:
            raise StellaOpsError(f"{helm_chart}: no Helm values file (values-<environment>.yaml) found.", kind="usage")
        results += [validator.helm(helm_chart, v) for v in values]
    problems = [problem for r in results for problem in r.problems]
    skipped = sorted({r.skipped for r in results if r.skipped})
    return {
        "valid": not problems,
        "profiles": [r.to_dict() for r in results],
        "problems": problems,
        "skipped": skipped,
        "msg": (f"{len(results)} profiles valid" if not problems else f"{len(problems)} problems in {len(results)} profiles: " + "; ".join(problems))
        + ("" if not skipped else "; skipped: " + "; ".join(skipped))
        + ".",
    }
