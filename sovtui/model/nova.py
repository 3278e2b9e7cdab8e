"""Provides Nova's rules for moving a server off a host: its release from the API microversion, and whether a VM can live-migrate.

No I/O: the planner asks these with what the OpenStack source read (a :class:`~.workload.VmRef` and the
compute API's maximum microversion).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .workload import VmRef


@dataclass(frozen=True, slots=True)
class NovaRelease:
    """A Nova release: its major version, its OpenStack series name, and the maximum microversion it serves."""

    major: int
    series: str
    max_microversion: tuple[int, int]

    @property
    def label(self) -> str:
        return f"Nova {self.major}.0 ({self.series})"


#: The maximum compute API microversion of each Nova release, as Nova's "REST API Version History" says
#: (https://docs.openstack.org/nova/latest/reference/api-microversion-history.html, from
#: nova/api/openstack/compute/rest_api_version_history.rst, as shipped in nova 34.0.0; its "Maximum in" headings):
#: 2.3 Kilo, 2.12 Liberty, 2.25 Mitaka, 2.38 Newton, 2.42 Ocata, 2.53 Pike, 2.60 Queens, 2.65 Rocky,
#: 2.72 Stein, 2.79 Train, 2.87 Ussuri and Victoria, 2.88 Wallaby, 2.90 Xena and Yoga, 2.93 Zed,
#: 2.95 2023.1 Antelope and 2023.2 Bobcat, 2.96 2024.1 Caracal and 2024.2 Dalmatian,
#: 2.100 2025.1 Epoxy and 2025.2 Flamingo, 2.103 2026.1 Gazpacho, 2.104 2026.2 Hibiscus.
#: Nova's major version counts the series from Liberty (12.0) on; Kilo was 2015.1.
NOVA_RELEASES: tuple[NovaRelease, ...] = (
    NovaRelease(12, "Liberty", (2, 12)),
    NovaRelease(13, "Mitaka", (2, 25)),
    NovaRelease(14, "Newton", (2, 38)),
    NovaRelease(15, "Ocata", (2, 42)),
    NovaRelease(16, "Pike", (2, 53)),
    NovaRelease(17, "Queens", (2, 60)),
    NovaRelease(18, "Rocky", (2, 65)),
    NovaRelease(19, "Stein", (2, 72)),
    NovaRelease(20, "Train", (2, 79)),
    NovaRelease(21, "Ussuri", (2, 87)),
    NovaRelease(22, "Victoria", (2, 87)),
    NovaRelease(23, "Wallaby", (2, 88)),
    NovaRelease(24, "Xena", (2, 90)),
    NovaRelease(25, "Yoga", (2, 90)),
    NovaRelease(26, "Zed", (2, 93)),
    NovaRelease(27, "2023.1 Antelope", (2, 95)),
    NovaRelease(28, "2023.2 Bobcat", (2, 95)),
    NovaRelease(29, "2024.1 Caracal", (2, 96)),
    NovaRelease(30, "2024.2 Dalmatian", (2, 96)),
    NovaRelease(31, "2025.1 Epoxy", (2, 100)),
    NovaRelease(32, "2025.2 Flamingo", (2, 100)),
    NovaRelease(33, "2026.1 Gazpacho", (2, 103)),
    NovaRelease(34, "2026.2 Hibiscus", (2, 104)),
)

#: vGPU (mediated device) live migration: Nova 29.0 (2024.1 Caracal), with libvirt and QEMU at least these
#: on both hosts (nova/virt/libvirt/driver.py MIN_MDEV_LIVEMIG_LIBVIRT_VERSION / _QEMU_VERSION)
VGPU_LIVE_MIGRATION_NOVA = 29
VGPU_LIVE_MIGRATION_LIBVIRT = "8.6.0"
VGPU_LIVE_MIGRATION_QEMU = "8.1.0"
#: PCI passthrough live migration: Nova 31.0 (2025.1 Epoxy), only for devices tagged ``live_migratable`` in
#: ``[pci] device_spec``, with libvirt >= 10.0.0 and QEMU >= 8.2.2 (vfio-pci variant drivers)
PCI_LIVE_MIGRATION_NOVA = 31
PCI_LIVE_MIGRATION_LIBVIRT = "10.0.0"
PCI_LIVE_MIGRATION_QEMU = "8.2.2"
#: the server statuses Nova live-migrates (nova.compute.api.API.live_migrate: vm_state active or paused)
LIVE_MIGRATABLE_STATUSES = ("ACTIVE", "PAUSED")


#: a flavor's resource request, unnumbered or in a granular group: ``resources:VGPU``, ``resources1:VGPU``,
#: ``resources_gpu:PGPU``
_RESOURCE_SPEC = re.compile(r"^resources[A-Za-z0-9_-]*:(?P<rc>[A-Z0-9_]+)$")


def gpu_kind(extra_specs: Mapping[str, object]) -> str:
    """ "vgpu" when a flavor's extra specs ask for VGPU, "pci" for a PCI alias or PGPU, else ""."""
    kinds = set()
    for key, value in extra_specs.items():
        if key == "pci_passthrough:alias" and str(value).strip():
            kinds.add("pci")
            continue
        match = _RESOURCE_SPEC.match(key)
        if match is None or not _positive(value):
            continue
        if match["rc"] == "VGPU":
            kinds.add("vgpu")
        elif match["rc"] == "PGPU":
            kinds.add("pci")
    # a passed-through device pins the server harder than a vGPU: it decides how the server can move
    return "pci" if "pci" in kinds else "vgpu" if kinds else ""


def gpu_count(extra_specs: Mapping[str, object]) -> int:
    """How many GPUs a flavor asks for: the sum of its VGPU/PGPU resources, or of its PCI alias counts ("a100:2")."""
    total = 0
    for key, value in extra_specs.items():
        if key == "pci_passthrough:alias":
            for part in str(value).split(","):
                name, _, count = part.strip().partition(":")
                if name:
                    total += int(count) if count.strip().isdigit() else 1
            continue
        match = _RESOURCE_SPEC.match(key)
        if match is not None and match["rc"] in ("VGPU", "PGPU") and _positive(value):
            total += int(str(value).strip())
    return total


def _positive(value: object) -> bool:
    try:
        return int(str(value).strip()) > 0
    except ValueError:
        return False


def parse_microversion(text: str | None) -> tuple[int, int] | None:
    """``"2.96"`` -> ``(2, 96)``; None when it is not a microversion (empty, ``"2"``, ``"latest"``)."""
    major, dot, minor = (text or "").strip().partition(".")
    if not dot or not major.isdigit() or not minor.isdigit():
        return None
    return int(major), int(minor)


def nova_release(compute_microversion: str | None) -> NovaRelease | None:
    """The oldest Nova release a compute API with this maximum microversion is sure to be at least.

    A maximum that two releases share (2.96: Caracal and Dalmatian) gives the older one. A maximum
    between two releases' (2.97 to 2.99) is a development build of the next release: it is sure to be
    only the last release before it. None when the version is unknown or older than Liberty.
    """
    version = parse_microversion(compute_microversion)
    if version is None:
        return None
    exact = [r for r in NOVA_RELEASES if r.max_microversion == version]
    if exact:
        return exact[0]
    older = [r for r in NOVA_RELEASES if r.max_microversion < version]
    return older[-1] if older else None


def describe_release(compute_microversion: str | None) -> str:
    """Which Nova release(s) serve this maximum microversion, in words: "Nova 29.0 or 30.0 (2024.1 Caracal, 2024.2 Dalmatian)"."""
    version = parse_microversion(compute_microversion)
    if version is None:
        return "an unknown Nova release"
    exact = [r for r in NOVA_RELEASES if r.max_microversion == version]
    if exact:
        return f"Nova {' or '.join(f'{r.major}.0' for r in exact)} ({', '.join(r.series for r in exact)})"
    older = [r for r in NOVA_RELEASES if r.max_microversion < version]
    newer = [r for r in NOVA_RELEASES if r.max_microversion > version]
    if older and newer:
        return f"a development build between Nova {older[-1].major}.0 and {newer[0].major}.0"
    if older:
        return f"newer than Nova {older[-1].major}.0 ({older[-1].series})"
    return f"older than Nova {NOVA_RELEASES[0].major}.0 ({NOVA_RELEASES[0].series})"


def live_migration_support(vm: VmRef, compute_microversion: str) -> tuple[bool, str]:
    """Whether ``vm`` can be live-migrated on a compute API with this maximum microversion, and why (not).

    ``(False, reason)`` when Nova would refuse: the server is not running or paused, is busy with another
    task, or has a GPU this Nova cannot live-migrate (or the Nova version is unknown, for a GPU server).
    ``(True, "")`` for a plain server; ``(True, caveat)`` for a GPU server this Nova can move live, the
    caveat naming what the API cannot show (hypervisor versions, device tags).
    """
    if vm.status not in LIVE_MIGRATABLE_STATUSES:
        return (
            False,
            f"server is {vm.status or 'in an unknown state'}: Nova live-migrates only ACTIVE or PAUSED servers",
        )
    if vm.task_state:
        return False, f"server is busy ({vm.task_state})"
    if vm.gpu not in ("vgpu", "pci"):
        return True, ""
    release = nova_release(compute_microversion)
    kind = "vGPU" if vm.gpu == "vgpu" else "PCI passthrough"
    if release is None:
        return False, f"{kind} live migration: the Nova version is unknown (compute API {compute_microversion or '?'})"
    if vm.gpu == "vgpu":
        if release.major < VGPU_LIVE_MIGRATION_NOVA:
            return False, (
                f"vGPU live migration needs Nova {VGPU_LIVE_MIGRATION_NOVA}.0 (2024.1 Caracal); "
                f"compute API {compute_microversion} is {describe_release(compute_microversion)}"
            )
        return True, (
            f"vGPU: needs libvirt >= {VGPU_LIVE_MIGRATION_LIBVIRT} and QEMU >= {VGPU_LIVE_MIGRATION_QEMU} "
            "on both hosts and the same mdev type free on the target"
        )
    if release.major < PCI_LIVE_MIGRATION_NOVA:
        return False, (
            f"PCI passthrough live migration needs Nova {PCI_LIVE_MIGRATION_NOVA}.0 (2025.1 Epoxy); "
            f"compute API {compute_microversion} is {describe_release(compute_microversion)}"
        )
    return True, (
        "PCI passthrough: only devices tagged live_migratable in [pci] device_spec, with libvirt >= "
        f"{PCI_LIVE_MIGRATION_LIBVIRT} and QEMU >= {PCI_LIVE_MIGRATION_QEMU} on both hosts"
    )
