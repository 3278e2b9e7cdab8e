"""Provides the tests of the OpenStack source's drain operations against the lab's real Nova (two fake hypervisors).

Servers are booted on a chosen host, disabled services are read back with openstacksdk, migrations are
waited for as conditions with deadlines. Every test leaves both hosts enabled and deletes its servers.
"""

from __future__ import annotations

import socket
import textwrap
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from sovtui.config import SiteConfig
from sovtui.model.nova import live_migration_support, nova_release
from sovtui.sources.base import SourceError, Timeout
from sovtui.sources.nova_ops import NovaRefused
from sovtui.sources.openstack import OpenStackSource
from tests.lab.openstack import booted_server
from tests.lab.procs import wait_until

pytestmark = pytest.mark.openstack

#: a migration on the fake driver takes a few seconds; a loaded machine, several times that
MOVE_S = 120


@pytest.fixture(scope="module")
def source(lab_openstack):
    src = OpenStackSource(
        SiteConfig(name="lab", openstack_cloud=lab_openstack.cloud, timeout_s=20.0),
        clouds_yaml=lab_openstack.clouds_yaml,
    )
    yield src
    src.close()


def _server(admin, lab, flavor: str, *, host: str | None = None):
    return booted_server(admin, lab, flavor, host=host, prefix="ops")


@contextmanager
def _disabled(source, host: str, reason: str):
    source.disable_compute(host, reason)
    try:
        yield
    finally:
        source.enable_compute(host)


def _service(admin, host: str):
    return next(s for s in admin.compute.services(binary="nova-compute", host=host) if s.host == host)


def _settled(source, server_id: str, check, *, what: str, timeout_s: float = MOVE_S):
    """The server's VmRef once ``check(vm)`` holds (read through the source each half second)."""

    def attempt():
        vm = source.server(server_id)
        return vm if vm is not None and check(vm) else None

    return wait_until(attempt, timeout_s=timeout_s, interval_s=0.5, what=what)


def _ids(vms) -> set[str]:
    return {vm.id for vm in vms}


# ---------------------------------------------------------------------- reads
def test_compute_version_is_the_max_microversion_of_the_labs_nova(lab_openstack, source):
    from tests.lab.openstack import REQUIREMENTS

    version = source.compute_version()
    assert version == "2.104"
    pinned = next(r for r in REQUIREMENTS if r.startswith("nova=="))
    assert f"{nova_release(version).major}.0.0" == pinned.removeprefix("nova==")


def test_identity_names_user_project_and_cloud_never_the_password(lab_openstack, source):
    from tests.lab.openstack import ADMIN_PASSWORD

    text = source.identity()
    assert text == "user admin in project admin (cloud lab)"
    assert ADMIN_PASSWORD not in text


def test_servers_on_lists_a_server_with_its_flavor_until_it_is_deleted(lab_openstack, admin, source):
    host, other = lab_openstack.hosts
    with _server(admin, lab_openstack, "lab.small", host=host) as server:
        compute = source.connection().compute
        requests: list[str] = []
        real_get = compute.get

        def counting_get(url, *args, **kwargs):
            requests.append(url)
            return real_get(url, *args, **kwargs)

        compute.get = counting_get
        try:
            on_host = source.servers_on(host)
        finally:
            del compute.get
        assert len(requests) == 1 and requests[0].startswith("/servers/detail"), requests  # one round trip
        (vm,) = [v for v in on_host if v.id == server.id]
        assert (vm.name, vm.status, vm.host, vm.task_state) == (server.name, "ACTIVE", host, "")
        assert (vm.flavor, vm.vcpus, vm.ram_mb, vm.gpu) == ("lab.small", 1, 512, "")
        assert vm.project == admin.current_project_id
        assert server.id not in _ids(source.servers_on(other))
        assert source.server(server.id) == vm
    assert source.server(server.id) is None
    assert server.id not in _ids(source.servers_on(host))
    assert source.servers_on("no-such-host") == ()


@pytest.mark.slow
def test_servers_on_tells_vgpu_and_pci_servers_from_their_embedded_flavor(lab_openstack, admin, source):
    """A VGPU flavor lands on the vGPU host; a PGPU flavor on a PGPU provider put under the other host here."""
    gpu_host, other = lab_openstack.hosts
    root = next(rp for rp in admin.placement.resource_providers() if rp.name == other)
    child = admin.placement.create_resource_provider(name=f"{other}_pci_0000_41_00_0", parent_provider_id=root.id)
    flavor = None
    try:
        admin.placement.create_resource_provider_inventory(child, resource_class="PGPU", total=1)
        flavor = admin.compute.create_flavor(name=f"ops.pgpu.{uuid.uuid4().hex[:6]}", vcpus=2, ram=1024, disk=1)
        admin.compute.create_flavor_extra_specs(flavor, {"resources:PGPU": "1"})
        with _server(admin, lab_openstack, "lab.vgpu") as vgpu, _server(admin, lab_openstack, flavor.name) as pgpu:
            assert (vgpu.compute_host, pgpu.compute_host) == (gpu_host, other)  # the scheduler followed the GPUs
            (seen,) = [v for v in source.servers_on(gpu_host) if v.id == vgpu.id]
            assert (seen.flavor, seen.gpu, seen.vcpus, seen.ram_mb) == ("lab.vgpu", "vgpu", 4, 8192)
            (seen,) = [v for v in source.servers_on(other) if v.id == pgpu.id]
            assert (seen.flavor, seen.gpu) == (flavor.name, "pci")
            ok, why = live_migration_support(seen, source.compute_version())
            assert ok and "live_migratable" in why  # Nova 34 can; only the device tags can say no
    finally:
        if flavor is not None:
            admin.compute.delete_flavor(flavor)
        # the deleted servers' allocations go with them; the provider can go once they have
        wait_until(
            lambda: admin.placement.delete_resource_provider(child, ignore_missing=True) or True,
            timeout_s=60,
            interval_s=0.5,
            what="the PGPU provider deleted",
        )
    assert lab_openstack.flavors["lab.gpu.a100"][2] == {"pci_passthrough:alias": "a100:1"}  # classified in unit tests


# ---------------------------------------------------------------------- service
def test_disable_compute_with_its_reason_then_enable_it(lab_openstack, admin, source):
    host, other = lab_openstack.hosts[1], lab_openstack.hosts[0]
    reason = "sovtui drain: GPU swap\n(ticket 42)"
    source.disable_compute(host, reason)
    try:
        svc = _service(admin, host)
        assert (svc.status, svc.disabled_reason) == ("disabled", "sovtui drain: GPU swap (ticket 42)")
        assert _service(admin, other).status == "enabled"
    finally:
        source.enable_compute(host)
    svc = _service(admin, host)
    assert (svc.status, svc.disabled_reason) == ("enabled", None)
    source.enable_compute(host)  # enabling an enabled service is no error
    assert _service(admin, host).status == "enabled"


def test_a_host_without_a_compute_service_is_an_error(source):
    with pytest.raises(SourceError, match="no nova-compute service on host lab-nohost"):
        source.disable_compute("lab-nohost", "x")


# ---------------------------------------------------------------------- moves
@pytest.mark.slow
def test_live_migration_then_cold_migration_and_confirm(lab_openstack, admin, source):
    a, b = lab_openstack.hosts
    with _server(admin, lab_openstack, "lab.small", host=a) as server:
        started = time.monotonic()
        source.live_migrate(server.id, target_host=b)
        vm = _settled(
            source,
            server.id,
            lambda v: v.host == b and v.status == "ACTIVE" and not v.task_state,
            what=f"live-migrated to {b}",
        )
        live_s = time.monotonic() - started
        assert server.id in _ids(source.servers_on(b)) and server.id not in _ids(source.servers_on(a))
        assert source.last_action_error(server.id, "live-migration") is None

        started = time.monotonic()
        source.cold_migrate(server.id)  # no target: the scheduler picks the other host (no resize to the same host)
        vm = _settled(source, server.id, lambda v: v.status == "VERIFY_RESIZE", what="cold-migrated (VERIFY_RESIZE)")
        assert vm.host == a
        source.confirm_resize(server.id)
        vm = _settled(source, server.id, lambda v: v.status == "ACTIVE" and not v.task_state, what="resize confirmed")
        cold_s = time.monotonic() - started
        assert vm.host == a and vm.flavor == "lab.small"
        assert source.last_action_error(server.id, "migrate") is None
        assert server.id in _ids(source.servers_on(a)) and server.id not in _ids(source.servers_on(b))
    assert live_s < MOVE_S and cold_s < MOVE_S


@pytest.mark.slow
def test_novas_refusals_come_back_in_its_own_words(lab_openstack, admin, source):
    a, b = lab_openstack.hosts
    with _server(admin, lab_openstack, "lab.small", host=a) as server:
        with pytest.raises(NovaRefused) as refused:
            source.confirm_resize(server.id)
        assert str(refused.value) == f"Cannot 'confirmResize' instance {server.id} while it is in vm_state active"
        assert refused.value.status == 409

        with pytest.raises(NovaRefused, match=r"^Compute host lab-nohost could not be found\.$"):
            source.live_migrate(server.id, target_host="lab-nohost")

        with _disabled(source, b, "sovtui test: no room elsewhere"):
            with pytest.raises(NovaRefused) as refused:
                source.live_migrate(server.id)
            assert str(refused.value) == "No valid host was found. There are not enough hosts available."
            assert refused.value.status == 400
            with pytest.raises(NovaRefused, match=r"^No valid host was found\.$"):
                source.live_migrate(server.id, target_host=b)
            # a cold migration is accepted, then fails in the conductor: only the action's events say why
            source.cold_migrate(server.id)
            why = wait_until(
                lambda: source.last_action_error(server.id, "migrate"),
                timeout_s=MOVE_S,
                interval_s=0.5,
                what="the cold migration's failure recorded",
            )
            assert why == "No valid host was found. No valid host found for cold migrate"
            vm = _settled(source, server.id, lambda v: not v.task_state, what="the server settled")
            assert (vm.status, vm.host) == ("ACTIVE", a)
        assert _service(admin, b).status == "enabled"

        admin.compute.stop_server(server)
        vm = _settled(source, server.id, lambda v: v.status == "SHUTOFF" and not v.task_state, what="stopped")
        assert live_migration_support(vm, source.compute_version())[0] is False
        with pytest.raises(NovaRefused) as refused:
            source.live_migrate(server.id)
        assert str(refused.value) == f"Cannot 'os-migrateLive' instance {server.id} while it is in vm_state stopped"
        assert refused.value.status == 409


# ---------------------------------------------------------------------- timeouts
@pytest.fixture
def blackhole():
    """A TCP port that accepts connections (kernel backlog) and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_silent_compute_endpoint_times_out_every_operation(lab_openstack, blackhole, tmp_path):
    from tests.lab.openstack import ADMIN_PASSWORD

    path = Path(tmp_path / "clouds.yaml")
    path.write_text(
        textwrap.dedent(f"""
        clouds:
          slow:
            auth:
              auth_url: {lab_openstack.keystone_url}
              username: admin
              password: {ADMIN_PASSWORD}
              project_name: admin
              user_domain_name: Default
              project_domain_name: Default
            region_name: RegionOne
            interface: public
            identity_api_version: 3
            compute_endpoint_override: {blackhole}/v2.1
        """)
    )
    src = OpenStackSource(SiteConfig(name="slow", openstack_cloud="slow", timeout_s=1.0), clouds_yaml=path)
    try:
        for name, call in (
            ("servers_on", lambda: src.servers_on("gpu01")),
            ("disable_compute", lambda: src.disable_compute("gpu01", "x")),
            ("live_migrate", lambda: src.live_migrate(str(uuid.uuid4()))),
            ("compute_version", src.compute_version),
        ):
            started = time.monotonic()
            with pytest.raises(Timeout, match="compute timed out"):
                call()
            assert time.monotonic() - started < 5, name
    finally:
        src.close()
