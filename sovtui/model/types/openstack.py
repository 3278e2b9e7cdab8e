"""Provides what OpenStack reports: Nova hosts, flavors, Glance images, Neutron networks and agents."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NovaHost:
    """A Nova compute host: its nova-compute service, its hypervisor's capacity (Placement) and its servers."""

    name: str
    zone: str = ""
    service_state: str = ""  # up | down
    service_status: str = ""  # enabled | disabled
    disabled_reason: str = ""
    forced_down: bool = False
    hypervisor_state: str = ""
    vcpus_used: int | None = None
    vcpus: int | None = None
    memory_mb_used: int | None = None
    memory_mb: int | None = None
    running_vms: int = 0
    servers: tuple[str, ...] = ()  # server names, sorted
    gpu_inventory: tuple[tuple[str, int, int], ...] = ()  # (resource class VGPU/PGPU, total, used)
    #: False when Placement never answered: ``gpu_inventory`` is then unknown, not "no GPUs"
    gpu_inventory_known: bool = True

    @property
    def gpus_total(self) -> int:
        return sum(total for _, total, _ in self.gpu_inventory)

    @property
    def gpus_used(self) -> int:
        return sum(used for _, _, used in self.gpu_inventory)


@dataclass(frozen=True, slots=True)
class OpenStackFlavor:
    """A Nova flavor, with the extra specs that ask for GPUs (``pci_passthrough:alias``, ``resources:VGPU``)."""

    name: str
    vcpus: int = 0
    ram_mb: int = 0
    gpu_specs: tuple[tuple[str, str], ...] = ()
    public: bool = True

    @property
    def is_gpu(self) -> bool:
        return bool(self.gpu_specs)


@dataclass(frozen=True, slots=True)
class OpenStackImage:
    """A Glance image a VM can boot from."""

    name: str
    id: str = ""
    status: str = ""  # active | queued | saving | deactivated | ...
    visibility: str = ""  # public | private | shared | community
    size_bytes: int | None = None
    disk_format: str = ""


@dataclass(frozen=True, slots=True)
class OpenStackNetwork:
    """A Neutron network: what a VM can be plugged into."""

    name: str
    id: str = ""
    status: str = ""  # ACTIVE | DOWN | BUILD | ERROR
    admin_state_up: bool = True
    shared: bool = False
    external: bool = False
    network_type: str = ""  # flat | vlan | vxlan | geneve (admins see it)
    subnets: int = 0


@dataclass(frozen=True, slots=True)
class NeutronAgent:
    """A Neutron agent (L3, DHCP, OVS, metadata, ...) on one host."""

    host: str
    agent_type: str = ""
    binary: str = ""
    alive: bool = False
    admin_state_up: bool = True
