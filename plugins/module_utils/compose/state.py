# SPDX-License-Identifier: GPL-3.0-or-later
"""What a compose project runs, compared with what a deployment asks for.

Pure functions over plain data: the engine is read elsewhere (``_docker_cli``) into
``RunningService`` records. The plan is Compose's own: a service is recreated when the
``com.docker.compose.config-hash`` label of its container differs from the hash that
``docker compose config --hash`` gives for the deployment's resolved configuration (image,
environment from the env file, ports, every setting), which is the comparison ``docker compose up``
itself makes. Verification after a run must find every service on that hash and on the locked
digest.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from .labels import DIGEST_LABEL, RELEASE_LABEL

CONFIG_HASH_LABEL = "com.docker.compose.config-hash"


@dataclass(frozen=True)
class RunningService:
    """One container of a compose project, as the engine reports it."""

    service: str
    container_id: str
    state: str  # running, exited, restarting, ...
    health: Optional[str]  # healthy, unhealthy, starting, or None without a healthcheck
    image_id: str
    repo_digests: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def release_id(self) -> Optional[str]:
        return self.labels.get(RELEASE_LABEL)

    @property
    def config_hash(self) -> Optional[str]:
        return self.labels.get(CONFIG_HASH_LABEL)

    def runs_image(self, image: str) -> bool:
        """True when the container's image is ``repository@sha256:...`` according to the engine."""
        return image in self.repo_digests


@dataclass
class Plan:
    create: list[str] = field(default_factory=list)
    recreate: list[str] = field(default_factory=list)
    start: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[str]:
        return sorted(self.create + self.recreate + self.start + self.remove)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "changes": self.changes}


def group_by_service(containers: list[RunningService]) -> dict[str, list[RunningService]]:
    grouped: dict[str, list[RunningService]] = {}
    for container in containers:
        grouped.setdefault(container.service, []).append(container)
    return grouped


def plan_changes(containers: list[RunningService], config_hashes: Mapping[str, str]) -> Plan:
    """Which services ``docker compose up`` of a configuration with ``config_hashes`` touches, and how."""
    plan = Plan()
    running = group_by_service(containers)
    for name in sorted(config_hashes):
        have = running.get(name, [])
        if not have:
            plan.create.append(name)
        elif any(container.config_hash != config_hashes[name] for container in have):
            plan.recreate.append(name)
        elif any(container.state != "running" for container in have):
            plan.start.append(name)
        else:
            plan.unchanged.append(name)
    plan.remove.extend(sorted(set(running) - set(config_hashes)))
    return plan


def running_hashes(containers: list[RunningService]) -> dict[str, Optional[str]]:
    """Service -> the config hash its running containers share (None when they differ or lack one)."""
    hashes: dict[str, Optional[str]] = {}
    for name, have in group_by_service(containers).items():
        found = {container.config_hash for container in have}
        hashes[name] = found.pop() if len(found) == 1 else None
    return hashes


def verify(containers: list[RunningService], config_hashes: Mapping[str, str], images: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every service runs, healthy where it has a healthcheck, on its config hash and locked image."""
    problems: list[dict[str, Any]] = []
    running = group_by_service(containers)
    for name in sorted(config_hashes):
        have = running.get(name, [])
        image = images.get(name, "")
        if not have:
            problems.append({"service": name, "reason": "not_running", "expected": image, "found": None})
            continue
        for container in have:
            if image and not container.runs_image(image):
                found = next((d for d in container.repo_digests if d.split("@", 1)[0] == image.split("@", 1)[0]), container.image_id)
                problems.append({"service": name, "reason": "digest_mismatch", "expected": image, "found": found})
            elif container.config_hash != config_hashes[name]:
                problems.append({"service": name, "reason": "config_mismatch", "expected": config_hashes[name], "found": container.config_hash})
            elif container.state != "running":
                problems.append({"service": name, "reason": "not_running", "expected": "running", "found": container.state})
            elif container.health not in (None, "healthy"):
                problems.append({"service": name, "reason": "unhealthy", "expected": "healthy", "found": container.health})
    for name in sorted(set(running) - set(config_hashes)):
        problems.append({"service": name, "reason": "unexpected_service", "expected": None, "found": running[name][0].image_id})
    return problems


def summarize_problems(project: str, problems: list[dict[str, Any]]) -> str:
    details = "; ".join(f"{p['service']}: {p['reason']} (expected {p['expected']}, found {p['found']})" for p in problems)
    return f"Project {project} does not run its deployment: {details}."


def describe(containers: list[RunningService]) -> dict[str, Any]:
    """The running release: its id when every container carries the same one, and each service."""
    releases = sorted({c.release_id or "" for c in containers})
    services = {}
    for container in sorted(containers, key=lambda c: (c.service, c.container_id)):
        services[container.service] = {
            "container_id": container.container_id,
            "state": container.state,
            "health": container.health,
            "image_id": container.image_id,
            "repo_digests": list(container.repo_digests),
            "release_id": container.release_id,
            "digest": container.labels.get(DIGEST_LABEL),
            "config_hash": container.config_hash,
        }
    return {
        "running": any(c.state == "running" for c in containers),
        "release_id": (releases[0] or None) if len(releases) == 1 else None,
        "mixed_releases": len(releases) > 1,
        "unlabelled": any(not c.release_id for c in containers),
        "services": services,
    }
