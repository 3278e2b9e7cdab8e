"""Provides tests of the Prometheus source's parts against the real lab Prometheus: one query family failing (a bad mapping, a slow query, an oversized answer) leaves the others, keeps its last data, and says why."""

from __future__ import annotations

import dataclasses
import time
import tracemalloc
from urllib.parse import urlsplit

import pytest

from sovtui.sources.base import BadAnswer
from sovtui.sources.http import HttpJson
from sovtui.sources.prometheus import PrometheusSource
from tests.lab.faultproxy import FaultProxy

pytestmark = pytest.mark.prometheus


@pytest.fixture(scope="module")
def proxy(lab_prometheus):
    parts = urlsplit(lab_prometheus.url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80) as p:
        yield p


def _source(lab, proxy: FaultProxy, **site) -> PrometheusSource:
    return PrometheusSource(lab.site(prometheus_url=f"http://{proxy.url_host}", **site), clock=lab.clock)


def _failing(data) -> dict[str, str]:
    return {p.name: p.error for p in data.parts if not p.ok}


def test_a_bad_mapping_costs_its_family_only_in_prometheus_words(lab_prometheus):
    m = dataclasses.replace(lab_prometheus.site().metrics, rate_window="5 minutes")  # not a PromQL duration
    source = PrometheusSource(lab_prometheus.site(metrics=m), clock=lab_prometheus.clock)
    try:
        data = source.fetch_sync()
    finally:
        source.close()
    assert set(_failing(data)) == {"fabric"}
    assert "bad_data" in _failing(data)["fabric"] and "parse error" in _failing(data)["fabric"]
    assert data.fabric is None, "a family that never answered is unknown, not empty"
    assert len(data.gpus) == 32 and data.ceph is not None and data.alerts
    assert [p.name for p in data.parts] == ["gpus", "ceph", "fabric", "queues", "alerts"]


def test_a_slow_query_times_out_alone_and_its_family_keeps_its_last_data(lab_prometheus, proxy):
    source = _source(lab_prometheus, proxy, timeout_s=1.5)
    try:
        first = source.fetch_sync()
        assert not _failing(first) and len(first.gpus) == 32
        gpus_ok_at = next(p.last_ok_at for p in first.parts if p.name == "gpus")
        with proxy.fault("slow", match="DCGM_FI_DEV_GPU_UTIL", delay_s=15.0):
            started = time.monotonic()
            second = source.fetch_sync()
            elapsed = time.monotonic() - started
        assert elapsed < 1.5, "a slow family does not hold the poll past the source's timeout"
        assert set(_failing(second)) == {"gpus"} and "did not answer within" in _failing(second)["gpus"]
        assert second.gpus == first.gpus, "the failing family keeps its last good data"
        assert next(p.last_ok_at for p in second.parts if p.name == "gpus") == gpus_ok_at
        assert second.ceph == first.ceph and second.fabric == first.fabric and second.alerts == first.alerts
        third = source.fetch_sync()
        assert not _failing(third), "the family answers again at the next poll"
    finally:
        source.close()


def test_an_endless_answer_is_cut_at_the_size_bound_without_eating_memory(lab_prometheus, proxy):
    http = HttpJson("Prometheus", f"http://{proxy.url_host}", 5.0, max_bytes=2 * 2**20)
    try:
        with proxy.fault("oversize"):
            tracemalloc.start()
            started = time.monotonic()
            with pytest.raises(BadAnswer, match="more than 2 MB: not read past the size bound"):
                http.get("/api/v1/query", params={"query": "up"})
            elapsed = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
        assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB while reading an endless answer"
        assert elapsed < 5.0
        assert http.get("/api/v1/query", params={"query": "up"})["status"] == "success", "the next answer is read whole"
    finally:
        http.close()


def test_one_family_oversized_leaves_the_others(lab_prometheus, proxy):
    source = _source(lab_prometheus, proxy, timeout_s=8.0)
    source.http.max_bytes = 2**20
    try:
        with proxy.fault("oversize", match="ceph_health_status"):
            data = source.fetch_sync()
    finally:
        source.close()
    assert set(_failing(data)) == {"ceph"} and "size bound" in _failing(data)["ceph"]
    assert len(data.gpus) == 32 and data.fabric is not None


def test_every_transport_of_the_session_is_bounded(lab_prometheus):
    source = PrometheusSource(lab_prometheus.site(), clock=lab_prometheus.clock)
    try:
        source.query_sync("up")  # the client library is made, and mounts its own adapter
        adapters = source.http.session.adapters
        assert adapters and all(hasattr(a, "too_large") for a in adapters.values()), adapters
    finally:
        source.close()
