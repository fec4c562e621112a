#!/usr/bin/python
# Copyright (c) Stella Ops platform engineering
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: traffic_weight
short_description: Move a share of the traffic from blue to green (NGINX ingress canary or Gateway API HTTPRoute)
description:
  - Sets the percentage of the traffic that reaches the green release, with one of two routers.
  - V(nginx) keeps a canary Ingress in the green namespace with the NGINX ingress annotations C(canary) and
    C(canary-weight); its class, hosts and paths are those of blue's main Ingress O(main_ingress), every
    backend is O(green_service). A C(canary-weight-total) on it is honoured when reading (a weight of 100 out of
    1000 is 10%) and removed when the weight is set, so that the weight written is a percentage. O(state=absent) deletes it (all traffic back to blue).
    O(state=promoted) removes the canary annotations once green has 100%, so that it becomes the main Ingress.
  - V(gateway) sets the backend weights of the Gateway API HTTPRoute O(route) in every rule that reaches
    O(blue_service) (blue C(100 - weight), green C(weight)); the green backend is added when missing.
    O(state=absent) removes the green backend and gives blue 100; O(state=promoted) removes the blue backend.
    A green Service in another namespace than the route needs a ReferenceGrant there (role helm_bluegreen creates it).
  - When green has all the traffic, the object is annotated with C(deploy.stellaops.io/full-traffic-since),
    kept while it stays at 100, from which the observation window before blue is decommissioned is counted.
  - C(changed) comes from comparing the routing state (annotations, class, rules) before and after.
    Check mode sends the same request as a server-side dry run (C(dryRun=All)) and changes nothing. When the
    green namespace does not exist yet (a run that creates it in an earlier step), the server cannot dry-run a
    create there, and the plan is the request as computed, with a warning that says so.
version_added: 0.1.0
author:
  - Stella Ops platform engineering (!UNKNOWN)
requirements:
  - kubernetes (the Python client) on the host that runs the module
extends_documentation_fragment:
  - stellaops.deploy.attributes
attributes:
  check_mode:
    support: full
    details:
      - The API server validates the change as a dry run.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  kubeconfig:
    description: Kubeconfig file; C(KUBECONFIG) or C(~/.kube/config) when omitted.
    type: path
  kube_context:
    description: Kubeconfig context; the current one when omitted.
    type: str
  router:
    description: V(nginx) for the NGINX ingress canary annotations, V(gateway) for Gateway API HTTPRoute weights.
    type: str
    choices: [nginx, gateway]
    required: true
  state:
    description:
      - V(present) sets O(weight); V(absent) sends all traffic back to blue and removes the canary;
        V(promoted) makes green the only backend once it has 100%.
    type: str
    choices: [present, absent, promoted]
    default: present
  weight:
    description: Percentage of the traffic for green, 0 to 100. Required with O(state=present).
    type: int
  green_service:
    description: The green Service that receives the canary traffic.
    type: dict
    required: true
    suboptions:
      name:
        description: Service name.
        type: str
        required: true
      namespace:
        description: Its namespace (the green namespace); the canary Ingress is created there.
        type: str
        required: true
      port:
        description: Service port.
        type: int
        required: true
  main_ingress:
    description: Blue's main Ingress whose class, hosts and paths the canary copies (V(nginx)).
    type: dict
    suboptions:
      name:
        description: Ingress name.
        type: str
        required: true
      namespace:
        description: Its namespace (the blue namespace).
        type: str
        required: true
  canary_ingress:
    description: Name of the canary Ingress in the green namespace (V(nginx)).
    type: str
    default: stellaops-canary
  route:
    description: The HTTPRoute whose backend weights change (V(gateway)).
    type: dict
    suboptions:
      name:
        description: HTTPRoute name.
        type: str
        required: true
      namespace:
        description: Its namespace.
        type: str
        required: true
  blue_service:
    description: The blue Service the route sends traffic to today (V(gateway)).
    type: dict
    suboptions:
      name:
        description: Service name.
        type: str
        required: true
      namespace:
        description: Its namespace.
        type: str
        required: true
      port:
        description: Service port.
        type: int
        required: true
"""

EXAMPLES = r"""
- name: Send 25% of the traffic to green through the NGINX ingress canary
  stellaops.deploy.traffic_weight:
    router: nginx
    weight: 25
    main_ingress: {name: stellaops, namespace: stellaops-prod}
    green_service: {name: stellaops-green-scanner-web, namespace: stellaops-green, port: 8444}
    kubeconfig: ~/.kube/config
    kube_context: prod

- name: Immediate rollback through the Gateway API route (green backend removed)
  stellaops.deploy.traffic_weight:
    router: gateway
    state: absent
    route: {name: stellaops, namespace: stellaops-prod}
    blue_service: {name: stellaops-scanner-web, namespace: stellaops-prod, port: 8444}
    green_service: {name: stellaops-green-scanner-web, namespace: stellaops-green, port: 8444}
"""

RETURN = r"""
weight_before:
  description: Green's percentage before the change; null when there was no canary or green backend.
  returned: always
  type: int
  sample: 10
weight_after:
  description: Green's percentage after the change (in check mode, what it would be); null when removed.
  returned: always
  type: int
  sample: 25
full_traffic_since:
  description: When green got all the traffic (UTC, ISO 8601), while it has it.
  returned: always
  type: str
  sample: "2026-12-02T01:40:00.000000Z"
object:
  description: The routing object that was (or would be) changed.
  returned: always
  type: dict
  sample: {kind: Ingress, name: stellaops-canary, namespace: stellaops-green}
diff:
  description: The routing state (annotations, class, rules) before and after.
  returned: when diff mode is on or the state changed
  type: dict
  sample: {before: {annotations: {nginx.ingress.kubernetes.io/canary-weight: "10"}}, after: {annotations: {nginx.ingress.kubernetes.io/canary-weight: "25"}}}
"""

import json
from typing import Any, Optional

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stellaops.deploy.plugins.module_utils.core.errors import StellaOpsError
from ansible_collections.stellaops.deploy.plugins.module_utils.jobs.journal import format_time, utc_now
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.client import api_client
from ansible_collections.stellaops.deploy.plugins.module_utils.kube.traffic import (
    FULL_TRAFFIC_SINCE,
    ROUTERS,
    Backend,
    canary_change,
    check_weight,
    route_view,
    route_weight,
    routed_route,
)

try:
    from kubernetes.dynamic import DynamicClient
    from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError
    from urllib3.exceptions import HTTPError as TransportError

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False


def _backend(raw: dict[str, Any]) -> Backend:
    return Backend(raw["name"], raw["namespace"], raw["port"])


def _status(error: Exception) -> dict[str, Any]:
    """The Kubernetes Status object an API error carries, or {}."""
    try:
        document = json.loads(getattr(error, "body", None) or b"{}")
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _api_error(error: Exception, what: str) -> StellaOpsError:
    status = getattr(error, "status", None)
    summary = getattr(error, "summary", None)
    detail = _status(error).get("message") or (summary() if callable(summary) else str(error))
    return StellaOpsError(f"The API server refused to {what} (HTTP {status}): {' '.join(str(detail).split())[:300]}.")


def dynamic_client(kubeconfig: Optional[str], context: Optional[str]) -> Any:
    if not HAS_KUBERNETES:
        raise StellaOpsError("traffic_weight needs the 'kubernetes' Python package on the host that runs it.")
    api = api_client(kubeconfig, context, "traffic_weight")
    try:
        return DynamicClient(api)
    except TransportError as err:
        raise StellaOpsError(f"The API server of context {context or '(current)'} does not answer: {' '.join(str(err).split())[:200]}") from None


class TrafficWeight:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.host = ""
        self.client = dynamic_client(self.params["kubeconfig"], self.params["kube_context"])
        self.host = self.client.configuration.host
        # check mode: the same requests as a server-side dry run
        self.dry_run = {"dry_run": "All"} if module.check_mode else {}
        self.now = format_time(utc_now())

    def _resource(self, kind: str, api_version: str) -> Any:
        try:
            return self.client.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            raise StellaOpsError(f"The API server does not serve {kind} ({api_version}); is that API installed in the cluster?") from None
        except TransportError as error:
            raise StellaOpsError(f"The API server {self.host} does not answer: {' '.join(str(error).split())[:200]}") from None

    def _get(self, kind: str, api_version: str, name: str, namespace: str) -> Optional[dict[str, Any]]:
        resource = self._resource(kind, api_version)
        try:
            return resource.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return None
        except DynamicApiError as error:
            raise _api_error(error, f"read {kind} {name} in {namespace}") from None
        except TransportError as error:
            raise StellaOpsError(f"The API server {self.host} does not answer: {' '.join(str(error).split())[:200]}") from None

    def _call(self, verb: str, kind: str, api_version: str, what: str, body: Any = None, **kwargs: Any) -> None:
        resource = self._resource(kind, api_version)
        try:
            if verb == "delete":
                resource.delete(**kwargs, **self.dry_run)
            else:
                getattr(resource, verb)(body=body, **kwargs, **self.dry_run)
        except DynamicApiError as error:
            details = _status(error).get("details") or {}
            if self.dry_run and error.status == 404 and details.get("kind") == "namespaces" and details.get("name") == kwargs.get("namespace"):
                # check mode of a run that creates the namespace in an earlier step: the server cannot
                # dry-run a create there yet, so the plan is the request as computed, said as such
                self.module.warn(f"Namespace {details['name']} does not exist yet, so the server could not dry-run: {what}.")
                return
            raise _api_error(error, what) from None

    def run(self) -> dict[str, Any]:
        params = self.params
        state = params["state"]
        if state == "present" and params["weight"] is None:
            raise StellaOpsError("weight: required with state=present.")
        weight = check_weight(params["weight"]) if state == "present" else 0
        green = _backend(params["green_service"])
        if params["router"] == "nginx":
            return self._nginx(state, weight, green)
        return self._gateway(state, weight, green)

    def _result(self, kind: str, name: str, namespace: str, before: Any, after: Any, weights: tuple[Optional[int], Optional[int]]) -> dict[str, Any]:
        changed = before != after
        result: dict[str, Any] = {
            "changed": changed,
            "weight_before": weights[0],
            "weight_after": weights[1],
            "full_traffic_since": ((after or {}).get("annotations") or {}).get(FULL_TRAFFIC_SINCE),
            "object": {"kind": kind, "name": name, "namespace": namespace},
        }
        if changed or self.module._diff:
            result["diff"] = {"before": before or {}, "after": after or {}}
        return result

    def _nginx(self, state: str, weight: int, green: Backend) -> dict[str, Any]:
        name = self.params["canary_ingress"]
        current = self._get("Ingress", "networking.k8s.io/v1", name, green.namespace)
        where = f"Ingress {name} in {green.namespace}"
        main = self._main_ingress() if state == "present" else None
        # Everything is read and checked before the one request is sent: a task that fails changes nothing.
        change = canary_change(state, current, name, green, weight, main, self.now)
        if change.request == "delete":
            self._call("delete", "Ingress", "networking.k8s.io/v1", f"delete {where}", name=name, namespace=green.namespace)
        elif change.request == "create":
            self._call("create", "Ingress", "networking.k8s.io/v1", f"create {where}", body=change.body, namespace=green.namespace)
        elif change.request == "patch":
            self._call("patch", "Ingress", "networking.k8s.io/v1", f"{'promote' if state == 'promoted' else 'patch'} {where}", body=change.body,
                       name=name, namespace=green.namespace, content_type="application/merge-patch+json")  # fmt: skip
        return self._result("Ingress", name, green.namespace, change.before, change.after, (change.weight_before, change.weight_after))

    def _main_ingress(self) -> Optional[dict[str, Any]]:
        """Blue's main Ingress; None when main_ingress is not given (canary_change refuses that)."""
        main_ref = self.params["main_ingress"]
        if not main_ref:
            return None
        main = self._get("Ingress", "networking.k8s.io/v1", main_ref["name"], main_ref["namespace"])
        if main is None:
            raise StellaOpsError(f"main_ingress: Ingress {main_ref['name']} does not exist in namespace {main_ref['namespace']}.")
        return main

    def _gateway(self, state: str, weight: int, green: Backend) -> dict[str, Any]:
        route_ref, blue_ref = self.params["route"], self.params["blue_service"]
        if not route_ref or not blue_ref:
            raise StellaOpsError("route and blue_service: required with router=gateway.")
        blue = _backend(blue_ref)
        name, namespace = route_ref["name"], route_ref["namespace"]
        api_version = "gateway.networking.k8s.io/v1"
        current = self._get("HTTPRoute", api_version, name, namespace)
        if current is None:
            raise StellaOpsError(f"route: HTTPRoute {name} does not exist in namespace {namespace}.")
        before = route_view(current)
        # read and checked before the patch, as the rest: a task that fails changes nothing
        weight_before = route_weight(current, blue, green)
        after = routed_route(current, blue, green, state, weight, self.now)
        if after != before:
            annotations = {FULL_TRAFFIC_SINCE: after["annotations"].get(FULL_TRAFFIC_SINCE)}
            patch = {"metadata": {"annotations": annotations}, "spec": {"rules": after["rules"]}}
            self._call("patch", "HTTPRoute", api_version, f"patch HTTPRoute {name} in {namespace}", body=patch, name=name,
                       namespace=namespace, content_type="application/merge-patch+json")  # fmt: skip
        weight_after = {"present": weight, "absent": None, "promoted": 100}[state]
        return self._result("HTTPRoute", name, namespace, before, after, (weight_before, weight_after))


def main() -> None:
    service = {"name": {"type": "str", "required": True}, "namespace": {"type": "str", "required": True}, "port": {"type": "int", "required": True}}
    named = {"name": {"type": "str", "required": True}, "namespace": {"type": "str", "required": True}}
    module = AnsibleModule(
        argument_spec={
            "kubeconfig": {"type": "path"},
            "kube_context": {"type": "str"},
            "router": {"type": "str", "choices": list(ROUTERS), "required": True},
            "state": {"type": "str", "choices": ["present", "absent", "promoted"], "default": "present"},
            "weight": {"type": "int"},
            "green_service": {"type": "dict", "required": True, "options": service},
            "main_ingress": {"type": "dict", "options": named},
            "canary_ingress": {"type": "str", "default": "stellaops-canary"},
            "route": {"type": "dict", "options": named},
            "blue_service": {"type": "dict", "options": service},
        },
        supports_check_mode=True,
    )
    try:
        result = TrafficWeight(module).run()
    except StellaOpsError as err:
        module.fail_json(msg=str(err))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
