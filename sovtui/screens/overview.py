"""Provides the Overview screen: one tile per domain (GPUs, Ceph, fabric, queues, alerts, sources)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid

from ..model.types import Health
from ..model.view import ClusterView, Tile, overview_tiles
from ..widgets.fmt import fmt_age, parts_line
from ..widgets.tile import TileWidget
from .base import SiteScreen

TILE_KEYS = ("gpus", "ceph", "fabric", "jobs", "alerts", "sources")


def sources_tile(view: ClusterView) -> Tile:
    """Freshness of every source, so an on-call engineer knows what the other tiles are worth."""
    if not view.statuses:
        return Tile(
            "sources",
            "Sources",
            Health.UNKNOWN,
            "none configured",
            ("add prometheus_url to the site",),
            "",
            known=False,
        )
    states = {s.name: s.state(view.now) for s in view.statuses}
    bad = [n for n, st in states.items() if st in ("failing", "stale", "partial")]
    level = Health.CRIT if any(states[n] == "failing" for n in bad) else Health.WARN if bad else Health.OK
    if all(st == "pending" for st in states.values()):
        level = Health.UNKNOWN
    lines = []
    for status in view.statuses:
        state = states[status.name]
        slow = status.latency_s is not None and status.latency_s >= 0.5
        if state == "failing":
            lines.append(f"✗ {status.name}: {status.error}")
        elif state == "stale":
            lines.append(f"◷ {status.name}: stale {fmt_age(status.age(view.now))}")
        elif state == "partial":
            lines.append(f"◐ {status.name}: {parts_line(status, view.now)}")
        elif state == "pending":
            lines.append(f"… {status.name}: waiting for first answer")
        else:
            lines.append(
                f"✓ {status.name} · {fmt_age(status.age(view.now))} ago"
                + (f" · slow {status.latency_s:.1f}s" if slow else "")
            )
    ok = sum(1 for st in states.values() if st == "ok")
    return Tile("sources", "Sources", level, f"{ok}/{len(states)} answering", tuple(lines), "")


class OverviewScreen(SiteScreen):
    """Tiles with a verdict each; arrows move between tiles, ``enter`` opens one."""

    NAME = "overview"
    TITLE_TEXT = "Overview"
    HELP = "what is broken right now, one tile per domain"
    READY_SELECTOR = "#tile-sources"

    BINDINGS = [
        Binding("left", "move(-1, 0)", "", show=False, id="overview.left"),
        Binding("right", "move(1, 0)", "", show=False, id="overview.right"),
        Binding("up", "move(0, -1)", "", show=False, id="overview.up"),
        Binding("down", "move(0, 1)", "", show=False, id="overview.down"),
    ]

    def compose_body(self) -> ComposeResult:
        with Grid(id="tiles"):
            for key in TILE_KEYS:
                yield TileWidget(key)

    def on_mount(self) -> None:
        self.query_one("#tile-gpus").focus()

    def on_resize(self) -> None:
        grid = self.query_one("#tiles", Grid)
        grid.styles.grid_size_columns = 3 if self.size.width >= 120 else 2

    def render_view(self, view: ClusterView) -> None:
        tiles = {t.key: t for t in overview_tiles(view)}
        tiles["sources"] = sources_tile(view)
        for key in TILE_KEYS:
            self.query_one(f"#tile-{key}", TileWidget).show(tiles[key])

    def action_move(self, dx: int, dy: int) -> None:
        widgets = list(self.query(TileWidget))
        focused = self.focused
        if focused not in widgets:
            widgets[0].focus()
            return
        columns = 3 if self.size.width >= 120 else 2
        index = widgets.index(focused) + dx + dy * columns
        if 0 <= index < len(widgets):
            widgets[index].focus()

    def on_tile_widget_open(self, message: TileWidget.Open) -> None:
        if message.target:
            self.app.goto(message.target)
