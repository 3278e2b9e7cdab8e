"""Provides the JSON document of ``sovtui snapshot``: a ClusterView as plain data."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict
from typing import Any

from .health import alert_level, ceph_verdict, fabric_verdict
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


def view_to_json(view: ClusterView) -> dict[str, Any]:
    """The snapshot document: ``site``, ``taken_at``, ``sources`` and one key per facet."""
    sources = {
        s.name: {
            "kind": s.kind,
            "ok": bool(s.ok),
            "error": s.error or None,
            "latency_s": round(s.latency_s, 4) if s.latency_s is not None else None,
            "age_s": round(s.age(view.now), 1) if s.age(view.now) is not None else None,
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
            asdict(a) | {"labels": dict(a.labels), "active_since": rfc3339(a.active_since), "level": alert_level(a).value}
            for a in view.alerts
        ]
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
        "alerts": alerts,
    }
    return _clean(doc)
