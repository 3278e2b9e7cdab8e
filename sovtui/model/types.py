"""Provides the plain frozen dataclasses that sources produce and screens read."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .jobs import JobsState


class Health(enum.StrEnum):
    """A verdict level; ordered so that ``max()`` picks the worst."""

    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _HEALTH_RANK[self]

    @property
    def glyph(self) -> str:
        """A symbol that carries the level without colour."""
        return _HEALTH_GLYPH[self]

    @classmethod
    def worst(cls, levels: Iterable[Health]) -> Health:
        seen = list(levels)
        if not seen:
            return cls.OK
        worst: Health = max(seen, key=lambda h: h.rank)
        return worst


_HEALTH_RANK = {Health.OK: 0, Health.UNKNOWN: 1, Health.WARN: 2, Health.CRIT: 3}
_HEALTH_GLYPH = {Health.OK: "✓", Health.UNKNOWN: "?", Health.WARN: "▲", Health.CRIT: "✗"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A health level with the human reasons behind it, worst first."""

    level: Health = Health.OK
    reasons: tuple[str, ...] = ()

    @property
    def first_reason(self) -> str:
        return self.reasons[0] if self.reasons else ""


@dataclass(frozen=True, slots=True)
class XidEvent:
    """One NVIDIA XID error seen on a GPU."""

    code: int
    at: float | None = None  # unix seconds, when known
    message: str = ""


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process on a GPU, mapped to its Kubernetes pod or Slurm job when the host allows."""

    pid: int
    used_mib: float | None = None
    name: str = ""
    pod: str = ""  # namespace/name
    container: str = ""
    slurm_job: str = ""

    @property
    def workload(self) -> str:
        if self.pod:
            return self.pod
        if self.slurm_job:
            return f"slurm:{self.slurm_job}"
        return self.name or str(self.pid)


@dataclass(frozen=True, slots=True)
class MigInstance:
    """One MIG GPU instance."""

    gi: int
    ci: int | None = None
    profile: str = ""
    uuid: str = ""
    mem_total_mib: float | None = None


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU as seen by one or more sources (NVML over SSH, DCGM in Prometheus, ...)."""

    host: str
    index: int
    uuid: str = ""
    name: str = ""
    util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_mib: float | None = None
    mem_total_mib: float | None = None
    temp_c: float | None = None
    temp_slowdown_c: float | None = None
    temp_shutdown_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    ecc_corrected_volatile: int | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    row_remap_pending: bool | None = None
    row_remap_failure: bool | None = None
    retired_pages_pending: bool | None = None
    throttle_reasons: tuple[str, ...] = ()
    nvlink_down: int | None = None
    nvlink_total: int | None = None
    pci_bus_id: str = ""
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    ecc_mode: bool | None = None
    mig_mode: bool | None = None
    mig_instances: tuple[MigInstance, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    error: str = ""  # a per-GPU read error (e.g. "GPU is lost")
    xids: tuple[XidEvent, ...] = ()
    lost: bool = False  # fell off the bus / expected but not enumerated
    workload: str = ""  # pod (ns/name) or Slurm job holding the GPU
    sources: tuple[str, ...] = ()
    observed_at: float | None = None

    @property
    def key(self) -> str:
        return self.uuid or f"{self.host}/{self.index}"

    @property
    def mem_pct(self) -> float | None:
        if self.mem_used_mib is None or not self.mem_total_mib:
            return None
        return 100.0 * self.mem_used_mib / self.mem_total_mib

    @property
    def last_xid(self) -> int | None:
        return self.xids[-1].code if self.xids else None


@dataclass(frozen=True, slots=True)
class GpuHost:
    """What a source knows about a GPU host as a whole."""

    name: str
    expected_gpus: int | None = None
    driver_version: str = ""
    cuda_version: str = ""
    backend: str = ""  # nvml | nvidia-smi | dcgm | none
    error: str = ""  # unreachable, host key changed, probe failed: why
    latency_s: float | None = None
    observed_at: float | None = None


@dataclass(frozen=True, slots=True)
class CephPool:
    """One Ceph pool's usage."""

    name: str
    stored_bytes: float = 0.0
    max_avail_bytes: float = 0.0
    objects: int | None = None

    @property
    def used_pct(self) -> float:
        total = self.stored_bytes + self.max_avail_bytes
        return 100.0 * self.stored_bytes / total if total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class CephState:
    """A Ceph cluster's health and capacity."""

    health: str = "HEALTH_UNKNOWN"  # HEALTH_OK / HEALTH_WARN / HEALTH_ERR
    total_bytes: float = 0.0
    used_bytes: float = 0.0
    nearfull_ratio: float = 0.85
    full_ratio: float = 0.95
    osds_total: int = 0
    osds_up: int = 0
    osds_in: int = 0
    pools: tuple[CephPool, ...] = ()
    checks: tuple[str, ...] = ()  # active health check names, e.g. OSD_NEARFULL

    @property
    def used_pct(self) -> float:
        return 100.0 * self.used_bytes / self.total_bytes if self.total_bytes > 0 else 0.0


@dataclass(frozen=True, slots=True)
class FabricLink:
    """One switch port of the leaf-spine fabric."""

    device: str
    ifname: str
    oper_up: bool
    admin_up: bool = True
    speed_mbps: float | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    errors_per_s: float | None = None
    peer: str = ""

    @property
    def down(self) -> bool:
        """Down although an operator wants it up."""
        return self.admin_up and not self.oper_up


@dataclass(frozen=True, slots=True)
class FabricState:
    """The switch ports of the fabric."""

    links: tuple[FabricLink, ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted({link.device for link in self.links}))

    @property
    def links_down(self) -> tuple[FabricLink, ...]:
        return tuple(link for link in self.links if link.down)


@dataclass(frozen=True, slots=True)
class QueueState:
    """One job queue: a Slurm partition, a Kueue ClusterQueue, or Kubernetes pending pods."""

    name: str
    system: str  # "slurm" | "kueue" | "kubernetes"
    pending_jobs: int = 0
    running_jobs: int = 0
    pending_gpus: int = 0
    oldest_pending_s: float | None = None


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert from Prometheus or Alertmanager."""

    name: str
    severity: str = "none"
    state: str = "firing"  # firing | pending | suppressed
    labels: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    description: str = ""
    active_since: float | None = None
    source: str = "prometheus"

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def identity(self) -> tuple[Any, ...]:
        """Same alert from Prometheus and Alertmanager compares equal on this."""
        return (self.name, tuple(sorted(kv for kv in self.labels if kv[0] not in ("alertname",))))


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


@dataclass(frozen=True, slots=True)
class NovaHost:
    """A Nova compute host: its nova-compute service, its hypervisor's capacity (Placement) and its servers."""

    name: str
    zone: str = ""
    service_state: str = ""  # up | down
    service_status: str = ""  # enabled | disabled
    disabled_reason: str = ""
    forced_down: bool = False
    hypervisor_state: str = ""
    vcpus_used: int | None = None
    vcpus: int | None = None
    memory_mb_used: int | None = None
    memory_mb: int | None = None
    running_vms: int = 0
    servers: tuple[str, ...] = ()  # server names, sorted
    gpu_inventory: tuple[tuple[str, int, int], ...] = ()  # (resource class VGPU/PGPU, total, used)
    #: False when Placement never answered: ``gpu_inventory`` is then unknown, not "no GPUs"
    gpu_inventory_known: bool = True

    @property
    def gpus_total(self) -> int:
        return sum(total for _, total, _ in self.gpu_inventory)

    @property
    def gpus_used(self) -> int:
        return sum(used for _, _, used in self.gpu_inventory)


@dataclass(frozen=True, slots=True)
class OpenStackFlavor:
    """A Nova flavor, with the extra specs that ask for GPUs (``pci_passthrough:alias``, ``resources:VGPU``)."""

    name: str
    vcpus: int = 0
    ram_mb: int = 0
    gpu_specs: tuple[tuple[str, str], ...] = ()
    public: bool = True

    @property
    def is_gpu(self) -> bool:
        return bool(self.gpu_specs)


@dataclass(frozen=True, slots=True)
class OpenStackImage:
    """A Glance image a VM can boot from."""

    name: str
    id: str = ""
    status: str = ""  # active | queued | saving | deactivated | ...
    visibility: str = ""  # public | private | shared | community
    size_bytes: int | None = None
    disk_format: str = ""


@dataclass(frozen=True, slots=True)
class OpenStackNetwork:
    """A Neutron network: what a VM can be plugged into."""

    name: str
    id: str = ""
    status: str = ""  # ACTIVE | DOWN | BUILD | ERROR
    admin_state_up: bool = True
    shared: bool = False
    external: bool = False
    network_type: str = ""  # flat | vlan | vxlan | geneve (admins see it)
    subnets: int = 0


@dataclass(frozen=True, slots=True)
class NeutronAgent:
    """A Neutron agent (L3, DHCP, OVS, metadata, ...) on one host."""

    host: str
    agent_type: str = ""
    binary: str = ""
    alive: bool = False
    admin_state_up: bool = True


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """A Slurm node as ``sinfo``/``scontrol`` report it."""

    name: str
    state: str = ""  # sinfo's word: idle, mixed, allocated, draining, drained, down, ... (lower case, no flags)
    reason: str = ""
    partitions: tuple[str, ...] = ()
    gpus: int = 0  # gres gpu count
    gpus_allocated: int = 0
    jobs: tuple[str, ...] = ()  # job ids running here
    #: the state words as Slurm gives them, upper case: the base state first, then its flags
    #: (e.g. ("MIXED", "DRAIN"), ("DOWN", "DRAIN", "NOT_RESPONDING")); empty when not known
    flags: tuple[str, ...] = ()
    reason_user: str = ""  # who set the reason
    reason_time: float | None = None  # when the reason was set (epoch seconds)

    @property
    def closed(self) -> bool:
        """No new jobs start here (drained, draining, down, ...)."""
        return self.state.startswith(
            ("drain", "down", "fail", "maint", "reserved", "inval", "unknown", "not_responding")
        )

    @property
    def down(self) -> bool:
        # a DOWN node that is also drained: sinfo's word is "drained", its base state is DOWN
        return self.state.startswith(("down", "not_responding", "fail")) or (
            bool(self.flags) and self.flags[0] == "DOWN"
        )


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A recent (warning) event about a host or about something running on it, from one source."""

    node: str
    source: str  # kubernetes | openstack | slurm
    kind: str  # the object's kind: Node, Pod, ...
    object: str  # namespace/name or name
    type: str  # Warning | Normal
    reason: str
    message: str
    count: int = 1
    last_seen: float | None = None


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
