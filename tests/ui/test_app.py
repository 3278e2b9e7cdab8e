"""Provides Pilot tests of the app shell: navigation, command line, help, filter, failing sources."""

from __future__ import annotations

import pytest

from sovtui.app import SCREEN_CLASSES, SovtuiApp
from sovtui.model.types import SiteInfo
from sovtui.screens.dialogs import CommandLine, DetailScreen, HelpScreen
from sovtui.widgets.header import SiteHeader
from tests.fakes import NOW, SwitchedSource
from tests.lab.waits import eventually

pytestmark = pytest.mark.ui


def make_app(source: SwitchedSource | None = None, **site) -> tuple[SovtuiApp, SwitchedSource]:
    source = source or SwitchedSource()
    clock = {"now": NOW}
    app = SovtuiApp(SiteInfo("lab", **site), [source], clock=lambda: clock["now"])
    app.test_clock = clock
    return app, source


def settled(app: SovtuiApp) -> bool:
    """Every source has answered once, and the screens show it."""
    return all(r.status.ok is not None for r in app.hub.results.values()) and not app._rebuild_pending


async def test_number_keys_and_escape_walk_the_screens():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        assert app.active_site_screen.NAME == "overview"
        for i, cls in enumerate(SCREEN_CLASSES, start=1):
            await pilot.press(str(i))
            await pilot.pause()
            assert app.active_site_screen.NAME == cls.NAME
        # esc walks back through history
        await pilot.press("escape")
        await pilot.pause()
        assert app.active_site_screen.NAME == SCREEN_CLASSES[-2].NAME
        await pilot.press("escape")
        await pilot.pause()
        assert app.active_site_screen.NAME == SCREEN_CLASSES[-3].NAME


async def test_colon_commands_and_aliases():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        for typed, expected in (
            ("gpus", "gpus"),
            ("alert", "alerts"),
            ("ceph", "ceph"),
            ("fabric", "fabric"),
            ("jobs", "jobs"),
            ("nodes", "nodes"),
            ("overview", "overview"),
        ):
            await pilot.press("colon")
            await pilot.pause()
            assert isinstance(app.screen, CommandLine)
            await pilot.press(*typed, "enter")
            await pilot.pause()
            assert app.active_site_screen.NAME == expected, typed


async def test_unknown_command_is_reported_and_esc_cancels():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("colon", *"nosuch", "enter")
        await pilot.pause()
        assert app.active_site_screen.NAME == "overview"
        assert any("unknown command" in str(n.message) for n in app._notifications)
        await pilot.press("colon")
        await pilot.pause()
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, CommandLine)


async def test_colon_q_quits():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("colon", "q", "enter")
        await pilot.pause()
    assert app.return_code == 0


async def test_help_lists_the_bindings_of_the_screen_below():
    app, _ = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("7", "question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(str(rows) for _, rows in app.screen.sections)
        assert "Filter" in text and ":gpus" in text and "ctrl+p" in text
        await pilot.press("escape")
        await pilot.pause()
        assert app.active_site_screen.NAME == "alerts" and not isinstance(app.screen, HelpScreen)


async def test_overview_tile_enter_opens_its_screen():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        assert app.focused.id == "tile-gpus"
        await pilot.press("enter")
        await pilot.pause()
        assert app.active_site_screen.NAME == "gpus"
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("down", "down", "enter")  # gpus -> fabric -> alerts
        await pilot.pause()
        assert app.active_site_screen.NAME == "alerts"


async def test_filter_narrows_and_escape_clears():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("2")
        await pilot.pause()
        screen = app.active_site_screen
        assert screen.table.row_count == 10  # 2 host rows + 8 GPUs
        await pilot.press("slash", *"gpu02", "enter")
        await pilot.pause()
        assert screen.table.row_keys_in_order == ["host:gpu02"] + [f"GPU-2-{i}" for i in range(4)]
        await pilot.press("escape")
        await pilot.pause()
        assert screen.table.row_count == 10
        assert app.active_site_screen.NAME == "gpus"  # first esc clears the filter, not the screen


async def test_sort_and_detail():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("7")
        await pilot.pause()
        screen = app.active_site_screen
        assert screen.table.row_keys_in_order[0].startswith("GpuXidErrors")  # critical first
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("o", "o", "o")  # sort by alert name
        await pilot.pause()
        assert screen.table.row_keys_in_order[0].startswith("CephNearFull")


async def test_failing_source_keeps_data_and_says_why_then_recovers():
    app, source = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("2")
        await pilot.pause()
        screen = app.active_site_screen
        assert screen.table.row_count == 10
        source.fail = "Prometheus unreachable at http://127.0.0.1:1"
        app.test_clock["now"] += 30
        header = screen.query_one(SiteHeader)
        await app.hub.poll("prometheus")
        await eventually(lambda: "prom✗" in header.plain, what="the header shows the failure", pilot=pilot)
        text = header.plain
        assert "prom✗" in text and "unreachable" in text and "30s old" in text
        assert screen.table.row_count == 10  # last good data still shown
        source.fail = None
        await app.hub.poll("prometheus")
        await eventually(lambda: "prom✓" in header.plain, what="the header shows the recovery", pilot=pilot)
        text = header.plain
        assert "prom✓" in text and "unreachable" not in text


async def test_hidden_screens_render_when_shown_again():
    app, source = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("2")
        await pilot.pause()
        gpus = app.active_site_screen
        await pilot.press("1")
        await pilot.pause()
        calls = source.calls
        await app.hub.poll("prometheus")
        await eventually(lambda: gpus.dirty, what="the hidden screen marked", pilot=pilot)
        assert source.calls == calls + 1
        assert gpus.dirty  # hidden: marked, not rendered
        await pilot.press("2")
        await pilot.pause()
        assert not gpus.dirty


async def test_gpu_hosts_fold_and_worst_jump():
    app, _ = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("2")
        await pilot.pause()
        screen = app.active_site_screen
        assert screen.table.row_keys_in_order[0] == "host:gpu01"
        await pilot.press("space")  # fold gpu01
        await pilot.pause()
        assert screen.table.row_keys_in_order[:2] == ["host:gpu01", "host:gpu02"]
        await pilot.press("enter")  # enter on a host row unfolds it
        await pilot.pause()
        assert screen.table.row_count == 10
        await pilot.press("g")  # flat list
        await pilot.pause()
        assert screen.table.row_count == 8


async def test_gpu_detail_is_live_and_shows_history():
    app, source = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await eventually(lambda: settled(app), what="the first answers shown", pilot=pilot)
        await pilot.press("2", "down", "enter")
        await pilot.pause()
        assert isinstance(app.screen, DetailScreen)
        before = dict(app.screen.fields)
        assert before["health"].plain.startswith("✓")
        app.test_clock["now"] += 10
        await app.hub.poll("prometheus")
        await eventually(
            lambda: any(name == "util history" for name, _ in app.screen.fields), what="the history shown", pilot=pilot
        )
        names = [name for name, _ in app.screen.fields]
        assert "util history" in names  # two samples recorded
