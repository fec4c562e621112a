# SPDX-License-Identifier: GPL-3.0-or-later
"""Kubernetes configuration artifacts: the ConfigMaps and Secrets of a namespace.

Each kind is written to its own JSON file of mode 0600 (Secrets hold credentials);
what is returned and recorded in the manifest are names and counts only, never a
value. ``api`` is a ``kubernetes.client.CoreV1Api`` (or any object with the same
``list_namespaced_config_map``/``list_namespaced_secret`` methods and an
``api_client.sanitize_for_serialization``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from ..core.errors import StellaOpsError
from ..core.safe_load import read_json

KIND = "kubernetes_config"
_RESOURCES = {
    "ConfigMap": "list_namespaced_config_map",
    "Secret": "list_namespaced_secret",
}
# Fields the API server sets; they must not be sent back on a restore.
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "managedFields", "selfLink", "generation")


def clean_object(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    metadata = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_FIELDS}
    cleaned = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    cleaned["apiVersion"] = "v1"
    cleaned["kind"] = kind
    cleaned["metadata"] = metadata
    return cleaned


def export_namespace(api: Any, namespace: str, kinds: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Every object of ``kinds`` in ``namespace``, as plain dicts without server-set fields, sorted by name."""
    exported: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        method = _RESOURCES.get(kind)
        if method is None:
            raise StellaOpsError(f"Kubernetes kind {kind!r} is not supported; expected one of {', '.join(_RESOURCES)}.")
        try:
            result = getattr(api, method)(namespace=namespace)
        except Exception as err:  # noqa: BLE001 - ApiException, urllib3 errors: one sentence, no body
            status = getattr(err, "status", None)
            reason = getattr(err, "reason", None) or type(err).__name__
            detail = f"HTTP {status} {reason}" if status else reason
            raise StellaOpsError(f"Cannot list {kind} objects in namespace {namespace!r}: {detail}.") from err
        items = [api.api_client.sanitize_for_serialization(item) for item in result.items]
        exported[kind] = sorted((clean_object(i, kind) for i in items), key=lambda o: str(o["metadata"].get("name")))
    return exported


def write_private_json(path: str, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` created with mode 0600 (never briefly readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.chmod(path, 0o600)


def summary(exported: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Names and counts per kind: what a manifest and a module result may show."""
    return {
        kind: {"count": len(items), "names": [str(i["metadata"].get("name")) for i in items]}
        for kind, items in exported.items()
    }


def read_private_json(path: str) -> list[dict[str, Any]]:
    data = read_json(path, "Kubernetes configuration file")
    if not isinstance(data, list):
        raise StellaOpsError(f"{path} does not hold a list of Kubernetes objects.")
    return data
