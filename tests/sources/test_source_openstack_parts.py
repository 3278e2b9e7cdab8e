"""Provides the OpenStack source's per-service tests on the lab cloud: a service that does not answer costs only its own part.

The headline case: a catalog that lists a Neutron endpoint nothing answers on. ``sovtui snapshot`` still has every
Nova host with its disabled reason and servers, names neutron under ``failing`` and exits 1; the Nodes screen
shows every host; ``sovtui doctor`` fails the network check alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sovtui.app import SovtuiApp
from sovtui.config import SiteConfig
from sovtui.model.types import SiteInfo
from sovtui.screens.nodes import NodesScreen
from sovtui.sources.base import Unreachable
from sovtui.sources.openstack import OpenStackSource
from tests.lab.openstack import ADMIN_PASSWORD, booted_server
from tests.lab.openstack_faults import catalog_region, service_proxies, write_clouds_yaml
from tests.lab.procs import free_port
from tests.lab.waits import eventually

pytestmark = pytest.mark.openstack

DEAD_REGION = "SovtuiDeadNeutron"
REASON = "lab: parts test"


@pytest.fixture(scope="module")
def dead_neutron(lab_openstack, tmp_path_factory):
    """clouds.yaml of cloud ``deadnet``: a region whose catalog lists the real Nova, Placement and Glance and a
    Neutron endpoint on a port nothing listens on."""
    urls = {
        "nova": lab_openstack.compute_url,
        "placement": lab_openstack.placement_url,
        "glance": lab_openstack.image_url,
        "neutron": f"http://127.0.0.1:{free_port()}",
    }
    path = tmp_path_factory.mktemp("deadnet") / "clouds.yaml"
    path.write_text(
        textwrap.dedent(f"""
        clouds:
          deadnet:
            auth:
              auth_url: {lab_openstack.keystone_url}
              username: admin
              password: {ADMIN_PASSWORD}
              project_name: admin
              user_domain_name: Default
              project_domain_name: Default
            region_name: {DEAD_REGION}
            interface: public
            identity_api_version: 3
        """)
    )
    with catalog_region(lab_openstack, DEAD_REGION, urls):
        yield path


@pytest.fixture(scope="module")
def proxied(lab_openstack, tmp_path_factory):
    """(clouds.yaml of cloud ``faults``, part -> FaultProxy): every service through a proxy of its own."""
    with service_proxies(lab_openstack) as proxies:
        yield write_clouds_yaml(tmp_path_factory.mktemp("proxied") / "clouds.yaml", lab_openstack, proxies), proxies


@pytest.fixture
def disabled_host(lab_openstack, admin):
    """The first compute host disabled with a reason, and a server booted on the second; undone after."""
    host, other = lab_openstack.hosts[0], lab_openstack.hosts[1]
    svc = next(admin.compute.services(binary="nova-compute", host=host))
    admin.compute.disable_service(svc, host=host, binary="nova-compute", disabled_reason=REASON)
    try:
        with booted_server(admin, lab_openstack, "lab.small", host=other, prefix="parts") as server:
            yield host, other, server.name
    finally:
        admin.compute.enable_service(svc, host=host, binary="nova-compute")


def _source(path: Path, cloud: str, timeout_s: float = 10.0) -> OpenStackSource:
    return OpenStackSource(SiteConfig(name="lab", openstack_cloud=cloud, timeout_s=timeout_s), clouds_yaml=path)


def _part(data, name):
    return next(p for p in data.parts if p.name == name)


def test_a_dead_neutron_in_the_catalog_costs_only_neutron(lab_openstack, dead_neutron, disabled_host):
    host, other, server = disabled_host
    src = _source(dead_neutron, "deadnet", timeout_s=15.0)
    try:
        data = src.fetch_sync()
    finally:
        src.close()
    assert [h.name for h in data.nova_hosts] == sorted(lab_openstack.hosts)
    hosts = {h.name: h for h in data.nova_hosts}
    assert hosts[host].service_status == "disabled" and hosts[host].disabled_reason == REASON
    assert server in hosts[other].servers
    assert data.neutron_agents is None and data.openstack_networks is None  # never answered: unknown, not empty
    assert data.openstack_images and data.openstack_flavors
    neutron = _part(data, "neutron")
    assert not neutron.ok and "unreachable" in neutron.error and neutron.last_ok_at is None
    assert [p.name for p in data.parts if p.ok] == ["keystone", "nova", "placement", "glance"]
    assert hosts[lab_openstack.hosts[0]].gpu_inventory_known and hosts[lab_openstack.hosts[0]].gpus_total > 0


def test_snapshot_keeps_every_nova_host_names_neutron_and_exits_1(lab_openstack, dead_neutron, disabled_host, tmp_path):
    host, other, server = disabled_host
    config = tmp_path / "config.toml"
    config.write_text('default_site = "lab"\n[sites.lab]\nopenstack_cloud = "deadnet"\ntimeout_s = 10\n')
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(dead_neutron), XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.run(
        [sys.executable, "-m", "sovtui", "snapshot", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert set(lab_openstack.hosts) <= set(nodes)
    assert nodes[host]["nova"]["status"] == "disabled" and nodes[host]["nova"]["disabled_reason"] == REASON
    assert server in nodes[other]["nova"]["servers"]
    openstack = doc["sources"]["openstack"]
    assert openstack["ok"] and not openstack["complete"]
    assert list(openstack["failing"]) == ["neutron"]
    assert (
        "unreachable" in openstack["failing"]["neutron"]["error"]
        and openstack["failing"]["neutron"]["data_age_s"] is None
    )
    assert ADMIN_PASSWORD not in proc.stdout + proc.stderr


def test_doctor_fails_the_network_check_alone(dead_neutron, tmp_path):
    checks = {c.check: c for c in _source(dead_neutron, "deadnet", timeout_s=5.0).doctor_sync()}
    assert list(checks) == ["keystone", "compute", "placement", "network", "image"]
    assert not checks["network"].ok and "unreachable" in checks["network"].detail and checks["network"].hint
    assert all(c.ok for name, c in checks.items() if name != "network"), checks
    config = tmp_path / "config.toml"
    config.write_text('default_site = "lab"\n[sites.lab]\nopenstack_cloud = "deadnet"\ntimeout_s = 5\n')
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(dead_neutron), XDG_STATE_HOME=str(tmp_path / "state"))
    proc = subprocess.run(
        [sys.executable, "-m", "sovtui", "doctor", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "network" in proc.stdout and "FAIL" in proc.stdout


@pytest.mark.ui
async def test_the_nodes_screen_shows_every_host_and_names_neutron(lab_openstack, dead_neutron):
    site = SiteConfig(name="lab", openstack_cloud="deadnet", timeout_s=5.0, refresh_s=1.0)
    app = SovtuiApp(SiteInfo("lab"), [OpenStackSource(site, clouds_yaml=dead_neutron)], watch_tty=False)
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("3")

        def shown():
            screen = app.active_site_screen
            if not isinstance(screen, NodesScreen):
                return ""
            keys = {r.key for r in screen.visible_rows()}
            text = str(screen.query_one("#table-status").render())
            return text if set(lab_openstack.hosts) <= keys and "neutron" in text else ""

        text = await eventually(shown, 40, "every Nova host shown and neutron named", pilot=pilot)
        assert "openstack partial" in text and "unreachable" in text and "unknown" in text


def test_a_part_keeps_its_last_data_and_a_failed_part_is_read_again_at_the_next_poll(lab_openstack, proxied):
    path, proxies = proxied
    src = _source(path, "faults")
    try:
        first = src.fetch_sync()
        assert all(p.ok for p in first.parts) and first.neutron_agents
        src.slow_every_s = 0.0
        with proxies["neutron"].fault("refuse"):
            data = src.fetch_sync()
        assert data.neutron_agents == first.neutron_agents and data.openstack_networks == first.openstack_networks
        neutron = _part(data, "neutron")
        assert not neutron.ok and neutron.last_ok_at == _part(first, "neutron").last_ok_at
        src.slow_every_s = 60.0
        # a failed part is read again at the next poll, however long slow_every_s is
        assert _part(src.fetch_sync(), "neutron").ok
    finally:
        src.close()


def test_placement_never_answered_leaves_gpus_and_usage_unknown_not_zero(lab_openstack, proxied):
    path, proxies = proxied
    src = _source(path, "faults")
    try:
        with proxies["placement"].fault("http:503"):
            data = src.fetch_sync()
    finally:
        src.close()
    placement = _part(data, "placement")
    assert not placement.ok and "503" in placement.error and placement.last_ok_at is None
    assert len(data.nova_hosts) == len(lab_openstack.hosts)
    for host in data.nova_hosts:
        assert not host.gpu_inventory_known and host.gpu_inventory == ()
        assert host.vcpus is None or host.vcpus > 0  # Nova's own numbers, or unknown: never a capacity of 0
    assert any("Placement never answered" in n for n in data.notes)


def test_nova_failing_fails_the_poll_and_names_nova(proxied):
    path, proxies = proxied
    src = _source(path, "faults", timeout_s=5.0)
    try:
        src.fetch_sync()
        with proxies["nova"].fault("refuse"):
            started = time.monotonic()
            with pytest.raises(Unreachable, match="nova unreachable"):
                src.fetch_sync()
            assert time.monotonic() - started < 5.0
    finally:
        src.close()


def test_an_endless_answer_is_cut_at_the_size_bound(proxied):
    path, proxies = proxied
    src = _source(path, "faults", timeout_s=10.0)
    try:
        src.fetch_sync()
        src.slow_every_s = 0.0
        with proxies["glance"].fault("oversize"):
            data = src.fetch_sync()
        glance = _part(data, "glance")
        assert not glance.ok and ("larger than" in glance.error or "timed out" in glance.error), glance
    finally:
        src.close()
