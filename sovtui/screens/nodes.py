"""Provides the Nodes screen: one row per host with what each layer knows of it."""

from __future__ import annotations

from rich.text import Text

from ..model.types import Health
from ..model.view import ClusterView
from ..widgets.fmt import level_text
from .base import Row, TableScreen


class NodesScreen(TableScreen):
    """Hosts with their GPU roll-up; Kubernetes, Nova and Slurm columns fill in as those sources are configured."""

    NAME = "nodes"
    TITLE_TEXT = "Nodes"
    HELP = "one row per host: GPU health now; Kubernetes, Nova and Slurm state when those sources are configured"
    EMPTY = "no host source: GPU hosts come from DCGM metrics or [sites.X.ssh] hosts"
    COLUMNS = (
        ("host", "Host", 10),
        ("gpus", "GPUs", 5),
        ("health", "GPU health", 36),
        ("driver", "Driver", 10),
        ("note", "Reachability", None),
    )

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        if view.gpus is None and view.gpu_hosts is None:
            return None
        per_host: dict[str, list] = {}
        for row in view.gpus or ():
            per_host.setdefault(row.gpu.host, []).append(row)
        hosts = {h.name: h for h in view.gpu_hosts or ()}
        rows = []
        for name in sorted(set(per_host) | set(hosts)):
            gpus = per_host.get(name, [])
            level = Health.worst(r.verdict.level for r in gpus)
            worst = max(gpus, key=lambda r: r.verdict.level.rank, default=None)
            reason = worst.verdict.first_reason if worst is not None and worst.verdict.level is not Health.OK else ""
            bad = sum(1 for r in gpus if r.verdict.level is not Health.OK)
            host = hosts.get(name)
            note = Text(host.error, style="bold red") if host and host.error else Text("reachable" if host else "—", style="dim")
            cells = (name, f"{len(gpus) - bad}/{len(gpus)}", level_text(level, reason), host.driver_version if host else "—", note)
            sort = (name, len(gpus) - bad, -level.rank, host.driver_version if host else "", note.plain)
            rows.append(Row(name, cells, f"{name} {level.value} {reason} {note.plain}".lower(), sort))
        rows.sort(key=lambda r: (r.sort[2], r.key))
        return rows
