"""Provides tests of the Prometheus source against a real, backfilled Prometheus and against broken servers."""

from __future__ import annotations

import math
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sovtui.config import MetricMap, SiteConfig
from sovtui.hub import Hub
from sovtui.sources.alerts import parse_time
from sovtui.sources.base import AuthError, BadAnswer, SourceError, Timeout, Unreachable
from sovtui.sources.prometheus import PrometheusSource
from sovtui.sources.prometheus_map import (
    ceph_from_samples,
    fabric_from_samples,
    families,
    gpus_from_samples,
    queues_from_samples,
)
from sovtui.sources.prometheus_parse import Sample, parse_matrix, parse_prometheus_alerts, parse_vector
from tests.lab.stubs import Answer, SilentServer, StubHttpServer, closed_port_url

lab = pytest.mark.prometheus
M = MetricMap()


@pytest.fixture(scope="module")
def fetched(lab_prometheus):
    source = PrometheusSource(lab_prometheus.site(), clock=lab_prometheus.clock)
    try:
        yield source.fetch_sync()
    finally:
        source.close()


# ------------------------------------------------------------------------- against the real Prometheus
@lab
def test_gpus_equal_the_truth(fetched, lab_prometheus):
    truth = lab_prometheus.truth
    assert fetched.notes == ()
    assert len(fetched.gpus) == 32
    assert fetched.gpus == truth.gpus


@lab
def test_planted_gpu_faults_come_through(fetched):
    by_key = {(g.host, g.index): g for g in fetched.gpus}
    assert by_key["gpu03", 5].last_xid == 79
    assert by_key["gpu02", 3].ecc_uncorrected_volatile == 2
    assert by_key["gpu01", 4].row_remap_pending is True
    assert by_key["gpu02", 6].temp_c == 87.0
    assert by_key["gpu01", 0].workload == "team-a/llm-pretrain-0"
    # a pod held gpu04/7 until an hour ago; that series is stale and must not leak in
    assert by_key["gpu04", 7].workload == ""
    assert sum(bool(g.xids) for g in fetched.gpus) == 1


@lab
def test_ceph_equals_the_truth(fetched, lab_prometheus):
    assert fetched.ceph == lab_prometheus.truth.ceph
    assert fetched.ceph.health == "HEALTH_WARN"
    assert max(p.used_pct for p in fetched.ceph.pools) > 85


@lab
def test_fabric_equals_the_truth(fetched, lab_prometheus):
    want = lab_prometheus.truth.fabric.links
    got = fetched.fabric.links
    assert [(link.device, link.ifname) for link in got] == [(link.device, link.ifname) for link in want]
    for g, w in zip(got, want, strict=True):
        assert (g.oper_up, g.admin_up, g.speed_mbps, g.peer) == (w.oper_up, w.admin_up, w.speed_mbps, w.peer), g
        assert g.in_bps == pytest.approx(w.in_bps, rel=1e-9, abs=1e-6)
        assert g.out_bps == pytest.approx(w.out_bps, rel=1e-9, abs=1e-6)
        assert g.errors_per_s == pytest.approx(w.errors_per_s, rel=1e-9, abs=1e-9)
    assert {(link.device, link.ifname) for link in fetched.fabric.links_down} == {
        ("leaf03", "swp52"),
        ("spine02", "swp3"),
    }


@lab
def test_queues_equal_the_truth(fetched, lab_prometheus):
    assert fetched.queues == lab_prometheus.truth.queues


@lab
def test_alerts_really_fire(fetched, lab_prometheus):
    got = {a.name: a for a in fetched.alerts}
    for want in lab_prometheus.truth.alerts:
        alert = got[want.name]
        assert (alert.state, alert.severity, alert.summary) == (want.prometheus_state, want.severity, want.summary)
        assert want.labels.items() <= alert.label_dict.items()
        assert alert.source == "prometheus"
        assert lab_prometheus.truth.data_end - 120 < alert.active_since <= time.time()
    assert fetched.alerts[0].severity == "critical"  # worst first


@lab
def test_version_is_the_servers(fetched, lab_prometheus):
    assert fetched.version == lab_prometheus.prometheus_version


@lab
def test_range_query_returns_the_backfilled_history(lab_prometheus):
    truth = lab_prometheus.truth
    end = truth.data_end
    source = PrometheusSource(lab_prometheus.site(), clock=lab_prometheus.clock)
    series = source.range_sync(
        f'{M.gpu_util}{{{M.gpu_label_host}="gpu01",{M.gpu_label_index}="2"}}', end - 600, end, 60
    )
    assert len(series) == 1
    assert series[0].label_dict[M.gpu_label_uuid] == truth.gpu("gpu01", 2).uuid
    want = [(t, truth.gpu_util("gpu01", 2, t)) for t in truth.sample_times(end - 600, end) if (end - t) % 60 == 0]
    assert list(series[0].points) == [(float(t), v) for t, v in want]
    # a whole-fleet range query: one series per GPU, all 11 points each
    fleet = source.range_sync(M.gpu_util, end - 600, end, "60s")
    assert len(fleet) == 32 and {len(s.points) for s in fleet} == {11}


@lab
def test_gpu_history_is_one_query_aligned_to_the_data(lab_prometheus):
    truth = lab_prometheus.truth
    gpu = truth.gpu("gpu02", 5)
    source = PrometheusSource(lab_prometheus.site(), clock=lab_prometheus.clock)
    history = source.gpu_history_sync(gpu.uuid, span_s=600, points=10)
    assert set(history) == {"util_pct", "mem_pct", "temp_c", "power_w"}
    assert all(len(v) == 10 for v in history.values())
    times = [truth.data_end - 600 + 60 * (i + 1) for i in range(10)]
    assert history["util_pct"] == [truth.gpu_util("gpu02", 5, t) for t in times]
    assert history["mem_pct"][-1] == pytest.approx(gpu.mem_pct)
    assert history["temp_c"][-1] == gpu.temp_c and history["power_w"][-1] == gpu.power_w


@lab
def test_queries_per_fetch_are_bounded_by_exporter_families(lab_prometheus):
    session = requests.Session()
    seen: list[requests.PreparedRequest] = []
    session.hooks["response"].append(lambda r, *a, **k: seen.append(r.request))
    source = PrometheusSource(lab_prometheus.site(), clock=lab_prometheus.clock, session=session)
    first = source.fetch_sync()
    first_count = len(seen)
    seen.clear()
    source.fetch_sync()
    queries = [r for r in seen if "/api/v1/query" in r.url]
    assert len(queries) == len(families(M)) == 4  # never one per GPU or per port
    assert len(seen) == 5  # 4 queries + alerts; the build info is fetched once
    assert first_count == 6
    assert not any(host in r.url for r in queries for host in lab_prometheus.truth.hosts)
    assert all(f"time={lab_prometheus.truth.data_end:.3f}" in r.url for r in queries)
    assert len(first.gpus) == 32


@lab
def test_doctor_reports_version_readiness_and_exporters(lab_prometheus):
    source = PrometheusSource(lab_prometheus.site(), clock=lab_prometheus.clock)
    checks = {c.check: c for c in source.doctor_sync()}
    assert checks["reachable"].ok and lab_prometheus.prometheus_version in checks["reachable"].detail
    assert checks["ready"].ok
    for family, count in lab_prometheus.truth.series_at_end.items():
        assert checks[family].ok, checks[family]
        assert checks[family].detail.startswith(f"found {count} series"), checks[family]
    assert checks["alerts"].ok and checks["alerts"].detail == "3 firing, 1 pending"


@lab
def test_doctor_hints_at_the_metric_map_when_an_exporter_has_no_series(lab_prometheus):
    metrics = MetricMap(
        **{
            **{f: getattr(M, f) for f in M.__dataclass_fields__},
            "ceph_health": "my_ceph_health",
            "ceph_health_detail": "x1",
            "ceph_total_bytes": "x2",
            "ceph_used_bytes": "x3",
            "ceph_pool_stored": "x4",
            "ceph_pool_max_avail": "x5",
            "ceph_pool_objects": "x6",
            "ceph_pool_metadata": "x7",
            "ceph_osd_up": "x8",
            "ceph_osd_in": "x9",
            "gpu_row_remap_failure": "renamed_remap_failure",
        }
    )
    source = PrometheusSource(lab_prometheus.site(metrics=metrics), clock=lab_prometheus.clock)
    checks = {c.check: c for c in source.doctor_sync()}
    assert not checks["ceph"].ok and checks["ceph"].detail == "no series"
    assert "[sites.lab.metrics]" in checks["ceph"].hint
    assert checks["dcgm"].ok and "missing renamed_remap_failure" in checks["dcgm"].detail
    data = source.fetch_sync()
    assert data.ceph is None  # no ceph series: the source does not know
    assert all(g.row_remap_failure is None for g in data.gpus)


@lab
async def test_hub_keeps_last_good_data_while_prometheus_is_down_and_recovers(lab_prometheus):
    server = lab_prometheus.new_prometheus("prometheus-restart")
    source = PrometheusSource(lab_prometheus.site(prometheus_url=server.url, timeout_s=2.0), clock=lab_prometheus.clock)
    hub = Hub([source])
    try:
        good = await hub.poll("prometheus")
        assert good.status.ok and good.data.gpus == lab_prometheus.truth.gpus

        server.stop()
        down = await hub.poll("prometheus")
        assert down.status.ok is False and down.status.state(time.time()) == "failing"
        assert down.status.error.startswith(f"Prometheus unreachable at {server.url}")
        assert down.data is good.data  # the last good data stays
        assert down.status.last_ok_at == good.status.last_ok_at and down.status.failures == 1

        server.start()
        back = await hub.poll("prometheus")
        assert back.status.ok and back.status.failures == 0 and back.status.error == ""
        assert back.data.gpus == lab_prometheus.truth.gpus
    finally:
        await hub.stop()
        server.stop()


# ------------------------------------------------------------------------- broken servers
def _site(url: str, timeout_s: float = 2.0) -> SiteConfig:
    return SiteConfig(name="lab", prometheus_url=url, timeout_s=timeout_s)


def _short_and_clean(exc: SourceError) -> None:
    text = str(exc)
    assert "\n" not in text and len(text) < 250 and "Traceback" not in text
    assert exc.__cause__ is None and (exc.__context__ is None or exc.__suppress_context__)


def test_timeout_when_the_server_never_answers():
    with SilentServer() as silent:
        source = PrometheusSource(_site(silent.url, timeout_s=0.5))
        started = time.monotonic()
        with pytest.raises(Timeout) as info:
            source.fetch_sync()
        elapsed = time.monotonic() - started
    assert 0.4 < elapsed < 1.5
    assert "did not answer within 0.5s" in str(info.value)
    _short_and_clean(info.value)


def test_unreachable_when_nothing_listens():
    url = closed_port_url()
    started = time.monotonic()
    with pytest.raises(Unreachable) as info:
        PrometheusSource(_site(url)).fetch_sync()
    assert time.monotonic() - started < 1.0  # no hidden retries with backoff
    assert str(info.value) == f"Prometheus unreachable at {url}: connection refused"
    _short_and_clean(info.value)
    checks = PrometheusSource(_site(url)).doctor_sync()
    assert [(c.check, c.ok) for c in checks] == [("reachable", False)] and checks[0].hint


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (Answer(200, "<html>hello</html>", "text/html"), BadAnswer, "not JSON (text/html)"),
        (
            Answer(
                200, {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": ["x"]}]}}
            ),
            BadAnswer,
            "not a [time, value] pair",
        ),
        (Answer(200, [1, 2, 3]), BadAnswer, "without data.result"),
        (
            Answer(
                422,
                {"status": "error", "errorType": "execution", "error": "query processing would load too many samples"},
            ),
            BadAnswer,
            "HTTP 422: Prometheus error (execution): query processing would load too many samples",
        ),
        (Answer(500, "boom", "text/plain"), BadAnswer, "HTTP 500: boom"),
        (Answer(503, "<html>bad gateway</html>", "text/html"), BadAnswer, "HTTP 503"),
        (Answer(401, "no", "text/plain"), AuthError, "HTTP 401"),
        (Answer(403, "no", "text/plain"), AuthError, "HTTP 403"),
    ],
)
def test_broken_answers_map_to_typed_errors(answer, error, words):
    with StubHttpServer({"*": answer}) as stub:
        started = time.monotonic()
        with pytest.raises(error) as info:
            PrometheusSource(_site(stub.url)).fetch_sync()
    assert time.monotonic() - started < 1.0
    assert words in str(info.value)
    _short_and_clean(info.value)


def test_one_broken_part_costs_only_that_part():
    empty = {"status": "success", "data": {"resultType": "vector", "result": []}}
    routes = {
        "/api/v1/query": Answer(200, empty),
        "/api/v1/alerts": Answer(404, "404 page not found", "text/plain"),
        "/api/v1/status/buildinfo": Answer(200, {"status": "success", "data": {"version": "9.9.9"}}),
    }
    with StubHttpServer(routes) as stub:
        data = PrometheusSource(_site(stub.url)).fetch_sync()
    assert (
        data.alerts is None and data.gpus is None and data.ceph is None and data.fabric is None and data.queues is None
    )
    assert data.version == "9.9.9"
    assert data.notes == ()
    failing = [(p.name, p.error, p.last_ok_at) for p in data.parts if not p.ok]
    assert failing == [("alerts", "Prometheus answered alerts with HTTP 404: 404 page not found", None)]
    assert [p.name for p in data.parts] == ["gpus", "ceph", "fabric", "queues", "alerts"]


def test_import_is_cheap_and_textual_free():
    import subprocess
    import sys

    code = (
        "import sys, sovtui.sources.prometheus, sovtui.sources.alertmanager;"
        "print(sorted(m for m in ('requests', 'prometheus_api_client', 'textual') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------------------- parsing properties
json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_any = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)
odd_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
value_text = (
    st.sampled_from(["NaN", "+Inf", "-Inf", "0", "79", "1e308", "-0", "1.5"]) | st.floats().map(repr) | odd_text
)
label_sets = st.dictionaries(odd_text, odd_text, max_size=5)


@given(json_any)
def test_parse_vector_never_raises_anything_but_bad_answer(payload):
    try:
        parse_vector(payload)
        parse_vector([payload])
    except BadAnswer:
        pass


@given(json_any)
def test_parse_matrix_and_alerts_never_raise_anything_but_bad_answer(payload):
    for parse in (parse_matrix, parse_prometheus_alerts):
        try:
            parse(payload)
        except BadAnswer:
            pass
    try:
        parse_prometheus_alerts({"status": "success", "data": {"alerts": [payload]}})
    except BadAnswer:
        pass


alert_shaped = st.fixed_dictionaries(
    {},
    optional={
        "labels": json_any | st.dictionaries(st.sampled_from(["alertname", "severity", "x"]), st.text(max_size=6)),
        "annotations": json_any | st.dictionaries(st.sampled_from(["summary", "description", "message"]), json_leaf),
        "state": json_any | st.sampled_from(["firing", "pending", "inactive"]),
        "activeAt": json_leaf
        | st.sampled_from(["2024-05-01T12:00:00.123456789Z", "0001-01-01T00:00:00Z", "2024-13-01"]),
        "value": json_leaf,
    },
)


@given(st.lists(alert_shaped, max_size=5))
def test_parse_alert_shaped_answers_never_raise_anything_but_bad_answer(alerts):
    try:
        parsed = parse_prometheus_alerts({"status": "success", "data": {"alerts": alerts}})
    except BadAnswer:
        return
    assert all(a.state in ("firing", "pending") for a in parsed)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([n for names in families(M).values() for n in names] + ["other"]),
            label_sets,
            value_text,
            st.floats(0, 2e9),
        ),
        max_size=30,
    ),
    st.dictionaries(
        st.sampled_from(
            [
                M.gpu_label_host,
                M.gpu_label_index,
                M.gpu_label_uuid,
                "pool_id",
                "name",
                "ceph_daemon",
                M.if_label_name,
                M.if_label_device,
                "sovtui_series",
                M.slurm_label_partition,
                M.kueue_label_queue,
            ]
        ),
        st.sampled_from(["0", "7", "x", "", "in", "out", "errors", "-1", "٣", "²", " 1"]),
        max_size=6,
    ),
)
@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
def test_odd_labels_and_values_parse_and_build_without_crashing(rows, common):
    result = [
        {"metric": {**labels, **common, "__name__": name}, "value": [at, value]} for name, labels, value, at in rows
    ]
    try:
        samples = parse_vector(result)
    except BadAnswer:
        return
    for sample, (_, _, value, _) in zip(samples, rows, strict=True):
        assert isinstance(sample.value, float)
        if value in ("NaN",):
            assert math.isnan(sample.value)
    gpus, _ = gpus_from_samples(samples, M)
    for gpu in gpus:
        for number in (gpu.util_pct, gpu.temp_c, gpu.power_w, gpu.mem_total_mib):
            assert number is None or math.isfinite(number)
    ceph_from_samples(samples, M)
    fabric_from_samples(samples, M)
    queues_from_samples(samples, M)


def test_nan_and_inf_become_unknown_not_numbers():
    samples = [
        Sample({"__name__": M.gpu_util, M.gpu_label_host: "h", M.gpu_label_index: "0"}, math.nan, 1.0),
        Sample({"__name__": M.gpu_temp, M.gpu_label_host: "h", M.gpu_label_index: "0"}, math.inf, 1.0),
        Sample({"__name__": M.gpu_xid, M.gpu_label_host: "h", M.gpu_label_index: "0"}, math.nan, 1.0),
    ]
    (gpu,), unplaced = gpus_from_samples(samples, M)
    assert (gpu.util_pct, gpu.temp_c, gpu.xids, unplaced) == (None, None, (), 0)


@given(st.one_of(odd_text, json_any))
def test_parse_time_never_raises(text):
    result = parse_time(text)
    assert result is None or math.isfinite(result)


def test_parse_time_reads_go_timestamps():
    assert parse_time("2024-05-01T12:00:00Z") == 1714564800.0
    assert parse_time("2024-05-01T12:00:00.123456789Z") == pytest.approx(1714564800.123456)
    assert parse_time("2024-05-01T14:00:00.5+02:00") == 1714564800.5
    assert parse_time("0001-01-01T00:00:00Z") is None
    assert parse_time("yesterday") is None
