"""Provides the Slurm simulation of the demo: allocation, backfill with a reservation, submissions, sweeps, queues, drain and resume."""

from __future__ import annotations

import math

from ..model.jobs import JobsState
from ..model.jobs import SlurmJob as SlurmJobView
from ..model.slurm_queue import build_partitions, reason_words
from ..model.types import QueueState
from .common import (
    TICK_S,
    DemoOperationError,
    NotFound,
    digest,
)
from .entities import (
    SlurmJob,
    SlurmNode,
)


class SlurmSimMixin:
    """Slurm nodes and jobs over time; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

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
            duration = 240.0 + 240.0 * (digest("sweep", self.seed, job_id, task)[0] / 255.0)
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

    def slurm_work(self) -> JobsState:
        """``squeue``/``sinfo`` as the Slurm source reads them: every job with its reason, each partition's GPUs."""
        jobs = []
        for job in self._slurm_jobs:
            if job.state not in ("PENDING", "RUNNING"):
                continue
            pending = job.state == "PENDING"
            code = job.reason if pending and job.reason != "None" else ""
            jobs.append(
                SlurmJobView(
                    id=job.id_str,
                    name=job.name,
                    user=job.user,
                    account="research" if job.user != "ops" else "ops",
                    partition=job.partition,
                    state=job.state,
                    reason_code=code,
                    reason=reason_words(code),
                    gpus=job.nodes * job.gpus_per_node,
                    nodes=tuple(name for name, _ in job.alloc),
                    node_count=job.nodes,
                    submitted_at=job.submit_at,
                    started_at=job.start_at,
                    time_limit_s=60.0 * math.ceil(job.duration_s * 1.5 / 60.0),
                    priority=100_000 - job.job_id,
                    qos="normal",
                )
            )
        shown = {
            "gpu": {"PartitionName": "gpu", "State": "UP", "Default": "YES", "MaxTime": "2-00:00:00"},
            "debug": {"PartitionName": "debug", "State": "UP", "Default": "NO", "MaxTime": "30"},
        }
        partitions = build_partitions(self.slurm_node_views(), shown)  # type: ignore[attr-defined]
        return JobsState(slurm_jobs=tuple(jobs), slurm_partitions=partitions)

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
