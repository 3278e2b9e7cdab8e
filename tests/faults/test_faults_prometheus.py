"""Provides the fault matrix's Prometheus and Alertmanager cells: each fault put between the real lab servers and the app."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from sovtui.app import SovtuiApp
from sovtui.model.types import SiteInfo
from sovtui.sources.alertmanager import AlertmanagerSource
from sovtui.sources.prometheus import PrometheusSource
from tests.faults.harness import check_fault
from tests.lab.faultproxy import FaultProxy

pytestmark = [pytest.mark.prometheus, pytest.mark.ui]

TIMEOUT_S = 1.5


def _proxy(url: str) -> FaultProxy:
    parts = urlsplit(url)
    return FaultProxy(parts.hostname or "127.0.0.1", parts.port or 80)


@pytest.fixture(scope="module")
def proxies(lab_prometheus):
    with _proxy(lab_prometheus.url) as prom, _proxy(lab_prometheus.alertmanager_url) as am:
        yield prom, am


def _app(lab, prom: FaultProxy, am: FaultProxy) -> SovtuiApp:
    site = lab.site(prometheus_url=f"http://{prom.url_host}", alertmanager_url=f"http://{am.url_host}",
                    timeout_s=TIMEOUT_S, refresh_s=1.0)
    return SovtuiApp(SiteInfo(site.name), [PrometheusSource(site, clock=lab.clock), AlertmanagerSource(site)], watch_tty=False)


def _gpus_shown(app) -> bool:
    return bool(app.view.gpus)


@pytest.mark.parametrize("mode,says", [
    pytest.param("refuse", ("prometheus", "refused"), marks=pytest.mark.fault("prometheus", "down"), id="down"),
])
async def test_prometheus_fault(lab_prometheus, proxies, mode, says):
    prom, am = proxies
    app = _app(lab_prometheus, prom, am)
    async with app.run_test(size=(120, 30)) as pilot:
        await check_fault(pilot, "prometheus", inject=lambda: prom.set(mode, delay_s=TIMEOUT_S * 10), heal=prom.heal,
                          says=says, kept=_gpus_shown)
