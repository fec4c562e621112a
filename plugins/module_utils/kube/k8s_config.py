# SPDX-License-Identifier: GPL-3.0-or-later
"""Backup and restore of a namespace's ConfigMaps and Secrets as private files.

The export itself is ``_backup_kubernetes`` (also used by the backup sets). This adds what a
configuration backup before a Helm upgrade needs: helm's own release records and service-account
tokens stay out (restoring them would rewrite the release history or a token the cluster owns),
the files are compared with what is already there (a second backup changes nothing), and a restore
is planned by comparing each saved object with the live one, so only objects that differ are written.
No value of a Secret leaves this file: results carry kinds, names and counts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Optional

from ..backup.kubernetes import clean_object, export_namespace, read_private_json, write_private_json
from ..backup.sets import safe_name
from ..core.errors import StellaOpsError

KINDS = ("ConfigMap", "Secret")
# Objects the cluster or helm owns: never saved, never restored.
SKIPPED_SECRET_TYPES = ("helm.sh/release.v1", "kubernetes.io/service-account-token")
SKIPPED_NAMES = ("kube-root-ca.crt",)
# What a restore makes equal; everything else (server fields, status) is the cluster's.
_COMPARED = ("data", "binaryData", "stringData", "type", "immutable")
_API = {
    "ConfigMap": ("create_namespaced_config_map", "replace_namespaced_config_map", "list_namespaced_config_map"),
    "Secret": ("create_namespaced_secret", "replace_namespaced_secret", "list_namespaced_secret"),
}


def backup_file(directory: str, namespace: str, kind: str) -> str:
    return os.path.join(directory, f"kubernetes-{safe_name(namespace)}-{kind.lower()}s.json")


def kept(obj: dict[str, Any]) -> bool:
    name = str((obj.get("metadata") or {}).get("name", ""))
    return name not in SKIPPED_NAMES and str(obj.get("type", "")) not in SKIPPED_SECRET_TYPES


def export(api: Any, namespace: str, kinds: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The namespace's objects of ``kinds`` worth saving, without server-set fields."""
    try:
        exported = export_namespace(api, namespace, list(kinds))
    except StellaOpsError as err:
        if getattr(err.__cause__, "status", None) is None:
            raise StellaOpsError(f"{str(err).rstrip('.')}: the Kubernetes API server is unreachable; nothing was changed.") from None
        raise
    return {kind: [o for o in items if kept(o)] for kind, items in exported.items()}


def save(directory: str, namespace: str, exported: dict[str, list[dict[str, Any]]], check_mode: bool) -> list[str]:
    """Write each kind's file (mode 0600, directory 0700) unless it already holds the same objects; the files that change."""
    changed = []
    for kind, items in exported.items():
        path = backup_file(directory, namespace, kind)
        if os.path.isfile(path) and _same(read_private_json(path), items):
            continue
        changed.append(path)
        if not check_mode:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            write_private_json(path, items)
    return changed


def _same(a: Any, b: Any) -> bool:
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def load(directory: str, namespace: str, kinds: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """The saved objects of each kind; a missing file is one sentence."""
    loaded = {}
    for kind in kinds:
        path = backup_file(directory, namespace, kind)
        if not os.path.isfile(path):
            raise StellaOpsError(f"No {kind} backup of namespace {namespace} at {path}; expected a directory written by state=backup. Nothing was changed.")
        loaded[kind] = [o for o in read_private_json(path) if kept(o)]
    return loaded


@dataclass(frozen=True)
class RestoreStep:
    kind: str
    name: str
    action: str  # create, replace or unchanged
    resource_version: Optional[str] = None

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name, "action": self.action}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        **{k: obj.get(k) for k in _COMPARED if obj.get(k) not in (None, {}, [])},
        "labels": meta.get("labels") or {},
        "annotations": meta.get("annotations") or {},
    }


def plan_restore(saved: dict[str, list[dict[str, Any]]], live: dict[str, list[dict[str, Any]]]) -> list[RestoreStep]:
    """Per saved object: create it (missing), replace it (differs) or leave it (equal). Live objects not saved stay."""
    steps = []
    for kind, items in saved.items():
        current = {str(o["metadata"].get("name")): o for o in live.get(kind, [])}
        for obj in items:
            name = str(obj["metadata"].get("name"))
            there = current.get(name)
            if there is None:
                steps.append(RestoreStep(kind, name, "create"))
            elif _same(_comparable(clean_object(there, kind)), _comparable(obj)):
                steps.append(RestoreStep(kind, name, "unchanged"))
            else:
                steps.append(RestoreStep(kind, name, "replace", str(there["metadata"].get("resourceVersion") or "")))
    return steps


def live_objects(api: Any, namespace: str, kinds: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Live objects with their resourceVersion (needed to replace them)."""
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in kinds:
        try:
            result = getattr(api, _API[kind][2])(namespace=namespace)
        except Exception as err:  # noqa: BLE001 - ApiException, urllib3 errors: one sentence, no body
            raise StellaOpsError(f"Cannot list {kind} objects in namespace {namespace!r}: {_reason(err)}; nothing was changed.") from None
        found[kind] = [api.api_client.sanitize_for_serialization(item) for item in result.items]
    return found


def apply_restore(api: Any, namespace: str, saved: dict[str, list[dict[str, Any]]], steps: list[RestoreStep]) -> None:
    by_name = {(kind, str(o["metadata"].get("name"))): o for kind, items in saved.items() for o in items}
    for step in steps:
        if step.action == "unchanged":
            continue
        body = dict(by_name[(step.kind, step.name)])
        body["metadata"] = {**body["metadata"], "namespace": namespace}
        create, replace, _list = _API[step.kind]
        try:
            if step.action == "create":
                getattr(api, create)(namespace=namespace, body=body)
            else:
                body["metadata"]["resourceVersion"] = step.resource_version
                getattr(api, replace)(name=step.name, namespace=namespace, body=body)
        except Exception as err:  # noqa: BLE001 - ApiException: one sentence, never the body (it holds secrets)
            raise StellaOpsError(f"Cannot {step.action} {step.kind} {step.name} in namespace {namespace!r}: {_reason(err)}.") from None


def _reason(err: Exception) -> str:
    status = getattr(err, "status", None)
    reason = getattr(err, "reason", None) or type(err).__name__
    return f"HTTP {status} {reason}" if status else f"the API server is unreachable ({reason})"
