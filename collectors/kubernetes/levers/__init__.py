"""The five ways releasedeck moves traffic on Kubernetes, chosen by `[platform] lever`."""

from collectors.kubernetes.levers.argo import ArgoRollout
from collectors.kubernetes.levers.base import Lever, LeverView
from collectors.kubernetes.levers.httproute import HTTPRouteWeights
from collectors.kubernetes.levers.replicas import ReplicaRatio
from collectors.kubernetes.levers.rolling import RollingUpdate
from collectors.kubernetes.levers.service import ServiceSwitch

LEVERS: dict[str, type[Lever]] = {
    "replicas": ReplicaRatio,
    "service": ServiceSwitch,
    "httproute": HTTPRouteWeights,
    "rolling": RollingUpdate,
    "argo": ArgoRollout,
}

__all__ = ["LEVERS", "ArgoRollout", "HTTPRouteWeights", "Lever", "LeverView", "ReplicaRatio", "RollingUpdate",
           "ServiceSwitch"]
