# SPDX-License-Identifier: GPL-3.0-or-later
"""The JSON Schema (draft 2020-12) of a release manifest.

This dictionary is the single source: the loader validates every manifest against it,
and ``tools/export-release-schema`` writes it to ``docs/schemas/release-manifest.schema.json``
(and the strict variant to ``release-manifest.strict.schema.json``); a unit test fails
when the published files differ from it. It lives in Python, not only in ``docs/``, because
modules travel to the managed host without the collection's other files.
"""

from __future__ import annotations

import copy
from typing import Any

from .image_ref import IMAGE_PATTERN, PINNED_IMAGE_PATTERN

CHANNELS: tuple[str, ...] = ("edge", "stable", "airgap")
PINNED_CHANNELS: tuple[str, ...] = ("stable", "airgap")
# What a release says of its upgrade path, database and evidence: strict mode requires them on the pinned channels.
UPGRADE_FACTS: tuple[str, ...] = ("upgrade", "database", "evidence")


_TEXT_END = r"$(?!\n)"


def whole_text(pattern: str) -> str:
    """A ``^...$`` pattern that ends at the very end of the text in Python as in ECMA-262 (JSON Schema's dialect).

    Python's ``$`` also matches just before a final newline, so ``^[0-9.]+$`` accepts ``"2025.10.0\\n"``;
    ``$(?!\\n)`` refuses that and means the same as ``$`` to an ECMA-262 validator.
    """
    if pattern.endswith(_TEXT_END):
        return pattern
    return (pattern[:-1] if pattern.endswith("$") else pattern) + _TEXT_END


VERSION_PATTERN = whole_text(r"^[0-9]+(\.[0-9]+){1,3}(-[0-9A-Za-z][0-9A-Za-z.]*)?$")
NAME_PATTERN = whole_text(r"^[a-z0-9][a-z0-9._-]{0,62}$")
MIGRATION_ID_PATTERN = whole_text(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DATE_PATTERN = whole_text(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?$")
SCHEMA_ID = "https://stella-ops.org/schemas/release-manifest.schema.json"
STRICT_SCHEMA_ID = "https://stella-ops.org/schemas/release-manifest.strict.schema.json"

_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "Stella Ops release manifest",
    "description": (
        "One release of the Stella Ops platform on one channel: deploy/releases/<version>-<channel>.yaml. "
        "In the stable and airgap channels every image is pinned by digest."
    ),
    "type": "object",
    "required": ["release"],
    "properties": {
        "release": {
            "type": "object",
            "description": "The release: its version, channel, date, components and pinned infrastructure.",
            "required": ["version", "channel", "components"],
            "properties": {
                "version": {
                    "type": "string",
                    "pattern": VERSION_PATTERN,
                    "description": "Release version such as 2025.10.0 (numbers and dots, optional -suffix); quote it in YAML.",
                },
                "channel": {
                    "type": "string",
                    "enum": list(CHANNELS),
                    "description": "Release channel: edge, stable or airgap.",
                },
                "date": {
                    "type": "string",
                    "pattern": DATE_PATTERN,
                    "description": "Release date, ISO 8601 (2025-10-01T00:00:00Z).",
                },
                "components": {
                    "type": "array",
                    "minItems": 1,
                    "description": "The platform's own components; names are unique.",
                    "items": {"$ref": "#/$defs/component"},
                },
                "infrastructure": {
                    "type": "object",
                    "description": "Pinned third-party services, by name (postgres, mongo, minio...).",
                    "propertyNames": {"pattern": NAME_PATTERN},
                    "additionalProperties": {"$ref": "#/$defs/service"},
                },
                "upgrade": {
                    "type": "object",
                    "description": "How a running deployment reaches this release. Required on stable and airgap in strict mode.",
                    "required": ["from"],
                    "properties": {
                        "from": {
                            "type": "array",
                            "uniqueItems": True,
                            "items": {"type": "string", "pattern": VERSION_PATTERN},
                            "description": (
                                "Versions that upgrade directly to this release (empty: a new installation only); "
                                "any other version goes through the releases of the channel first."
                            ),
                        },
                    },
                },
                "database": {
                    "type": "object",
                    "description": "The platform database this release needs. Required on stable and airgap in strict mode.",
                    "required": ["schema_version", "min_schema_version"],
                    "properties": {
                        "schema_version": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "Schema version of the database once this release's migrations ran.",
                        },
                        "min_schema_version": {
                            "type": "integer",
                            "minimum": 0,
                            "description": "Oldest schema version this release's code runs on (at most schema_version).",
                        },
                        "migrations": {
                            "type": "array",
                            "description": "Migrations this release adds, in the order they run; ids are unique.",
                            "items": {"$ref": "#/$defs/migration"},
                        },
                    },
                },
                "evidence": {
                    "type": "object",
                    "description": "The evidence store this release writes. Required on stable and airgap in strict mode.",
                    "required": ["schema_version"],
                    "properties": {
                        "schema_version": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "Evidence schema version; a change recomputes Merkle roots (OCI digests and SBOM hashes never change).",
                        },
                    },
                },
            },
            "allOf": [
                {
                    "if": {"required": ["channel"], "properties": {"channel": {"enum": list(PINNED_CHANNELS)}}},
                    "then": {
                        "properties": {
                            "components": {"items": {"properties": {"image": {"$ref": "#/$defs/pinnedImage"}}}},
                            "infrastructure": {
                                "additionalProperties": {"properties": {"image": {"$ref": "#/$defs/pinnedImage"}}}
                            },
                        }
                    },
                }
            ],
        }
    },
    "$defs": {
        "image": {
            "type": "string",
            "pattern": whole_text(IMAGE_PATTERN),
            "description": "Image reference [registry[:port]/]path[:tag][@sha256:<64 hex>].",
        },
        "pinnedImage": {
            "type": "string",
            "pattern": whole_text(PINNED_IMAGE_PATTERN),
            "description": "Image reference pinned by digest: [registry[:port]/]path[:tag]@sha256:<64 hex>.",
        },
        "component": {
            "type": "object",
            "required": ["name", "image"],
            "properties": {
                "name": {
                    "type": "string",
                    "pattern": NAME_PATTERN,
                    "description": "Component name: lowercase letters, digits, '.', '_' or '-'.",
                },
                "image": {"$ref": "#/$defs/image"},
            },
        },
        "service": {
            "type": "object",
            "required": ["image"],
            "properties": {"image": {"$ref": "#/$defs/image"}},
        },
        "migration": {
            "type": "object",
            "required": ["id", "category"],
            "properties": {
                "id": {"type": "string", "pattern": MIGRATION_ID_PATTERN, "description": "Migration id, as the migrations table records it."},
                "name": {"type": "string", "description": "What the migration does."},
                "category": {
                    "type": "string",
                    "enum": ["A", "B"],
                    "description": "A: runs at startup, backward compatible. B: applied after review; may break the previous release.",
                },
            },
        },
    },
}


def _close_objects(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close_objects(value)
    elif isinstance(node, list):
        for value in node:
            _close_objects(value)


def release_schema(strict: bool = False) -> dict[str, Any]:
    """A fresh copy of the schema; ``strict`` closes every object and requires digests in every channel."""
    schema = copy.deepcopy(_SCHEMA)
    if strict:
        schema["$id"] = STRICT_SCHEMA_ID
        schema["title"] += " (strict)"
        schema["description"] += (
            " Strict: no unknown keys, every image is pinned by digest in every channel, and stable and airgap"
            " releases say their upgrade path, database schema and evidence schema."
        )
        _close_objects(schema)
        schema["$defs"]["image"] = copy.deepcopy(schema["$defs"]["pinnedImage"])
        schema["properties"]["release"]["allOf"].append(
            {
                "if": {"required": ["channel"], "properties": {"channel": {"enum": list(PINNED_CHANNELS)}}},
                "then": {"required": list(UPGRADE_FACTS)},
            }
        )
    return schema
