# SPDX-License-Identifier: GPL-3.0-or-later
"""The pure parts of the Kubernetes API emulator (scripts/kube_emulator.py): protobuf decoding,
selectors, patches, server-side apply, validation and the fake controllers of its store."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "scripts"))

import kube_emulator as emulator  # noqa: E402

# --------------------------------------------------------------------------- protobuf


def _varint(value: int) -> bytes:
    out = b""
    while True:
        byte, value = value & 0x7F, value >> 7
        out += bytes([byte | (0x80 if value else 0)])
        if not value:
            return out


def _field(number: int, value: bytes | int) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _entry(key: str, value: bytes) -> bytes:
    return _field(1, key.encode()) + _field(2, value)


def _envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = _field(1, api_version.encode()) + _field(2, kind.encode())
    return b"k8s\x00" + _field(1, type_meta) + _field(2, raw) + _field(3, b"") + _field(4, b"")


def test_decodes_a_helm_release_secret_sent_as_protobuf() -> None:
    payload = bytes(range(256))  # release data is gzip: any byte may occur
    meta = (
        _field(1, b"sh.helm.release.v1.web.v1") + _field(3, b"demo") + _field(6, b"42") + _field(7, 3)
        + _field(11, _entry("owner", b"helm")) + _field(11, _entry("status", b"deployed"))
        + _field(12, _entry("note", b"x")) + _field(14, b"example.com/keep")
    )  # fmt: skip
    secret = _field(1, meta) + _field(2, _entry("release", payload)) + _field(3, b"helm.sh/release.v1")
    decoded = emulator.decode_protobuf(_envelope("v1", "Secret", secret))
    assert decoded == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sh.helm.release.v1.web.v1",
            "namespace": "demo",
            "resourceVersion": "42",
            "generation": 3,
            "labels": {"owner": "helm", "status": "deployed"},
            "annotations": {"note": "x"},
            "finalizers": ["example.com/keep"],
        },
        "data": {"release": base64.b64encode(payload).decode()},
        "type": "helm.sh/release.v1",
    }


def test_decodes_a_config_map_and_refuses_other_kinds() -> None:
    config_map = _field(1, _field(1, b"settings")) + _field(2, _entry("color", b"blue")) + _field(3, _entry("blob", b"\xff\x00")) + _field(4, 1)
    decoded = emulator.decode_protobuf(_envelope("v1", "ConfigMap", config_map))
    assert decoded["data"] == {"color": "blue"}
    assert decoded["binaryData"] == {"blob": base64.b64encode(b"\xff\x00").decode()}
    assert decoded["immutable"] is True
    with pytest.raises(ValueError, match="kind Pod"):
        emulator.decode_protobuf(_envelope("v1", "Pod", b""))
    with pytest.raises(ValueError, match="magic"):
        emulator.decode_protobuf(b'{"kind": "Secret"}')


# --------------------------------------------------------------------------- selectors


LABELS = {"owner": "helm", "name": "web", "status": "deployed"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("owner=helm,name=web", True),
        ("owner==helm,name=other", False),
        ("name!=other", True),
        ("name!=web", False),
        ("status in (deployed, superseded)", True),
        ("status notin (deployed)", False),
        ("status in (failed),owner", False),
        ("owner", True),
        ("!owner", False),
        ("!missing", True),
        ("missing!=x", True),
        ("missing in (x)", False),
    ],
)
def test_label_selectors(selector: str, matches: bool) -> None:
    assert emulator.labels_match(emulator.parse_label_selector(selector), LABELS) is matches


@pytest.mark.parametrize("selector", ["a in b", "=x", "!a=b"])
def test_a_bad_label_selector_is_a_400(selector: str) -> None:
    with pytest.raises(emulator.ApiError) as raised:
        emulator.parse_label_selector(selector)
    assert raised.value.status == 400


def test_field_selectors() -> None:
    obj = {"metadata": {"name": "web", "namespace": "demo"}, "type": "Opaque"}
    assert emulator.fields_match("metadata.name=web,metadata.namespace==demo", obj)
    assert not emulator.fields_match("metadata.name!=web", obj)
    assert emulator.fields_match("type=Opaque", obj)
    assert not emulator.fields_match("spec.nodeName=x", obj)


# --------------------------------------------------------------------------- patches


@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [  # RFC 7386, appendix A
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_merge_patch(target: Any, patch: Any, result: Any) -> None:
    assert emulator.merge_patch(target, patch) == result


POD_SPEC = {
    "containers": [
        {"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}], "ports": [{"containerPort": 80}]},
        {"name": "sidecar", "image": "side:1"},
    ],
    "volumes": [{"name": "data", "emptyDir": {}}],
}


def test_strategic_merge_patch_merges_lists_by_their_key() -> None:
    patch = {"containers": [{"name": "web", "image": "web:2", "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}]}]}
    merged = emulator.strategic_merge_patch(POD_SPEC, patch)
    web, sidecar = merged["containers"]
    assert web["image"] == "web:2" and sidecar == {"name": "sidecar", "image": "side:1"}
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "3"}, {"name": "C", "value": "4"}]
    assert web["ports"] == [{"containerPort": 80}]
    assert POD_SPEC["containers"][0]["image"] == "web:1", "the original is not changed"


def test_strategic_merge_patch_directives() -> None:
    patch = {
        "containers": [{"name": "sidecar", "$patch": "delete"}],
        "$setElementOrder/volumes": [{"name": "cache"}, {"name": "data"}],
        "volumes": [{"name": "cache", "emptyDir": {}}],
    }
    merged = emulator.strategic_merge_patch(POD_SPEC, patch)
    assert [c["name"] for c in merged["containers"]] == ["web"]
    assert [v["name"] for v in merged["volumes"]] == ["cache", "data"]
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}
    retained = emulator.strategic_merge_patch({"strategy": strategy}, {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}})
    assert retained == {"strategy": {"type": "Recreate"}}
    assert emulator.strategic_merge_patch({"finalizers": ["a", "b"]}, {"$deleteFromPrimitiveList/finalizers": ["a"]}) == {"finalizers": ["b"]}
    assert emulator.strategic_merge_patch({"spec": {"a": 1, "b": 2}}, {"spec": {"$patch": "replace", "c": 3}}) == {"spec": {"c": 3}}
    assert emulator.strategic_merge_patch({"ports": [{"port": 80, "name": "http"}, {"port": 443}]}, {"ports": [{"port": 80, "targetPort": 8080}]}) == {
        "ports": [{"port": 80, "name": "http", "targetPort": 8080}, {"port": 443}],
    }
    assert emulator.strategic_merge_patch({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}, "lists without a key are replaced"


def test_server_side_apply_drops_only_what_the_manager_no_longer_applies() -> None:
    live = {"metadata": {"name": "web", "labels": {"a": "1", "by-other": "x"}}, "spec": {"selector": {"color": "blue", "app": "web"}, "clusterIP": "10.96.0.7"}}
    first = {"metadata": {"name": "web", "labels": {"a": "1"}}, "spec": {"selector": {"color": "blue", "app": "web"}}}
    applied, owned = emulator.server_side_apply(live, first, set())
    assert applied == live
    second = {"metadata": {"name": "web"}, "spec": {"selector": {"color": "green"}}}
    applied, owned = emulator.server_side_apply(applied, second, owned)
    assert applied == {"metadata": {"name": "web", "labels": {"by-other": "x"}}, "spec": {"selector": {"color": "green"}, "clusterIP": "10.96.0.7"}}
    assert owned == {("spec", "selector", "color")}


# --------------------------------------------------------------------------- the store


def _store(ready: bool = True) -> emulator.Store:
    return emulator.Store(ready=ready)


def test_writes_assign_metadata_and_bump_generation_only_for_spec_changes() -> None:
    store = _store(ready=False)
    config_maps = store.types[("", "configmaps")]
    created = store.put(config_maps, "demo", {"metadata": {"name": "a"}, "data": {"k": "v"}}, None)
    assert created["metadata"]["generation"] == 1 and created["metadata"]["namespace"] == "demo" and created["kind"] == "ConfigMap"
    revision = int(created["metadata"]["resourceVersion"])
    relabelled = store.put(config_maps, "demo", emulator.merge_patch(created, {"metadata": {"labels": {"x": "y"}}}), created)
    assert relabelled["metadata"]["generation"] == 1 and int(relabelled["metadata"]["resourceVersion"]) == revision + 1
    changed = store.put(config_maps, "demo", emulator.merge_patch(relabelled, {"data": {"k": "w"}}), relabelled)
    assert changed["metadata"]["generation"] == 2 and changed["metadata"]["uid"] == created["metadata"]["uid"]
    dry = store.put(config_maps, "demo", emulator.merge_patch(changed, {"data": {"k": "dry"}}), changed, dry_run=True)
    assert dry["data"] == {"k": "dry"} and store.get(config_maps, "demo", "a")["data"] == {"k": "w"}
    assert [event.kind for event in store.pending] == ["ADDED", "MODIFIED", "MODIFIED"]


@pytest.mark.parametrize(
    ("plural", "obj", "field"),
    [
        ("configmaps", {"metadata": {"name": "Bad_Name"}}, "metadata.name"),
        ("services", {"metadata": {"name": "has.dot"}}, "metadata.name"),
        ("configmaps", {"metadata": {"name": ""}}, "metadata.name"),
        ("configmaps", {"metadata": {"name": "ok", "annotations": {"kube-emulator/reject": "for the test"}}}, "metadata.annotations[kube-emulator/reject]"),
    ],
)
def test_objects_the_api_rejects_are_422_invalid(plural: str, obj: dict[str, Any], field: str) -> None:
    store = _store()
    with pytest.raises(emulator.ApiError) as raised:
        store.put(store.types[("", plural)], "demo", obj, None)
    assert raised.value.status == 422 and raised.value.reason == "Invalid"
    assert raised.value.details["causes"][0]["field"] == field
    assert store.get(store.types[("", plural)], "demo", obj["metadata"]["name"]) is None


def test_a_ready_deployment_owns_a_replica_set_for_its_template() -> None:
    store = _store()
    deployments, replica_sets = store.types[("apps", "deployments")], store.types[("apps", "replicasets")]
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}
    spec = {"replicas": 2, "selector": {"matchLabels": {"app": "web"}}, "template": template}
    deployment = store.put(deployments, "demo", {"metadata": {"name": "web"}, "spec": spec}, None)
    owned = store.select(replica_sets, "demo", "app=web", "")
    assert len(owned) == 1
    rs = owned[0]
    assert rs["metadata"]["ownerReferences"][0]["uid"] == deployment["metadata"]["uid"] and rs["metadata"]["ownerReferences"][0]["controller"]
    assert rs["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == rs["metadata"]["name"].rsplit("-", 1)[1]
    assert rs["status"]["readyReplicas"] == 2
    status = deployment["status"]
    assert status["observedGeneration"] == deployment["metadata"]["generation"] and status["availableReplicas"] == 2
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
    new_template = emulator.merge_patch(deployment, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "web:2"}]}}}})
    store.put(deployments, "demo", new_template, deployment)
    replicas = sorted(rs["spec"]["replicas"] for rs in store.select(replica_sets, "demo", "app=web", ""))
    assert replicas == [0, 2], "the old ReplicaSet is scaled to 0, the new one runs"


@pytest.mark.parametrize(("outcome", "condition", "reason"), [(None, "Complete", "CompletionsReached"), ("failed", "Failed", "BackoffLimitExceeded")])
def test_a_ready_job_completes_or_fails_by_annotation(outcome: str | None, condition: str, reason: str) -> None:
    store = _store()
    annotations = {"kube-emulator/job-outcome": outcome} if outcome else {}
    job = store.put(store.types[("batch", "jobs")], "demo", {"metadata": {"name": "migrate", "annotations": annotations}, "spec": {"backoffLimit": 0}}, None)
    assert job["status"]["conditions"][-1]["type"] == condition and job["status"]["conditions"][-1]["reason"] == reason


def test_a_job_to_run_in_docker_is_active_until_its_container_ends() -> None:
    store = _store()
    jobs = store.types[("batch", "jobs")]
    job = store.put(jobs, "demo", {"metadata": {"name": "migrate", "annotations": {"kube-emulator/run": "docker"}}, "spec": {"backoffLimit": 0}}, None)
    assert job["status"]["active"] == 1 and "conditions" not in job["status"]
    assert store.docker_jobs == [(("batch", "jobs"), "demo", "migrate")]
    store.put(jobs, "demo", {**job, "metadata": {**job["metadata"], "labels": {"seen": "yes"}}}, job)
    assert len(store.docker_jobs) == 1, "a write to a running Job does not start it again"
    store.finish_job(jobs, store.get(jobs, "demo", "migrate"), failed=True, reason="DeadlineExceeded")
    finished = store.get(jobs, "demo", "migrate")
    assert [c["reason"] for c in finished["status"]["conditions"]] == ["DeadlineExceeded", "DeadlineExceeded"]
    assert finished["status"]["startTime"] == job["status"]["startTime"]


def test_a_job_container_gets_the_environment_the_kubelet_would_give_it() -> None:
    server = emulator.Emulator()
    server.configure(ready=True, verbose=False)
    store = server.store
    store.put(store.types[("", "configmaps")], "demo", {"metadata": {"name": "config"}, "data": {"PGHOST": "127.0.0.1", "PGUSER": "app"}}, None)
    secret = {"metadata": {"name": "credentials"}, "data": {"PGPASSWORD": base64.b64encode(b"s3cret").decode()}}
    store.put(store.types[("", "secrets")], "demo", secret, None)
    container = {
        "envFrom": [{"configMapRef": {"name": "config"}}, {"secretRef": {"name": "credentials"}}, {"secretRef": {"name": "absent", "optional": True}}],
        "env": [{"name": "PGUSER", "value": "migrator"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "credentials", "key": "PGPASSWORD"}}}],
    }
    assert server.job_environment("demo", container) == {"PGHOST": "127.0.0.1", "PGUSER": "migrator", "PGPASSWORD": "s3cret", "TOKEN": "s3cret"}
    with pytest.raises(ValueError, match='configmap "missing" not found'):
        server.job_environment("demo", {"envFrom": [{"configMapRef": {"name": "missing"}}]})
    with pytest.raises(ValueError, match="couldn't find key NOPE in Secret demo/credentials"):
        server.job_environment("demo", {"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "credentials", "key": "NOPE"}}}]})


def test_without_ready_nothing_gets_a_status_but_a_service_gets_its_cluster_ip() -> None:
    store = _store(ready=False)
    job = store.put(store.types[("batch", "jobs")], "demo", {"metadata": {"name": "migrate"}, "spec": {}}, None)
    assert "status" not in job
    service = store.put(store.types[("", "services")], "demo", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 80}]}}, None)
    assert service["spec"]["clusterIP"].startswith("10.96.")
    again = store.put(store.types[("", "services")], "demo", {"metadata": {"name": "web"}, "spec": {"ports": [{"port": 81}]}}, service)
    assert again["spec"]["clusterIP"] == service["spec"]["clusterIP"]


def test_a_custom_resource_definition_declares_its_resource() -> None:
    store = _store()
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }
    created = store.put(store.types[("apiextensions.k8s.io", "customresourcedefinitions")], "", crd, None)
    assert {c["type"] for c in created["status"]["conditions"]} == {"NamesAccepted", "Established"}
    assert store.types[("example.com", "widgets")].kind == "Widget" and store.types[("example.com", "widgets")].custom
    store.delete(store.types[("apiextensions.k8s.io", "customresourcedefinitions")], "", "widgets.example.com")
    assert ("example.com", "widgets") not in store.types


def test_secret_and_config_map_data_have_the_api_servers_limits() -> None:
    store = _store()
    secrets = store.types[("", "secrets")]
    big = base64.b64encode(b"x" * (emulator.MAX_DATA_BYTES + 1)).decode()
    for obj, field in (
        ({"metadata": {"name": "big"}, "data": {"blob": big}}, "data"),
        ({"metadata": {"name": "bad"}, "data": {"blob": "not base64!"}}, "data[blob]"),
    ):
        with pytest.raises(emulator.ApiError) as raised:
            store.put(secrets, "demo", obj, None)
        assert raised.value.status == 422 and raised.value.details["causes"][0]["field"] == field
    exact = base64.b64encode(b"x" * emulator.MAX_DATA_BYTES).decode()
    assert store.put(secrets, "demo", {"metadata": {"name": "fits"}, "data": {"blob": exact}}, None)["metadata"]["name"] == "fits"
    with pytest.raises(emulator.ApiError):
        store.put(store.types[("", "configmaps")], "demo", {"metadata": {"name": "big"}, "data": {"text": "x" * (emulator.MAX_DATA_BYTES + 1)}}, None)


def test_deleting_collects_owned_objects_and_a_namespace_s_content() -> None:
    store = _store()
    deployments, replica_sets = store.types[("apps", "deployments")], store.types[("apps", "replicasets")]
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:1"}]}}
    spec = {"selector": {"matchLabels": {"app": "web"}}, "template": template}
    store.put(deployments, "blue", {"metadata": {"name": "web"}, "spec": spec}, None)
    store.put(deployments, "green", {"metadata": {"name": "web"}, "spec": spec}, None)
    store.put(store.types[("", "configmaps")], "blue", {"metadata": {"name": "settings"}}, None)
    store.put(store.types[("", "namespaces")], "", {"metadata": {"name": "blue"}}, None)
    store.delete(deployments, "green", "web")
    assert store.select(replica_sets, "green", "", "") == [], "the owned ReplicaSet went with its Deployment"
    store.delete(store.types[("", "namespaces")], "", "blue")
    assert [key for key in store.objects if key[1] == "blue"] == []
