"""Provides the Prometheus lab's backfill: ~2 h of exporter series as OpenMetrics, the planted faults, and the truth."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sovtui.config import MetricMap
from sovtui.model.types import CephPool, CephState, FabricLink, FabricState, Gpu, QueueState, XidEvent

SPAN_S = 2 * 3600
STEP_S = 15
GPU_MODEL = "NVIDIA H100 80GB HBM3"
FB_TOTAL_MIB = 81559.0
TIB = 1024.0**4

M = MetricMap()  # the exporters' own metric names; the lab writes them as the exporters do


# --------------------------------------------------------------------------- OpenMetrics writer
@dataclass
class Series:
    """One backfilled series: a value function of time, sampled every STEP_S within [start, end]."""

    name: str
    labels: dict[str, str]
    value: Callable[[float], float]
    start: float | None = None  # default: data_end - SPAN_S
    end: float | None = None  # default: data_end


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def write_openmetrics(path: Path, series: list[Series], data_end: float) -> int:
    """Write every series as gauges (names like ifHCInOctets carry no ``_total``), ``# EOF`` last."""
    begin = data_end - SPAN_S
    by_name: dict[str, list[Series]] = {}
    for s in series:
        by_name.setdefault(s.name, []).append(s)
    samples = 0
    with open(path, "w", encoding="utf-8") as out:
        for name, group in by_name.items():
            out.write(f"# TYPE {name} gauge\n")
            for s in group:
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in s.labels.items())
                head = f"{name}{{{labels}}} "
                start = begin if s.start is None else s.start
                end = data_end if s.end is None else s.end
                lines = []
                t = start
                while t <= end:
                    lines.append(f"{head}{_fmt(s.value(t))} {int(t)}\n")
                    t += STEP_S
                out.writelines(lines)
                samples += len(lines)
        out.write("# EOF\n")
    return samples


# --------------------------------------------------------------------------- the truth
@dataclass(frozen=True)
class ExpectedAlert:
    """An alert the lab's rules make fire (or stay pending) in real time."""

    name: str
    severity: str
    prometheus_state: str  # firing | pending
    alertmanager_state: str | None  # firing | suppressed | None (never sent)
    summary: str
    labels: dict[str, str] = field(default_factory=dict)  # a subset of the alert's labels


@dataclass(frozen=True)
class LabTruth:
    """What the backfilled data says at ``data_end``: the values a correct source must report."""

    data_end: float
    step_s: int
    span_s: int
    hosts: tuple[str, ...]
    gpus: tuple[Gpu, ...]  # sorted by (host, index)
    ceph: CephState  # pools sorted by name, checks sorted
    fabric: FabricState  # links sorted by (device, ifname)
    queues: tuple[QueueState, ...]  # sorted by (system, name)
    series_at_end: dict[str, int]  # exporter family (dcgm, ceph, snmp, queues) -> series live at data_end
    alerts: tuple[ExpectedAlert, ...]
    gpu_util: Callable[[str, int, float], float] = field(repr=False, compare=False)
    samples: int = 0

    def gpu(self, host: str, index: int) -> Gpu:
        return next(g for g in self.gpus if g.host == host and g.index == index)

    def sample_times(self, start: float, end: float) -> list[float]:
        """The backfilled sample timestamps within [start, end]."""
        first = self.data_end - self.span_s
        return [t for t in range(int(first), int(self.data_end) + 1, self.step_s) if start <= t <= end]


# The faults planted in the fleet (host, index)
XID_GPU = ("gpu03", 5)
XID_CODE = 79
DBE_GPU = ("gpu02", 3)
REMAP_PENDING_GPU = ("gpu01", 4)
HOT_GPU = ("gpu02", 6)
HOT_TEMP = 87.0
STALE_POD_GPU = ("gpu04", 7)


def _gpu_util(host: str, index: int, t: float) -> float:
    h = int(host[3:])
    base = (h * 17 + index * 11) % 70 + 10
    return round(base + 15 * math.sin((t / 1800.0) * 2 * math.pi + index), 1)


def _pod_for(host: str, index: int) -> tuple[str, str] | None:
    if host == "gpu01":
        return ("team-a", "llm-pretrain-0")
    if host == "gpu02" and index < 4:
        return ("team-b", "vllm-llama-7f9c")
    return None


def build_lab_data(data_end: float) -> tuple[list[Series], LabTruth]:
    """The fleet, the Ceph cluster, the fabric and the queues, as series plus the expected values."""
    begin = data_end - SPAN_S
    series: list[Series] = []
    gpus: list[Gpu] = []
    counts = {"dcgm": 0, "ceph": 0, "snmp": 0, "queues": 0}

    def add(family: str, name: str, labels: dict[str, str], value: Callable[[float], float], start=None, end=None):
        series.append(Series(name, labels, value, start, end))
        if end is None or end >= data_end:
            counts[family] += 1

    def const(v: float) -> Callable[[float], float]:
        return lambda t: v

    def step(before: float, after: float, at: float) -> Callable[[float], float]:
        return lambda t: after if t >= at else before

    # ---- dcgm-exporter: 4 hosts x 8 GPUs
    hosts = tuple(f"gpu{h:02d}" for h in range(1, 5))
    for h, host in enumerate(hosts, start=1):
        for i in range(8):
            gid = (host, i)
            gpu_uuid = f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{host}.lab/{i}')}"
            base = {
                M.gpu_label_index: str(i),
                M.gpu_label_uuid: gpu_uuid,
                "device": f"nvidia{i}",
                M.gpu_label_model: GPU_MODEL,
                M.gpu_label_host: host,
                "DCGM_FI_DRIVER_VERSION": "535.129.03",
                "pci_bus_id": f"00000000:{0x18 + 0x10 * i:02X}:00.0",
                "instance": f"{host}:9400",
                "job": "dcgm",
            }
            pod = _pod_for(host, i)
            labels = dict(base)
            if pod:
                labels.update({M.gpu_label_namespace: pod[0], M.gpu_label_pod: pod[1], "container": "main"})
            used = 18000.0 + 1500 * i + 700 * h + (40000.0 if pod else 0.0)
            temp_end = HOT_TEMP if gid == HOT_GPU else 38.0 + 3 * i + h
            sbe = float(i % 3)
            dbe = 2.0 if gid == DBE_GPU else 0.0
            remap_pending = 1.0 if gid == REMAP_PENDING_GPU else 0.0
            xid = float(XID_CODE) if gid == XID_GPU else 0.0

            def util(t, host=host, i=i):
                return _gpu_util(host, i, t)

            def power(t, host=host, i=i):
                return round(90.0 + 5.5 * _gpu_util(host, i, t), 1)

            values: dict[str, Callable[[float], float]] = {
                M.gpu_util: util,
                M.gpu_mem_copy_util: (lambda t, u=util: round(u(t) * 0.6, 1)),
                M.gpu_fb_used: const(used),
                M.gpu_fb_free: const(FB_TOTAL_MIB - used),
                M.gpu_temp: step(60.0, temp_end, data_end - 1800) if gid == HOT_GPU else const(temp_end),
                M.gpu_power: power,
                M.gpu_power_limit: const(700.0),
                M.gpu_xid: step(0.0, xid, data_end - 600),
                M.gpu_ecc_dbe_vol: step(0.0, dbe, data_end - 3000),
                M.gpu_ecc_sbe_vol: const(sbe),
                M.gpu_row_remap_failure: const(0.0),
                M.gpu_row_remap_pending: step(0.0, remap_pending, data_end - 2400),
            }
            for name, fn in values.items():
                if gid == STALE_POD_GPU:
                    # a pod held this GPU until an hour ago: that series went stale, a pod-less one followed
                    old = dict(
                        base, **{M.gpu_label_namespace: "team-b", M.gpu_label_pod: "old-job", "container": "main"}
                    )
                    add("dcgm", name, old, fn, begin, data_end - 3600)
                    add("dcgm", name, labels, fn, data_end - 3600 + STEP_S, None)
                else:
                    add("dcgm", name, labels, fn)
            gpus.append(
                Gpu(
                    host=host,
                    index=i,
                    uuid=gpu_uuid,
                    name=GPU_MODEL,
                    util_pct=_gpu_util(host, i, data_end),
                    mem_util_pct=round(_gpu_util(host, i, data_end) * 0.6, 1),
                    mem_used_mib=used,
                    mem_total_mib=FB_TOTAL_MIB,
                    temp_c=temp_end,
                    power_w=power(data_end),
                    power_limit_w=700.0,
                    ecc_corrected_volatile=int(sbe),
                    ecc_uncorrected_volatile=int(dbe),
                    row_remap_pending=bool(remap_pending),
                    row_remap_failure=False,
                    xids=(XidEvent(XID_CODE),) if xid else (),
                    workload=f"{pod[0]}/{pod[1]}" if pod else "",
                    sources=("dcgm",),
                    observed_at=data_end,
                )
            )

    # ---- ceph-mgr prometheus module
    ceph_base = {"instance": "ceph-mgr-a:9283", "job": "ceph"}
    add("ceph", M.ceph_health, ceph_base, step(0.0, 1.0, data_end - 1800))
    checks = {"OSD_DOWN": 1.0, "OSD_NEARFULL": 1.0, "POOL_NEARFULL": 1.0, "MON_CLOCK_SKEW": 0.0}
    for check, active in checks.items():
        add(
            "ceph",
            M.ceph_health_detail,
            {**ceph_base, "name": check, "severity": "HEALTH_WARN"},
            step(0.0, active, data_end - 1800) if active else const(0.0),
        )
    total = 3 * 4 * TIB
    pools = [  # pool_id, name, stored, max_avail, objects
        ("1", ".mgr", 4.5e6, 1.1e12, 2),
        ("2", "rbd", 2.0 * TIB, 1.6 * TIB, 524_288),
        ("3", "cephfs_data", 3.4 * TIB, 0.35 * TIB, 1_048_576),
    ]
    used_total = sum(p[2] for p in pools) * 1.0  # replica 1 in the lab picture
    add("ceph", M.ceph_total_bytes, ceph_base, const(total))
    add("ceph", M.ceph_used_bytes, ceph_base, lambda t: used_total - (data_end - t) * 1e5)
    for pool_id, name, stored, avail, objects in pools:
        pl = {**ceph_base, "pool_id": pool_id}
        add("ceph", M.ceph_pool_stored, pl, lambda t, s=stored: s - (data_end - t) * 1e4)
        add("ceph", M.ceph_pool_max_avail, pl, const(avail))
        add("ceph", M.ceph_pool_objects, pl, const(float(objects)))
        add(
            "ceph",
            M.ceph_pool_metadata,
            {**pl, "name": name, "type": "replicated", "description": "replica:1", "compression_mode": "none"},
            const(1.0),
        )
    osds = {"osd.0": (1.0, 1.0), "osd.1": (1.0, 1.0), "osd.2": (0.0, 1.0)}
    for daemon, (up, in_) in osds.items():
        add("ceph", M.ceph_osd_up, {**ceph_base, "ceph_daemon": daemon}, step(1.0, up, data_end - 1800))
        add("ceph", M.ceph_osd_in, {**ceph_base, "ceph_daemon": daemon}, const(in_))
    ceph = CephState(
        health="HEALTH_WARN",
        total_bytes=total,
        used_bytes=used_total,
        osds_total=3,
        osds_up=2,
        osds_in=3,
        pools=tuple(sorted((CephPool(n, s, a, o) for _, n, s, a, o in pools), key=lambda p: p.name)),
        checks=tuple(sorted(c for c, v in checks.items() if v)),
    )

    # ---- snmp_exporter IF-MIB: 2 spines, 4 leaves; leaf03 <-> spine02 is down, leaf04 swp2 admin-down
    ports: list[dict] = []
    for s in (1, 2):
        for leaf in range(1, 5):
            ports.append(
                {
                    "device": f"spine{s:02d}",
                    "ifname": f"swp{leaf}",
                    "index": leaf,
                    "peer": f"leaf{leaf:02d}:swp{50 + s}",
                    "speed": 400000.0,
                }
            )
    for leaf in range(1, 5):
        for s in (1, 2):
            ports.append(
                {
                    "device": f"leaf{leaf:02d}",
                    "ifname": f"swp{50 + s}",
                    "index": 50 + s,
                    "peer": f"spine{s:02d}:swp{leaf}",
                    "speed": 400000.0,
                }
            )
        for p in (1, 2):
            ports.append(
                {
                    "device": f"leaf{leaf:02d}",
                    "ifname": f"swp{p}",
                    "index": p,
                    "peer": f"gpu{leaf:02d}:eth{p - 1}",
                    "speed": 200000.0,
                }
            )
    links: list[FabricLink] = []
    for k, port in enumerate(ports):
        dev, ifname = port["device"], port["ifname"]
        link_down = (dev, ifname) in {("leaf03", "swp52"), ("spine02", "swp3")}
        admin_down = (dev, ifname) == ("leaf04", "swp2")
        oper_up = not (link_down or admin_down)
        in_rate = 0 if not oper_up else 100_000_000 + 1_000_000 * k  # bytes/s
        out_rate = 0 if not oper_up else 50_000_000 + 2_000_000 * k
        err_rate = 0.2 if (dev, ifname) == ("leaf02", "swp51") else 0.0
        labels = {
            "ifAlias": port["peer"],
            "ifDescr": ifname,
            "ifIndex": str(port["index"]),
            "ifName": ifname,
            "instance": dev,
            "job": "snmp",
        }
        add("snmp", M.if_oper_status, labels, step(1.0, 1.0 if oper_up else 2.0, data_end - 900))
        add("snmp", M.if_admin_status, labels, const(2.0 if admin_down else 1.0))
        add("snmp", M.if_speed, labels, const(port["speed"]))
        start_octets = 1e12 + k * 1e9
        add("snmp", M.if_in_octets, labels, lambda t, s0=start_octets, r=in_rate: s0 + r * (t - begin))
        add("snmp", M.if_out_octets, labels, lambda t, s0=start_octets, r=out_rate: s0 + r * (t - begin))
        add("snmp", M.if_in_errors, labels, lambda t, r=err_rate: 100.0 + r * (t - begin))
        links.append(
            FabricLink(
                dev,
                ifname,
                oper_up=oper_up,
                admin_up=not admin_down,
                speed_mbps=port["speed"],
                in_bps=in_rate * 8.0,
                out_bps=out_rate * 8.0,
                errors_per_s=err_rate,
                peer=port["peer"],
            )
        )
    fabric = FabricState(tuple(sorted(links, key=lambda x: (x.device, x.ifname))))

    # ---- job queues: prometheus-slurm-exporter partitions and Kueue ClusterQueues
    q_base = {"instance": "slurmctld:8080", "job": "slurm"}
    slurm = {"gpu": (12, 30, 48), "debug": (0, 2, 0)}
    for part, (pending, running, pgpus) in slurm.items():
        pl = {**q_base, M.slurm_label_partition: part}
        add("queues", M.slurm_pending, pl, const(float(pending)))
        add("queues", M.slurm_running, pl, const(float(running)))
        add("queues", M.slurm_pending_gpus, pl, const(float(pgpus)))
    k_base = {"instance": "kueue-controller:8080", "job": "kueue"}
    kueue = {"team-a-cq": ({"active": 5, "inadmissible": 2}, 4), "team-b-cq": ({"active": 0, "inadmissible": 0}, 1)}
    for cq, (pending_by_status, admitted) in kueue.items():
        for status, n in pending_by_status.items():
            add("queues", M.kueue_pending, {**k_base, M.kueue_label_queue: cq, "status": status}, const(float(n)))
        add("queues", M.kueue_admitted, {**k_base, M.kueue_label_queue: cq}, const(float(admitted)))
    queues = [QueueState(p, "slurm", pending_jobs=v[0], running_jobs=v[1], pending_gpus=v[2]) for p, v in slurm.items()]
    queues += [QueueState(cq, "kueue", pending_jobs=sum(v[0].values()), running_jobs=v[1]) for cq, v in kueue.items()]

    xid_host, xid_index = XID_GPU
    hot_host, hot_index = HOT_GPU
    alerts = (
        ExpectedAlert(
            "LabGpuXidError",
            "critical",
            "firing",
            "firing",
            f"GPU {xid_host}/{xid_index} reported XID {XID_CODE}",
            {M.gpu_label_host: xid_host, M.gpu_label_index: str(xid_index)},
        ),
        ExpectedAlert(
            "LabGpuDegraded",
            "warning",
            "firing",
            "suppressed",  # inhibited by the critical one
            f"GPU {xid_host}/{xid_index} is degraded",
            {M.gpu_label_host: xid_host, M.gpu_label_index: str(xid_index)},
        ),
        ExpectedAlert(
            "LabGpuHot",
            "warning",
            "pending",
            None,  # `for: 1h` keeps it pending
            f"GPU {hot_host}/{hot_index} runs at {HOT_TEMP:g} C",
            {M.gpu_label_host: hot_host, M.gpu_label_index: str(hot_index)},
        ),
        ExpectedAlert("LabNoise", "info", "firing", "suppressed", "a silenced alert"),  # silenced
    )
    truth = LabTruth(
        data_end=data_end,
        step_s=STEP_S,
        span_s=SPAN_S,
        hosts=hosts,
        gpus=tuple(sorted(gpus, key=lambda g: (g.host, g.index))),
        ceph=ceph,
        fabric=fabric,
        queues=tuple(sorted(queues, key=lambda q: (q.system, q.name))),
        series_at_end=counts,
        alerts=alerts,
        gpu_util=_gpu_util,
    )
    return series, truth
