"""Provides the metric mapping of the Prometheus source: one query per exporter family, and its samples as GPUs, Ceph, fabric and queues."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ..config import MetricMap
from ..model.types import (
    CephPool,
    CephState,
    FabricLink,
    FabricState,
    Gpu,
    QueueState,
    XidEvent,
)
from .prometheus_parse import Sample, as_bool, as_int, finite

#: label that tags the rate() branches of the fabric query so that in/out/errors stay apart
RATE_LABEL = "sovtui_series"

_CEPH_HEALTH = {0: "HEALTH_OK", 1: "HEALTH_WARN", 2: "HEALTH_ERR"}


def _host_of(labels: Mapping[str, str], host_label: str) -> str:
    host = labels.get(host_label, "")
    if host:
        return host
    instance = labels.get("instance", "")
    if instance.startswith("["):  # [::1]:9400
        return instance[1:].split("]", 1)[0]
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


def gpus_from_samples(samples: Iterable[Sample], m: MetricMap) -> tuple[tuple[Gpu, ...], int]:
    """Join dcgm-exporter series by (host, gpu index) into GPUs; also how many series had no usable index."""
    fields: dict[str, list[str]] = {}
    for metric, attr in (
        (m.gpu_util, "util"),
        (m.gpu_mem_copy_util, "mem_util"),
        (m.gpu_fb_used, "fb_used"),
        (m.gpu_fb_free, "fb_free"),
        (m.gpu_temp, "temp"),
        (m.gpu_power, "power"),
        (m.gpu_power_limit, "power_limit"),
        (m.gpu_xid, "xid"),
        (m.gpu_ecc_dbe_vol, "dbe"),
        (m.gpu_ecc_sbe_vol, "sbe"),
        (m.gpu_row_remap_failure, "remap_failure"),
        (m.gpu_row_remap_pending, "remap_pending"),
    ):
        fields.setdefault(metric, []).append(attr)
    records: dict[tuple[str, int], dict[str, Any]] = {}
    unplaced = 0
    for sample in samples:
        attrs = fields.get(sample.name)
        if not attrs:
            continue
        labels = sample.labels
        raw_index = labels.get(m.gpu_label_index, "")
        if not (raw_index.isascii() and raw_index.isdigit()):
            unplaced += 1
            continue
        key = (_host_of(labels, m.gpu_label_host), int(raw_index))
        rec = records.setdefault(key, {"workloads": set(), "at": sample.at, "uuid": "", "name": ""})
        rec["uuid"] = rec["uuid"] or labels.get(m.gpu_label_uuid, "")
        rec["name"] = rec["name"] or labels.get(m.gpu_label_model, "")
        rec["at"] = max(rec["at"], sample.at)
        pod = labels.get(m.gpu_label_pod, "")
        if pod:
            namespace = labels.get(m.gpu_label_namespace, "")
            rec["workloads"].add(f"{namespace}/{pod}" if namespace else pod)
        for attr in attrs:
            rec[attr] = sample.value
    gpus = []
    for (host, index), rec in sorted(records.items()):
        used, free = finite(rec.get("fb_used")), finite(rec.get("fb_free"))
        xid = as_int(rec.get("xid"))
        gpus.append(
            Gpu(
                host=host,
                index=index,
                uuid=rec["uuid"],
                name=rec["name"],
                util_pct=finite(rec.get("util")),
                mem_util_pct=finite(rec.get("mem_util")),
                mem_used_mib=used,
                mem_total_mib=used + free if used is not None and free is not None else None,
                temp_c=finite(rec.get("temp")),
                power_w=finite(rec.get("power")),
                power_limit_w=finite(rec.get("power_limit")),
                ecc_corrected_volatile=as_int(rec.get("sbe")),
                ecc_uncorrected_volatile=as_int(rec.get("dbe")),
                row_remap_failure=as_bool(rec.get("remap_failure")),
                row_remap_pending=as_bool(rec.get("remap_pending")),
                xids=(XidEvent(xid),) if xid else (),
                workload=", ".join(sorted(rec["workloads"])),
                sources=("dcgm",),
                observed_at=rec["at"],
            )
        )
    return tuple(gpus), unplaced


def ceph_from_samples(samples: Iterable[Sample], m: MetricMap) -> CephState | None:
    """ceph-mgr prometheus module series → the cluster's state; ``None`` when there are none."""
    health: list[int] = []
    totals: list[float] = []
    used: list[float] = []
    pools: dict[str, dict[str, Any]] = {}
    up: dict[str, bool] = {}
    in_: dict[str, bool] = {}
    checks: set[str] = set()
    seen = False
    for s in samples:
        name, labels, value = s.name, s.labels, s.value
        if name == m.ceph_health:
            seen = True
            if math.isfinite(value):
                health.append(int(value))
        elif name == m.ceph_health_detail:
            seen = True
            if value >= 1 and labels.get("name"):
                checks.add(labels["name"])
        elif name == m.ceph_total_bytes:
            seen = True
            totals.append(value)
        elif name == m.ceph_used_bytes:
            seen = True
            used.append(value)
        elif name in (m.ceph_pool_stored, m.ceph_pool_max_avail, m.ceph_pool_objects, m.ceph_pool_metadata):
            seen = True
            pool = pools.setdefault(labels.get("pool_id", ""), {})
            if name == m.ceph_pool_metadata:
                pool["name"] = labels.get("name", "")
            else:
                pool[name] = value
        elif name in (m.ceph_osd_up, m.ceph_osd_in):
            seen = True
            daemon = labels.get("ceph_daemon") or labels.get("osd", "")
            (up if name == m.ceph_osd_up else in_)[daemon] = value >= 1
    if not seen:
        return None
    known = [h for h in health if h in _CEPH_HEALTH]
    worst = max(known) if known else None
    pool_list = []
    for pool_id, p in pools.items():
        if not any(k in p for k in (m.ceph_pool_stored, m.ceph_pool_max_avail)):
            continue  # metadata only
        pool_list.append(
            CephPool(
                name=p.get("name") or f"pool {pool_id}",
                stored_bytes=finite(p.get(m.ceph_pool_stored)) or 0.0,
                max_avail_bytes=finite(p.get(m.ceph_pool_max_avail)) or 0.0,
                objects=as_int(p.get(m.ceph_pool_objects)),
            )
        )
    finite_totals = [t for t in totals if math.isfinite(t)]
    finite_used = [u for u in used if math.isfinite(u)]
    return CephState(
        health=_CEPH_HEALTH[worst] if worst is not None else "HEALTH_UNKNOWN",
        total_bytes=max(finite_totals, default=0.0),
        used_bytes=max(finite_used, default=0.0),
        osds_total=len(set(up) | set(in_)),
        osds_up=sum(up.values()),
        osds_in=sum(in_.values()),
        pools=tuple(sorted(pool_list, key=lambda p: p.name)),
        checks=tuple(sorted(checks)),
    )


def fabric_from_samples(samples: Iterable[Sample], m: MetricMap) -> FabricState | None:
    """IF-MIB series (plus the tagged rate() branches) → switch ports; ``None`` when there are none."""
    ports: dict[tuple[str, str], dict[str, Any]] = {}
    plain = {m.if_oper_status: "oper", m.if_admin_status: "admin", m.if_speed: "speed"}
    for s in samples:
        labels = s.labels
        attr = plain.get(s.name) or labels.get(RATE_LABEL)
        if attr not in ("oper", "admin", "speed", "in", "out", "errors"):
            continue
        ifname = labels.get(m.if_label_name) or labels.get("ifDescr") or labels.get("ifIndex", "")
        port = ports.setdefault((labels.get(m.if_label_device, ""), ifname), {})
        port[attr] = s.value
        if labels.get(m.if_label_alias):
            port["peer"] = labels[m.if_label_alias]
    if not ports:
        return None
    links = []
    for (device, ifname), p in sorted(ports.items()):
        if "oper" not in p:
            continue  # a counter without a status: not a port we can judge
        in_rate, out_rate = finite(p.get("in")), finite(p.get("out"))
        links.append(
            FabricLink(
                device=device,
                ifname=ifname,
                oper_up=p["oper"] == 1,
                admin_up=p.get("admin", 1) == 1,
                speed_mbps=finite(p.get("speed")),
                in_bps=in_rate * 8 if in_rate is not None else None,
                out_bps=out_rate * 8 if out_rate is not None else None,
                errors_per_s=finite(p.get("errors")),
                peer=p.get("peer", ""),
            )
        )
    return FabricState(tuple(links))


def queues_from_samples(samples: Iterable[Sample], m: MetricMap) -> tuple[QueueState, ...] | None:
    """Slurm partition and Kueue ClusterQueue series → queues; ``None`` when there are none."""
    slurm: dict[str, dict[str, float]] = {}
    kueue: dict[str, dict[str, float]] = {}
    seen = False
    for s in samples:
        value = finite(s.value) or 0.0
        if s.name in (m.slurm_pending, m.slurm_running, m.slurm_pending_gpus):
            seen = True
            q = slurm.setdefault(s.labels.get(m.slurm_label_partition, ""), {})
            q[s.name] = q.get(s.name, 0.0) + value
        elif s.name in (m.kueue_pending, m.kueue_admitted):
            seen = True
            q = kueue.setdefault(s.labels.get(m.kueue_label_queue, ""), {})
            q[s.name] = q.get(s.name, 0.0) + value  # pending is split by status: sum it
    if not seen:
        return None
    queues = [
        QueueState(
            name,
            "slurm",
            pending_jobs=round(q.get(m.slurm_pending, 0)),
            running_jobs=round(q.get(m.slurm_running, 0)),
            pending_gpus=round(q.get(m.slurm_pending_gpus, 0)),
        )
        for name, q in slurm.items()
    ]
    queues += [
        QueueState(
            name, "kueue", pending_jobs=round(q.get(m.kueue_pending, 0)), running_jobs=round(q.get(m.kueue_admitted, 0))
        )
        for name, q in kueue.items()
    ]
    return tuple(sorted(queues, key=lambda q: (q.system, q.name)))


# ================================================================================== queries
def names_selector(names: Iterable[str]) -> str:
    unique = sorted(set(names))
    return "{__name__=~" + _promql_string("|".join(_regex_quote(n) for n in unique)) + "}"


def _regex_quote(name: str) -> str:
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in name)


def _promql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def families(m: MetricMap) -> dict[str, tuple[str, ...]]:
    """Exporter family → the metric names this source reads from it."""
    return {
        "dcgm": (
            m.gpu_util,
            m.gpu_mem_copy_util,
            m.gpu_fb_used,
            m.gpu_fb_free,
            m.gpu_temp,
            m.gpu_power,
            m.gpu_power_limit,
            m.gpu_xid,
            m.gpu_ecc_dbe_vol,
            m.gpu_ecc_sbe_vol,
            m.gpu_row_remap_failure,
            m.gpu_row_remap_pending,
        ),
        "ceph": (
            m.ceph_health,
            m.ceph_health_detail,
            m.ceph_total_bytes,
            m.ceph_used_bytes,
            m.ceph_pool_stored,
            m.ceph_pool_max_avail,
            m.ceph_pool_objects,
            m.ceph_pool_metadata,
            m.ceph_osd_up,
            m.ceph_osd_in,
        ),
        "snmp": (m.if_oper_status, m.if_admin_status, m.if_speed, m.if_in_octets, m.if_out_octets, m.if_in_errors),
        "queues": (m.slurm_pending, m.slurm_running, m.slurm_pending_gpus, m.kueue_pending, m.kueue_admitted),
    }


def build_queries(m: MetricMap) -> dict[str, str]:
    """One PromQL query per exporter family (never per GPU or per port)."""
    fam = families(m)
    window = m.rate_window

    def rate(metric: str, tag: str) -> str:
        return f'label_replace(rate({metric}[{window}]), "{RATE_LABEL}", "{tag}", "", "")'

    fabric = " or ".join(
        [
            names_selector((m.if_oper_status, m.if_admin_status, m.if_speed)),
            rate(m.if_in_octets, "in"),
            rate(m.if_out_octets, "out"),
            rate(m.if_in_errors, "errors"),
        ]
    )
    return {
        "gpus": names_selector(fam["dcgm"]),
        "ceph": names_selector(fam["ceph"]),
        "fabric": fabric,
        "queues": names_selector(fam["queues"]),
    }
