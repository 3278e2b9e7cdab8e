"""Provides tests of the fused view: GPU fusion, alert dedupe, build_view, tiles and the snapshot JSON."""

from __future__ import annotations

import json
import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from sovtui.model.export import rfc3339, view_to_json
from sovtui.model.types import (
    Alert,
    CephPool,
    CephState,
    FabricLink,
    FabricState,
    Gpu,
    GpuHost,
    Health,
    QueueState,
    SiteInfo,
    SourceData,
    SourceResult,
    SourceStatus,
    XidEvent,
)
from sovtui.model.view import build_view, fuse_alerts, fuse_gpus, merge_gpus, overview_tiles

SITE = SiteInfo(name="lab")


def result(
    name: str, data: SourceData | None, *, at: float | None = 100.0, ok: bool = True, error: str = ""
) -> SourceResult:
    status = SourceStatus(
        name=name, kind=name, ok=ok, error=error, latency_s=0.01234567, last_ok_at=at, last_attempt_at=at
    )
    return SourceResult(status, data)


# ---------------------------------------------------------------------------------------------
# GPU fusion


def test_same_uuid_from_two_sources_is_one_record_freshest_wins():
    dcgm = Gpu(
        "gpu-01", 0, uuid="GPU-a", name="H100", util_pct=10.0, temp_c=50.0, power_w=300.0, sources=("prometheus",)
    )
    nvml = Gpu("gpu-01", 0, uuid="GPU-a", util_pct=90.0, temp_c=None, mem_used_mib=1000.0, sources=("nvml",))
    for per_source in ([(100.0, (dcgm,)), (200.0, (nvml,))], [(200.0, (nvml,)), (100.0, (dcgm,))]):
        fused = fuse_gpus(per_source)
        assert len(fused) == 1
        g = fused[0]
        assert g.uuid == "GPU-a"
        assert g.util_pct == 90.0, "the fresher reading wins"
        assert g.temp_c == 50.0, "an empty newer value does not erase an older one"
        assert g.power_w == 300.0 and g.mem_used_mib == 1000.0 and g.name == "H100"
        assert g.sources == ("prometheus", "nvml")


def test_observed_at_overrides_fetch_time():
    old = Gpu("h", 0, uuid="U", util_pct=1.0, observed_at=50.0, sources=("a",))
    new = Gpu("h", 0, uuid="U", util_pct=2.0, observed_at=300.0, sources=("b",))
    # source "a" was fetched later but its reading is older
    fused = fuse_gpus([(100.0, (new,)), (400.0, (old,))])
    assert fused[0].util_pct == 2.0 and fused[0].observed_at == 300.0


def test_host_index_reading_merges_into_uuid_record():
    with_uuid = Gpu("gpu-01", 3, uuid="GPU-x", util_pct=5.0, sources=("nvml",))
    no_uuid = Gpu("gpu-01", 3, temp_c=70.0, sources=("prometheus",))
    other = Gpu("gpu-01", 4, temp_c=40.0, sources=("prometheus",))
    for per_source in ([(1.0, (with_uuid,)), (2.0, (no_uuid, other))], [(2.0, (no_uuid, other)), (1.0, (with_uuid,))]):
        fused = fuse_gpus(per_source)
        assert [(g.host, g.index, g.uuid) for g in fused] == [("gpu-01", 3, "GPU-x"), ("gpu-01", 4, "")]
        g = fused[0]
        assert g.util_pct == 5.0 and g.temp_c == 70.0
        assert set(g.sources) == {"nvml", "prometheus"}


def test_expected_gpus_give_lost_placeholders():
    seen = tuple(Gpu("gpu-01", i, uuid=f"U{i}") for i in (0, 1, 2, 4, 5, 6, 7))
    hosts = (
        GpuHost("gpu-01", expected_gpus=8),
        GpuHost("gpu-02", expected_gpus=2),
        GpuHost("gpu-03", expected_gpus=4, error="unreachable"),
    )
    fused = fuse_gpus([(1.0, seen)], hosts)
    lost = [(g.host, g.index) for g in fused if g.lost]
    assert lost == [("gpu-01", 3), ("gpu-02", 0), ("gpu-02", 1)], "an unreachable host gets no placeholders"
    assert all(g.sources == ("expected",) for g in fused if g.lost)
    assert [g.index for g in fused if g.host == "gpu-01"] == list(range(8))


def test_xids_unioned_deduplicated_and_sorted():
    a = Gpu("h", 0, uuid="U", xids=(XidEvent(13, 10.0), XidEvent(79, 30.0)), sources=("a",))
    b = Gpu("h", 0, uuid="U", xids=(XidEvent(13, 10.0), XidEvent(13, 20.0), XidEvent(79, None)), sources=("b",))
    g = merge_gpus([a, b])
    assert [(x.code, x.at) for x in g.xids] == [(13, 10.0), (13, 20.0), (79, 30.0)]


def test_lost_is_sticky_and_throttle_from_nvml():
    a = Gpu("h", 0, uuid="U", lost=True, throttle_reasons=("hw_slowdown",), sources=("prometheus",))
    b = Gpu("h", 0, uuid="U", util_pct=0.0, throttle_reasons=(), sources=("nvml",))
    g = merge_gpus([a, b])
    assert g.lost is True
    assert g.throttle_reasons == (), "NVML reporting no throttling clears an older reason"
    c = Gpu("h", 0, uuid="U", throttle_reasons=(), sources=("prometheus",))
    assert merge_gpus([a, c]).throttle_reasons == ("hw_slowdown",), "a source without throttle data keeps the older"


def test_zero_is_a_value():
    a = Gpu("h", 0, uuid="U", util_pct=50.0, ecc_uncorrected_volatile=2, row_remap_pending=True)
    b = Gpu("h", 0, uuid="U", util_pct=0.0, ecc_uncorrected_volatile=0, row_remap_pending=False)
    g = merge_gpus([a, b])
    assert g.util_pct == 0.0 and g.ecc_uncorrected_volatile == 0 and g.row_remap_pending is False


# property tests

hosts_st = st.sampled_from(["gpu-01", "gpu-02", "gpu-03"])
value = st.none() | st.floats(min_value=0, max_value=100)


@st.composite
def disjoint_gpus(draw):
    """GPUs with distinct UUIDs and distinct host/index, some without UUID."""
    keys = draw(st.lists(st.tuples(hosts_st, st.integers(0, 7)), unique=True, max_size=12))
    gpus = []
    for i, (host, index) in enumerate(keys):
        uuid = draw(st.sampled_from([f"GPU-{i}", ""]))
        gpus.append(
            Gpu(
                host,
                index,
                uuid=uuid,
                util_pct=draw(value),
                temp_c=draw(value),
                sources=(draw(st.sampled_from(["p", "n"])),),
                xids=tuple(
                    XidEvent(c, float(t))
                    for t, c in enumerate(draw(st.lists(st.sampled_from([13, 79, 48]), max_size=3)))
                ),
                lost=draw(st.booleans()),
            )
        )
    return gpus


@st.composite
def split_into_sources(draw, gpus):
    n = draw(st.integers(1, 4))
    buckets: list[list[Gpu]] = [[] for _ in range(n)]
    for g in gpus:
        buckets[draw(st.integers(0, n - 1))].append(g)
    times = draw(st.lists(st.floats(0, 1e6), min_size=n, max_size=n, unique=True))
    return [(t, tuple(b)) for t, b in zip(times, buckets, strict=True)]


expected_hosts = st.lists(
    st.builds(GpuHost, name=hosts_st, expected_gpus=st.none() | st.integers(0, 8)),
    max_size=3,
    unique_by=lambda h: h.name,
)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fuse_is_order_independent_for_disjoint_gpus(data):
    gpus = data.draw(disjoint_gpus())
    per_source = data.draw(split_into_sources(gpus))
    hosts = tuple(data.draw(expected_hosts))
    fused = fuse_gpus(per_source, hosts)
    shuffled = data.draw(st.permutations(per_source))
    assert fuse_gpus(list(shuffled), hosts) == fused
    assert fuse_gpus(per_source, tuple(reversed(hosts))) == fused
    # disjoint GPUs are neither merged nor lost
    assert sorted(g.key for g in fused if "expected" not in g.sources) == sorted(g.key for g in gpus)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fuse_is_idempotent(data):
    gpus = data.draw(disjoint_gpus())
    # the same GPUs seen again by a second source, fresher, with some values changed
    again = [Gpu(g.host, g.index, uuid=g.uuid, util_pct=data.draw(value), sources=("n2",)) for g in gpus]
    hosts = tuple(data.draw(expected_hosts))
    fused = fuse_gpus([(1.0, tuple(gpus)), (2.0, tuple(again))], hosts)
    assert fuse_gpus([(3.0, tuple(fused))], hosts) == fused
    assert len({g.key for g in fused}) == len(fused)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_fuse_duplicates_collapse(data):
    gpus = data.draw(disjoint_gpus())
    fused = fuse_gpus([(1.0, tuple(gpus)), (2.0, tuple(gpus))])
    assert len(fused) == len(gpus)


# ---------------------------------------------------------------------------------------------
# alerts

LABELS = (("alertname", "GpuHot"), ("instance", "gpu-01"), ("severity", "warning"))


def test_alert_dedupe_prefers_alertmanager():
    prom = Alert("GpuHot", "warning", labels=LABELS, summary="from prometheus", source="prometheus")
    am = Alert(
        "GpuHot",
        "warning",
        state="suppressed",
        labels=tuple(reversed(LABELS)),
        summary="from am",
        source="alertmanager",
    )
    other = Alert("GpuHot", "warning", labels=(("instance", "gpu-02"),), source="prometheus")
    for lists in ([(prom, other), (am,)], [(am,), (prom, other)]):
        fused = fuse_alerts(lists)
        assert len(fused) == 2
        gpu01 = next(a for a in fused if a.label_dict.get("instance") == "gpu-01")
        assert gpu01.source == "alertmanager" and gpu01.state == "suppressed"
    assert fuse_alerts([]) == ()


def test_alerts_sorted_firing_critical_first():
    fused = fuse_alerts([(Alert("W", "warning"), Alert("P", "critical", state="pending"), Alert("C", "critical"))])
    assert [a.name for a in fused] == ["C", "W", "P"]


# ---------------------------------------------------------------------------------------------
# build_view

CEPH_OLD = CephState(health="HEALTH_WARN", total_bytes=100, used_bytes=90)
CEPH_NEW = CephState(health="HEALTH_OK", total_bytes=100, used_bytes=10, pools=(CephPool("rbd", 1, 9),))
FABRIC = FabricState(
    (
        FabricLink("leaf1", "Ethernet1", oper_up=False, peer="spine1:Ethernet1"),
        FabricLink("spine1", "Ethernet1", oper_up=True),
    )
)


def sample_results() -> dict[str, SourceResult]:
    prom = SourceData(
        gpus=(Gpu("gpu-01", 0, uuid="U0", util_pct=10.0, temp_c=math.nan, sources=("prometheus",)),),
        ceph=CEPH_NEW,
        fabric=FABRIC,
        queues=(QueueState("gpu", "slurm", pending_jobs=2, pending_gpus=8, oldest_pending_s=7200),),
        alerts=(Alert("GpuHot", "critical", labels=LABELS, active_since=50.0),),
    )
    ssh = SourceData(
        gpus=(Gpu("gpu-01", 0, uuid="U0", util_pct=80.0, sources=("nvml",)),),
        gpu_hosts=(GpuHost("gpu-01", expected_gpus=2, driver_version="550.54"),),
        ceph=CEPH_OLD,
        queues=(QueueState("team", "kueue", pending_jobs=1),),
    )
    am = SourceData(alerts=(Alert("GpuHot", "critical", labels=LABELS, source="alertmanager"),))
    return {
        "prometheus": result("prometheus", prom, at=200.0),
        "ssh": result("ssh", ssh, at=150.0),
        "alertmanager": result("alertmanager", am, at=190.0),
        "down": result("down", None, at=None, ok=False, error="unreachable: connection refused"),
    }


def test_build_view_fuses_everything():
    view = build_view(SITE, sample_results(), now=210.0)
    assert view.site == SITE and view.now == 210.0
    assert [s.name for s in view.statuses] == ["prometheus", "ssh", "alertmanager", "down"]
    assert view.status("down").ok is False and view.status("nope") is None
    assert [(r.gpu.host, r.gpu.index, r.gpu.lost) for r in view.gpus] == [("gpu-01", 0, False), ("gpu-01", 1, True)]
    assert view.gpus[0].gpu.util_pct == 10.0, "prometheus answered last"
    assert view.gpus[1].verdict.level is Health.CRIT
    assert view.gpu_hosts == (GpuHost("gpu-01", expected_gpus=2, driver_version="550.54"),)
    assert view.ceph == CEPH_NEW, "the freshest source's Ceph state wins"
    assert view.fabric == FABRIC
    assert {q.name for q in view.queues} == {"gpu", "team"}
    assert len(view.alerts) == 1 and view.alerts[0].source == "alertmanager"


def test_build_view_unknown_facets_are_none():
    view = build_view(SITE, {"down": result("down", None, at=None, ok=False)}, now=1.0)
    assert (
        view.gpus is None and view.ceph is None and view.fabric is None and view.queues is None and view.alerts is None
    )
    assert all(not t.known and t.level is Health.UNKNOWN for t in overview_tiles(view))
    empty = build_view(SITE, {"p": result("p", SourceData(alerts=(), queues=(), gpus=()))}, now=1.0)
    assert empty.alerts == () and empty.queues == () and empty.gpus == ()


def test_overview_tiles():
    view = build_view(SITE, sample_results(), now=210.0)
    tiles = {t.key: t for t in overview_tiles(view)}
    assert list(tiles) == ["gpus", "ceph", "fabric", "jobs", "alerts"]
    assert tiles["gpus"].level is Health.CRIT and tiles["gpus"].headline == "1/2 healthy"
    assert tiles["ceph"].level is Health.OK and tiles["ceph"].headline == "10% raw used"
    assert tiles["fabric"].level is Health.CRIT and tiles["fabric"].headline == "1 link down"
    assert tiles["jobs"].level is Health.WARN and tiles["jobs"].headline == "8 GPUs pending"
    assert tiles["alerts"].level is Health.CRIT and tiles["alerts"].headline == "1 firing"
    assert all(t.known and t.target for t in tiles.values())


# ---------------------------------------------------------------------------------------------
# snapshot JSON

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_view_to_json_document():
    view = build_view(SITE, sample_results(), now=1_700_000_000.5)
    doc = view_to_json(view)
    text = json.dumps(doc, allow_nan=False)  # NaN became null
    assert json.loads(text) == doc
    assert set(doc) >= {"site", "taken_at", "sources", "gpus", "ceph", "fabric", "queues", "alerts"}
    assert doc["site"] == "lab" and doc["demo"] is False
    assert RFC3339.match(doc["taken_at"]) and doc["taken_at"] == "2023-11-14T22:13:20.500000Z"
    assert doc["sources"]["prometheus"] == {
        "kind": "prometheus",
        "ok": True,
        "error": None,
        "latency_s": 0.0123,
        "age_s": 1_700_000_000.5 - 200.0,
        "complete": True,
        "failing": {},
    }
    assert doc["sources"]["down"]["ok"] is False and doc["sources"]["down"]["error"].startswith("unreachable")
    assert doc["sources"]["down"]["latency_s"] == 0.0123 and doc["sources"]["down"]["age_s"] is None
    g0 = doc["gpus"][0]
    assert g0["uuid"] == "U0" and g0["temp_c"] is None and g0["health"] == "ok" and g0["reasons"] == []
    assert doc["gpus"][1]["lost"] is True and doc["gpus"][1]["health"] == "crit"
    assert doc["ceph"]["health_level"] == "ok" and doc["ceph"]["pools"][0]["used_pct"] == 10.0
    assert doc["fabric"]["links_down"] == 1 and doc["fabric"]["health"] == "crit"
    assert doc["queues"][0]["system"] in {"slurm", "kueue"}
    alert = doc["alerts"][0]
    assert alert["labels"] == dict(LABELS) and alert["level"] == "crit" and alert["source"] == "alertmanager"


def test_rfc3339():
    assert rfc3339(None) is None
    assert rfc3339(0) == "1970-01-01T00:00:00Z"
    assert RFC3339.match(rfc3339(1234567890.25))


def test_json_of_xids_and_empty_view():
    g = Gpu("h", 0, uuid="U", xids=(XidEvent(79, 0.0, "off the bus"),), util_pct=math.inf)
    view = build_view(SiteInfo("x", demo=True), {"s": result("s", SourceData(gpus=(g,)))}, now=0.0)
    doc = view_to_json(view)
    json.dumps(doc, allow_nan=False)
    assert doc["gpus"][0]["xids"] == [{"code": 79, "at": "1970-01-01T00:00:00Z", "message": "off the bus"}]
    assert doc["gpus"][0]["util_pct"] is None and doc["demo"] is True
    empty = view_to_json(build_view(SITE, {}, now=0.0))
    assert empty["sources"] == {} and empty["gpus"] is None and empty["alerts"] is None


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_fuse_is_order_independent_for_overlapping_readings(data):
    """Readings of the same GPUs from several sources at distinct times fuse the same in any order."""
    n = data.draw(st.integers(1, 4))
    times = data.draw(st.lists(st.floats(0, 100), min_size=n, max_size=n, unique=True))
    per_source = []
    for t in times:
        gpus = []
        for index in data.draw(st.lists(st.integers(0, 2), unique=True)):
            xids = tuple(
                XidEvent(c, data.draw(st.none() | st.floats(1, 50)))
                for c in data.draw(st.lists(st.sampled_from([13, 79]), max_size=2))
            )
            gpus.append(
                Gpu(
                    "h",
                    index,
                    uuid=data.draw(st.sampled_from([f"U{index}", ""])),
                    util_pct=data.draw(value),
                    sources=(f"s{t}",),
                    xids=xids,
                    throttle_reasons=data.draw(st.sampled_from([(), ("hw_slowdown",)])),
                )
            )
        per_source.append((t, tuple(gpus)))
    fused = fuse_gpus(per_source)
    assert fuse_gpus(list(data.draw(st.permutations(per_source)))) == fused
    assert len({(g.host, g.index) for g in fused}) == len(fused), "a UUID-less reading never duplicates its GPU"


def test_snapshot_lists_each_polled_host_with_its_error():
    from sovtui.model.export import view_to_json
    from sovtui.model.types import GpuHost, SiteInfo, SourceData, SourceResult, SourceStatus
    from sovtui.model.view import build_view

    hosts = (
        GpuHost("gpu01", 8, "550.54.15", backend="nvml", latency_s=0.012),
        GpuHost("gpu02", error="host key CHANGED for gpu02"),
    )
    results = {
        "ssh": SourceResult(SourceStatus("ssh", "ssh", ok=True, last_ok_at=100.0), SourceData(gpus=(), gpu_hosts=hosts))
    }
    doc = view_to_json(build_view(SiteInfo("lab"), results, 101.0))
    polled = doc["sources"]["ssh"]["hosts"]
    assert polled["gpu01"] == {"ok": True, "error": None, "latency_s": 0.012, "backend": "nvml", "driver": "550.54.15"}
    assert polled["gpu02"]["ok"] is False and "CHANGED" in polled["gpu02"]["error"]
    # a host with an error is not turned into "missing GPUs"
    assert all(g["host"] != "gpu02" for g in doc["gpus"])
