# SPDX-License-Identifier: GPL-3.0-or-later
"""Blue/green (playbooks/bluegreen.yml, role helm_bluegreen) against the Kubernetes API EMULATOR
(scripts/kube_emulator.py with fake controllers: no Pods run, readiness is faked) and the sandbox's real
Prometheus, with the real helm binaries (3 and 4) and kubernetes.core.

Each test starts an emulator of its own, installs blue (release stellaops in stellaops-prod, its main
Ingress on) with helm, and, for the Gateway API router, an HTTPRoute to blue's Service. The gates read
request traffic that the test drives through the sandbox's metrics exporter under a namespace label of
its own. Pauses are 1 s, the rate window 15 s.

The migrations test is the exception to "no Pods run": the emulator runs a Job annotated
`kube-emulator/run: docker` as a container of the machine's Docker engine (its image from the sandbox
registry, its environment from the ConfigMaps and Secrets it names), against the sandbox's PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.deploy_lock import make_record
from databases import B_MIGRATION, FINDINGS, MIGRATIONS_BEFORE_B, columns, query, scratch_database
from kube import TOOLS, KubeEmulator, run_killable
from prometheus import drive, error_rate, wait_for_value

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "stellaops"
PLAYBOOK = "playbooks/bluegreen.yml"
# (router, helm binary): each scenario on both routers and on both Helm majors (Helm 4: server-side apply,
# kstatus wait), and each router with each Helm major in one of the two lists. The routing objects are moved
# by traffic_weight, the releases by helm_release; a third pair per list (about 50 s in CI) repeated both.
PROGRESSION = [("gateway", "helm"), ("nginx", "helm4")]
ABORT_AND_CUTOVER = [("nginx", "helm"), ("gateway", "helm4")]


@pytest.fixture
def cluster(kube_emulator: KubeEmulator) -> KubeEmulator:
    """An emulator of this test's own (with fake controllers)."""
    return kube_emulator


def kubectl(emulator: KubeEmulator, *args: str, data: str | None = None) -> str:
    done = subprocess.run([str(TOOLS / "kubectl"), *args], env=emulator.env(), input=data, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def get(emulator: KubeEmulator, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    done = subprocess.run([str(TOOLS / "kubectl"), "get", kind, name, "-n", namespace, "-o", "json"], env=emulator.env(),
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    return json.loads(done.stdout) if done.returncode == 0 else None


def install_blue(emulator: KubeEmulator, sandbox: dict[str, Any], router: str, helm: str = "helm", version: str = "2025.09.0") -> None:
    """Blue: the sandbox's stable release ``version``, its images and its name in the values (global.release), as helm_upgrade
    installs a release."""
    manifest = yaml.safe_load(Path(sandbox["manifests"][f"{version}-stable"]).read_text())["release"]
    values = {
        "global": {"release": {"version": version, "channel": "stable"}}, "ingress": {"enabled": router == "nginx"},
        "services": {c["name"]: {"image": c["image"]} for c in manifest["components"]},
    }  # fmt: skip
    values_file = emulator.kubeconfig.parent / "blue-values.json"
    values_file.write_text(json.dumps(values))
    done = run_killable([str(TOOLS / helm), "install", "stellaops", str(CHART), "-n", "stellaops-prod", "--create-namespace",
                         "-f", str(CHART / "values-prod.yaml"), "-f", str(values_file), "--wait", "--timeout", "60s"],
                        env=emulator.env(), timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    if router == "gateway":
        route = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "stellaops", "namespace": "stellaops-prod"},
            "spec": {"parentRefs": [{"name": "edge"}], "rules": [{"backendRefs": [{"name": "stellaops-scanner-web", "port": 8444}]}]},
        }
        kubectl(emulator, "apply", "-f", "-", data=json.dumps(route))


def bluegreen(playbook_runner: Any, emulator: KubeEmulator, sandbox: dict[str, Any], router: str, namespace: str, check: bool = False,
              helm: str = "helm", **extra: Any) -> Any:  # fmt: skip
    extra_vars = {
        "channel": "stable",
        "helm_bluegreen_helm_path": str(TOOLS / helm),
        "helm_bluegreen_router": router,
        "helm_bluegreen_kubeconfig": str(emulator.kubeconfig),
        "helm_bluegreen_kube_context": emulator.context,
        "helm_bluegreen_prometheus_url": sandbox["prometheus"]["url"],
        "helm_bluegreen_metric_selector": f'namespace="{namespace}"',
        "helm_bluegreen_rate_window": "15s",
        "helm_bluegreen_pause_seconds": 1,
        "helm_bluegreen_gate_interval": 1,
        "helm_bluegreen_inconclusive_limit": 20,
        "helm_bluegreen_timeout": "60s",
        **extra,
    }
    return playbook_runner(PLAYBOOK, extra_vars=extra_vars, check=check, env={"KUBECONFIG": str(emulator.kubeconfig)}, timeout=600)


def weights(result: Any) -> list[Any]:
    return [r.get("weight_after") for name, r in result.tasks() if "Send this share of the traffic to green" in name]


def green_weight(emulator: KubeEmulator, router: str) -> int | None:
    """Green's share as the routing object says: the canary weight, or the HTTPRoute backend weights."""
    if router == "nginx":
        canary = get(emulator, "ingress", "stellaops-canary", "stellaops-green")
        return None if canary is None else int(canary["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"])
    route = get(emulator, "httproutes.gateway.networking.k8s.io", "stellaops", "stellaops-prod")
    assert route is not None
    refs = {ref["name"]: ref.get("weight", 1) for ref in route["spec"]["rules"][0]["backendRefs"]}
    if "stellaops-green-scanner-web" not in refs:
        return None
    assert refs["stellaops-scanner-web"] + refs["stellaops-green-scanner-web"] == 100
    return int(refs["stellaops-green-scanner-web"])


@pytest.mark.parametrize(("router", "helm"), PROGRESSION)
def test_full_canary_progression(router: str, helm: str, cluster: KubeEmulator, sandbox: dict[str, Any], playbook_runner: Any) -> None:
    install_blue(cluster, sandbox, router, helm=helm)
    namespace = drive(sandbox, requests_per_second=40, error_ratio=0.002, latency_seconds=0.2, duration_seconds=300)
    wait_for_value(sandbox, error_rate(namespace))
    if router == "nginx":
        planned = bluegreen(playbook_runner, cluster, sandbox, router, namespace, check=True, helm=helm)
        assert planned.rc == 0, planned.failure_messages or planned.stderr[-2000:]
        assert weights(planned) == [10, 25, 50, 100]
        first = planned.result("Send this share of the traffic to green, percent 10")
        assert first["changed"] is True and first["diff"]["after"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"] == "10"
        assert get(cluster, "ingress", "stellaops-canary", "stellaops-green") is None  # check mode changed nothing
        assert get(cluster, "deployment", "stellaops-green-scanner-web", "stellaops-green") is None
    result = bluegreen(playbook_runner, cluster, sandbox, router, namespace, helm=helm)
    assert result.rc == 0, result.failure_messages or result.stderr[-2000:]
    assert weights(result) == [10, 25, 50, 100]
    assert result.result("Green release, with the category A migrations in its pre-install and pre-upgrade hook")["status"] == "deployed"
    assert [r["verdict"] for name, r in result.tasks() if "Gate the step" in name] == ["pass"] * 4
    assert green_weight(cluster, router) == 100
    assert result.result("Send this share of the traffic to green, percent 100")["full_traffic_since"]
    green = get(cluster, "deployment", "stellaops-green-scanner-web", "stellaops-green")
    assert green is not None and "@sha256:" in green["spec"]["template"]["spec"]["containers"][0]["image"]
    grant = get(cluster, "referencegrants.gateway.networking.k8s.io", "stellaops-green-from-stellaops-prod", "stellaops-green")
    if router == "gateway":  # the route in stellaops-prod may reach green's Service, and nothing else
        assert grant is not None and grant["spec"]["from"] == [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "namespace": "stellaops-prod"}]
        assert grant["spec"]["to"] == [{"group": "", "kind": "Service", "name": "stellaops-green-scanner-web"}]
    else:
        assert grant is None


@pytest.mark.parametrize(("router", "helm"), ABORT_AND_CUTOVER)
def test_gate_abort_routes_traffic_back_to_blue(router: str, helm: str, cluster: KubeEmulator, sandbox: dict[str, Any], playbook_runner: Any) -> None:
    install_blue(cluster, sandbox, router, helm=helm)
    namespace = drive(sandbox, requests_per_second=40, error_ratio=0.2, duration_seconds=300)
    wait_for_value(sandbox, error_rate(namespace))
    result = bluegreen(playbook_runner, cluster, sandbox, router, namespace, helm=helm)
    assert result.rc == 2
    assert weights(result)[0] == 10
    gate = result.result("Gate the step, percent 10")
    assert gate["verdict"] == "abort" and gate["gate"]["name"] == "error_rate" and gate["gate"]["value"] > 0.1
    [message] = [m for m in result.failure_messages if m.startswith("The cutover stopped")]
    assert message.startswith("The cutover stopped at 10% and the traffic is back on blue: Gate error_rate aborts: query 'sum(rate(")
    assert f"returned {gate['gate']['value']:.6g}, above the threshold 0.01." in message
    assert green_weight(cluster, router) == 0


@pytest.mark.parametrize(("router", "helm"), ABORT_AND_CUTOVER)
def test_instant_cutover_then_immediate_rollback(router: str, helm: str, cluster: KubeEmulator, sandbox: dict[str, Any], playbook_runner: Any) -> None:
    install_blue(cluster, sandbox, router, helm=helm)
    namespace = drive(sandbox, requests_per_second=40, duration_seconds=300)
    wait_for_value(sandbox, error_rate(namespace))
    cutover = bluegreen(playbook_runner, cluster, sandbox, router, namespace, helm=helm, helm_bluegreen_instant_cutover=True)
    assert cutover.rc == 0, cutover.failure_messages or cutover.stderr[-2000:]
    assert weights(cutover) == [100]
    assert green_weight(cluster, router) == 100
    rollback = bluegreen(playbook_runner, cluster, sandbox, router, namespace, helm=helm, helm_bluegreen_rollback=True)
    assert rollback.rc == 0, rollback.failure_messages or rollback.stderr[-2000:]
    undone = rollback.result("Immediate rollback, all traffic back to blue and the canary removed")
    assert undone["changed"] is True and undone["weight_before"] == 100 and undone["weight_after"] is None
    assert green_weight(cluster, router) is None  # canary Ingress deleted, or green backend removed
    again = bluegreen(playbook_runner, cluster, sandbox, router, namespace, helm=helm, helm_bluegreen_rollback=True)
    assert again.result("Immediate rollback, all traffic back to blue and the canary removed")["changed"] is False


@pytest.mark.parametrize("helm", ["helm", "helm4"])
def test_decommission_waits_for_the_observation_window(helm: str, cluster: KubeEmulator, sandbox: dict[str, Any], playbook_runner: Any) -> None:
    install_blue(cluster, sandbox, "nginx", helm=helm)
    namespace = drive(sandbox, requests_per_second=40, duration_seconds=300)
    wait_for_value(sandbox, error_rate(namespace))
    cutover = bluegreen(playbook_runner, cluster, sandbox, "nginx", namespace, helm=helm, helm_bluegreen_instant_cutover=True)
    assert cutover.rc == 0, cutover.failure_messages or cutover.stderr[-2000:]
    access = {"helm_bluegreen_kubeconfig": str(cluster.kubeconfig), "helm_bluegreen_kube_context": cluster.context,
              "helm_bluegreen_helm_path": str(TOOLS / helm)}  # fmt: skip
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    early = playbook_runner("playbooks/decommission_blue.yml", extra_vars=access, env=env, timeout=300)
    assert early.rc == 2
    [message] = early.failure_messages
    assert message.startswith("Blue stays: green has had all the traffic only since 20") and message.endswith("the observation window is 72 hours.")
    assert get(cluster, "ingress", "stellaops", "stellaops-prod") is not None
    done = playbook_runner("playbooks/decommission_blue.yml", extra_vars={**access, "helm_bluegreen_observation_hours": 0}, env=env, timeout=300)
    assert done.rc == 0, done.failure_messages or done.stderr[-2000:]
    promoted = get(cluster, "ingress", "stellaops-canary", "stellaops-green")
    assert promoted is not None and "nginx.ingress.kubernetes.io/canary" not in promoted["metadata"].get("annotations", {})
    assert get(cluster, "ingress", "stellaops", "stellaops-prod") is None  # went with blue's release
    assert "stellaops-green" in kubectl(cluster, "get", "secrets", "-A", "-l", "owner=helm", "-o", "name")
    assert "sh.helm.release.v1.stellaops.v" not in kubectl(cluster, "get", "secrets", "-n", "stellaops-prod", "-l", "owner=helm", "-o", "name")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"helm_bluegreen_steps": [10, 5, 100]},
         "helm_bluegreen_steps: expected whole percentages that increase and end at 100 (for example [10, 25, 50, 100]), got [10, 5, 100]."),
        ({"helm_bluegreen_steps": [10, 50]},
         "helm_bluegreen_steps: expected whole percentages that increase and end at 100 (for example [10, 25, 50, 100]), got [10, 50]."),
        ({"helm_bluegreen_gates": [{"name": "error_rate", "query": "sum(rate(http_requests_total[1m])", "threshold": 0.01}]},
         "Gate error_rate: prometheus rejected the query 'sum(rate(http_requests_total[1m])': invalid parameter \"query\": "
         "1:34: parse error: unclosed left parenthesis."),
        # prerequisites, found before green's namespace is created
        ({"helm_bluegreen_main_ingress": "no-such-ingress"},
         "The nginx router needs blue's Ingress no-such-ingress in namespace stellaops-prod, which does not exist; "
         "set helm_bluegreen_main_ingress to the one that serves blue. Nothing was changed."),
        ({"helm_bluegreen_helm_path": "/nonexistent/helm"},
         "The helm executable /nonexistent/helm (its path option) does not exist or is not executable."),
        # blue runs 2025.09.0; the edge channel's 2025.11.0 upgrades from 2025.10.0 only
        ({"channel": "edge", "release": "2025.11.0"},
         "Blue (stellaops in stellaops-prod) runs a release that green's cannot replace directly: 2025.09.0 cannot upgrade to 2025.11.0:"
         " no chain of edge releases leads there (2025.11.0 upgrades from 2025.10.0). Nothing was changed."),
    ],
    ids=["not-increasing", "not-ending-at-100", "promql-error", "no-blue-ingress", "no-helm", "no-upgrade-path"],
)  # fmt: skip
def test_bad_input_is_one_sentence_and_changes_nothing(extra: dict[str, Any], message: str, cluster: KubeEmulator, sandbox: dict[str, Any],
                                                       playbook_runner: Any) -> None:  # fmt: skip
    install_blue(cluster, sandbox, "nginx")
    result = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", **extra)
    assert result.rc == 2
    assert result.failure_messages == [message]
    assert "Traceback" not in result.stdout + result.stderr
    assert get(cluster, "namespace", "stellaops-green", "default") is None
    assert get(cluster, "ingress", "stellaops-canary", "stellaops-green") is None


# The emulator runs these Jobs' containers in docker (scripts/kube_emulator.py): the chart's category A hook and the B Job.
RUN_IN_DOCKER = {"kube-emulator/run": "docker"}


def jobs(emulator: KubeEmulator, name: str) -> list[dict[str, Any]]:
    return json.loads(kubectl(emulator, "get", "jobs", "-n", "stellaops-green", "-l", f"app.kubernetes.io/name={name}", "-o", "json"))["items"]


def test_category_b_migrations_run_in_a_job_in_green_before_the_traffic_moves(
    cluster: KubeEmulator, sandbox: dict[str, Any], playbook_runner: Any, tmp_path: Path
) -> None:
    """Blue on 2025.10.0: green on 2025.09.0 is refused (a return). Green on 2025.11.0 (edge), whose category B migration adds findings.weight and renames
    findings.score, on a database of this test's own. Without an approval that names it the run stops before any change;
    check mode with the approval says the Job would run and creates nothing; a Job whose migration fails (no findings
    table yet) stops the run with green installed and no traffic moved; so does a Job that exits 0 without applying it
    (the table decides); a run while another holds the environment lock is refused before any Job starts; the rerun
    applies it in a new Job (and releases the lock), the table shows it applied and the traffic moves. Judged
    from the database and the cluster's objects. The chart's category A hook really runs too (nothing is pending for
    it). Gates: one constant query (the gates have tests of their own). Cost: about 75 s (seven runs, green's install
    with its hook Job and three B Jobs in docker)."""
    install_blue(cluster, sandbox, "nginx", version="2025.10.0")
    lock = tmp_path / "migrations.lock"
    with scratch_database(sandbox, MIGRATIONS_BEFORE_B) as database:
        values = tmp_path / "green-values.json"
        values.write_text(json.dumps({
            "database": {"host": database["host"], "port": database["port"], "name": database["database"], "user": database["user"]},
            "migrations": {"annotations": RUN_IN_DOCKER},
        }))  # fmt: skip
        asked = {
            "channel": "edge", "release": "2025.11.0", "helm_bluegreen_instant_cutover": True,
            "helm_bluegreen_values_files": [str(CHART / "values-prod.yaml"), str(values)],
            "helm_bluegreen_secret_values": {"credentials": {"PGPASSWORD": database["password"]}},
            "helm_bluegreen_database": database, "helm_bluegreen_migrations_job_annotations": RUN_IN_DOCKER,
            "helm_bluegreen_gates": [{"name": "constant", "query": "vector(0)", "threshold": 1, "action": "abort"}],
            "helm_bluegreen_lock_path": str(lock),
        }  # fmt: skip
        approved = {**asked, "stellaops_approval": {"migrations": [B_MIGRATION]}}

        # Blue/green moves forward only: green on 2025.09.0 below blue's 2025.10.0 is refused before any change.
        older = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", **{**asked, "channel": "stable", "release": "2025.09.0"})
        assert older.rc == 2
        assert older.failure_messages == [
            "Blue (stellaops in stellaops-prod) runs a release that green's cannot replace directly: 2025.10.0 is newer than 2025.09.0,"
            " and blue/green moves forward only: a return is playbooks/rollback.yml, which judges the database. Nothing was changed."
        ]
        assert get(cluster, "namespace", "stellaops-green", "default") is None

        refused = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", **asked)
        assert refused.rc == 2
        assert refused.failure_messages == [
            f"Category B migration(s) {B_MIGRATION} of green's release may break the release blue runs and need an approval that names them"
            " (stellaops_approval.migrations); nothing was changed."
        ]
        assert get(cluster, "namespace", "stellaops-green", "default") is None

        planned = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", check=True, **approved)
        assert planned.rc == 0, planned.failure_messages or planned.stderr[-2000:]
        assert planned.result("Say which category B migrations the Job runs")["msg"] == (
            f"Category B migration(s) {B_MIGRATION} would run in a Job in stellaops-green with the image of authority, before any traffic moves."
        )
        assert get(cluster, "namespace", "stellaops-green", "default") is None

        failed = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", **approved)
        assert failed.rc == 2
        [message] = failed.failure_messages
        assert message.startswith("The category B migrations Job stellaops-green-migrations-b-")
        assert "in stellaops-green failed (BackoffLimitExceeded; its log: kubectl logs -n stellaops-green job/" in message
        assert message.endswith("no traffic was moved to green.")
        [failed_job] = jobs(cluster, "migrations-b")
        assert failed_job["spec"]["template"]["spec"]["containers"][0]["command"][-2:] == ["--ids", B_MIGRATION]
        assert get(cluster, "deployment", "stellaops-green-authority", "stellaops-green") is not None
        assert green_weight(cluster, "nginx") is None
        assert query(database, "SELECT version FROM schema_migrations ORDER BY version;\n") == [["20250901000000"], ["20251001000000"]]

        # A Job that exits 0 without applying anything: the table decides, and no traffic moves.
        silent = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", **approved, helm_bluegreen_category_b_command=["true"])
        assert silent.rc == 2
        assert silent.failure_messages == [f"Migration(s) {B_MIGRATION} not applied in schema_migrations of database {database['database']}."]
        assert green_weight(cluster, "nginx") is None

        # Another run of the environment holds its lock (a live process of this controller): refused before any Job starts.
        record = make_record("bluegreen-another-run", environment="prod", owner="someone", pid=os.getpid(), release_id="2025.11.0")
        lock.write_text(json.dumps(record))
        held = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", **approved)
        assert held.rc == 2
        [message] = held.failure_messages
        holder = f"run bluegreen-another-run from controller {record['controller']} (pid {os.getpid()})"
        assert message.startswith(f"environment prod is locked by someone, {holder}"), message
        assert len(jobs(cluster, "migrations-b")) == 2 and green_weight(cluster, "nginx") is None
        lock.unlink()

        query(database, FINDINGS)
        done = bluegreen(playbook_runner, cluster, sandbox, "nginx", "unused", **approved)
        assert done.rc == 0, done.failure_messages or done.stderr[-2000:]
        assert columns(database, "findings") == ["id", "severity", "base_score", "weight"]
        assert query(database, "SELECT version, category FROM schema_migrations ORDER BY version;\n")[-1] == [B_MIGRATION, "B"]
        assert B_MIGRATION in done.result("Verify green's migrations in the migrations table")["applied"]
        conditions = {job["metadata"]["name"]: [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"]
                      for job in jobs(cluster, "migrations-b")}  # fmt: skip
        assert sorted(conditions.values()) == [["FailureTarget", "Failed"]] + [["SuccessCriteriaMet", "Complete"]] * 2, conditions
        assert green_weight(cluster, "nginx") == 100
        assert not lock.exists(), "the run released the environment lock"
        # The chart's category A hook ran in docker too, at green's install (nothing was pending for it).
        assert "job stellaops-green/stellaops-green-migrations in docker: complete" in cluster.log.read_text()
