# SPDX-License-Identifier: GPL-3.0-or-later
"""Traffic between blue and green: what the routing objects must look like for a given weight.

Two routers:

* ``nginx``: a canary Ingress in the green namespace carrying the NGINX ingress annotations
  ``canary: "true"`` and ``canary-weight: "<percent>"``, with the class and the hosts and paths of
  blue's main Ingress and every backend pointing at the green Service. A ``canary-weight-total``
  found on it is read (a weight of 100 out of 1000 is 10%) and dropped when a weight is set, so
  the weight written is a percent of the default total 100. Removing it (``absent``) sends
  everything back to blue. ``promoted`` drops the canary annotations: the Ingress becomes
  the main one, for when blue is decommissioned.
* ``gateway``: a Gateway API HTTPRoute whose rules that reach the blue Service get the green
  Service beside it, with backend weights ``100 - percent`` and ``percent``. ``absent`` removes the
  green backend and gives blue 100; ``promoted`` removes the blue backend.

When green takes all the traffic, the object carries ``deploy.stellaops.io/full-traffic-since``
(UTC), kept while the weight stays at 100, so that blue is decommissioned only after the
observation window. Pure functions of dicts: no Kubernetes client here, the module applies them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Optional

from ..core.errors import StellaOpsError

CANARY = "nginx.ingress.kubernetes.io/canary"
CANARY_WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"
CANARY_WEIGHT_TOTAL = "nginx.ingress.kubernetes.io/canary-weight-total"
FULL_TRAFFIC_SINCE = "deploy.stellaops.io/full-traffic-since"
MANAGED_BY = {"app.kubernetes.io/managed-by": "stellaops.deploy"}
ROUTERS = ("nginx", "gateway")


@dataclass(frozen=True)
class Backend:
    name: str
    namespace: str
    port: int


def check_weight(weight: Any) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise StellaOpsError(f"weight: expected a whole percentage from 0 to 100, got {weight!r}.")
    return weight


def _annotations(obj: Optional[dict[str, Any]]) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("annotations") or {})


def _since(current: Optional[dict[str, Any]], current_weight: Optional[int], weight: Optional[int], now: str) -> Optional[str]:
    """When green got all the traffic: kept from ``current`` while it stays at 100, else now; None below 100."""
    if weight != 100:
        return None
    if current_weight == 100 and _annotations(current).get(FULL_TRAFFIC_SINCE):
        return _annotations(current)[FULL_TRAFFIC_SINCE]
    return now


# --------------------------------------------------------------------------- NGINX ingress canary


def _weight_total(ingress: dict[str, Any]) -> int:
    """The canary's ``canary-weight-total``, 100 when absent; whole numbers only, as the controller parses it."""
    raw = _annotations(ingress).get(CANARY_WEIGHT_TOTAL)
    if raw is None:
        return 100
    try:
        total = int(raw)
    except ValueError:
        total = 0
    if total <= 0:
        raise StellaOpsError(f"Ingress {ingress['metadata'].get('name')}: annotation {CANARY_WEIGHT_TOTAL} must be a whole number above 0, got {raw!r}.")
    # ingress-nginx's balancer draws from max(total, 100): a total below 100 counts as 100
    return max(total, 100)


def ingress_weight(ingress: Optional[dict[str, Any]]) -> Optional[int]:
    """Green's share in percent of a canary Ingress (its weight out of ``canary-weight-total``); None when it is missing or not a canary."""
    annotations = _annotations(ingress)
    if ingress is None or annotations.get(CANARY) != "true":
        return None
    try:
        weight = int(annotations.get(CANARY_WEIGHT, "0"))
    except ValueError:
        raise StellaOpsError(f"Ingress {ingress['metadata'].get('name')}: annotation {CANARY_WEIGHT} is not a whole number.") from None
    total = _weight_total(ingress)
    if weight >= total:
        return 100
    if weight <= 0:
        return 0
    # a share between none and all is never rounded to 0 or 100 (100 starts blue's decommission window)
    return min(99, max(1, round(100 * weight / total)))


def ingress_view(ingress: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """What this collection manages of an Ingress: the routing annotations, its class and rules."""
    if ingress is None:
        return None
    annotations = _annotations(ingress)
    spec = ingress.get("spec") or {}
    return {
        "annotations": {key: annotations[key] for key in (CANARY, CANARY_WEIGHT, CANARY_WEIGHT_TOTAL, FULL_TRAFFIC_SINCE) if key in annotations},
        "ingressClassName": spec.get("ingressClassName"),
        "rules": spec.get("rules") or [],
    }


def canary_ingress(main: dict[str, Any], name: str, green: Backend, weight: int, current: Optional[dict[str, Any]], now: str) -> dict[str, Any]:
    """The canary Ingress for ``weight``: main's class, hosts and paths, every backend the green Service."""
    rules = copy.deepcopy((main.get("spec") or {}).get("rules") or [])
    if not any((rule.get("http") or {}).get("paths") for rule in rules):
        raise StellaOpsError(f"Ingress {main['metadata']['name']} in {main['metadata'].get('namespace')} has no http paths to copy into the canary.")
    for rule in rules:
        for path in (rule.get("http") or {}).get("paths") or []:
            path["backend"] = {"service": {"name": green.name, "port": {"number": green.port}}}
    annotations = {CANARY: "true", CANARY_WEIGHT: str(weight)}
    since = _since(current, ingress_weight(current), weight, now)
    if since:
        annotations[FULL_TRAFFIC_SINCE] = since
    spec: dict[str, Any] = {"rules": rules}
    if (main.get("spec") or {}).get("ingressClassName"):
        spec["ingressClassName"] = main["spec"]["ingressClassName"]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {"name": name, "namespace": green.namespace, "labels": dict(MANAGED_BY), "annotations": annotations},
        "spec": spec,
    }


def canary_patch(desired: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns an existing canary into ``desired`` (a stale full-traffic time and weight total removed)."""
    annotations: dict[str, Any] = dict(desired["metadata"]["annotations"])
    annotations.setdefault(FULL_TRAFFIC_SINCE, None)
    # the weight written is a percent: a total other than the default 100 would scale it
    annotations.setdefault(CANARY_WEIGHT_TOTAL, None)
    return {"metadata": {"annotations": annotations, "labels": desired["metadata"]["labels"]}, "spec": desired["spec"]}


def promoted_ingress_patch(current: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns the canary into the main Ingress (canary and full-traffic annotations removed)."""
    if ingress_weight(current) != 100:
        raise StellaOpsError(
            f"Ingress {current['metadata']['name']} sends {ingress_weight(current)}% of the traffic to green; "
            "promote it only after the cutover to 100%."
        )
    return {"metadata": {"annotations": {CANARY: None, CANARY_WEIGHT: None, CANARY_WEIGHT_TOTAL: None, FULL_TRAFFIC_SINCE: None}}}


@dataclass(frozen=True)
class IngressChange:
    """The one request the module sends for the canary Ingress (None: it is as wanted) and what it reports."""

    request: Optional[str]  # "create", "patch" (a merge patch) or "delete"
    body: Optional[dict[str, Any]]
    before: Optional[dict[str, Any]]
    after: Optional[dict[str, Any]]
    weight_before: Optional[int]
    weight_after: Optional[int]


def canary_change(
    state: str, current: Optional[dict[str, Any]], name: str, green: Backend, weight: int, main: Optional[dict[str, Any]], now: str
) -> IngressChange:
    """The change of the canary Ingress ``current`` for ``state``, decided from what was read before any request is sent."""
    before = ingress_view(current)
    # green's share is read (and its annotations checked) first: one the module cannot read fails the task
    # while the canary is still there, not after it was deleted
    weight_before = ingress_weight(current)
    if state == "absent":
        if current is not None and weight_before is None:
            # a promoted canary is the main Ingress now: deleting it would take the service down
            raise StellaOpsError(
                f"Ingress {name} in {green.namespace} is not a canary (it was promoted and serves all the traffic); "
                "state=absent removes only a canary. Nothing was changed."
            )
        return IngressChange("delete" if current is not None else None, None, before, None, weight_before, None)
    if state == "promoted":
        if current is None:
            raise StellaOpsError(f"Ingress {name} in {green.namespace} does not exist; there is no canary to promote.")
        patch = promoted_ingress_patch(current)
        promoted = dict(before or {}, annotations={})
        return IngressChange("patch" if promoted != before else None, patch, before, promoted, weight_before, 100)
    if main is None:
        raise StellaOpsError("main_ingress: required with router=nginx (blue's Ingress, whose hosts and paths the canary copies).")
    desired = canary_ingress(main, name, green, weight, current, now)
    after = ingress_view(desired)
    if after == before:
        return IngressChange(None, None, before, after, weight_before, weight)
    if current is None:
        return IngressChange("create", desired, before, after, weight_before, weight)
    return IngressChange("patch", canary_patch(desired), before, after, weight_before, weight)


# --------------------------------------------------------------------------- Gateway API HTTPRoute


def _is(ref: dict[str, Any], backend: Backend, route_namespace: str) -> bool:
    return (
        ref.get("name") == backend.name
        and (ref.get("namespace") or route_namespace) == backend.namespace
        and ref.get("kind", "Service") == "Service"
        and ref.get("group", "") in ("", "core")
    )


def _ref(backend: Backend, route_namespace: str, weight: int) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": backend.name, "port": backend.port, "weight": weight}
    if backend.namespace != route_namespace:
        ref["namespace"] = backend.namespace
    return ref


def _route_rules(route: dict[str, Any], blue: Backend, green: Backend) -> tuple[list[dict[str, Any]], str]:
    namespace = route["metadata"].get("namespace") or ""
    rules = (route.get("spec") or {}).get("rules") or []
    if not any(_is(ref, blue, namespace) or _is(ref, green, namespace) for rule in rules for ref in rule.get("backendRefs") or []):
        raise StellaOpsError(
            f"HTTPRoute {route['metadata']['name']} in {namespace} has no backendRef to the blue Service "
            f"{blue.name} in {blue.namespace} (nor to green); expected a rule that routes to blue."
        )
    return rules, namespace


def _ref_weight(ref: dict[str, Any], route: Any) -> int:
    """A backend's weight as the Gateway API defines it: a whole number from 0 to 1000000, 1 when absent."""
    weight = ref.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 1_000_000:
        raise StellaOpsError(f"HTTPRoute {route}: backend {ref.get('name')} has weight {weight!r}; expected a whole number from 0 to 1000000.")
    return weight


def route_weight(route: dict[str, Any], blue: Backend, green: Backend) -> Optional[int]:
    """Green's share in percent of the first rule that reaches blue or green; None when green is absent."""
    rules, namespace = _route_rules(route, blue, green)
    for rule in rules:
        refs = rule.get("backendRefs") or []
        greens = [ref for ref in refs if _is(ref, green, namespace)]
        blues = [ref for ref in refs if _is(ref, blue, namespace)]
        if not greens and not blues:
            continue
        if not greens:
            return None
        name = route["metadata"].get("name")
        green_weight = sum(_ref_weight(ref, name) for ref in greens)
        total = green_weight + sum(_ref_weight(ref, name) for ref in blues)
        return round(100 * green_weight / total) if total else 0
    return None


def routed_rules(route: dict[str, Any], blue: Backend, green: Backend, state: str, weight: int = 0) -> list[dict[str, Any]]:
    """The route's rules with blue and green weighted for ``weight`` (present), green removed (absent) or blue removed (promoted)."""
    rules, namespace = _route_rules(route, blue, green)
    if state == "promoted" and route_weight(route, blue, green) != 100:
        raise StellaOpsError(
            f"HTTPRoute {route['metadata']['name']} sends {route_weight(route, blue, green)}% of the traffic to green; "
            "promote it only after the cutover to 100%."
        )
    result = []
    for rule in copy.deepcopy(rules):
        refs = rule.get("backendRefs") or []
        if not any(_is(ref, blue, namespace) or _is(ref, green, namespace) for ref in refs):
            result.append(rule)
            continue
        others = [ref for ref in refs if not (_is(ref, blue, namespace) or _is(ref, green, namespace))]
        if state == "present":
            ours = [_ref(blue, namespace, 100 - weight), _ref(green, namespace, weight)]
        elif state == "absent":
            ours = [_ref(blue, namespace, 100)]
        else:
            ours = [_ref(green, namespace, 100)]
        rule["backendRefs"] = others + ours
        result.append(rule)
    return result


def route_view(route: dict[str, Any]) -> dict[str, Any]:
    annotations = _annotations(route)
    return {
        "annotations": {FULL_TRAFFIC_SINCE: annotations[FULL_TRAFFIC_SINCE]} if FULL_TRAFFIC_SINCE in annotations else {},
        "rules": (route.get("spec") or {}).get("rules") or [],
    }


def routed_route(route: dict[str, Any], blue: Backend, green: Backend, state: str, weight: int, now: str) -> dict[str, Any]:
    """The managed view of the HTTPRoute after the change (compare with ``route_view`` of the current one)."""
    rules = routed_rules(route, blue, green, state, weight)
    since = _since(route, route_weight(route, blue, green), weight if state == "present" else None, now)
    return {"annotations": {FULL_TRAFFIC_SINCE: since} if since else {}, "rules": rules}
