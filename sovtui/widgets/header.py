"""Provides the site header: site name, DEMO/PRODUCTION/READ-ONLY badges and per-source freshness."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from ..model.types import SiteInfo, SourceStatus
from .fmt import fmt_age, parts_line

_STATE_STYLE = {"ok": "green", "pending": "dim", "stale": "yellow", "failing": "bold red", "partial": "yellow"}
#: short names so that four or five sources fit an 80-column header
SHORT_NAME = {"prometheus": "prom", "alertmanager": "am", "kubernetes": "k8s", "openstack": "nova"}
_STATE_GLYPH = {"ok": "✓", "pending": "…", "stale": "◷", "failing": "✗", "partial": "◐"}


def freshness_line(status: SourceStatus, now: float) -> tuple[str, str]:
    """One source's freshness as (short marker, long explanation or '')."""
    state = status.state(now)
    age = status.age(now)
    short = f"{SHORT_NAME.get(status.name, status.name)}{_STATE_GLYPH[state]}"
    if state == "stale":
        short += f" {fmt_age(age)}"
    if state == "failing":
        stale = f"; showing data {fmt_age(age)} old" if age is not None else "; no data yet"
        return short, f"{status.name}: {status.error}{stale}"
    if state == "stale":
        return short, f"{status.name}: no answer for {fmt_age(age)}"
    if state == "partial":
        return short, f"{status.name} partial: {parts_line(status, now)}"
    return short, ""


class SiteHeader(Static):
    """The top bar. Line 1: badges and source markers; line 2 (only when needed): what is failing."""

    DEFAULT_CSS = """
    SiteHeader { dock: top; height: auto; background: $primary-background; color: $text; text-wrap: nowrap; text-overflow: ellipsis; }
    SiteHeader.production { background: darkred; color: white; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id, markup=False)
        self._last: Text | None = None

    @property
    def plain(self) -> str:
        """The header as plain text (for tests and screen readers)."""
        return self._last.plain if self._last is not None else ""

    def show(self, site: SiteInfo, statuses: tuple[SourceStatus, ...], now: float, screen_title: str) -> None:
        self.set_class(site.production, "production")
        line = Text(no_wrap=True, overflow="ellipsis")
        if site.demo:
            line.append(" DEMO ", style="bold black on yellow")
            line.append(" ")
        if site.production:
            line.append(" PRODUCTION ", style="bold white on red")
            line.append(" ")
        if site.read_only:
            line.append(" READ-ONLY ", style="bold black on cyan")
            line.append(" ")
        line.append(" " + site.name, style="bold")
        line.append(f" › {screen_title}  ")  # the screen name doubles as the title
        problems: list[str] = []
        for status in statuses:
            short, long = freshness_line(status, now)
            line.append(short, style=_STATE_STYLE[status.state(now)])
            line.append(" ")
            if long:
                problems.append(long)
        line.append(" " + time.strftime("%H:%M:%S", time.localtime(now)), style="dim")
        text = line
        if problems:
            text = Text("\n").join(
                [line, Text(" ⚠ " + " · ".join(problems), style="bold yellow", no_wrap=True, overflow="ellipsis")]
            )
        if self._last is None or text.plain != self._last.plain or text.spans != self._last.spans:
            self._last = text
            self.update(text)
