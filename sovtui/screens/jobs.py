"""Provides the Jobs screen: Slurm partitions, Kueue queues and pending GPU pods side by side."""

from __future__ import annotations

from rich.text import Text

from ..model.view import ClusterView
from ..widgets.fmt import fmt_age
from .base import Row, TableScreen


class JobsScreen(TableScreen):
    """One row per queue: pending and running jobs, GPUs waiting, oldest wait."""

    NAME = "jobs"
    TITLE_TEXT = "Job queues"
    HELP = "Slurm partitions, Kueue ClusterQueues and pending Kubernetes GPU pods"
    EMPTY = "no queue source: Slurm or Kueue metrics in Prometheus, or the Slurm/Kubernetes sources"
    COLUMNS = (
        ("system", "System", 10),
        ("queue", "Queue", 16),
        ("pending", "Pending", 7),
        ("running", "Running", 7),
        ("gpus", "GPUs wait", 9),
        ("oldest", "Oldest", None),
    )

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        if view.queues is None:
            return None
        rows = []
        for q in sorted(view.queues, key=lambda q: (-q.pending_gpus, q.system, q.name)):
            gpus = Text(str(q.pending_gpus), style="yellow" if q.pending_gpus else "")
            oldest = fmt_age(q.oldest_pending_s) if q.oldest_pending_s is not None else "—"
            cells = (q.system, q.name, str(q.pending_jobs), str(q.running_jobs), gpus, oldest)
            sort = (q.system, q.name, q.pending_jobs, q.running_jobs, q.pending_gpus, q.oldest_pending_s)
            rows.append(Row(f"{q.system}:{q.name}", cells, f"{q.system} {q.name}".lower(), sort))
        return rows

    def copy_text(self, row: Row) -> str:
        return row.key.split(":", 1)[1]
