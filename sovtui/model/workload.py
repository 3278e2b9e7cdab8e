"""Provides the records operations read from the sources: pods with their disruption budgets, Nova servers, Slurm jobs.

They are plain frozen values so that a drain plan can be built from them without I/O, and so that the
real sources and the demo hand the same shapes to :mod:`sovtui.ops`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BudgetRef:
    """A PodDisruptionBudget that selects a pod, with its status as the disruption controller last wrote it."""

    namespace: str
    name: str
    disruptions_allowed: int = 0
    current_healthy: int = 0
    desired_healthy: int = 0
    expected_pods: int = 0

    def describe(self) -> str:
        return (
            f"PodDisruptionBudget {self.namespace}/{self.name} allows {self.disruptions_allowed} disruption(s) now "
            f"({self.current_healthy} healthy, needs {self.desired_healthy}, of {self.expected_pods})"
        )


@dataclass(frozen=True, slots=True)
class PodRef:
    """A pod bound to a node, with what ``kubectl drain``'s filters look at."""

    namespace: str
    name: str
    uid: str = ""
    phase: str = "Running"
    owner_kind: str = ""  # the controlling owner's kind ("" when the pod has no controller)
    owner_name: str = ""
    mirror: bool = False  # a static pod's mirror (annotation kubernetes.io/config.mirror)
    emptydir: bool = False  # has an emptyDir volume (its data is lost on eviction)
    deleting: bool = False  # deletionTimestamp is set
    gpus: int = 0
    grace_period_s: int | None = None  # spec.terminationGracePeriodSeconds
    budgets: tuple[BudgetRef, ...] = ()  # the PodDisruptionBudgets whose selector matches it

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def daemonset(self) -> bool:
        return self.owner_kind == "DaemonSet"

    @property
    def terminated(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(frozen=True, slots=True)
class VmRef:
    """A Nova server on a compute host, with what decides how it can leave the host."""

    id: str
    name: str
    status: str = ""  # ACTIVE, SHUTOFF, PAUSED, VERIFY_RESIZE, MIGRATING, ERROR, ...
    host: str = ""  # compute host (OS-EXT-SRV-ATTR:host)
    task_state: str = ""  # OS-EXT-STS:task_state: migrating, resize_prep, ... ("" when none)
    project: str = ""
    flavor: str = ""
    vcpus: int = 0
    ram_mb: int = 0
    gpu: str = ""  # "vgpu" (resources:VGPU), "pci" (PCI passthrough alias or resources:PGPU), "" (none)
    gpus: int = 0  # how many the flavor asks for (resources:VGPU=N, resources:PGPU=N, or the alias count)


@dataclass(frozen=True, slots=True)
class SlurmJobRef:
    """A Slurm job running on a node (from ``squeue --json``)."""

    id: str
    name: str = ""
    user: str = ""
    state: str = ""  # RUNNING, COMPLETING, PENDING, ...
    partition: str = ""
    nodes: tuple[str, ...] = ()  # every node of the job, expanded from the hostlist
    gpus: int = 0
    started: float | None = None
