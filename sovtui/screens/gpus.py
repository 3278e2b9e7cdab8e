"""Provides the GPUs screen: every GPU of the fleet grouped by host, worst first, with health reasons."""

from __future__ import annotations

import shutil
import subprocess
from operator import attrgetter, itemgetter, le

from rich.text import Text
from textual import work
from textual.binding import Binding

from ..model.export import rfc3339
from ..model.history import sparkline
from ..model.types import Health, Verdict
from ..model.view import ClusterView, GpuRow
from ..widgets.fmt import LEVEL_STYLE, fmt_age, fmt_num, level_text
from .base import Row, TableScreen
from .dialogs import DetailScreen

HOST_PREFIX = "host:"


def gpu_fields(item: GpuRow, view: ClusterView, history, ranges: dict | None = None) -> list[tuple[str, str | Text]]:
    """Everything known about one GPU, for the detail view.

    ``ranges`` (metric -> values from a Prometheus range query) wins over the in-memory ``history``.
    """
    g, v = item.gpu, item.verdict
    host = next((h for h in view.gpu_hosts or () if h.name == g.host), None)
    fields: list[tuple[str, str | Text]] = [("health", level_text(v.level))]
    fields += [("reason", reason) for reason in v.reasons] or [("reason", "none: all rules pass")]
    fields += [
        ("host", g.host + (f"  (driver {host.driver_version}, CUDA {host.cuda_version}" + (f", via {host.backend})" if host.backend else ")") if host and host.driver_version else "")),
        ("GPU", f"{g.index}  {g.name or '?'}  {g.uuid or ''}"),
        ("PCI bus", g.pci_bus_id or "—"),
        ("utilisation", f"gpu {fmt_num(g.util_pct, '%')}, memory bus {fmt_num(g.mem_util_pct, '%')}"),
        ("memory", f"{fmt_num(g.mem_used_mib, ' MiB')} of {fmt_num(g.mem_total_mib, ' MiB')} ({fmt_num(g.mem_pct, '%')})"),
        ("temperature", f"{fmt_num(g.temp_c, ' °C')} (slowdown {fmt_num(g.temp_slowdown_c, ' °C')}, shutdown {fmt_num(g.temp_shutdown_c, ' °C')})"),
        ("power", f"{fmt_num(g.power_w, ' W')} of {fmt_num(g.power_limit_w, ' W')}"),
        ("clocks", f"SM {fmt_num(g.sm_clock_mhz, ' MHz')}, memory {fmt_num(g.mem_clock_mhz, ' MHz')}"),
        ("throttle", ", ".join(g.throttle_reasons) or "none"),
        ("ECC", f"mode {_onoff(g.ecc_mode)}; volatile corrected {fmt_num(g.ecc_corrected_volatile)}, uncorrected {fmt_num(g.ecc_uncorrected_volatile)}; aggregate uncorrected {fmt_num(g.ecc_uncorrected_aggregate)}"),
        ("row remap", f"pending {_yesno(g.row_remap_pending)}, failed {_yesno(g.row_remap_failure)}; retired pages pending {_yesno(g.retired_pages_pending)}"),
        ("NVLink", "—" if g.nvlink_total is None else f"{g.nvlink_total - (g.nvlink_down or 0)}/{g.nvlink_total} links up"),
        ("MIG", _onoff(g.mig_mode) + "".join(f"\n  GI {m.gi}/CI {m.ci} {m.profile} {m.uuid}" for m in g.mig_instances)),
        ("workload", g.workload or "—"),
    ]
    for p in g.processes:
        fields.append(("process", f"pid {p.pid} {p.name} {fmt_num(p.used_mib, ' MiB')} → {p.workload}"))
    where = "last hour, Prometheus" if ranges else "since start, in memory"
    for label, metric, lo, hi in (("util history", "util_pct", 0, 100), ("memory history", "mem_pct", 0, 100), ("temp history", "temp_c", None, None), ("power history", "power_w", 0, None)):
        series = (ranges or {}).get(metric) or (history.series(g.key, metric) if history is not None else [])
        present = [x for x in series if x is not None]
        if present:
            fields.append((label, Text(sparkline(series, 60, lo, hi), style="cyan") + Text(f"  now {present[-1]:.0f}, min {min(present):.0f}, max {max(present):.0f} ({where})", style="dim")))
    if g.xids:
        for x in reversed(g.xids):
            age = f"{fmt_age(view.now - x.at)} ago" if x.at else "time unknown"
            fields.append(("XID", f"{x.code} {age} ({rfc3339(x.at) or '?'}) {x.message}"))
    else:
        fields.append(("XID", "none seen"))
    fields.append(("sources", ", ".join(g.sources) or "—"))
    if g.error:
        fields.append(("read error", g.error))
    return fields


def _yesno(value: bool | None) -> str:
    return "—" if value is None else ("YES" if value else "no")


def _onoff(value: bool | None) -> str:
    return "—" if value is None else ("on" if value else "off")


#: shared cell texts: a cell is never modified once made, and the fleet repeats the same few
_TEXTS: dict[tuple[str, str], Text] = {}
_LEVEL_TEXTS: dict[tuple[Health, str], Text] = {}


def _text(plain: str, style: str) -> Text:
    text = _TEXTS.get((plain, style))
    if text is None:
        if len(_TEXTS) > 4096:
            _TEXTS.clear()
        text = _TEXTS[(plain, style)] = Text(plain, style=style)
    return text


def _level_text(level: Health, reason: str) -> Text:
    text = _LEVEL_TEXTS.get((level, reason))
    if text is None:
        if len(_LEVEL_TEXTS) > 4096:
            _LEVEL_TEXTS.clear()
        text = _LEVEL_TEXTS[(level, reason)] = level_text(level, reason)
    return text


_ROW_KEY = attrgetter("key")
_HOST, _LEVEL = itemgetter(0), itemgetter(1)


_SHOWN = attrgetter("host", "index", "name", "uuid", "util_pct", "mem_used_mib", "mem_total_mib", "temp_c", "power_w", "workload")
_HOST_INDEX = attrgetter("gpu.host", "gpu.index")
_LEVEL_OF = attrgetter("verdict.level")
_NEGATIVE_RANK = {level: -level.rank for level in Health}


def _worst_first(gpus: tuple[GpuRow, ...]) -> list[GpuRow]:
    """The GPUs by (worst level, host, index)."""
    places = list(map(_HOST_INDEX, gpus))
    if all(map(le, places, places[1:])):  # as the view lists them: a stable sort on the level is enough
        ranks = list(map(_NEGATIVE_RANK.__getitem__, map(_LEVEL_OF, gpus)))
        return [gpus[i] for i in sorted(range(len(gpus)), key=ranks.__getitem__)]
    return sorted(gpus, key=lambda r: (-r.verdict.level.rank, r.gpu.host, r.gpu.index))


def _gpu_row(item: GpuRow) -> Row:
    g, v = item.gpu, item.verdict
    model = g.name.replace("NVIDIA ", "")
    cells = (
        g.host,
        str(g.index),
        model,
        fmt_num(g.util_pct, "%"),
        fmt_num(g.mem_pct, "%"),
        fmt_num(g.temp_c, "°"),
        fmt_num(g.power_w, "W"),
        _level_text(v.level, v.first_reason),
        g.workload or _text("—", "dim"),
    )
    search = " ".join([g.host, model, g.uuid, v.level.value, *v.reasons, g.workload]).lower()
    sort = (g.host, g.index, model, g.util_pct, g.mem_pct, g.temp_c, g.power_w, -v.level.rank, g.workload)
    return Row(g.key, cells, search, sort)


class GpusScreen(TableScreen):
    """Fleet GPU table grouped by host (``enter``/``space`` on a host folds it), worst hosts first."""

    NAME = "gpus"
    TITLE_TEXT = "GPUs"
    HELP = "every GPU of every host: NVML over SSH, DCGM via Prometheus, fused by UUID"
    EMPTY = "no GPU source: set prometheus_url (dcgm-exporter) or [sites.X.ssh] hosts"
    COLUMNS = (
        ("host", "Host", 9),
        ("gpu", "#", 2),
        ("model", "Model", 12),
        ("util", "Util", 4),
        ("mem", "Mem", 4),
        ("temp", "Temp", 4),
        ("power", "Power", 5),
        ("health", "Health", 30),
        ("workload", "Workload", None),
    )
    WIDE_ONLY = frozenset({"model"})

    BINDINGS = [
        Binding("w", "worst", "Worst", id="gpus.worst"),
        Binding("space", "fold", "Fold", id="gpus.fold"),
        Binding("g", "toggle_groups", "Group", show=False, id="gpus.group"),
        Binding("s", "shell", "Shell", id="gpus.shell"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.grouped = True
        self.collapsed: set[str] = set()
        self._by_key: dict[str, GpuRow] = {}
        #: per GPU key: (host, level, level rank)
        self._info: dict[str, tuple[str, Health, int]] = {}
        self._ranges: dict[str, dict] = {}
        # rows kept between renders: per GPU key (shown values, verdict, row, info) and (row, its tree rows);
        # per host its host row and its block of rows; the grouping of the rows by host
        self._row_cache: dict[str, tuple[tuple, Verdict, Row, tuple[str, Health, int]]] = {}
        self._tree_rows: dict[str, tuple[Row, dict[bool, Row]]] = {}
        self._host_rows: dict[str, tuple[tuple, tuple[Row, ...], Row]] = {}
        self._blocks: dict[str, tuple[list[Row], bool, str, list[Row]]] = {}
        self._grouped: tuple | None = None

    # -- rows ------------------------------------------------------------------------------
    def build_rows(self, view: ClusterView) -> list[Row] | None:
        """One row per GPU, worst first; a GPU whose shown values did not change keeps its Row object.

        Keeping the object lets the table skip the row without comparing its cells, and keeps
        the host rows and tree rows built from it.
        """
        if view.gpus is None:
            return None
        previous = self._row_cache
        cache: dict[str, tuple[tuple, Verdict, Row, tuple[str, Health, int]]] = {}
        info: dict[str, tuple[str, Health, int]] = {}
        rows = []
        for item in _worst_first(view.gpus):
            g, v = item.gpu, item.verdict
            key = g.key
            shown = _SHOWN(g)  # everything of the GPU the row shows, searches or sorts on, with the verdict
            entry = previous.get(key)
            if entry is None or entry[0] != shown or (entry[1] is not v and entry[1] != v):
                entry = (shown, v, _gpu_row(item), (g.host, v.level, v.level.rank))
            cache[key] = entry
            info[key] = entry[3]
            rows.append(entry[2])
        self._row_cache = cache
        self._info = info
        if len(self._tree_rows) > 2 * len(cache) + 100:  # GPUs that left the fleet
            self._tree_rows = {}
        if len(self._host_rows) > 2 * len(cache) + 100:
            self._host_rows = {}
            self._blocks = {}
        self._by_key = {r.gpu.key: r for r in view.gpus}
        return rows

    def visible_rows(self) -> list[Row]:
        rows = super().visible_rows()
        if not self.grouped:
            return rows
        groups, hosts, host_errors = self._grouping(rows)
        out: list[Row] = []
        for host in hosts:
            out.extend(self._host_block(host, groups[host], host_errors.get(host, "")))
        return out

    def _grouping(self, rows: list[Row]) -> tuple[dict[str, list[Row]], list[str], dict[str, str]]:
        """The rows by host and the hosts in display order, kept while the rows and filter are."""
        host_errors = {h.name: h.error for h in (self.view.gpu_hosts or ()) if h.error} if self.view else {}
        stamp = (self.filter_text, self.sort_column, host_errors)
        cached = self._grouped
        if cached is not None and cached[0] is rows and cached[1] == stamp:
            return cached[2], cached[3], host_errors
        info = self._info
        groups: dict[str, list[Row]] = {}
        for row in rows:
            host = info[row.key][0]
            members = groups.get(host)
            if members is None:
                groups[host] = [row]
            else:
                members.append(row)
        for host in host_errors:
            if host not in groups and (not self.filter_text or all(t in host for t in self.filter_text.lower().split())):
                groups[host] = []
        if self.sort_column is None:  # worst host first
            order = {}
            for host, members in groups.items():
                worst = max((info[r.key][2] for r in members), default=Health.CRIT.rank if host in host_errors else 0)
                order[host] = (-worst, host)
            hosts = sorted(groups, key=order.__getitem__)
        else:
            hosts = list(groups)  # in the order of the sorted rows
        self._grouped = (rows, stamp, groups, hosts)
        return groups, hosts, host_errors

    def _host_block(self, host: str, members: list[Row], error: str) -> list[Row]:
        """The host's row and, unless folded, its GPUs as a tree (kept while its rows are)."""
        folded = host in self.collapsed
        cached = self._blocks.get(host)
        if cached is not None and cached[1] is folded and cached[2] == error and (cached[0] is members or cached[0] == members):
            return cached[3]
        block = [self._host_row(host, members, error)]
        if not folded:
            last = len(members) - 1
            block += [self._tree_row(row, i == last) for i, row in enumerate(members)]
        self._blocks[host] = (members, folded, error, block)
        return block

    def _tree_row(self, row: Row, last: bool) -> Row:
        """``row`` with a tree branch instead of its host name (both branches kept while ``row`` is)."""
        cached = self._tree_rows.get(row.key)
        if cached is None or cached[0] is not row:
            cached = self._tree_rows[row.key] = (row, {})
        tree = cached[1].get(last)
        if tree is None:
            branch = _text("  └─" if last else "  ├─", "dim")
            tree = cached[1][last] = Row(row.key, (branch, *row.cells[1:]), row.search, row.sort)
        return tree

    def _host_row(self, host: str, members: list[Row], error: str) -> Row:
        folded = host in self.collapsed
        # the same GPU rows in any order make the same host row (a GPU row is kept while its values are)
        stamp = (frozenset(map(id, members)), folded, error)
        cached = self._host_rows.get(host)
        if cached is not None and cached[0] == stamp:
            return cached[2]
        items = [self._by_key[r.key] for r in members]
        level = Health.worst(i.verdict.level for i in items) if items else (Health.CRIT if error else Health.UNKNOWN)
        bad = sum(1 for i in items if i.verdict.level in (Health.WARN, Health.CRIT))
        utils = [i.gpu.util_pct for i in items if i.gpu.util_pct is not None]
        mems = [i.gpu.mem_pct for i in items if i.gpu.mem_pct is not None]
        temps = [i.gpu.temp_c for i in items if i.gpu.temp_c is not None]
        power = [i.gpu.power_w for i in items if i.gpu.power_w is not None]
        fold = "▸" if folded else "▾"
        summary = error if error else (f"{bad} of {len(items)} need attention" if bad else f"{len(items)} GPUs ok")
        workloads = sorted({i.gpu.workload for i in items if i.gpu.workload})
        cells = (
            Text(f"{fold} {host}", style="bold"),
            _text(str(len(items)), "bold"),
            _text("", ""),
            _text(fmt_num(sum(utils) / len(utils), "%") if utils else "—", "bold"),
            _text(fmt_num(sum(mems) / len(mems), "%") if mems else "—", "bold"),
            _text(fmt_num(max(temps), "°") if temps else "—", "bold"),
            _text(fmt_num(sum(power) / 1000, "kW", 1) if power else "—", "bold"),
            _level_text(level, summary) if not error else Text(f"✗ {error}", style=LEVEL_STYLE[Health.CRIT]),
            _text(f"{len(workloads)} workloads" if workloads else "", "dim"),
        )
        row = Row(HOST_PREFIX + host, cells, host, ())
        self._host_rows[host] = (stamp, tuple(members), row)  # the members keep their ids unique
        return row

    def count_text(self, rows: list[Row]) -> str:
        # host rows have no entry in _info; GPU rows do
        found = list(filter(None, map(self._info.get, map(_ROW_KEY, rows))))
        levels = list(map(_LEVEL, found))
        hosts = len(set(map(_HOST, found)))
        crit, warn = levels.count(Health.CRIT), levels.count(Health.WARN)
        folded = f" · {len(self.collapsed)} hosts folded" if self.collapsed else ""
        return f"{len(found)} of {len(self._rows)} GPUs on {hosts} hosts · {crit} crit · {warn} warn{folded}"

    def _row(self, key: str) -> GpuRow | None:
        return self._by_key.get(key)

    # -- keys ------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event) -> None:
        key = event.row_key.value
        if key and key.startswith(HOST_PREFIX):
            event.stop()
            self._toggle(key[len(HOST_PREFIX):])

    def open_row(self, row: Row) -> None:
        if row.key.startswith(HOST_PREFIX):
            self._toggle(row.key[len(HOST_PREFIX):])
            return
        key = row.key

        def build(view: ClusterView):
            item = next((r for r in view.gpus or () if r.gpu.key == key), None)
            if item is None:
                return [("gone", "this GPU is no longer reported by any source")]
            return gpu_fields(item, view, getattr(self.app, "gpu_history", None), self._ranges.get(key))

        item = self._row(key)
        title = f"GPU {item.gpu.host}/{item.gpu.index}" if item else key
        self._detail = DetailScreen(title, build(self.view), copy=item.gpu.host if item else key, builder=build)
        self.app.push_screen(self._detail)
        if item is not None and item.gpu.uuid and "dcgm" in item.gpu.sources:
            self.load_ranges(item.gpu.uuid, key)

    @work(thread=True, exclusive=True, group="gpu-history", exit_on_error=False)
    def load_ranges(self, uuid: str, key: str) -> None:
        """Fetch the GPU's last hour from Prometheus off the UI thread (bounded by the source's timeout)."""
        source = next((s for s in self.app.hub.sources.values() if hasattr(s, "gpu_history_sync")), None)
        if source is None:
            return
        try:
            ranges = source.gpu_history_sync(uuid)
        except Exception as exc:  # noqa: BLE001 - history is a nicety; say why it is missing
            self.app.call_from_thread(self.notify, f"no history from {source.name}: {exc}", severity="warning", timeout=3)
            return
        self.app.call_from_thread(self._got_ranges, key, ranges)

    def _got_ranges(self, key: str, ranges: dict) -> None:
        self._ranges[key] = ranges
        detail = getattr(self, "_detail", None)
        if detail is not None and detail.is_attached and self.app.view is not None:
            detail.show_view(self.app.view)

    def _toggle(self, host: str) -> None:
        if host in self.collapsed:
            self.collapsed.discard(host)
        else:
            self.collapsed.add(host)
        self.render_rows()
        keys = self.table.row_keys_in_order
        if HOST_PREFIX + host in keys:
            self.table.move_cursor(row=keys.index(HOST_PREFIX + host), animate=False)

    def action_fold(self) -> None:
        key = self.table.selected_key()
        if key is None:
            return
        host = key[len(HOST_PREFIX):] if key.startswith(HOST_PREFIX) else self._row(key).gpu.host
        self._toggle(host)

    def action_toggle_groups(self) -> None:
        self.grouped = not self.grouped
        self.render_rows()

    def action_worst(self) -> None:
        """Put the cursor on the worst GPU (unfolding its host)."""
        worst = min(self._by_key.values(), key=lambda r: (-r.verdict.level.rank, r.gpu.host, r.gpu.index), default=None)
        if worst is None or worst.verdict.level is Health.OK:
            self.notify("every GPU is healthy", timeout=2)
            return
        self.collapsed.discard(worst.gpu.host)
        self.filter_text = ""
        self.render_rows()
        keys = self.table.row_keys_in_order
        if worst.gpu.key in keys:
            self.table.move_cursor(row=keys.index(worst.gpu.key), animate=False)

    def copy_text(self, row: Row) -> str:
        if row.key.startswith(HOST_PREFIX):
            return row.key[len(HOST_PREFIX):]
        gpu = self._row(row.key)
        return gpu.gpu.host if gpu else row.key

    def selected_host(self) -> str | None:
        key = self.table.selected_key()
        if key is None:
            return None
        if key.startswith(HOST_PREFIX):
            return key[len(HOST_PREFIX):]
        item = self._row(key)
        return item.gpu.host if item else None

    def check_action(self, action: str, parameters: tuple) -> bool | None:
        if action == "shell":
            # a shell on a simulated host would only fail; hide the key in the demo
            return not self.app.site.demo and shutil.which("ssh") is not None
        return True

    def action_shell(self) -> None:
        """An interactive SSH shell on the selected host; sovtui resumes when it exits."""
        host = self.selected_host()
        if host is None:
            return
        try:
            with self.app.suspend():
                subprocess.run(["ssh", host], check=False)
        except Exception as exc:  # noqa: BLE001 - e.g. suspend unsupported in a browser
            self.notify(f"cannot open a shell on {host}: {exc}", severity="error")
