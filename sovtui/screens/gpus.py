"""Provides the GPUs screen: every GPU of the fleet grouped by host, worst first, with health reasons."""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from itertools import compress, repeat
from operator import and_, attrgetter, eq, is_, itemgetter, not_

from rich.text import Text
from textual import work
from textual.binding import Binding

from ..model.types import Health, Verdict
from ..model.view import ClusterView, GpuRow
from ..sources.names import BadName, ssh_argv
from ..widgets.fmt import LEVEL_STYLE, fmt_num
from .base import Row, TableScreen
from .dialogs import DetailScreen
from .gpu_detail import gpu_fields
from .gpu_rows import gpu_row, shared_level_text, shared_text, tree_row, worst_first
from .ops import HostActions, drain_reason, host_action_bindings

HOST_PREFIX = "host:"


# getters for the C-level passes over thousands of rows
_KEY = attrgetter("key")  # of a Row or a Gpu
_GPU, _VERDICT = attrgetter("gpu"), attrgetter("verdict")  # of a GpuRow
_LEVEL_OF = attrgetter("verdict.level")  # of a GpuRow
_UTIL, _MEM_PCT, _TEMP, _POWER, _WORKLOAD = (
    attrgetter(name) for name in ("util_pct", "mem_pct", "temp_c", "power_w", "workload")
)
#: everything of a GPU its row shows, searches or sorts on (besides its verdict)
_SHOWN = attrgetter(
    "host", "index", "name", "uuid", "util_pct", "mem_used_mib", "mem_total_mib", "temp_c", "power_w", "workload"
)
_FIRST, _SECOND, _THIRD, _FOURTH, _FIFTH, _SIXTH = (itemgetter(i) for i in range(6))
_HOST, _LEVEL, _RANK = itemgetter(0), itemgetter(1), itemgetter(2)  # of a GPU's info: (host, level, level rank)
_HEALTH_RANK = {level: level.rank for level in Health}
#: what a GPU without a kept row compares as: nothing equals it
_NO_ENTRY = (object(), None)


def _same_verdict(kept: Verdict | None, verdict: Verdict) -> bool:
    return kept is verdict or kept == verdict


def _same_rows(kept: list[Row], rows: list[Row]) -> bool:
    """The very same row objects in the same order (a GPU's row is kept while its values are)."""
    return kept is rows or (len(kept) == len(rows) and all(map(is_, kept, rows)))


class GpusScreen(HostActions, TableScreen):
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
        *host_action_bindings("gpus"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.grouped = True
        self.collapsed: set[str] = set()
        self._by_key: dict[str, GpuRow] = {}
        #: per GPU key: (host, level, level rank)
        self._info: dict[str, tuple[str, Health, int]] = {}
        self._ranges: dict[str, dict] = {}
        # rows kept between renders: per GPU key (shown values, verdict, row, info, tree rows);
        # per host its host row and its block of rows; the grouping of the rows by host
        self._row_cache: dict[str, tuple] = {}
        self._tree_inner: dict[str, Row] = {}  # a GPU's row under its host: ├─
        self._tree_last: dict[str, Row] = {}  # ... and as its host's last: └─
        self._host_rows: dict[str, tuple[tuple, tuple[Row, ...], Row]] = {}
        self._blocks: dict[str, tuple] = {}
        self._grouped: tuple | None = None
        self._tally: tuple | None = None

    # -- rows ------------------------------------------------------------------------------
    def build_rows(self, view: ClusterView) -> list[Row] | None:
        """One row per GPU, worst first; a GPU whose shown values did not change keeps its Row object.

        Keeping the object lets the table skip the row without comparing its cells, and keeps
        the host rows and tree rows built from it.
        """
        if view.gpus is None:
            return None
        items = worst_first(view.gpus)
        gpus = list(map(_GPU, items))
        keys = list(map(_KEY, gpus))
        shown = list(map(_SHOWN, gpus))  # everything of a GPU its row shows, searches or sorts on
        verdicts = list(map(_VERDICT, items))
        entries = list(map(self._row_cache.get, keys, repeat(_NO_ENTRY)))
        # an entry is (shown, verdict, row, info, tree row, last tree row); keep those whose GPU reads the same
        same = map(and_, map(eq, map(_FIRST, entries), shown), map(_same_verdict, map(_SECOND, entries), verdicts))
        for index in compress(range(len(items)), map(not_, same)):
            item, v = items[index], verdicts[index]
            row = gpu_row(item)
            info = (item.gpu.host, v.level, v.level.rank)
            entries[index] = (shown[index], v, row, info, tree_row(row, False), tree_row(row, True))
        self._row_cache = dict(zip(keys, entries, strict=True))
        self._info = dict(zip(keys, map(_FOURTH, entries), strict=True))
        self._tree_inner = dict(zip(keys, map(_FIFTH, entries), strict=True))
        self._tree_last = dict(zip(keys, map(_SIXTH, entries), strict=True))
        if len(self._host_rows) > 2 * len(self._row_cache) + 100:  # hosts that left the fleet
            self._host_rows = {}
            self._blocks = {}
        self._by_key = dict(zip(map(_KEY, map(_GPU, view.gpus)), view.gpus, strict=True))
        return list(map(_THIRD, entries))

    def visible_rows(self) -> list[Row]:
        rows = super().visible_rows()
        if not self.grouped:
            return rows
        groups, hosts, host_errors = self._grouping(rows)
        out: list[Row] = []
        gpus = shown_hosts = crit = warn = 0
        for host in hosts:
            block, tally = self._host_block(host, groups[host], host_errors.get(host, ""))
            out += block
            if tally[0]:
                gpus, shown_hosts, crit, warn = gpus + tally[0], shown_hosts + 1, crit + tally[1], warn + tally[2]
        self._tally = (out, (gpus, shown_hosts, crit, warn))  # for count_text
        return out

    def _grouping(self, rows: list[Row]) -> tuple[dict[str, list[Row]], list[str], dict[str, str]]:
        """The rows by host and the hosts in display order.

        Kept while the rows and filter are; after a refresh that kept every GPU in its place
        (the usual one) only the new row objects are put in the same places.
        """
        host_errors = {h.name: h.error for h in (self.view.gpu_hosts or ()) if h.error} if self.view else {}
        stamp = (self.filter_text, self.sort_column, host_errors)
        cached = self._grouped
        if cached is not None and cached[0] is rows and cached[1] == stamp:
            return cached[2], cached[3], host_errors
        info = self._info
        keys = list(map(_KEY, rows))
        if cached is not None and cached[1] == stamp and cached[4] == keys:
            places = cached[5]
            groups = {host: list(map(rows.__getitem__, indexes)) for host, indexes in places.items()}
        else:
            # each host's rows in their order, the hosts in the order they first appear
            hosts_of = list(map(_HOST, map(info.__getitem__, keys)))
            first = dict.fromkeys(hosts_of)
            position = dict(zip(first, range(len(first)), strict=True))
            by_host = sorted(range(len(keys)), key=list(map(position.__getitem__, hosts_of)).__getitem__)
            counts = Counter(hosts_of)
            groups, places = {}, {}
            start = 0
            for host in first:
                end = start + counts[host]
                places[host] = indexes = by_host[start:end]
                groups[host] = list(map(rows.__getitem__, indexes))
                start = end
            for host in host_errors:
                if host not in groups and (
                    not self.filter_text or all(t in host for t in self.filter_text.lower().split())
                ):
                    groups[host] = []
                    places[host] = []
        if self.sort_column is None:  # worst host first
            ranks = list(map(_RANK, map(info.__getitem__, keys)))
            order = {
                host: (
                    -max(map(ranks.__getitem__, indexes), default=Health.CRIT.rank if host in host_errors else 0),
                    host,
                )
                for host, indexes in places.items()
            }
            hosts = sorted(groups, key=order.__getitem__)
        else:
            hosts = list(groups)  # in the order of the sorted rows
        self._grouped = (rows, stamp, groups, hosts, keys, places)
        return groups, hosts, host_errors

    def _host_block(self, host: str, members: list[Row], error: str) -> tuple[list[Row], tuple[int, int, int]]:
        """The host's row and, unless folded, its GPUs as a tree, with (GPUs, crit, warn) among
        the tree's rows; kept while the host's rows are."""
        folded = host in self.collapsed
        cached = self._blocks.get(host)
        if cached is not None and cached[1] is folded and cached[2] == error and _same_rows(cached[0], members):
            return cached[3], cached[4]
        block = [self._host_row(host, members, error)]
        tally = (0, 0, 0)
        if not folded and members:
            keys = list(map(_KEY, members))
            block += map(self._tree_inner.__getitem__, keys[:-1])
            block.append(self._tree_last[keys[-1]])
            levels = list(map(_LEVEL, map(self._info.__getitem__, keys)))
            tally = (len(keys), levels.count(Health.CRIT), levels.count(Health.WARN))
        self._blocks[host] = (members, folded, error, block, tally)
        return block, tally

    def _host_row(self, host: str, members: list[Row], error: str) -> Row:
        folded = host in self.collapsed
        # the same GPU rows in any order make the same host row (a GPU row is kept while its values are)
        stamp = (frozenset(map(id, members)), folded, error)
        cached = self._host_rows.get(host)
        if cached is not None and cached[0] == stamp:
            return cached[2]
        items = list(map(self._by_key.__getitem__, map(_KEY, members)))
        gpus = list(map(_GPU, items))
        levels = list(map(_LEVEL_OF, items))
        # the first worst level, as Health.worst picks it
        level = max(levels, key=_HEALTH_RANK.__getitem__) if items else (Health.CRIT if error else Health.UNKNOWN)
        bad = levels.count(Health.WARN) + levels.count(Health.CRIT)
        utils = [x for x in map(_UTIL, gpus) if x is not None]
        mems = [x for x in map(_MEM_PCT, gpus) if x is not None]
        temps = [x for x in map(_TEMP, gpus) if x is not None]
        power = [x for x in map(_POWER, gpus) if x is not None]
        fold = "▸" if folded else "▾"
        summary = error if error else (f"{bad} of {len(items)} need attention" if bad else f"{len(items)} GPUs ok")
        workloads = sorted({x for x in map(_WORKLOAD, gpus) if x})
        cells = (
            Text(f"{fold} {host}", style="bold"),
            shared_text(str(len(items)), "bold"),
            shared_text("", ""),
            shared_text(fmt_num(sum(utils) / len(utils), "%") if utils else "—", "bold"),
            shared_text(fmt_num(sum(mems) / len(mems), "%") if mems else "—", "bold"),
            shared_text(fmt_num(max(temps), "°") if temps else "—", "bold"),
            shared_text(fmt_num(sum(power) / 1000, "kW", 1) if power else "—", "bold"),
            shared_level_text(level, summary) if not error else Text(f"✗ {error}", style=LEVEL_STYLE[Health.CRIT]),
            shared_text(f"{len(workloads)} workloads" if workloads else "", "dim"),
        )
        row = Row(HOST_PREFIX + host, cells, host, ())
        self._host_rows[host] = (stamp, tuple(members), row)  # the members keep their ids unique
        return row

    def count_text(self, rows: list[Row]) -> str:
        tally = self._tally
        if tally is not None and tally[0] is rows:  # counted while grouping them
            gpus, hosts, crit, warn = tally[1]
        else:  # host rows have no entry in _info; GPU rows do
            found = list(filter(None, map(self._info.get, map(_KEY, rows))))
            levels = list(map(_LEVEL, found))
            gpus, hosts = len(found), len(set(map(_HOST, found)))
            crit, warn = levels.count(Health.CRIT), levels.count(Health.WARN)
        folded = f" · {len(self.collapsed)} hosts folded" if self.collapsed else ""
        return f"{gpus} of {len(self._rows)} GPUs on {hosts} hosts · {crit} crit · {warn} warn{folded}"

    def _row(self, key: str) -> GpuRow | None:
        return self._by_key.get(key)

    # -- keys ------------------------------------------------------------------------------
    def on_data_table_row_selected(self, event) -> None:
        key = event.row_key.value
        if key and key.startswith(HOST_PREFIX):
            event.stop()
            self._toggle(key[len(HOST_PREFIX) :])

    def open_row(self, row: Row) -> None:
        if row.key.startswith(HOST_PREFIX):
            self._toggle(row.key[len(HOST_PREFIX) :])
            return
        key = row.key

        def build(view: ClusterView):
            item = next((r for r in view.gpus or () if r.gpu.key == key), None)
            if item is None:
                return [("gone", "this GPU is no longer reported by any source")]
            return gpu_fields(item, view, getattr(self.app, "gpu_history", None), self._ranges.get(key))

        item = self._row(key)
        title = f"GPU {item.gpu.host}/{item.gpu.index}" if item else key
        actions = {}
        fields = build(self.view)
        if item is not None:
            host = item.gpu.host
            reason = drain_reason(self.view, host)
            if reason:  # the verdict recommends a drain: offer it here
                actions["D"] = (f"drain {host}", lambda: self.app.operations.start("drain", [host], reason=reason))
                fields = [("action", Text(f"D: drain {host} — {reason}", style="bold yellow")), *fields]
        self._detail = DetailScreen(title, fields, copy=item.gpu.host if item else key, builder=build, actions=actions)
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
            self.app.call_from_thread(
                self.notify, f"no history from {source.name}: {exc}", severity="warning", timeout=3
            )
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
        host = key[len(HOST_PREFIX) :] if key.startswith(HOST_PREFIX) else self._row(key).gpu.host
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
            return row.key[len(HOST_PREFIX) :]
        gpu = self._row(row.key)
        return gpu.gpu.host if gpu else row.key

    def selected_host(self) -> str | None:
        key = self.table.selected_key()
        if key is None:
            return None
        if key.startswith(HOST_PREFIX):
            return key[len(HOST_PREFIX) :]
        item = self._row(key)
        return item.gpu.host if item else None

    def op_hosts(self) -> list[str]:
        host = self.selected_host()
        return [host] if host else []

    def op_reason(self, hosts: list[str]) -> str:
        """The worst failing GPU's verdict on the host: what a drain would be for."""
        return drain_reason(self.view, hosts[0]) if hosts and self.view is not None else ""

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
            argv = ssh_argv(host)
        except BadName as exc:  # a name from the cluster is data: never an ssh option
            self.notify(f"no shell: {exc}", severity="error")
            return
        try:
            with self.app.suspend():
                subprocess.run(argv, check=False)
        except Exception as exc:  # noqa: BLE001 - e.g. suspend unsupported in a browser
            self.notify(f"cannot open a shell on {host}: {exc}", severity="error")
