# SPDX-License-Identifier: GPL-3.0-or-later
"""An API client of the kubernetes package for one kubeconfig and context, with one-sentence errors."""

from __future__ import annotations

from typing import Any, Optional

from ._errors import StellaOpsError


def api_client(kubeconfig: Optional[str], context: Optional[str], user: str) -> Any:
    """``kubernetes.client.ApiClient`` for ``kubeconfig`` (default: $KUBECONFIG or ~/.kube/config) and ``context``.

    ``user`` names what needs the client in the message when the kubernetes package is missing.
    """
    try:
        import yaml  # noqa: PLC0415 - the kubernetes package reads kubeconfig files with PyYAML
        from kubernetes import config  # noqa: PLC0415 - only the Kubernetes code paths need it
        from kubernetes.config.config_exception import ConfigException  # noqa: PLC0415
    except ImportError:
        raise StellaOpsError(f"{user} needs the 'kubernetes' Python package on the host that runs it.") from None
    try:
        return config.new_client_from_config(config_file=kubeconfig, context=context)
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as err:
        reason = " ".join(str(err).split()).rstrip(".")
        raise StellaOpsError(f"Cannot load the kubeconfig {kubeconfig or '(default)'} context {context or '(current)'}: {reason}.") from None


def core_v1_api(kubeconfig: Optional[str], context: Optional[str], user: str) -> Any:
    """``kubernetes.client.CoreV1Api`` on :func:`api_client` (ConfigMaps, Secrets, namespaces)."""
    api = api_client(kubeconfig, context, user)
    from kubernetes import client  # noqa: PLC0415 - present: api_client imported the package

    return client.CoreV1Api(api)
