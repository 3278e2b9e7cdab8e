"""Provides the OpenStack source's tests against the lab's real Keystone, Placement, Nova, Glance and Neutron."""

from __future__ import annotations

import socket
import textwrap
import time
from pathlib import Path

import pytest

from sovtui.config import SiteConfig
from sovtui.sources.base import AuthError, Timeout, Unreachable
from sovtui.sources.openstack import OpenStackSource
from sovtui.sources.registry import build_sources
from tests.lab.openstack import booted_server
from tests.lab.procs import wait_until

pytestmark = pytest.mark.openstack


def _source(lab, **kwargs) -> OpenStackSource:
    site = SiteConfig(name="lab", openstack_cloud=lab.cloud, timeout_s=kwargs.pop("timeout_s", 20.0))
    return OpenStackSource(site, clouds_yaml=kwargs.pop("clouds_yaml", lab.clouds_yaml), **kwargs)


def _clouds_yaml(path: Path, auth_url: str, *, password: str, extra: str = "") -> Path:
    path.write_text(
        textwrap.dedent(f"""
        clouds:
          other:
            auth:
              auth_url: {auth_url}
              username: admin
              password: {password}
              project_name: admin
              user_domain_name: Default
              project_domain_name: Default
            region_name: RegionOne
            interface: public
            identity_api_version: 3
        """)
        + extra
    )
    return path


def _other(path: Path, timeout_s: float = 20.0) -> OpenStackSource:
    return OpenStackSource(SiteConfig(name="other", openstack_cloud="other", timeout_s=timeout_s), clouds_yaml=path)


@pytest.fixture(scope="module")
def admin(lab_openstack):
    conn = lab_openstack.connect()
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def source(lab_openstack):
    src = _source(lab_openstack)
    yield src
    src.close()


@pytest.fixture
def blackhole():
    """A TCP port that accepts connections (kernel backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def _host(data, name):
    return next(h for h in data.nova_hosts if h.name == name)


def _fresh(lab):
    """What a new source sees now (nothing it read before is reused)."""
    src = _source(lab)
    try:
        return src.fetch_sync()
    finally:
        src.close()


def _fresh_until(lab, check, *, what: str, timeout_s: float = 30):
    """The first fresh view for which ``check(data)`` holds (polled each second)."""

    def attempt():
        data = _fresh(lab)
        return data if check(data) else None

    return wait_until(attempt, timeout_s=timeout_s, interval_s=1, what=what)


def _agent(data, host):
    return next(a for a in data.neutron_agents if a.host == host)


def _server(admin, lab, flavor: str, *, host: str | None = None):
    return booted_server(admin, lab, flavor, host=host, prefix="lab")


def test_registry_builds_the_openstack_source():
    sources = build_sources(SiteConfig(name="x", openstack_cloud="lab"))
    assert [s.kind for s in sources] == ["openstack"]
    assert build_sources(SiteConfig(name="x")) == []


def test_hosts_services_and_hypervisors(lab_openstack, source):
    data = source.fetch_sync()
    assert [h.name for h in data.nova_hosts] == sorted(lab_openstack.hosts)
    for host in data.nova_hosts:
        assert host.service_state == "up"
        assert host.service_status == "enabled"
        assert host.hypervisor_state == "up"
        assert not host.forced_down
        assert host.vcpus and host.vcpus > 0
        assert host.memory_mb and host.memory_mb > 0
        assert host.vcpus_used == 0
        assert host.running_vms == 0 and host.servers == ()


def test_placement_gpu_inventory_under_its_host(lab_openstack, source):
    from tests.lab.openstack import VGPU_TOTAL

    data = source.fetch_sync()
    gpu_host, other = lab_openstack.hosts
    assert _host(data, gpu_host).gpu_inventory == (("VGPU", VGPU_TOTAL, 0),)
    assert _host(data, gpu_host).gpus_total == VGPU_TOTAL
    assert _host(data, other).gpu_inventory == ()


def test_flavors_with_gpu_extra_specs(lab_openstack, source):
    data = source.fetch_sync()
    flavors = {f.name: f for f in data.openstack_flavors}
    assert set(lab_openstack.flavors) <= set(flavors)
    assert dict(flavors["lab.gpu.a100"].gpu_specs) == {"pci_passthrough:alias": "a100:1"}
    assert dict(flavors["lab.vgpu"].gpu_specs) == {"resources:VGPU": "1"}
    assert not flavors["lab.small"].is_gpu
    assert flavors["lab.gpu.a100"].vcpus == 8 and flavors["lab.gpu.a100"].ram_mb == 16384


def test_disabled_service_and_its_reason_show_in_the_next_fetch(lab_openstack, admin, source):
    host = lab_openstack.hosts[1]
    svc = next(admin.compute.services(binary="nova-compute", host=host))
    admin.compute.disable_service(svc, host=host, binary="nova-compute", disabled_reason="lab: GPU swap")
    try:
        seen = _host(source.fetch_sync(), host)
        assert (seen.service_status, seen.disabled_reason) == ("disabled", "lab: GPU swap")
    finally:
        admin.compute.enable_service(svc, host=host, binary="nova-compute")
    seen = _host(source.fetch_sync(), host)
    assert (seen.service_status, seen.disabled_reason) == ("enabled", "")


def test_forced_down_service_is_down(lab_openstack, admin, source):
    host = lab_openstack.hosts[1]
    svc = next(admin.compute.services(binary="nova-compute", host=host))
    admin.compute.update_service_forced_down(svc, host=host, binary="nova-compute", forced=True)
    try:
        seen = _host(source.fetch_sync(), host)
        assert seen.forced_down and seen.service_state == "down"
    finally:
        admin.compute.update_service_forced_down(svc, host=host, binary="nova-compute", forced=False)
    seen = _host(source.fetch_sync(), host)
    assert not seen.forced_down and seen.service_state == "up"


def test_server_booted_on_a_host_is_listed_under_it_until_deleted(lab_openstack, admin):
    host, other = lab_openstack.hosts
    vcpus, ram, _ = lab_openstack.flavors["lab.small"]
    with _server(admin, lab_openstack, "lab.small", host=host) as server:
        assert server.compute_host == host
        data = _fresh(lab_openstack)
        seen = _host(data, host)
        assert seen.servers == (server.name,) and seen.running_vms == 1
        assert (seen.vcpus_used, seen.memory_mb_used) == (vcpus, ram)
        assert _host(data, other).servers == () and _host(data, other).vcpus_used == 0
    gone = _fresh_until(
        lab_openstack, lambda d: _host(d, host).vcpus_used == 0, what="the deleted server's resources released"
    )
    assert _host(gone, host).servers == () and _host(gone, host).running_vms == 0


def test_vgpu_server_lands_on_the_vgpu_host_and_uses_one(lab_openstack, admin):
    from tests.lab.openstack import VGPU_TOTAL

    gpu_host, other = lab_openstack.hosts
    with _server(admin, lab_openstack, "lab.vgpu") as server:  # the scheduler picks: only gpu_host has VGPUs
        assert server.compute_host == gpu_host
        seen = _host(_fresh(lab_openstack), gpu_host)
        assert seen.gpu_inventory == (("VGPU", VGPU_TOTAL, 1),)
        assert (seen.gpus_used, seen.servers) == (1, (server.name,))
    gone = _fresh_until(
        lab_openstack, lambda d: _host(d, gpu_host).gpus_used == 0, what="the deleted server's vGPU released"
    )
    assert _host(gone, gpu_host).servers == ()


def test_neutron_agents_are_listed_alive(lab_openstack):
    agents = _fresh(lab_openstack).neutron_agents
    assert agents is not None
    assert [(a.host, a.agent_type, a.binary) for a in agents] == [
        (host, "Metadata agent", "neutron-metadata-agent") for host in sorted(lab_openstack.network_hosts)
    ]
    assert all(a.alive and a.admin_state_up for a in agents), agents


def test_agent_set_admin_down_is_seen(lab_openstack, admin):
    host = lab_openstack.network_hosts[0]
    agent = next(admin.network.agents(host=host))
    admin.network.update_agent(agent, is_admin_state_up=False)
    try:
        seen = _agent(_fresh(lab_openstack), host)
        assert not seen.admin_state_up and seen.alive
        assert _agent(_fresh(lab_openstack), lab_openstack.network_hosts[1]).admin_state_up
    finally:
        admin.network.update_agent(agent, is_admin_state_up=True)
    assert _agent(_fresh(lab_openstack), host).admin_state_up


def test_killed_agent_goes_dead_and_back_alive_when_restarted(lab_openstack):
    from tests.lab.openstack import AGENT_DOWN_TIME_S, REPORT_INTERVAL_S

    host, other = lab_openstack.network_hosts
    daemon = lab_openstack.agent_daemon(host)
    daemon.stop(grace_s=0)  # SIGKILL-like: no goodbye, its reports just stop
    try:
        dead = _fresh_until(
            lab_openstack,
            lambda d: not _agent(d, host).alive,
            what=f"the agent on {host} seen dead",
            timeout_s=AGENT_DOWN_TIME_S + 4 * REPORT_INTERVAL_S + 10,
        )
        assert _agent(dead, host).admin_state_up  # dead, not disabled
        assert _agent(dead, other).alive
        src = _source(lab_openstack)
        try:
            network = next(c for c in src.doctor_sync() if c.check == "network")
        finally:
            src.close()
        assert not network.ok and f"dead: neutron-metadata-agent@{host}" in network.detail and network.hint
    finally:
        daemon.start()
    _fresh_until(
        lab_openstack, lambda d: _agent(d, host).alive, what=f"the restarted agent on {host} alive", timeout_s=60
    )


def test_reauthenticates_after_its_token_is_revoked(lab_openstack, admin):
    src = _source(lab_openstack)
    try:
        src.fetch_sync()
        old = src.connection().session.get_token()
        admin.identity.delete("/auth/tokens", headers={"X-Subject-Token": old})
        with pytest.raises(Exception):  # noqa: B017 - the revoked token is really refused now
            admin.identity.get("/auth/tokens", headers={"X-Subject-Token": old}, raise_exc=True)
        data = src.fetch_sync()
        assert [h.name for h in data.nova_hosts] == sorted(lab_openstack.hosts)
        assert src.connection().session.get_token() != old
    finally:
        src.close()


def test_keystone_stopped_is_unreachable(lab_openstack, tmp_path):
    daemon, url = lab_openstack.start_extra_keystone("stopped")
    try:
        path = _clouds_yaml(tmp_path / "clouds.yaml", url, password=lab_openstack_password())
        assert _other(path).fetch_sync().nova_hosts
    finally:
        daemon.stop()
    src = _other(path, timeout_s=5)
    started = time.monotonic()
    with pytest.raises(Unreachable, match="keystone unreachable"):
        src.fetch_sync()
    assert time.monotonic() - started < 5
    checks = src.doctor_sync()
    assert not checks[0].ok and "keystone unreachable" in checks[0].detail


def test_wrong_password_is_an_auth_error(lab_openstack, tmp_path):
    path = _clouds_yaml(tmp_path / "clouds.yaml", lab_openstack.keystone_url, password="wrong")
    with pytest.raises(AuthError):
        _other(path).fetch_sync()


def test_slow_keystone_times_out(blackhole, tmp_path):
    src = _other(_clouds_yaml(tmp_path / "clouds.yaml", f"{blackhole}/v3", password="x"), timeout_s=1)
    started = time.monotonic()
    with pytest.raises(Timeout, match="keystone timed out"):
        src.fetch_sync()
    assert time.monotonic() - started < 4


def test_slow_compute_endpoint_times_out(lab_openstack, blackhole, tmp_path):
    path = _clouds_yaml(
        tmp_path / "clouds.yaml",
        lab_openstack.keystone_url,
        password=lab_openstack_password(),
        extra=f"    compute_endpoint_override: {blackhole}/v2.1\n",
    )
    src = _other(path, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(Timeout, match="nova timed out"):
        src.fetch_sync()
    assert time.monotonic() - started < 5


def test_doctor(lab_openstack, source):
    checks = source.doctor_sync()
    assert [c.check for c in checks] == ["keystone", "compute", "placement", "network", "image"]
    assert all(c.ok for c in checks), checks
    assert "2 compute hosts" in checks[1].detail
    assert checks[2].detail.endswith("VGPU 4")
    assert checks[3].detail == f"{len(lab_openstack.network_hosts)} agents, 1 networks"
    assert checks[4].detail == "1 active images of 1"


def test_networks_and_images(lab_openstack):
    from tests.lab.openstack import IMAGE_NAME, NETWORK_NAME

    data = _fresh(lab_openstack)
    (net,) = data.openstack_networks
    assert (net.name, net.id, net.network_type, net.status, net.admin_state_up) == (
        NETWORK_NAME,
        lab_openstack.network_id,
        "flat",
        "ACTIVE",
        True,
    )
    (image,) = data.openstack_images
    assert (image.name, image.id, image.status, image.disk_format) == (
        IMAGE_NAME,
        lab_openstack.image_id,
        "active",
        "raw",
    )
    assert image.size_bytes and image.size_bytes > 0


def test_slow_parts_are_read_once_a_minute_services_every_poll(lab_openstack, admin):
    """Placement, flavors, agents, networks and images are re-read every ``slow_every_s``; services at every poll."""
    src = _source(lab_openstack)
    net_host = lab_openstack.network_hosts[0]
    compute = lab_openstack.hosts[0]
    agent = next(admin.network.agents(host=net_host))
    svc = next(admin.compute.services(binary="nova-compute", host=compute))
    try:
        assert _agent(src.fetch_sync(), net_host).admin_state_up
        admin.network.update_agent(agent, is_admin_state_up=False)
        admin.compute.disable_service(svc, host=compute, binary="nova-compute", disabled_reason="lab: slow parts")
        data = src.fetch_sync()
        assert _host(data, compute).service_status == "disabled"  # at once
        assert _agent(data, net_host).admin_state_up  # not yet: read a minute ago at most
        src.slow_every_s = 0.0
        assert not _agent(src.fetch_sync(), net_host).admin_state_up
    finally:
        admin.network.update_agent(agent, is_admin_state_up=True)
        admin.compute.enable_service(svc, host=compute, binary="nova-compute")
        src.close()


def lab_openstack_password() -> str:
    from tests.lab.openstack import ADMIN_PASSWORD

    return ADMIN_PASSWORD
