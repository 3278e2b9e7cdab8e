"""Provides the fused cluster view: snapshots from every source merged, judged and summarised."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import cached_property
from operator import attrgetter
from typing import Any

from .health import alert_level, alert_sort_key, ceph_verdict, fabric_verdict, gpu_verdict, queue_verdict
from .jobs import JobsState, merge_jobs
from .nodes import SHARED_FUSION, NodeRow
from .types import (
    Alert,
    CephState,
    FabricState,
    Gpu,
    GpuHost,
    Health,
    KubeNode,
    NodeEvent,
    NovaHost,
    QueueState,
    SiteInfo,
    SlurmNode,
    SourceResult,
    SourceStatus,
    Verdict,
)


@dataclass(frozen=True, slots=True)
class GpuRow:
    """A fused GPU with its verdict."""

    gpu: Gpu
    verdict: Verdict


@dataclass(frozen=True)
class ClusterView:
    """Everything the screens show, computed from the hub's results at one instant."""

    site: SiteInfo
    now: float
    statuses: tuple[SourceStatus, ...]
    gpus: tuple[GpuRow, ...] | None = None
    gpu_hosts: tuple[GpuHost, ...] | None = None
    ceph: CephState | None = None
    fabric: FabricState | None = None
    queues: tuple[QueueState, ...] | None = None
    alerts: tuple[Alert, ...] | None = None
    #: per source name, the hosts it polled (with their errors): "which host failed, and why"
    hosts_by_source: dict[str, tuple[GpuHost, ...]] | None = None
    kube_nodes: tuple[KubeNode, ...] | None = None
    nova_hosts: tuple[NovaHost, ...] | None = None
    slurm_nodes: tuple[SlurmNode, ...] | None = None
    node_events: tuple[NodeEvent, ...] | None = None
    jobs: JobsState | None = None
    #: per host layer (kubernetes, nova, slurm, gpu), the source that gave it
    layer_sources: dict[str, str] | None = None

    def status(self, name: str) -> SourceStatus | None:
        return next((s for s in self.statuses if s.name == name), None)

    @cached_property
    def nodes(self) -> tuple[NodeRow, ...] | None:
        """One row per host across every layer; computed when first asked (the Nodes screen, the snapshot)."""
        if not self.layer_sources:
            return None
        return SHARED_FUSION.fuse(
            self.kube_nodes or (),
            self.nova_hosts or (),
            self.slurm_nodes or (),
            self.gpu_hosts or (),
            self.gpus or (),
            self.node_events or (),
        )


# ---------------------------------------------------------------------------------------------
# fusion


_GPU_MERGE_SKIP = {"host", "index", "uuid", "sources", "xids", "observed_at", "lost", "throttle_reasons"}
_GPU_FIELDS = [f.name for f in fields(Gpu) if f.name not in _GPU_MERGE_SKIP]


def merge_gpus(readings: list[Gpu]) -> Gpu:
    """Merge readings of one GPU, oldest first: a newer non-empty value wins; sources are unioned."""
    base = readings[0]
    if len(readings) == 1 and _already_merged(base):
        return base  # what merging it with nothing would rebuild, field for field
    values = {name: getattr(base, name) for name in _GPU_FIELDS}
    sources: list[str] = list(base.sources)
    xids = list(base.xids)
    throttle = base.throttle_reasons
    uuid = base.uuid
    lost = base.lost
    observed = base.observed_at
    for reading in readings[1:]:
        for name in _GPU_FIELDS:
            value = getattr(reading, name)
            if value is not None and value != "" and value != ():
                values[name] = value
        for s in reading.sources:
            if s not in sources:
                sources.append(s)
        for x in reading.xids:
            if all(x.code != y.code or (x.at and y.at and x.at != y.at) for y in xids):
                xids.append(x)
        if reading.throttle_reasons or "nvml" in reading.sources:
            throttle = reading.throttle_reasons
        uuid = uuid or reading.uuid
        lost = lost or reading.lost
        observed = reading.observed_at or observed
    xids.sort(key=lambda x: x.at or 0.0)
    return Gpu(
        host=base.host,
        index=base.index,
        uuid=uuid,
        sources=tuple(sources),
        xids=tuple(xids),
        throttle_reasons=throttle,
        lost=lost,
        observed_at=observed,
        **values,
    )


def _already_merged(gpu: Gpu) -> bool:
    """True when merging ``gpu`` alone would give an equal Gpu: tuples, XIDs in time order."""
    xids = gpu.xids
    if type(xids) is not tuple or type(gpu.sources) is not tuple:
        return False
    return len(xids) < 2 or all((xids[i].at or 0.0) <= (xids[i + 1].at or 0.0) for i in range(len(xids) - 1))


_HOST_INDEX = attrgetter("host", "index")


def _fetched_at(item: tuple[float, Gpu]) -> float:
    return item[0]


def fuse_gpus(per_source: list[tuple[float, tuple[Gpu, ...]]], hosts: tuple[GpuHost, ...] = ()) -> list[Gpu]:
    """Fuse GPU lists from several sources (each with the time it was fetched) by UUID, else host/index."""
    uuids = [gpu.uuid for gpu in per_source[0][1]] if len(per_source) == 1 else []
    if uuids and all(uuids) and len(set(uuids)) == len(uuids):
        # one source, every GPU once by its UUID: each is its own group of one reading
        fused = [gpu if _already_merged(gpu) else merge_gpus([gpu]) for gpu in per_source[0][1]]
    else:
        fused = _fuse_groups(per_source)
    # a host that should have N GPUs but shows fewer: the missing ones are lost
    seen: dict[str, set[int]] = {}
    for gpu in fused:
        seen.setdefault(gpu.host, set()).add(gpu.index)
    for host in hosts:
        if host.expected_gpus and not host.error:
            have = seen.get(host.name, set())
            for index in range(host.expected_gpus):
                if index not in have:
                    fused.append(Gpu(host=host.name, index=index, lost=True, sources=("expected",)))
    fused.sort(key=_HOST_INDEX)
    return fused


def _fuse_groups(per_source: list[tuple[float, tuple[Gpu, ...]]]) -> list[Gpu]:
    groups: dict[str, list[tuple[float, Gpu]]] = {}
    alias: dict[tuple[str, int], str] = {}
    for fetched_at, gpus in per_source:
        for gpu in gpus:
            if gpu.uuid:
                key = gpu.uuid
                alias.setdefault((gpu.host, gpu.index), key)
            else:
                key = alias.get((gpu.host, gpu.index), f"{gpu.host}/{gpu.index}")
            groups.setdefault(key, []).append((gpu.observed_at or fetched_at, gpu))
    # readings keyed by host/index that later turned out to have a UUID elsewhere
    for (host, index), uuid in alias.items():
        loose = groups.pop(f"{host}/{index}", None)
        if loose:
            groups[uuid].extend(loose)
    return [
        merge_gpus([items[0][1]] if len(items) == 1 else [g for _, g in sorted(items, key=_fetched_at)])
        for items in groups.values()
    ]


def fuse_alerts(lists: list[tuple[Alert, ...]]) -> tuple[Alert, ...]:
    """Union alerts; the same alert from Alertmanager replaces the Prometheus copy (it knows silences)."""
    by_identity: dict[tuple[Any, ...], Alert] = {}
    for alerts in lists:
        for alert in alerts:
            current = by_identity.get(alert.identity)
            if current is None or (alert.source == "alertmanager" and current.source != "alertmanager"):
                by_identity[alert.identity] = alert
    return tuple(sorted(by_identity.values(), key=alert_sort_key))


#: equal verdicts are one object: a fleet has a handful of distinct ones, and fewer objects
#: that outlive a refresh make the garbage collector's full passes rarer
_VERDICTS: dict[Verdict, Verdict] = {}


def _shared_verdict(verdict: Verdict) -> Verdict:
    shared = _VERDICTS.get(verdict)
    if shared is None:
        if len(_VERDICTS) > 10_000:
            _VERDICTS.clear()
        shared = _VERDICTS[verdict] = verdict
    return shared


#: verdicts per the readings the GPU rules look at; most GPUs of a fleet read alike
_VERDICT_OF_READING: dict[tuple[Any, ...], Verdict] = {}


def _verdict(gpu: Gpu) -> Verdict:
    """``gpu_verdict(gpu)``, remembered per everything it reads (numbers the reasons print, with their type)."""
    xids, ecc, nvlink = gpu.xids, gpu.ecc_uncorrected_volatile, gpu.nvlink_down
    key = (
        gpu.lost,
        tuple((type(x.code), x.code) for x in xids) if xids else (),
        type(ecc),
        ecc,
        gpu.row_remap_failure,
        gpu.row_remap_pending,
        gpu.retired_pages_pending,
        gpu.throttle_reasons,
        gpu.temp_c,
        gpu.temp_shutdown_c,
        gpu.temp_slowdown_c,
        type(nvlink),
        nvlink,
        gpu.error,
    )
    try:
        verdict = _VERDICT_OF_READING.get(key)
    except TypeError:  # a reading that cannot be a key (a list where a tuple belongs)
        return _shared_verdict(gpu_verdict(gpu))
    if verdict is None:
        if len(_VERDICT_OF_READING) > 10_000:
            _VERDICT_OF_READING.clear()
        verdict = _VERDICT_OF_READING[key] = _shared_verdict(gpu_verdict(gpu))
    return verdict


def build_view(site: SiteInfo, results: Mapping[str, SourceResult], now: float) -> ClusterView:
    """Fuse the hub's last good data of every source into one view."""
    gpu_lists: list[tuple[float, tuple[Gpu, ...]]] = []
    hosts: dict[str, GpuHost] = {}
    hosts_by_source: dict[str, tuple[GpuHost, ...]] = {}
    ceph = fabric = None
    queues: dict[tuple[str, str], QueueState] | None = None
    alert_lists: list[tuple[Alert, ...]] = []
    any_alerts = False
    kube_nodes = nova_hosts = slurm_nodes = None
    event_lists: list[tuple[NodeEvent, ...]] = []
    job_parts: list[JobsState] = []
    layers: dict[str, str] = {}
    # freshest source last, so its singletons (ceph/fabric) win
    ordered = sorted(results.values(), key=lambda r: r.status.last_ok_at or 0.0)
    for result in ordered:
        data = result.data
        if data is None:
            continue
        fetched = result.status.last_ok_at or 0.0
        if data.gpus is not None:
            gpu_lists.append((fetched, data.gpus))
        if data.gpu_hosts is not None:
            hosts_by_source[result.status.name] = data.gpu_hosts
            for host in data.gpu_hosts:
                hosts[host.name] = host
        if data.ceph is not None:
            ceph = data.ceph
        if data.fabric is not None:
            fabric = data.fabric
        if data.queues is not None:
            # the same queue from two sources (exporter metrics and the scheduler): freshest wins
            queues = queues or {}
            for queue in data.queues:
                queues[(queue.system, queue.name)] = queue
        if data.alerts is not None:
            any_alerts = True
            alert_lists.append(data.alerts)
        name = result.status.name
        if data.kube_nodes is not None:
            kube_nodes, layers["kubernetes"] = data.kube_nodes, name
        if data.nova_hosts is not None:
            nova_hosts, layers["nova"] = data.nova_hosts, name
        if data.slurm_nodes is not None:
            slurm_nodes, layers["slurm"] = data.slurm_nodes, name
        if data.gpu_hosts is not None:
            layers["gpu"] = name  # the host prober (SSH) over the metrics that only name hosts
        elif data.gpus is not None:
            layers.setdefault("gpu", name)
        if data.node_events is not None:
            event_lists.append(data.node_events)
        if data.jobs is not None:
            job_parts.append(data.jobs)
    gpus = None
    if gpu_lists or hosts:
        fused = fuse_gpus(gpu_lists, tuple(hosts.values()))
        gpus = tuple(GpuRow(g, _verdict(g)) for g in fused)
    return ClusterView(
        site=site,
        now=now,
        statuses=tuple(r.status for r in results.values()),
        gpus=gpus,
        gpu_hosts=tuple(sorted(hosts.values(), key=lambda h: h.name)) if hosts else None,
        ceph=ceph,
        fabric=fabric,
        queues=tuple(queues.values()) if queues is not None else None,
        alerts=fuse_alerts(alert_lists) if any_alerts else None,
        hosts_by_source=hosts_by_source or None,
        kube_nodes=kube_nodes,
        nova_hosts=nova_hosts,
        slurm_nodes=slurm_nodes,
        node_events=(event_lists[0] if len(event_lists) == 1 else tuple(e for events in event_lists for e in events))
        if event_lists
        else None,
        layer_sources=layers or None,
        jobs=merge_jobs(job_parts),
    )


# ---------------------------------------------------------------------------------------------
# overview tiles


@dataclass(frozen=True, slots=True)
class Tile:
    """One Overview tile: a headline number, its level, detail lines and the screen it opens."""

    key: str
    title: str
    level: Health
    headline: str
    lines: tuple[str, ...] = ()
    target: str = ""
    known: bool = True


def _unknown(key: str, title: str, target: str, why: str) -> Tile:
    return Tile(key, title, Health.UNKNOWN, "no data", (why,), target, known=False)


def gpu_tile(view: ClusterView) -> Tile:
    if view.gpus is None:
        return _unknown("gpus", "GPUs", "gpus", "no GPU source (DCGM in Prometheus or SSH hosts)")
    counts = {Health.OK: 0, Health.WARN: 0, Health.CRIT: 0, Health.UNKNOWN: 0}
    for row in view.gpus:
        counts[row.verdict.level] += 1
    level = Health.worst(row.verdict.level for row in view.gpus)
    worst = sorted(
        (r for r in view.gpus if r.verdict.level in (Health.CRIT, Health.WARN)), key=lambda r: -r.verdict.level.rank
    )
    lines = [f"{counts[Health.OK]} healthy · {counts[Health.WARN]} degraded · {counts[Health.CRIT]} failed"]
    for row in worst[:3]:
        lines.append(f"{row.verdict.level.glyph} {row.gpu.host}/{row.gpu.index} {row.verdict.first_reason}")
    busy = [r.gpu.util_pct for r in view.gpus if r.gpu.util_pct is not None]
    if busy:
        lines.append(f"mean util {sum(busy) / len(busy):.0f}%")
    return Tile("gpus", "GPUs", level, f"{counts[Health.OK]}/{len(view.gpus)} healthy", tuple(lines), "gpus")


def ceph_tile(view: ClusterView) -> Tile:
    ceph = view.ceph
    if ceph is None:
        return _unknown("ceph", "Ceph", "ceph", "no ceph_* metrics")
    verdict = ceph_verdict(ceph)
    lines = [
        f"{ceph.health} · OSDs {ceph.osds_up}/{ceph.osds_total} up",
        f"nearfull at {ceph.nearfull_ratio:.0%}, full at {ceph.full_ratio:.0%}",
    ]
    lines += list(verdict.reasons[:2])
    return Tile("ceph", "Ceph", verdict.level, f"{ceph.used_pct:.0f}% raw used", tuple(lines), "ceph")


def fabric_tile(view: ClusterView) -> Tile:
    fabric = view.fabric
    if fabric is None:
        return _unknown("fabric", "Fabric", "fabric", "no IF-MIB (snmp_exporter) metrics")
    verdict = fabric_verdict(fabric)
    down = len(fabric.links_down)
    lines = [f"{len(fabric.devices)} switches · {len(fabric.links)} ports"]
    lines += list(verdict.reasons[:3])
    return Tile(
        "fabric", "Fabric", verdict.level, f"{down} link{'s' if down != 1 else ''} down", tuple(lines), "fabric"
    )


def queue_tile(view: ClusterView) -> Tile:
    if view.queues is None:
        return _unknown("jobs", "Queues", "jobs", "no Slurm, Kueue or Kubernetes queue source")
    pending_gpus = sum(q.pending_gpus for q in view.queues)
    pending_jobs = sum(q.pending_jobs for q in view.queues)
    verdict = queue_verdict(view.queues)
    lines = [f"{pending_jobs} jobs pending · {sum(q.running_jobs for q in view.queues)} running"]
    for q in sorted(view.queues, key=lambda q: -q.pending_gpus)[:3]:
        lines.append(f"{q.system} {q.name}: {q.pending_gpus} GPUs pending")
    return Tile("jobs", "Queues", verdict.level, f"{pending_gpus} GPUs pending", tuple(lines), "jobs")


def alert_tile(view: ClusterView) -> Tile:
    if view.alerts is None:
        return _unknown("alerts", "Alerts", "alerts", "no Prometheus or Alertmanager")
    firing = [a for a in view.alerts if a.state == "firing"]
    level = Health.worst(alert_level(a) for a in firing)
    crit = sum(1 for a in firing if alert_level(a) is Health.CRIT)
    warn = sum(1 for a in firing if alert_level(a) is Health.WARN)
    lines = [f"{crit} critical · {warn} warning · {len(view.alerts) - len(firing)} pending/silenced"]
    for a in firing[:3]:
        lines.append(f"{alert_level(a).glyph} {a.name}: {a.summary or a.label_dict.get('instance', '')}")
    return Tile("alerts", "Alerts", level, f"{len(firing)} firing", tuple(lines), "alerts")


def overview_tiles(view: ClusterView) -> tuple[Tile, ...]:
    return (gpu_tile(view), ceph_tile(view), fabric_tile(view), queue_tile(view), alert_tile(view))
