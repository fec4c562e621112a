# SPDX-License-Identifier: GPL-3.0-or-later
"""Options of the Helm modules that name a release and where it lives."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  release:
    description: Name of the Helm release.
    type: str
    required: true
  namespace:
    description: Namespace of the release.
    type: str
    required: true
  kube_context:
    description: Kubeconfig context; the current context of the kubeconfig when omitted.
    type: str
  kubeconfig:
    description: Kubeconfig file (on the host that runs helm); C(KUBECONFIG) or C(~/.kube/config) when omitted.
    type: path
  helm_path:
    description: The helm binary (Helm 3 or Helm 4); found on C(PATH) and in C(STELLAOPS_TOOLS_DIR) when omitted.
    type: path
requirements:
  - helm 3 or helm 4 on the host that runs the module
"""
