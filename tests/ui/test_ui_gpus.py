"""Provides end-to-end tests of the GPU fleet: real SSH hosts (fake NVML) and a real Prometheus, fused, in the TUI and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from sovtui.app import SovtuiApp
from sovtui.model.types import Health, SiteInfo
from sovtui.sources.prometheus import PrometheusSource
from tests.lab.fleet import Fleet

pytestmark = [pytest.mark.ssh, pytest.mark.prometheus, pytest.mark.ui]


@pytest.fixture(scope="module")
def site_fleet(lab_sshd, lab_dir, lab_prometheus):
    """gpu01 is also in the Prometheus lab (same UUIDs: DCGM and NVML fuse); gpu21 is sick; gpu22's key changed; gpu23 is down."""
    from tests.lab.fakenvml import ecc_uncorrected, healthy

    root = lab_dir / "ssh-site"
    shutil.rmtree(root, ignore_errors=True)
    fleet = Fleet(lab_sshd, root)
    try:
        shared = healthy()
        for i, gpu in enumerate(shared["gpus"]):
            gpu["uuid"] = lab_prometheus.truth.gpu("gpu01", i).uuid
        fleet.add_sshd("gpu01", shared)
        fleet.add_sshd("gpu21", ecc_uncorrected())
        fleet.add_sshd("gpu22", healthy())
        fleet.add_closed("gpu23")
        fleet.write_files(changed=("gpu22",))
        yield fleet
    finally:
        fleet.close()


def _sources(fleet: Fleet, lab) -> list:
    hosts = fleet.source(["gpu01", "gpu21", "gpu22", "gpu23"], timeout_s=5.0)
    prometheus = PrometheusSource(lab.site(alertmanager_url=None), clock=lab.clock)
    return [hosts, prometheus]


async def _poll(pilot) -> None:
    await pilot.app.hub.poll_all()
    pilot.app.rebuild_view()
    await pilot.pause()


async def test_fleet_screen_fuses_shows_sick_first_and_failing_hosts(site_fleet, lab_prometheus):
    app = SovtuiApp(SiteInfo("lab"), _sources(site_fleet, lab_prometheus), watch_tty=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await _poll(pilot)
        rows = {(r.gpu.host, r.gpu.index): r for r in app.view.gpus}
        # gpu01 is seen by both paths: one record per GPU, both sources named
        gpu01 = [r for (host, _), r in rows.items() if host == "gpu01"]
        assert len(gpu01) == 8 and all(set(r.gpu.sources) == {"dcgm", "nvml"} for r in gpu01)
        # the sick GPU on gpu21 with its reason, numbers as the host has them
        sick = rows[("gpu21", 2)]
        scenario = site_fleet.hosts["gpu21"].scenario["gpus"][2]
        assert sick.verdict.level is Health.CRIT and any("uncorrected ECC" in r for r in sick.verdict.reasons)
        assert sick.gpu.util_pct == scenario["util_gpu"] and sick.gpu.temp_c == scenario["temp"]
        errors = {h.name: h.error for h in app.view.gpu_hosts}
        assert "CHANGED" in errors["gpu22"] and errors["gpu23"]
        await pilot.press("2")
        await pilot.pause()
        keys = app.active_site_screen.table.row_keys_in_order
        hosts_in_order = [k.split(":", 1)[1] for k in keys if k.startswith("host:")]
        # crit hosts first: failing hosts and hosts with crit GPUs before the healthy gpu01's DCGM peers
        assert hosts_in_order.index("gpu21") < hosts_in_order.index("gpu01")
        assert {"gpu22", "gpu23"} <= set(hosts_in_order)
        # the rest keeps updating while two hosts fail: change gpu21 and poll again
        scn = site_fleet.hosts["gpu21"].scenario
        scn["gpus"][0]["util_gpu"] = 3
        site_fleet.set_scenario("gpu21", scn)
        await _poll(pilot)
        assert next(r for r in app.view.gpus if (r.gpu.host, r.gpu.index) == ("gpu21", 0)).gpu.util_pct == 3
        assert "CHANGED" in {h.name: h.error for h in app.view.gpu_hosts}["gpu22"]


def test_snapshot_cli_reports_every_gpu_and_each_host_error(site_fleet, lab_prometheus, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        'default_site = "lab"\n[sites.lab]\ntimeout_s = 10\n[sites.lab.ssh]\n'
        f'hosts = ["gpu21", "gpu22", "gpu23"]\nknown_hosts = "{site_fleet.known_hosts}"\ntimeout_s = 5\n'
    )
    env = dict(
        os.environ,
        SOVTUI_CONFIG=str(config),
        SOVTUI_SSH_CONFIG=str(site_fleet.ssh_config),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "sovtui", "snapshot"], env=env, capture_output=True, text=True, timeout=90
    )
    doc = json.loads(done.stdout)
    gpus = [g for g in doc["gpus"] if g["host"] == "gpu21"]
    assert len(gpus) == 8
    sick = next(g for g in gpus if g["index"] == 2)
    assert sick["health"] == "crit" and sick["sources"] == ["nvml"] and sick["ecc_uncorrected_volatile"] == 3
    for key in (
        "host",
        "index",
        "uuid",
        "name",
        "util_pct",
        "mem_used_mib",
        "mem_total_mib",
        "temp_c",
        "power_w",
        "power_limit_w",
        "ecc_uncorrected_volatile",
        "health",
        "reasons",
        "sources",
    ):
        assert key in sick
    hosts = doc["sources"]["ssh"]["hosts"]
    assert hosts["gpu21"]["ok"] and hosts["gpu21"]["backend"] == "nvml"
    assert "CHANGED" in hosts["gpu22"]["error"] and not hosts["gpu23"]["ok"]
