"""Provides the views of the demo cluster: what the demo sources return, as frozen model types, and copies of its records."""

from __future__ import annotations

import copy

from ..model.types import (
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
    XidEvent,
)
from ..model.types import SlurmNode as SlurmNodeView
from .common import (
    CUDA_VERSION,
    DRIVER_VERSION,
    GPUS_PER_HOST,
)
from .entities import (
    K8sNode,
    NovaServer,
    NovaService,
    Pod,
    SimGpu,
    SlurmJob,
    SlurmNode,
)
from .nova import FLAVOR_GPU, FLAVORS

_K8S_CONDITIONS = (
    ("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
)
_K8S_NOT_READY = _K8S_CONDITIONS[:3] + (("Ready", "False", "KubeletNotReady", "container runtime is down"),)


def gpu_reading(g: SimGpu, now: float, source: str) -> Gpu:
    """One GPU as ``source`` reads it: ``"nvml"`` (the ssh source) or ``"dcgm"`` (dcgm-exporter via Prometheus).

    NVML sees everything: thresholds, aggregate ECC, throttle reasons, NVLink, every XID, any holder, a
    lost GPU as lost. dcgm-exporter has no thresholds, keeps the last XID only, names pods only, and
    cannot read a lost GPU at all: only the last XID gauge remains.
    """
    nvml = source == "nvml"
    if nvml:
        xids = tuple(g.xids)
    else:
        xids = (XidEvent(g.xids[-1].code, g.xids[-1].at),) if g.xids else ()
    model = g.model
    ident = {"host": g.host, "index": g.index, "uuid": g.uuid, "name": model.name}
    if g.lost:
        return Gpu(**ident, xids=xids, lost=nvml, sources=(source,), observed_at=now)
    extra: dict = {}
    if nvml:
        extra = {
            "temp_slowdown_c": model.slowdown_c,
            "temp_shutdown_c": model.shutdown_c,
            "ecc_uncorrected_aggregate": g.ecc_uncorrected_aggregate,
            "throttle_reasons": g.throttle,
            "nvlink_down": 0,
        }
    return Gpu(
        **ident,
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
        xids=xids,
        workload=g.workload if nvml or isinstance(g.owner, Pod) else "",
        sources=(source,),
        observed_at=now,
        **extra,
    )


class ViewsMixin:
    """Frozen model types (and copies of sim records) the demo sources return; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    # -- views: frozen model types -----------------------------------------------------------
    def nvml_gpus(self) -> tuple[Gpu, ...]:
        """Every GPU as NVML on its host sees it (the "ssh" source)."""
        return tuple(gpu_reading(g, self.now, "nvml") for host in self._hosts.values() for g in host.gpus)

    def dcgm_gpus(self) -> tuple[Gpu, ...]:
        """Every GPU as dcgm-exporter reports it to Prometheus (no thresholds, last XID only, pods only)."""
        return tuple(gpu_reading(g, self.now, "dcgm") for host in self._hosts.values() for g in host.gpus)

    def gpu_hosts(self) -> tuple[GpuHost, ...]:
        return tuple(
            GpuHost(h.name, GPUS_PER_HOST, DRIVER_VERSION, CUDA_VERSION, backend="nvml", observed_at=self.now)
            for h in self._hosts.values()
        )

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
            out.append(
                KubeNode(
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
                )
            )
        return tuple(out)

    def nova_hosts(self) -> tuple[NovaHost, ...]:
        """Every nova-compute with its hypervisor's use and its servers."""
        out = []
        for svc in sorted(self._nova_services.values(), key=lambda v: v.host):
            servers = [v for v in self._nova_servers if v.host == svc.host]
            running = [v for v in servers if v.status in ("ACTIVE", "ERROR", "PAUSED")]
            sizes = [FLAVORS.get(v.flavor, (0, 0, 0)) for v in running]
            host = self._hosts[svc.host]
            out.append(
                NovaHost(
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
                )
            )
        return tuple(out)

    def openstack_flavors(self) -> tuple[OpenStackFlavor, ...]:
        return tuple(
            OpenStackFlavor(
                name, vcpus, ram, (("pci_passthrough:alias", f"{FLAVOR_GPU[name]}:{gpus}"),) if gpus else ()
            )
            for name, (vcpus, ram, gpus) in sorted(FLAVORS.items())
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
            reason = node.reason or (
                "GPU fell off the bus (XID 79)" if node.drain and any(g.lost for g in host.gpus) else ""
            )
            out.append(
                SlurmNodeView(
                    name=node.name,
                    state=self.slurm_node_state(node),
                    reason=reason,
                    partitions=node.partitions,
                    gpus=host.usable_gpus(),
                    gpus_allocated=sum(1 for g in host.gpus if g.owner is not None),
                    jobs=tuple(jobs),
                )
            )
        return tuple(out)

    def node_events(self) -> tuple[NodeEvent, ...]:
        """Kubernetes Warning events about pods on a node: restarts after a GPU error, admission failures."""
        out = []
        for pod in self._pods.values():
            if not pod.node:
                continue
            if pod.phase == "Failed" and pod.reason:
                out.append(
                    NodeEvent(
                        pod.node,
                        "kubernetes",
                        "Pod",
                        pod.workload,
                        "Warning",
                        pod.reason,
                        "Allocate failed due to requested number of devices unavailable for nvidia.com/gpu"
                        if pod.reason == "UnexpectedAdmissionError"
                        else pod.reason,
                        1,
                        pod.finished_at,
                    )
                )
            elif pod.restarts:
                out.append(
                    NodeEvent(
                        pod.node,
                        "kubernetes",
                        "Pod",
                        pod.workload,
                        "Warning",
                        "BackOff",
                        "Back-off restarting failed container",
                        pod.restarts,
                        (pod.ready_at or self.now) - pod.startup_s,
                    )
                )
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
