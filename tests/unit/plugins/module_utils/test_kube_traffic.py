# SPDX-License-Identifier: GPL-3.0-or-later
"""Routing objects for a traffic weight: the NGINX ingress canary and Gateway API HTTPRoute weights."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.traffic import (
    CANARY,
    CANARY_WEIGHT,
    CANARY_WEIGHT_TOTAL,
    FULL_TRAFFIC_SINCE,
    Backend,
    canary_change,
    canary_ingress,
    canary_patch,
    check_weight,
    ingress_view,
    ingress_weight,
    promoted_ingress_patch,
    route_view,
    route_weight,
    routed_route,
)

GREEN = Backend("stellaops-green-scanner-web", "stellaops-green", 8444)
BLUE = Backend("stellaops-scanner-web", "stellaops-prod", 8444)
# Blue's main Ingress as the chart renders it (ingress.enabled=true).
MAIN: dict[str, Any] = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "Ingress",
    "metadata": {"name": "stellaops", "namespace": "stellaops-prod"},
    "spec": {
        "ingressClassName": "nginx",
        "rules": [{"host": "stellaops.example.internal", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "stellaops-scanner-web", "port": {"number": 8444}}}}]}}],
    },
}  # fmt: skip
ROUTE: dict[str, Any] = {
    "apiVersion": "gateway.networking.k8s.io/v1",
    "kind": "HTTPRoute",
    "metadata": {"name": "stellaops", "namespace": "stellaops-prod"},
    "spec": {
        "parentRefs": [{"name": "edge"}],
        "rules": [
            {"matches": [{"path": {"type": "PathPrefix", "value": "/"}}], "backendRefs": [{"name": "stellaops-scanner-web", "port": 8444}]},
            {"matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}], "backendRefs": [{"name": "docs", "port": 80}]},
        ],
    },
}
T1, T2 = "2026-12-02T01:00:00.000000Z", "2026-12-02T02:00:00.000000Z"


def test_canary_copies_class_hosts_and_paths_and_points_at_green() -> None:
    canary = canary_ingress(MAIN, "stellaops-canary", GREEN, 10, None, T1)
    assert canary["metadata"]["namespace"] == "stellaops-green"
    assert canary["metadata"]["annotations"] == {CANARY: "true", CANARY_WEIGHT: "10"}
    assert canary["spec"]["ingressClassName"] == "nginx"
    [path] = canary["spec"]["rules"][0]["http"]["paths"]
    assert canary["spec"]["rules"][0]["host"] == "stellaops.example.internal"
    assert path["backend"] == {"service": {"name": "stellaops-green-scanner-web", "port": {"number": 8444}}}
    assert MAIN["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "stellaops-scanner-web"  # not mutated
    assert ingress_weight(canary) == 10


def test_same_weight_is_the_same_view_and_full_traffic_time_is_kept() -> None:
    at_10 = canary_ingress(MAIN, "stellaops-canary", GREEN, 10, None, T1)
    assert ingress_view(canary_ingress(MAIN, "stellaops-canary", GREEN, 10, at_10, T2)) == ingress_view(at_10)
    at_100 = canary_ingress(MAIN, "stellaops-canary", GREEN, 100, at_10, T1)
    assert at_100["metadata"]["annotations"][FULL_TRAFFIC_SINCE] == T1
    again = canary_ingress(MAIN, "stellaops-canary", GREEN, 100, at_100, T2)
    assert ingress_view(again) == ingress_view(at_100)  # a second run at 100 changes nothing
    back = canary_ingress(MAIN, "stellaops-canary", GREEN, 50, at_100, T2)
    assert FULL_TRAFFIC_SINCE not in back["metadata"]["annotations"]


def test_ingress_weight_of_non_canary_and_missing() -> None:
    assert ingress_weight(None) is None
    assert ingress_weight(MAIN) is None
    assert ingress_view(None) is None


def test_promote_only_at_100() -> None:
    at_50 = canary_ingress(MAIN, "stellaops-canary", GREEN, 50, None, T1)
    with pytest.raises(StellaOpsError, match="sends 50% of the traffic to green; promote it only after the cutover to 100%"):
        promoted_ingress_patch(at_50)
    at_100 = canary_ingress(MAIN, "stellaops-canary", GREEN, 100, None, T1)
    removed = {CANARY: None, CANARY_WEIGHT: None, CANARY_WEIGHT_TOTAL: None, FULL_TRAFFIC_SINCE: None}
    assert promoted_ingress_patch(at_100) == {"metadata": {"annotations": removed}}


def test_main_ingress_without_paths_is_refused() -> None:
    main = copy.deepcopy(MAIN)
    main["spec"]["rules"] = [{"host": "x"}]
    with pytest.raises(StellaOpsError, match="Ingress stellaops in stellaops-prod has no http paths to copy into the canary."):
        canary_ingress(main, "stellaops-canary", GREEN, 10, None, T1)


@pytest.mark.parametrize("weight", [-1, 101, 2.5, True, "10", None])
def test_weight_must_be_a_percentage(weight: Any) -> None:
    with pytest.raises(StellaOpsError, match="weight: expected a whole percentage from 0 to 100"):
        check_weight(weight)


def with_rules(route: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    changed = copy.deepcopy(route)
    changed["spec"]["rules"] = rules
    return changed


def test_route_weights_add_green_across_namespaces_and_leave_other_rules() -> None:
    assert route_weight(ROUTE, BLUE, GREEN) is None
    after = routed_route(ROUTE, BLUE, GREEN, "present", 25, T1)
    assert after["rules"][0]["backendRefs"] == [
        {"name": "stellaops-scanner-web", "port": 8444, "weight": 75},
        {"name": "stellaops-green-scanner-web", "port": 8444, "weight": 25, "namespace": "stellaops-green"},
    ]
    assert after["rules"][0]["matches"] == ROUTE["spec"]["rules"][0]["matches"]
    assert after["rules"][1] == ROUTE["spec"]["rules"][1]
    assert after["annotations"] == {}
    routed = with_rules(ROUTE, after["rules"])
    assert route_weight(routed, BLUE, GREEN) == 25
    assert routed_route(routed, BLUE, GREEN, "present", 25, T2) == route_view(routed)  # idempotent


def test_route_at_100_keeps_blue_at_0_then_rollback_and_promotion() -> None:
    full = routed_route(ROUTE, BLUE, GREEN, "present", 100, T1)
    assert [ref["weight"] for ref in full["rules"][0]["backendRefs"]] == [0, 100]
    assert full["annotations"] == {FULL_TRAFFIC_SINCE: T1}
    routed = with_rules(ROUTE, full["rules"])
    routed["metadata"]["annotations"] = full["annotations"]
    assert route_weight(routed, BLUE, GREEN) == 100
    back = routed_route(routed, BLUE, GREEN, "absent", 0, T2)
    assert back["rules"][0]["backendRefs"] == [{"name": "stellaops-scanner-web", "port": 8444, "weight": 100}]
    assert back["annotations"] == {}
    promoted = routed_route(routed, BLUE, GREEN, "promoted", 0, T2)
    assert promoted["rules"][0]["backendRefs"] == [{"name": "stellaops-green-scanner-web", "port": 8444, "weight": 100, "namespace": "stellaops-green"}]
    half = with_rules(ROUTE, routed_route(ROUTE, BLUE, GREEN, "present", 50, T1)["rules"])
    with pytest.raises(StellaOpsError, match="sends 50% of the traffic to green; promote it only after the cutover to 100%"):
        routed_route(half, BLUE, GREEN, "promoted", 0, T2)


def test_route_without_blue_backend_is_one_sentence() -> None:
    other = Backend("api", "stellaops-prod", 80)
    with pytest.raises(StellaOpsError) as raised:
        route_weight(ROUTE, other, GREEN)
    assert str(raised.value) == (
        "HTTPRoute stellaops in stellaops-prod has no backendRef to the blue Service api in stellaops-prod (nor to green); "
        "expected a rule that routes to blue."
    )


def canary_with(annotations: dict[str, str]) -> dict[str, Any]:
    canary = canary_ingress(MAIN, "stellaops-canary", GREEN, 10, None, T1)
    canary["metadata"]["annotations"].update(annotations)
    return canary


@pytest.mark.parametrize(
    ("weight", "total", "percent"),
    [
        ("100", "1000", 10),  # the review's case: 100 of 1000 is 10%, not 100%
        ("1000", "1000", 100),
        ("999", "1000", 99),  # not all of it: never reported as 100 (that starts blue's decommission window)
        ("1", "1000", 1),  # some of it: never reported as 0
        ("50", "50", 50),  # the balancer takes a total below 100 as 100
    ],
)
def test_ingress_weight_is_relative_to_canary_weight_total(weight: str, total: str, percent: int) -> None:
    assert ingress_weight(canary_with({CANARY_WEIGHT: weight, CANARY_WEIGHT_TOTAL: total})) == percent


@pytest.mark.parametrize("total", ["abc", "0", "-100", "1e3", ""])
def test_canary_weight_total_not_a_positive_whole_number_is_one_sentence(total: str) -> None:
    with pytest.raises(StellaOpsError) as raised:
        ingress_weight(canary_with({CANARY_WEIGHT_TOTAL: total}))
    assert str(raised.value) == (
        f"Ingress stellaops-canary: annotation {CANARY_WEIGHT_TOTAL} must be a whole number above 0, got {total!r}."
    )


def test_setting_a_weight_drops_canary_weight_total_so_the_weight_is_a_percent() -> None:
    current = canary_with({CANARY_WEIGHT: "100", CANARY_WEIGHT_TOTAL: "1000"})
    assert ingress_view(current)["annotations"][CANARY_WEIGHT_TOTAL] == "1000"
    desired = canary_ingress(MAIN, "stellaops-canary", GREEN, 100, current, T1)
    assert ingress_view(desired) != ingress_view(current)  # 10% -> 100% is a change
    assert desired["metadata"]["annotations"][FULL_TRAFFIC_SINCE] == T1  # green only now gets all of it
    patch = canary_patch(desired)
    assert patch["metadata"]["annotations"] == {CANARY: "true", CANARY_WEIGHT: "100", FULL_TRAFFIC_SINCE: T1, CANARY_WEIGHT_TOTAL: None}
    assert patch["spec"] == desired["spec"]
    assert promoted_ingress_patch(canary_with({CANARY_WEIGHT: "1000", CANARY_WEIGHT_TOTAL: "1000"}))["metadata"]["annotations"][CANARY_WEIGHT_TOTAL] is None


@pytest.mark.parametrize("state", ["absent", "present", "promoted"])
@pytest.mark.parametrize(
    ("annotations", "message"),
    [
        ({CANARY_WEIGHT: "ten"}, f"Ingress stellaops-canary: annotation {CANARY_WEIGHT} is not a whole number."),
        ({CANARY_WEIGHT_TOTAL: "0"}, f"Ingress stellaops-canary: annotation {CANARY_WEIGHT_TOTAL} must be a whole number above 0, got '0'."),
    ],
)
def test_a_bad_canary_annotation_fails_the_decision_before_any_request(state: str, annotations: dict[str, str], message: str) -> None:
    # The module sends only the request decided here: an annotation it cannot read fails the task
    # while the canary is still there (state=absent deleted it first, then failed reading its weight).
    with pytest.raises(StellaOpsError) as raised:
        canary_change(state, canary_with(annotations), "stellaops-canary", GREEN, 50, MAIN, T2)
    assert str(raised.value) == message


def test_canary_change_decides_the_request_and_what_is_reported() -> None:
    at_10 = canary_with({})
    removal = canary_change("absent", at_10, "stellaops-canary", GREEN, 0, None, T2)
    assert (removal.request, removal.weight_before, removal.weight_after, removal.after) == ("delete", 10, None, None)
    assert removal.before == ingress_view(at_10)
    assert canary_change("absent", None, "stellaops-canary", GREEN, 0, None, T2).request is None
    created = canary_change("present", None, "stellaops-canary", GREEN, 25, MAIN, T2)
    assert (created.request, created.body, created.weight_before, created.weight_after) == (
        "create", canary_ingress(MAIN, "stellaops-canary", GREEN, 25, None, T2), None, 25)  # fmt: skip
    patched = canary_change("present", at_10, "stellaops-canary", GREEN, 25, MAIN, T2)
    assert (patched.request, patched.weight_before) == ("patch", 10)
    assert patched.body == canary_patch(canary_ingress(MAIN, "stellaops-canary", GREEN, 25, at_10, T2))
    assert canary_change("present", at_10, "stellaops-canary", GREEN, 10, MAIN, T2).request is None
    at_100 = canary_ingress(MAIN, "stellaops-canary", GREEN, 100, None, T1)
    promoted = canary_change("promoted", at_100, "stellaops-canary", GREEN, 0, None, T2)
    assert (promoted.request, promoted.body, promoted.weight_after) == ("patch", promoted_ingress_patch(at_100), 100)
    with pytest.raises(StellaOpsError, match="^Ingress stellaops-canary in stellaops-green does not exist; there is no canary to promote.$"):
        canary_change("promoted", None, "stellaops-canary", GREEN, 0, None, T2)


def test_absent_never_deletes_a_promoted_canary() -> None:
    promoted = canary_ingress(MAIN, "stellaops-canary", GREEN, 100, None, T1)
    for key in list(promoted["metadata"]["annotations"]):
        if key.startswith("nginx.ingress.kubernetes.io/canary"):
            del promoted["metadata"]["annotations"][key]
    with pytest.raises(StellaOpsError) as raised:
        canary_change("absent", promoted, "stellaops-canary", GREEN, 0, None, T2)
    assert str(raised.value) == (
        "Ingress stellaops-canary in stellaops-green is not a canary (it was promoted and serves all the traffic); "
        "state=absent removes only a canary. Nothing was changed."
    )


@pytest.mark.parametrize("weight", ["10", -1, 10**7, 1.5, None, True])
def test_a_backend_weight_that_is_not_a_gateway_weight_is_one_sentence(weight: Any) -> None:
    routed = with_rules(ROUTE, routed_route(ROUTE, BLUE, GREEN, "present", 25, T1)["rules"])
    routed["spec"]["rules"][0]["backendRefs"][1]["weight"] = weight
    with pytest.raises(StellaOpsError) as raised:
        route_weight(routed, BLUE, GREEN)
    assert str(raised.value) == (
        f"HTTPRoute stellaops: backend stellaops-green-scanner-web has weight {weight!r}; expected a whole number from 0 to 1000000."
    )
