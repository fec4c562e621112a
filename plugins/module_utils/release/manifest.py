# SPDX-License-Identifier: GPL-3.0-or-later
"""Release manifests: ``deploy/releases/<version>-<channel>.yaml``.

A manifest is validated against the JSON Schema in ``_manifest_schema`` (the one published in
``docs/schemas``), then every image reference is parsed. ``strict`` additionally rejects unknown
keys, duplicate YAML keys, two components on the same repository and unpinned images in any channel.
Every error is a ``StellaOpsError`` with one sentence naming the file and the field;
``details['kind']`` is ``'unreadable'`` when the file cannot be read at all and ``'invalid'`` otherwise.
"""

from __future__ import annotations

import datetime
import os
import re
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..core.errors import StellaOpsError
from ..core.safe_load import HAS_YAML, YAML_IMPORT_ERROR, read_text, require_yaml
from ..core.safe_load import parse_yaml as parse_bounded_yaml
from .image_ref import ImageRef, parse_image_ref
from .manifest_schema import CHANNELS, PINNED_CHANNELS, UPGRADE_FACTS, release_schema

if HAS_YAML:
    import yaml

try:
    import jsonschema

    HAS_JSONSCHEMA = True
    JSONSCHEMA_IMPORT_ERROR: Optional[ImportError] = None
except ImportError as exc:  # pragma: no cover - jsonschema is a pinned requirement
    HAS_JSONSCHEMA = False
    JSONSCHEMA_IMPORT_ERROR = exc

__all__ = [
    "CHANNELS",
    "Component",
    "Release",
    "find_manifest",
    "list_manifests",
    "load_manifest",
    "newest_manifest",
    "parse_manifest",
    "load_yaml_file",
    "version_key",
    "HAS_YAML",
    "YAML_IMPORT_ERROR",
    "read_text",
    "HAS_JSONSCHEMA",
]

_FILE_RE = re.compile(r"(?P<version>.+)-(?P<channel>[a-z]+)\.ya?ml")
_LOADERS: dict[bool, Any] = {}


def _loader(strict: bool) -> Any:
    """The safe YAML loader (libyaml's when present); the strict one refuses repeated mapping keys."""
    require_yaml("Reading YAML")
    if strict not in _LOADERS:
        base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        if not strict:
            _LOADERS[strict] = base
        else:

            class StrictLoader(base):
                def construct_mapping(self, node: Any, deep: bool = False) -> Any:
                    seen: set[Any] = set()
                    for key_node, _value_node in node.value:
                        key = key_node.value
                        if key in seen:
                            raise yaml.constructor.ConstructorError(
                                None, None, f"duplicate key {key!r} (strict mode refuses repeated keys)", key_node.start_mark
                            )
                        seen.add(key)
                    return super().construct_mapping(node, deep=deep)

            _LOADERS[strict] = StrictLoader
    return _LOADERS[strict]


def _invalid(message: str) -> StellaOpsError:
    return StellaOpsError(message, kind="invalid")


def _unreadable(message: str) -> StellaOpsError:
    return StellaOpsError(message, kind="unreadable")


def parse_yaml(text: str, source: str, *, strict: bool = False, aliases: bool = False) -> Any:
    """Parse YAML text, bounded in depth and size (``core.safe_load``); anchors and aliases only with ``aliases``."""
    return parse_bounded_yaml(text, source, loader=_loader(strict), aliases=aliases)


def load_yaml_file(path: str, what: str = "file", *, strict: bool = False) -> Any:
    """Read and parse one YAML file that may use anchors (alignment targets: compose files, Helm values)."""
    return parse_yaml(read_text(path, what), path, strict=strict, aliases=True)


@dataclass(frozen=True)
class Component:
    """One image of a release: a platform component or an infrastructure service."""

    name: str
    image: str
    repository: str
    digest: Optional[str]
    tag: Optional[str]

    @property
    def pinned(self) -> bool:
        return self.digest is not None

    @property
    def ref(self) -> ImageRef:
        return ImageRef(self.repository, self.tag, self.digest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "image": self.image,
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "pinned": self.pinned,
        }


@dataclass(frozen=True)
class Migration:
    """A database migration a release adds: A runs at startup, B after review."""

    id: str
    category: str
    name: Optional[str] = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "category": self.category, "name": self.name}


@dataclass(frozen=True)
class Release:
    """A validated, normalized release manifest.

    The upgrade path, database and evidence fields are None when the manifest does not say them
    (allowed outside strict mode, and on edge).
    """

    version: str
    channel: str
    date: Optional[str]
    components: tuple[Component, ...]
    infrastructure: tuple[Component, ...]
    source: str
    upgrades_from: Optional[tuple[str, ...]] = None
    schema_version: Optional[int] = None
    min_schema_version: Optional[int] = None
    migrations: tuple[Migration, ...] = ()
    evidence_schema_version: Optional[int] = None

    @property
    def release_id(self) -> str:
        return f"{self.version}-{self.channel}"

    def component(self, name: str) -> Optional[Component]:
        """The platform component called ``name`` (infrastructure services are looked up too)."""
        for item in self.components:
            if item.name == name:
                return item
        for item in self.infrastructure:
            if item.name == name:
                return item
        return None

    def images(self) -> tuple[Component, ...]:
        """Components then infrastructure services."""
        return self.components + self.infrastructure

    def to_dict(self) -> dict[str, Any]:
        return {
            "release_id": self.release_id,
            "version": self.version,
            "channel": self.channel,
            "date": self.date,
            "path": self.source,
            "source": self.source,
            "components": [c.to_dict() for c in self.components],
            "infrastructure": [c.to_dict() for c in self.infrastructure],
            "upgrade": None if self.upgrades_from is None else {"from": list(self.upgrades_from)},
            "database": None
            if self.schema_version is None
            else {
                "schema_version": self.schema_version,
                "min_schema_version": self.min_schema_version,
                "migrations": [m.to_dict() for m in self.migrations],
            },
            "evidence": None if self.evidence_schema_version is None else {"schema_version": self.evidence_schema_version},
        }


# --------------------------------------------------------------------------- schema errors

_TYPE_NAMES = {
    "string": "a string",
    "object": "a mapping",
    "array": "a list",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}
_VALIDATORS: dict[bool, Any] = {}


def _validator(strict: bool) -> Any:
    if not HAS_JSONSCHEMA:
        raise StellaOpsError(
            f"Validating release manifests needs the Python library jsonschema ({JSONSCHEMA_IMPORT_ERROR}); install it with 'pip install jsonschema'.",
            kind="unreadable",
        )
    if strict not in _VALIDATORS:
        schema = release_schema(strict)
        cls = jsonschema.validators.validator_for(schema)
        _VALIDATORS[strict] = cls(_inline_refs(schema, schema.get("$defs", {})))
    return _VALIDATORS[strict]


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    """The same schema with local ``#/$defs/`` references replaced by their target (twice as fast to apply)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if len(node) == 1 and isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in defs:
            return _inline_refs(defs[ref[8:]], defs)
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "a date"
    return type(value).__name__


def field_path(parts: Iterable[Any]) -> str:
    """``['release', 'components', 2, 'image']`` -> ``release.components[2].image``."""
    text = ""
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "the document"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _describe(err: Any, source: str, pin_reason: str) -> str:
    path = list(err.absolute_path)
    field = field_path(path)
    validator = err.validator
    instance = err.instance
    if validator == "required" and isinstance(instance, dict):
        missing = [key for key in err.validator_value if key not in instance]
        name = field_path([*path, missing[0] if missing else "?"])
        if path == ["release"] and missing and missing[0] in UPGRADE_FACTS:
            return (
                f"{source}: {name} is missing; strict mode requires upgrade, database and evidence on the "
                f"{instance.get('channel')} channel (docs/upgrade-paths.md)."
            )
        return f"{source}: {name} is missing; it is required."
    if validator == "type":
        expected = err.validator_value
        names = " or ".join(_TYPE_NAMES.get(str(t), str(t)) for t in (expected if isinstance(expected, list) else [expected]))
        hint = " (quote it in YAML)" if expected == "string" and isinstance(instance, (int, float, datetime.date)) else ""
        return f"{source}: {field} must be {names}, got {_kind(instance)} {_short(instance)}{hint}."
    if validator == "enum":
        choices = ", ".join(str(c) for c in err.validator_value)
        return f"{source}: {field} is {_short(instance)}; expected one of {choices}."
    if validator == "additionalProperties" and isinstance(instance, dict):
        known = set(err.schema.get("properties", {}))
        extra = sorted(str(k) for k in instance if k not in known)
        allowed = ", ".join(sorted(known))
        return f"{source}: {field} has unknown field {extra[0] if extra else '?'!r}; allowed fields: {allowed}."
    if validator == "minItems":
        return f"{source}: {field} must list at least {err.validator_value} item(s)."
    if validator == "propertyNames" or (validator == "pattern" and "propertyNames" in err.absolute_schema_path):
        return f"{source}: {field} has an invalid name {_short(instance)}; expected lowercase letters, digits, '.', '_' or '-'."
    if validator == "pattern" and path and path[-1] == "image":
        parse_image_ref(instance, f"{source}: {field}")  # raises the precise reason when malformed
        return f"{source}: {field} {instance!r} is not pinned by digest; expected repository@sha256:<64 hex> ({pin_reason})."
    if validator == "pattern":
        description = err.schema.get("description", f"a value matching {err.validator_value}")
        return f"{source}: {field} is {_short(instance)}; expected {description[0].lower()}{description[1:].rstrip('.')}."
    return f"{source}: {field}: {err.message}."


def _schema_check(document: Any, source: str, strict: bool) -> None:
    validator = _validator(strict)
    try:
        errors = list(validator.iter_errors(document))
    except (RecursionError, TypeError, ValueError) as err:
        raise _invalid(f"{source}: cannot validate the manifest: {type(err).__name__}.") from None
    if not errors:
        return
    best = jsonschema.exceptions.best_match(errors)
    release = document.get("release") if isinstance(document, dict) else None
    channel = release.get("channel") if isinstance(release, dict) else None
    pin_reason = "strict mode requires digests" if strict else f"channel {channel} requires digests"
    try:
        message = _describe(best, source, pin_reason)
    except StellaOpsError as err:
        raise _invalid(str(err)) from None
    raise _invalid(message)


# --------------------------------------------------------------------------- loading


def _normalize_date(release: Any) -> None:
    if isinstance(release, dict):
        value = release.get("date")
        if isinstance(value, datetime.datetime):
            text = value.isoformat()
            release["date"] = text[:-6] + "Z" if text.endswith("+00:00") else text
        elif isinstance(value, datetime.date):
            release["date"] = value.isoformat()


def _component(name: str, image: str, where: str) -> Component:
    ref = parse_image_ref(image, where)
    return Component(name=name, image=image, repository=ref.repository, digest=ref.digest, tag=ref.tag)


def parse_manifest(text: str, source: str, *, strict: bool = False, channel: Optional[str] = None) -> Release:
    """Parse and validate manifest text; ``channel`` is the channel the caller expects."""
    if channel is not None and channel not in CHANNELS:
        raise StellaOpsError(f"Expected channel {channel!r} is unknown; expected one of {', '.join(CHANNELS)}.", kind="usage")
    document = parse_yaml(text, source, strict=strict)
    if document is None:
        raise _invalid(f"{source}: the manifest is empty; expected a mapping with a 'release' key.")
    if isinstance(document, dict):
        _normalize_date(document.get("release"))
    _schema_check(document, source, strict)
    data = document["release"]
    found_channel = data["channel"]
    if channel is not None and found_channel != channel:
        raise _invalid(f"{source}: release.channel is {found_channel!r}; expected {channel!r}.")
    try:
        components = []
        names: dict[str, int] = {}
        for index, item in enumerate(data["components"]):
            name = item["name"]
            if name in names:
                raise _invalid(
                    f"{source}: release.components[{index}].name {name!r} duplicates release.components[{names[name]}]; component names must be unique."
                )
            names[name] = index
            components.append(_component(name, item["image"], f"{source}: release.components[{index}].image"))
        infrastructure = [
            _component(str(name), item["image"], f"{source}: release.infrastructure.{name}.image") for name, item in (data.get("infrastructure") or {}).items()
        ]
    except StellaOpsError as err:
        raise _invalid(str(err)) from None
    pin_required = strict or found_channel in PINNED_CHANNELS
    seen_repos: dict[str, str] = {}
    for index, comp in enumerate(components + infrastructure):
        field = f"release.components[{index}]" if index < len(components) else f"release.infrastructure.{comp.name}"
        if pin_required and not comp.pinned:
            raise _invalid(
                f"{source}: {field}.image {comp.image!r} is not pinned by digest; "
                f"expected repository@sha256:<64 hex> ({'strict mode' if strict else 'channel ' + found_channel})."
            )
        if strict and comp.repository in seen_repos:
            raise _invalid(
                f"{source}: {field}.image uses repository {comp.repository!r} already used by {seen_repos[comp.repository]}; "
                "strict mode allows each repository once."
            )
        seen_repos.setdefault(comp.repository, field)
    database = data.get("database") or {}
    migrations = _migrations(database, source)
    upgrade = data.get("upgrade")
    return Release(
        version=data["version"],
        channel=found_channel,
        date=data.get("date"),
        components=tuple(components),
        infrastructure=tuple(infrastructure),
        source=source,
        upgrades_from=None if upgrade is None else tuple(upgrade["from"]),
        schema_version=database.get("schema_version"),
        min_schema_version=database.get("min_schema_version"),
        migrations=migrations,
        evidence_schema_version=(data.get("evidence") or {}).get("schema_version"),
    )


def _migrations(database: dict[str, Any], source: str) -> tuple[Migration, ...]:
    """The migrations of release.database, after the checks a schema cannot say: ids once, minimum at most the version."""
    if database and database["min_schema_version"] > database["schema_version"]:
        raise _invalid(
            f"{source}: release.database.min_schema_version {database['min_schema_version']} is above schema_version "
            f"{database['schema_version']}; the release's code cannot need a schema newer than its own migrations make."
        )
    found: dict[str, int] = {}
    migrations = []
    for index, item in enumerate(database.get("migrations") or []):
        if item["id"] in found:
            raise _invalid(f"{source}: release.database.migrations[{index}].id {item['id']!r} repeats migrations[{found[item['id']]}]; ids are unique.")
        found[item["id"]] = index
        migrations.append(Migration(id=item["id"], category=item["category"], name=item.get("name")))
    return tuple(migrations)


def load_manifest(path: str, *, strict: bool = False, channel: Optional[str] = None) -> Release:
    """Read, parse and validate one manifest file."""
    text = read_text(path, "release manifest")
    release = parse_manifest(text, path, strict=strict, channel=channel)
    match = _FILE_RE.fullmatch(os.path.basename(path))
    if match and match.group("channel") in CHANNELS:
        for field in ("channel", "version"):
            named = match.group(field)
            if named != getattr(release, field):
                raise _invalid(
                    f"{path}: release.{field} is {getattr(release, field)!r} but the file name says {named!r}; name the file <version>-<channel>.yaml."
                )
    return release


def version_key(version: str) -> tuple[tuple[int, ...], int, str]:
    """Sort key: numeric parts compared as numbers (2025.10.0 > 2025.9.3); a -suffix sorts before the release."""
    main, _sep, suffix = version.partition("-")
    numbers = tuple(int(part) if part.isdigit() else -1 for part in main.split("."))
    return numbers, 0 if suffix else 1, suffix


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise StellaOpsError(f"Channel {channel!r} is unknown; expected one of {', '.join(CHANNELS)}.", kind="usage")


def list_manifests(directory: str, channel: str, *, strict: bool = False) -> list[Release]:
    """The manifests ``<version>-<channel>.yaml`` of ``directory``, oldest version first."""
    _check_channel(channel)
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        raise _unreadable(f"{directory}: release manifest directory not found.") from None
    except NotADirectoryError:
        raise _unreadable(f"{directory}: is not a directory of release manifests.") from None
    except PermissionError:
        raise _unreadable(f"{directory}: release manifest directory is not readable (permission denied).") from None
    releases: list[Release] = []
    by_version: dict[str, str] = {}
    for name in names:
        if not (name.endswith((f"-{channel}.yaml", f"-{channel}.yml"))):
            continue
        path = os.path.join(directory, name)
        release = load_manifest(path, strict=strict, channel=channel)
        if release.version in by_version:
            raise _invalid(f"{path}: release.version {release.version!r} is also released by {by_version[release.version]}.")
        by_version[release.version] = path
        releases.append(release)
    releases.sort(key=lambda r: version_key(r.version))
    return releases


def newest_manifest(directory: str, channel: str, *, strict: bool = False) -> Release:
    """The manifest with the highest version on ``channel``."""
    releases = list_manifests(directory, channel, strict=strict)
    if not releases:
        raise _unreadable(f"{directory}: no release manifest <version>-{channel}.yaml for channel {channel!r}.")
    return releases[-1]


def find_manifest(directory: str, channel: str, version: str, *, strict: bool = False) -> Release:
    """The manifest of ``version`` on ``channel``; the error lists the versions available."""
    releases = list_manifests(directory, channel, strict=strict)
    for release in releases:
        if release.version == version:
            return release
    available = ", ".join(r.version for r in releases) or "none"
    raise _unreadable(f"{directory}: no release manifest for version {version!r} on channel {channel!r}; available: {available}.")
