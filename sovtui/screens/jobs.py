"""Provides the Jobs screen: every unit of work across Slurm, Kubernetes and Kueue, pending first, with why it waits."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from ..model.jobs import JobsState, SlurmJob, WorkRow, pending_gpus, short_reason, work_rows
from ..model.view import ClusterView
from ..widgets.fmt import fmt_age
from .base import Row, TableScreen
from .dialogs import DetailScreen

_STATE_STYLE = {"PENDING": "yellow", "RUNNING": "green", "RESERVED": "cyan", "SUSPENDED": "magenta"}
_SYSTEM = {"slurm": "slurm", "kubernetes": "k8s", "kueue": "kueue"}
_BAR = 10


def _bar(used: int, total: int) -> str:
    filled = round(_BAR * used / total) if total else 0
    return "█" * filled + "░" * (_BAR - filled)


def _stamp(view: ClusterView, at: float | None) -> str:
    return "—" if at is None else f"{fmt_age(max(0.0, view.now - at))} ago"


def summary_text(view: ClusterView, rows: list[WorkRow]) -> Text:
    """One line per Slurm partition and Kueue ClusterQueue (GPU bars), one for Kubernetes' waiting pods."""
    jobs = view.jobs or JobsState()
    waiting: dict[tuple[str, str], list[WorkRow]] = {}
    for row in rows:
        if row.pending:
            waiting.setdefault((row.system, row.queue.split(",")[0]), []).append(row)

    def tail(key: tuple[str, str]) -> str:
        queued = waiting.get(key, [])
        if not queued:
            return "nothing waits"
        gpus, known = pending_gpus(queued)
        oldest = min((r.since for r in queued if r.since is not None), default=None)
        age = f" · oldest {fmt_age(view.now - oldest)}" if oldest is not None else ""
        return f"{len(queued)} wait for {gpus}{'' if known else '+'} GPUs{age}"

    lines: list[Text] = []
    for part in jobs.slurm_partitions or ():
        line = Text(f"slurm {part.name:<8} ", style="bold")
        if part.gpus_total:
            used = part.gpus_allocated or 0
            line.append(_bar(used, part.gpus_total), style="cyan")
            line.append(f" {used}/{part.gpus_total} busy · {part.gpus_idle} idle")
            if part.gpus_drained or part.gpus_down:
                line.append(f" · {(part.gpus_drained or 0) + (part.gpus_down or 0)} out", style="yellow")
        else:
            line.append("GPUs unknown" if part.gpus_total is None else "no GPUs", style="dim")
        if part.state and part.state != "UP":
            line.append(f" · {part.state}", style="bold red")
        line.append(f" · {tail(('slurm', part.name))}")
        lines.append(line)
    for queue in jobs.kueue_queues or ():
        line = Text(f"kueue {queue.name:<8} ", style="bold")
        if queue.gpu_quota:
            line.append(_bar(min(queue.gpu_reserved, queue.gpu_quota), queue.gpu_quota), style="cyan")
        line.append(f" {queue.gpu_reserved}/{queue.gpu_quota} GPUs of quota · {queue.pending} pending")
        if queue.cohort:
            line.append(f" · cohort {queue.cohort}", style="dim")
        lines.append(line)
    pods = [r for r in rows if r.system == "kubernetes" and r.pending]
    if jobs.pending_pods is not None:
        line = Text("k8s   pods     ", style="bold")
        if pods:
            gpus, _ = pending_gpus(pods)
            oldest = min((r.since for r in pods if r.since is not None), default=None)
            line.append(f"{len(pods)} GPU pods wait for {gpus} GPUs", style="yellow")
            if oldest is not None:
                line.append(f" · oldest {fmt_age(view.now - oldest)}")
        else:
            line.append("no GPU pod waits")
        lines.append(line)
    return Text("\n").join(lines)


class JobsScreen(TableScreen):
    """Per-queue GPU strip on top; below, one row per job, pending first and longest wait first."""

    NAME = "jobs"
    TITLE_TEXT = "Jobs"
    HELP = "Slurm jobs and partitions (squeue/sinfo), Kubernetes Jobs and pending GPU pods, Kueue workloads"
    EMPTY = "no per-job source: configure Slurm ([sites.X.slurm]) or Kubernetes; metrics alone give queue counts"
    COLUMNS = (
        ("system", "Sys", 5),
        ("queue", "Queue", 8),
        ("job", "Job", 14),
        ("owner", "User/NS", 8),
        ("state", "State", 7),
        ("gpus", "GPUs", 4),
        ("age", "Age", 5),
        ("nodes", "Nodes", 14),
        ("why", "Why", None),
        ("reason", "Reason", None),
    )
    #: wide: the nodes and the whole reason; narrow: a few words of why instead
    WIDE_ONLY = frozenset({"nodes", "reason"})

    def shown_columns(self) -> list[int]:
        wide = self.size.width >= self.WIDE
        return [
            i
            for i, c in enumerate(self.COLUMNS)
            if c[0] != ("why" if wide else "") and (wide or c[0] not in self.WIDE_ONLY)
        ]

    def compose_top(self) -> ComposeResult:
        yield Static("", id="jobs-summary", markup=False)

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        summary = self.query_one("#jobs-summary", Static)
        if view.jobs is None:
            summary.update(self._queue_counts(view))
            return None
        work = work_rows(view.jobs)
        summary.update(summary_text(view, work))
        self._work = {w.key: w for w in work}
        rows = []
        for w in work:
            age = None if w.since is None else max(0.0, view.now - w.since)
            state = Text(w.state.lower() if w.state else "?", style=_STATE_STYLE.get(w.state, ""))
            gpus = "?" if w.gpus is None else str(w.gpus)
            nodes = ",".join(w.nodes[:4]) + (f" +{len(w.nodes) - 4}" if len(w.nodes) > 4 else "")
            why = short_reason(w)
            system = _SYSTEM.get(w.system, w.system)
            cells = (system, w.queue, w.id, w.owner, state, gpus, fmt_age(age), nodes, why, w.reason)
            sort = (w.system, w.queue, w.id, w.owner, w.state, w.gpus, age, nodes, why, w.reason)
            search = f"{w.system} {w.queue} {w.id} {w.owner} {w.state} {w.reason}".lower()
            rows.append(Row(w.key, cells, search, sort))
        return rows

    def _queue_counts(self, view: ClusterView) -> Text:
        """Without a per-job source: the queue counts metrics give (Slurm and Kueue exporters)."""
        if view.queues is None:
            return Text("")
        text = Text()
        for q in sorted(view.queues, key=lambda q: (-q.pending_gpus, q.system, q.name))[:4]:
            oldest = f" · oldest {fmt_age(q.oldest_pending_s)}" if q.oldest_pending_s is not None else ""
            text.append(f"{q.system} {q.name}: {q.pending_jobs} pending ({q.pending_gpus} GPUs), ")
            text.append(f"{q.running_jobs} running{oldest}\n")
        return text

    def count_text(self, rows: list[Row]) -> str:
        work = getattr(self, "_work", {})
        pending = [work[r.key] for r in rows if r.key in work and work[r.key].pending]
        gpus, known = pending_gpus(pending)
        return f"{len(rows)} of {len(self._rows)} · {len(pending)} pending for {gpus}{'' if known else '+'} GPUs"

    def copy_text(self, row: Row) -> str:
        return row.key.split(":", 1)[1]

    def open_row(self, row: Row) -> None:
        key = row.key

        def build(view: ClusterView) -> list[tuple[str, str | Text]]:
            return job_fields(view, key)

        self.app.push_screen(DetailScreen(f"Job {key}", build(self.view), copy=self.copy_text(row), builder=build))


def _slurm_fields(view: ClusterView, job: SlurmJob) -> list[tuple[str, str | Text]]:
    limit = "unlimited" if job.unlimited else ("—" if job.time_limit_s is None else fmt_age(job.time_limit_s))
    fields: list[tuple[str, str | Text]] = [
        ("job", f"{job.id} {job.name}"),
        ("user", f"{job.user} (account {job.account or '—'}, qos {job.qos or '—'})"),
        ("partition", job.partition),
        ("state", " ".join((job.state, *job.flags))),
        ("reason", f"{job.reason} ({job.reason_code})" if job.reason_code else (job.reason or "—")),
        ("GPUs", "not stated" if job.gpus is None else str(job.gpus)),
        ("submitted", _stamp(view, job.submitted_at)),
        ("started", _stamp(view, job.started_at)),
        ("time limit", limit),
        ("priority", "—" if job.priority is None else str(job.priority)),
    ]
    if job.dependency:
        fields.append(("dependency", job.dependency))
    states = {n.name: n for n in view.slurm_nodes or ()}
    for name in job.nodes:
        node = states.get(name)
        what = "not in sinfo" if node is None else f"{node.state}{' — ' + node.reason if node.reason else ''}"
        fields.append((f"node {name}", what))
    return fields


def job_fields(view: ClusterView, key: str) -> list[tuple[str, str | Text]]:
    """The whole record behind one row of work, as the screen's details show it."""
    jobs = view.jobs or JobsState()
    system, _, ident = key.partition(":")
    if system == "slurm":
        job = next((j for j in jobs.slurm_jobs or () if j.id == ident), None)
        if job is not None:
            return _slurm_fields(view, job)
    elif system == "kubernetes":
        pod = next((p for p in jobs.pending_pods or () if f"{p.namespace}/{p.name}" == ident), None)
        if pod is not None:
            return [
                ("pod", ident),
                ("owner", pod.owner or "—"),
                ("GPUs", str(pod.gpus)),
                ("waits since", _stamp(view, pod.since)),
                ("wants", pod.wants or "—"),
                ("reason", pod.reason or "—"),
            ]
    elif system == "kueue":
        wl = next((w for w in jobs.kueue_workloads or () if f"{w.namespace}/{w.name}" == ident), None)
        if wl is not None:
            return [
                ("workload", ident),
                ("queue", f"{wl.queue} → {wl.cluster_queue or 'not admitted'}"),
                ("state", wl.state),
                ("GPUs", str(wl.gpus)),
                ("queued", _stamp(view, wl.queued)),
                ("reason", wl.reason or "—"),
            ]
    elif system == "job":
        kj = next((j for j in jobs.kube_jobs or () if f"{j.namespace}/{j.name}" == ident), None)
        if kj is not None:
            return [
                ("job", ident),
                ("state", kj.state),
                (
                    "pods",
                    f"{kj.active} active, {kj.succeeded} succeeded, {kj.failed} failed of {kj.completions or '?'}",
                ),
                ("GPUs", "not stated" if kj.gpus is None else str(kj.gpus)),
                ("created", _stamp(view, kj.created)),
            ]
    return [("gone", "no source reports this job any more")]
