# SPDX-License-Identifier: GPL-3.0-or-later
"""An API client of the kubernetes package for one kubeconfig and context, with one-sentence errors.

The package's client waits for ever unless each call names a timeout; ours has a default for every
call (``REQUEST_TIMEOUT``: connect, then each read) and one retry, so an API server that accepts
and never answers fails a run in seconds, not never.
"""

from __future__ import annotations

import os
from typing import Any, Optional

from ..core.errors import StellaOpsError
from ..core.safe_load import read_bytes

REQUEST_TIMEOUT = (10.0, 60.0)


def check_kubeconfig(kubeconfig: Optional[str]) -> None:
    """A kubeconfig that exists is a regular file of bounded size: the kubernetes package and helm would
    block on a FIFO for ever (one that does not exist is left to their own message)."""
    if kubeconfig and os.path.lexists(kubeconfig):
        read_bytes(kubeconfig, "kubeconfig")


def api_client(kubeconfig: Optional[str], context: Optional[str], user: str, timeout: tuple[float, float] = REQUEST_TIMEOUT) -> Any:
    """``kubernetes.client.ApiClient`` for ``kubeconfig`` (default: $KUBECONFIG or ~/.kube/config) and ``context``.

    ``user`` names what needs the client in the message when the kubernetes package is missing;
    ``timeout`` (connect, read) bounds every call that names no timeout of its own.
    """
    try:
        import yaml  # noqa: PLC0415 - the kubernetes package reads kubeconfig files with PyYAML
        from kubernetes import client, config  # noqa: PLC0415 - only the Kubernetes code paths need it
        from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415
    except ImportError:
        raise StellaOpsError(f"{user} needs the 'kubernetes' Python package on the host that runs it.") from None
    check_kubeconfig(kubeconfig)
    configuration = client.Configuration()
    configuration.retries = 1  # urllib3 would try a silent server four times
    try:
        api = config.new_client_from_config(config_file=kubeconfig, context=context, client_configuration=configuration)
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split()).rstrip(".")
        raise StellaOpsError(f"Cannot load the kubeconfig {kubeconfig or '(default)'} context {context or '(current)'}: {reason}.") from None
    request = api.rest_client.request

    # every typed and dynamic call of the package ends in this method of the REST client
    def bounded(*args: Any, **kwargs: Any) -> Any:
        if not kwargs.get("_request_timeout"):
            kwargs["_request_timeout"] = timeout
        return request(*args, **kwargs)

    api.rest_client.request = bounded
    return api


def core_v1_api(kubeconfig: Optional[str], context: Optional[str], user: str) -> Any:
    """``kubernetes.client.CoreV1Api`` on :func:`api_client` (ConfigMaps, Secrets, namespaces)."""
    api = api_client(kubeconfig, context, user)
    from kubernetes import client  # noqa: PLC0415 - present: api_client imported the package

    return client.CoreV1Api(api)


def namespace_exists(kubeconfig: Optional[str], context: Optional[str], namespace: str, user: str) -> Optional[bool]:
    """Whether ``namespace`` exists; None when it cannot be asked here (no kubernetes package, a kubeconfig
    only helm reads): helm then asks, and says the same in its own words."""
    try:
        api = core_v1_api(kubeconfig, context, user)
    except StellaOpsError:
        return None
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415 - present: core_v1_api imported the package
    from urllib3.exceptions import HTTPError  # noqa: PLC0415 - the kubernetes package's transport

    try:
        api.read_namespace(namespace)
    except ApiException as err:
        if err.status == 404:
            return False
        raise StellaOpsError(f"Cannot read namespace {namespace} of context {context or '(current)'}: HTTP {err.status} {err.reason}.") from None
    except HTTPError as err:
        where = context or "(current)"
        raise StellaOpsError(f"The Kubernetes API server of context {where} is unreachable ({type(err).__name__}); nothing was changed.") from None
    return True


def live_workload_images(kubeconfig: Optional[str], context: Optional[str], namespace: str, selector: str, user: str) -> dict[str, list[str]]:
    """``Kind/name`` of each Deployment and StatefulSet matching the label ``selector`` and the images its pod template runs."""
    api = api_client(kubeconfig, context, user)
    from kubernetes import client  # noqa: PLC0415 - present: api_client imported the package
    from kubernetes.client.exceptions import ApiException  # noqa: PLC0415
    from urllib3.exceptions import HTTPError  # noqa: PLC0415 - the kubernetes package's transport

    apps = client.AppsV1Api(api)
    found: dict[str, list[str]] = {}
    for kind, listing in (("Deployment", apps.list_namespaced_deployment), ("StatefulSet", apps.list_namespaced_stateful_set)):
        try:
            items = listing(namespace, label_selector=selector).items
        except ApiException as err:
            raise StellaOpsError(f"Cannot list the {kind}s of namespace {namespace}: HTTP {err.status} {err.reason}.") from None
        except HTTPError as err:
            raise StellaOpsError(f"The Kubernetes API server of context {context or '(current)'} is unreachable ({type(err).__name__}).") from None
        for item in items:
            found[f"{kind}/{item.metadata.name}"] = [container.image for container in item.spec.template.spec.containers]
    return found
