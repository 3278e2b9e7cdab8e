"""Provides the tests of Nova's rules: release from the compute API's maximum microversion, GPU kind, live migration."""

from __future__ import annotations

import pytest

from sovtui.model.nova import (
    NOVA_RELEASES,
    describe_release,
    gpu_kind,
    live_migration_support,
    nova_release,
    parse_microversion,
)
from sovtui.model.workload import VmRef


def _vm(gpu: str = "", status: str = "ACTIVE", task_state: str = "") -> VmRef:
    return VmRef(id="a1", name="vm-1", status=status, host="gpu-1", task_state=task_state, gpu=gpu)


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("2.96", (2, 96)),
        ("2.100", (2, 100)),
        (" 2.1 ", (2, 1)),
        ("", None),
        (None, None),
        ("2", None),
        ("latest", None),
        ("2.x", None),
        ("v2.1", None),
    ],
)
def test_parse_microversion(text, want):
    assert parse_microversion(text) == want


def test_release_table_is_ordered_and_ends_with_the_labs_nova():
    majors = [r.major for r in NOVA_RELEASES]
    assert majors == list(range(12, 35))
    versions = [r.max_microversion for r in NOVA_RELEASES]
    assert versions == sorted(versions)
    assert NOVA_RELEASES[-1].max_microversion == (2, 104) and NOVA_RELEASES[-1].series == "2026.2 Hibiscus"


@pytest.mark.parametrize(
    ("microversion", "major", "series"),
    [
        ("2.60", 17, "Queens"),
        ("2.79", 20, "Train"),
        ("2.87", 21, "Ussuri"),  # shared with Victoria: the older one is sure
        ("2.88", 23, "Wallaby"),
        ("2.90", 24, "Xena"),
        ("2.93", 26, "Zed"),
        ("2.95", 27, "2023.1 Antelope"),
        ("2.96", 29, "2024.1 Caracal"),
        ("2.97", 30, "2024.2 Dalmatian"),  # a development build of Epoxy is sure to be only past Dalmatian
        ("2.100", 31, "2025.1 Epoxy"),
        ("2.103", 33, "2026.1 Gazpacho"),
        ("2.104", 34, "2026.2 Hibiscus"),
        ("2.110", 34, "2026.2 Hibiscus"),  # newer than the table: at least its last release
    ],
)
def test_nova_release_from_max_microversion(microversion, major, series):
    release = nova_release(microversion)
    assert release is not None and (release.major, release.series) == (major, series)


@pytest.mark.parametrize("microversion", ["", "2.1", "2.11", "garbage"])
def test_nova_release_unknown(microversion):
    assert nova_release(microversion) is None


def test_describe_release():
    assert describe_release("2.96") == "Nova 29.0 or 30.0 (2024.1 Caracal, 2024.2 Dalmatian)"
    assert describe_release("2.104") == "Nova 34.0 (2026.2 Hibiscus)"
    assert describe_release("2.98") == "a development build between Nova 30.0 and 31.0"
    assert describe_release("2.200") == "newer than Nova 34.0 (2026.2 Hibiscus)"
    assert describe_release("2.5") == "older than Nova 12.0 (Liberty)"
    assert describe_release("") == "an unknown Nova release"


@pytest.mark.parametrize(
    ("specs", "kind"),
    [
        ({}, ""),
        ({"hw:cpu_policy": "dedicated"}, ""),
        ({"resources:VGPU": "1"}, "vgpu"),
        ({"resources1:VGPU": "2", "trait1:CUSTOM_A100": "required"}, "vgpu"),  # a granular request group
        ({"resources:VGPU": "0"}, ""),
        ({"pci_passthrough:alias": "a100:1"}, "pci"),
        ({"resources:PGPU": "1"}, "pci"),
        ({"resources_gpu:PGPU": "1"}, "pci"),
        ({"resources:VGPU": "1", "pci_passthrough:alias": "nic:1"}, "pci"),  # the passthrough decides
        ({"resources:VCPU": "4", "resources:MEMORY_MB": "1024"}, ""),
    ],
)
def test_gpu_kind(specs, kind):
    assert gpu_kind(specs) == kind


def test_plain_server_live_migrates_on_any_version():
    assert live_migration_support(_vm(), "2.1") == (True, "")
    assert live_migration_support(_vm(), "") == (True, "")


@pytest.mark.parametrize("status", ["SHUTOFF", "SUSPENDED", "VERIFY_RESIZE", "ERROR", ""])
def test_only_active_or_paused_servers_live_migrate(status):
    ok, why = live_migration_support(_vm(status=status), "2.104")
    assert not ok and "only ACTIVE or PAUSED" in why


def test_paused_server_live_migrates():
    assert live_migration_support(_vm(status="PAUSED"), "2.104") == (True, "")


def test_busy_server_does_not_live_migrate():
    assert live_migration_support(_vm(task_state="migrating"), "2.104") == (False, "server is busy (migrating)")


def test_vgpu_live_migration_needs_caracal():
    ok, why = live_migration_support(_vm("vgpu"), "2.95")
    assert not ok
    assert why == (
        "vGPU live migration needs Nova 29.0 (2024.1 Caracal); compute API 2.95 is "
        "Nova 27.0 or 28.0 (2023.1 Antelope, 2023.2 Bobcat)"
    )
    for microversion in ("2.96", "2.100", "2.104"):
        ok, why = live_migration_support(_vm("vgpu"), microversion)
        assert ok and "libvirt >= 8.6.0 and QEMU >= 8.1.0" in why


def test_pci_live_migration_needs_epoxy_and_live_migratable_devices():
    for microversion in ("2.93", "2.96", "2.99"):
        ok, why = live_migration_support(_vm("pci"), microversion)
        assert not ok and why.startswith("PCI passthrough live migration needs Nova 31.0 (2025.1 Epoxy); "), why
    ok, why = live_migration_support(_vm("pci"), "2.96")
    assert why.endswith("compute API 2.96 is Nova 29.0 or 30.0 (2024.1 Caracal, 2024.2 Dalmatian)")
    ok, why = live_migration_support(_vm("pci"), "2.100")
    assert ok and "live_migratable" in why and "libvirt >= 10.0.0 and QEMU >= 8.2.2" in why


def test_gpu_server_on_an_unknown_version_is_not_said_to_live_migrate():
    ok, why = live_migration_support(_vm("vgpu"), "")
    assert not ok and why == "vGPU live migration: the Nova version is unknown (compute API ?)"
    ok, why = live_migration_support(_vm("pci"), "2.1")
    assert not ok and "PCI passthrough live migration: the Nova version is unknown (compute API 2.1)" == why


def test_gpu_count_of_a_flavor():
    from sovtui.model.nova import gpu_count

    assert gpu_count({"resources:VGPU": "2"}) == 2
    assert gpu_count({"resources:PGPU": "8"}) == 8
    assert gpu_count({"pci_passthrough:alias": "a100:2,nic:1"}) == 3
    assert gpu_count({"pci_passthrough:alias": "a100"}) == 1
    assert gpu_count({"hw:cpu_policy": "dedicated", "resources:VGPU": "0"}) == 0
