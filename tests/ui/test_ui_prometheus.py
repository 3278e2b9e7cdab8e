"""Provides end-to-end tests of the TUI on a real Prometheus and Alertmanager: Overview, Alerts, outage and recovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest

from sovtui.app import SovtuiApp
from sovtui.model.health import gpu_verdict
from sovtui.model.types import Health, SiteInfo
from sovtui.sources.alertmanager import AlertmanagerSource
from sovtui.sources.prometheus import PrometheusSource
from sovtui.widgets.header import SiteHeader
from sovtui.widgets.tile import TileWidget

pytestmark = [pytest.mark.prometheus, pytest.mark.ui]


def _app(lab, site) -> SovtuiApp:
    sources = [PrometheusSource(site, clock=lab.clock)]
    if site.alertmanager_url:
        sources.append(AlertmanagerSource(site))
    return SovtuiApp(SiteInfo(site.name, production=True), sources, watch_tty=False)


async def _poll(pilot) -> None:
    app = pilot.app
    await app.hub.poll_all()
    app.rebuild_view()
    await pilot.pause()


def _tile(app, key: str) -> TileWidget:
    return app.active_site_screen.query_one(f"#tile-{key}", TileWidget)


async def test_overview_shows_the_real_numbers(lab_prometheus):
    truth = lab_prometheus.truth
    app = _app(lab_prometheus, lab_prometheus.site())
    async with app.run_test(size=(160, 48)) as pilot:
        await _poll(pilot)
        gpus = _tile(app, "gpus")._shown
        healthy = sum(1 for g in truth.gpus if gpu_verdict(g).level is Health.OK)
        assert gpus.headline == f"{healthy}/{len(truth.gpus)} healthy"
        assert gpus.level is Health.CRIT  # the planted XID 79
        assert any("XID 79" in line or "fell off the bus" in line for line in gpus.lines)
        ceph = _tile(app, "ceph")._shown
        assert ceph.headline == f"{truth.ceph.used_pct:.0f}% raw used"
        assert ceph.level is not Health.OK
        fabric = _tile(app, "fabric")._shown
        assert fabric.headline.startswith(f"{len(truth.fabric.links_down)} link")
        alerts = _tile(app, "alerts")._shown
        assert alerts.level is Health.CRIT
        # the Alerts screen lists the firing critical alert first, silenced ones marked
        await pilot.press("7")
        await pilot.pause()
        keys = app.active_site_screen.table.row_keys_in_order
        assert keys and keys[0].startswith("LabGpuXidError")
        states = {a.name: a.state for a in app.view.alerts}
        assert states["LabNoise"] == "suppressed" and states["LabGpuHot"] == "pending"
        # a filter narrows to one alert
        await pilot.press("slash", *"degraded", "enter")
        await pilot.pause()
        assert [k.split("{")[0] for k in app.active_site_screen.table.row_keys_in_order] == ["LabGpuDegraded"]


async def test_prometheus_stopped_mid_session_is_shown_and_recovers(lab_prometheus):
    server = lab_prometheus.new_prometheus("prometheus-ui-outage")
    site = lab_prometheus.site(prometheus_url=server.url, alertmanager_url=None, timeout_s=2.0)
    app = _app(lab_prometheus, site)
    try:
        async with app.run_test(size=(120, 30)) as pilot:
            await _poll(pilot)
            before = _tile(app, "gpus")._shown
            assert before.known
            server.stop()
            await _poll(pilot)
            header = app.active_site_screen.query_one(SiteHeader).plain
            assert "prom✗" in header and f"Prometheus unreachable at {server.url}" in header
            assert _tile(app, "gpus")._shown.headline == before.headline  # the last good numbers stay
            assert "✗ prometheus: Prometheus unreachable" in "\n".join(_tile(app, "sources")._shown.lines)
            server.start()
            await _poll(pilot)
            header = app.active_site_screen.query_one(SiteHeader).plain
            assert "prom✓" in header and "unreachable" not in header
    finally:
        server.stop()


def _cli(*args: str, config: str, tmp_path) -> subprocess.CompletedProcess:
    env = dict(os.environ, SOVTUI_CONFIG=config, XDG_STATE_HOME=str(tmp_path / "state"))
    return subprocess.run([sys.executable, "-m", "sovtui", *args], env=env, capture_output=True, text=True, timeout=60)


def test_snapshot_and_doctor_cli_against_the_real_servers(lab_prometheus, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        f'default_site = "lab"\n[sites.lab]\nprometheus_url = "{lab_prometheus.url}"\n'
        f'alertmanager_url = "{lab_prometheus.alertmanager_url}"\n'
    )
    done = _cli("snapshot", config=str(config), tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["site"] == "lab" and doc["sources"]["prometheus"]["ok"] and doc["sources"]["alertmanager"]["ok"]
    names = {a["name"] for a in doc["alerts"]}
    assert {"LabGpuXidError", "LabGpuDegraded"} <= names
    assert abs(datetime.fromisoformat(doc["taken_at"]).timestamp() - time.time()) < 120
    doctor = _cli("doctor", config=str(config), tmp_path=tmp_path)
    assert "reachable" in doctor.stdout and lab_prometheus.prometheus_version.split()[0] in doctor.stdout
    # the lab's backfilled data is older than "now", so the exporters' checks may say "no series";
    # with the server stopped every check fails and the exit code says so
    dead = tmp_path / "dead.toml"
    dead.write_text('default_site = "lab"\n[sites.lab]\nprometheus_url = "http://127.0.0.1:9"\ntimeout_s = 1\n')
    failed = _cli("snapshot", config=str(dead), tmp_path=tmp_path)
    assert failed.returncode == 1
    assert "unreachable" in json.loads(failed.stdout)["sources"]["prometheus"]["error"].lower()
    assert _cli("doctor", config=str(dead), tmp_path=tmp_path).returncode != 0


async def test_gpu_detail_draws_the_last_hour_from_prometheus(lab_prometheus):
    app = _app(lab_prometheus, lab_prometheus.site(alertmanager_url=None))
    async with app.run_test(size=(120, 50)) as pilot:
        await _poll(pilot)
        await pilot.press("2", "down", "enter")
        for _ in range(100):
            await pilot.pause(0.05)
            text = " ".join(str(v) for _, v in getattr(app.screen, "fields", []))
            if "Prometheus" in text:
                break
        assert "last hour, Prometheus" in text
