"""Provides the Nova side of the demo: its flavors and the enabling and disabling of compute services."""

from __future__ import annotations

from .common import NotFound
from .entities import NovaService

#: flavor -> (vCPUs, RAM MiB, GPUs)
FLAVORS = {
    "g1.h100x8": (96, 1024 * 1024, 8),
    "g1.a100x4": (48, 512 * 1024, 4),
    "g1.a100x2": (24, 256 * 1024, 2),
    "m1.large": (4, 8 * 1024, 0),
}
FLAVOR_GPU = {"g1.h100x8": "h100", "g1.a100x4": "a100", "g1.a100x2": "a100"}


class NovaSimMixin:
    """Nova compute services; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    def _nova_service(self, host: str) -> NovaService:
        service = self._nova_services.get(host)
        if service is None:
            raise NotFound(f"Compute service for host {host} could not be found.")
        return service

    def disable_nova(self, host: str, reason: str) -> None:
        """``openstack compute service set --disable --disable-reason ...``: no new VMs land here."""
        service = self._nova_service(host)
        service.status = "disabled"
        service.disabled_reason = reason

    def enable_nova(self, host: str) -> None:
        service = self._nova_service(host)
        service.status = "enabled"
        service.disabled_reason = ""
