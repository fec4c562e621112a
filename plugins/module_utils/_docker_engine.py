# SPDX-License-Identifier: GPL-3.0-or-later
"""Read a compose project's containers from the Docker engine (Docker SDK for Python)."""

from __future__ import annotations

from typing import Any

from ._compose_state import RunningService
from ._errors import StellaOpsError

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def engine_client(docker_host: str, timeout: int = 60) -> Any:
    try:
        import docker  # pylint: disable=import-outside-toplevel
    except ImportError as error:
        raise StellaOpsError("The Docker SDK for Python ('docker' package) is required on the compose host.") from error
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=timeout)
        client.ping()
    except docker.errors.DockerException as error:
        raise StellaOpsError(f"The Docker engine at {docker_host} does not answer: {error}") from error
    return client


def project_containers(client: Any, project: str) -> list[RunningService]:
    """Every container (running or not) of compose project ``project``, with its image's repo digests."""
    containers = client.api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project}"})
    images: dict[str, tuple[str, ...]] = {}
    found = []
    for summary in containers:
        details = client.api.inspect_container(summary["Id"])
        image_id = details["Image"]
        if image_id not in images:
            images[image_id] = tuple(client.api.inspect_image(image_id).get("RepoDigests") or ())
        state = details.get("State") or {}
        labels = (details.get("Config") or {}).get("Labels") or {}
        found.append(
            RunningService(
                service=labels.get(SERVICE_LABEL, summary["Names"][0].lstrip("/")),
                container_id=details["Id"][:12],
                state=state.get("Status", "unknown"),
                health=(state.get("Health") or {}).get("Status"),
                image_id=image_id,
                repo_digests=images[image_id],
                labels=labels,
            )
        )
    return found
