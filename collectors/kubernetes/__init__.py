"""Kubernetes adapter: Deployments, Service switch, Gateway API weights, rolling, Argo Rollouts."""

from collectors.kubernetes.errors import KubeError
from collectors.kubernetes.platform import KubernetesPlatform, open_kubernetes

__all__ = ["KubeError", "KubernetesPlatform", "open_kubernetes"]
