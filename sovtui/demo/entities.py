"""Provides the simulated entities of the demo cluster: GPU models, GPUs, hosts, pods, jobs, Slurm and Nova records, OSDs, pools, ports, the storyline."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.types import XidEvent
from .common import GPUS_PER_HOST

# ---------------------------------------------------------------------------------------------
# sim state: plain mutable objects; copies are handed out, never the originals


@dataclass(frozen=True, slots=True)
class GpuModel:
    """Static properties of a GPU model."""

    name: str
    mem_mib: float
    power_limit_w: float
    idle_w: float
    slowdown_c: float
    shutdown_c: float


H100 = GpuModel("NVIDIA H100 80GB HBM3", 81559.0, 700.0, 72.0, 87.0, 92.0)
A100 = GpuModel("NVIDIA A100-SXM4-80GB", 81920.0, 400.0, 55.0, 89.0, 92.0)


@dataclass(eq=False, slots=True)
class SimGpu:
    """One simulated GPU; ``owner`` is the Pod, SlurmJob or NovaServer holding it."""

    host: str
    index: int
    uuid: str
    model: GpuModel
    bias_c: float
    sbe_rate: float
    util: float = 0.0
    mem_util: float = 0.0
    mem_used: float = 0.0
    temp: float = 32.0
    power: float = 70.0
    load: float = 50.0  # inference demand, a random walk
    heat_c: float = 0.0  # extra heat (failing fan storyline)
    ecc_corrected: int = 0
    ecc_uncorrected_volatile: int = 0
    ecc_uncorrected_aggregate: int = 0
    row_remap_pending: bool = False
    row_remap_failure: bool = False
    throttle: tuple[str, ...] = ()
    xids: list[XidEvent] = field(default_factory=list)
    lost: bool = False
    owner: object | None = None

    @property
    def workload(self) -> str:
        return getattr(self.owner, "workload", "") if self.owner is not None else ""

    @property
    def kind(self) -> str:
        return getattr(self.owner, "gpu_kind", "") if self.owner is not None else ""


@dataclass(eq=False, slots=True)
class SimHost:
    """One GPU host; ``role`` says which system schedules its GPUs: kubernetes, slurm or nova."""

    name: str
    model: GpuModel
    role: str
    leaf: str
    leaf_port: str
    gpus: list[SimGpu] = field(default_factory=list)
    util_mean: float = 0.0
    heavy: bool = False  # runs training: much east-west traffic

    def free_gpus(self) -> list[int]:
        return [g.index for g in self.gpus if g.owner is None and not g.lost]

    def usable_gpus(self) -> int:
        return sum(1 for g in self.gpus if not g.lost)


@dataclass(eq=False, slots=True)
class K8sNode:
    """A Kubernetes node."""

    name: str
    role: str  # worker | control-plane
    gpu_capacity: int = 0
    unschedulable: bool = False
    ready: bool = True
    taints: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Pod:
    """A Kubernetes pod; ``owner_kind`` is ReplicaSet, Job, DaemonSet or Node (static pods)."""

    namespace: str
    name: str
    owner_kind: str
    owner_name: str
    gpus: int = 0
    gpu_kind: str = ""
    pool: str = "gpu"  # gpu | control-plane | node (pinned to node_hint)
    node_hint: str = ""
    node: str | None = None
    phase: str = "Pending"
    ready: bool = False
    reason: str = ""
    created_at: float = 0.0
    started_at: float | None = None
    ready_at: float | None = None
    end_at: float | None = None
    finished_at: float | None = None
    startup_s: float = 5.0
    restarts: int = 0
    gpu_indices: tuple[int, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def workload(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def terminal(self) -> bool:
        return self.phase in ("Succeeded", "Failed")


@dataclass(eq=False, slots=True)
class Deployment:
    """A Deployment (its ReplicaSet is folded in); ``pdb_min_available`` models its PodDisruptionBudget."""

    namespace: str
    name: str
    replicas: int
    gpus: int
    gpu_kind: str
    startup_s: float
    pool: str = "gpu"
    pdb_min_available: int | None = None
    template_hash: str = ""


@dataclass(eq=False, slots=True)
class Job:
    """An indexed batch Job: ``parallelism`` pods that each run ``duration_s``."""

    namespace: str
    name: str
    parallelism: int
    gpus: int
    duration_s: float
    created_at: float
    gpu_kind: str = "train"
    startup_s: float = 20.0
    succeeded: int = 0
    failed: int = 0
    completed_at: float | None = None
    next_index: int = 0


@dataclass(eq=False, slots=True)
class DaemonSet:
    """A DaemonSet: one pod per node of its pool (``gpu-nodes`` or ``all``)."""

    namespace: str
    name: str
    pool: str = "gpu-nodes"


@dataclass(eq=False, slots=True)
class SlurmNode:
    """A Slurm node; its state word is computed by :meth:`DemoCluster.slurm_node_state`."""

    name: str
    partitions: tuple[str, ...]
    gpus: int = GPUS_PER_HOST
    drain: bool = False
    reason: str = ""
    reason_at: float | None = None


@dataclass(eq=False, slots=True)
class SlurmJob:
    """A Slurm job (or one task of an array job)."""

    job_id: int
    name: str
    user: str
    partition: str
    nodes: int
    gpus_per_node: int
    duration_s: float
    submit_at: float
    array_task: int | None = None
    state: str = "PENDING"  # PENDING | RUNNING | COMPLETED | NODE_FAIL
    reason: str = "None"
    start_at: float | None = None
    end_at: float | None = None
    alloc: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)
    requeues: int = 0
    gpu_kind: str = "train"

    @property
    def id_str(self) -> str:
        return f"{self.job_id}_{self.array_task}" if self.array_task is not None else str(self.job_id)

    @property
    def workload(self) -> str:
        return f"slurm:{self.id_str}"

    @property
    def gpus(self) -> int:
        return self.nodes * self.gpus_per_node


@dataclass(eq=False, slots=True)
class NovaService:
    """A nova-compute service on a hypervisor."""

    host: str
    binary: str = "nova-compute"
    zone: str = "gpu"
    status: str = "enabled"
    state: str = "up"
    disabled_reason: str = ""


@dataclass(eq=False, slots=True)
class NovaServer:
    """A Nova server (VM) with vGPUs on a hypervisor."""

    id: str
    name: str
    host: str
    flavor: str
    project: str
    gpus: int = 0
    status: str = "ACTIVE"
    gpu_indices: tuple[int, ...] = ()
    gpu_kind: str = "vm"

    @property
    def workload(self) -> str:
        return f"nova:{self.name}"


@dataclass(eq=False, slots=True)
class Osd:
    id: int
    host: str
    skew: float
    up: bool = True


@dataclass(eq=False, slots=True)
class Pool:
    name: str
    overhead: float  # raw bytes per stored byte
    stored: float
    object_size: float


@dataclass(eq=False, slots=True)
class Port:
    device: str
    ifname: str
    speed_mbps: float
    peer: str
    admin_up: bool = True
    oper_up: bool = True
    in_bps: float = 0.0
    out_bps: float = 0.0
    errors_per_s: float = 0.0
    host: str = ""  # the GPU host behind a leaf's host port
    link: str = ""  # "leaf2:swp51" for both ends of one uplink


@dataclass(frozen=True, slots=True)
class Storyline:
    """When and where the scripted incidents of one seed happen (absolute times)."""

    ecc_gpu: tuple[str, int]
    ecc_at: float
    ecc_again_at: float
    hot_gpu: tuple[str, int]
    hot_from: float
    xid_gpu: tuple[str, int]
    xid_times: tuple[tuple[int, float], ...]  # (code, time), the last one is 79
    flap_link: tuple[str, str]  # (leaf, ifname)
    flap_from: float  # errors start; first down 90 s later; cycle repeats every FLAP_PERIOD_S
    osd_down: int
    osd_down_from: float
    osd_down_for: float
    pool_nearfull_at: float  # "datasets" crosses nearfull; cycle repeats every POOL_PERIOD_S
    sweep_at: float  # first burst of Slurm submissions; repeats every SWEEP_PERIOD_S


FLAP_PERIOD_S = 1800.0
OSD_PERIOD_S = 2400.0
POOL_PERIOD_S = 1800.0
SWEEP_PERIOD_S = 2700.0
SLURM_BACKLOG_GPUS = 64
