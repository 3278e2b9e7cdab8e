"""Provides the Ceph screen: cluster health, raw capacity against nearfull/full, and pools."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from ..model.health import ceph_verdict
from ..model.view import ClusterView
from ..widgets.fmt import LEVEL_STYLE, fmt_bytes, level_text
from .base import Row, TableScreen


class CephScreen(TableScreen):
    """Summary line plus one row per pool, fullest first."""

    NAME = "ceph"
    TITLE_TEXT = "Ceph"
    HELP = "ceph-mgr prometheus module metrics: health, capacity, pools, OSDs"
    EMPTY = "no Ceph data: enable the ceph-mgr prometheus module and scrape it"
    COLUMNS = (
        ("pool", "Pool", 16),
        ("used", "Used", 6),
        ("stored", "Stored", 10),
        ("avail", "Max avail", 10),
        ("objects", "Objects", 10),
        ("state", "State", None),
    )

    def compose_top(self) -> ComposeResult:
        yield Static("", id="ceph-summary", markup=False)

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        summary = self.query_one("#ceph-summary", Static)
        ceph = view.ceph
        if ceph is None:
            summary.update("")
            return None
        verdict = ceph_verdict(ceph)
        text = Text()
        text.append_text(level_text(verdict.level))
        text.append(f"  {ceph.health}  raw {fmt_bytes(ceph.used_bytes)} / {fmt_bytes(ceph.total_bytes)} = ")
        text.append(f"{ceph.used_pct:.1f}%", style=LEVEL_STYLE[verdict.level])
        text.append(
            f" (nearfull {ceph.nearfull_ratio:.0%}, full {ceph.full_ratio:.0%})  OSDs {ceph.osds_up} up / {ceph.osds_in} in / {ceph.osds_total}"
        )
        if verdict.reasons:
            text.append("\n" + " · ".join(verdict.reasons), style=LEVEL_STYLE[verdict.level])
        summary.update(text)
        rows = []
        for pool in sorted(ceph.pools, key=lambda p: -p.used_pct):
            pct = pool.used_pct
            if pct >= ceph.full_ratio * 100:
                state = Text("✗ full", style="bold red")
            elif pct >= ceph.nearfull_ratio * 100:
                state = Text("▲ nearfull", style="yellow")
            else:
                state = Text("✓ ok", style="green")
            cells = (
                pool.name,
                f"{pct:.1f}%",
                fmt_bytes(pool.stored_bytes),
                fmt_bytes(pool.max_avail_bytes),
                str(pool.objects or "—"),
                state,
            )
            sort = (pool.name, pct, pool.stored_bytes, pool.max_avail_bytes, pool.objects, state.plain)
            rows.append(Row(pool.name, cells, f"{pool.name} {state.plain}".lower(), sort))
        return rows
