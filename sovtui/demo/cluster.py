"""Provides the simulated demo cluster: GPU hosts, Kubernetes, Slurm, Nova, Ceph and a fabric, stepped deterministically.

The simulation advances in fixed ticks of :data:`TICK_S` seconds from its start, so the state at a time
``t`` is a pure function of ``(seed, start, t)`` plus the operations applied to it (cordon, evict, drain
...), however often it is polled. Each subsystem draws from its own seeded random stream, and every stream
draws the same number of numbers every tick, so an operation never perturbs unrelated noise.

The cluster is "born" :data:`WARMUP_S` seconds before ``start`` and stepped up to ``start`` in the
constructor, so that at ``start`` it already has history: XIDs with times in the past, alerts that have
been pending long enough to fire, Slurm jobs waiting for hours.

What is true at ``start`` for every seed (the exact host and GPU depend on the seed; see
:meth:`DemoCluster.storyline`):

* crit GPU: a GPU of a vLLM server had a contained uncorrectable ECC error a few minutes ago (XID 94,
  then XID 63): ``ecc_uncorrected_volatile == 1`` and a row remap pending;
* warn GPU: a GPU of the long pre-training job runs hot (failing fan) and throttles (``sw_thermal``);
* firing alerts: GpuXidErrors and GpuEccUncorrectable (critical), GpuThermalThrottling and
  KubeGpuPodPending (warning), plus the always-firing Watchdog;
* pending GPU work: Slurm jobs in partition ``gpu`` (the oldest waiting for more than an hour) and
  Kubernetes GPU pods in namespace ``research`` that no node has room for.

Then, each at a seed-dependent offset within the first few minutes: a GPU of a Slurm job throws XIDs 13,
31 and 43 and then falls off the bus (XID 79, lost; its node is drained by the health check); the ECC GPU
gets a second uncorrectable error; a leaf-spine uplink collects CRC errors and flaps down and up twice; an
OSD goes down for a few minutes; the ``datasets`` pool fills past nearfull (85 %) and is purged about ten
minutes later; a hyper-parameter sweep floods the Slurm queue, which then drains. The Ceph, fabric, OSD
and sweep storylines repeat every half hour or so, so a long-running demo keeps moving.
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import time
import uuid as uuidlib
from dataclasses import dataclass, field

from ..model.types import (
    Alert,
    CephPool,
    CephState,
    FabricLink,
    FabricState,
    Gpu,
    GpuHost,
    KubeNode,
    NeutronAgent,
    NodeEvent,
    NovaHost,
    OpenStackFlavor,
    QueueState,
    XidEvent,
)
from ..model.types import SlurmNode as SlurmNodeView

#: t0 of the demo at its default start: 2026-09-21 14:13:20 UTC. Fixed so that snapshots of the demo
#: (``DemoCluster()`` polled with a clock returning ``DEMO_EPOCH``) are identical on every machine and every
#: day. A live demo passes ``start=time.time()`` (see :meth:`DemoCluster.live`) so that ages shown on screen
#: ("firing for 3 min") are measured against the wall clock.
DEMO_EPOCH = 1_790_000_000.0

#: the simulation step, seconds
TICK_S = 5.0
#: how long before ``start`` the simulated cluster is born
WARMUP_S = 600.0

SITE_NAME = "demo"
DRIVER_VERSION = "550.54.15"
CUDA_VERSION = "12.4"
GPUS_PER_HOST = 8

PIB = float(2**50)
MIB = float(2**20)


# ---------------------------------------------------------------------------------------------
# errors


class DemoOperationError(Exception):
    """An operation the simulated cluster refused; ``str()`` reads like the real backend's message."""


class NotFound(DemoOperationError):
    """No such node, pod, Slurm node or Nova compute service."""


class DisruptionBudgetViolation(DemoOperationError):
    """Evicting the pod would take its PodDisruptionBudget below ``minAvailable`` (HTTP 429 in Kubernetes)."""

    def __init__(self, namespace: str, pod: str, budget: str, min_available: int, healthy: int) -> None:
        self.namespace = namespace
        self.pod = pod
        self.budget = budget
        self.min_available = min_available
        self.healthy = healthy
        super().__init__(
            "Cannot evict pod as it would violate the pod's disruption budget. "
            f"The disruption budget {budget} needs {min_available} healthy pods and has {healthy} currently"
        )


# ---------------------------------------------------------------------------------------------
# helpers


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def _k8s_suffix(*parts: object, n: int = 5) -> str:
    return "".join(_K8S_ALPHABET[b % len(_K8S_ALPHABET)] for b in _digest(*parts)[:n])


def gpu_uuid(seed: int, host: str, index: int) -> str:
    """The stable ``GPU-xxxxxxxx-xxxx-...`` UUID of a demo GPU."""
    return "GPU-" + str(uuidlib.UUID(bytes=_digest("gpu", seed, host, index)[:16]))


def _clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def _ramp(x: float, x0: float, x1: float, y0: float, y1: float) -> float:
    """Linear from (x0, y0) to (x1, y1)."""
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


XID_MEANING = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    63: "row remapping event",
    79: "GPU has fallen off the bus",
    94: "contained ECC error",
}


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
class _Osd:
    id: int
    host: str
    skew: float
    up: bool = True


@dataclass(eq=False, slots=True)
class _Pool:
    name: str
    overhead: float  # raw bytes per stored byte
    stored: float
    object_size: float


@dataclass(eq=False, slots=True)
class _Port:
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


#: flavor -> (vCPUs, RAM MiB, GPUs)
_FLAVORS = {
    "g1.h100x8": (96, 1024 * 1024, 8),
    "g1.a100x4": (48, 512 * 1024, 4),
    "g1.a100x2": (24, 256 * 1024, 2),
    "m1.large": (4, 8 * 1024, 0),
}
_FLAVOR_GPU = {"g1.h100x8": "h100", "g1.a100x4": "a100", "g1.a100x2": "a100"}
_K8S_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
_K8S_NOT_READY = _K8S_CONDITIONS[:3] + (("Ready", "False", "KubeletNotReady", "container runtime is down"),)


# ---------------------------------------------------------------------------------------------
# the cluster


class DemoCluster:
    """The simulated cluster of site "demo"; advance it with :meth:`advance_to`, read it via demo sources."""

    def __init__(self, seed: int = 7, start: float = DEMO_EPOCH) -> None:
        self.seed = seed
        self.start = float(start)
        self.site = SITE_NAME
        self.born = self.start - WARMUP_S
        self._tick = 0
        self.now = self.born
        self._serial = 0
        self._next_job_id = 48217
        self.step_hooks: list = []  # callables of the tick time, run first in each tick (operations in progress)
        # independent random streams
        self._world = random.Random(f"demo-world:{seed}")
        self._gpu_rng = random.Random(f"demo-gpu:{seed}")
        self._fabric_rng = random.Random(f"demo-fabric:{seed}")
        self._ceph_rng = random.Random(f"demo-ceph:{seed}")
        plan = random.Random(f"demo-plan:{seed}")

        self._build_hosts()
        self._build_fabric()
        self._build_ceph(plan)
        self._build_kubernetes()
        self._build_slurm(plan)
        self._build_nova()
        # an operator cordoned a Nova host in Kubernetes for maintenance and forgot Nova: a mismatch
        self._k8s_nodes["gpu16"].unschedulable = True
        self._k8s_schedule(self.born)
        self._slurm_schedule(self.born)
        self._backdate_initial_workloads()
        self._story = self._plan_storylines(plan)
        self._hot = self._gpu(*self._story.hot_gpu)
        self._xid_pending = [(t, code) for code, t in self._story.xid_times]
        self._ecc_events = [self._story.ecc_at, self._story.ecc_again_at]
        self._next_sweep = self._story.sweep_at
        self._alert_since: dict[tuple, float] = {}
        self._alert_specs: list[tuple[tuple, str, str, float, tuple, str, str]] = []
        self._osd_recovering = False
        self._settle_metrics()
        self.advance_to(self.start)

    @classmethod
    def live(cls, seed: int = 7, now: float | None = None) -> DemoCluster:
        """A demo whose t0 is now, to be polled with ``time.time``."""
        return cls(seed=seed, start=time.time() if now is None else now)

    # -- construction ------------------------------------------------------------------------
    def _build_hosts(self) -> None:
        self._hosts: dict[str, SimHost] = {}
        for n in range(1, 17):
            name = f"gpu{n:02d}"
            model = A100 if n >= 15 else H100
            role = "kubernetes" if n <= 8 else "slurm" if n <= 13 else "nova"
            leaf = f"leaf{(n - 1) // 4 + 1}"
            host = SimHost(name, model, role, leaf, f"swp{(n - 1) % 4 + 1}")
            for i in range(GPUS_PER_HOST):
                d = _digest("gpu-static", self.seed, name, i)
                host.gpus.append(
                    SimGpu(
                        host=name,
                        index=i,
                        uuid=gpu_uuid(self.seed, name, i),
                        model=model,
                        bias_c=-2.0 + 6.0 * d[0] / 255.0,
                        sbe_rate=(0.004 if d[1] < 20 else 0.0),
                        ecc_corrected=(d[2] % 7 if d[1] < 20 else 0),
                    )
                )
            self._hosts[name] = host

    def _build_fabric(self) -> None:
        self._ports: list[_Port] = []
        spines = ("spine1", "spine2")
        for leaf_n in range(1, 5):
            leaf = f"leaf{leaf_n}"
            for host in self._hosts.values():
                if host.leaf == leaf:
                    self._ports.append(_Port(leaf, host.leaf_port, 400_000.0, f"{host.name}:ens1f0np0", host=host.name))
            self._ports.append(_Port(leaf, "swp8", 100_000.0, "", admin_up=False, oper_up=False))  # spare, shut
            for s, spine in enumerate(spines):
                for k in range(2):
                    leaf_if = f"swp{49 + 2 * s + k}"
                    spine_if = f"swp{2 * (leaf_n - 1) + k + 1}"
                    link = f"{leaf}:{leaf_if}"
                    self._ports.append(_Port(leaf, leaf_if, 400_000.0, f"{spine}:{spine_if}", link=link))
                    self._ports.append(_Port(spine, spine_if, 400_000.0, f"{leaf}:{leaf_if}", link=link))
        self._ports.sort(key=lambda p: (p.device, int(p.ifname[3:])))
        self._ports_by_link: dict[str, list[_Port]] = {}
        for port in self._ports:
            if port.link:
                self._ports_by_link.setdefault(port.link, []).append(port)

    def _build_ceph(self, plan: random.Random) -> None:
        self._ceph_raw = 1.2 * PIB
        self._osds = [_Osd(i, f"ceph{i // 3 + 1:02d}", plan.uniform(-0.035, 0.035)) for i in range(12)]
        self._osds[plan.randrange(12)].skew = 0.035  # the fullest OSD
        self._pools = [
            _Pool("rbd-vms", 3.0, 0.024 * self._ceph_raw, 4 * MIB),
            _Pool("cephfs-data", 3.0, 0.015 * self._ceph_raw, 1.5 * MIB),
            _Pool("datasets", 1.5, 0.0, 8 * MIB),  # erasure coded 4+2
        ]

    def _build_kubernetes(self) -> None:
        self._k8s_nodes: dict[str, K8sNode] = {}
        for n in range(1, 4):
            name = f"k8s-cp{n}"
            self._k8s_nodes[name] = K8sNode(
                name,
                "control-plane",
                taints=("node-role.kubernetes.io/control-plane:NoSchedule",),
                labels={"node-role.kubernetes.io/control-plane": ""},
            )
        for host in self._hosts.values():
            taints: tuple[str, ...] = ()
            if host.role != "kubernetes":
                taints = (f"sovtui.io/dedicated={host.role}:NoSchedule",)
            self._k8s_nodes[host.name] = K8sNode(
                host.name,
                "worker",
                GPUS_PER_HOST,
                taints=taints,
                labels={"nvidia.com/gpu.product": host.model.name.replace("NVIDIA ", "NVIDIA-").replace(" ", "-")},
            )
        self._pods: dict[tuple[str, str], Pod] = {}
        self._deployments = [
            Deployment("inference", "vllm-llama-3-70b", 4, 4, "infer", 100.0, pdb_min_available=3),
            Deployment("inference", "vllm-mixtral-8x7b", 2, 2, "infer", 80.0, pdb_min_available=1),
            Deployment("inference", "tei-bge-m3", 2, 1, "embed", 30.0),
            Deployment("kube-system", "coredns", 2, 0, "", 5.0, pool="control-plane"),
            Deployment("monitoring", "prometheus-k8s", 1, 0, "", 20.0, pool="control-plane"),
        ]
        for dep in self._deployments:
            dep.template_hash = _k8s_suffix("rs", self.seed, dep.name, n=9).replace("b", "5")
        self._daemonsets = [
            DaemonSet("gpu-operator", "nvidia-device-plugin-daemonset"),
            DaemonSet("gpu-operator", "nvidia-dcgm-exporter"),
            DaemonSet("monitoring", "node-exporter", pool="all"),
        ]
        self._jobs: list[Job] = [
            Job("training", "llm-pretrain-70b", 2, 8, 40 * 3600.0, self.born - 20 * 3600.0),
            Job("training", "llama-ft-run42", 2, 8, 3600.0, self.born - 2 * 3600.0),
        ]
        for cp in ("k8s-cp1", "k8s-cp2", "k8s-cp3"):
            for component in ("kube-apiserver", "etcd", "kube-scheduler"):
                pod = Pod(
                    "kube-system",
                    f"{component}-{cp}",
                    "Node",
                    cp,
                    pool="node",
                    node_hint=cp,
                    created_at=self.born - 86400 * 30,
                )
                self._pods[(pod.namespace, pod.name)] = pod
        self._k8s_controllers(self.born)

    def _build_slurm(self, plan: random.Random) -> None:
        self._slurm_nodes: dict[str, SlurmNode] = {}
        for host in self._hosts.values():
            if host.role == "slurm":
                parts = ("gpu", "debug") if host.name in ("gpu12", "gpu13") else ("gpu",)
                self._slurm_nodes[host.name] = SlurmNode(host.name, parts)
        b = self.born
        u = plan.uniform
        specs = [
            # id, name, user, partition, nodes, gpn, submitted, started, runs until (relative to start)
            (48190, "llama3-70b-sft", "anna", "gpu", 2, 8, b - 4 * 3600, b - 3 * 3600, u(900, 1400)),
            (48201, "vit-h-pretrain", "jkim", "gpu", 1, 8, b - 3 * 3600, b - 2 * 3600, u(420, 800)),
            (48207, "rlhf-reward", "pmartin", "gpu", 1, 4, b - 5000, b - 4000, u(200, 500)),
            (48209, "bert-distill", "osman", "gpu", 1, 4, b - 4000, b - 3600, u(300, 700)),
            (48211, "nccl-allreduce", "ops", "debug", 1, 2, b - 400, b - 300, u(60, 300)),
            (48212, "eval-long-ctx", "jkim", "gpu", 1, 4, b - 2000, b - 1800, u(600, 1200)),
            (48188, "mixtral-pretrain", "anna", "gpu", 2, 8, b - 5400, None, 2400),
            (48214, "diffusion-ft", "rsato", "gpu", 1, 8, b - 1200, None, 1500),
            (48215, "llm-eval-harness", "pmartin", "gpu", 1, 4, b - 300, None, 900),
            (48216, "protein-fold", "mgarcia", "gpu", 1, 4, b - 60, None, 1200),
        ]
        self._slurm_jobs: list[SlurmJob] = []
        for job_id, name, user, part, nodes, gpn, submit, started, until in specs:
            if started is None:
                job = SlurmJob(job_id, name, user, part, nodes, gpn, float(until), float(submit))
            else:
                end = self.start + until
                job = SlurmJob(job_id, name, user, part, nodes, gpn, end - started, float(submit))
                job.start_at = float(started)
                job.end_at = end
            self._slurm_jobs.append(job)
        # place the running ones by hand so the picture is the intended one
        layout = {
            48190: ["gpu09", "gpu10"],
            48201: ["gpu11"],
            48207: ["gpu12"],
            48209: ["gpu12"],
            48211: ["gpu13"],
            48212: ["gpu13"],
        }
        for job in self._slurm_jobs:
            if job.job_id in layout:
                self._slurm_allocate(job, layout[job.job_id])
                job.state = "RUNNING"
        self._slurm_jobs.sort(key=lambda j: j.job_id)

    def _build_nova(self) -> None:
        self._nova_services = {h.name: NovaService(h.name) for h in self._hosts.values() if h.role == "nova"}
        specs = [
            ("train-vm-tenant-a", "gpu14", "g1.h100x8", "tenant-a", 8, "ACTIVE"),
            ("ws-research-01", "gpu15", "g1.a100x4", "research", 4, "ACTIVE"),
            ("ws-research-02", "gpu15", "g1.a100x2", "research", 2, "ACTIVE"),
            ("llm-finance-01", "gpu16", "g1.a100x4", "finance", 4, "ACTIVE"),
            ("build-runner-03", "gpu16", "m1.large", "ci", 0, "SHUTOFF"),
        ]
        self._nova_servers: list[NovaServer] = []
        for name, host_name, flavor, project, gpus, status in specs:
            server = NovaServer(
                str(uuidlib.UUID(bytes=_digest("vm", self.seed, name)[:16])),
                name,
                host_name,
                flavor,
                project,
                gpus,
                status,
            )
            host = self._hosts[host_name]
            free = host.free_gpus()[:gpus]
            for i in free:
                host.gpus[i].owner = server
            server.gpu_indices = tuple(free)
            self._nova_servers.append(server)

    def _backdate_initial_workloads(self) -> None:
        """Pods scheduled at birth have been running for a while already."""
        for pod in self._pods.values():
            if pod.phase == "Running":
                job = self._job_of(pod)
                began = job.created_at + 30.0 if job else self.born - 6 * 3600.0
                pod.started_at = began
                pod.ready_at = began + pod.startup_s
                pod.ready = True
                pod.created_at = min(pod.created_at, began - 5.0)
                if job is not None and job.name == "llama-ft-run42":
                    pod.end_at = self.start + 900.0 + 600.0 * (_digest("ft", self.seed)[0] / 255.0)
                elif job is not None:
                    pod.end_at = began + job.duration_s
        # Jobs waiting for whole free nodes: pending GPU pods from the start
        for name, parallelism, duration in (("dpo-sweep-a", 2, 2400.0), ("eval-mmlu-pro", 1, 900.0)):
            self._jobs.append(Job("research", name, parallelism, 8, duration, self.born))
        self._k8s_controllers(self.born)
        self._k8s_schedule(self.born)

    def _plan_storylines(self, plan: random.Random) -> Storyline:
        t0 = self.start
        vllm_gpus = [
            (g.host, g.index)
            for host in self._hosts.values()
            for g in host.gpus
            if isinstance(g.owner, Pod) and g.owner.name.startswith("vllm-llama")
        ]
        ecc_gpu = vllm_gpus[plan.randrange(len(vllm_gpus))]
        pretrain = [
            (g.host, g.index)
            for host in self._hosts.values()
            for g in host.gpus
            if isinstance(g.owner, Pod) and g.owner.name.startswith("llm-pretrain")
        ]
        hot_gpu = pretrain[plan.randrange(len(pretrain))]
        xid_gpu = (plan.choice(["gpu09", "gpu10", "gpu11"]), plan.randrange(GPUS_PER_HOST))
        x13 = t0 + plan.uniform(20, 50)
        x31 = x13 + plan.uniform(15, 40)
        x43 = x31 + plan.uniform(15, 40)
        x79 = x43 + plan.uniform(60, 120)
        leaf = f"leaf{plan.randrange(1, 5)}"
        return Storyline(
            ecc_gpu=ecc_gpu,
            ecc_at=t0 - plan.uniform(130, 400),
            ecc_again_at=t0 + plan.uniform(240, 600),
            hot_gpu=hot_gpu,
            hot_from=t0 - plan.uniform(420, 540),
            xid_gpu=xid_gpu,
            xid_times=((13, x13), (31, x31), (43, x43), (79, x79)),
            flap_link=(leaf, f"swp{plan.randrange(49, 53)}"),
            flap_from=t0 + plan.uniform(10, 90),
            osd_down=plan.randrange(12),
            osd_down_from=t0 + plan.uniform(60, 200),
            osd_down_for=plan.uniform(120, 220),
            pool_nearfull_at=t0 + plan.uniform(60, 240),
            sweep_at=t0 + plan.uniform(60, 150),
        )

    def _settle_metrics(self) -> None:
        """Start every GPU near its steady state so the warm-up does not show a cold start."""
        for host in self._hosts.values():
            for g in host.gpus:
                kind = g.kind
                g.util = {"train": 95.0, "infer": 55.0, "embed": 30.0, "vm": 70.0}.get(kind, 0.0)
                g.load = g.util or 50.0
                g.mem_used = {"train": 0.86, "infer": 0.92, "embed": 0.22, "vm": 0.55}.get(kind, 0.0) * g.model.mem_mib
                g.temp = 31.0 + g.bias_c + 0.42 * g.util
                g.power = g.model.idle_w + (g.model.power_limit_w * 0.93 - g.model.idle_w) * g.util / 100.0

    # -- lookups -----------------------------------------------------------------------------
    def _gpu(self, host: str, index: int) -> SimGpu:
        return self._hosts[host].gpus[index]

    def _job_of(self, pod: Pod) -> Job | None:
        if pod.owner_kind != "Job":
            return None
        return next((j for j in self._jobs if j.namespace == pod.namespace and j.name == pod.owner_name), None)

    def storyline(self) -> Storyline:
        """Where and when this seed's incidents happen."""
        return self._story

    # -- time --------------------------------------------------------------------------------
    def advance_to(self, t: float) -> None:
        """Step the simulation in ticks of :data:`TICK_S` up to the last tick at or before ``t``.

        Time never runs backwards: an earlier ``t`` is a no-op. The cost is linear in the number of
        ticks (about half a millisecond each): a poll after a laptop slept for a day takes several seconds.
        """
        target = int(math.floor((t - self.born) / TICK_S + 1e-9))
        while self._tick < target:
            self._tick += 1
            self._step(self.born + self._tick * TICK_S)

    def _step(self, now: float) -> None:
        prev = self.now
        self.now = now
        for hook in self.step_hooks:
            hook(now)
        self._storyline_events(prev, now)
        self._slurm_tick(prev, now)
        self._k8s_tick(now)
        self._step_gpus(now)
        self._fabric_tick(now)
        self._ceph_tick(now)
        self._evaluate_alerts(now)

    # -- storylines --------------------------------------------------------------------------
    def _storyline_events(self, prev: float, now: float) -> None:
        story = self._story
        hot = self._hot
        hot.heat_c = 27.0 * _clamp((now - story.hot_from) / 240.0, 0.0, 1.0)
        while self._ecc_events and self._ecc_events[0] + 1.0 <= now:
            at = self._ecc_events.pop(0)
            g = self._gpu(*story.ecc_gpu)
            g.ecc_uncorrected_volatile += 1
            g.ecc_uncorrected_aggregate += 1
            g.row_remap_pending = True
            g.xids.append(XidEvent(94, at, "Contained: SM (0x1). RST: No, D-RST: No"))
            g.xids.append(XidEvent(63, at + 1.0, "Row Remapper: New row marked for remapping, reset gpu to activate."))
            owner = g.owner
            if isinstance(owner, Pod) and owner.phase == "Running":  # the CUDA context died: container restarts
                owner.restarts += 1
                owner.ready = False
                owner.ready_at = at + owner.startup_s
        while self._xid_pending and self._xid_pending[0][0] <= now:
            at, code = self._xid_pending.pop(0)
            g = self._gpu(*story.xid_gpu)
            message = {
                13: "Graphics SM Warp Exception on (GPC 2, TPC 1, SM 0): Out Of Range Address",
                31: "Ch 00000008, intr 10000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_3 faulted @ 0x7f2a_c4e00000",
                43: "Ch 00000010",
                79: "GPU has fallen off the bus.",
            }[code]
            g.xids.append(XidEvent(code, at, message))
            if code == 79:
                self._lose_gpu(g, at)
        while self._next_sweep <= now:
            self._submit_sweep(self._next_sweep)
            self._next_sweep += SWEEP_PERIOD_S

    def _lose_gpu(self, g: SimGpu, at: float) -> None:
        g.lost = True
        g.util = g.mem_used = g.power = 0.0
        owner = g.owner
        if isinstance(owner, SlurmJob):
            self._slurm_release(owner)
            owner.state = "PENDING"
            owner.reason = "BeginTime"
            owner.requeues += 1
            if owner.end_at is not None:  # restarts from its last checkpoint
                owner.duration_s = _clamp(owner.end_at - at, 300.0, 1800.0)
            owner.start_at = owner.end_at = None
        elif isinstance(owner, Pod):
            self._pod_fail(owner, at, "UnexpectedAdmissionError")
        elif isinstance(owner, NovaServer):
            owner.status = "ERROR"
        g.owner = None
        node = self._slurm_nodes.get(g.host)
        if node is not None and not node.drain:
            node.drain = True
            node.reason = f"NHC: GPU {g.index} lost (XID 79)"
            node.reason_at = at

    # -- GPUs --------------------------------------------------------------------------------
    def _step_gpus(self, now: float) -> None:
        """Random walks tied to the workload; every GPU draws six numbers a tick, whatever its state."""
        rnd = self._gpu_rng.random
        wave = math.sin(now / 47.0)
        k = 3.4641016  # uniform noise with unit variance: (u - 0.5) * sqrt(12)
        for host in self._hosts.values():
            util_sum = 0.0
            heavy = False
            for g in host.gpus:
                n1, n2, n3, n4, u1, u2 = (
                    (rnd() - 0.5) * k,
                    (rnd() - 0.5) * k,
                    (rnd() - 0.5) * k,
                    (rnd() - 0.5) * k,
                    rnd(),
                    rnd(),
                )
                if g.lost:
                    continue
                if u2 < g.sbe_rate:
                    g.ecc_corrected += 1
                owner = g.owner
                kind = owner.gpu_kind if owner is not None else ""  # type: ignore[attr-defined]
                load = g.load + 3.0 * n4
                g.load = load = 20.0 if load < 20.0 else 90.0 if load > 90.0 else load
                model = g.model
                total = model.mem_mib
                if kind == "train":
                    heavy = True
                    target = 20.0 if u1 < 0.015 and not g.heat_c else 97.0  # checkpoints; a hot GPU stays hot
                    mem_target = 0.86 * total
                elif kind == "infer":
                    target, mem_target = load, 0.92 * total
                elif kind == "embed":
                    target, mem_target = 0.5 * load, 0.22 * total
                elif kind == "vm":
                    target, mem_target = 0.3 * load + 50.0, 0.55 * total
                else:
                    target = mem_target = 0.0
                if target > 0:
                    util = g.util + 0.5 * (target - g.util) + 2.0 * n1
                    util = 1.0 if util < 1.0 else 100.0 if util > 100.0 else util
                else:
                    util = g.util * 0.3 if g.util > 0.5 else 0.0
                g.util = util
                util_sum += util
                mem_util = 0.45 * util + 2.0 * n4 if util > 0 else 0.0
                g.mem_util = 0.0 if mem_util < 0.0 else 100.0 if mem_util > 100.0 else mem_util
                mem = g.mem_used + 0.6 * (mem_target - g.mem_used) + (150.0 * n3 if kind == "train" else 0.0)
                g.mem_used = 0.0 if mem < 1.0 else total if mem > total else mem
                temp_target = 31.0 + g.bias_c + 0.42 * util + g.heat_c
                cap = model.slowdown_c - 0.8 + wave
                capped = temp_target > cap
                if capped:
                    temp_target = cap
                g.temp = min(model.shutdown_c - 3.0, g.temp + 0.35 * (temp_target - g.temp) + 0.3 * n2)
                power = model.idle_w + (model.power_limit_w * 0.93 - model.idle_w) * util / 100.0 + 8.0 * n3
                if capped:
                    power *= 0.8
                g.power = power = min(max(power, model.idle_w * 0.8), model.power_limit_w)
                if util < 1.0 and not kind:
                    g.throttle = ("gpu_idle",)
                elif g.temp >= model.slowdown_c - 4.0:
                    g.throttle = ("sw_thermal", "hw_thermal") if g.temp >= model.slowdown_c else ("sw_thermal",)
                elif power >= 0.97 * model.power_limit_w:
                    g.throttle = ("sw_power_cap",)
                else:
                    g.throttle = ()
            host.util_mean = util_sum / len(host.gpus)
            host.heavy = heavy

    # -- Kubernetes --------------------------------------------------------------------------
    def _new_pod_name(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{_k8s_suffix('pod', self.seed, prefix, self._serial)}"

    def _add_pod(self, pod: Pod) -> Pod:
        self._pods[(pod.namespace, pod.name)] = pod
        return pod

    def _k8s_controllers(self, now: float) -> None:
        live: dict[tuple[str, str, str], int] = {}
        on_node: dict[tuple[str, str], bool] = {}
        for pod in self._pods.values():
            if not pod.terminal:
                key = (pod.owner_kind, pod.namespace, pod.owner_name)
                live[key] = live.get(key, 0) + 1
                if pod.owner_kind == "DaemonSet":
                    on_node[(pod.owner_name, pod.node_hint)] = True
        for job in self._jobs:
            if job.completed_at is not None:
                continue
            if job.succeeded >= job.parallelism:
                job.completed_at = now
                continue
            active = live.get(("Job", job.namespace, job.name), 0)
            for _ in range(job.parallelism - job.succeeded - active):
                index = job.next_index % job.parallelism
                job.next_index += 1
                name = self._new_pod_name(f"{job.name}-{index}")
                self._add_pod(
                    Pod(
                        job.namespace,
                        name,
                        "Job",
                        job.name,
                        job.gpus,
                        job.gpu_kind,
                        created_at=now,
                        startup_s=job.startup_s,
                        labels={"job-name": job.name},
                    )
                )
        for dep in self._deployments:
            for _ in range(dep.replicas - live.get(("ReplicaSet", dep.namespace, dep.name), 0)):
                name = self._new_pod_name(f"{dep.name}-{dep.template_hash}")
                self._add_pod(
                    Pod(
                        dep.namespace,
                        name,
                        "ReplicaSet",
                        dep.name,
                        dep.gpus,
                        dep.gpu_kind,
                        pool=dep.pool,
                        created_at=now,
                        startup_s=dep.startup_s,
                        labels={"app": dep.name},
                    )
                )
        for ds in self._daemonsets:
            for node in self._k8s_nodes.values():
                if ds.pool == "gpu-nodes" and node.gpu_capacity == 0:
                    continue
                if not on_node.get((ds.name, node.name)):
                    name = self._new_pod_name(ds.name)
                    self._add_pod(
                        Pod(
                            ds.namespace,
                            name,
                            "DaemonSet",
                            ds.name,
                            pool="node",
                            node_hint=node.name,
                            created_at=now,
                            labels={"app": ds.name},
                        )
                    )

    def _k8s_schedule(self, now: float) -> None:
        gpu_nodes = [
            (node, self._hosts[node.name])
            for node in self._k8s_nodes.values()
            if node.gpu_capacity
            and node.ready
            and not node.unschedulable
            and self._hosts[node.name].role == "kubernetes"
        ]
        reasons: dict[int, str] = {}
        for pod in self._pods.values():
            if pod.phase != "Pending":
                continue
            if pod.pool == "node":
                node = self._k8s_nodes.get(pod.node_hint)
                if node is not None and node.ready:
                    self._pod_start(pod, node.name, (), now)
                continue
            if pod.pool == "control-plane":
                cps = [
                    n for n in self._k8s_nodes.values() if n.role == "control-plane" and n.ready and not n.unschedulable
                ]
                if cps:
                    counts = {n.name: 0 for n in cps}
                    for other in self._pods.values():
                        if other.node in counts and other.pool == "control-plane" and not other.terminal:
                            counts[other.node] += 1
                    best = min(cps, key=lambda n: (counts[n.name], n.name))
                    self._pod_start(pod, best.name, (), now)
                else:
                    pod.reason = "0/19 nodes are available: no schedulable control-plane node"
                continue
            best_host: SimHost | None = None
            best_free: list[int] = []
            for _node, host in gpu_nodes:
                free = host.free_gpus()
                if len(free) >= pod.gpus and (best_host is None or len(free) > len(best_free)):
                    best_host, best_free = host, free
            if best_host is None:
                if pod.gpus not in reasons:
                    reasons[pod.gpus] = self._unschedulable_reason(pod)
                pod.reason = reasons[pod.gpus]
                continue
            indices = tuple(best_free[: pod.gpus])
            for i in indices:
                best_host.gpus[i].owner = pod
            self._pod_start(pod, best_host.name, indices, now)

    def _unschedulable_reason(self, pod: Pod) -> str:
        total = len(self._k8s_nodes)
        insufficient = unschedulable = tainted = 0
        for node in self._k8s_nodes.values():
            if node.unschedulable:
                unschedulable += 1
            elif node.taints:
                tainted += 1
            elif len(self._hosts[node.name].free_gpus()) < pod.gpus:
                insufficient += 1
        parts = []
        if insufficient:
            parts.append(f"{insufficient} Insufficient nvidia.com/gpu")
        if unschedulable:
            parts.append(f"{unschedulable} node(s) were unschedulable")
        if tainted:
            parts.append(f"{tainted} node(s) had untolerated taint")
        return f"Unschedulable: 0/{total} nodes are available: " + ", ".join(parts) + "."

    def _pod_start(self, pod: Pod, node: str, indices: tuple[int, ...], now: float) -> None:
        pod.node = node
        pod.gpu_indices = indices
        pod.phase = "Running"
        pod.reason = ""
        pod.started_at = now
        pod.ready_at = now + pod.startup_s
        job = self._job_of(pod)
        if job is not None:
            pod.end_at = now + pod.startup_s + job.duration_s

    def _pod_release(self, pod: Pod) -> None:
        if pod.node and pod.node in self._hosts:
            host = self._hosts[pod.node]
            for i in pod.gpu_indices:
                if host.gpus[i].owner is pod:
                    host.gpus[i].owner = None

    def _pod_fail(self, pod: Pod, now: float, reason: str) -> None:
        self._pod_release(pod)
        pod.phase = "Failed"
        pod.ready = False
        pod.reason = reason
        pod.finished_at = now
        job = self._job_of(pod)
        if job is not None:
            job.failed += 1

    def _k8s_tick(self, now: float) -> None:
        for key, pod in list(self._pods.items()):
            if pod.phase == "Running" and pod.end_at is not None and now >= pod.end_at:
                self._pod_release(pod)
                pod.phase = "Succeeded"
                pod.ready = False
                pod.finished_at = now
                job = self._job_of(pod)
                if job is not None:
                    job.succeeded += 1
            elif pod.terminal and pod.finished_at is not None and now - pod.finished_at > 300.0:
                del self._pods[key]
        self._jobs = [j for j in self._jobs if j.completed_at is None or now - j.completed_at < 600.0]
        # new research jobs now and then
        w = self._world
        u, pick, dur = w.random(), w.random(), w.random()
        if u < TICK_S / 1500.0:
            templates = (
                ("eval-gsm8k", 1, 8),
                ("dpo-sweep-b", 2, 8),
                ("lora-ablation", 1, 4),
                ("tokenizer-bench", 1, 2),
            )
            base, parallelism, gpus = templates[int(pick * len(templates))]
            name = f"{base}-{_k8s_suffix('job', self.seed, now, n=4)}"
            self._jobs.append(Job("research", name, parallelism, gpus, 600.0 + 1800.0 * dur, now))
        self._k8s_controllers(now)
        self._k8s_schedule(now)
        for pod in self._pods.values():
            if pod.phase == "Running" and not pod.ready and pod.ready_at is not None and now >= pod.ready_at:
                pod.ready = True

    # -- Slurm -------------------------------------------------------------------------------
    def _slurm_allocate(self, job: SlurmJob, node_names: list[str]) -> None:
        job.alloc = []
        for name in node_names:
            host = self._hosts[name]
            indices = tuple(host.free_gpus()[: job.gpus_per_node])
            for i in indices:
                host.gpus[i].owner = job
            job.alloc.append((name, indices))

    def _slurm_release(self, job: SlurmJob) -> None:
        for name, indices in job.alloc:
            host = self._hosts[name]
            for i in indices:
                if host.gpus[i].owner is job:
                    host.gpus[i].owner = None
        job.alloc = []

    def _slurm_eligible(self, job: SlurmJob) -> list[SlurmNode]:
        return [n for n in self._slurm_nodes.values() if job.partition in n.partitions and not n.drain]

    def _slurm_fit(self, job: SlurmJob, free_by_node: dict[str, int]) -> list[str] | None:
        fits = []
        for node in self._slurm_eligible(job):
            free = free_by_node[node.name]
            if free >= job.gpus_per_node:
                fits.append((free, node.name))
        if len(fits) < job.nodes:
            return None
        fits.sort()  # best fit: the fullest node that still fits
        return [name for _, name in fits[: job.nodes]]

    def _slurm_reservation(self, job: SlurmJob, now: float, free_by_node: dict[str, int]) -> float:
        """Earliest time the blocked top job could start, from the planned ends of running jobs."""
        ends: dict[str, list[tuple[float, int]]] = {}
        for other in self._slurm_jobs:
            if other.state == "RUNNING" and other.end_at is not None:
                for name, indices in other.alloc:
                    ends.setdefault(name, []).append((other.end_at, len(indices)))
        times = []
        for node in self._slurm_eligible(job):
            host = self._hosts[node.name]
            free = free_by_node[node.name]
            if host.usable_gpus() < job.gpus_per_node:
                continue
            at = now
            for end, count in sorted(ends.get(node.name, [])):
                if free >= job.gpus_per_node:
                    break
                free += count
                at = end
            if free >= job.gpus_per_node:
                times.append(at)
        times.sort()
        return times[job.nodes - 1] if len(times) >= job.nodes else math.inf

    def _slurm_schedule(self, now: float) -> None:
        pending = sorted(
            (j for j in self._slurm_jobs if j.state == "PENDING"),
            key=lambda j: (j.submit_at, j.job_id, j.array_task or 0),
        )
        if not pending:
            return
        free_by_node = {name: len(self._hosts[name].free_gpus()) for name in self._slurm_nodes}
        reservation: dict[str, float] = {}  # per partition
        for job in pending:
            limit = reservation.get(job.partition)
            nodes = self._slurm_fit(job, free_by_node)
            if nodes is not None and (limit is None or now + job.duration_s <= limit):
                self._slurm_allocate(job, nodes)
                for name in nodes:
                    free_by_node[name] -= job.gpus_per_node
                job.state = "RUNNING"
                job.reason = "None"
                job.start_at = now
                job.end_at = now + job.duration_s
            elif limit is None:
                reservation[job.partition] = self._slurm_reservation(job, now, free_by_node)
                job.reason = "Resources"
            else:
                job.reason = "Priority"

    def _submit_sweep(self, at: float) -> None:
        job_id = self._next_job_id
        self._next_job_id += 1
        for task in range(16):
            duration = 240.0 + 240.0 * (_digest("sweep", self.seed, job_id, task)[0] / 255.0)
            self._slurm_jobs.append(SlurmJob(job_id, "hpo-sweep", "lchen", "gpu", 1, 4, duration, at, array_task=task))

    def _slurm_tick(self, prev: float, now: float) -> None:
        for job in self._slurm_jobs:
            if job.state == "RUNNING" and job.end_at is not None and now >= job.end_at:
                self._slurm_release(job)
                job.state = "COMPLETED"
        self._slurm_jobs = [
            j
            for j in self._slurm_jobs
            if not (j.state == "COMPLETED" and j.end_at is not None and now - j.end_at > 600.0)
        ]
        w = self._world
        u, a, b, c = w.random(), w.random(), w.random(), w.random()
        if u < TICK_S / 400.0:
            names = (
                "llm-eval",
                "sft-lora",
                "embed-train",
                "asr-finetune",
                "rl-rollout",
                "nccl-test",
                "vlm-pretrain",
                "ablation",
            )
            users = ("anna", "jkim", "pmartin", "osman", "rsato", "mgarcia", "lchen", "ops")
            shapes = ((1, 1), (1, 2), (1, 2), (1, 4), (1, 4), (1, 8), (1, 8), (2, 8))
            nodes, gpn = shapes[int(a * len(shapes))]
            name = names[int(b * len(names))]
            partition = "debug" if gpn <= 2 and c < 0.5 else "gpu"
            duration = 120.0 + 480.0 * c if partition == "debug" else 300.0 + 900.0 * c
            job = SlurmJob(self._next_job_id, name, users[int(c * len(users))], partition, nodes, gpn, duration, now)
            self._next_job_id += 1
            self._slurm_jobs.append(job)
        self._slurm_schedule(now)

    def slurm_node_state(self, node: SlurmNode) -> str:
        """``idle`` | ``mixed`` | ``allocated`` | ``draining`` | ``drained``, as sinfo prints it."""
        host = self._hosts[node.name]
        used = sum(1 for g in host.gpus if g.owner is not None)
        if node.drain:
            return "draining" if used else "drained"
        if used == 0:
            return "idle"
        return "allocated" if used >= host.usable_gpus() else "mixed"

    # -- fabric ------------------------------------------------------------------------------
    def _flap_phase(self, now: float) -> tuple[bool, float]:
        """(oper up, errors/s) of the flapping uplink at ``now``."""
        u = (now - self._story.flap_from) % FLAP_PERIOD_S
        if u < 90:
            return True, _ramp(u, 0, 90, 2.0, 40.0)
        if u < 120:
            return False, 0.0
        if u < 170:
            return True, 60.0
        if u < 215:
            return False, 0.0
        if u < 400:
            return True, _ramp(u, 215, 400, 30.0, 0.0)
        return True, 0.0

    def _fabric_tick(self, now: float) -> None:
        r = self._fabric_rng
        noise = [r.gauss(0, 1) for _ in range(len(self._ports))]
        flap_link = f"{self._story.flap_link[0]}:{self._story.flap_link[1]}"
        flap_up, flap_err = self._flap_phase(now)
        for port in self._ports_by_link[flap_link]:
            port.oper_up = flap_up
            port.errors_per_s = flap_err
        leaf_load: dict[str, float] = {}
        for i, port in enumerate(self._ports):
            if port.host:
                host = self._hosts[port.host]
                share = (0.55 if host.heavy else 0.12) * host.util_mean / 100.0
                bps = port.speed_mbps * 1e6 * _clamp(share * (1.0 + 0.08 * noise[i]), 0.0005, 0.95)
                port.in_bps = bps
                port.out_bps = bps * 0.97
                leaf_load[port.device] = leaf_load.get(port.device, 0.0) + bps
        up_count: dict[str, int] = {}
        for port in self._ports:
            if port.link and port.oper_up and port.device.startswith("leaf"):
                up_count[port.device] = up_count.get(port.device, 0) + 1
        for i, port in enumerate(self._ports):
            if not port.link:
                if not port.host:
                    port.in_bps = port.out_bps = 0.0
                continue
            leaf = port.link.split(":")[0]
            up_links = up_count.get(leaf, 0)
            if not port.oper_up or up_links == 0:
                port.in_bps = port.out_bps = 0.0
                continue
            per_link = 0.6 * leaf_load.get(leaf, 0.0) / up_links
            bps = min(port.speed_mbps * 1e6 * 0.98, per_link * (1.0 + 0.05 * noise[i]))
            port.in_bps = bps
            port.out_bps = bps * 1.02

    # -- Ceph --------------------------------------------------------------------------------
    def _pool_fill(self, now: float) -> float:
        """Fill fraction of the "datasets" pool: fills past nearfull, plateaus, is purged, refills."""
        u = (now - self._story.pool_nearfull_at) % POOL_PERIOD_S
        if u < 240:
            return 0.85 + 0.0001 * u
        if u < 420:
            return 0.874
        if u < 480:
            return _ramp(u, 420, 480, 0.874, 0.70)
        return _ramp(u, 480, POOL_PERIOD_S, 0.70, 0.85)

    def _ceph_tick(self, now: float) -> None:
        r = self._ceph_rng
        n1, n2 = r.gauss(0, 1), r.gauss(0, 1)
        rbd, cephfs, datasets = self._pools
        rbd.stored = max(0.0, rbd.stored + 2e9 + 5e8 * n1)
        cephfs.stored = max(0.0, cephfs.stored + 1e9 * n2)
        other_raw = rbd.stored * rbd.overhead + cephfs.stored * cephfs.overhead
        budget = 0.95 * self._ceph_raw - other_raw
        datasets.stored = self._pool_fill(now) * budget / datasets.overhead
        u = (now - self._story.osd_down_from) % OSD_PERIOD_S
        for osd in self._osds:
            osd.up = not (osd.id == self._story.osd_down and u < self._story.osd_down_for)
        self._osd_recovering = self._story.osd_down_for <= u < self._story.osd_down_for + 90.0

    # -- alerts ------------------------------------------------------------------------------
    def _evaluate_alerts(self, now: float) -> None:
        specs: list[tuple[tuple, str, str, float, tuple, str, str]] = []

        def add(
            name: str, severity: str, for_s: float, labels: dict[str, str], summary: str, description: str = ""
        ) -> None:
            lab = tuple(sorted({"alertname": name, "severity": severity, **labels}.items()))
            specs.append(((name, lab), name, severity, for_s, lab, summary, description))

        add(
            "Watchdog",
            "none",
            0.0,
            {},
            "An alert that should always be firing to certify that Alertmanager is working properly.",
        )
        for host in self._hosts.values():
            for g in host.gpus:
                if not (g.xids or g.ecc_uncorrected_volatile or g.throttle):
                    continue
                gl = {"Hostname": g.host, "gpu": str(g.index), "UUID": g.uuid, "modelName": g.model.name}
                if g.xids and (g.lost or now - (g.xids[-1].at or now) <= 600.0):
                    code = g.xids[-1].code
                    add(
                        "GpuXidErrors",
                        "critical",
                        0.0,
                        gl,
                        f"GPU {g.host}/{g.index} reported XID {code} ({XID_MEANING.get(code, 'see NVIDIA XID catalog')})",
                        "DCGM_FI_DEV_XID_ERRORS is non-zero: the driver logged an XID error for this GPU.",
                    )
                if g.ecc_uncorrected_volatile:
                    add(
                        "GpuEccUncorrectable",
                        "critical",
                        0.0,
                        gl,
                        f"GPU {g.host}/{g.index} has {g.ecc_uncorrected_volatile} uncorrectable ECC error(s)",
                        "Drain the node and reset the GPU to apply pending row remaps.",
                    )
                if not g.lost and ("sw_thermal" in g.throttle or "hw_thermal" in g.throttle):
                    add(
                        "GpuThermalThrottling",
                        "warning",
                        60.0,
                        gl,
                        f"GPU {g.host}/{g.index} is thermally throttling at {g.temp:.0f} °C",
                        "Check fans and airflow of the host.",
                    )
        nearfull = 85.0
        for pool in self._ceph_pools():
            if pool.used_pct >= nearfull:
                add(
                    "CephPoolNearFull",
                    "warning",
                    60.0,
                    {"name": pool.name},
                    f"Ceph pool {pool.name} is {pool.used_pct:.1f}% full (nearfull at {nearfull:.0f}%)",
                )
        for osd in self._osds:
            if not osd.up:
                add(
                    "CephOSDDown",
                    "warning",
                    30.0,
                    {"ceph_daemon": f"osd.{osd.id}", "hostname": osd.host},
                    f"osd.{osd.id} on {osd.host} is down",
                )
        for port in self._ports:
            labels = {"instance": port.device, "ifName": port.ifname}
            if port.admin_up and not port.oper_up:
                add(
                    "FabricLinkDown",
                    "critical",
                    10.0,
                    labels,
                    f"{port.device} {port.ifname} is down" + (f" (to {port.peer})" if port.peer else ""),
                )
            if port.errors_per_s >= 1.0:
                add(
                    "FabricLinkErrors",
                    "warning",
                    60.0,
                    labels,
                    f"{port.device} {port.ifname} has {port.errors_per_s:.0f} input errors/s"
                    + (f" (to {port.peer})" if port.peer else ""),
                )
        for queue in self._slurm_queues(now):
            if queue.pending_gpus >= SLURM_BACKLOG_GPUS:
                add(
                    "SlurmQueueBacklog",
                    "warning",
                    120.0,
                    {"partition": queue.name},
                    f"Slurm partition {queue.name} has {queue.pending_gpus} GPUs pending in {queue.pending_jobs} jobs",
                )
        for queue in self._k8s_queues(now):
            if queue.pending_jobs:
                add(
                    "KubeGpuPodPending",
                    "warning",
                    300.0,
                    {"namespace": queue.name},
                    f"{queue.pending_jobs} GPU pod(s) pending in namespace {queue.name} ({queue.pending_gpus} GPUs)",
                )
        keys = {key for key, *_ in specs}
        for key in [k for k in self._alert_since if k not in keys]:
            del self._alert_since[key]
        for key, *_ in specs:
            self._alert_since.setdefault(key, now)
        self._alert_specs = specs

    # -- views: frozen model types -----------------------------------------------------------
    def nvml_gpus(self) -> tuple[Gpu, ...]:
        """Every GPU as NVML on its host sees it (the "ssh" source)."""
        now = self.now
        out = []
        for host in self._hosts.values():
            for g in host.gpus:
                model = g.model
                if g.lost:
                    out.append(
                        Gpu(
                            host=g.host,
                            index=g.index,
                            uuid=g.uuid,
                            name=model.name,
                            xids=tuple(g.xids),
                            lost=True,
                            sources=("nvml",),
                            observed_at=now,
                        )
                    )
                    continue
                out.append(
                    Gpu(
                        host=g.host,
                        index=g.index,
                        uuid=g.uuid,
                        name=model.name,
                        util_pct=float(round(g.util)),
                        mem_util_pct=float(round(g.mem_util)),
                        mem_used_mib=float(round(g.mem_used)),
                        mem_total_mib=model.mem_mib,
                        temp_c=float(round(g.temp)),
                        temp_slowdown_c=model.slowdown_c,
                        temp_shutdown_c=model.shutdown_c,
                        power_w=round(g.power, 1),
                        power_limit_w=model.power_limit_w,
                        ecc_corrected_volatile=g.ecc_corrected,
                        ecc_uncorrected_volatile=g.ecc_uncorrected_volatile,
                        ecc_uncorrected_aggregate=g.ecc_uncorrected_aggregate,
                        row_remap_pending=g.row_remap_pending,
                        row_remap_failure=g.row_remap_failure,
                        throttle_reasons=g.throttle,
                        nvlink_down=0,
                        xids=tuple(g.xids),
                        workload=g.workload,
                        sources=("nvml",),
                        observed_at=now,
                    )
                )
        return tuple(out)

    def dcgm_gpus(self) -> tuple[Gpu, ...]:
        """Every GPU as dcgm-exporter reports it to Prometheus (no thresholds, last XID only, pods only)."""
        now = self.now
        out = []
        for host in self._hosts.values():
            for g in host.gpus:
                model = g.model
                last = (XidEvent(g.xids[-1].code, g.xids[-1].at),) if g.xids else ()
                if g.lost:  # the exporter can no longer read it; only the last XID gauge remains
                    out.append(
                        Gpu(
                            host=g.host,
                            index=g.index,
                            uuid=g.uuid,
                            name=model.name,
                            xids=last,
                            sources=("dcgm",),
                            observed_at=now,
                        )
                    )
                    continue
                out.append(
                    Gpu(
                        host=g.host,
                        index=g.index,
                        uuid=g.uuid,
                        name=model.name,
                        util_pct=float(round(g.util)),
                        mem_util_pct=float(round(g.mem_util)),
                        mem_used_mib=float(round(g.mem_used)),
                        mem_total_mib=model.mem_mib,
                        temp_c=float(round(g.temp)),
                        power_w=round(g.power, 1),
                        power_limit_w=model.power_limit_w,
                        ecc_corrected_volatile=g.ecc_corrected,
                        ecc_uncorrected_volatile=g.ecc_uncorrected_volatile,
                        row_remap_pending=g.row_remap_pending,
                        row_remap_failure=g.row_remap_failure,
                        xids=last,
                        workload=g.workload if isinstance(g.owner, Pod) else "",
                        sources=("dcgm",),
                        observed_at=now,
                    )
                )
        return tuple(out)

    def gpu_hosts(self) -> tuple[GpuHost, ...]:
        return tuple(GpuHost(h.name, GPUS_PER_HOST, DRIVER_VERSION, CUDA_VERSION, backend="nvml", observed_at=self.now) for h in self._hosts.values())

    def _ceph_pools(self) -> list[CephPool]:
        used = sum(p.stored * p.overhead for p in self._pools)
        free_raw = max(0.0, 0.95 * self._ceph_raw - used)
        return [CephPool(p.name, p.stored, free_raw / p.overhead, int(p.stored / p.object_size)) for p in self._pools]

    def ceph_state(self) -> CephState:
        pools = self._ceph_pools()
        used = sum(p.stored * p.overhead for p in self._pools)
        ratio = used / self._ceph_raw
        checks = []
        if any(ratio * (1.0 + osd.skew) >= 0.95 for osd in self._osds):
            checks.append("OSD_FULL")
        elif any(ratio * (1.0 + osd.skew) >= 0.85 for osd in self._osds):
            checks.append("OSD_NEARFULL")
        if any(p.used_pct >= 85.0 for p in pools):
            checks.append("POOL_NEARFULL")
        up = sum(1 for osd in self._osds if osd.up)
        if up < len(self._osds):
            checks += ["OSD_DOWN", "PG_DEGRADED"]
        elif self._osd_recovering:
            checks.append("PG_DEGRADED")
        health = "HEALTH_ERR" if "OSD_FULL" in checks else "HEALTH_WARN" if checks else "HEALTH_OK"
        return CephState(
            health=health,
            total_bytes=self._ceph_raw,
            used_bytes=used,
            nearfull_ratio=0.85,
            full_ratio=0.95,
            osds_total=len(self._osds),
            osds_up=up,
            osds_in=len(self._osds),
            pools=tuple(pools),
            checks=tuple(checks),
        )

    def fabric_state(self) -> FabricState:
        return FabricState(
            tuple(
                FabricLink(
                    p.device,
                    p.ifname,
                    p.oper_up,
                    p.admin_up,
                    p.speed_mbps,
                    float(round(p.in_bps)),
                    float(round(p.out_bps)),
                    round(p.errors_per_s, 1),
                    p.peer,
                )
                for p in self._ports
            )
        )

    def _slurm_queues(self, now: float) -> list[QueueState]:
        out = []
        for partition in ("gpu", "debug"):
            jobs = [j for j in self._slurm_jobs if j.partition == partition]
            pending = [j for j in jobs if j.state == "PENDING"]
            running = [j for j in jobs if j.state == "RUNNING"]
            oldest = now - min(j.submit_at for j in pending) if pending else None
            out.append(QueueState(partition, "slurm", len(pending), len(running), sum(j.gpus for j in pending), oldest))
        return out

    def slurm_queues(self) -> tuple[QueueState, ...]:
        """Partitions as squeue (and prometheus-slurm-exporter) see them."""
        return tuple(self._slurm_queues(self.now))

    def _k8s_queues(self, now: float) -> list[QueueState]:
        by_ns: dict[str, list[Pod]] = {}
        for pod in self._pods.values():
            if pod.gpus and not pod.terminal:
                by_ns.setdefault(pod.namespace, []).append(pod)
        out = []
        for ns in sorted(by_ns):
            pods = by_ns[ns]
            pending = [p for p in pods if p.phase == "Pending"]
            running = [p for p in pods if p.phase == "Running"]
            oldest = now - min(p.created_at for p in pending) if pending else None
            out.append(QueueState(ns, "kubernetes", len(pending), len(running), sum(p.gpus for p in pending), oldest))
        return out

    def k8s_queues(self) -> tuple[QueueState, ...]:
        """GPU pods per namespace: pending ones are those no node has room for."""
        return tuple(self._k8s_queues(self.now))

    def alerts(self) -> tuple[Alert, ...]:
        """Alerts from the sim's rules, as Prometheus' /api/v1/alerts would list them."""
        now = self.now
        out = []
        for key, name, severity, for_s, labels, summary, description in self._alert_specs:
            since = self._alert_since[key]
            state = "firing" if now - since >= for_s else "pending"
            out.append(Alert(name, severity, state, labels, summary, description, since, "prometheus"))
        return tuple(out)

    # -- host layers: Kubernetes nodes, Nova computes, Slurm nodes, their events --------------
    def kube_nodes(self) -> tuple[KubeNode, ...]:
        """Every Kubernetes node as the API shows it, with its GPU accounting."""
        held: dict[str, dict[str, int]] = {}
        for pod in self._pods.values():
            if pod.node and pod.gpus and not pod.terminal:
                held.setdefault(pod.node, {})[pod.workload] = pod.gpus
        out = []
        for node in sorted(self._k8s_nodes.values(), key=lambda n: n.name):
            host = self._hosts.get(node.name)
            taints = node.taints + (("node.kubernetes.io/unschedulable:NoSchedule",) if node.unschedulable else ())
            labels = dict(node.labels)
            labels.setdefault(f"node-role.kubernetes.io/{node.role}", "")
            pods = held.get(node.name, {})
            out.append(KubeNode(
                name=node.name,
                ready=node.ready,
                unschedulable=node.unschedulable,
                taints=taints,
                labels=tuple(sorted(labels.items())),
                gpu_product=node.labels.get("nvidia.com/gpu.product", ""),
                gpu_capacity=node.gpu_capacity,
                gpu_allocatable=host.usable_gpus() if host is not None else 0,
                gpu_requested=sum(pods.values()),
                conditions=_K8S_CONDITIONS if node.ready else _K8S_NOT_READY,
                pods_with_gpus=tuple(sorted(pods.items())),
            ))
        return tuple(out)

    def nova_hosts(self) -> tuple[NovaHost, ...]:
        """Every nova-compute with its hypervisor's use and its servers."""
        out = []
        for svc in sorted(self._nova_services.values(), key=lambda v: v.host):
            servers = [v for v in self._nova_servers if v.host == svc.host]
            running = [v for v in servers if v.status in ("ACTIVE", "ERROR", "PAUSED")]
            sizes = [_FLAVORS.get(v.flavor, (0, 0, 0)) for v in running]
            host = self._hosts[svc.host]
            out.append(NovaHost(
                name=svc.host,
                zone=svc.zone,
                service_state=svc.state,
                service_status=svc.status,
                disabled_reason=svc.disabled_reason,
                hypervisor_state=svc.state,
                vcpus_used=sum(c for c, _, _ in sizes),
                vcpus=224,
                memory_mb_used=sum(m for _, m, _ in sizes),
                memory_mb=2048 * 1024,
                running_vms=len(servers),
                servers=tuple(sorted(v.name for v in servers)),
                gpu_inventory=(("PGPU", host.usable_gpus(), sum(v.gpus for v in running)),),
            ))
        return tuple(out)

    def openstack_flavors(self) -> tuple[OpenStackFlavor, ...]:
        return tuple(
            OpenStackFlavor(name, vcpus, ram, (("pci_passthrough:alias", f"{_FLAVOR_GPU[name]}:{gpus}"),) if gpus else ())
            for name, (vcpus, ram, gpus) in sorted(_FLAVORS.items())
        )

    def neutron_agents(self) -> tuple[NeutronAgent, ...]:
        out = []
        for svc in sorted(self._nova_services.values(), key=lambda v: v.host):
            out.append(NeutronAgent(svc.host, "OVN Controller agent", "ovn-controller", True, True))
            out.append(NeutronAgent(svc.host, "OVN Metadata agent", "neutron-ovn-metadata-agent", True, True))
        return tuple(out)

    def slurm_node_views(self) -> tuple[SlurmNodeView, ...]:
        """Every Slurm node as sinfo shows it."""
        out = []
        for node in sorted(self._slurm_nodes.values(), key=lambda n: n.name):
            host = self._hosts[node.name]
            jobs = sorted({g.owner.id_str for g in host.gpus if isinstance(g.owner, SlurmJob)})
            reason = node.reason or ("GPU fell off the bus (XID 79)" if node.drain and any(g.lost for g in host.gpus) else "")
            out.append(SlurmNodeView(
                name=node.name,
                state=self.slurm_node_state(node),
                reason=reason,
                partitions=node.partitions,
                gpus=host.usable_gpus(),
                gpus_allocated=sum(1 for g in host.gpus if g.owner is not None),
                jobs=tuple(jobs),
            ))
        return tuple(out)

    def node_events(self) -> tuple[NodeEvent, ...]:
        """Kubernetes Warning events about pods on a node: restarts after a GPU error, admission failures."""
        out = []
        for pod in self._pods.values():
            if not pod.node:
                continue
            if pod.phase == "Failed" and pod.reason:
                out.append(NodeEvent(pod.node, "kubernetes", "Pod", pod.workload, "Warning", pod.reason,
                                     "Allocate failed due to requested number of devices unavailable for nvidia.com/gpu"
                                     if pod.reason == "UnexpectedAdmissionError" else pod.reason,
                                     1, pod.finished_at))
            elif pod.restarts:
                out.append(NodeEvent(pod.node, "kubernetes", "Pod", pod.workload, "Warning", "BackOff",
                                     "Back-off restarting failed container", pod.restarts,
                                     (pod.ready_at or self.now) - pod.startup_s))
        out.sort(key=lambda e: (-(e.last_seen or 0.0), e.object))
        return tuple(out)

    # -- richer state for later screens (copies) --------------------------------------------
    def k8s_nodes(self) -> list[K8sNode]:
        return [copy.copy(n) for n in self._k8s_nodes.values()]

    def pods(self, namespace: str | None = None) -> list[Pod]:
        return [copy.copy(p) for p in self._pods.values() if namespace is None or p.namespace == namespace]

    def slurm_nodes(self) -> list[SlurmNode]:
        return [copy.copy(n) for n in self._slurm_nodes.values()]

    def slurm_jobs(self) -> list[SlurmJob]:
        return [copy.copy(j) for j in self._slurm_jobs]

    def nova_services(self) -> list[NovaService]:
        return [copy.copy(s) for s in self._nova_services.values()]

    def nova_servers(self) -> list[NovaServer]:
        return [copy.copy(s) for s in self._nova_servers]

    # -- operations --------------------------------------------------------------------------
    def _node(self, host: str) -> K8sNode:
        node = self._k8s_nodes.get(host)
        if node is None:
            raise NotFound(f'nodes "{host}" not found')
        return node

    def cordon(self, host: str) -> None:
        """Mark a Kubernetes node unschedulable; running pods stay."""
        self._node(host).unschedulable = True

    def uncordon(self, host: str) -> None:
        self._node(host).unschedulable = False

    def evict_pod(self, namespace: str, name: str) -> None:
        """Evict a pod through the eviction API: refused with :class:`DisruptionBudgetViolation` when its PDB would break.

        The owner (ReplicaSet, Job, DaemonSet) recreates the pod at the next tick, as Pending.
        """
        pod = self._pods.get((namespace, name))
        if pod is None:
            raise NotFound(f'pods "{name}" not found in namespace "{namespace}"')
        if pod.owner_kind == "Node":
            raise DemoOperationError(
                f"cannot evict {namespace}/{name}: Pods declared by kubelet (static pods) are recreated by it"
            )
        if pod.owner_kind == "ReplicaSet" and pod.ready and not pod.terminal:
            dep = next((d for d in self._deployments if d.namespace == namespace and d.name == pod.owner_name), None)
            if dep is not None and dep.pdb_min_available is not None:
                healthy = sum(
                    1
                    for p in self._pods.values()
                    if p.namespace == namespace and p.owner_name == dep.name and p.ready and not p.terminal
                )
                if healthy - 1 < dep.pdb_min_available:
                    raise DisruptionBudgetViolation(namespace, name, dep.name, dep.pdb_min_available, healthy)
        self._pod_release(pod)
        del self._pods[(namespace, name)]

    def _slurm_node(self, host: str) -> SlurmNode:
        node = self._slurm_nodes.get(host)
        if node is None:
            raise NotFound(f"Invalid node name specified: {host}")
        return node

    def drain_slurm(self, host: str, reason: str) -> None:
        """``scontrol update nodename=HOST state=drain reason=...``: running jobs finish, nothing new starts."""
        if not reason:
            raise DemoOperationError("You must specify a reason when DOWNING or DRAINING a node.")
        node = self._slurm_node(host)
        node.drain = True
        node.reason = reason
        node.reason_at = self.now

    def resume_slurm(self, host: str) -> None:
        node = self._slurm_node(host)
        node.drain = False
        node.reason = ""
        node.reason_at = None

    def _nova_service(self, host: str) -> NovaService:
        service = self._nova_services.get(host)
        if service is None:
            raise NotFound(f"Compute service for host {host} could not be found.")
        return service

    def disable_nova(self, host: str, reason: str) -> None:
        """``openstack compute service set --disable --disable-reason ...``: no new VMs land here."""
        service = self._nova_service(host)
        service.status = "disabled"
        service.disabled_reason = reason

    def enable_nova(self, host: str) -> None:
        service = self._nova_service(host)
        service.status = "enabled"
        service.disabled_reason = ""
