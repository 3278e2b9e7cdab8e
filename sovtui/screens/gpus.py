"""Provides the GPUs screen: one row per GPU of the fleet, worst first, with health reasons."""

from __future__ import annotations

from rich.text import Text

from ..model.export import rfc3339
from ..model.view import ClusterView, GpuRow
from ..widgets.fmt import fmt_num, level_text
from .base import Row, TableScreen
from .dialogs import DetailScreen


class GpusScreen(TableScreen):
    """Fleet GPU table: host, GPU, model, util, memory, temp, power, health, workload."""

    NAME = "gpus"
    TITLE_TEXT = "GPUs"
    HELP = "every GPU of every host: DCGM via Prometheus, NVML over SSH"
    EMPTY = "no GPU source: set prometheus_url (dcgm-exporter) or [sites.X.ssh] hosts"
    COLUMNS = (
        ("host", "Host", 8),
        ("gpu", "#", 2),
        ("model", "Model", 10),
        ("util", "Util", 5),
        ("mem", "Mem", 5),
        ("temp", "Temp", 5),
        ("power", "Power", 6),
        ("health", "Health", 28),
        ("workload", "Workload", None),
    )

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        if view.gpus is None:
            return None
        ordered = sorted(view.gpus, key=lambda r: (-r.verdict.level.rank, r.gpu.host, r.gpu.index))
        rows = []
        for r in ordered:
            g = r.gpu
            model = g.name.replace("NVIDIA ", "")
            cells = (
                g.host,
                str(g.index),
                model,
                fmt_num(g.util_pct, "%"),
                fmt_num(g.mem_pct, "%"),
                fmt_num(g.temp_c, "°C"),
                fmt_num(g.power_w, "W"),
                level_text(r.verdict.level, r.verdict.first_reason),
                g.workload or Text("—", style="dim"),
            )
            search = " ".join([g.host, model, g.uuid, r.verdict.level.value, *r.verdict.reasons, g.workload]).lower()
            sort = (g.host, g.index, model, g.util_pct, g.mem_pct, g.temp_c, g.power_w, -r.verdict.level.rank, g.workload)
            rows.append(Row(g.key, cells, search, sort))
        return rows

    def _row(self, key: str) -> GpuRow | None:
        return next((r for r in (self.view.gpus or ()) if r.gpu.key == key), None) if self.view else None

    def copy_text(self, row: Row) -> str:
        gpu = self._row(row.key)
        return gpu.gpu.host if gpu else row.key

    def open_row(self, row: Row) -> None:
        item = self._row(row.key)
        if item is None:
            return
        g, v = item.gpu, item.verdict
        fields = [
            ("health", level_text(v.level)),
            *[("reason", reason) for reason in v.reasons],
            ("host", g.host),
            ("index", str(g.index)),
            ("uuid", g.uuid or "—"),
            ("model", g.name or "—"),
            ("utilisation", f"gpu {fmt_num(g.util_pct, '%')}, memory {fmt_num(g.mem_util_pct, '%')}"),
            ("memory", f"{fmt_num(g.mem_used_mib, ' MiB')} of {fmt_num(g.mem_total_mib, ' MiB')}"),
            ("temperature", f"{fmt_num(g.temp_c, ' °C')} (slowdown {fmt_num(g.temp_slowdown_c, ' °C')}, shutdown {fmt_num(g.temp_shutdown_c, ' °C')})"),
            ("power", f"{fmt_num(g.power_w, ' W')} of {fmt_num(g.power_limit_w, ' W')}"),
            ("ECC", f"corrected {fmt_num(g.ecc_corrected_volatile)}, uncorrected {fmt_num(g.ecc_uncorrected_volatile)}"),
            ("row remap", f"pending {g.row_remap_pending}, failure {g.row_remap_failure}"),
            ("throttle", ", ".join(g.throttle_reasons) or "none"),
            ("workload", g.workload or "—"),
            ("sources", ", ".join(g.sources)),
        ]
        fields += [("XID", f"{x.code} at {rfc3339(x.at) or '?'} {x.message}") for x in g.xids]
        self.app.push_screen(DetailScreen(f"GPU {g.host}/{g.index}", fields, copy=g.host))
