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

import math
import random
import time
from collections.abc import Iterable

from .alerts import AlertRulesMixin
from .ceph import CephSimMixin
from .common import (
    DEMO_EPOCH,
    SITE_NAME,
    TICK_S,
    WARMUP_S,
    DemoOperationError,
    DisruptionBudgetViolation,
    NotFound,
    gpu_uuid,
)
from .construction import BuildMixin
from .entities import Deployment, K8sNode, NovaServer, NovaService, Pod, SimGpu, SimHost, SlurmJob, SlurmNode, Storyline
from .fabric import FabricSimMixin
from .gpus import GpuSimMixin
from .kubernetes import KubeSimMixin
from .nova import NovaSimMixin
from .slurm import SlurmSimMixin
from .views import ViewsMixin

__all__ = [
    "DEMO_EPOCH",
    "TICK_S",
    "WARMUP_S",
    "DemoCluster",
    "DemoOperationError",
    "DisruptionBudgetViolation",
    "NotFound",
    "Storyline",
    "gpu_uuid",
]


class DemoCluster(
    BuildMixin,
    GpuSimMixin,
    KubeSimMixin,
    SlurmSimMixin,
    NovaSimMixin,
    FabricSimMixin,
    CephSimMixin,
    AlertRulesMixin,
    ViewsMixin,
):
    """The simulated cluster of site "demo"; advance it with :meth:`advance_to`, read it via demo sources.

    This class keeps the clock and the step loop; each domain's state changes live in its own module
    (:mod:`.gpus`, :mod:`.kubernetes`, :mod:`.slurm`, :mod:`.nova`, :mod:`.fabric`, :mod:`.ceph`), the
    alert rules in :mod:`.alerts`, the construction in :mod:`.construction` and what the sources read in
    :mod:`.views`.
    """

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

    # -- lookups -----------------------------------------------------------------------------
    def _gpu(self, host: str, index: int) -> SimGpu:
        return self._hosts[host].gpus[index]

    def storyline(self) -> Storyline:
        """Where and when this seed's incidents happen."""
        return self._story

    # -- live state, for operations in flight (the simulation's own objects, not copies) ------
    def live_host(self, name: str) -> SimHost:
        return self._hosts[name]

    def live_k8s_node(self, name: str) -> K8sNode | None:
        return self._k8s_nodes.get(name)

    def live_pod(self, namespace: str, name: str) -> Pod | None:
        return self._pods.get((namespace, name))

    def live_pods(self) -> Iterable[Pod]:
        return self._pods.values()

    def live_deployments(self) -> list[Deployment]:
        return self._deployments

    def remove_pod(self, namespace: str, name: str) -> None:
        """Take the pod out of the cluster; its controller sees one pod short at the next tick and creates another."""
        del self._pods[(namespace, name)]

    def release_pod(self, pod: Pod) -> None:
        """Give back the GPUs ``pod`` holds."""
        self._pod_release(pod)

    def live_nova_services(self) -> Iterable[NovaService]:
        return self._nova_services.values()

    def live_nova_servers(self) -> list[NovaServer]:
        return self._nova_servers

    def live_slurm_node(self, name: str) -> SlurmNode:
        return self._slurm_nodes[name]

    def live_slurm_jobs(self) -> list[SlurmJob]:
        return self._slurm_jobs

    def release_slurm_job(self, job: SlurmJob) -> None:
        """Give back the GPUs ``job`` holds and its nodes."""
        self._slurm_release(job)

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
