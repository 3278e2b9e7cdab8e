"""Provides the fault matrix's Prometheus and Alertmanager cells: each fault put between the real lab servers and the app."""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit

import pytest

from sovtui.app import SovtuiApp
from sovtui.model.types import SiteInfo
from sovtui.sources.alertmanager import AlertmanagerSource
from sovtui.sources.prometheus import PrometheusSource
from sovtui.sources.prometheus_map import build_queries
from tests.faults.harness import check_fault
from tests.lab.faultproxy import FaultProxy

pytestmark = [pytest.mark.prometheus, pytest.mark.ui]

TIMEOUT_S = 1.5
SLOW_S = TIMEOUT_S * 10


def _proxy(url: str) -> FaultProxy:
    parts = urlsplit(url)
    return FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80)


@pytest.fixture(scope="module")
def proxies(lab_prometheus):
    with _proxy(lab_prometheus.url) as prom, _proxy(lab_prometheus.alertmanager_url) as am:
        yield prom, am


@pytest.fixture(autouse=True)
def _healed(proxies):
    """Every cell starts and ends with both servers answering, whatever happened in the one before."""
    for proxy in proxies:
        proxy.heal()
    yield
    for proxy in proxies:
        proxy.heal()


def _app(lab, prom: FaultProxy, am: FaultProxy) -> SovtuiApp:
    site = lab.site(
        prometheus_url=f"http://{prom.url_host}",
        alertmanager_url=f"http://{am.url_host}",
        timeout_s=TIMEOUT_S,
        refresh_s=0.5,
    )
    return SovtuiApp(
        SiteInfo(site.name), [PrometheusSource(site, clock=lab.clock), AlertmanagerSource(site)], watch_tty=False
    )


def _gpus_and_ceph_shown(app) -> bool:
    view = app.view
    return view is not None and len(view.gpus or ()) == 32 and view.ceph is not None and bool(view.ceph.pools)


def _alertmanager_alerts_shown(app) -> bool:
    return app.view is not None and any(a.source == "alertmanager" for a in app.view.alerts or ())


#: fault -> (proxy mode, knobs, words the header must say)
CONNECTION_FAULTS = {
    "down": ("refuse", {}, ("refused",)),
    "slow": ("slow", {"delay_s": SLOW_S}, ("did not answer within",)),
    "401": ("http:401", {}, ("HTTP 401",)),
    "403": ("http:403", {}, ("HTTP 403",)),
    "404": ("http:404", {}, ("HTTP 404",)),
    "garbage": ("garbage", {}, ("not JSON",)),
    "truncated": ("truncate", {"cut_bytes": 40}, ("cut off",)),
    "wrong-types": ("wrong-types", {}, ("without data.result",)),
    "reset": ("reset", {"cut_bytes": 40}, ("reset",)),
    "oversized": ("oversize", {}, ("size bound",)),
}


def _cells(source: str, skip: tuple[str, ...] = (), **says: tuple[str, ...]) -> list:
    return [
        pytest.param(
            fault,
            *CONNECTION_FAULTS[fault][:2],
            says.get(fault.replace("-", "_"), CONNECTION_FAULTS[fault][2]),
            marks=pytest.mark.fault(source, fault),
            id=fault,
        )
        for fault in CONNECTION_FAULTS
        if fault not in skip
    ]


@pytest.mark.parametrize("fault,mode,knobs,says", _cells("prometheus"))
async def test_prometheus_fault(lab_prometheus, proxies, fault, mode, knobs, says):
    prom, am = proxies
    app = _app(lab_prometheus, prom, am)
    if fault == "oversized":
        app.hub.sources["prometheus"].http.max_bytes = 2**20  # a bound the endless answer reaches within the timeout
    async with app.run_test(size=(120, 30)) as pilot:
        await check_fault(
            pilot,
            "prometheus",
            inject=lambda: prom.set(mode, **knobs),
            heal=prom.heal,
            says=("prometheus", *says),
            kept=_gpus_and_ceph_shown,
            state="failing",
        )


@pytest.mark.parametrize("fault,mode,knobs,says", _cells("alertmanager", skip=("404",), wrong_types=("not a list",)))
async def test_alertmanager_fault(lab_prometheus, proxies, fault, mode, knobs, says):
    prom, am = proxies
    app = _app(lab_prometheus, prom, am)
    if fault == "oversized":
        app.hub.sources["alertmanager"].http.max_bytes = 2**20
    async with app.run_test(size=(120, 30)) as pilot:
        await check_fault(
            pilot,
            "alertmanager",
            inject=lambda: am.set(mode, **knobs),
            heal=am.heal,
            says=("alertmanager", *says),
            kept=_alertmanager_alerts_shown,
            state="failing",
        )


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param("slow", marks=pytest.mark.fault("prometheus:family", "slow"), id="slow"),
        pytest.param("oversized", marks=pytest.mark.fault("prometheus:family", "oversized"), id="oversized"),
        pytest.param("bad-query", marks=pytest.mark.fault("prometheus:family", "bad-query"), id="bad-query"),
    ],
)
async def test_one_prometheus_family_fault(lab_prometheus, proxies, fault):
    prom, am = proxies
    app = _app(lab_prometheus, prom, am)
    source = app.hub.sources["prometheus"]
    good = dict(source.queries)
    if fault == "slow":  # the GPU family's query only
        inject, says = (
            (lambda: prom.set("slow", delay_s=SLOW_S, match="DCGM_FI_DEV_GPU_UTIL")),
            ("gpus", "did not answer"),
        )
    elif fault == "oversized":
        source.http.max_bytes = 2**20
        inject, says = (lambda: prom.set("oversize", match="DCGM_FI_DEV_GPU_UTIL")), ("gpus", "size bound")
    else:  # a rate window that is not a PromQL duration: the real server rejects the fabric query
        bad = build_queries(dataclasses.replace(source.metrics, rate_window="5 minutes"))

        def inject() -> None:
            source.queries = {**good, "fabric": bad["fabric"]}

        says = ("fabric", "bad_data")

    def heal() -> None:
        prom.heal()
        source.queries = good

    async with app.run_test(size=(120, 30)) as pilot:
        seen = await check_fault(
            pilot,
            "prometheus",
            inject=inject,
            heal=heal,
            says=("prometheus", *says),
            kept=_gpus_and_ceph_shown,
            state="partial",
        )
    status = seen["status"]
    assert [p.name for p in status.failing_parts] == [says[0]], "one family failing, the others answering"
