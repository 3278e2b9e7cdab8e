"""Provides the OpenStack source's tests against the lab's real Keystone, Placement and Nova."""

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

pytestmark = pytest.mark.openstack


def _source(lab, **kwargs) -> OpenStackSource:
    site = SiteConfig(name="lab", openstack_cloud=lab.cloud, timeout_s=kwargs.pop("timeout_s", 20.0))
    return OpenStackSource(site, clouds_yaml=kwargs.pop("clouds_yaml", lab.clouds_yaml), **kwargs)


def _clouds_yaml(path: Path, auth_url: str, *, password: str, extra: str = "") -> Path:
    path.write_text(textwrap.dedent(f"""
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
        """) + extra)
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
    assert data.neutron_agents is None  # no network endpoint in the catalog


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


def test_servers_per_host(admin):
    if not admin.has_service("image"):
        pytest.skip("the lab runs no Glance: booting a server needs an image")


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
    path = _clouds_yaml(tmp_path / "clouds.yaml", lab_openstack.keystone_url, password=lab_openstack_password(),
                        extra=f"    compute_endpoint_override: {blackhole}/v2.1\n")
    src = _other(path, timeout_s=1)
    started = time.monotonic()
    with pytest.raises(Timeout, match="compute timed out"):
        src.fetch_sync()
    assert time.monotonic() - started < 5


def test_doctor(source):
    checks = source.doctor_sync()
    assert [c.check for c in checks] == ["keystone", "compute", "network"]
    assert all(c.ok for c in checks), checks
    assert "2 compute hosts" in checks[1].detail


def lab_openstack_password() -> str:
    from tests.lab.openstack import ADMIN_PASSWORD

    return ADMIN_PASSWORD
