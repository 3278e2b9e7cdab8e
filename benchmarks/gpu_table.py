"""Provides the 8,000-GPU table benchmark: refresh cost, cells written, key-to-paint latency, CPU and RSS.

Runs the real app headless (``run_test(size=(160, 48))``) on the GPUs screen, fed by a synthetic
fleet source: 1,000 hosts x 8 GPUs with deterministic values. Like a real fleet, every poll
returns fresh objects for every GPU with a new ``observed_at``, and about 10 % of the GPUs
report a new util/temp/power (a few hosts are unreachable, a few GPUs are hot, throttled, lost
or have XIDs). What is measured:

refresh
    ``hub.poll`` of the source is awaited (the source's own CPU time is reported apart), then
    the clock runs from when the app starts ``rebuild_view`` (fuse, judge, record history,
    build rows, sync the table) to the end of the first screen paint after it. Also the number
    of table cells written by ``SyncTable.sync_keyed`` against the table's total, for polls
    where 10 % of the GPUs moved and for one where no shown value did.
key-to-paint
    Each key event is handed to the app's driver as a terminal would deliver it; the clock runs
    from then until the end of the first screen paint after the screen reacted to the key (its
    rows were re-rendered, or for ``/`` the filter box was opened). Nothing else runs
    meanwhile: the source is idle and the 1 s header tick is paused. ``cpu`` is the process
    CPU time from the key until the app is idle again (deferred work such as column
    measuring included). Presses: typing filters character by character, clearing them with
    ``esc``, sort ``o`` through every column, fold ``space`` and ``w`` (jump to the worst GPU).
steady CPU
    The source polls every 2 s by itself (the hub's own schedule), the header ticks every
    second; process CPU time over the wall time, in % of one core. The source's own CPU (the
    synthetic fleet, not a real backend) is shown apart. 60 s by default, so that the window
    holds one of the app's once-a-minute full garbage collections.
RSS
    Peak resident set size of the process (``ru_maxrss``).

A "paint" is the compositor update of the changed screen regions turned into the terminal
escape sequences a real terminal would be sent (headless Textual skips that last step; the
benchmark does it and discards the bytes). Each phase also reports the time Python's garbage
collector took. Latencies are wall-clock: on a machine busy with other work they grow with
the load, the CPU columns much less.

    python benchmarks/gpu_table.py [--hosts 1000] [--refreshes 10] [--rounds 4] [--seconds 60] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from textual import events  # noqa: E402
from textual.screen import Screen  # noqa: E402

from sovtui import app as app_module  # noqa: E402
from sovtui.app import SovtuiApp  # noqa: E402
from sovtui.model.types import Gpu, GpuHost, SiteInfo, SourceData, XidEvent  # noqa: E402
from sovtui.sources.base import Source  # noqa: E402
from sovtui.widgets.synctable import SyncTable  # noqa: E402

TARGET_KEY_P95_MS = 50.0
TARGET_CPU_PCT = 10.0
TARGET_RSS_MIB = 300.0


class FleetSource(Source):
    """A deterministic fleet of ``hosts`` x ``per_host`` GPUs; each poll moves ``change`` of them."""

    name = "fleet"
    kind = "ssh"
    interval_s = 3600.0  # polled by hand until the steady phase
    timeout_s = 60.0

    def __init__(self, hosts: int = 1000, per_host: int = 8, change: float = 0.10, seed: int = 42) -> None:
        self.rng = random.Random(seed)
        self.change = change
        self.per_host = per_host
        self.hosts = [f"gpu{h:04d}" for h in range(1, hosts + 1)]
        self.polls = 0
        self.cpu_s = 0.0
        rng = self.rng
        self.state: list[list] = []  # per GPU: [host, index, util, temp, power, mem_used]
        self.extra: dict[tuple[str, int], dict] = {}
        self.workload: dict[str, str] = {}
        self.unreachable = {self.hosts[i] for i in (17, 503) if i < hosts}
        self.lost = {(self.hosts[i], 3) for i in (250,) if i < hosts}
        for h, host in enumerate(self.hosts):
            if rng.random() < 0.8:
                self.workload[host] = f"team-{h % 13:02d}/train-{h // 8:04d}-worker-{h % 8}"
            for i in range(per_host):
                self.state.append(
                    [host, i, rng.uniform(0, 100), rng.uniform(38, 72), rng.uniform(90, 690), rng.uniform(1000, 80000)]
                )
        picks = rng.sample(range(len(self.state)), k=max(1, len(self.state) // 50))
        for n, j in enumerate(picks):
            host, index = self.state[j][0], self.state[j][1]
            kind = n % 10
            if kind == 0:
                self.extra[(host, index)] = {"xids": (XidEvent(79, 1_790_000_000.0 - 600, "fell off the bus"),)}
            elif kind in (1, 2):
                self.extra[(host, index)] = {"xids": (XidEvent(13, 1_790_000_000.0 - 60),)}
            elif kind == 3:
                self.extra[(host, index)] = {"ecc_uncorrected_volatile": 2}
            elif kind in (4, 5):
                self.extra[(host, index)] = {"throttle_reasons": ("sw_power_cap", "hw_thermal")}
            elif kind == 6:
                self.extra[(host, index)] = {"row_remap_pending": True}
            else:
                self.state[j][3] = 86.0  # hot: near slowdown

    def step(self) -> None:
        rng = self.rng
        count = int(len(self.state) * self.change)
        for j in rng.sample(range(len(self.state)), k=count):
            s = self.state[j]
            s[2] = min(100.0, max(0.0, s[2] + rng.uniform(-15, 15)))
            if s[3] < 80:
                s[3] = min(79.0, max(35.0, s[3] + rng.uniform(-3, 3)))
            s[4] = min(700.0, max(60.0, s[4] + rng.uniform(-60, 60)))

    def fetch_sync(self) -> SourceData:
        t0 = time.thread_time()
        if self.polls:
            self.step()
        self.polls += 1
        now = time.time()
        gpus = []
        for host, index, util, temp, power, mem in self.state:
            if host in self.unreachable or (host, index) in self.lost:
                continue
            fields = dict(
                host=host,
                index=index,
                uuid=f"GPU-{host}-{index}-5e1f",
                name="NVIDIA H100 80GB HBM3",
                util_pct=round(util),
                mem_util_pct=round(util / 3),
                mem_used_mib=round(mem),
                mem_total_mib=81559.0,
                temp_c=round(temp),
                temp_slowdown_c=87.0,
                temp_shutdown_c=92.0,
                power_w=round(power),
                power_limit_w=700.0,
                ecc_corrected_volatile=0,
                ecc_uncorrected_volatile=0,
                row_remap_pending=False,
                row_remap_failure=False,
                nvlink_down=0,
                nvlink_total=18,
                pci_bus_id=f"00000000:{0x18 + 0x10 * index:02X}:00.0",
                workload=self.workload.get(host, ""),
                sources=("nvml",),
                observed_at=now,
            )
            fields.update(self.extra.get((host, index), {}))
            gpus.append(Gpu(**fields))
        hosts = tuple(
            GpuHost(
                h,
                self.per_host,
                "550.54.15",
                "12.4",
                backend="nvml",
                error="ssh: connect to host timed out" if h in self.unreachable else "",
                observed_at=now,
            )
            for h in self.hosts
        )
        data = SourceData(gpus=tuple(gpus), gpu_hosts=hosts)
        self.cpu_s += time.thread_time() - t0
        return data


class Probe:
    """Hooks into the app: paint times, rows re-rendered, cells written, rebuild phases."""

    #: when the screen update that is running now started (see ``_timed_screen_update``)
    update_started = 0.0

    def __init__(self, app: SovtuiApp) -> None:
        self.app = app
        self.armed = False
        self.painted = asyncio.Event()
        self.paint_at = 0.0
        self.paint_s = 0.0
        self.paints = 0
        self.cells: list[int] = []
        self.phase: dict[str, float] = {}
        self.rebuild_started = 0.0
        original_display = app._display

        def display(screen, renderable) -> None:
            original_display(screen, renderable)
            if renderable is not None and hasattr(renderable, "render_segments"):
                renderable.render_segments(app.console)  # what a terminal would be sent
            self.paints += 1
            if self.armed:
                self.armed = False
                self.paint_at = time.perf_counter()
                self.paint_s = self.paint_at - Probe.update_started
                self.painted.set()

        app._display = display
        original_rebuild = app.rebuild_view

        def rebuild_view() -> None:
            self.rebuild_started = time.perf_counter()
            original_rebuild()
            self.phase["rebuild"] = time.perf_counter() - self.rebuild_started
            self.arm()

        app.rebuild_view = rebuild_view
        original_build = app_module.build_view

        def build_view(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original_build(*args, **kwargs)
            finally:
                self.phase["build_view"] = time.perf_counter() - t0

        app_module.build_view = build_view
        history = app.gpu_history
        original_record = history.record

        def record(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original_record(*args, **kwargs)
            finally:
                self.phase["history"] = time.perf_counter() - t0

        history.record = record

    def watch_screen(self, screen) -> None:
        table = screen.query_one(SyncTable)
        original_sync = table.sync_keyed  # sync() goes through it too

        def sync_keyed(keys, cells):
            written = original_sync(keys, cells)
            self.cells.append(written)
            return written

        table.sync_keyed = sync_keyed
        for name in ("render_rows", "action_filter"):
            original = getattr(screen, name)

            def wrapped(*args, _original=original, **kwargs):
                result = _original(*args, **kwargs)
                self.arm()
                return result

            setattr(screen, name, wrapped)

    def arm(self) -> None:
        self.painted.clear()
        self.armed = True

    async def wait_paint(self, timeout: float = 20.0) -> float:
        await asyncio.wait_for(self.painted.wait(), timeout)
        return self.paint_at


class GcClock:
    """Time spent in the cyclic garbage collector, per generation."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            generation = info["generation"]
            self.seconds[generation] += time.perf_counter() - self._started
            self.count[generation] += 1

    def snapshot(self) -> tuple[list[float], list[int]]:
        return list(self.seconds), list(self.count)

    def since(self, snapshot: tuple[list[float], list[int]]) -> str:
        seconds = [a - b for a, b in zip(self.seconds, snapshot[0], strict=True)]
        count = [a - b for a, b in zip(self.count, snapshot[1], strict=True)]
        return (
            f"{sum(seconds) * 1000:.0f} ms in {sum(count)} collections"
            f" (full: {count[2]} taking {seconds[2] * 1000:.0f} ms)"
        )


GC = GcClock()


def _timed_screen_update(original):
    def update(self) -> None:
        Probe.update_started = time.perf_counter()
        original(self)

    return update


Screen._on_timer_update = _timed_screen_update(Screen._on_timer_update)


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def idle(pilot) -> None:
    await pilot.pause()
    await pilot.pause()


async def press(app: SovtuiApp, pilot, probe: Probe, key: str, char: str | None = None) -> tuple[float, float, float]:
    """Deliver one key; returns (key-to-paint, CPU until idle, the paint itself) in seconds."""
    await idle(pilot)
    probe.armed = False
    probe.painted.clear()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    app._driver.send_message(events.Key(key, char))
    painted = await probe.wait_paint()
    paint = probe.paint_s
    await idle(pilot)
    return painted - t0, time.process_time() - cpu0, paint


async def run(args) -> dict:
    source = FleetSource(args.hosts, args.per_host, args.change)
    app = SovtuiApp(SiteInfo("bench"), [source], watch_tty=False)
    results: dict = {"refresh": [], "keys": {}}
    profiler = cProfile.Profile() if args.profile else None
    async with app.run_test(size=(160, 48)) as pilot:
        probe = Probe(app)
        for _ in range(600):
            await pilot.pause(0.05)
            if source.polls and not app._rebuild_pending and app.view.gpus:
                break
        else:
            raise SystemExit(f"no GPUs from the synthetic source: {app.hub.result(source.name).status}")
        await pilot.press("2")
        await idle(pilot)
        screen = app.active_site_screen
        assert screen.NAME == "gpus", screen
        probe.watch_screen(screen)
        table = screen.table
        for timer in list(app._timers):
            if timer.name == "header-tick":
                timer.pause()
        await idle(pilot)
        total_cells = table.row_count * len(table.columns)
        results["rows"], results["cells_total"] = table.row_count, total_cells

        # (a) refreshes -------------------------------------------------------------------------
        if profiler:
            profiler.enable()
        gc_mark = GC.snapshot()
        for n in range(args.refreshes + 1):
            if n == args.refreshes:
                source.change, change = 0.0, source.change  # a poll where nothing visible moved
            await idle(pilot)
            probe.phase.clear()
            probe.cells.clear()
            fetch_cpu = source.cpu_s
            probe.armed = False
            probe.painted.clear()
            t_poll = time.perf_counter()
            await app.hub.poll(source.name)
            t_polled = time.perf_counter()
            painted = await probe.wait_paint()
            results["refresh"].append(
                {
                    "source_s": t_polled - t_poll,
                    "source_cpu_s": source.cpu_s - fetch_cpu,
                    "to_paint_s": painted - probe.rebuild_started,
                    "paint_s": probe.paint_s,
                    "cells": sum(probe.cells),
                    "steady": n == args.refreshes,
                    **probe.phase,
                }
            )
        source.change = change
        await idle(pilot)
        results["gc_refresh"] = GC.since(gc_mark)
        gc_mark = GC.snapshot()

        # (b) key-to-paint ---------------------------------------------------------------------
        keys: dict[str, list[tuple[float, float, float]]] = results["keys"]

        def note(label: str, sample: tuple[float, float, float]) -> None:
            keys.setdefault(label, []).append(sample)

        words = ["gpu0042", "crit", "train-0101", "xid", "gpu07", "hot", "team-03 wor", "ok"]
        for r in range(args.rounds):
            for word in words[r % len(words) :] + words[: r % len(words)]:
                note("/ (open filter)", await press(app, pilot, probe, "slash", "/"))
                for ch in word:
                    key = "space" if ch == " " else ch
                    note("filter typing", await press(app, pilot, probe, key, ch))
                note("esc (clear filter)", await press(app, pilot, probe, "escape"))
                if r:  # a few per round are enough
                    break
            for _ in range(len(screen.shown_columns()) + 1):
                note("o (sort)", await press(app, pilot, probe, "o", "o"))
            for step in range(6):
                table.move_cursor(row=min(table.row_count - 1, 9 * (7 + 37 * step + r)), animate=False)
                note("space (fold)", await press(app, pilot, probe, "space", " "))
                note("space (unfold)", await press(app, pilot, probe, "space", " "))
            for _ in range(3):
                table.move_cursor(row=table.row_count - 1, animate=False)
                note("w (worst)", await press(app, pilot, probe, "w", "w"))
        if profiler:
            profiler.disable()
        results["gc_keys"] = GC.since(gc_mark)

        # (c) steady CPU -----------------------------------------------------------------------
        for timer in list(app._timers):
            if timer.name == "header-tick":
                timer.resume()
        source.interval_s = 2.0
        await idle(pilot)
        polls0, src0 = source.polls, source.cpu_s
        cpu0, wall0 = time.process_time(), time.perf_counter()
        gc_mark = GC.snapshot()
        app.hub.refresh(source.name)
        await asyncio.sleep(args.seconds)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        results["gc_steady"] = GC.since(gc_mark)
        results["steady"] = {
            "cpu_s": cpu,
            "wall_s": wall,
            "polls": source.polls - polls0,
            "source_cpu_s": source.cpu_s - src0,
        }
        results["rss_mib"] = rss_mib()
        source.interval_s = 3600.0
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(60)
        stats.sort_stats("tottime").print_stats(30)
        results["profile"] = out.getvalue()
    return results


def report(results: dict, args) -> None:
    rows, total = results["rows"], results["cells_total"]
    print(f"GPU table: {args.hosts} hosts x {args.per_host} GPUs, {rows} table rows, {total} cells, 160x48 headless")
    print()
    print("refresh (rebuild_view start -> painted), per poll:")
    print(
        f"  {'poll':>4} {'source':>8} {'build_view':>10} {'history':>8} {'rebuild':>8} {'paint':>7} {'to paint':>9} {'cells written':>14}"
    )
    moving = [r for r in results["refresh"] if not r["steady"]]
    for n, r in enumerate(results["refresh"]):
        label = "same" if r["steady"] else str(n + 1)
        print(
            f"  {label:>4} {r['source_cpu_s'] * 1000:7.0f}ms {r.get('build_view', 0) * 1000:8.0f}ms {r.get('history', 0) * 1000:6.0f}ms"
            f" {r.get('rebuild', 0) * 1000:6.0f}ms {r['paint_s'] * 1000:5.0f}ms {r['to_paint_s'] * 1000:7.0f}ms {r['cells']:>7} ({100 * r['cells'] / total:4.1f} %)"
        )
    print(f"  garbage collector during these polls: {results['gc_refresh']}")
    refresh_p50 = statistics.median(r["to_paint_s"] for r in moving)
    cells_p50 = statistics.median(r["cells"] for r in moving)
    same = next(r for r in results["refresh"] if r["steady"])
    print()
    print("key-to-paint (key delivered -> first paint after the screen reacted); cpu = until idle again:")
    print(f"  {'key':<20} {'n':>4} {'p50':>7} {'p95':>7} {'max':>7} {'cpu p50':>8} {'cpu p95':>8} {'paint p50':>9}")
    all_lat = []
    for label, samples in results["keys"].items():
        lat = [s[0] * 1000 for s in samples]
        cpu = [s[1] * 1000 for s in samples]
        paint = [s[2] * 1000 for s in samples]
        all_lat += lat
        print(
            f"  {label:<20} {len(lat):>4} {pct(lat, 50):6.1f}ms {pct(lat, 95):6.1f}ms {max(lat):6.1f}ms"
            f" {pct(cpu, 50):7.1f}ms {pct(cpu, 95):7.1f}ms {pct(paint, 50):7.1f}ms"
        )
    print(f"  garbage collector during these presses: {results['gc_keys']}")
    worst_p95 = max((pct([s[0] * 1000 for s in samples], 95) for samples in results["keys"].values()), default=0.0)
    steady = results["steady"]
    cpu_pct = 100 * steady["cpu_s"] / steady["wall_s"]
    ui_pct = 100 * (steady["cpu_s"] - steady["source_cpu_s"]) / steady["wall_s"]
    print()
    print(
        f"steady refresh: {steady['polls']} polls in {steady['wall_s']:.1f} s, process CPU {steady['cpu_s']:.2f} s"
        f" = {cpu_pct:.1f} % of one core (synthetic source {steady['source_cpu_s']:.2f} s; without it {ui_pct:.1f} %)"
    )
    print(f"  garbage collector: {results['gc_steady']}")
    print()
    print(f"  {'measure':<44} {'value':>10} {'target':>10} {'ratio':>6}")

    def line(name: str, value: float, target: float | None, unit: str, fmt: str = "{:.1f}") -> None:
        if target is None:
            print(f"  {name:<44} {fmt.format(value) + unit:>10} {'—':>10} {'':>6}")
            return
        ratio = value / target if target else 0.0
        verdict = "ok" if value <= target else "MISSED"
        print(f"  {name:<44} {fmt.format(value) + unit:>10} {fmt.format(target) + unit:>10} {ratio:6.2f} {verdict}")

    line("refresh: cells written (p50, 10 % GPUs moved)", cells_p50, None, "", "{:.0f}")
    line("refresh: cells written, nothing visible moved", same["cells"], 0, "", "{:.0f}")
    line("refresh: rebuild -> painted (p50)", refresh_p50 * 1000, None, " ms", "{:.0f}")
    if all_lat:
        line("key-to-paint p95, worst key", worst_p95, TARGET_KEY_P95_MS, " ms")
        line("key-to-paint p95, all presses", pct(all_lat, 95), TARGET_KEY_P95_MS, " ms")
    line("CPU, steady 2 s refresh (whole process)", cpu_pct, TARGET_CPU_PCT, " %")
    line("peak RSS", results["rss_mib"], TARGET_RSS_MIB, " MiB", "{:.0f}")
    if "profile" in results:
        print()
        print(results["profile"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--change", type=float, default=0.10, help="share of GPUs whose readings move per poll")
    parser.add_argument("--refreshes", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4, help="rounds of filter/sort/fold/worst presses")
    parser.add_argument("--seconds", type=float, default=60.0, help="wall time of the steady CPU phase")
    parser.add_argument("--profile", action="store_true", help="cProfile the refresh and key phases")
    args = parser.parse_args()
    report(asyncio.run(run(args)), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
