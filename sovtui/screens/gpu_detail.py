"""Provides the detail fields of one GPU: its readings, health reasons, history sparklines, processes and XIDs."""

from __future__ import annotations

from rich.text import Text

from ..model.export import rfc3339
from ..model.history import sparkline
from ..model.view import ClusterView, GpuRow
from ..widgets.fmt import fmt_age, fmt_num, level_text


def gpu_fields(item: GpuRow, view: ClusterView, history, ranges: dict | None = None) -> list[tuple[str, str | Text]]:
    """Everything known about one GPU, for the detail view.

    ``ranges`` (metric -> values from a Prometheus range query) wins over the in-memory ``history``.
    """
    g, v = item.gpu, item.verdict
    host = next((h for h in view.gpu_hosts or () if h.name == g.host), None)
    fields: list[tuple[str, str | Text]] = [("health", level_text(v.level))]
    fields += [("reason", reason) for reason in v.reasons] or [("reason", "none: all rules pass")]
    fields += [
        (
            "host",
            g.host
            + (
                f"  (driver {host.driver_version}, CUDA {host.cuda_version}"
                + (f", via {host.backend})" if host.backend else ")")
                if host and host.driver_version
                else ""
            ),
        ),
        ("GPU", f"{g.index}  {g.name or '?'}  {g.uuid or ''}"),
        ("PCI bus", g.pci_bus_id or "—"),
        ("utilisation", f"gpu {fmt_num(g.util_pct, '%')}, memory bus {fmt_num(g.mem_util_pct, '%')}"),
        (
            "memory",
            f"{fmt_num(g.mem_used_mib, ' MiB')} of {fmt_num(g.mem_total_mib, ' MiB')} ({fmt_num(g.mem_pct, '%')})",
        ),
        (
            "temperature",
            f"{fmt_num(g.temp_c, ' °C')} (slowdown {fmt_num(g.temp_slowdown_c, ' °C')}, shutdown {fmt_num(g.temp_shutdown_c, ' °C')})",
        ),
        ("power", f"{fmt_num(g.power_w, ' W')} of {fmt_num(g.power_limit_w, ' W')}"),
        ("clocks", f"SM {fmt_num(g.sm_clock_mhz, ' MHz')}, memory {fmt_num(g.mem_clock_mhz, ' MHz')}"),
        ("throttle", ", ".join(g.throttle_reasons) or "none"),
        (
            "ECC",
            f"mode {_onoff(g.ecc_mode)}; volatile corrected {fmt_num(g.ecc_corrected_volatile)}, uncorrected {fmt_num(g.ecc_uncorrected_volatile)}; aggregate uncorrected {fmt_num(g.ecc_uncorrected_aggregate)}",
        ),
        (
            "row remap",
            f"pending {_yesno(g.row_remap_pending)}, failed {_yesno(g.row_remap_failure)}; retired pages pending {_yesno(g.retired_pages_pending)}",
        ),
        (
            "NVLink",
            "—" if g.nvlink_total is None else f"{g.nvlink_total - (g.nvlink_down or 0)}/{g.nvlink_total} links up",
        ),
        ("MIG", _onoff(g.mig_mode) + "".join(f"\n  GI {m.gi}/CI {m.ci} {m.profile} {m.uuid}" for m in g.mig_instances)),
        ("workload", g.workload or "—"),
    ]
    for p in g.processes:
        fields.append(("process", f"pid {p.pid} {p.name} {fmt_num(p.used_mib, ' MiB')} → {p.workload}"))
    where = "last hour, Prometheus" if ranges else "since start, in memory"
    for label, metric, lo, hi in (
        ("util history", "util_pct", 0, 100),
        ("memory history", "mem_pct", 0, 100),
        ("temp history", "temp_c", None, None),
        ("power history", "power_w", 0, None),
    ):
        series = (ranges or {}).get(metric) or (history.series(g.key, metric) if history is not None else [])
        present = [x for x in series if x is not None]
        if present:
            fields.append(
                (
                    label,
                    Text(sparkline(series, 60, lo, hi), style="cyan")
                    + Text(
                        f"  now {present[-1]:.0f}, min {min(present):.0f}, max {max(present):.0f} ({where})",
                        style="dim",
                    ),
                )
            )
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
