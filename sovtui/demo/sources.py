"""Provides the demo sources: the real Source interface, answered from a DemoCluster instead of a network."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TYPE_CHECKING

from .. import __version__
from ..model.types import DoctorCheck, SourceData
from ..sources.base import Source

if TYPE_CHECKING:
    from .cluster import DemoCluster

#: how often the hub polls a demo source, seconds
DEMO_INTERVAL_S = 2.0


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

    async def fetch(self, executor: Executor | None = None) -> SourceData:
        self.cluster.advance_to(self.clock())
        return self.build()

    def fetch_sync(self) -> SourceData:
        self.cluster.advance_to(self.clock())
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
        return SourceData(queues=c.k8s_queues(), kube_nodes=c.kube_nodes(), node_events=c.node_events(),
                          version="v1.30.4 (demo)")


class DemoSlurm(DemoSource):
    """Slurm (squeue/sinfo): one queue per partition, and its nodes."""

    name = "slurm"
    kind = "slurm"
    what = "squeue/sinfo output"

    def build(self) -> SourceData:
        c = self.cluster
        return SourceData(queues=c.slurm_queues(), slurm_nodes=c.slurm_node_views(), version="slurm 23.11.10 (demo)")


class DemoOpenStack(DemoSource):
    """OpenStack: nova-compute services and hypervisors with their VMs, GPU flavors, Neutron agents."""

    name = "openstack"
    kind = "openstack"
    what = "Nova, Placement and Neutron APIs"

    def build(self) -> SourceData:
        c = self.cluster
        return SourceData(nova_hosts=c.nova_hosts(), openstack_flavors=c.openstack_flavors(),
                          neutron_agents=c.neutron_agents(), version="compute 2.96 (demo)")


class _SharedCluster:
    """One cluster for all demo sources, built on first use so that start-up does not wait for it."""

    def __init__(self, factory: Callable[[], DemoCluster]) -> None:
        self._factory = factory
        self._cluster: DemoCluster | None = None

    def get(self) -> DemoCluster:
        if self._cluster is None:
            self._cluster = self._factory()
        return self._cluster


def demo_sources(cluster: DemoCluster | Callable[[], DemoCluster], clock: Callable[[], float] = time.time) -> list[Source]:
    """The sources of the demo site, named like the real ones: prometheus, ssh, kubernetes, slurm, openstack.

    ``clock`` is the time the sim is advanced to at each fetch; give the hub the same clock, so that
    ages on screen ("firing for 3 min") are right. With ``DemoCluster()`` (t0 = DEMO_EPOCH) that is a
    clock starting at DEMO_EPOCH (frozen there for snapshots); ``DemoCluster.live()`` pairs with
    ``time.time``. ``cluster`` may be a factory: the cluster is then built at the first fetch.
    """
    shared = _SharedCluster(cluster if callable(cluster) and not hasattr(cluster, "advance_to") else (lambda: cluster))
    return [cls(shared, clock) for cls in (DemoPrometheus, DemoSsh, DemoKubernetes, DemoSlurm, DemoOpenStack)]
