"""Provides the JSON document of ``sovtui snapshot``: a ClusterView as plain data."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict
from typing import Any

from .health import alert_level, ceph_verdict, fabric_verdict
from .jobs import JobsState
from .nodes import NodeRow
from .view import ClusterView


def rfc3339(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).isoformat().replace("+00:00", "Z")


def _clean(value: Any) -> Any:
    """JSON has no NaN/Inf: turn them into null; tuples into lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def view_to_json(view: ClusterView) -> dict[str, Any]:
    """The snapshot document: ``site``, ``taken_at``, ``sources`` and one key per facet."""
    sources = {
        s.name: {
            "kind": s.kind,
            "ok": bool(s.ok),
            "error": s.error or None,
            "latency_s": round(s.latency_s, 4) if s.latency_s is not None else None,
            "age_s": _rounded(s.age(view.now), 1),
            "complete": s.complete,
            "failing": {
                p.name: {
                    "error": p.error or None,
                    "data_age_s": round(max(0.0, view.now - p.last_ok_at), 1) if p.last_ok_at is not None else None,
                }
                for p in s.failing_parts
            },
        }
        for s in view.statuses
    }
    for name, polled in (view.hosts_by_source or {}).items():
        if name in sources:
            sources[name]["hosts"] = {
                h.name: {
                    "ok": not h.error,
                    "error": h.error or None,
                    "latency_s": round(h.latency_s, 4) if h.latency_s is not None else None,
                    "backend": h.backend or None,
                    "driver": h.driver_version or None,
                }
                for h in polled
            }
    gpus = None
    if view.gpus is not None:
        gpus = []
        for row in view.gpus:
            g = row.gpu
            item = asdict(g)
            item["xids"] = [{"code": x.code, "at": rfc3339(x.at), "message": x.message} for x in g.xids]
            item["util_pct"] = g.util_pct
            item["health"] = row.verdict.level.value
            item["reasons"] = list(row.verdict.reasons)
            gpus.append(item)
    hosts = None
    if view.gpu_hosts is not None:
        hosts = [asdict(h) for h in view.gpu_hosts]
    ceph = None
    if view.ceph is not None:
        verdict = ceph_verdict(view.ceph)
        ceph = asdict(view.ceph) | {
            "used_pct": view.ceph.used_pct,
            "health_level": verdict.level.value,
            "reasons": list(verdict.reasons),
            "pools": [asdict(p) | {"used_pct": p.used_pct} for p in view.ceph.pools],
        }
    fabric = None
    if view.fabric is not None:
        verdict = fabric_verdict(view.fabric)
        fabric = {
            "links": [asdict(link) | {"down": link.down} for link in view.fabric.links],
            "links_down": len(view.fabric.links_down),
            "health": verdict.level.value,
            "reasons": list(verdict.reasons),
        }
    queues = None if view.queues is None else [asdict(q) for q in view.queues]
    alerts = None
    if view.alerts is not None:
        alerts = [
            asdict(a)
            | {"labels": dict(a.labels), "active_since": rfc3339(a.active_since), "level": alert_level(a).value}
            for a in view.alerts
        ]
    nodes = None if view.nodes is None else [node_to_json(n) for n in view.nodes]
    doc = {
        "site": view.site.name,
        "demo": view.site.demo,
        "taken_at": rfc3339(view.now),
        "sources": sources,
        "gpus": gpus,
        "gpu_hosts": hosts,
        "ceph": ceph,
        "fabric": fabric,
        "queues": queues,
        "jobs": jobs_to_json(view.jobs),
        "alerts": alerts,
        "nodes": nodes,
    }
    clean: dict[str, Any] = _clean(doc)
    return clean


def node_to_json(node: NodeRow) -> dict[str, Any]:
    """One host across its layers; a layer that does not know the host is null."""
    k, n, s = node.kube, node.nova, node.slurm
    return {
        "name": node.name,
        "status": node.status.status or None,
        "level": node.status.level.value,
        "reason": node.status.reason or None,
        "gpu": {
            "total": node.gpus_total,
            "unhealthy": node.gpus_bad,
            "health": node.gpu_level.value,
            "reason": node.gpu_reason or None,
            "probe_error": (node.gpu_host.error or None) if node.gpu_host is not None else None,
        },
        "kubernetes": None
        if k is None
        else {
            "name": k.name,
            "ready": k.ready,
            "cordoned": k.unschedulable,
            "taints": list(k.taints),
            "gpu_product": k.gpu_product or None,
            "gpus_capacity": k.gpu_capacity,
            "gpus_allocatable": k.gpu_allocatable,
            # pods not known (denied, not served, not listed yet): unknown, never 0
            "gpus_requested": None if k.pods_unknown else k.gpu_requested,
            "pods_with_gpus": None
            if k.pods_unknown
            else [{"pod": pod, "gpus": gpus} for pod, gpus in k.pods_with_gpus],
            "pods_unknown": k.pods_unknown or None,
            "conditions": [{"type": t, "status": st, "reason": r, "message": m} for t, st, r, m in k.conditions],
        },
        "nova": None
        if n is None
        else {
            "name": n.name,
            "zone": n.zone or None,
            "state": n.service_state or None,
            "status": n.service_status or None,
            "disabled_reason": n.disabled_reason or None,
            "forced_down": n.forced_down,
            "running_vms": n.running_vms,
            "servers": list(n.servers),
            "vcpus": n.vcpus,
            "vcpus_used": n.vcpus_used,
            "memory_mb": n.memory_mb,
            "memory_mb_used": n.memory_mb_used,
            # Placement never answered: unknown, not "no GPUs"
            "gpu_inventory": [{"resource_class": rc, "total": t, "used": u} for rc, t, u in n.gpu_inventory]
            if n.gpu_inventory_known
            else None,
            "gpu_inventory_note": None if n.gpu_inventory_known else "unknown: Placement has not answered",
        },
        "slurm": None
        if s is None
        else {
            "name": s.name,
            "state": s.state,
            "reason": s.reason or None,
            "partitions": list(s.partitions),
            "gpus": s.gpus,
            "gpus_allocated": s.gpus_allocated,
            "jobs": list(s.jobs),
        },
        "events": [
            {
                "source": e.source,
                "kind": e.kind,
                "object": e.object,
                "type": e.type,
                "reason": e.reason,
                "message": e.message,
                "count": e.count,
                "last_seen": rfc3339(e.last_seen),
            }
            for e in node.events
        ],
    }


def jobs_to_json(jobs: JobsState | None) -> dict[str, Any]:
    """The ``jobs`` key of a snapshot: per system its work, ``null`` for a system the site does not have."""
    jobs = jobs or JobsState()
    slurm = None
    if jobs.slurm_jobs is not None or jobs.slurm_partitions is not None:
        slurm = {
            "partitions": None
            if jobs.slurm_partitions is None
            else [asdict(p) | {"nodes_by_state": dict(p.nodes_by_state)} for p in jobs.slurm_partitions],
            "jobs": None
            if jobs.slurm_jobs is None
            else [
                asdict(j)
                | {"nodes": list(j.nodes), "submitted_at": rfc3339(j.submitted_at), "started_at": rfc3339(j.started_at)}
                for j in jobs.slurm_jobs
            ],
        }
    kubernetes = None
    if jobs.kube_jobs is not None or jobs.pending_pods is not None:
        kubernetes = {
            "jobs": None
            if jobs.kube_jobs is None
            else [asdict(j) | {"created": rfc3339(j.created)} for j in jobs.kube_jobs],
            "pending_pods": None
            if jobs.pending_pods is None
            else [asdict(p) | {"since": rfc3339(p.since)} for p in jobs.pending_pods],
        }
    kueue = None
    if jobs.kueue_queues is not None or jobs.kueue_workloads is not None:
        kueue = {
            "cluster_queues": None if jobs.kueue_queues is None else [asdict(q) for q in jobs.kueue_queues],
            "workloads": None
            if jobs.kueue_workloads is None
            else [asdict(w) | {"queued": rfc3339(w.queued)} for w in jobs.kueue_workloads],
        }
    return {"slurm": slurm, "kubernetes": kubernetes, "kueue": kueue}
