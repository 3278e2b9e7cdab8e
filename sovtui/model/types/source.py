"""Provides what one poll of a source returned, the source's freshness, doctor checks and the site shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..jobs import JobsState
from .alerts import Alert
from .ceph import CephState
from .events import NodeEvent
from .fabric import FabricState
from .gpu import Gpu, GpuHost
from .kube import KubeNode
from .openstack import NeutronAgent, NovaHost, OpenStackFlavor, OpenStackImage, OpenStackNetwork
from .queues import QueueState
from .slurm import SlurmNode


@dataclass(frozen=True, slots=True)
class SourceData:
    """What one poll of one source returned; ``None`` means "this source does not know"."""

    gpus: tuple[Gpu, ...] | None = None
    gpu_hosts: tuple[GpuHost, ...] | None = None
    ceph: CephState | None = None
    fabric: FabricState | None = None
    queues: tuple[QueueState, ...] | None = None
    alerts: tuple[Alert, ...] | None = None
    version: str = ""
    notes: tuple[str, ...] = ()
    #: every part the source read this poll, answered or not (see :class:`PartStatus`); a part that failed keeps
    #: its last good data in the facets above, or ``None`` there when it never answered
    parts: tuple[PartStatus, ...] = ()
    kube_nodes: tuple[KubeNode, ...] | None = None
    nova_hosts: tuple[NovaHost, ...] | None = None
    openstack_flavors: tuple[OpenStackFlavor, ...] | None = None
    neutron_agents: tuple[NeutronAgent, ...] | None = None
    openstack_networks: tuple[OpenStackNetwork, ...] | None = None
    openstack_images: tuple[OpenStackImage, ...] | None = None
    slurm_nodes: tuple[SlurmNode, ...] | None = None
    #: recent events per host: the source gives every event it keeps whose object is a node or sits on one
    node_events: tuple[NodeEvent, ...] | None = None
    #: per-job work (Slurm jobs and partitions, Kubernetes Jobs and pending pods, Kueue): each source fills its systems
    jobs: JobsState | None = None


@dataclass(frozen=True, slots=True)
class PartStatus:
    """One part a source reads on its own (an OpenStack service, a Kubernetes resource kind, a Prometheus query
    family, an SSH host): whether it answered the last poll, why not, and how old the data kept for it is."""

    name: str
    ok: bool
    error: str = ""
    last_ok_at: float | None = None  # when this part last answered: what is shown for it is that old (None: never)


@dataclass(frozen=True, slots=True)
class SourceStatus:
    """Freshness of one source: when it last answered, and why it failed if it did."""

    name: str
    kind: str = ""
    interval_s: float = 10.0
    ok: bool | None = None  # None: never polled yet
    error: str = ""
    latency_s: float | None = None
    last_ok_at: float | None = None
    last_attempt_at: float | None = None
    failures: int = 0
    #: the parts of the source, as its last answer reported them (empty: a source of one part)
    parts: tuple[PartStatus, ...] = ()

    def age(self, now: float) -> float | None:
        return None if self.last_ok_at is None else max(0.0, now - self.last_ok_at)

    @property
    def failing_parts(self) -> tuple[PartStatus, ...]:
        return tuple(p for p in self.parts if not p.ok)

    @property
    def complete(self) -> bool:
        """The source and every part of it answered its last poll."""
        return bool(self.ok) and not self.failing_parts

    def state(self, now: float) -> str:
        """``pending`` | ``ok`` | ``stale`` | ``failing`` | ``partial`` (answered, but some part did not)."""
        if self.ok is None:
            return "pending"
        if not self.ok:
            return "failing"
        age = self.age(now)
        if age is not None and age > max(3 * self.interval_s, self.interval_s + 10):
            return "stale"
        if self.failing_parts:
            return "partial"
        return "ok"


@dataclass(frozen=True, slots=True)
class SourceResult:
    """The hub's record of one source: its status and its last good data."""

    status: SourceStatus
    data: SourceData | None = None


@dataclass(frozen=True, slots=True)
class DoctorCheck:
    """One line of ``sovtui doctor``."""

    source: str
    check: str
    ok: bool
    detail: str = ""
    hint: str = ""


@dataclass(frozen=True)
class SiteInfo:
    """What the UI needs to know about the site it shows."""

    name: str
    production: bool = False
    read_only: bool = False
    demo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
