# SPDX-License-Identifier: GPL-3.0-or-later
"""Compose lock: a compose file with every image pinned to the digest of a release manifest.

``build_lock`` takes a compose template (``services:`` whose entries may lack ``image``) and a
release. A service takes the manifest component of its own name, or the one its
``x-stella-component`` key names; its ``image`` becomes ``repository@sha256:...``, it gets the
labels ``stella.release.id``, ``stella.component.name``, ``stella.digest``, ``stella.channel`` and
``stella.service.hash`` and the environment ``STELLA_RELEASE_ID`` and ``STELLA_DIGEST``; every other
key of the template is kept. The top-level ``x-stella-lock`` block records the release, its id and
channel, the promotion id, the template's sha256 and the lock's own digest: ``sha256:`` over the
canonical JSON of the whole document without that digest. Nothing depends on the clock, and YAML is
emitted with sorted keys, so the same inputs give a byte-identical file.

Templates are read with YAML 1.2 scalars, as Docker Compose reads them: ``8080:80`` stays a string
(YAML 1.1 would read a base-60 number), ``yes``/``no``/``on``/``off`` stay strings, dates stay text.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

from ..core.errors import StellaOpsError
from ..core.safe_load import HAS_YAML, parse_yaml, require_yaml
from ..release.manifest import Release
from .labels import CHANNEL_LABEL, COMPONENT_LABEL, DIGEST_LABEL, RELEASE_LABEL, SERVICE_HASH_LABEL

if HAS_YAML:
    import yaml

LOCK_KEY = "x-stella-lock"
COMPONENT_KEY = "x-stella-component"

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_FLOAT_RE = (
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)(?:[eE][-+]?[0-9]+)?|[-+]?[0-9]+[eE][-+]?[0-9]+"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)


@functools.cache
def compose_loader() -> Any:
    """A safe loader with YAML 1.2 core-schema scalars (what Compose's parser does)."""
    require_yaml("Compose locks")

    class ComposeLoader(yaml.SafeLoader):
        pass

    ComposeLoader.yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in (_INT, _FLOAT, _BOOL, _TIMESTAMP)]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    ComposeLoader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
    ComposeLoader.add_implicit_resolver(
        _INT, re.compile(r"^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
    )
    ComposeLoader.add_implicit_resolver(_FLOAT, re.compile(_FLOAT_RE), list("-+0123456789."))
    return ComposeLoader


@functools.cache
def _lock_dumper() -> Any:
    """Plain block YAML without anchors, so shared template parts are written out in full."""
    require_yaml("Compose locks")

    class LockDumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    return LockDumper


@dataclass
class LockStatus:
    """What ``check_lock`` found in a lock file."""

    valid: bool
    digest: Optional[str]
    computed: Optional[str]
    release_id: Optional[str]
    services: dict[str, dict[str, Any]] = field(default_factory=dict)


def parse_compose_yaml(text: str, source: str) -> Any:
    """A compose file as Compose reads it; anchors are allowed (templates share blocks), bounded in size and depth."""
    return parse_yaml(text, source, loader=compose_loader(), aliases=True)


def load_template(text: str, source: str) -> dict[str, Any]:
    """Parse a compose template and check its shape (a mapping with a ``services`` mapping of mappings)."""
    document = parse_compose_yaml(text, source)
    if not isinstance(document, dict):
        raise StellaOpsError(f"{source}: a compose template must be a mapping with a 'services' key.")
    services = document.get("services")
    if not isinstance(services, dict) or not services:
        raise StellaOpsError(f"{source}: field services must be a non-empty mapping of service names to definitions.")
    for name, service in services.items():
        if service is not None and not isinstance(service, dict):
            raise StellaOpsError(f"{source}: services.{name} must be a mapping, got {type(service).__name__}.")
    return document


def canonical_json(data: Any) -> str:
    try:
        return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as err:
        raise StellaOpsError(f"compose lock: the document holds a value that is not plain data: {err}.") from None


def _digest_of(data: Any) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def _as_mapping(value: Any, where: str, what: str) -> dict[str, Any]:
    """Compose allows ``labels``/``environment`` as a mapping or a list of ``KEY=value`` strings."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        result: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, str) or not item:
                raise StellaOpsError(f"{where}: every entry of {what} must be a 'KEY=value' string, got {item!r}.")
            key, sep, val = item.partition("=")
            # ``KEY`` alone passes the variable through from the host; null means the same in mapping form
            result[key] = val if sep else None
        return result
    raise StellaOpsError(f"{where}: {what} must be a mapping or a list of 'KEY=value' strings.")


def service_hash(service: Mapping[str, Any]) -> str:
    """Digest of one service definition, without its own hash label."""
    data = copy.deepcopy(dict(service))
    labels = data.get("labels")
    if isinstance(labels, dict):
        labels.pop(SERVICE_HASH_LABEL, None)
    return _digest_of(data)


def build_lock(
    release: Release,
    template: Mapping[str, Any],
    *,
    template_sha256: str,
    promotion_id: str = "",
    source: str = "compose template",
) -> dict[str, Any]:
    """The lock document for ``release`` (a ``_manifest.Release``) from a parsed template."""
    services = template.get("services")
    if not isinstance(services, dict) or not services:
        raise StellaOpsError(f"{source}: field services must be a non-empty mapping of service names to definitions.")
    lock: dict[str, Any] = {k: copy.deepcopy(v) for k, v in template.items() if k not in ("services", LOCK_KEY)}
    locked: dict[str, Any] = {}
    for name in sorted(services, key=str):
        definition = copy.deepcopy(services[name] or {})
        if not isinstance(definition, dict):
            raise StellaOpsError(f"{source}: services.{name} must be a mapping, got {type(definition).__name__}.")
        where = f"{source}: services.{name}"
        component_name = definition.pop(COMPONENT_KEY, name)
        component = release.component(str(component_name))
        if component is None:
            known = ", ".join(c.name for c in release.images())
            via = f" (named by {COMPONENT_KEY})" if component_name != name else ""
            raise StellaOpsError(
                f"{source}: service {name} has no component {component_name!r}{via} in release {release.release_id} "
                f"({release.source}); components: {known}."
            )
        if not component.digest:
            raise StellaOpsError(
                f"{release.source}: component {component.name} image {component.image!r} is not pinned by digest; "
                f"a compose lock needs repository@sha256:<64 hex> (service {name} of {source})."
            )
        definition["image"] = f"{component.repository}@{component.digest}"
        labels = _as_mapping(definition.get("labels"), where, "labels")
        labels.update(
            {
                RELEASE_LABEL: release.release_id,
                COMPONENT_LABEL: component.name,
                DIGEST_LABEL: component.digest,
                CHANNEL_LABEL: release.channel,
            }
        )
        labels.pop(SERVICE_HASH_LABEL, None)
        definition["labels"] = labels
        environment = _as_mapping(definition.get("environment"), where, "environment")
        environment.update({"STELLA_RELEASE_ID": release.release_id, "STELLA_DIGEST": component.digest})
        definition["environment"] = environment
        labels[SERVICE_HASH_LABEL] = service_hash(definition)
        locked[str(name)] = definition
    lock["services"] = locked
    lock[LOCK_KEY] = {
        "release": release.version,
        "release_id": release.release_id,
        "channel": release.channel,
        "promotion_id": promotion_id or "",
        "template_sha256": template_sha256,
        "digest": "",
    }
    lock[LOCK_KEY]["digest"] = lock_digest(lock)
    return lock


def lock_digest(lock: Mapping[str, Any]) -> str:
    """``sha256:`` over the canonical JSON of the document without ``x-stella-lock.digest``."""
    data = copy.deepcopy(dict(lock))
    meta = data.get(LOCK_KEY)
    if isinstance(meta, dict):
        meta.pop("digest", None)
    return _digest_of(data)


def render_lock(lock: Mapping[str, Any]) -> str:
    """The lock as deterministic YAML (sorted keys, block style), with a short header comment."""
    meta = lock.get(LOCK_KEY) or {}
    header = (
        f"# Compose lock of release {meta.get('release_id', '?')}: images pinned by digest.\n"
        "# Do not edit: any change breaks x-stella-lock.digest and is reported as tampering.\n"
    )
    body = yaml.dump(
        dict(lock), Dumper=_lock_dumper(), sort_keys=True, default_flow_style=False, allow_unicode=True, width=1 << 16
    )
    return header + body


def services_summary(lock: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Service name -> image, component, digest and service hash, read from a lock document."""
    summary: dict[str, dict[str, Any]] = {}
    services = lock.get("services")
    if not isinstance(services, dict):
        return summary
    for name, service in services.items():
        if not isinstance(service, dict):
            continue
        raw_labels = service.get("labels")
        labels: dict[str, Any] = raw_labels if isinstance(raw_labels, dict) else {}
        image = service.get("image")
        summary[str(name)] = {
            "image": image,
            "component": labels.get(COMPONENT_LABEL),
            "digest": labels.get(DIGEST_LABEL) or (image.split("@", 1)[1] if isinstance(image, str) and "@" in image else None),
            "service_hash": labels.get(SERVICE_HASH_LABEL),
        }
    return summary


def check_lock(text: str, source: str) -> LockStatus:
    """Whether a lock file still matches its own digest (False also for text that is not a lock)."""
    try:
        document = parse_compose_yaml(text, source)
    except StellaOpsError:
        return LockStatus(valid=False, digest=None, computed=None, release_id=None)
    if not isinstance(document, dict):
        return LockStatus(valid=False, digest=None, computed=None, release_id=None)
    meta = document.get(LOCK_KEY)
    meta = meta if isinstance(meta, dict) else {}
    recorded = meta.get("digest") if isinstance(meta.get("digest"), str) else None
    try:
        computed: Optional[str] = lock_digest(document)
    except StellaOpsError:
        computed = None
    return LockStatus(
        valid=recorded is not None and recorded == computed,
        digest=recorded,
        computed=computed,
        release_id=meta.get("release_id"),
        services=services_summary(document),
    )


def require_intact_lock(text: str, source: str) -> LockStatus:
    """``check_lock``, raising one sentence when the text is not a lock that matches its own digest."""
    status = check_lock(text, source)
    if not status.valid:
        raise StellaOpsError(
            f"{source}: the compose lock does not match its own digest (recorded {status.digest}, computed {status.computed}); "
            "render it again with stellaops.deploy.compose_lock or pass manifest and template."
        )
    return status


def image_changes(old_lock: Optional[Mapping[str, Any]], new_lock: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Services whose image differs between two locks (added: before null; removed: after null), by name."""
    before = services_summary(old_lock or {})
    after = services_summary(new_lock)
    changes = []
    for name in sorted(set(before) | set(after)):
        old_image = before.get(name, {}).get("image")
        new_image = after.get(name, {}).get("image")
        if old_image != new_image:
            changes.append({"service": name, "before": old_image, "after": new_image})
    return changes
