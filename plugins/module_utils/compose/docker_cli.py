# SPDX-License-Identifier: GPL-3.0-or-later
"""The docker CLI and its Compose v2 plugin, run as argument lists through one runner.

A compose host needs nothing but Python's standard library, the Docker engine and the Compose
plugin: every read of the engine (containers, their labels, image digests) and every compose
action goes through the ``docker`` binary, found and version-probed once, with ``LC_ALL=C``.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Mapping, Optional, Sequence

from ..core.errors import StellaOpsError
from ..core.runner import ModuleLike, ToolRunner
from .state import RunningService

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


# Docker's own rule for object names (networks, volumes, projects' containers): never an option.
_DOCKER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}")


def docker_name(value: Any, field: str) -> str:
    """``value`` when Docker takes it as a name; else one sentence (a leading ``-`` would reach docker as an option)."""
    if not isinstance(value, str) or not _DOCKER_NAME.fullmatch(value):
        raise StellaOpsError(f"{field} must be a Docker name (a letter or digit, then letters, digits, '_', '.' or '-'), got {value!r}.")
    return value


class DockerRunner(ToolRunner):
    """``docker`` against one engine (``--host``), with the compose plugin for one project."""

    binary = "docker"
    version_args = ("version", "--format", "{{.Client.Version}}")

    def __init__(self, module: ModuleLike, docker_host: str, executable: Optional[str] = None, timeout: Optional[float] = None) -> None:
        super().__init__(module, executable, timeout)
        self.docker_host = docker_host
        self._compose_version: Optional[str] = None

    def docker(self, args: Sequence[str], *, what: str, check: bool = True, timeout: Optional[float] = None) -> tuple[int, str, str]:
        return self.run(["--host", self.docker_host, *args], what=what, check=check, timeout=timeout)

    def require_engine(self) -> str:
        """The engine's version; one sentence when the engine does not answer."""
        rc, out, err = self.docker(["version", "--format", "{{.Server.Version}}"], what="docker version", check=False, timeout=self.query_timeout)
        if rc != 0 or not out.strip():
            reason = (err or out).strip().splitlines()
            raise StellaOpsError(
                f"The Docker engine at {self.docker_host} does not answer"
                f"{': ' + reason[-1] if reason else ''}; start it or set docker_host."
            )
        return out.strip()

    def require_compose(self) -> str:
        """The Compose plugin's version, probed once; one sentence when the plugin is missing."""
        if self._compose_version is None:
            rc, version, err = self.run(["compose", "version", "--short"], check=False, timeout=self.query_timeout)
            if rc != 0:
                # docker without the plugin prints its reason first, then usage and a help hint
                said = (err or version).strip().splitlines()
                raise StellaOpsError(
                    f"The Docker Compose v2 plugin is missing on this host ('docker compose version' failed: "
                    f"{said[0].strip() if said else 'no output'}); install it as a Docker CLI plugin."
                )
            self._compose_version = version.strip().lstrip("v")
        return self._compose_version

    def compose(
        self,
        project: ComposeProject,
        args: Sequence[str],
        *,
        what: str,
        check: bool = True,
        timeout: Optional[float] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> tuple[int, str, str]:
        # The plugin is probed only when a compose command fails (a missing plugin is then said as
        # such): a probe before every module run would start the plugin's binary once more.
        engine_args = ["--host", self.docker_host, "compose", *project.global_args(), *args]
        rc, out, err = self.run(engine_args, what=what, check=False, timeout=timeout, env=env)
        if rc != 0 and check:
            self.require_compose()
            self.fail(engine_args, rc, out, err, what)
        return rc, out, err

    def has_images(self, references: Sequence[str]) -> bool:
        """Whether the engine has every image named (False for an empty or unknown reference)."""
        if not references or not all(references):
            return False
        rc, _out, _err = self.docker(
            ["image", "inspect", "--format", "{{.Id}}", *sorted(set(references))], what="docker image inspect", check=False, timeout=self.query_timeout
        )
        return rc == 0

    def project_containers(self, project_name: str) -> list[RunningService]:
        """Every container (running or not) of a compose project, with its image's repo digests."""
        _rc, out, _err = self.docker(
            ["ps", "--all", "--quiet", "--no-trunc", "--filter", f"label={PROJECT_LABEL}={project_name}"],
            what="docker ps",
            timeout=self.query_timeout,
        )
        ids = out.split()
        if not ids:
            return []
        details = self._inspect(["container", "inspect", *ids], "docker container inspect")
        image_ids = sorted({d.get("Image", "") for d in details if d.get("Image")})
        images = {i["Id"]: tuple(i.get("RepoDigests") or ()) for i in self._inspect(["image", "inspect", *image_ids], "docker image inspect")}
        found = []
        for container in details:
            state = container.get("State") or {}
            labels = (container.get("Config") or {}).get("Labels") or {}
            found.append(
                RunningService(
                    service=labels.get(SERVICE_LABEL, str(container.get("Name", "")).lstrip("/")),
                    container_id=str(container.get("Id", ""))[:12],
                    state=state.get("Status", "unknown"),
                    health=(state.get("Health") or {}).get("Status"),
                    image_id=container.get("Image", ""),
                    repo_digests=images.get(container.get("Image", ""), ()),
                    labels=labels,
                )
            )
        return found

    def _inspect(self, args: list[str], what: str) -> list[dict[str, Any]]:
        _rc, out, _err = self.docker(args, what=what, timeout=self.query_timeout)
        try:
            data = json.loads(out or "[]")
        except ValueError as error:
            raise StellaOpsError(f"{what} printed output that is not JSON: {error}.") from None
        return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


class ComposeProject:
    """One compose invocation context: project name and directory, compose files and env file."""

    def __init__(self, name: str, directory: str, files: Sequence[str], env_file: Optional[str]) -> None:
        self.name = name
        self.directory = directory
        self.files = list(files)
        self.env_file = env_file

    @classmethod
    def of_files(cls, name: str, directory: str, files_dir: str, lock_file: str, env_file: str) -> ComposeProject:
        """The project that ``files_dir``'s lock and env file describe (a kept or staged deployment)."""
        return cls(name, directory, [os.path.join(files_dir, lock_file)], os.path.join(files_dir, env_file))

    def global_args(self) -> list[str]:
        args = ["--project-name", self.name, "--project-directory", self.directory]
        for file in self.files:
            args += ["--file", file]
        if self.env_file:
            args += ["--env-file", self.env_file]
        return args


def config_hashes(docker: DockerRunner, project: ComposeProject) -> dict[str, str]:
    """Compose's own hash of each resolved service (what it writes to the config-hash label)."""
    _rc, out, _err = docker.compose(project, ["config", "--hash", "*"], what="docker compose config --hash", timeout=docker.query_timeout)
    hashes: dict[str, str] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            hashes[parts[0]] = parts[1]
    if not hashes:
        raise StellaOpsError(f"docker compose config --hash printed no service hash for project {project.name}.")
    return hashes
