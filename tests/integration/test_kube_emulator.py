# SPDX-License-Identifier: GPL-3.0-or-later
"""The Kubernetes API emulator (scripts/kube_emulator.py) driven by the real clients.

No real Kubernetes API server can run on these machines, so these tests run helm v3.18 and v4.1,
the ``kubernetes`` Python client and kubernetes.core against an emulator: it stores objects and
answers the API, but it is not a cluster. No Pods run and no images are pulled; with ``--ready``
the emulator writes a ready status itself (a Deployment gets an owned ReplicaSet, a Job is Complete,
or Failed when annotated ``kube-emulator/job-outcome: failed``). What these tests show is that helm
and the clients work against the emulator's API semantics, not that a workload would start.

Each test starts an emulator of its own on a free loopback port (the ``kube_emulator`` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import run_playbook
from kube import TOOLS, KubeEmulator, run_killable
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

HERE = Path(__file__).resolve().parent
CHART = HERE / "fixtures" / "charts" / "emulator-web"
PLAYBOOK = HERE / "playbooks" / "kube_emulator_httproute.yml"
IMAGE_1 = "127.0.0.1:5000/stellaops/web@sha256:" + "1" * 64
IMAGE_3 = "127.0.0.1:5000/stellaops/web@sha256:" + "3" * 64
HELMS = {"helm3": "helm", "helm4": "helm4"}
# Helm 4 renamed --atomic.
ROLLBACK_ON_FAILURE = {"helm3": "--atomic", "helm4": "--rollback-on-failure"}

helm_versions = pytest.mark.parametrize("helm_version", sorted(HELMS))


def helm(helm_version: str, emulator: KubeEmulator, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    binary = TOOLS / HELMS[helm_version]
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run 'make setup'")
    return run_killable([str(binary), *args], emulator.env(), timeout)


def helm_ok(helm_version: str, emulator: KubeEmulator, *args: str) -> str:
    result = helm(helm_version, emulator, *args)
    assert result.returncode == 0, f"helm {' '.join(args)}: {result.stderr}"
    return result.stdout


def history(helm_version: str, emulator: KubeEmulator, release: str, namespace: str) -> list[tuple[int, str, str]]:
    rows = json.loads(helm_ok(helm_version, emulator, "history", release, "-n", namespace, "-o", "json"))
    return [(row["revision"], row["status"], row["description"]) for row in rows]


def api(emulator: KubeEmulator) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(emulator.kubeconfig))


def deployment_state(emulator: KubeEmulator, namespace: str, name: str = "web-web") -> tuple[str, str]:
    deployment = client.AppsV1Api(api(emulator)).read_namespaced_deployment(name, namespace)
    return deployment.spec.template.spec.containers[0].image, deployment.spec.template.metadata.labels["color"]


@helm_versions
def test_install_upgrade_history_and_rollback_to_a_revision(kube_emulator: KubeEmulator, helm_version: str) -> None:
    ns = "lifecycle"
    emulator = kube_emulator
    helm_ok(helm_version, emulator, "install", "web", str(CHART), "-n", ns, "--create-namespace", "--wait", "--timeout", "60s")
    core = client.CoreV1Api(api(emulator))
    cluster_ip = core.read_namespaced_service("web-web", ns).spec.cluster_ip
    assert cluster_ip

    helm_ok(helm_version, emulator, "upgrade", "web", str(CHART), "-n", ns, "--set", f"image={IMAGE_3}", "--set", "color=green", "--wait", "--timeout", "60s")
    assert deployment_state(emulator, ns) == (IMAGE_3, "green")
    deployment = client.AppsV1Api(api(emulator)).read_namespaced_deployment("web-web", ns)
    assert deployment.metadata.generation == 2
    assert deployment.status.observed_generation == 2
    assert deployment.status.ready_replicas == 2
    service = core.read_namespaced_service("web-web", ns)
    assert service.spec.cluster_ip == cluster_ip, "the Service kept its clusterIP across the upgrade"
    assert service.spec.selector["color"] == "green"

    # A second release in the namespace: its release Secrets must not show in web's history.
    helm_ok(helm_version, emulator, "install", "other", str(CHART), "-n", ns)

    helm_ok(helm_version, emulator, "rollback", "web", "1", "-n", ns, "--wait", "--timeout", "60s")
    assert deployment_state(emulator, ns) == (IMAGE_1, "blue")
    assert history(helm_version, emulator, "web", ns) == [
        (1, "superseded", "Install complete"),
        (2, "superseded", "Upgrade complete"),
        (3, "deployed", "Rollback to 1"),
    ]
    values = json.loads(helm_ok(helm_version, emulator, "get", "values", "web", "-n", ns, "--revision", "2", "-o", "json"))
    assert values == {"image": IMAGE_3, "color": "green"}
    secrets = core.list_namespaced_secret(ns, label_selector="owner=helm,name=web").items
    assert sorted(secret.metadata.name for secret in secrets) == [f"sh.helm.release.v1.web.v{n}" for n in (1, 2, 3)]
    deployed = core.list_namespaced_secret(ns, label_selector="owner=helm,status in (deployed)").items
    assert sorted(secret.metadata.labels["name"] for secret in deployed) == ["other", "web"]

    helm_ok(helm_version, emulator, "uninstall", "other", "-n", ns)
    assert [row[0] for row in history(helm_version, emulator, "web", ns)] == [1, 2, 3]
    assert core.list_namespaced_secret(ns, label_selector="owner=helm,name=other").items == []


@helm_versions
def test_failed_upgrades_are_recorded_and_rolled_back(kube_emulator: KubeEmulator, helm_version: str) -> None:
    ns = "failures"
    emulator = kube_emulator
    helm_ok(helm_version, emulator, "install", "web", str(CHART), "-n", ns, "--create-namespace", "--wait", "--timeout", "60s")

    # An object the API rejects (422): the upgrade fails and is recorded as failed; nothing rolls back.
    rejected = helm(helm_version, emulator, "upgrade", "web", str(CHART), "-n", ns, "--set", "extraConfigMapName=Bad_Name", "--set", "color=green")
    assert rejected.returncode == 1
    assert 'ConfigMap "Bad_Name" is invalid' in rejected.stderr
    rows = history(helm_version, emulator, "web", ns)
    assert rows[-1][:2] == (2, "failed")
    assert 'ConfigMap "Bad_Name" is invalid' in rows[-1][2]

    # The same with rollback on failure: a failed revision, then a rollback to the deployed one.
    bad_name = ("--set", "extraConfigMapName=Bad_Name")
    atomic = helm(helm_version, emulator, "upgrade", "web", str(CHART), "-n", ns, *bad_name, ROLLBACK_ON_FAILURE[helm_version], "--timeout", "60s")
    assert atomic.returncode == 1
    assert "has been rolled back" in atomic.stderr
    rows = history(helm_version, emulator, "web", ns)
    assert rows[2][:2] == (3, "failed") and 'ConfigMap "Bad_Name" is invalid' in rows[2][2]
    assert rows[3] == (4, "deployed", "Rollback to 1")

    # A pre-upgrade hook Job that fails (BackoffLimitExceeded) with rollback on failure.
    hooked = helm(
        helm_version, emulator, "upgrade", "web", str(CHART), "-n", ns, "--set", "hook.enabled=true", "--set", "hook.outcome=failed",
        "--set", f"image={IMAGE_3}", ROLLBACK_ON_FAILURE[helm_version], "--timeout", "60s",
    )  # fmt: skip
    assert hooked.returncode == 1
    assert "pre-upgrade hooks failed" in hooked.stderr
    rows = history(helm_version, emulator, "web", ns)
    assert rows[4][:2] == (5, "failed") and "pre-upgrade hooks failed" in rows[4][2]
    assert rows[5] == (6, "deployed", "Rollback to 4")
    assert deployment_state(emulator, ns) == (IMAGE_1, "blue"), "the running objects are those of the deployed revision"
    job = client.BatchV1Api(api(emulator)).read_namespaced_job("web-pre-upgrade", ns)
    assert [(c.type, c.reason) for c in job.status.conditions] == [("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]

    # The same hook completing: the upgrade goes through.
    hook = ("--set", "hook.enabled=true")
    helm_ok(helm_version, emulator, "upgrade", "web", str(CHART), "-n", ns, *hook, "--set", f"image={IMAGE_3}", "--wait", "--timeout", "60s")
    assert history(helm_version, emulator, "web", ns)[-1][:2] == (7, "deployed")
    assert deployment_state(emulator, ns) == (IMAGE_3, "blue")


@helm_versions
def test_wait_is_honoured_when_nothing_becomes_ready(kube_emulator_plain: KubeEmulator, helm_version: str) -> None:
    """Without the fake controllers nothing is ever ready: --wait must fail at its timeout."""
    ns = "waiting"
    result = helm(helm_version, kube_emulator_plain, "install", "web", str(CHART), "-n", ns, "--create-namespace", "--wait", "--timeout", "3s")
    assert result.returncode == 1
    assert history(helm_version, kube_emulator_plain, "web", ns)[0][:2] == (1, "failed")
    deployment = client.AppsV1Api(api(kube_emulator_plain)).read_namespaced_deployment("web-web", ns)
    assert deployment.status is None or not deployment.status.ready_replicas


def test_python_client_lists_patches_and_errors(kube_emulator: KubeEmulator) -> None:
    api_client = api(kube_emulator)
    core, apps, custom = client.CoreV1Api(api_client), client.AppsV1Api(api_client), client.CustomObjectsApi(api_client)
    ns = "client"
    core.create_namespace({"metadata": {"name": ns}})
    for name, labels in (("a", {"tier": "web", "color": "blue"}), ("b", {"tier": "db"}), ("c", {"tier": "web", "color": "green"})):
        core.create_namespaced_config_map(ns, {"metadata": {"name": name, "labels": labels}, "data": {"key": name}})
    core.create_namespaced_secret(ns, {"metadata": {"name": "creds", "labels": {"tier": "web"}}, "stringData": {"password": "s3cret"}})

    def names(items: list[Any]) -> list[str]:
        return sorted(item.metadata.name for item in items)

    assert names(core.list_namespaced_config_map(ns, label_selector="tier=web").items) == ["a", "c"]
    assert names(core.list_namespaced_config_map(ns, label_selector="tier in (web,db),color!=green").items) == ["a", "b"]
    assert names(core.list_namespaced_config_map(ns, label_selector="!color").items) == ["b"]
    assert names(core.list_namespaced_config_map(ns, field_selector="metadata.name=b").items) == ["b"]
    listed = core.list_namespaced_secret(ns, label_selector="tier")
    assert listed.kind == "SecretList" and listed.metadata.resource_version.isdigit()
    assert listed.items[0].data == {"password": "czNjcmV0"}, "stringData is stored as base64 data"

    # Merge patch (through the dynamic client, as kubernetes.core sends it): null deletes a key.
    # Dry run: the answer shows the change, nothing is stored.
    resources = dynamic.DynamicClient(api_client).resources
    config_maps = resources.get(api_version="v1", kind="ConfigMap")
    config_maps.patch(name="a", namespace=ns, body={"data": {"key": None, "new": "1"}}, content_type="application/merge-patch+json")
    assert core.read_namespaced_config_map("a", ns).data == {"new": "1"}
    dry = core.patch_namespaced_config_map("a", ns, {"data": {"new": "2"}}, dry_run="All")
    assert dry.data == {"new": "2"}
    assert core.read_namespaced_config_map("a", ns).data == {"new": "1"}

    # Strategic merge patch merges containers by name; generation moves only with the spec.
    containers = [{"name": "web", "image": IMAGE_1}, {"name": "sidecar", "image": IMAGE_1}]
    labels = {"app": "web"}
    template = {"metadata": {"labels": labels}, "spec": {"containers": containers}}
    apps.create_namespaced_deployment(ns, {"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": labels}, "template": template}})
    patched = apps.patch_namespaced_deployment("web", ns, {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": IMAGE_3}]}}}})
    assert [(c.name, c.image) for c in patched.spec.template.spec.containers] == [("web", IMAGE_3), ("sidecar", IMAGE_1)]
    assert patched.metadata.generation == 2
    relabelled = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"team": "a"}}})
    assert relabelled.metadata.generation == 2
    assert relabelled.status.ready_replicas == 1, "the fake Deployment controller wrote a ready status"

    # The scale subresource (kubectl scale, kubernetes.core.k8s_scale): a Scale object whose spec.replicas is the
    # Deployment's; a write changes nothing else, and the controller follows; a negative count is refused.
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert (scale.kind, scale.spec.replicas, scale.status.selector) == ("Scale", 1, "app=web")
    assert apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 0}}).spec.replicas == 0
    stopped = apps.read_namespaced_deployment("web", ns)
    assert (stopped.spec.replicas, stopped.status.ready_replicas or 0, stopped.metadata.labels) == (0, 0, {"team": "a"})
    assert [(c.name, c.image) for c in stopped.spec.template.spec.containers] == [("web", IMAGE_3), ("sidecar", IMAGE_1)]

    # JSON patch on an HTTPRoute's weights.
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "web"},
        "spec": {"rules": [{"backendRefs": [{"name": "web-blue", "port": 80, "weight": 100}, {"name": "web-green", "port": 80, "weight": 0}]}]},
    }
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", route)
    operations = [
        {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 0},
        {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 100},
    ]
    routes = resources.get(api_version="gateway.networking.k8s.io/v1", kind="HTTPRoute")
    routes.patch(name="web", namespace=ns, body=operations, content_type="application/json-patch+json")
    stored = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", "web")
    assert [ref["weight"] for ref in stored["spec"]["rules"][0]["backendRefs"]] == [0, 100]

    # Errors carry the API's codes.
    def status_of(call: Any, *args: Any, **kwargs: Any) -> int:
        with pytest.raises(ApiException) as raised:
            call(*args, **kwargs)
        return int(raised.value.status)

    assert status_of(core.read_namespaced_config_map, "missing", ns) == 404
    assert status_of(apps.patch_namespaced_deployment_scale, "web", ns, {"spec": {"replicas": -1}}) == 422
    # CustomObjectsApi sends any body as a merge patch: a list is not one. Custom resources take no
    # strategic merge patch.
    assert status_of(custom.patch_namespaced_custom_object, "gateway.networking.k8s.io", "v1", ns, "httproutes", "web", operations) == 400
    strategic = "application/strategic-merge-patch+json"
    assert status_of(routes.patch, name="web", namespace=ns, body={"metadata": {"labels": {"a": "b"}}}, content_type=strategic) == 415
    assert status_of(core.create_namespaced_config_map, ns, {"metadata": {"name": "b"}}) == 409
    # as a cluster's NamespaceLifecycle admission: nothing is created in a namespace that does not exist
    assert status_of(core.create_namespaced_config_map, "no-such-namespace", {"metadata": {"name": "b"}}) == 404
    assert status_of(core.create_namespaced_config_map, ns, {"metadata": {"name": "Bad_Name"}}) == 422
    rejected = {"metadata": {"name": "refused", "annotations": {"kube-emulator/reject": "test"}}}
    assert status_of(core.create_namespaced_config_map, ns, rejected) == 422
    stale = core.read_namespaced_config_map("b", ns)
    core.patch_namespaced_config_map("b", ns, {"data": {"key": "changed"}})
    assert status_of(core.replace_namespaced_config_map, "b", ns, stale) == 409

    # A watch that resumes from a list's resourceVersion gets what happened after it.
    since = core.list_namespaced_config_map(ns).metadata.resource_version
    core.create_namespaced_config_map(ns, {"metadata": {"name": "d"}})
    core.delete_namespaced_config_map("c", ns)
    events = [
        (event["type"], event["object"].metadata.name)
        for event in watch.Watch().stream(core.list_namespaced_config_map, ns, resource_version=since, timeout_seconds=1)
    ]
    assert events == [("ADDED", "d"), ("DELETED", "c")]


def test_kubernetes_core_merge_patches_httproute_weights(kube_emulator: KubeEmulator, tmp_path: Path) -> None:
    ns, name = "routes", "web"
    custom = client.CustomObjectsApi(api(kube_emulator))
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "annotations": {"owner": "bluegreen"}},
        "spec": {
            "parentRefs": [{"name": "gateway"}],
            "rules": [{"backendRefs": [{"name": f"{name}-blue", "port": 80, "weight": 100}, {"name": f"{name}-green", "port": 80, "weight": 0}]}],
        },
    }
    client.CoreV1Api(api(kube_emulator)).create_namespace({"metadata": {"name": ns}})
    custom.create_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", route)
    inventory = tmp_path / "inventory"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")

    def weights() -> list[int]:
        stored = custom.get_namespaced_custom_object("gateway.networking.k8s.io", "v1", ns, "httproutes", name)
        assert stored["metadata"]["annotations"] == {"owner": "bluegreen"}, "a merge patch keeps what it does not name"
        assert stored["spec"]["parentRefs"] == [{"name": "gateway"}]
        return [ref["weight"] for ref in stored["spec"]["rules"][0]["backendRefs"]]

    def patch(blue: int, green: int, check: bool = False) -> bool:
        extra = {"route_kubeconfig": str(kube_emulator.kubeconfig), "route_namespace": ns, "route_name": name}
        extra |= {"route_blue_weight": blue, "route_green_weight": green}
        result = run_playbook(PLAYBOOK, inventory=inventory, extra_vars=extra, check=check, timeout=300)
        assert result.rc == 0, result.failure_messages or result.stderr[-2000:]
        return bool(result.result("Patch the route's backend weights")["changed"])

    assert patch(75, 25, check=True) is True
    assert weights() == [100, 0], "check mode (a server dry run) stores nothing"
    assert patch(75, 25) is True
    assert weights() == [75, 25]
    assert patch(75, 25) is False, "the same weights again change nothing"
