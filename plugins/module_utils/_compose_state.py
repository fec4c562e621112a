# SPDX-License-Identifier: GPL-3.0-or-later
"""What a compose project runs, compared with what a lock asks for.

Pure functions over plain data: the Docker engine is read elsewhere (``_docker_engine``) into
``RunningService`` records, so the plan (which services a run would create, recreate or leave)
and the verification (every running container on the locked digest) are unit-tested without an
engine. The same plan is computed in check mode and before a real run; after the run the
verification must find nothing left to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Optional

from ._compose_lock import DIGEST_LABEL, RELEASE_LABEL, SERVICE_HASH_LABEL, services_summary


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

    def runs_digest(self, repository: str, digest: str) -> bool:
        """True when the container's image is ``repository@digest`` according to the engine."""
        return f"{repository}@{digest}" in self.repo_digests


@dataclass(frozen=True)
class ExpectedService:
    """One service of a lock: the pinned image and the hash of its whole definition."""

    image: str
    service_hash: Optional[str] = None

    @property
    def repository(self) -> str:
        return self.image.split("@", 1)[0]

    @property
    def digest(self) -> str:
        return self.image.split("@", 1)[1] if "@" in self.image else ""


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


def expected_from_lock(lock: Mapping[str, Any]) -> dict[str, ExpectedService]:
    """The expected services of a parsed lock document."""
    return {
        name: ExpectedService(image=str(service["image"] or ""), service_hash=service["service_hash"])
        for name, service in services_summary(lock).items()
    }


def group_by_service(containers: list[RunningService]) -> dict[str, list[RunningService]]:
    grouped: dict[str, list[RunningService]] = {}
    for container in containers:
        grouped.setdefault(container.service, []).append(container)
    return grouped


def plan_changes(containers: list[RunningService], expected: Mapping[str, ExpectedService]) -> Plan:
    """Which services bringing ``expected`` up would touch, and how."""
    plan = Plan()
    running = group_by_service(containers)
    for name in sorted(expected):
        want = expected[name]
        have = running.get(name, [])
        if not have:
            plan.create.append(name)
        elif any(not _same_definition(container, want) for container in have):
            plan.recreate.append(name)
        elif any(container.state != "running" for container in have):
            plan.start.append(name)
        else:
            plan.unchanged.append(name)
    plan.remove.extend(sorted(set(running) - set(expected)))
    return plan


def _same_definition(container: RunningService, want: ExpectedService) -> bool:
    if not container.runs_digest(want.repository, want.digest):
        return False
    if want.service_hash is not None:
        return container.labels.get(SERVICE_HASH_LABEL) == want.service_hash
    return True


def verify(containers: list[RunningService], expected: Mapping[str, ExpectedService]) -> list[dict[str, Any]]:
    """Every expected service runs, healthy where it has a healthcheck, on exactly the locked digest."""
    problems: list[dict[str, Any]] = []
    running = group_by_service(containers)
    for name in sorted(expected):
        want = expected[name]
        have = running.get(name, [])
        if not have:
            problems.append({"service": name, "reason": "not_running", "expected": want.image, "found": None})
            continue
        for container in have:
            found = next((d for d in container.repo_digests if d.startswith(want.repository + "@")), None)
            if not container.runs_digest(want.repository, want.digest):
                problems.append({"service": name, "reason": "digest_mismatch", "expected": want.image, "found": found or container.image_id})
            elif container.state != "running":
                problems.append({"service": name, "reason": "not_running", "expected": want.image, "found": container.state})
            elif container.health not in (None, "healthy"):
                problems.append({"service": name, "reason": "unhealthy", "expected": "healthy", "found": container.health})
    for name in sorted(set(running) - set(expected)):
        problems.append({"service": name, "reason": "unexpected_service", "expected": None, "found": running[name][0].image_id})
    return problems


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
        }
    return {
        "running": any(c.state == "running" for c in containers),
        "release_id": (releases[0] or None) if len(releases) == 1 else None,
        "mixed_releases": len(releases) > 1,
        "services": services,
    }
