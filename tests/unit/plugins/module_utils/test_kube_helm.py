# SPDX-License-Identifier: GPL-3.0-or-later
"""The helm runner and the pure logic around releases: history, bookmark, stuck releases, manifests, masked diffs.

The fixtures under ``fixtures/helm`` are real output of helm 3.18.0 against the Kubernetes API emulator
(scripts/kube_emulator.py) with the chart deploy/helm/stellaops. The runner tests use a stand-in
module that records argument lists and answers with canned output (no helm runs here); the real
helm 3 and helm 4 binaries are exercised by tests/integration/test_helm_profile.py.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any, Optional

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.helm import (
    MASK,
    HelmRunner,
    KubeTarget,
    Revision,
    check_duration,
    find_revision,
    helm_from_params,
    hooks_text,
    image_digests,
    last_deployed,
    manifest_diff,
    mask_secrets,
    merge_values,
    normalized,
    parse_history,
    pending_message,
    release_json,
    split_manifest,
    stuck_pending,
    workload_images,
)

FIXTURES = Path(__file__).parent / "fixtures" / "helm"
HELM = "/opt/tools/helm"
Answer = tuple[int, str, str]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --------------------------------------------------------------------------- history and bookmark


def test_history_after_a_failed_hook_names_the_deployed_revision_as_bookmark() -> None:
    history = parse_history(fixture("history-failed.helm3.json"))
    assert [r.revision for r in history] == [1, 2, 3, 4, 5]
    assert history[-1].status == "failed"
    bookmark = last_deployed(history)
    assert bookmark is not None and bookmark.revision == 4 and bookmark.status == "deployed"
    assert bookmark.chart_version == "1.0.0"
    assert stuck_pending(history) is None


def test_a_pending_revision_that_a_later_rollback_superseded_is_not_stuck() -> None:
    history = parse_history(fixture("history-pending-recovered.helm3.json"))
    assert [r.status for r in history] == ["superseded", "pending-upgrade", "deployed"]
    assert stuck_pending(history) is None
    bookmark = last_deployed(history)
    assert bookmark is not None and bookmark.revision == 3


def rev(number: int, status: str, chart: str = "stellaops-1.0.0") -> Revision:
    return Revision(number, status, chart, "2025.10.0", "", "")


@pytest.mark.parametrize(
    ("statuses", "bookmark", "pending"),
    [
        (["superseded", "deployed", "pending-upgrade"], 2, 3),
        (["deployed", "failed", "failed"], 1, None),
        (["superseded", "failed"], 1, None),  # no deployed revision: the last one that ran
        (["failed"], None, None),
        (["pending-install"], None, 1),
        ([], None, None),
    ],
)
def test_bookmark_is_the_last_revision_that_ran_and_pending_is_the_newest(statuses: list[str], bookmark: Optional[int], pending: Optional[int]) -> None:
    history = [rev(i + 1, s) for i, s in enumerate(statuses)]
    found = last_deployed(history)
    assert (found.revision if found else None) == bookmark
    stuck = stuck_pending(history)
    assert (stuck.revision if stuck else None) == pending


@pytest.mark.parametrize(("chart", "version"), [("stellaops-1.0.0", "1.0.0"), ("my-chart-2.1.0-rc.1", "2.1.0-rc.1"), ("nochart", "")])
def test_chart_version_is_read_from_the_chart_column(chart: str, version: str) -> None:
    assert rev(1, "deployed", chart).chart_version == version


def test_find_revision_names_the_revisions_that_exist() -> None:
    history = [rev(1, "superseded"), rev(2, "deployed")]
    assert find_revision(history, 2, "stellaops").revision == 2
    with pytest.raises(StellaOpsError, match=r"^Release stellaops has no revision 9 \(revisions 1 to 2 exist\); nothing was changed\.$"):
        find_revision(history, 9, "stellaops")


def test_pending_message_is_one_sentence_naming_release_revision_and_choice() -> None:
    message = pending_message("stellaops", "prod", rev(7, "pending-upgrade"), rev(6, "deployed"))
    assert "stellaops" in message and "pending-upgrade at revision 7" in message
    assert "-e helm_rollback_recover_pending=true) to roll back to revision 6" in message and message.endswith("Nothing was changed.")


@pytest.mark.parametrize("text", ["not json", '{"revision": 1}', '[{"status": "deployed"}]'])
def test_history_that_is_not_a_list_of_revisions_is_one_sentence(text: str) -> None:
    with pytest.raises(StellaOpsError, match="helm history printed"):
        parse_history(text)


# --------------------------------------------------------------------------- manifests


def test_workload_images_of_a_real_manifest() -> None:
    images = workload_images(fixture("manifest-2025.09.0.helm3.yaml"))
    assert len([k for k in images if k.startswith("Deployment/")]) == 7
    assert len([k for k in images if k.startswith("StatefulSet/")]) == 3
    assert images["Deployment/stellaops-authority"] == [
        "127.0.0.1:5000/stellaops/authority@sha256:58be2fb91d0d12cacadbdb836acfb1161108424712acf6c9dc3a20e813fdbe1e"
    ]
    digests = image_digests(images)
    assert digests["Deployment/stellaops-authority"] == "sha256:58be2fb91d0d12cacadbdb836acfb1161108424712acf6c9dc3a20e813fdbe1e"


def test_split_manifest_reads_kind_name_and_source() -> None:
    docs = split_manifest(fixture("manifest-stage-secret.helm3.yaml"))
    secret = [d for d in docs if d.kind == "Secret"]
    assert [(d.name, d.source) for d in secret] == [("stellaops-credentials", "stellaops/templates/credentials.yaml")]
    assert {d.kind for d in docs} == {"ConfigMap", "Secret", "Service", "Deployment", "StatefulSet"}


def test_hooks_of_a_dry_run_read_like_helm_get_hooks() -> None:
    dry_run = release_json(fixture("dry-run-upgrade.helm3.json"), "helm upgrade --dry-run")
    rendered = normalized(hooks_text(dry_run))
    stored = normalized(fixture("hooks-2025.09.0.helm3.yaml"))
    assert rendered.splitlines()[:2] == stored.splitlines()[:2] == ["---", "# Source: stellaops/templates/migrations-job.yaml"]


def test_secret_values_never_appear_in_a_diff_and_a_changed_one_is_marked() -> None:
    before = fixture("manifest-stage-secret.helm3.yaml")
    after = str(release_json(fixture("dry-run-upgrade.helm3.json"), "dry run")["manifest"])
    old, new = (base64.b64encode(p.encode()).decode() for p in ("hunter2-old", "hunter2-new"))
    assert old in before and new in after
    diff = manifest_diff(normalized(before), normalized(after), "revision 4", "upgrade")
    assert old not in diff and new not in diff and "hunter2" not in diff
    assert f"-  STELLAOPS_DATABASE_PASSWORD: {MASK}\n" in diff
    assert f"+  STELLAOPS_DATABASE_PASSWORD: {MASK} (changed)\n" in diff
    # the images changed from the stage digests to the dev ones
    assert "+          image: registry.stella-ops.org/stellaops/authority@sha256:c49b7fee" in diff


def test_an_unchanged_secret_is_masked_without_a_mark_and_gives_no_diff_line() -> None:
    text = "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  KEY: c2VjcmV0\n  MULTI: |\n    line1\n    line2\ntype: Opaque\n"
    masked = mask_secrets(text, text)
    assert "c2VjcmV0" not in masked and "line1" not in masked
    assert f"  KEY: {MASK}\n" in masked and f"  MULTI: {MASK}\n" in masked and "type: Opaque" in masked
    assert manifest_diff(text, text, "a", "b") == ""


@pytest.mark.parametrize(
    "secret",
    [
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData: {password: hunter2, pin: '42'}\n",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata:\n    password: aHVudGVyMg==\n    pin: NDI=\n",
        "{apiVersion: v1, kind: Secret, metadata: {name: s}, stringData: {password: hunter2, pin: '42'}}\n",
        "apiVersion: v1\n\"kind\": \"Secret\"\nmetadata:\n  name: s\nstringData:\n  password: >-\n    hunter2\n  pin: '42'\n",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData: &values {password: hunter2}\nextra: *values\n",
    ],
    ids=["flow-values", "deep-indent", "flow-document", "quoted-kind-folded-value", "alias"],
)
def test_a_secret_in_any_yaml_style_shows_no_value(secret: str) -> None:
    before = "---\n# Source: stellaops/templates/secret.yaml\n" + secret
    after = before.replace("hunter2", "hunter3").replace("aHVudGVyMg==", "aHVudGVyMw==")
    for shown in (mask_secrets(before), mask_secrets(after, before), manifest_diff(before, after, "a", "b")):
        assert "hunter" not in shown and "aHVudGVy" not in shown and "42" not in shown and "NDI" not in shown, shown
    assert MASK in mask_secrets(before)


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(("value", "expected"), [("15m", "15m"), ("600", "600s"), (90, "90s"), ("1h30m", "1h30m"), ("10s", "10s")])
def test_durations(value: Any, expected: str) -> None:
    assert check_duration(value, "timeout") == expected


@pytest.mark.parametrize("value", ["15 minutes", "", "-5m", "5d"])
def test_bad_duration_is_one_sentence(value: str) -> None:
    with pytest.raises(StellaOpsError, match=r"^Option timeout is .*; expected a duration such as 15m, 600s or 1h30m\.$"):
        check_duration(value, "timeout")


def test_merge_values_is_deep_and_later_layers_win() -> None:
    merged = merge_values({"services": {"authority": {"image": {"repository": "r"}, "replicas": 2}}}, {"services": {"authority": {"image": "r@sha256:1"}}})
    assert merged == {"services": {"authority": {"image": "r@sha256:1", "replicas": 2}}}


# --------------------------------------------------------------------------- runner


class StandInModule:
    """Records argument lists, stdin and environment; answers from a list of (argument prefix, answer)."""

    def __init__(self, version: str, replies: list[tuple[tuple[str, ...], Answer]]) -> None:
        self.replies = [(("version", "--short"), (0, f"v{version}+gabc\n", "")), *replies]
        self.calls: list[list[str]] = []
        self.data: list[Optional[str]] = []
        self.environ: list[dict[str, str]] = []

    def get_bin_path(self, arg: str, required: bool = False, opt_dirs: Optional[list[str]] = None) -> Optional[str]:
        return HELM if arg == "helm" else None

    def run_command(self, args: list[str], **kwargs: Any) -> Answer:
        self.calls.append(list(args))
        self.data.append(kwargs.get("data"))
        self.environ.append(dict(kwargs.get("environ_update") or {}))
        for prefix, answer in self.replies:
            if tuple(args[1 : 1 + len(prefix)]) == prefix:
                return answer
        raise AssertionError(f"unexpected command {args}")

    def fail_json(self, msg: str, **kwargs: Any) -> Any:
        raise StellaOpsError(msg, **kwargs)


TARGET = KubeTarget(namespace="stellaops-prod", context="prod", kubeconfig="/etc/stellaops/kubeconfig")
SCOPE = ["--namespace=stellaops-prod", "--kube-context=prod"]


@pytest.mark.parametrize(("version", "flag"), [("3.18.0", "--atomic"), ("4.1.4", "--rollback-on-failure")])
def test_upgrade_is_atomic_in_the_words_of_each_helm_major(version: str, flag: str) -> None:
    module = StandInModule(version, [(("upgrade",), (0, '{"version": 5, "info": {"status": "deployed"}}', ""))])
    helm = HelmRunner(module, TARGET)
    out = helm.upgrade("stellaops", "/c", ["/c/values-prod.yaml"], {"credentials": {"P": "s3cret"}}, install=False, wait=True, atomic=True, timeout="15m")
    assert out["version"] == 5
    assert module.calls[-1] == [
        HELM, "upgrade", "stellaops", "/c", "--output", "json", "--timeout", "15m",
        "--values", "/c/values-prod.yaml", "--values", "-", flag, "--wait", *SCOPE,
    ]
    # values given as data go to stdin, never on the command line; LC_ALL=C and the kubeconfig by environment
    assert json.loads(module.data[-1] or "") == {"credentials": {"P": "s3cret"}}
    assert not any("s3cret" in arg for arg in module.calls[-1])
    assert module.environ[-1] == {"LC_ALL": "C", "LANG": "C", "KUBECONFIG": "/etc/stellaops/kubeconfig"}


@pytest.mark.parametrize(("version", "extra"), [("3.18.0", ["--all"]), ("4.1.4", [])])
def test_list_asks_for_every_status_only_on_helm_3(version: str, extra: list[str]) -> None:
    module = StandInModule(version, [(("list",), (0, '[{"name": "b"}, {"name": "a"}]', ""))])
    assert HelmRunner(module, TARGET).releases() == ["a", "b"]
    assert module.calls[-1] == [HELM, "list", "--output", "json", "--max", "0", *extra, *SCOPE]


def test_unknown_release_names_the_releases_of_the_namespace() -> None:
    module = StandInModule("4.1.4", [(("history",), (1, "", "Error: release: not found\n")), (("list",), (0, '[{"name": "other"}]', ""))])
    with pytest.raises(StellaOpsError) as err:
        HelmRunner(module, TARGET).require_history("stellaops")
    assert str(err.value) == "Release stellaops does not exist in namespace stellaops-prod of context prod (releases there: other); nothing was changed."


def test_unreachable_api_server_is_one_sentence() -> None:
    said = 'Error: Kubernetes cluster unreachable: Get "http://127.0.0.1:9/version": dial tcp 127.0.0.1:9: connect: connection refused\n'
    module = StandInModule("3.18.0", [(("history",), (1, "", said))])
    with pytest.raises(StellaOpsError) as err:
        HelmRunner(module, TARGET).history("stellaops")
    assert str(err.value).startswith("The Kubernetes API server of namespace stellaops-prod of context prod is unreachable (Kubernetes cluster unreachable:")
    assert str(err.value).endswith("; nothing was changed.")


def test_a_failure_keeps_the_detail_lines_under_helms_error() -> None:
    said = ("level=WARN msg=\"upgrade failed\"\nError: UPGRADE FAILED: release stellaops failed, and has been rolled back due to atomic being set: "
            "pre-upgrade hooks failed: 1 error occurred:\n\t* job stellaops-migrations failed: BackoffLimitExceeded\n\n")
    module = StandInModule("3.18.0", [(("upgrade",), (1, "", said))])
    with pytest.raises(StellaOpsError) as err:
        HelmRunner(module, TARGET).upgrade("stellaops", "/c", [], {}, install=False, wait=True, atomic=True, timeout="15m")
    assert str(err.value) == ("helm upgrade stellaops failed: UPGRADE FAILED: release stellaops failed, and has been rolled back due to atomic being set: "
                              "pre-upgrade hooks failed: 1 error occurred: * job stellaops-migrations failed: BackoffLimitExceeded.")


def test_history_reads_every_revision() -> None:
    module = StandInModule("3.18.0", [(("history",), (0, "[]", ""))])
    HelmRunner(module, TARGET).history("stellaops")
    assert module.calls[-1][:7] == [HELM, "history", "stellaops", "--output", "json", "--max", "100000"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ('{"global": {"release": {"version": "2025.10.0", "channel": "stable"}}, "credentials": {"PGPASSWORD": "s3cret"}}',
         {"version": "2025.10.0", "channel": "stable", "release_id": "2025.10.0-stable"}),
        ('{"global": {"release": {"version": "2025.10.0"}}}', {"version": "2025.10.0", "channel": "", "release_id": "2025.10.0"}),
        ('{"global": {"release": {"version": ""}}}', None),
        ('{"global": "x"}', None),
        ("null", None),
    ],
)  # fmt: skip
def test_the_platform_release_of_a_revision_is_its_values_global_release_and_nothing_else(values: str, expected: Optional[dict[str, str]]) -> None:
    module = StandInModule("3.18.0", [(("get", "values"), (0, values, ""))])
    assert HelmRunner(module, TARGET).platform_release("stellaops", 3) == expected
    assert module.calls[-1] == [HELM, "get", "values", "stellaops", "--revision", "3", "--output", "json", *SCOPE]


def test_values_that_are_not_json_are_one_sentence() -> None:
    module = StandInModule("3.18.0", [(("get", "values"), (0, "USER-SUPPLIED VALUES:\nnull\n", ""))])
    with pytest.raises(StellaOpsError, match="^helm get values stellaops printed output that is not JSON: "):
        HelmRunner(module, TARGET).platform_release("stellaops", 3)


def test_rollback_waits_with_its_timeout() -> None:
    module = StandInModule("3.18.0", [(("rollback",), (0, "Rollback was a success!", ""))])
    HelmRunner(module, TARGET).rollback("stellaops", 4, wait=True, timeout="10m")
    assert module.calls[-1] == [HELM, "rollback", "stellaops", "4", "--timeout", "10m", "--wait", *SCOPE]


@pytest.mark.parametrize(("version", "flags"), [("3.18.0", []), ("4.1.4", ["--force-conflicts"])])
def test_a_rollback_that_takes_back_changed_fields_forces_conflicts_on_helm_4_only(version: str, flags: list[str]) -> None:
    """Helm 4's server-side apply refuses fields another manager changed; Helm 3's three-way merge has no such flag."""
    module = StandInModule(version, [(("rollback",), (0, "Rollback was a success!", ""))])
    HelmRunner(module, TARGET).rollback("stellaops", 4, wait=True, timeout="10m", force_conflicts=True)
    assert module.calls[-1] == [HELM, "rollback", "stellaops", "4", "--timeout", "10m", "--wait", *flags, *SCOPE]


def test_a_dry_run_render_never_waits_and_reads_the_release_object() -> None:
    module = StandInModule("3.18.0", [(("upgrade",), (0, fixture("dry-run-upgrade.helm3.json"), ""))])
    rendered = HelmRunner(module, TARGET).render("stellaops", "/c", [], {}, install=True)
    assert rendered["chart"]["metadata"]["version"] == "1.0.0"
    assert module.calls[-1][-len(SCOPE) - 1] == "--dry-run=client"
    assert "--wait" not in module.calls[-1] and "--atomic" not in module.calls[-1] and "--install" in module.calls[-1]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"release": "--help", "namespace": "stellaops"},
         "release must be a Helm release name (lowercase letters, digits, '-' and '.', at most 53), got '--help'."),
        ({"release": "a" * 54, "namespace": "stellaops"}, "release must be a Helm release name"),
        ({"release": "stellaops", "namespace": "-n"},
         "namespace must be a Kubernetes namespace name (lowercase letters, digits and '-', at most 63), got '-n'."),
        ({"release": "stellaops", "namespace": "Stella_Ops"}, "namespace must be a Kubernetes namespace name"),
    ],
    ids=["release-option", "release-too-long", "namespace-option", "namespace-not-a-label"],
)  # fmt: skip
def test_a_release_or_namespace_that_is_not_a_kubernetes_name_never_reaches_helm(params: dict[str, Any], message: str) -> None:
    module = StandInModule("3.18.0", [])
    with pytest.raises(StellaOpsError, match=re.escape(message)):
        helm_from_params(module, params)
    assert module.calls == []
