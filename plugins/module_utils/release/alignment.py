# SPDX-License-Identifier: GPL-3.0-or-later
"""Channel alignment: do Helm values and compose files use the images a release manifest pins?

Targets are recognised by content. A compose file has a top-level ``services`` mapping and
only compose top-level keys; its images are ``services.<name>.image``. Anything else is Helm
values: every ``image`` key at any depth, either a string or a mapping with ``repository``
(plus optional ``registry``, ``tag`` and ``digest``).

Repositories are compared by the name Docker resolves them to (``postgres`` is
``docker.io/library/postgres``), never by spelling.

Every finding is returned. By default ``digest_mismatch``, ``unpinned`` (the target would deploy
something other than the release), ``tag_mismatch`` (a tag next to the right digest that names
another version than the release) and ``repository_mismatch`` (a release component taken from
another repository than the release's: the compose service or the Helm key holding the image is
the component's name, or the repository's last segment is that of the component's) block;
``missing_in_target`` and ``unknown_repository`` are reported and block only in strict mode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Sequence

from ..core.errors import StellaOpsError
from .image_ref import ImageRef, normalize_repository, parse_image_ref, repo_matches
from .manifest import Component, Release, field_path, load_yaml_file

REASONS: tuple[str, ...] = ("digest_mismatch", "unpinned", "tag_mismatch", "repository_mismatch", "missing_in_target", "unknown_repository")
BLOCKING_BY_DEFAULT: frozenset[str] = frozenset({"digest_mismatch", "unpinned", "tag_mismatch", "repository_mismatch"})
BLOCKING_IN_STRICT: frozenset[str] = frozenset(REASONS)
COMPOSE_TOP_LEVEL: frozenset[str] = frozenset({"version", "name", "services", "networks", "volumes", "configs", "secrets", "include"})
_VARIABLE_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def blocking_reasons(strict: bool) -> frozenset[str]:
    """The reasons that make a target misaligned."""
    return BLOCKING_IN_STRICT if strict else BLOCKING_BY_DEFAULT


@dataclass(frozen=True)
class ImageUse:
    """One image reference found in a target."""

    target: str
    service: str
    image: str
    ref: ImageRef
    owner: Optional[str] = None  # the compose service or the Helm key holding the image (a component's name, often)


@dataclass(frozen=True)
class Finding:
    """One difference between the release and a target."""

    target: str
    service: Optional[str]
    component: Optional[str]
    repository: str
    expected: Optional[str]
    found: Optional[str]
    reason: str
    blocking: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "service": self.service,
            "component": self.component,
            "repository": self.repository,
            "expected": self.expected,
            "found": self.found,
            "reason": self.reason,
            "blocking": self.blocking,
        }


@dataclass
class TargetImages:
    """The image references of one target file."""

    path: str
    kind: str
    uses: list[ImageUse] = field(default_factory=list)


@dataclass(frozen=True)
class TargetSummary:
    """What the report keeps of a target: its path, kind and number of image references."""

    path: str
    kind: str
    images: int


@dataclass
class AlignmentReport:
    """Findings of one release against its targets."""

    release: Release
    targets: list[TargetSummary]
    findings: list[Finding]
    strict: bool
    ignore_repos: tuple[str, ...]

    @property
    def aligned(self) -> bool:
        return not any(f.blocking for f in self.findings)

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(REASONS, 0)
        for finding in self.findings:
            counts[finding.reason] += 1
        return counts

    def message(self) -> str:
        blocking = [f for f in self.findings if f.blocking]
        if not blocking:
            extra = f" ({len(self.findings)} non-blocking finding(s))" if self.findings else ""
            return f"Release {self.release.release_id} is aligned with {len(self.targets)} target(s){extra}."
        first = blocking[0]
        return (
            f"Release {self.release.release_id} is not aligned: {len(blocking)} blocking finding(s) in "
            f"{len({f.target for f in blocking})} target(s); first: {first.target}: {first.service or first.repository}: "
            f"{first.reason} (expected {first.expected or 'nothing'}, found {first.found or 'nothing'})."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "aligned": self.aligned,
            "release_id": self.release.release_id,
            "release_path": self.release.source,
            "strict": self.strict,
            "ignore_repos": list(self.ignore_repos),
            "blocking_reasons": sorted(blocking_reasons(self.strict)),
            "targets": [{"path": t.path, "kind": t.kind, "images": t.images} for t in self.targets],
            "summary": self.summary(),
            "mismatches": [f.to_dict() for f in self.findings],
            "msg": self.message(),
        }


# --------------------------------------------------------------------------- reading targets


def is_compose(document: Any) -> bool:
    """A compose file: a ``services`` mapping of mappings and only compose top-level keys."""
    if not isinstance(document, dict) or not isinstance(document.get("services"), dict):
        return False
    if not all(isinstance(k, str) and (k in COMPOSE_TOP_LEVEL or k.startswith("x-")) for k in document):
        return False
    return all(v is None or isinstance(v, dict) for v in document["services"].values())


def _interpolate(text: str, where: str) -> str:
    """Resolve compose variables that carry a default (``${VAR:-default}``); others cannot be checked."""
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        if match.group(2) is None:
            name = match.group(1) or match.group(3)
            raise StellaOpsError(
                f"{where}: {text!r} uses the variable {name} without a default; write the image literally or as ${{VAR:-image}} so it can be checked.",
                kind="invalid",
            )
        return match.group(2)

    return _VARIABLE_RE.sub(replace, text.replace("$$", "\x00")).replace("\x00", "$")


class _RefCache:
    """Parses each distinct image string once."""

    def __init__(self) -> None:
        self._cache: dict[str, ImageRef] = {}

    def parse(self, image: str, where: str) -> ImageRef:
        ref = self._cache.get(image)
        if ref is None:
            try:
                ref = parse_image_ref(image, where)
            except StellaOpsError as err:
                raise StellaOpsError(str(err), kind="invalid") from None
            self._cache[image] = ref
        return ref


def _compose_uses(path: str, document: dict[str, Any], cache: _RefCache) -> Iterator[ImageUse]:
    for name, service in document["services"].items():
        if not service or "image" not in service:
            continue
        image = service["image"]
        where = f"{path}: services.{name}.image"
        if not isinstance(image, str):
            raise StellaOpsError(f"{where} must be a string, got {type(image).__name__} {image!r}.", kind="invalid")
        image = _interpolate(image, where)
        yield ImageUse(path, str(name), image, cache.parse(image, where), str(name))


def _scalar(value: Any, where: str) -> Optional[str]:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise StellaOpsError(f"{where} must be a string, got {type(value).__name__} {value!r}.", kind="invalid")
    return str(value)


def _helm_mapping_image(node: dict[str, Any], where: str) -> Optional[str]:
    repository = _scalar(node.get("repository"), f"{where}.repository")
    if repository is None:
        return None
    registry = _scalar(node.get("registry"), f"{where}.registry")
    tag = _scalar(node.get("tag"), f"{where}.tag")
    digest = _scalar(node.get("digest"), f"{where}.digest")
    image = f"{registry.rstrip('/')}/{repository}" if registry else repository
    if tag:
        image += f":{tag}"
    if digest and "@" not in image:
        image += f"@{digest}"
    return image


def _helm_uses(path: str, node: Any, parts: list[Any], cache: _RefCache) -> Iterator[ImageUse]:
    if isinstance(node, dict):
        for key, value in node.items():
            here = [*parts, key]
            if key == "image" and isinstance(value, (str, dict)):
                values_path = field_path(here)
                where = f"{path}: {values_path}"
                image = value if isinstance(value, str) else _helm_mapping_image(value, where)
                if image:
                    owner = parts[-1] if parts and isinstance(parts[-1], str) else None
                    yield ImageUse(path, values_path, image, cache.parse(image, where), owner)
                    continue
            if isinstance(value, (dict, list)):
                yield from _helm_uses(path, value, here, cache)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            if isinstance(value, (dict, list)):
                yield from _helm_uses(path, value, [*parts, index], cache)


def read_target(path: str, cache: Optional[_RefCache] = None) -> TargetImages:
    """Read one target file and list its image references in document order."""
    cache = cache or _RefCache()
    document = load_yaml_file(path, "alignment target")
    if document is None:
        return TargetImages(path, "helm")
    if not isinstance(document, dict):
        raise StellaOpsError(
            f"{path}: the document must be a mapping (compose file or Helm values), got {type(document).__name__}.",
            kind="invalid",
        )
    if is_compose(document):
        return TargetImages(path, "compose", list(_compose_uses(path, document, cache)))
    return TargetImages(path, "helm", list(_helm_uses(path, document, [], cache)))


# --------------------------------------------------------------------------- comparing


@dataclass(frozen=True)
class _Expected:
    """What the release says about one repository."""

    first: Component
    digests: frozenset[str]
    tags: frozenset[str]
    tags_by_digest: dict[str, frozenset[str]]


def _expected_by_repository(release: Release) -> dict[str, _Expected]:
    """What the release says, by normalised repository."""
    grouped: dict[str, list[Component]] = {}
    for component in release.images():
        grouped.setdefault(normalize_repository(component.repository), []).append(component)
    expected = {}
    for repository, components in grouped.items():
        pinned = [c for c in components if c.digest]
        tags_by_digest: dict[str, set[str]] = {}
        for component in pinned:
            if component.digest and component.tag:
                tags_by_digest.setdefault(component.digest, set()).add(component.tag)
        expected[repository] = _Expected(
            first=pinned[0] if pinned else components[0],
            digests=frozenset(c.digest for c in pinned if c.digest),
            tags=frozenset(c.tag or "latest" for c in components),
            tags_by_digest={digest: frozenset(tags) for digest, tags in tags_by_digest.items()},
        )
    return expected


def _reason(found: ImageRef, expected: _Expected) -> Optional[str]:
    if expected.digests:
        if found.digest is None:
            return "unpinned"
        if found.digest not in expected.digests:
            return "digest_mismatch"
        # The digest decides what runs, but a tag naming another version misleads whoever reads the target.
        release_tags = expected.tags_by_digest.get(found.digest)
        return "tag_mismatch" if found.tag is not None and release_tags and found.tag not in release_tags else None
    # The release names this repository by tag only (edge, non-strict): compare tags.
    if found.digest is None and (found.tag or "latest") not in expected.tags:
        return "digest_mismatch"
    return None


def check_alignment(
    release: Release,
    targets: Sequence[str],
    *,
    ignore_repos: Iterable[str] = (),
    strict: bool = False,
) -> AlignmentReport:
    """Compare every target with ``release``; unreadable or malformed targets raise ``StellaOpsError``."""
    if not targets:
        raise StellaOpsError("No alignment target given; pass at least one Helm values or compose file.", kind="usage")
    ignore = tuple(ignore_repos)
    blocking = blocking_reasons(strict)
    expected = _expected_by_repository(release)
    ignored: dict[str, bool] = {}

    ignore_full = frozenset(normalize_repository(name.strip("/")) for name in ignore if name.strip("/"))

    def is_ignored(repository: str) -> bool:
        """``repository`` is normalised; a name matches it whole (as Docker resolves it) or as its trailing path."""
        hit = ignored.get(repository)
        if hit is None:
            hit = ignored[repository] = repository in ignore_full or repo_matches(repository, ignore)
        return hit

    by_name = {component.name: component for component in release.images()}

    def moved(use: ImageUse) -> Optional[Component]:
        """The release component that ``use`` (a repository the release does not name) stands for: same name, else same last segment."""
        component = by_name.get(use.owner or "")
        if component is None:
            last = use.ref.repository.rsplit("/", 1)[-1]
            same = [c for c in release.images() if c.repository.rsplit("/", 1)[-1] == last]
            component = same[0] if len(same) == 1 else None
        return None if component is None or is_ignored(normalize_repository(component.repository)) else component

    cache = _RefCache()
    summaries: list[TargetSummary] = []
    findings: list[Finding] = []
    for path in targets:
        target = read_target(path, cache)
        summaries.append(TargetSummary(target.path, target.kind, len(target.uses)))
        seen: set[str] = set()
        for use in target.uses:
            repository = normalize_repository(use.ref.repository)
            if is_ignored(repository):
                continue
            want = expected.get(repository)
            component = moved(use) if want is None else None
            if component is not None:
                # the release takes this component from another repository: the target would run another image
                seen.add(normalize_repository(component.repository))
                reason = "repository_mismatch"
                findings.append(Finding(path, use.service, component.name, repository, component.image, use.image, reason, reason in blocking))
                continue
            if want is None:
                reason = "unknown_repository"
                findings.append(Finding(path, use.service, None, repository, None, use.image, reason, reason in blocking))
                continue
            seen.add(repository)
            reason_found = _reason(use.ref, want)
            if reason_found is not None:
                findings.append(
                    Finding(
                        path,
                        use.service,
                        want.first.name,
                        repository,
                        want.first.image,
                        use.image,
                        reason_found,
                        reason_found in blocking,
                    )
                )
        for repository, want in expected.items():
            if repository not in seen and not is_ignored(repository):
                reason = "missing_in_target"
                findings.append(Finding(path, None, want.first.name, repository, want.first.image, None, reason, reason in blocking))
    return AlignmentReport(release, summaries, findings, strict, ignore)
