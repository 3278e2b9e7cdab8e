"""Provides the work-queue records: Slurm jobs and partitions with what each job waits for, in words."""

from __future__ import annotations

from dataclasses import dataclass


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
