"""Provides behavioural tests of the big-table work: only changed cells are written, rows are reused, and the fast paths draw and decide exactly what the plain ones do."""

from __future__ import annotations

import gc
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.text import Text
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Input

from sovtui.app import SovtuiApp
from sovtui.model.health import gpu_verdict
from sovtui.model.history import GpuHistory
from sovtui.model.types import Gpu, GpuHost, SiteInfo, SourceData, XidEvent
from sovtui.model.view import fuse_gpus
from sovtui.screens.base import Row, _sorted
from sovtui.screens.gpus import GpusScreen
from sovtui.sources.base import Source
from sovtui.widgets.synctable import SyncTable

pytestmark = pytest.mark.ui

NOW = 1_790_000_000.0


class Fleet(Source):
    """A small fleet whose readings the test sets; every poll is a new set of objects, as from a real source."""

    name = "fleet"
    kind = "ssh"
    interval_s = 3600.0
    timeout_s = 5.0

    def __init__(self, hosts: int = 3, per_host: int = 4) -> None:
        self.util = {(f"gpu{h}", i): 10.0 * i for h in range(hosts) for i in range(per_host)}
        self.temp = {key: 50.0 for key in self.util}
        self.polls = 0

    async def fetch(self, executor=None) -> SourceData:
        self.polls += 1
        gpus = tuple(
            Gpu(
                host=host,
                index=i,
                uuid=f"GPU-{host}-{i}",
                name="NVIDIA H100",
                util_pct=self.util[(host, i)],
                mem_used_mib=100.0,
                mem_total_mib=1000.0,
                temp_c=self.temp[(host, i)],
                power_w=200.0,
                sources=("nvml",),
                observed_at=NOW + self.polls,
            )
            for host, i in self.util
        )
        return SourceData(gpus=gpus)


async def _gpus_screen(pilot, app, fleet) -> GpusScreen:
    for _ in range(100):
        await pilot.pause(0.02)
        if fleet.polls and not app._rebuild_pending:
            break
    await pilot.press("2")
    await pilot.pause()
    screen = app.active_site_screen
    assert isinstance(screen, GpusScreen)
    return screen


def _spy_writes(table: SyncTable) -> list[int]:
    written: list[int] = []
    original = table.sync_keyed

    def sync_keyed(keys, cells):
        count = original(keys, cells)
        written.append(count)
        return count

    table.sync_keyed = sync_keyed
    return written


def _contents(table: SyncTable) -> dict[str, list]:
    return {key: list(table.get_row(key)) for key in table.row_keys_in_order}


async def test_a_refresh_writes_only_the_cells_that_changed():
    fleet = Fleet()
    app = SovtuiApp(SiteInfo("lab"), [fleet], watch_tty=False)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _gpus_screen(pilot, app, fleet)
        table = screen.table
        written = _spy_writes(table)
        before = _contents(table)
        fleet.util[("gpu1", 2)] = 77.0  # one GPU's utilisation (and so its host's mean)
        await app.hub.poll(fleet.name)
        await pilot.pause()
        after = _contents(table)
        changed = {
            (key, i) for key in after for i, (a, b) in enumerate(zip(before[key], after[key], strict=True)) if a != b
        }
        assert changed == {("GPU-gpu1-2", 3), ("host:gpu1", 3)}
        assert written == [2]


async def test_an_unchanged_refresh_writes_nothing_and_keeps_every_row():
    fleet = Fleet()
    app = SovtuiApp(SiteInfo("lab"), [fleet], watch_tty=False)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _gpus_screen(pilot, app, fleet)
        written = _spy_writes(screen.table)
        rows_before = list(screen._rows)
        await app.hub.poll(fleet.name)  # new Gpu objects, new observed_at, same values
        await pilot.pause()
        assert written == [0]
        assert all(a is b for a, b in zip(rows_before, screen._rows, strict=True))


async def test_only_the_changed_gpu_gets_a_new_row():
    fleet = Fleet()
    app = SovtuiApp(SiteInfo("lab"), [fleet], watch_tty=False)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await _gpus_screen(pilot, app, fleet)
        before = {row.key: row for row in screen._rows}
        fleet.temp[("gpu0", 1)] = 51.0
        await app.hub.poll(fleet.name)
        await pilot.pause()
        renewed = {row.key for row in screen._rows if row is not before[row.key]}
        assert renewed == {"GPU-gpu0-1"}


async def test_nothing_stays_frozen_after_the_app_exits():
    fleet = Fleet()
    app = SovtuiApp(SiteInfo("lab"), [fleet], watch_tty=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await _gpus_screen(pilot, app, fleet)
        assert gc.get_freeze_count() > 0  # set aside after rendering
    assert gc.get_freeze_count() == 0


async def test_the_full_collection_waits_for_a_pause_in_the_typing():
    fleet = Fleet()
    app = SovtuiApp(SiteInfo("lab"), [fleet], watch_tty=False)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _gpus_screen(pilot, app, fleet)
        app._full_collection_at -= 120.0  # a minute is long past
        screen.render_rows()  # a key was just pressed
        app.rebuild_view()
        assert not app._collection_due
        app._interacted_at -= 10.0  # ... and then nothing for a while
        app.rebuild_view()
        assert app._collection_due
        await pilot.pause()
        assert not app._collection_due and app._settled_since_collection == 0


# ---------------------------------------------------------------------------------------------
# SyncTable against DataTable

COLUMNS = [("a", "A", 6), ("b", "B", None), ("c", "C", 12)]
CELLS = [
    Text.assemble(("abcdefgh", "red"), ("ijklmnopqrstu", "blue")),  # spans cut by the column edge
    Text("crop me please now", overflow="crop"),
    Text("ellipsis 日本語日本語", overflow="ellipsis"),
    Text("ignore overflow here", overflow="ignore"),
    Text("right", justify="right"),
    Text("tab\there"),
    Text("line\nbreak"),
    "ab日本語日本語",  # wide characters cut in half
    "e\u0301tude",  # more characters than cells
    "gpu0001",
    "",
    "[bold]x[/]",
    "a:smile:b",
    Text("✓ ok", style="green"),
    Text(""),
    Text("", style="dim"),
    Text("x" * 30, style="on blue"),
    None,
    12,
    3.5,
]


class TwoTables(App):
    CSS = "DataTable { height: 20; }"

    def compose(self) -> ComposeResult:
        yield SyncTable(COLUMNS, id="sync")
        yield DataTable(id="plain", cursor_type="row")
        yield Input(id="elsewhere")


def _rows(count: int, shift: int = 0) -> list[tuple[str, tuple]]:
    n = len(CELLS)
    return [(f"k{i}", (CELLS[(i + shift) % n], CELLS[(i * 7 + shift) % n], CELLS[(i * 3) % n])) for i in range(count)]


def _fill(plain: DataTable, rows) -> None:
    plain.clear()
    for key, cells in rows:
        plain.add_row(*cells, key=key)


def _two_tables(app) -> tuple[SyncTable, DataTable]:
    """The app's SyncTable and its plain DataTable with the same columns, neither focused (same cursor colours)."""
    sync, plain = app.query_one("#sync", SyncTable), app.query_one("#plain", DataTable)
    for key, label, width in COLUMNS:
        plain.add_column(label, key=key, width=width)
    app.query_one(Input).focus()
    return sync, plain


def _all_lines(table: DataTable) -> list[list]:
    return [list(table.render_line(y)) for y in range(table.size.height)]


async def test_synctable_draws_what_a_datatable_fed_row_by_row_draws():
    app = TwoTables()
    async with app.run_test(size=(100, 50)) as pilot:
        sync, plain = _two_tables(app)
        for rows in (_rows(40), _rows(40)[::-1], _rows(40)[5:17], _rows(40, shift=3), _rows(40)):
            sync.sync(rows)
            _fill(plain, rows)
            await pilot.pause()
            for cursor in (0, 9, 30):
                sync.move_cursor(row=cursor)
                plain.move_cursor(row=cursor)
                await pilot.pause()
                assert sync.size == plain.size
                # the widths drawn; a fixed-width column's content width is never used, so not measured
                assert [c.get_render_width(sync) for c in sync.ordered_columns] == [
                    c.get_render_width(plain) for c in plain.ordered_columns
                ]
                assert _all_lines(sync) == _all_lines(plain)


async def test_a_new_row_count_scrolls_as_a_datatable_does_and_lays_out_only_for_a_scrollbar():
    app = TwoTables()
    async with app.run_test(size=(100, 50)) as pilot:
        sync, plain = _two_tables(app)
        layouts = []
        original = app.screen._refresh_layout

        def refresh_layout(*args, **kwargs):
            layouts.append(args)
            return original(*args, **kwargs)

        app.screen._refresh_layout = refresh_layout
        for count, scrollbar in ((40, True), (30, True), (12, False), (25, True), (40, True)):
            rows = _rows(count)
            await pilot.pause()
            layouts.clear()
            sync.sync(rows)
            _fill(plain, rows)
            for table in (sync, plain):
                table.move_cursor(row=count - 1, animate=False)
            await pilot.pause()
            await pilot.pause()
            assert sync.virtual_size == plain.virtual_size
            assert sync.show_vertical_scrollbar is plain.show_vertical_scrollbar is scrollbar
            assert (sync.scroll_y, sync.max_scroll_y) == (plain.scroll_y, plain.max_scroll_y)
            if scrollbar:
                bars = sync.vertical_scrollbar, plain.vertical_scrollbar
                assert [(count, b.window_virtual_size, b.window_size, b.position) for b in bars[:1]] == [
                    (count, b.window_virtual_size, b.window_size, b.position) for b in bars[1:]
                ]
            assert _all_lines(sync) == _all_lines(plain)
        # only the plain DataTable's row count changes lay the screen out (and a scrollbar coming or going)
        layouts.clear()
        sync.sync(_rows(30))
        await pilot.pause()
        await pilot.pause()
        assert layouts == []
        _fill(plain, _rows(30))
        await pilot.pause()
        await pilot.pause()
        assert layouts


async def test_synctable_fast_paths_draw_what_datatable_code_draws():
    app = TwoTables()
    async with app.run_test(size=(100, 50)) as pilot:
        sync = app.query_one("#sync", SyncTable)
        sync.sync(_rows(40))
        await pilot.pause()
        for focused in (True, False):
            (sync if focused else app.query_one(Input)).focus()
            await pilot.pause()
            for cursor in (0, 7, 30):
                sync.move_cursor(row=cursor)
                await pilot.pause()
                for y in range(sync.size.height):
                    drawn = []
                    for simple in (True, False):  # False: every override falls back to DataTable's code
                        sync._simple_rows = simple
                        for cache in (
                            sync._row_render_cache,
                            sync._cell_render_cache,
                            sync._line_cache,
                            sync._row_renderable_cache,
                        ):
                            cache.clear()
                        drawn.append(list(sync.render_line(y)))
                    sync._simple_rows = True
                    assert drawn[0] == drawn[1], (y, cursor, focused)


async def test_sync_keeps_the_selected_row_and_counts_cells():
    app = TwoTables()
    async with app.run_test(size=(100, 50)) as pilot:
        sync = app.query_one("#sync", SyncTable)
        rows = _rows(30)
        assert sync.sync(rows) == 90  # every cell of a new table
        await pilot.pause()
        sync.move_cursor(row=12)
        assert sync.sync(rows[::-1]) == 90  # a new order rebuilds the rows
        assert sync.selected_key() == "k12" and sync.row_keys_in_order == [k for k, _ in rows[::-1]]
        assert sync.sync(rows[::-1]) == 0  # the same rows: nothing to write
        changed = list(rows[::-1])
        key, cells = changed[4]
        changed[4] = (key, (cells[0], "new", cells[2]))
        assert sync.sync(changed) == 1
        assert sync.get_row(key)[1] == "new"
        assert sync.row_count == 30


async def test_a_text_whose_style_alone_changes_is_written():
    app = TwoTables()
    async with app.run_test(size=(100, 50)) as pilot:
        sync = app.query_one("#sync", SyncTable)
        sync.sync([("x", (Text("ok", style="green"), "a", "b"))])
        await pilot.pause()
        assert sync.sync([("x", (Text("ok", style="bold red"), "a", "b"))]) == 1  # equal as Texts, drawn differently
        assert sync.get_row("x")[0].style == "bold red"
        assert sync.sync([("x", (Text("ok", style="bold red"), "a", "b"))]) == 0


# ---------------------------------------------------------------------------------------------
# model shortcuts decide what the long way decides

gpus = st.builds(
    Gpu,
    host=st.sampled_from(["a", "b", "c"]),
    index=st.integers(0, 3),
    uuid=st.sampled_from(["", "GPU-1", "GPU-2", "GPU-3", "GPU-4"]),
    util_pct=st.one_of(st.none(), st.floats(0, 100)),
    temp_c=st.one_of(st.none(), st.sampled_from([40.0, 84.0, 85, 86.0, 90.0, 95.0, math.nan])),
    temp_slowdown_c=st.one_of(st.none(), st.sampled_from([87.0, 90])),
    temp_shutdown_c=st.one_of(st.none(), st.sampled_from([92.0, 95])),
    ecc_uncorrected_volatile=st.one_of(st.none(), st.sampled_from([0, 2, 2.0, True])),
    nvlink_down=st.one_of(st.none(), st.sampled_from([0, 1, 2, 2.0])),
    row_remap_pending=st.one_of(st.none(), st.booleans()),
    throttle_reasons=st.sampled_from([(), ("hw_thermal",), ("gpu_idle", "sw_power_cap")]),
    xids=st.sampled_from([(), (XidEvent(79, 5.0),), (XidEvent(13, 9.0), XidEvent(79, 2.0)), (XidEvent(48),)]),
    lost=st.booleans(),
    sources=st.sampled_from([("nvml",), ("dcgm",)]),
    observed_at=st.one_of(st.none(), st.floats(0, 10)),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(gpus, max_size=12),
    st.lists(st.builds(GpuHost, name=st.sampled_from(["a", "b", "c"]), expected_gpus=st.integers(0, 4)), max_size=3),
)
def test_fusing_one_source_is_fusing_it_beside_an_empty_one(readings, hosts):
    # the second, empty source takes fuse_gpus the long way
    assert fuse_gpus([(1.0, tuple(readings))], tuple(hosts)) == fuse_gpus(
        [(1.0, tuple(readings)), (2.0, ())], tuple(hosts)
    )


@settings(max_examples=300, deadline=None)
@given(gpus)
def test_remembered_verdicts_are_the_rules_verdicts(gpu):
    from sovtui.model.view import _verdict

    assert _verdict(gpu) == gpu_verdict(gpu)
    assert _verdict(gpu) == gpu_verdict(gpu)  # the second time from memory


def test_numbers_that_print_differently_get_their_own_verdicts():
    from sovtui.model.view import _verdict

    two, two_float = Gpu("h", 0, nvlink_down=2), Gpu("h", 1, nvlink_down=2.0)
    assert _verdict(two).reasons == ("2 NVLink links down",)
    assert _verdict(two_float).reasons == gpu_verdict(two_float).reasons == ("2.0 NVLink links down",)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-3, 3), st.floats(-2, 2)), max_size=30), st.booleans())
def test_sorting_rows_puts_missing_values_last_like_the_plain_sort(values, reverse):
    rows = [Row(str(i), (), "", (v,)) for i, v in enumerate(values)]

    def none_last(value):
        return (value is None, value if value is not None else 0)

    expected = sorted(rows, key=lambda r: none_last(r.sort[0]), reverse=reverse)
    assert [r.key for r in _sorted(rows, 0, reverse)] == [r.key for r in expected]


def test_history_keeps_the_last_readings_per_gpu_once_per_observation():
    history = GpuHistory(size=4)
    rng = random.Random(3)
    seen = []
    for step in range(7):
        util = rng.choice([None, 10.0, 55.5])
        seen.append(util)
        gpu = Gpu(
            "h", 0, util_pct=util, temp_c=40.0 + step, mem_used_mib=50.0, mem_total_mib=100.0, observed_at=float(step)
        )
        history.record([gpu], NOW)
        history.record([gpu], NOW)  # the same observation again: not a new reading
    assert history.series("h/0", "util_pct") == seen[-4:]
    assert history.series("h/0", "temp_c") == [43.0, 44.0, 45.0, 46.0]
    assert history.series("h/0", "mem_pct") == [50.0] * 4
    assert history.series("elsewhere", "util_pct") == [] and len(history) == 1
