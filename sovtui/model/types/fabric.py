"""Provides the switch ports of the leaf-spine fabric."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FabricLink:
    """One switch port of the leaf-spine fabric."""

    device: str
    ifname: str
    oper_up: bool
    admin_up: bool = True
    speed_mbps: float | None = None
    in_bps: float | None = None
    out_bps: float | None = None
    errors_per_s: float | None = None
    peer: str = ""

    @property
    def down(self) -> bool:
        """Down although an operator wants it up."""
        return self.admin_up and not self.oper_up


@dataclass(frozen=True, slots=True)
class FabricState:
    """The switch ports of the fabric."""

    links: tuple[FabricLink, ...] = ()

    @property
    def devices(self) -> tuple[str, ...]:
        return tuple(sorted({link.device for link in self.links}))

    @property
    def links_down(self) -> tuple[FabricLink, ...]:
        return tuple(link for link in self.links if link.down)
