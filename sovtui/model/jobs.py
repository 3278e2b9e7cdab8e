"""Provides the work-queue records (Slurm jobs and partitions, Kubernetes Jobs and pending pods, Kueue) and the rows of work."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SlurmJob:
    """One job (or one pending array of tasks) of ``squeue --json``; ``None`` means unknown, never 0."""

    id: str  # "123", an array task "7_2", a pending array "7_[0-3]"
    name: str = ""
    user: str = ""
    account: str = ""
    partition: str = ""  # may be a comma-separated list while pending
    state: str = ""  # the base state: PENDING, RUNNING, COMPLETING, SUSPENDED, ...
    flags: tuple[str, ...] = ()  # the other state words (23.11+ lists them): REQUEUED, ...
    reason_code: str = ""  # Slurm's reason word (Resources, Priority, JobHeldUser, ...); "" when none
    reason: str = ""  # the reason in words (Slurm's own description when it gives one)
    gpus: int | None = None  # allocated if running, else requested; None when the job record does not say
    nodes: tuple[str, ...] = ()  # every node of the job, expanded
    node_count: int | None = None
    submitted_at: float | None = None
    started_at: float | None = None  # None while pending (Slurm's expected start time is not a start)
    time_limit_s: float | None = None  # None: unlimited or unknown (see ``unlimited``)
    unlimited: bool = False  # the time limit is INFINITE (or the partition's, which is)
    priority: int | None = None
    qos: str = ""
    dependency: str = ""
    held: bool = False

    @property
    def pending(self) -> bool:
        return self.state == "PENDING"


@dataclass(frozen=True, slots=True)
class SlurmPartition:
    """One partition: its state and its GPUs by what their nodes do; ``None`` counts are unknown."""

    name: str
    state: str = ""  # UP, DOWN, DRAIN, INACTIVE; "" when not known
    default: bool = False
    nodes: int = 0
    nodes_by_state: tuple[tuple[str, int], ...] = ()  # (sinfo's state word, count), most nodes first
    gpus_total: int | None = None
    gpus_allocated: int | None = None
    gpus_idle: int | None = None  # on nodes that take work, not allocated
    gpus_drained: int | None = None  # on drained/draining nodes (held there by running jobs or not)
    gpus_down: int | None = None
    max_time_s: float | None = None  # None: unlimited or not known


@dataclass(frozen=True, slots=True)
class KubeJob:
    """A Kubernetes Job: its pods' counts and the GPUs its pods ask for."""

    namespace: str
    name: str
    active: int = 0
    succeeded: int = 0
    failed: int = 0
    completions: int | None = None
    gpus: int | None = None  # per pod x parallelism; None when the template does not say
    state: str = ""  # running | complete | failed | suspended
    created: float | None = None
    queue: str = ""  # its Kueue LocalQueue (label kueue.x-k8s.io/queue-name), if any


@dataclass(frozen=True, slots=True)
class PendingPod:
    """A pod that waits for a node while asking for GPUs, with why, in the scheduler's words."""

    namespace: str
    name: str
    gpus: int
    reason: str = ""  # e.g. "0/16 nodes are available: 16 Insufficient nvidia.com/gpu."
    since: float | None = None
    wants: str = ""  # the node pool or GPU product its node selector asks for
    owner: str = ""  # Kind/name of its controller


@dataclass(frozen=True, slots=True)
class KueueWorkload:
    """A Kueue Workload: its queue, its GPUs and, while pending, why it is not admitted."""

    namespace: str
    name: str
    queue: str  # LocalQueue
    cluster_queue: str = ""
    state: str = ""  # pending | reserved | admitted | finished | inactive
    gpus: int = 0
    queued: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class KueueQueue:
    """A Kueue ClusterQueue: its GPU quota and use, and how many workloads wait."""

    name: str
    cohort: str = ""
    pending: int = 0
    admitted: int = 0
    gpu_quota: int = 0
    gpu_reserved: int = 0


@dataclass(frozen=True, slots=True)
class JobsState:
    """The work of every queueing system a site has; ``None`` for a system the site does not have or that never answered."""

    slurm_jobs: tuple[SlurmJob, ...] | None = None
    slurm_partitions: tuple[SlurmPartition, ...] | None = None
    kube_jobs: tuple[KubeJob, ...] | None = None
    pending_pods: tuple[PendingPod, ...] | None = None
    kueue_queues: tuple[KueueQueue, ...] | None = None
    kueue_workloads: tuple[KueueWorkload, ...] | None = None


def merge_jobs(parts: Iterable[JobsState | None]) -> JobsState | None:
    """The sources' parts side by side (Slurm from one source, Kubernetes and Kueue from another)."""
    found = [p for p in parts if p is not None]
    if not found:
        return None
    values: dict[str, Any] = {}
    for name in JobsState.__dataclass_fields__:
        for part in found:
            value = getattr(part, name)
            if value is not None:
                values[name] = value if name not in values else values[name] + value
    return JobsState(**values)


@dataclass(frozen=True, slots=True)
class WorkRow:
    """One line of the Jobs screen: a unit of work of any system."""

    key: str  # unique across systems: "slurm:123", "kubernetes:ns/pod", "kueue:ns/wl", "job:ns/name"
    system: str  # slurm | kubernetes | kueue
    queue: str  # partition, LocalQueue -> ClusterQueue, or namespace
    id: str
    owner: str  # user or namespace
    state: str
    gpus: int | None
    since: float | None  # submitted (pending) or started (running)
    nodes: tuple[str, ...] = ()
    reason: str = ""
    pending: bool = False
    code: str = ""  # the system's own reason word (Slurm's Resources, Priority, ...), when it has one


def work_rows(jobs: JobsState | None) -> list[WorkRow]:
    """Every unit of work, pending first (longest wait first), then running (longest run first)."""
    if jobs is None:
        return []
    rows: list[WorkRow] = []
    for job in jobs.slurm_jobs or ():
        rows.append(
            WorkRow(
                key=f"slurm:{job.id}",
                system="slurm",
                queue=job.partition,
                id=f"{job.id} {job.name}".strip(),
                owner=job.user,
                state=job.state,
                gpus=job.gpus,
                since=job.submitted_at if job.pending else job.started_at,
                nodes=job.nodes,
                reason=job.reason,
                pending=job.pending,
                code=job.reason_code,
            )
        )
    for pod in jobs.pending_pods or ():
        rows.append(
            WorkRow(
                key=f"kubernetes:{pod.namespace}/{pod.name}",
                system="kubernetes",
                queue=pod.wants or pod.namespace,
                id=pod.name,
                owner=pod.namespace,
                state="PENDING",
                gpus=pod.gpus,
                since=pod.since,
                reason=pod.reason,
                pending=True,
            )
        )
    for wl in jobs.kueue_workloads or ():
        if wl.state not in ("pending", "reserved"):  # an admitted workload runs as its Job's pods
            continue
        waiting = wl.state == "pending"
        rows.append(
            WorkRow(
                key=f"kueue:{wl.namespace}/{wl.name}",
                system="kueue",
                queue=f"{wl.queue} → {wl.cluster_queue}" if wl.cluster_queue else wl.queue,
                id=wl.name,
                owner=wl.namespace,
                state=wl.state.upper(),
                gpus=wl.gpus,
                since=wl.queued,
                reason=wl.reason if waiting else "",
                pending=waiting,
            )
        )
    for kj in jobs.kube_jobs or ():
        if kj.state != "running":
            continue
        rows.append(
            WorkRow(
                key=f"job:{kj.namespace}/{kj.name}",
                system="kubernetes",
                queue=kj.queue or kj.namespace,
                id=kj.name,
                owner=kj.namespace,
                state="RUNNING",
                gpus=kj.gpus,
                since=kj.created,
            )
        )
    rows.sort(key=lambda r: (not r.pending, r.since is None, r.since or 0.0, r.key))
    return rows


def pending_gpus(rows: Iterable[WorkRow]) -> tuple[int, bool]:
    """GPUs asked for by pending work, and whether that is all of it (False when some pending work does not say)."""
    total, known = 0, True
    for row in rows:
        if row.pending:
            if row.gpus is None:
                known = False
            else:
                total += row.gpus
    return total, known


def short_reason(row: WorkRow, code: str = "") -> str:
    """A few words of why a row waits, for narrow terminals: Slurm's reason word, the scheduler's gist, Kueue's."""
    if not row.pending:
        return ""
    code = code or row.code
    if code:
        return code
    text = row.reason
    low = text.lower()
    if row.system == "kubernetes":
        if "insufficient nvidia.com/gpu" in low or "insufficient gpu" in low:
            return "no GPU free"
        if "didn't match" in low or "node affinity" in low or "selector" in low:
            return "no node matches"
        if "taint" in low:
            return "taints"
        if "unschedulable" in low:
            return "unschedulable"
    if row.system == "kueue":
        if "quota" in low:
            return "no quota"
        if "inactive" in low or "stopped" in low:
            return "queue stopped"
    return text[:20]
