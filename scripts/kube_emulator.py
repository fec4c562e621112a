# SPDX-License-Identifier: GPL-3.0-or-later
"""A Kubernetes API emulator for tests: helm 3.18/4.1, the `kubernetes` client and kubernetes.core run against it.

It is an emulator, not a cluster: no Pods run, no images are pulled, there is no scheduler, no
admission webhook, no RBAC and no OpenAPI schema. It stores objects in memory and answers the API
calls that those clients make. Built on kmock 0.8 (its HTTP server, its watch bus and its Status
errors); the Kubernetes write semantics are written here. /work/shared/KUBERNETES-EMULATOR.md in the
development notes and docs/development.md list what was verified and what is not emulated.

    kube_emulator.py --port 0 --ready --port-file P --kubeconfig K

Plain HTTP on 127.0.0.1 only; any bearer token is accepted.

- Writes: POST, PUT, PATCH (merge, strategic merge, JSON patch, server-side apply, which creates a
  missing object), DELETE and deletecollection, `dryRun=All`, uid/resourceVersion/generation,
  409 on a name in use or a stale resourceVersion, the `status` subresource, the `scale` subresource of
  Deployments, ReplicaSets and StatefulSets (what kubectl scale and kubernetes.core.k8s_scale use), 404 on a create in a
  namespace that does not exist (a real API server's NamespaceLifecycle admission).
- Helm's release Secrets arrive as protobuf; they are decoded (Secret and ConfigMap only).
- Reads: discovery, label and field selectors, `<Kind>List` with a numeric resourceVersion,
  newline-delimited JSON watch (also watch-list: initial events, then the bookmark
  `k8s.io/initial-events-end`), `timeoutSeconds`.
- 422 Invalid: a name that is not a lowercase RFC 1123 name, and any object carrying the annotation
  `kube-emulator/reject: "<reason>"` (a documented way to make a test object be rejected).
- `--ready` fakes the controllers when an object is written: a Deployment gets a ready status and
  an owned ReplicaSet, StatefulSet/DaemonSet/ReplicaSet a ready status, a PVC is Bound, a Job is
  Complete, or Failed (BackoffLimitExceeded) when annotated `kube-emulator/job-outcome: failed`.
  Without it nothing becomes ready, so `helm --wait` times out.
- A Job annotated `kube-emulator/run: docker` (with `--ready`) really runs: its first container, once, as
  `docker run --rm --network host` on the machine's engine (image, command, args, env and envFrom of
  ConfigMaps and Secrets, the values in an env file of mode 0600, never on the command line), within
  activeDeadlineSeconds (600 s when unset). The exit code decides Complete or Failed; the output goes to
  the emulator's log. A Job deleted while it runs has its container removed; the containers carry the label
  kube-emulator.pid=<pid>. No Pod object is made and backoffLimit is not honoured.
- A CustomResourceDefinition that is created declares its resource (and is Established at once).

Stopping: SIGTERM and SIGINT end it; callers kill the PID they recorded and send SIGKILL when it is
still there after 1 s (open watch streams can hold the server's shutdown).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import copy
import datetime
import hashlib
import itertools
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import jsonpatch
import kmock
import yaml

REJECT_ANNOTATION = "kube-emulator/reject"
JOB_OUTCOME_ANNOTATION = "kube-emulator/job-outcome"
RUN_ANNOTATION = "kube-emulator/run"
# A Job with no activeDeadlineSeconds runs this long at most in docker.
JOB_DEADLINE_SECONDS = 600
INITIAL_EVENTS_END = "k8s.io/initial-events-end"
SERVER_VERSION = {
    "major": "1",
    "minor": "26",
    "gitVersion": "v1.26.4+k3s1",
    "gitCommit": "8d0255af07e95b841952563253d27b0d10bd72f0",
    "gitTreeState": "clean",
    "buildDate": "2023-04-20T00:33:18Z",
    "goVersion": "go1.19.8",
    "compiler": "gc",
    "platform": "linux/amd64",
}
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
# Watch events kept for watches that resume from a resourceVersion (informers: list, then watch).
REPLAY_EVENTS = 2000
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Boolean query parameters as Go's strconv.ParseBool reads them (the Python client sends "True").
GO_TRUE = ("1", "t", "T", "true", "TRUE", "True")
# The API server's limits: a request body, and the data of one Secret or ConfigMap.
MAX_REQUEST_BYTES = 3 * 1024 * 1024
MAX_DATA_BYTES = 1024 * 1024


# --------------------------------------------------------------------------- resources


@dataclass
class ResourceType:
    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    status: bool = False  # has a status subresource
    categories: tuple[str, ...] = ()
    custom: bool = False  # a custom resource (CRD) on a real cluster: no strategic merge patch
    scale: bool = False  # has a scale subresource (autoscaling/v1 Scale)

    @property
    def key(self) -> tuple[str, str]:
        return (self.group, self.plural)

    def api_version(self, version: str | None = None) -> str:
        version = version or self.versions[0]
        return f"{self.group}/{version}" if self.group else version


def _builtin_types() -> list[ResourceType]:
    core, apps = "", "apps"
    return [
        ResourceType(core, ("v1",), "namespaces", "Namespace", namespaced=False, short_names=("ns",), status=True),
        ResourceType(core, ("v1",), "configmaps", "ConfigMap", short_names=("cm",)),
        ResourceType(core, ("v1",), "secrets", "Secret"),
        ResourceType(core, ("v1",), "services", "Service", short_names=("svc",), status=True, categories=("all",)),
        ResourceType(core, ("v1",), "serviceaccounts", "ServiceAccount", short_names=("sa",)),
        ResourceType(core, ("v1",), "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",), status=True),
        ResourceType(core, ("v1",), "pods", "Pod", short_names=("po",), status=True, categories=("all",)),
        ResourceType(core, ("v1",), "endpoints", "Endpoints", short_names=("ep",)),
        ResourceType(core, ("v1",), "events", "Event", short_names=("ev",)),
        ResourceType(apps, ("v1",), "deployments", "Deployment", short_names=("deploy",), status=True, scale=True, categories=("all",)),
        ResourceType(apps, ("v1",), "replicasets", "ReplicaSet", short_names=("rs",), status=True, scale=True, categories=("all",)),
        ResourceType(apps, ("v1",), "statefulsets", "StatefulSet", short_names=("sts",), status=True, scale=True, categories=("all",)),
        ResourceType(apps, ("v1",), "daemonsets", "DaemonSet", short_names=("ds",), status=True, categories=("all",)),
        ResourceType(apps, ("v1",), "controllerrevisions", "ControllerRevision"),
        ResourceType("batch", ("v1",), "jobs", "Job", status=True, categories=("all",)),
        ResourceType("batch", ("v1",), "cronjobs", "CronJob", short_names=("cj",), status=True, categories=("all",)),
        ResourceType("autoscaling", ("v2", "v1"), "horizontalpodautoscalers", "HorizontalPodAutoscaler", short_names=("hpa",), status=True),
        ResourceType("policy", ("v1",), "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",), status=True),
        ResourceType("networking.k8s.io", ("v1",), "ingresses", "Ingress", short_names=("ing",), status=True),
        ResourceType("networking.k8s.io", ("v1",), "ingressclasses", "IngressClass", namespaced=False),
        ResourceType("networking.k8s.io", ("v1",), "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
        ResourceType("gateway.networking.k8s.io", ("v1", "v1beta1"), "httproutes", "HTTPRoute", status=True, custom=True),
        ResourceType("gateway.networking.k8s.io", ("v1", "v1beta1"), "gateways", "Gateway", short_names=("gtw",), status=True, custom=True),
        ResourceType("gateway.networking.k8s.io", ("v1", "v1beta1"), "gatewayclasses", "GatewayClass", False, ("gc",), status=True, custom=True),
        ResourceType("gateway.networking.k8s.io", ("v1beta1",), "referencegrants", "ReferenceGrant", short_names=("refgrant",), custom=True),
        ResourceType("rbac.authorization.k8s.io", ("v1",), "roles", "Role"),
        ResourceType("rbac.authorization.k8s.io", ("v1",), "rolebindings", "RoleBinding"),
        ResourceType("rbac.authorization.k8s.io", ("v1",), "clusterroles", "ClusterRole", namespaced=False),
        ResourceType("rbac.authorization.k8s.io", ("v1",), "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
        ResourceType("apiextensions.k8s.io", ("v1",), "customresourcedefinitions", "CustomResourceDefinition", False, ("crd", "crds"), status=True),
    ]  # fmt: skip


class ApiError(kmock.KubernetesError):
    """An API error answered as a Status object with its HTTP code."""


def api_error(code: int, reason: str, message: str, **details: Any) -> ApiError:
    return ApiError(status=code, reason=reason, message=message, details=details or {"message": message})


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return api_error(
        404, "NotFound", f'{rtype.plural}{"." + rtype.group if rtype.group else ""} "{name}" not found', name=name, group=rtype.group, kind=rtype.plural
    )


def invalid(rtype: ResourceType, name: str, field_path: str, message: str) -> ApiError:
    cause = {"reason": "FieldValueInvalid", "message": message, "field": field_path}
    return api_error(
        422, "Invalid", f'{rtype.kind} "{name}" is invalid: {field_path}: {message}', name=name, group=rtype.group, kind=rtype.kind, causes=[cause]
    )


# --------------------------------------------------------------------------- protobuf (Secret, ConfigMap)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of a protobuf message: ints for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            yield number, value
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, buf[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")


def _map_entry(entry: bytes) -> tuple[str, bytes]:
    key, value = b"", b""
    for number, raw in _fields(entry):
        if number == 1 and isinstance(raw, bytes):
            key = raw
        elif number == 2 and isinstance(raw, bytes):
            value = raw
    return key.decode(), value


def _object_meta(buf: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    scalars = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, raw in _fields(buf):
        if number in scalars and isinstance(raw, bytes):
            meta[scalars[number]] = raw.decode()
        elif number == 7 and isinstance(raw, int):
            meta["generation"] = raw
        elif number in (11, 12) and isinstance(raw, bytes):
            key, value = _map_entry(raw)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = value.decode()
        elif number == 14 and isinstance(raw, bytes):
            meta.setdefault("finalizers", []).append(raw.decode())
    return meta


def decode_protobuf(body: bytes) -> dict[str, Any]:
    """A Secret or ConfigMap sent as `application/vnd.kubernetes.protobuf` (k8s\\0 + runtime.Unknown), as JSON."""
    if not body.startswith(b"k8s\x00"):
        raise ValueError("the body does not start with the k8s protobuf magic")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[4:]):
        if number == 1 and isinstance(value, bytes):
            for type_field, type_value in _fields(value):
                if isinstance(type_value, bytes):
                    api_version, kind = (type_value.decode(), kind) if type_field == 1 else (api_version, type_value.decode())
        elif number == 2 and isinstance(value, bytes):
            raw = value
    if kind not in ("Secret", "ConfigMap"):
        raise ValueError(f"protobuf bodies of kind {kind or '(none)'} are not decoded; send JSON")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": {}}
    for number, value in _fields(raw):
        if not isinstance(value, bytes):
            if number == (4 if kind == "ConfigMap" else 5):
                obj["immutable"] = bool(value)
            continue
        if number == 1:
            obj["metadata"] = _object_meta(value)
        elif kind == "Secret" and number in (2, 4):
            key, data = _map_entry(value)
            target = "data" if number == 2 else "stringData"
            obj.setdefault(target, {})[key] = base64.b64encode(data).decode() if number == 2 else data.decode()
        elif kind == "Secret" and number == 3:
            obj["type"] = value.decode()
        elif kind == "ConfigMap" and number in (2, 3):
            key, data = _map_entry(value)
            if number == 2:
                obj.setdefault("data", {})[key] = data.decode()
            else:
                obj.setdefault("binaryData", {})[key] = base64.b64encode(data).decode()
    return obj


# --------------------------------------------------------------------------- selectors


_REQUIREMENT = re.compile(r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=,()]+)\s*(?:(?P<op>==|=|!=|\s+in\s+|\s+notin\s+)\s*(?P<value>\([^)]*\)|[^\s,()]*))?\s*$")


def _split_selector(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(char, 0)
        current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def parse_label_selector(text: str) -> list[tuple[str, str, frozenset[str]]]:
    """(key, operator, values) requirements; operators: =, !=, in, notin, exists, !exists."""
    requirements: list[tuple[str, str, frozenset[str]]] = []
    for part in _split_selector(text):
        match = _REQUIREMENT.match(part)
        if not match:
            raise api_error(400, "BadRequest", f"unable to parse requirement: {part.strip()!r}")
        key, op, value = match["key"], (match["op"] or "").strip(), match["value"]
        if match["neg"]:
            if op:
                raise api_error(400, "BadRequest", f"unable to parse requirement: {part.strip()!r}")
            requirements.append((key, "!exists", frozenset()))
        elif not op:
            requirements.append((key, "exists", frozenset()))
        elif op in ("in", "notin"):
            if not value or not value.startswith("("):
                raise api_error(400, "BadRequest", f"unable to parse requirement: {part.strip()!r}: expected a list in ()")
            requirements.append((key, op, frozenset(v.strip() for v in value[1:-1].split(",") if v.strip())))
        else:
            requirements.append((key, "!=" if op == "!=" else "=", frozenset([value or ""])))
    return requirements


def labels_match(requirements: list[tuple[str, str, frozenset[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in requirements:
        present = key in labels
        if op == "exists" and not present or op == "!exists" and present:
            return False
        if op in ("=", "in") and (not present or labels[key] not in values):
            return False
        if op in ("!=", "notin") and present and labels[key] in values:
            return False
    return True


def fields_match(text: str, obj: dict[str, Any]) -> bool:
    """fieldSelector: `path=value`, `path==value`, `path!=value` on any dotted path (metadata.name, type...)."""
    for part in _split_selector(text):
        match = re.match(r"^\s*([\w.\-/]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise api_error(400, "BadRequest", f"invalid field selector: {part.strip()!r}")
        path, op, value = match.groups()
        actual: Any = obj
        for step in path.split("."):
            actual = actual.get(step) if isinstance(actual, dict) else None
        if (str(actual if actual is not None else "") == value) != (op != "!="):
            return False
    return True


# --------------------------------------------------------------------------- patches


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: null deletes a key, a non-object replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# Strategic merge patch: lists merged by a key; every other list is replaced.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
}


def _merge_key(field_name: str, items: list[Any]) -> str | None:
    if field_name == "ports":  # container ports by containerPort, Service ports by port
        return "containerPort" if any(isinstance(item, dict) and "containerPort" in item for item in items) else "port"
    return MERGE_KEYS.get(field_name)


def _strategic_list(field_name: str, original: Any, patch: list[Any]) -> list[Any]:
    merge_key = _merge_key(field_name, patch + (original if isinstance(original, list) else []))
    if merge_key is None or not all(isinstance(item, dict) for item in patch):
        return copy.deepcopy(patch)
    if {"$patch": "replace"} in patch:
        return [strategic_merge_patch({}, item) for item in patch if item != {"$patch": "replace"}]
    result = copy.deepcopy(original) if isinstance(original, list) else []
    for item in patch:
        position = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(merge_key) == item.get(merge_key)), None)
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
        elif position is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[position] = strategic_merge_patch(result[position], item)
    return result


def strategic_merge_patch(original: Any, patch: dict[str, Any]) -> Any:
    """Kubernetes strategic merge patch for the list keys above, with $patch, $retainKeys,
    $setElementOrder and $deleteFromPrimitiveList directives."""
    if patch.get("$patch") == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            target = key.split("/", 1)[1]
            result[target] = [item for item in result.get(target, []) if item not in value]
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            if value.get("$patch") == "delete":
                result.pop(key, None)
            else:
                result[key] = strategic_merge_patch(result.get(key), value)
        elif isinstance(value, list):
            result[key] = _strategic_list(key, result.get(key), value)
        else:
            result[key] = value
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(result.get(key.split("/", 1)[1]), list):
            target = key.split("/", 1)[1]
            merge_key = _merge_key(target, order)
            if merge_key is not None:
                wanted = [item.get(merge_key) for item in order if isinstance(item, dict)]
                rank = {name: index for index, name in enumerate(wanted)}
                result[target] = sorted(result[target], key=lambda item: rank.get(item.get(merge_key) if isinstance(item, dict) else None, len(rank)))
    if "$retainKeys" in patch:
        result = {key: value for key, value in result.items() if key in patch["$retainKeys"]}
    return result


def leaf_paths(doc: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """The paths that a server-side apply configuration sets (lists count as one value)."""
    if not isinstance(doc, dict) or not doc:
        return {prefix} if prefix else set()
    paths: set[tuple[str, ...]] = set()
    for key, value in doc.items():
        paths |= leaf_paths(value, (*prefix, key))
    return paths


def _apply_merge(current: Any, applied: Any) -> Any:
    if not isinstance(applied, dict) or not isinstance(current, dict):
        return copy.deepcopy(applied)
    result = dict(current)
    for key, value in applied.items():
        result[key] = _apply_merge(current.get(key), value)
    return result


def _remove_path(doc: dict[str, Any], path: tuple[str, ...]) -> None:
    parents = [doc]
    for step in path[:-1]:
        child = parents[-1].get(step)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(parents) - 1, 0, -1):  # drop maps the removal left empty
        if not parents[depth]:
            parents[depth - 1].pop(path[depth - 1], None)


IDENTITY_PATHS = {("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace")}


def server_side_apply(current: dict[str, Any], applied: dict[str, Any], owned_before: set[tuple[str, ...]]) -> tuple[dict[str, Any], set[tuple[str, ...]]]:
    """Approximate server-side apply: merge the configuration, drop the fields this manager applied
    last time and applies no more; lists are replaced whole; no conflicts (force is implied)."""
    owned = leaf_paths(applied) - IDENTITY_PATHS
    result = _apply_merge(current, applied)
    for path in owned_before - owned:
        if path[0] != "status":
            _remove_path(result, path)
    return result, owned


# --------------------------------------------------------------------------- the store


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status", "apiVersion", "kind")}


@dataclass
class WatchEvent:
    resource_version: int
    rtype_key: tuple[str, str]
    kind: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]


@dataclass
class Store:
    """Objects in memory, keyed by ((group, plural), namespace, name), and the watch events of each write."""

    ready: bool = False
    types: dict[tuple[str, str], ResourceType] = field(default_factory=dict)
    objects: dict[tuple[tuple[str, str], str, str], dict[str, Any]] = field(default_factory=dict)
    applied: dict[tuple[tuple[str, str], str, str], dict[str, set[tuple[str, ...]]]] = field(default_factory=dict)
    revision: int = 1
    replay: collections.deque[WatchEvent] = field(default_factory=lambda: collections.deque(maxlen=REPLAY_EVENTS))
    pending: list[WatchEvent] = field(default_factory=list)  # put on the bus after the write
    docker_jobs: list[tuple[tuple[str, str], str, str]] = field(default_factory=list)  # Jobs to start in docker after the write
    ips: Iterator[int] = field(default_factory=lambda: itertools.count(10))

    def __post_init__(self) -> None:
        for rtype in _builtin_types():
            self.types[rtype.key] = rtype
        for name in ("default", "kube-system", "kube-public"):
            self.put(self.types[("", "namespaces")], "", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, None)
        self.pending.clear()

    # ---- reading

    def get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((rtype.key, namespace, name))

    def select(self, rtype: ResourceType, namespace: str | None, label_selector: str, field_selector: str, name: str | None = None) -> list[dict[str, Any]]:
        requirements = parse_label_selector(label_selector) if label_selector else []
        found = []
        for (key, obj_namespace, obj_name), obj in self.objects.items():
            if key != rtype.key or namespace is not None and obj_namespace != namespace or name is not None and obj_name != name:
                continue
            if self.matches(obj, requirements, field_selector):
                found.append(obj)
        return sorted(found, key=lambda obj: (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]))

    @staticmethod
    def matches(obj: dict[str, Any], requirements: list[tuple[str, str, frozenset[str]]], field_selector: str) -> bool:
        return labels_match(requirements, obj["metadata"].get("labels") or {}) and (not field_selector or fields_match(field_selector, obj))

    # ---- writing

    def validate(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        name = meta.get("name", "")
        rule = DNS_LABEL if rtype.plural in ("namespaces", "services") else DNS_SUBDOMAIN
        limit = 63 if rule is DNS_LABEL else 253
        if not name:
            raise invalid(rtype, name, "metadata.name", "Required value: name or generateName is required")
        if not rule.match(name) or len(name) > limit:
            what, characters = ("RFC 1123 label", "'-'") if rule is DNS_LABEL else ("RFC 1123 subdomain", "'-' or '.'")
            raise invalid(
                rtype, name, "metadata.name",
                f'Invalid value: "{name}": a lowercase {what} must consist of lower case alphanumeric characters, {characters}, '
                f"and must start and end with an alphanumeric character (at most {limit} characters)",
            )  # fmt: skip
        if rtype.kind in ("Secret", "ConfigMap"):
            encoded = "data" if rtype.kind == "Secret" else "binaryData"
            plain = "stringData" if rtype.kind == "Secret" else "data"
            size = sum(len(str(value)) for value in (obj.get(plain) or {}).values())
            for key, value in (obj.get(encoded) or {}).items():
                try:
                    size += len(base64.b64decode(str(value), validate=True))
                except ValueError:
                    raise invalid(rtype, name, f"{encoded}[{key}]", "Invalid value: not base64-encoded") from None
            if size > MAX_DATA_BYTES:
                raise invalid(rtype, name, "data", f"Too long: may not be more than {MAX_DATA_BYTES} bytes")
        reason = (meta.get("annotations") or {}).get(REJECT_ANNOTATION)
        if reason is not None:
            raise invalid(rtype, name, f"metadata.annotations[{REJECT_ANNOTATION}]", f"Forbidden: {reason or 'rejected by the emulator'}")

    def normalise(self, rtype: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """What the API server itself fills in or converts (defaults, Secret stringData, Service clusterIP)."""
        if rtype.kind == "Secret" and "stringData" in obj:
            data = obj.setdefault("data", {}) or {}
            for key, value in (obj.pop("stringData") or {}).items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            obj["data"] = data
        if rtype.kind in ("Deployment", "StatefulSet", "ReplicaSet"):
            spec = obj.setdefault("spec", {})
            if spec.get("replicas") is None:
                spec["replicas"] = 1
        if rtype.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            kept = (old or {}).get("spec", {}).get("clusterIP")
            if spec.get("clusterIP") in (None, "") and spec["type"] != "ExternalName":
                number = next(self.ips)
                spec["clusterIP"] = kept or f"10.96.{number // 250 % 250}.{number % 250 + 2}"
            if spec.get("clusterIP") and spec["clusterIP"] != "None":
                spec["clusterIPs"] = [spec["clusterIP"]]
        if rtype.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        if rtype.kind == "CustomResourceDefinition":
            names = (obj.get("spec") or {}).get("names") or {}
            obj["status"] = {
                "acceptedNames": names,
                "storedVersions": [v["name"] for v in (obj.get("spec") or {}).get("versions", []) if v.get("storage")],
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": _now()},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted", "lastTransitionTime": _now()},
                ],
            }

    def put(self, rtype: ResourceType, namespace: str, obj: dict[str, Any], old: dict[str, Any] | None, dry_run: bool = False) -> dict[str, Any]:
        """Create (old is None) or replace an object: metadata, defaults, resourceVersion, a watch event."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        obj["apiVersion"], obj["kind"] = rtype.api_version(), rtype.kind
        if rtype.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        self.validate(rtype, obj)
        self.normalise(rtype, obj, old)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
        else:
            for kept in ("uid", "creationTimestamp"):
                meta[kept] = old["metadata"][kept]
            changed_spec = _spec_part(old) != _spec_part(obj)
            meta["generation"] = old["metadata"].get("generation", 1) + (1 if changed_spec else 0)
        meta.pop("managedFields", None)
        if dry_run:
            meta["resourceVersion"] = str(self.revision)
            return obj
        self.revision += 1
        meta["resourceVersion"] = str(self.revision)
        key = (rtype.key, namespace if rtype.namespaced else "", meta["name"])
        self.objects[key] = obj
        self.emit(rtype, "ADDED" if old is None else "MODIFIED", obj)
        if rtype.kind == "CustomResourceDefinition":
            self.declare_custom_resource(obj)
        if self.ready:
            self.run_controllers(rtype, obj)
        return obj

    def delete(self, rtype: ResourceType, namespace: str, name: str, dry_run: bool = False) -> dict[str, Any]:
        key = (rtype.key, namespace, name)
        obj = self.objects.get(key)
        if obj is None:
            raise not_found(rtype, name)
        if dry_run:
            return obj
        del self.objects[key]
        self.applied.pop(key, None)
        self.revision += 1
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self.emit(rtype, "DELETED", obj)
        if rtype.kind == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            self.types.pop((spec.get("group", ""), (spec.get("names") or {}).get("plural", "")), None)
        # Garbage collection, at once: what the object owns, and everything in a deleted namespace.
        uid = obj["metadata"]["uid"]
        for (type_key, obj_namespace, obj_name), other in list(self.objects.items()):
            owned = any(ref.get("uid") == uid for ref in other["metadata"].get("ownerReferences") or [])
            in_namespace = rtype.kind == "Namespace" and obj_namespace == name
            if (owned or in_namespace) and (type_key, obj_namespace, obj_name) in self.objects and type_key in self.types:
                self.delete(self.types[type_key], obj_namespace, obj_name)
        return obj

    def emit(self, rtype: ResourceType, kind: str, obj: dict[str, Any]) -> None:
        event = WatchEvent(self.revision, rtype.key, kind, copy.deepcopy(obj))
        self.replay.append(event)
        self.pending.append(event)

    def set_status(self, rtype: ResourceType, obj: dict[str, Any], status: dict[str, Any]) -> None:
        """What a controller writes: the status subresource, a new resourceVersion, a MODIFIED event."""
        obj["status"] = status
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        self.emit(rtype, "MODIFIED", obj)

    def declare_custom_resource(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        versions = tuple(v["name"] for v in spec.get("versions", []) if v.get("served", True) and v.get("name"))
        if not (spec.get("group") and names.get("plural") and names.get("kind") and versions):
            return
        has_status = any("status" in (v.get("subresources") or {}) for v in spec.get("versions", []))
        self.types[(spec["group"], names["plural"])] = ResourceType(
            spec["group"], versions, names["plural"], names["kind"], spec.get("scope", "Namespaced") == "Namespaced",
            tuple(names.get("shortNames", [])), has_status, tuple(names.get("categories", [])), custom=True,
        )  # fmt: skip

    # ---- fake controllers (--ready)

    def run_controllers(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        controller = {
            "Deployment": self._deployment,
            "ReplicaSet": self._replica_set,
            "StatefulSet": self._stateful_set,
            "DaemonSet": self._daemon_set,
            "PersistentVolumeClaim": self._claim,
            "Job": self._job,
            "Service": self._service,
        }.get(rtype.kind)
        if controller is not None:
            controller(rtype, obj)

    def _deployment(self, rtype: ResourceType, dep: dict[str, Any]) -> None:
        spec, meta = dep.get("spec") or {}, dep["metadata"]
        replicas = int(spec.get("replicas", 1))
        template = copy.deepcopy(spec.get("template") or {})
        template_hash = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]
        template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = template_hash
        rs_type = self.types[("apps", "replicasets")]
        namespace = meta["namespace"]
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"], "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}
        revision = str(meta.get("generation", 1))
        for (key, rs_namespace, _name), rs in list(self.objects.items()):  # older ReplicaSets scaled to 0
            if key == rs_type.key and rs_namespace == namespace and any(ref.get("uid") == meta["uid"] for ref in rs["metadata"].get("ownerReferences", [])):
                if rs["metadata"]["labels"].get("pod-template-hash") != template_hash and rs["spec"].get("replicas"):
                    self.put(rs_type, namespace, merge_patch(rs, {"spec": {"replicas": 0}}), rs)
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = template_hash
        name = f"{meta['name']}-{template_hash}"
        current = self.get(rs_type, namespace, name)
        replica_set = {
            "metadata": {
                "name": name,
                "labels": template["metadata"]["labels"],
                "annotations": {"deployment.kubernetes.io/revision": revision, "deployment.kubernetes.io/desired-replicas": str(replicas)},
                "ownerReferences": [owner],
            },
            "spec": {"replicas": replicas, "selector": selector, "template": template},
        }
        if current is None or current["spec"] != replica_set["spec"]:
            self.put(rs_type, namespace, replica_set, current)
        self.objects[(rtype.key, namespace, meta["name"])]["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = revision
        times = {"lastUpdateTime": _now(), "lastTransitionTime": _now()}
        self.set_status(rtype, dep, {
            "observedGeneration": meta["generation"],
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability.", **times},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": f'ReplicaSet "{name}" has progressed.', **times},
            ],
        })  # fmt: skip

    def _replica_set(self, rtype: ResourceType, rs: dict[str, Any]) -> None:
        replicas = int((rs.get("spec") or {}).get("replicas", 1))
        status = {
            "observedGeneration": rs["metadata"]["generation"],
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }
        self.set_status(rtype, rs, status)

    def _stateful_set(self, rtype: ResourceType, sts: dict[str, Any]) -> None:
        replicas = int((sts.get("spec") or {}).get("replicas", 1))
        revision = f"{sts['metadata']['name']}-{hashlib.sha256(json.dumps(sts.get('spec', {}).get('template'), sort_keys=True).encode()).hexdigest()[:10]}"
        self.set_status(rtype, sts, {
            "observedGeneration": sts["metadata"]["generation"], "replicas": replicas, "readyReplicas": replicas,
            "currentReplicas": replicas, "updatedReplicas": replicas, "availableReplicas": replicas,
            "currentRevision": revision, "updateRevision": revision, "collisionCount": 0,
        })  # fmt: skip

    def _daemon_set(self, rtype: ResourceType, ds: dict[str, Any]) -> None:
        self.set_status(rtype, ds, {
            "observedGeneration": ds["metadata"]["generation"], "desiredNumberScheduled": 1, "currentNumberScheduled": 1,
            "updatedNumberScheduled": 1, "numberReady": 1, "numberAvailable": 1, "numberMisscheduled": 0,
        })  # fmt: skip

    def _claim(self, rtype: ResourceType, pvc: dict[str, Any]) -> None:
        spec = pvc.get("spec") or {}
        capacity = ((spec.get("resources") or {}).get("requests")) or {}
        self.set_status(rtype, pvc, {"phase": "Bound", "accessModes": spec.get("accessModes", []), "capacity": capacity})

    def _job(self, rtype: ResourceType, job: dict[str, Any]) -> None:
        status = job.get("status") or {}
        if status.get("conditions") or status.get("active"):
            return  # finished jobs stay finished, a running one runs on
        annotations = job["metadata"].get("annotations") or {}
        if annotations.get(RUN_ANNOTATION) == "docker":
            self.docker_jobs.append((rtype.key, job["metadata"]["namespace"], job["metadata"]["name"]))
            self.set_status(rtype, job, {"startTime": _now(), "active": 1, "ready": 0, "terminating": 0})
            return
        self.finish_job(rtype, job, failed=annotations.get(JOB_OUTCOME_ANNOTATION) == "failed")

    def finish_job(self, rtype: ResourceType, job: dict[str, Any], failed: bool, reason: str = "BackoffLimitExceeded") -> None:
        """A Job's status once it ended: Complete, or Failed with ``reason``."""
        now = _now()
        start = (job.get("status") or {}).get("startTime") or now
        if failed:
            backoff = int((job.get("spec") or {}).get("backoffLimit", 6))
            message = "Job was active longer than specified deadline" if reason == "DeadlineExceeded" else "Job has reached the specified backoff limit"
            conditions = [
                {"type": "FailureTarget", "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now},
                {"type": "Failed", "status": "True", "reason": reason, "message": message, "lastProbeTime": now, "lastTransitionTime": now},
            ]
            status = {"startTime": start, "failed": backoff + 1, "active": 0, "ready": 0, "terminating": 0, "conditions": conditions}
        else:
            completions = int((job.get("spec") or {}).get("completions") or 1)
            message = "Reached expected number of succeeded pods"
            conditions = [
                {
                    "type": "SuccessCriteriaMet",
                    "status": "True",
                    "reason": "CompletionsReached",
                    "message": message,
                    "lastProbeTime": now,
                    "lastTransitionTime": now,
                },
                {"type": "Complete", "status": "True", "reason": "CompletionsReached", "message": message, "lastProbeTime": now, "lastTransitionTime": now},
            ]
            status = {"startTime": start, "completionTime": now, "succeeded": completions, "active": 0, "ready": 0, "terminating": 0, "conditions": conditions}
        self.set_status(rtype, job, status)

    def _service(self, rtype: ResourceType, svc: dict[str, Any]) -> None:
        if (svc.get("spec") or {}).get("type") == "LoadBalancer" and not (svc.get("status") or {}).get("loadBalancer", {}).get("ingress"):
            self.set_status(rtype, svc, {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}]}})


# --------------------------------------------------------------------------- HTTP


@dataclass
class Target:
    rtype: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None


def _json(data: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(body=json.dumps(data).encode(), status=status, content_type="application/json")


class Emulator(kmock.KubernetesScaffold):
    """kmock's Kubernetes scaffold (HTTP server, Status errors) with a stateful API behind it."""

    store: Store
    bus: kmock.Bus[WatchEvent]
    stopping: asyncio.Event
    watch_queues: set[asyncio.Queue[WatchEvent | None]]
    verbose: bool
    job_tasks: dict[str, tuple[str, asyncio.Task[None]]]  # Job uid -> its container's name and the task that runs it

    def configure(self, ready: bool, verbose: bool) -> None:
        self.store = Store(ready=ready)
        self.bus = kmock.Bus()
        self.stopping = asyncio.Event()
        self.watch_queues = set()
        self.verbose = verbose
        self.job_tasks = {}

    def stop(self) -> None:
        """End every open watch stream and the Jobs running in docker, then the server. A caller that cannot wait for
        the containers' removal finds them by their label (kube-emulator.pid=<this pid>)."""
        self.stopping.set()
        for queue in self.watch_queues:
            queue.put_nowait(None)
        for container, task in self.job_tasks.values():
            task.cancel()
            subprocess.run(["docker", "rm", "--force", container], capture_output=True, timeout=30, check=False)

    # ---- Jobs that run in docker (kube-emulator/run: docker)

    def start_docker_jobs(self) -> None:
        jobs, self.store.docker_jobs = self.store.docker_jobs, []
        for key, namespace, name in jobs:
            job = self.store.objects.get((key, namespace, name))
            if job is None or job["metadata"]["uid"] in self.job_tasks:
                continue
            uid = job["metadata"]["uid"]
            container = f"kube-emulator-job-{uid[:12]}"
            task = asyncio.get_running_loop().create_task(self.run_docker_job(key, copy.deepcopy(job), container))
            self.job_tasks[uid] = (container, task)

    def reap_docker_jobs(self) -> None:
        """Stop the containers of Jobs that were deleted (or replaced under their name) while they ran, as a cluster does."""
        running = {obj["metadata"]["uid"] for (key, _ns, _name), obj in self.store.objects.items() if key == ("batch", "jobs")}
        for uid in [uid for uid in self.job_tasks if uid not in running]:
            self.job_tasks[uid][1].cancel()

    def job_environment(self, namespace: str, container: dict[str, Any]) -> dict[str, str]:
        """The container's environment as the kubelet makes it: envFrom ConfigMaps and Secrets first, then env."""
        configmaps, secrets_type = self.store.types[("", "configmaps")], self.store.types[("", "secrets")]

        def data_of(ref: dict[str, Any], secret: bool) -> dict[str, str] | None:
            obj = self.store.get(secrets_type if secret else configmaps, namespace, str(ref.get("name", "")))
            if obj is None:
                if ref.get("optional"):
                    return None
                raise ValueError(f'{"secret" if secret else "configmap"} "{ref.get("name")}" not found')
            data = obj.get("data") or {}
            return {k: base64.b64decode(v).decode() for k, v in data.items()} if secret else {k: str(v) for k, v in data.items()}

        env: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            secret = "secretRef" in source
            data = data_of(source.get("secretRef" if secret else "configMapRef") or {}, secret)
            env.update({str(source.get("prefix", "")) + k: v for k, v in (data or {}).items()})
        for item in container.get("env") or []:
            if "value" in item:
                env[item["name"]] = str(item["value"])
                continue
            source = item.get("valueFrom") or {}
            secret = "secretKeyRef" in source
            ref = source.get("secretKeyRef" if secret else "configMapKeyRef") or {}
            data = data_of(ref, secret) or {}
            if ref.get("key") in data:
                env[item["name"]] = data[ref["key"]]
            elif not ref.get("optional"):
                raise ValueError(f"couldn't find key {ref.get('key')} in {'Secret' if secret else 'ConfigMap'} {namespace}/{ref.get('name')}")
        if any("\n" in value or "\r" in value for value in env.values()):
            raise ValueError("a value of the environment spans lines, which docker run --env-file cannot pass")
        return env

    async def run_docker_job(self, key: tuple[str, str], job: dict[str, Any], container_name: str) -> None:
        """Run the Job's first container once; its exit code decides the Job's status (unless the Job is gone by then)."""
        rtype, meta = self.store.types[key], job["metadata"]
        spec = job.get("spec") or {}
        deadline = int(spec.get("activeDeadlineSeconds") or JOB_DEADLINE_SECONDS)
        container = (((spec.get("template") or {}).get("spec") or {}).get("containers") or [{}])[0]
        reason, output, process = "", b"", None
        env_file = None
        try:
            env = self.job_environment(meta["namespace"], container)
            # The values reach docker through a file of mode 0600 (never its command line, never the client's own environment).
            fd, env_file = tempfile.mkstemp(prefix="kube-emulator-env-")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.writelines(f"{k}={v}\n" for k, v in env.items())
            command, args = list(container.get("command") or []), list(container.get("args") or [])
            cmd = ["docker", "run", "--rm", "--name", container_name, "--network", "host", "--env-file", env_file,
                   "--label", f"kube-emulator.pid={os.getpid()}", "--label", f"kube-emulator.job={meta['namespace']}/{meta['name']}"]  # fmt: skip
            if command:
                cmd += ["--entrypoint", command[0]]
            cmd += [str(container.get("image", "")), *command[1:], *args]
            process = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
            )
            try:
                output = (await asyncio.wait_for(process.communicate(), deadline))[0]  # stderr goes to stdout
                failed = process.returncode != 0
            except TimeoutError:
                failed, reason = True, "DeadlineExceeded"
        except (ValueError, OSError) as error:
            failed, output = True, str(error).encode()
        except asyncio.CancelledError:  # the Job was deleted, or the emulator stops
            await self._remove_container(container_name, process)
            raise
        finally:
            self.job_tasks.pop(meta["uid"], None)
            if env_file:
                os.unlink(env_file)
        if reason == "DeadlineExceeded":
            await self._remove_container(container_name, process)
        outcome = "failed" if failed else "complete"
        print(f"job {meta['namespace']}/{meta['name']} in docker: {outcome}\n{output.decode(errors='replace').rstrip()}", file=sys.stderr, flush=True)
        current = self.store.objects.get((key, meta["namespace"], meta["name"]))
        if current is not None and current["metadata"]["uid"] == meta["uid"]:
            self.store.finish_job(rtype, current, failed, reason or "BackoffLimitExceeded")
            await self.publish()

    @staticmethod
    async def _remove_container(name: str, client: asyncio.subprocess.Process | None) -> None:
        remove = await asyncio.create_subprocess_exec("docker", "rm", "--force", name, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        await remove.wait()
        if client is not None and client.returncode is None:
            client.kill()
            await client.wait()

    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # Replaces kmock's request parsing, which decodes every body as UTF-8 text (protobuf is binary)
        # and keeps each request in memory.
        try:
            chunks, size = [], 0
            while chunk := await raw.content.read(65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_REQUEST_BYTES:
                    raise api_error(413, "RequestEntityTooLarge", f"the request body is larger than {MAX_REQUEST_BYTES} bytes")
            body = b"".join(chunks)
            response = await self.dispatch(raw, body)
        except kmock.KubernetesError as error:
            response = await self._render_error(error)
        except Exception as error:  # a bug of the emulator: say so in the answer and in the log
            traceback.print_exc()
            response = await self._render_error(api_error(500, "InternalError", f"kube-emulator: {type(error).__name__}: {error}"))
        if self.verbose or raw.method not in ("GET", "HEAD") or response.status >= 400:
            print(f"{raw.method} {raw.path_qs} {response.status}", file=sys.stderr, flush=True)
        return response

    # ---- routing

    def target(self, path: str) -> Target:
        parts = [part for part in path.split("/") if part]
        if len(parts) >= 2 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces" and (group, rest[2]) in self.store.types:
            namespace, rest = rest[1], rest[2:]
        rtype = self.store.types.get((group, rest[0])) if rest else None
        if rtype is None or version not in rtype.versions or len(rest) > 3 or (rtype.namespaced is False and namespace is not None):
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        allowed = (None, "status", "scale") if rtype.scale else (None, "status")
        if subresource not in allowed and not (rtype.kind == "Namespace" and subresource == "finalize"):
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        return Target(rtype, version, namespace, name, subresource)

    async def dispatch(self, raw: aiohttp.web.BaseRequest, body: bytes) -> aiohttp.web.StreamResponse:
        path, method = raw.path.rstrip("/") or "/", raw.method
        if method == "GET":
            discovery = self.discovery(path)
            if discovery is not None:
                return discovery
        target = self.target(path)
        query = raw.query
        dry_run = query.get("dryRun") == "All"
        if method == "GET" and query.get("watch") in GO_TRUE:
            return await self.watch(raw, target)
        if target.subresource == "scale":
            return await self.scale(raw, target, body, dry_run)
        if method == "GET":
            return _json(self.read(target, query))
        if method == "POST" and target.name is None:
            result, code = self.create(target, self.decode(raw, body), dry_run), 201
        elif method == "PUT" and target.name:
            result, code = self.replace(target, self.decode(raw, body), dry_run), 200
        elif method == "PATCH" and target.name:
            result, code = self.patch_object(target, raw.headers.get("Content-Type", ""), self.decode(raw, body), query, dry_run)
        elif method == "DELETE" and target.name:
            result, code = self.store.delete(target.rtype, target.namespace or "", target.name, dry_run), 200
        elif method == "DELETE":
            items = [
                self.store.delete(target.rtype, obj["metadata"].get("namespace", ""), obj["metadata"]["name"], dry_run) for obj in self.selected(target, query)
            ]
            result, code = self.as_list(target, items), 200
        else:
            raise api_error(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource: {method}")
        if self.job_tasks:
            self.reap_docker_jobs()
        if self.store.docker_jobs:
            self.start_docker_jobs()
        await self.publish()
        return _json(self.present(target, result), code)

    @staticmethod
    def decode(raw: aiohttp.web.BaseRequest, body: bytes) -> Any:
        content_type = raw.headers.get("Content-Type", "")
        try:
            if "protobuf" in content_type:
                return decode_protobuf(body)
            if not body:
                return None
            text = body.decode()
            return yaml.safe_load(text) if "yaml" in content_type else json.loads(text)
        except (ValueError, yaml.YAMLError) as error:
            raise api_error(400, "BadRequest", f"the request body could not be decoded ({content_type or 'no content type'}): {error}") from None

    # ---- discovery

    def discovery(self, path: str) -> aiohttp.web.StreamResponse | None:
        if path == "/version":
            return _json(SERVER_VERSION)
        if path in ("/healthz", "/readyz", "/livez"):
            return aiohttp.web.Response(text="ok")
        if path == "/openapi/v2":  # an empty protobuf document: no schemas, so clients skip validation
            return aiohttp.web.Response(body=b"", content_type="application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if path == "/api":
            return _json({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})
        groups: dict[str, list[str]] = {}
        for rtype in self.store.types.values():
            if rtype.group:
                for version in rtype.versions:
                    if version not in groups.setdefault(rtype.group, []):
                        groups[rtype.group].append(version)

        def group_doc(name: str) -> dict[str, Any]:
            versions = [{"groupVersion": f"{name}/{version}", "version": version} for version in groups[name]]
            return {"name": name, "versions": versions, "preferredVersion": versions[0]}

        if path == "/apis":
            return _json({"kind": "APIGroupList", "apiVersion": "v1", "groups": [group_doc(name) for name in sorted(groups)]})
        match = re.fullmatch(r"/apis/([^/]+)", path)
        if match:
            if match[1] not in groups:
                raise api_error(404, "NotFound", "the server could not find the requested resource")
            return _json({"kind": "APIGroup", "apiVersion": "v1", **group_doc(match[1])})
        match = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", path)
        if not match:
            return None
        group, version = ("", "v1") if match[1] else (match[2], match[3])
        resources = []
        for rtype in self.store.types.values():
            if rtype.group != group or version not in rtype.versions:
                continue
            resources.append({
                "name": rtype.plural, "singularName": rtype.kind.lower(), "namespaced": rtype.namespaced, "kind": rtype.kind,
                "verbs": VERBS, "shortNames": list(rtype.short_names), "categories": list(rtype.categories),
            })  # fmt: skip
            if rtype.status:
                resources.append(
                    {
                        "name": f"{rtype.plural}/status",
                        "singularName": "",
                        "namespaced": rtype.namespaced,
                        "kind": rtype.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
            if rtype.scale:
                resources.append({
                    "name": f"{rtype.plural}/scale", "singularName": "", "namespaced": rtype.namespaced, "group": "autoscaling",
                    "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"],
                })  # fmt: skip
        if not resources:
            raise api_error(404, "NotFound", "the server could not find the requested resource")
        return _json({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}" if group else version, "resources": resources})

    # ---- reads

    def present(self, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
        """The object as the requested version names it (stored objects keep the preferred version)."""
        if obj.get("kind", "").endswith("List") and "items" in obj:
            return obj
        return {**obj, "apiVersion": target.rtype.api_version(target.version)}

    def selected(self, target: Target, query: Any) -> list[dict[str, Any]]:
        return self.store.select(target.rtype, target.namespace, query.get("labelSelector", ""), query.get("fieldSelector", ""), target.name)

    def as_list(self, target: Target, items: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": target.rtype.api_version(target.version),
            "kind": f"{target.rtype.kind}List",
            "metadata": {"resourceVersion": str(self.store.revision)},
            "items": [self.present(target, item) for item in items],
        }

    def read(self, target: Target, query: Any) -> dict[str, Any]:
        if target.name is None:
            return self.as_list(target, self.selected(target, query))
        obj = self.store.get(target.rtype, target.namespace or "", target.name)
        if obj is None:
            raise not_found(target.rtype, target.name)
        return self.present(target, obj)

    async def watch(self, raw: aiohttp.web.BaseRequest, target: Target) -> aiohttp.web.StreamResponse:
        """Newline-delimited JSON events: the initial state (or the events after resourceVersion), the
        watch-list bookmark when asked for, then live events until timeoutSeconds or shutdown."""
        query = raw.query
        labels = parse_label_selector(query.get("labelSelector", "")) if query.get("labelSelector") else []
        field_selector = query.get("fieldSelector", "")
        since = query.get("resourceVersion", "")
        timeout = float(query.get("timeoutSeconds") or 1800)
        marker = await self.bus.mark()  # before the snapshot: nothing written after it is missed

        def wanted(event: WatchEvent) -> bool:
            meta = event.obj["metadata"]
            if event.rtype_key != target.rtype.key or target.namespace is not None and meta.get("namespace") != target.namespace:
                return False
            return (target.name is None or meta["name"] == target.name) and self.store.matches(event.obj, labels, field_selector)

        snapshot_revision = self.store.revision
        initial_events = query.get("sendInitialEvents") in GO_TRUE
        if initial_events or since in ("", "0"):
            first = [WatchEvent(int(obj["metadata"]["resourceVersion"]), target.rtype.key, "ADDED", obj) for obj in self.selected(target, query)]
        else:
            oldest = self.store.replay[0].resource_version if self.store.replay else self.store.revision
            if not since.isdigit() or int(since) < oldest - 1:
                first = []
                gone = {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "code": 410,
                    "reason": "Expired",
                    "message": f"too old resource version: {since} ({oldest})",
                }
                await self.bus.unmark(marker)
                return await self.stream(raw, [json.dumps({"type": "ERROR", "object": gone})])
            first = [event for event in self.store.replay if int(since) < event.resource_version <= snapshot_revision and wanted(event)]
        lines = [json.dumps({"type": event.kind, "object": self.present(target, event.obj)}) for event in first]
        if initial_events:
            bookmark = {
                "kind": target.rtype.kind,
                "apiVersion": target.rtype.api_version(target.version),
                "metadata": {"resourceVersion": str(snapshot_revision), "annotations": {INITIAL_EVENTS_END: "true"}},
            }
            lines.append(json.dumps({"type": "BOOKMARK", "object": bookmark}))
        response = await self.stream(raw, lines, finish=False)
        queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()  # None: the emulator stops

        async def pump() -> None:
            async for event in self.bus.stream(since=marker):
                queue.put_nowait(event)

        pumping = asyncio.create_task(pump())
        self.watch_queues.add(queue)
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while not self.stopping.is_set():
                try:
                    event = await asyncio.wait_for(queue.get(), timeout=deadline - asyncio.get_running_loop().time())
                except TimeoutError:
                    break
                if event is None:
                    break
                if event.resource_version > snapshot_revision and wanted(event):
                    await response.write(json.dumps({"type": event.kind, "object": self.present(target, event.obj)}).encode() + b"\n")
        except ConnectionResetError:
            return response
        finally:
            self.watch_queues.discard(queue)
            pumping.cancel()
            await self.bus.unmark(marker)
        with _suppress_disconnect():
            await response.write_eof()
        return response

    @staticmethod
    async def stream(raw: aiohttp.web.BaseRequest, lines: list[str], finish: bool = True) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(raw)
        for line in lines:
            await response.write(line.encode() + b"\n")
        if finish:
            await response.write_eof()
        return response

    async def publish(self) -> None:
        events, self.store.pending = self.store.pending, []
        if events:
            await self.bus.put(*events)

    # ---- the scale subresource

    async def scale(self, raw: aiohttp.web.BaseRequest, target: Target, body: bytes, dry_run: bool) -> aiohttp.web.StreamResponse:
        """GET, PATCH (merge or strategic: a Scale has no lists) and PUT of an autoscaling/v1 Scale: its
        spec.replicas is the object's; a write changes only that, and the controllers run as for any write."""
        obj = self.existing(target)
        if raw.method in ("PATCH", "PUT"):
            sent = self.decode(raw, body)
            if not isinstance(sent, dict):
                raise api_error(400, "BadRequest", "the request body is not a Scale object")
            wanted = merge_patch(self.scale_of(obj), sent) if raw.method == "PATCH" else sent
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
                raise api_error(422, "Invalid", f'Scale.autoscaling "{target.name}" is invalid: spec.replicas: Invalid value: must be a non-negative integer')
            main = Target(target.rtype, target.version, target.namespace, target.name, None)
            # the resourceVersion sent, if any, must be the object's (409 otherwise, as for any write)
            sent_version = (sent.get("metadata") or {}).get("resourceVersion")
            changes = {"spec": {"replicas": replicas}, **({"metadata": {"resourceVersion": sent_version}} if sent_version else {})}
            obj = self.write(main, merge_patch(obj, changes), obj, dry_run)
            await self.publish()
        elif raw.method != "GET":
            raise api_error(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource: {raw.method}")
        return _json(self.scale_of(obj))

    @staticmethod
    def scale_of(obj: dict[str, Any]) -> dict[str, Any]:
        meta, spec = obj["metadata"], obj.get("spec") or {}
        labels = (spec.get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in meta},
            "spec": {"replicas": int(spec.get("replicas", 1))},
            "status": {"replicas": int((obj.get("status") or {}).get("replicas", 0)), "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items()))},
        }  # fmt: skip

    # ---- writes

    def body_object(self, target: Target, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise api_error(400, "BadRequest", f"the request body is not a {target.rtype.kind} object")
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise api_error(400, "BadRequest", "metadata must be an object")
        if target.namespace and meta.get("namespace") not in (None, "", target.namespace):
            raise api_error(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request")
        if target.name and meta.get("name") not in (None, target.name):
            raise api_error(400, "BadRequest", "the name of the object does not match the name on the URL")
        if target.name:
            meta["name"] = target.name
        return body

    def create(self, target: Target, body: Any, dry_run: bool) -> dict[str, Any]:
        obj = self.body_object(target, body)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        namespace = (target.namespace or "") if target.rtype.namespaced else ""
        if target.rtype.namespaced and not namespace:
            raise api_error(404, "NotFound", "the server could not find the requested resource (a namespace is required)")
        # the NamespaceLifecycle admission of a real API server: nothing is created in a namespace that does not exist
        if target.rtype.namespaced and self.store.get(self.store.types[("", "namespaces")], "", namespace) is None:
            raise not_found(self.store.types[("", "namespaces")], namespace)
        if self.store.get(target.rtype, namespace, meta.get("name", "")) is not None:
            name = meta["name"]
            raise api_error(
                409, "AlreadyExists", f'{target.rtype.plural} "{name}" already exists', name=name, group=target.rtype.group, kind=target.rtype.plural
            )
        if target.rtype.status:
            obj.pop("status", None)
        return self.store.put(target.rtype, namespace, obj, None, dry_run)

    def existing(self, target: Target) -> dict[str, Any]:
        assert target.name is not None
        obj = self.store.get(target.rtype, target.namespace or "", target.name)
        if obj is None:
            raise not_found(target.rtype, target.name)
        return obj

    def write(self, target: Target, new: dict[str, Any], old: dict[str, Any], dry_run: bool) -> dict[str, Any]:
        """Store a new version of an existing object: a status write changes only status, a main
        write keeps status (both as on a server with the status subresource)."""
        expected = (new.get("metadata") or {}).get("resourceVersion")
        if expected and expected != old["metadata"]["resourceVersion"]:
            name = old["metadata"]["name"]
            raise api_error(
                409, "Conflict",
                f'Operation cannot be fulfilled on {target.rtype.plural} "{name}": the object has been modified; '
                "please apply your changes to the latest version and try again",
                name=name, group=target.rtype.group, kind=target.rtype.plural,
            )  # fmt: skip
        if target.subresource == "status":
            new = {**copy.deepcopy(old), "status": new.get("status")}
        elif target.rtype.status and target.rtype.kind != "Namespace":
            new = {**new, "status": copy.deepcopy(old.get("status"))}
            if new["status"] is None:
                new.pop("status")
        return self.store.put(target.rtype, target.namespace or "", new, old, dry_run)

    def replace(self, target: Target, body: Any, dry_run: bool) -> dict[str, Any]:
        return self.write(target, self.body_object(target, body), self.existing(target), dry_run)

    def patch_object(self, target: Target, content_type: str, body: Any, query: Any, dry_run: bool) -> tuple[dict[str, Any], int]:
        assert target.name is not None
        kind = content_type.split(";", maxsplit=1)[0].strip()
        key = (target.rtype.key, target.namespace or "", target.name)
        if kind == "application/apply-patch+yaml":
            manager = query.get("fieldManager")
            if not manager:
                raise api_error(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')
            applied = self.body_object(target, body)
            old = self.store.get(target.rtype, target.namespace or "", target.name)
            owned_before = self.store.applied.get(key, {}).get(manager, set())
            new, owned = server_side_apply(old or {}, applied, owned_before)
            result = (
                self.write(target, new, old, dry_run)
                if old is not None
                else self.create(Target(target.rtype, target.version, target.namespace, None, None), new, dry_run)
            )
            if not dry_run:
                self.store.applied.setdefault(key, {})[manager] = owned
            return result, 200 if old is not None else 201
        old = self.existing(target)
        if kind == "application/merge-patch+json":
            if not isinstance(body, dict):
                raise api_error(400, "BadRequest", "a merge patch must be a JSON object")
            new = merge_patch(old, body)
        elif kind == "application/strategic-merge-patch+json" and not target.rtype.custom:
            if not isinstance(body, dict):
                raise api_error(400, "BadRequest", "a strategic merge patch must be a JSON object")
            new = strategic_merge_patch(old, body)
        elif kind == "application/json-patch+json":
            if not isinstance(body, list):
                raise api_error(400, "BadRequest", "a JSON patch must be a JSON array of operations")
            try:
                new = jsonpatch.apply_patch(old, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                raise api_error(422, "Invalid", f"the JSON patch could not be applied: {error}") from None
        else:
            raise api_error(
                415,
                "UnsupportedMediaType",
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, "
                f"application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {kind or 'none'})",
            )
        return self.write(target, new, old, dry_run), 200


class _suppress_disconnect:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: Any) -> bool:
        return kind is not None and issubclass(kind, (ConnectionResetError, RuntimeError))


# --------------------------------------------------------------------------- command line


def write_kubeconfig(path: Path, port: int, context: str) -> None:
    """A kubeconfig for the emulator: plain HTTP on 127.0.0.1, a dummy token (the emulator accepts any)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": context, "user": {"token": "dummy"}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": "default"}}],
        "current-context": context,
        "preferences": {},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(yaml.safe_dump(config, sort_keys=False))
    tmp.replace(path)


async def serve(args: argparse.Namespace) -> int:
    emulator = Emulator()
    emulator.configure(ready=args.ready, verbose=args.verbose)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, emulator.stop)
    server = kmock.Server(emulator, host="127.0.0.1", port=args.port or None)
    async with server:
        port = server.port
        if args.kubeconfig:
            write_kubeconfig(Path(args.kubeconfig), port, args.context)
        if args.port_file:  # written last: once it exists, the emulator answers
            tmp = Path(args.port_file + ".tmp")
            tmp.write_text(f"{port}\n")
            tmp.replace(args.port_file)
        print(f"kube-emulator listening on http://127.0.0.1:{port} (pid {os.getpid()}, ready controllers {'on' if args.ready else 'off'})", flush=True)
        await emulator.stopping.wait()
        await asyncio.sleep(0.1)  # let open watches see the stop and end their streams
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A Kubernetes API emulator on 127.0.0.1 (not a cluster: no Pods, no images).")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1; 0 (default) picks a free one and prints it")
    parser.add_argument("--ready", action="store_true", help="fake controllers: workloads ready, PVCs bound, Jobs complete (or failed by annotation)")
    parser.add_argument("--port-file", help="write the port here once the emulator answers")
    parser.add_argument("--kubeconfig", help="write a kubeconfig for the emulator here (mode 0600)")
    parser.add_argument("--context", default="kube-emulator", help="context, cluster and user name in that kubeconfig")
    parser.add_argument("--verbose", action="store_true", help="log every request, not only writes and errors")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port}: expected 0 (a free port) or 1-65535")
    try:
        code = asyncio.run(serve(args))
    except OSError as error:
        print(f"kube-emulator: cannot listen on 127.0.0.1:{args.port}: {error.strerror}", file=sys.stderr)
        return 1
    # The server is closed and every file written; the interpreter's own teardown of aiohttp and
    # kmock took seconds on a loaded machine, longer than callers wait before SIGKILL.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
