"""Provides the records the Kubernetes informers cache: one small tuple per object, projected from its JSON."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from .selectors import Selector


class NodeRec(NamedTuple):
    name: str
    ready: bool | None
    unschedulable: bool
    taints: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    gpu_product: str
    gpu_capacity: int
    gpu_allocatable: int
    conditions: tuple[tuple[str, str, str, str], ...]


class PodRec(NamedTuple):
    namespace: str
    name: str
    node: str
    phase: str
    gpus: int
    owner_kind: str
    owner_name: str
    mirror: bool
    created: float | None
    deleting: bool
    scheduling: str  # why it is not scheduled (PodScheduled=False message), if so
    uid: str = ""
    emptydir: bool = False  # has an emptyDir volume
    labels: tuple[tuple[str, str], ...] = ()  # sorted pairs, one tuple shared by pods with the same labels
    grace_period_s: int | None = None  # spec.terminationGracePeriodSeconds

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def holds_gpus(self) -> bool:
        return bool(self.gpus and self.node and self.phase not in ("Succeeded", "Failed"))

    @property
    def waits_for_gpus(self) -> bool:
        return bool(self.gpus and not self.node and self.phase == "Pending" and not self.deleting)


class PdbRec(NamedTuple):
    namespace: str
    name: str
    disruptions_allowed: int
    current_healthy: int
    desired_healthy: int
    expected_pods: int
    selector: Selector | None = None  # None selects no pod


class JobRec(NamedTuple):
    namespace: str
    name: str
    active: int
    succeeded: int
    failed: int
    completions: int | None
    state: str  # "running" | "complete" | "failed" | "suspended"


class DeploymentRec(NamedTuple):
    namespace: str
    name: str
    replicas: int
    updated: int
    ready: int
    available: int
    rolled_out: bool  # the controller saw the latest spec and every replica is updated and available


class EventRec(NamedTuple):
    namespace: str
    name: str
    type: str
    reason: str
    message: str
    object_kind: str
    object_name: str
    object_namespace: str
    count: int
    last_seen: float | None


class ClusterQueueRec(NamedTuple):
    name: str
    cohort: str
    pending: int  # status.pendingWorkloads, as Kueue last counted them
    reserving: int
    admitted: int
    gpu_quota: int  # nominal nvidia.com/gpu quota over its flavors
    gpu_reserved: int  # nvidia.com/gpu held by its workloads (status.flavorsReservation)


class LocalQueueRec(NamedTuple):
    namespace: str
    name: str
    cluster_queue: str


class WorkloadRec(NamedTuple):
    namespace: str
    name: str
    queue: str  # its LocalQueue (spec.queueName)
    cluster_queue: str  # where it holds quota (status.admission.clusterQueue), if it does
    state: str  # "pending" | "reserved" (quota held, admission checks not yet passed) | "admitted" | "finished" | "inactive"
    gpus: int  # over its pod sets: count x the per-pod nvidia.com/gpu request
    queued: float | None  # when it (re-)entered the queue: its last requeue, else its creation
    reason: str  # QuotaReserved's reason and message while pending: why it waits, in Kueue's words
    message: str
    owner_kind: str
    owner_name: str

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def local_queue(self) -> str:
        return f"{self.namespace}/{self.queue}"


@dataclass(frozen=True)
class KubeWorkloads:
    """What the informers hold beyond nodes and GPU queues, for screens that want it."""

    pdbs: tuple[PdbRec, ...]
    jobs: tuple[JobRec, ...]
    deployments: tuple[DeploymentRec, ...]
    warning_events: tuple[EventRec, ...]  # newest first
