"""Provides the job queues of Slurm, Kueue and Kubernetes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class QueueState:
    """One job queue: a Slurm partition, a Kueue ClusterQueue, or Kubernetes pending pods."""

    name: str
    system: str  # "slurm" | "kueue" | "kubernetes"
    pending_jobs: int = 0
    running_jobs: int = 0
    pending_gpus: int = 0
    oldest_pending_s: float | None = None
