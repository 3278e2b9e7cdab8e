"""Provides the Fabric screen: switch ports of the leaf-spine fabric, links down first."""

from __future__ import annotations

from rich.text import Text

from ..model.view import ClusterView
from ..widgets.fmt import fmt_bps, fmt_num
from .base import Row, TableScreen


class FabricScreen(TableScreen):
    """One row per switch port: state, speed, traffic, errors, peer."""

    NAME = "fabric"
    TITLE_TEXT = "Fabric"
    HELP = "snmp_exporter IF-MIB: port state, speed, traffic and errors per switch"
    EMPTY = "no fabric data: scrape the switches with snmp_exporter (IF-MIB)"
    COLUMNS = (
        ("device", "Switch", 10),
        ("port", "Port", 12),
        ("state", "State", 8),
        ("speed", "Speed", 6),
        ("in", "In", 7),
        ("out", "Out", 7),
        ("errors", "Err/s", 6),
        ("peer", "Peer", None),
    )

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        fabric = view.fabric
        if fabric is None:
            return None
        links = sorted(fabric.links, key=lambda link: (not link.down, link.device, link.ifname))
        rows = []
        for link in links:
            if link.down:
                state = Text("✗ down", style="bold red")
            elif not link.admin_up:
                state = Text("· admin", style="dim")
            else:
                state = Text("✓ up", style="green")
            speed = f"{link.speed_mbps / 1000:.0f}G" if link.speed_mbps else "—"
            errors = fmt_num(link.errors_per_s, digits=1)
            cells = (
                link.device,
                link.ifname,
                state,
                speed,
                fmt_bps(link.in_bps),
                fmt_bps(link.out_bps),
                errors,
                link.peer or "—",
            )
            sort = (
                link.device,
                link.ifname,
                state.plain,
                link.speed_mbps,
                link.in_bps,
                link.out_bps,
                link.errors_per_s,
                link.peer,
            )
            rows.append(
                Row(
                    f"{link.device}:{link.ifname}",
                    cells,
                    f"{link.device} {link.ifname} {state.plain} {link.peer}".lower(),
                    sort,
                )
            )
        return rows
