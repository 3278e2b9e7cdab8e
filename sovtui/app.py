"""Provides the Textual application: screens, navigation, the ``:`` command line and the hub wiring."""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.message import Message

from .hub import Hub
from .model.history import GpuHistory
from .model.types import SiteInfo, SourceResult
from .model.view import ClusterView, build_view
from .screens.alerts import AlertsScreen
from .screens.base import SiteScreen
from .screens.ceph import CephScreen
from .screens.dialogs import CommandLine, HelpScreen
from .screens.fabric import FabricScreen
from .screens.gpus import GpusScreen
from .screens.jobs import JobsScreen
from .screens.nodes import NodesScreen
from .screens.overview import OverviewScreen
from .sources.base import Source

log = logging.getLogger(__name__)

#: the garbage that ``SovtuiApp.settle_garbage`` sets aside is collected in full after a refresh
#: once a minute, when no key was pressed for a while; after five minutes or this many
#: re-renders even while keys are being pressed
FULL_COLLECTION_EVERY_S = 60.0
FULL_COLLECTION_QUIET_S = 3.0
FULL_COLLECTION_AT_LATEST_S = 300.0
FULL_COLLECTION_AFTER = 2000

#: screens in number-key order
SCREEN_CLASSES: tuple[type[SiteScreen], ...] = (
    OverviewScreen,
    GpusScreen,
    NodesScreen,
    CephScreen,
    FabricScreen,
    JobsScreen,
    AlertsScreen,
)

#: ``:`` aliases (k9s users type singulars and short forms)
ALIASES = {
    "ov": "overview",
    "o": "overview",
    "home": "overview",
    "gpu": "gpus",
    "g": "gpus",
    "node": "nodes",
    "no": "nodes",
    "hosts": "nodes",
    "host": "nodes",
    "osd": "ceph",
    "pools": "ceph",
    "storage": "ceph",
    "net": "fabric",
    "links": "fabric",
    "network": "fabric",
    "job": "jobs",
    "queue": "jobs",
    "queues": "jobs",
    "slurm": "jobs",
    "alert": "alerts",
    "a": "alerts",
}


class SnapshotUpdated(Message):
    """The hub has a new result for one source."""

    def __init__(self, source: str, result: SourceResult) -> None:
        super().__init__()
        self.source = source
        self.result = result


class SovtuiApp(App[int]):
    """The sovtui terminal UI for one site."""

    TITLE = "sovtui"
    CSS_PATH = "sovtui.tcss"
    ENABLE_COMMAND_PALETTE = True
    SCREENS = {cls.NAME: cls for cls in SCREEN_CLASSES}

    BINDINGS = [
        Binding("colon", "command_line", ":cmd", id="app.command"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("escape", "back", "Back", show=False, id="app.back"),
        Binding("ctrl+r", "refresh", "Refresh", show=False, id="app.refresh"),
        Binding("ctrl+q", "quit", "Quit", show=False, priority=True, id="app.quit"),
        *[
            Binding(str(i), f"goto('{cls.NAME}')", cls.TITLE_TEXT, show=False, id=f"app.goto.{cls.NAME}")
            for i, cls in enumerate(SCREEN_CLASSES, start=1)
        ],
    ]

    def __init__(
        self,
        site: SiteInfo,
        sources: Iterable[Source],
        *,
        clock: Callable[[], float] = time.time,
        watch_tty: bool | None = None,
    ) -> None:
        super().__init__()
        self.site = site
        self.clock = clock
        sources_list = list(sources)
        self.hub = Hub(sources_list, clock=clock, on_update=self._on_hub_update)
        self.view: ClusterView = build_view(site, self.hub.results, clock())
        self.history: list[str] = []
        self.gpu_history = GpuHistory()
        self._rebuild_pending = False
        self._watch_tty = watch_tty
        self._froze_garbage = False
        self._full_collection_at = time.monotonic()
        self._settled_since_collection = 0
        self._collection_due = False
        self._refreshing = False
        self._interacted_at = 0.0
        self.title = f"sovtui · {site.name}"
        from .ops.operator import Operator
        from .screens.ops import Operations

        #: drain, cordon, uncordon: the same Operator (plan, journal, audit) as the CLI's
        self.operations = Operations(self, Operator(site, sources_list, lambda: self.hub.results, clock=clock))

    # -- lifecycle -------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.push_screen("overview")
        # the first frame goes out before any source is polled
        self.call_after_refresh(self.hub.start)
        self.call_after_refresh(self.operations.offer_unfinished)
        self.set_interval(1.0, self._tick, name="header-tick")
        if self._watch_tty is None:
            self._watch_tty = not self.is_headless and sys.__stdin__ is not None and os.isatty(0)
        if self._watch_tty:
            self._install_tty_watchdog()

    async def on_unmount(self) -> None:
        await self.hub.stop()
        if self._froze_garbage:
            gc.unfreeze()
            self._froze_garbage = False

    def _install_tty_watchdog(self) -> None:
        """Exit cleanly when the SSH session or terminal goes away, instead of spinning."""
        try:
            import asyncio

            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, lambda: self.exit(0))
        except (NotImplementedError, RuntimeError, ValueError):  # pragma: no cover - not on unix
            pass
        self.set_interval(2.0, self._check_tty, name="tty-watchdog")

    def _check_tty(self) -> None:
        try:
            alive = os.isatty(0) and os.getppid() != 1
            os.ttyname(0)
        except OSError:
            alive = False
        if not alive:
            log.warning("controlling terminal is gone; exiting")
            self.exit(0)

    # -- data flow -------------------------------------------------------------------------
    def _on_hub_update(self, name: str, result: SourceResult) -> None:
        self.post_message(SnapshotUpdated(name, result))

    def on_snapshot_updated(self, message: SnapshotUpdated) -> None:
        # several sources answering together give one rebuild
        if not self._rebuild_pending:
            self._rebuild_pending = True
            self.call_after_refresh(self.rebuild_view)

    def rebuild_view(self) -> None:
        """Fuse the hub's results; render the visible screen, mark the hidden ones dirty."""
        # a fleet's worth of new objects, nearly all of them to be kept until the next refresh
        # and then set aside (see settle_garbage): the collector need not walk them meanwhile
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._rebuild_view()
        finally:
            if collecting:
                gc.enable()

    def _rebuild_view(self) -> None:
        self._rebuild_pending = False
        self.view = build_view(self.site, self.hub.results, self.clock())
        if self.view.gpus is not None:
            self.gpu_history.record((row.gpu for row in self.view.gpus), self.view.now)
        visible = self.active_site_screen
        self._refreshing = True
        try:
            for screen in self._installed_site_screens():
                if screen is visible:
                    screen.show_view(self.view)
                else:
                    screen.dirty = True
            top = self.screen
            if not isinstance(top, SiteScreen) and hasattr(top, "show_view"):
                top.show_view(self.view)  # a live detail view above the site screen
        finally:
            self._refreshing = False
        self._settle_after_refresh()

    def settle_garbage(self) -> None:
        """Call after a large re-render: set every object alive now aside from the garbage collector.

        Python's collector walks every object it tracks; with a big fleet the view, the rows and
        the table hold hundreds of thousands, so its passes take tens of milliseconds (a full
        one several hundred) and run every few keystrokes. Frozen objects (``gc.freeze``) are
        still freed the moment nothing refers to them; the collector just stops walking them,
        so its passes see only what was made since. The one thing freezing delays is freeing
        frozen objects that only refer to each other in a cycle: once a minute, after a
        refresh and while no key is being pressed, everything is unfrozen and collected in full.
        """
        self._froze_garbage = True
        gc.freeze()
        self._settled_since_collection += 1
        if not self._refreshing:
            self._interacted_at = time.monotonic()

    def _settle_after_refresh(self) -> None:
        self._refreshing = True
        try:
            self.settle_garbage()
        finally:
            self._refreshing = False
        now = time.monotonic()
        since = now - self._full_collection_at
        quiet = now - self._interacted_at >= FULL_COLLECTION_QUIET_S
        overdue = since >= FULL_COLLECTION_AT_LATEST_S or self._settled_since_collection >= FULL_COLLECTION_AFTER
        if not self._collection_due and ((since >= FULL_COLLECTION_EVERY_S and quiet) or overdue):
            self._collection_due = True
            self.call_after_refresh(self._collect_frozen_garbage)

    def _collect_frozen_garbage(self) -> None:
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._collection_due = False
        self._full_collection_at = time.monotonic()
        self._settled_since_collection = 0

    def _tick(self) -> None:
        screen = self.active_site_screen
        if screen is not None and screen.view is not None:
            screen.show_header(screen.view, now=self.clock())

    def _installed_site_screens(self) -> list[SiteScreen]:
        return [s for s in self._installed_screens.values() if isinstance(s, SiteScreen)]

    @property
    def active_site_screen(self) -> SiteScreen | None:
        """The topmost site screen (a modal on top does not hide it)."""
        for screen in reversed(self.screen_stack):
            if isinstance(screen, SiteScreen):
                return screen
        return None

    # -- navigation ------------------------------------------------------------------------
    def goto(self, name: str, *, remember: bool = True) -> bool:
        name = ALIASES.get(name, name)
        if name not in self.SCREENS:
            return False
        current = self.active_site_screen
        # close modals above the site screen first
        while len(self.screen_stack) > 1 and not isinstance(self.screen, SiteScreen):
            self.pop_screen()
        if current is not None and current.NAME == name:
            return True
        if remember and current is not None:
            self.history.append(current.NAME)
            del self.history[:-50]
        self.switch_screen(name)
        return True

    def action_goto(self, name: str) -> None:
        self.goto(name)

    def action_back(self) -> None:
        if self.history:
            self.goto(self.history.pop(), remember=False)

    def action_refresh(self) -> None:
        self.hub.refresh()
        self.notify("refreshing all sources", timeout=2)

    # -- command line ----------------------------------------------------------------------
    @property
    def commands(self) -> list[str]:
        return [cls.NAME for cls in SCREEN_CLASSES] + ["runs", "refresh", "help", "quit", "q"]

    def action_command_line(self) -> None:
        self.push_screen(CommandLine(self.commands), self.run_command)

    def run_command(self, text: str | None) -> None:
        """Run one ``:`` command; unknown commands are reported, not ignored."""
        if not text:
            return
        word, *args = text.split()
        word = word.lower()
        if word in ("q", "q!", "quit", "exit"):
            self.exit(0)
        elif word == "help":
            self.action_help()
        elif word in ("refresh", "r"):
            self.action_refresh()
        elif word in ("runs", "run", "ops"):
            self.operations.show_runs()
        elif word in ("ctx", "context", "site"):
            target = args[0] if args else ""
            if target and target != self.site.name:
                self.notify(
                    f"site {target!r}: restart with `sovtui --site {target}` (one site per session)", severity="warning"
                )
            else:
                self.notify(f"site: {self.site.name}")
        elif not self.goto(word):
            self.notify(f"unknown command :{text} — try :{' :'.join(self.commands[:7])}", severity="error", timeout=4)

    # -- help ------------------------------------------------------------------------------
    def action_help(self) -> None:
        screen = self.active_site_screen
        sections = []
        if screen is not None:
            keys = [(_key_label(b.key), b.description or b.action) for b in _bindings(type(screen)) if b.description]
            sections.append((f"{screen.TITLE_TEXT} screen", keys))
        global_keys = [
            (_key_label(b.key), b.description or b.action)
            for b in self.BINDINGS
            if isinstance(b, Binding) and not b.key.isdigit()
        ]
        global_keys += [
            ("1-7", "switch screen: " + ", ".join(f"{i} {c.TITLE_TEXT}" for i, c in enumerate(SCREEN_CLASSES, 1)))
        ]
        global_keys += [("ctrl+p", "command palette"), ("tab", "next widget")]
        sections.append(("Everywhere", global_keys))
        sections.append(
            (
                "Commands",
                [(":" + c.NAME, c.HELP) for c in SCREEN_CLASSES]
                + [(":refresh", "poll every source now"), (":q", "quit")],
            )
        )
        sections.append(
            (
                "Sources",
                [
                    (s.name, f"{s.kind}, every {s.interval_s:g}s, timeout {s.timeout_s:g}s")
                    for s in self.hub.sources.values()
                ]
                or [("none", "no sources configured")],
            )
        )
        self.push_screen(HelpScreen(screen.TITLE_TEXT if screen else "sovtui", sections))

    def get_system_commands(self, screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for i, cls in enumerate(SCREEN_CLASSES, 1):
            yield SystemCommand(
                f"Go to {cls.TITLE_TEXT}", f"({i} or :{cls.NAME}) {cls.HELP}", lambda name=cls.NAME: self.goto(name)
            )
        yield SystemCommand("Refresh all sources", "poll every source now (ctrl+r)", self.action_refresh)


def _bindings(cls: type) -> list[Binding]:
    seen: list[Binding] = []
    for klass in reversed(cls.__mro__):
        for b in getattr(klass, "BINDINGS", []) if "BINDINGS" in vars(klass) else []:
            if isinstance(b, Binding):
                seen.append(b)
    return seen


def _key_label(key: str) -> str:
    return {"colon": ":", "question_mark": "?", "slash": "/", "escape": "esc"}.get(key, key)
