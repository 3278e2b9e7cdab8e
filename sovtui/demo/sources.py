"""Provides the demo sources: the real Source interface, answered from a DemoCluster instead of a network.

The Kubernetes, OpenStack and Slurm ones also take operations (cordon, evict, migrate, drain ...) with the
names and signatures of the real sources; :mod:`sovtui.demo.operations` carries them out in the simulation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .. import __version__
from ..model.types import DoctorCheck, KubeNode, SlurmNode, SourceData
from ..model.workload import PodRef, SlurmJobRef, VmRef
from ..sources.base import BadAnswer, Source
from .operations import DemoOps, ops_for

if TYPE_CHECKING:
    from .cluster import DemoCluster

#: how often the hub polls a demo source, seconds
DEMO_INTERVAL_S = 2.0
#: how often a demo wait (pods_changed) advances the cluster to the clock and looks again, seconds
DEMO_WATCH_STEP_S = 0.05
#: who acts in the demo's layers
DEMO_USER = "demo-admin"


class DemoSource(Source):
    """One simulated backend: each fetch advances the cluster to ``clock()`` and reads it; no threads, no I/O."""

    interval_s = DEMO_INTERVAL_S
    timeout_s = 2.0
    what = "data"

    def __init__(self, cluster: DemoCluster | _SharedCluster, clock: Callable[[], float] = time.time) -> None:
        self._shared = cluster if isinstance(cluster, _SharedCluster) else _SharedCluster(lambda: cluster)
        self.clock = clock

    @property
    def cluster(self) -> DemoCluster:
        return self._shared.get()

    @contextmanager
    def current(self) -> Iterator[DemoOps]:
        """The cluster's operations, with the cluster advanced to ``clock()`` and locked (operations run in threads too)."""
        ops = ops_for(self.cluster)
        with ops.lock:
            self.cluster.advance_to(self.clock())
            yield ops

    async def fetch(self, executor: Executor | None = None) -> SourceData:
        with self.current():
            return self.build()

    def fetch_sync(self) -> SourceData:
        with self.current():
            return self.build()

    def build(self) -> SourceData:  # pragma: no cover - overridden
        raise NotImplementedError

    async def doctor(self, executor: Executor | None = None) -> list[DoctorCheck]:
        return self.doctor_sync()

    def doctor_sync(self) -> list[DoctorCheck]:
        c = self.cluster
        return [
            DoctorCheck(
                self.name,
                "simulated",
                True,
                f"simulated {self.what} of demo site {c.site!r} (seed {c.seed}); nothing is contacted",
            )
        ]


class DemoPrometheus(DemoSource):
    """Prometheus: GPUs as dcgm-exporter reports them, Ceph, the fabric (IF-MIB), Slurm partitions, alerts."""

    name = "prometheus"
    kind = "prometheus"
    what = "DCGM, Ceph, IF-MIB, Slurm exporter metrics and alerts"

    def build(self) -> SourceData:
        c = self.cluster
        return SourceData(
            gpus=c.dcgm_gpus(),
            ceph=c.ceph_state(),
            fabric=c.fabric_state(),
            # the same partitions as the slurm source, age included, so that the view's
            # freshest-source-wins fusion of queues does not flicker between the two
            queues=c.slurm_queues(),
            alerts=c.alerts(),
            version=f"2.53.0 (sovtui {__version__} demo)",
        )


class DemoSsh(DemoSource):
    """SSH to every GPU host: GPUs as NVML sees them, with the kernel log's XIDs, plus the hosts themselves."""

    name = "ssh"
    kind = "ssh"
    what = "NVML readings of 16 GPU hosts"

    def build(self) -> SourceData:
        c = self.cluster
        return SourceData(gpus=c.nvml_gpus(), gpu_hosts=c.gpu_hosts(), version=f"sovtui {__version__} demo")


class DemoKubernetes(DemoSource):
    """The Kubernetes API: nodes with their GPU pods, Warning events, GPU pods per namespace (pending: no room)."""

    name = "kubernetes"
    kind = "kubernetes"
    what = "Kubernetes API"

    def build(self) -> SourceData:
        c = self.cluster
        return SourceData(
            queues=c.k8s_queues(),
            kube_nodes=c.kube_nodes(),
            node_events=c.node_events(),
            jobs=c.k8s_work(),
            version="v1.30.4 (demo)",
        )

    # -- what a drain reads (sync: the demo's cache is the simulation itself) -------------------
    def pods_on(self, node: str) -> tuple[PodRef, ...] | None:
        """Every pod bound to ``node`` that has not finished (DaemonSet and terminating ones too), with its budgets."""
        with self.current() as ops:
            return ops.pods_on(node)

    def node_unschedulable(self, node: str) -> bool | None:
        with self.current():
            rec = self.cluster.live_k8s_node(node)
            return None if rec is None else rec.unschedulable

    def cordon_reason(self, node: str) -> str | None:
        """The reason given when ``node`` was cordoned (annotation sovtui.io/cordon-reason), if any."""
        with self.current() as ops:
            return ops.cordon_reasons.get(node)

    def pod_uid(self, namespace: str, name: str) -> str | None:
        with self.current() as ops:
            return ops.pod_uid(namespace, name)

    def identity(self) -> str:
        return f"user {DEMO_USER} in context {self.cluster.site} (simulated API server)"

    # -- what a drain does ------------------------------------------------------------------------
    async def cordon(
        self, node: str, *, unschedulable: bool = True, reason: str | None = None, dry_run: bool = False
    ) -> KubeNode:
        with self.current() as ops:
            return ops.cordon(node, unschedulable, reason, dry_run)

    async def evict(
        self, namespace: str, pod: str, *, grace_period_s: int | None = None, dry_run: bool = False
    ) -> None:
        """Evict through the simulated Eviction API: EvictionBlocked by a budget, PodGone when there is no such pod."""
        with self.current() as ops:
            ops.evict(namespace, pod, grace_period_s, dry_run)

    async def pods_changed(self, timeout_s: float) -> bool:
        """True once the simulation, advanced to the clock while waiting, has changed a pod; False after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout_s)
        with self.current() as ops:
            before = ops.pods_state()
        while True:
            await asyncio.sleep(max(0.0, min(DEMO_WATCH_STEP_S, deadline - loop.time())))
            with self.current() as ops:
                if ops.pods_state() != before:
                    return True
            if loop.time() >= deadline:
                return False


class DemoSlurm(DemoSource):
    """Slurm (squeue/sinfo): one queue per partition, and its nodes."""

    name = "slurm"
    kind = "slurm"
    what = "squeue/sinfo output"

    def build(self) -> SourceData:
        c = self.cluster
        return SourceData(
            queues=c.slurm_queues(),
            slurm_nodes=c.slurm_node_views(),
            jobs=c.slurm_work(),
            version="slurm 23.11.10 (demo)",
        )

    def node(self, name: str) -> SlurmNode | None:
        with self.current() as ops:
            return ops.slurm_node(name)

    def jobs_on(self, name: str) -> tuple[SlurmJobRef, ...]:
        """The jobs running on ``name``, each with all its nodes and all its GPUs."""
        with self.current() as ops:
            return ops.jobs_on(name)

    async def read_node(self, name: str) -> SlurmNode:
        with self.current() as ops:
            node = ops.slurm_node(name)
        if node is None:
            raise BadAnswer(f"scontrol show node {name}: Node {name} not found")
        return node

    async def drain(self, name: str, reason: str) -> None:
        """``scontrol update nodename=NAME state=drain reason=...``: DRAINING while its jobs run, then DRAINED."""
        with self.current() as ops:
            ops.set_drain(name, True, reason)

    async def undrain(self, name: str) -> None:
        with self.current() as ops:
            ops.set_drain(name, False)

    async def requeue(self, job_id: str) -> None:
        with self.current() as ops:
            ops.requeue(job_id)

    def identity(self) -> str:
        return f"{DEMO_USER}@{self.cluster.site}-login"


class DemoOpenStack(DemoSource):
    """OpenStack: nova-compute services and hypervisors with their VMs, GPU flavors, Neutron agents."""

    name = "openstack"
    kind = "openstack"
    what = "Nova, Placement and Neutron APIs"

    def build(self) -> SourceData:
        c = self.cluster
        return SourceData(
            nova_hosts=c.nova_hosts(),
            openstack_flavors=c.openstack_flavors(),
            neutron_agents=c.neutron_agents(),
            version=f"compute {self.compute_version()} (demo)",
        )

    # sync, like the real source's client: operations run these in a worker thread
    def servers_on(self, host: str) -> tuple[VmRef, ...]:
        with self.current() as ops:
            return ops.servers_on(host)

    def compute_version(self) -> str:
        return "2.96"

    def disable_compute(self, host: str, reason: str) -> None:
        with self.current() as ops:
            ops.set_compute(host, False, reason)

    def enable_compute(self, host: str) -> None:
        with self.current() as ops:
            ops.set_compute(host, True)

    def live_migrate(self, server_id: str, *, target_host: str | None = None) -> None:
        """The server moves to another enabled host with room for it in :data:`~sovtui.demo.operations.LIVE_MIGRATION_S`."""
        with self.current() as ops:
            ops.migrate(server_id, True, target_host)

    def cold_migrate(self, server_id: str, *, target_host: str | None = None) -> None:
        """The server moves, then waits in VERIFY_RESIZE for :meth:`confirm_resize`."""
        with self.current() as ops:
            ops.migrate(server_id, False, target_host)

    def confirm_resize(self, server_id: str) -> None:
        with self.current() as ops:
            ops.confirm_resize(server_id)

    def server(self, server_id: str) -> VmRef | None:
        with self.current() as ops:
            return ops.server(server_id)

    def identity(self) -> str:
        return f"user {DEMO_USER} in project admin (cloud {self.cluster.site})"


class _SharedCluster:
    """One cluster for all demo sources, built on first use so that start-up does not wait for it."""

    def __init__(self, factory: Callable[[], DemoCluster]) -> None:
        self._factory = factory
        self._cluster: DemoCluster | None = None

    def get(self) -> DemoCluster:
        if self._cluster is None:
            self._cluster = self._factory()
        return self._cluster


def demo_sources(
    cluster: DemoCluster | Callable[[], DemoCluster], clock: Callable[[], float] = time.time
) -> list[Source]:
    """The sources of the demo site, named like the real ones: prometheus, ssh, kubernetes, slurm, openstack.

    ``clock`` is the time the sim is advanced to at each fetch; give the hub the same clock, so that
    ages on screen ("firing for 3 min") are right. With ``DemoCluster()`` (t0 = DEMO_EPOCH) that is a
    clock starting at DEMO_EPOCH (frozen there for snapshots); ``DemoCluster.live()`` pairs with
    ``time.time``. ``cluster`` may be a factory: the cluster is then built at the first fetch.
    """
    shared = _SharedCluster(cluster if callable(cluster) and not hasattr(cluster, "advance_to") else (lambda: cluster))
    return [cls(shared, clock) for cls in (DemoPrometheus, DemoSsh, DemoKubernetes, DemoSlurm, DemoOpenStack)]
