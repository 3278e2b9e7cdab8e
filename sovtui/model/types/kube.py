"""Provides the Kubernetes nodes with their GPU accounting."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class KubeNode:
    """A Kubernetes node as its API reports it, with its GPU accounting (``nvidia.com/gpu``)."""

    name: str
    ready: bool | None = None  # None: Ready is Unknown (kubelet silent) or not reported
    unschedulable: bool = False  # cordoned
    taints: tuple[str, ...] = ()  # "key=value:Effect"
    labels: tuple[tuple[str, str], ...] = ()  # a subset: roles, zone, instance type, GPU feature discovery
    gpu_product: str = ""  # label nvidia.com/gpu.product
    gpu_capacity: int = 0
    gpu_allocatable: int = 0
    gpu_requested: int = 0  # by the pods bound here that have not finished
    conditions: tuple[tuple[str, str, str, str], ...] = ()  # (type, status, reason, message)
    pods_with_gpus: tuple[tuple[str, int], ...] = ()  # ("namespace/name", GPUs), by name
    #: why the pods on this node are not known ("forbidden", "not served", "not listed yet"); "" when they are.
    #: While set, ``gpu_requested`` and ``pods_with_gpus`` are not counts (at most the last ones seen): unknown, not 0
    pods_unknown: str = ""

    @property
    def pods_known(self) -> bool:
        return not self.pods_unknown

    @property
    def gpu_free(self) -> int:
        return max(0, self.gpu_allocatable - self.gpu_requested)

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)
