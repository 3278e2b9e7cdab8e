"""Provides the app's side of operations: the flow from options to run, the runs kept, and the host keys of screens.

The flow (:func:`operate`) is the CLI's: options → plan (from :class:`sovtui.ops.operator.Operator`) →
type the host name (or ``yes``) → run. The run belongs to the app, not to a screen: closing the progress
modal leaves it running, and ``:runs`` (or the key again) brings it back.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from textual.binding import Binding

from ..ops.plan import OpsError, Plan
from .op_dialogs import OperationForm, PlanScreen, RunScreen, Tracker, UnfinishedScreen

if TYPE_CHECKING:
    from ..ops.journal import Unfinished
    from ..ops.run import Run

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------------------------ the flow
class Operations:
    """The app's side of operations: starts flows in workers and keeps the runs."""

    def __init__(self, app: Any, operator: Any) -> None:
        self.app = app
        self.operator = operator
        self.trackers: list[Tracker] = []

    def busy_hosts(self) -> set[str]:
        return {h for t in self.trackers if not t.finished for h in t.plan.hosts}

    def start(self, action: str, hosts: list[str], *, reason: str = "") -> None:
        if not hosts:
            self.app.notify("no host selected", severity="warning")
            return
        if self.operator.site.read_only:
            self.app.notify(
                f"read-only: {action} refused — this session does not change the cluster (--read-only)",
                severity="error",
                timeout=6,
            )
            return
        busy = self.busy_hosts() & set(hosts)
        if busy:
            self.app.notify(
                f"{', '.join(sorted(busy))}: an operation is already running (:runs shows it)", severity="warning"
            )
            return
        self.app.run_worker(self._flow(action, list(hosts), reason), group="ops", exit_on_error=False)

    async def _flow(self, action: str, hosts: list[str], reason: str) -> None:
        app = self.app
        options = await app.push_screen_wait(
            OperationForm(action, hosts, reason=reason, production=self.operator.site.production)
        )
        if options is None:
            return
        try:
            plan = await self.operator.plan(action, hosts, options)
        except OpsError as exc:
            app.notify(str(exc), severity="error", timeout=8)
            return
        if not await app.push_screen_wait(PlanScreen(plan)):
            return
        self._launch(self.operator.start(plan), plan)

    def _launch(self, run: Run, plan: Plan) -> None:
        tracker = Tracker(run, plan)
        self.trackers.append(tracker)
        self.app.push_screen(RunScreen(tracker))
        self.app.run_worker(self._drive(tracker), group="ops-run", exit_on_error=False)

    async def _drive(self, tracker: Tracker) -> None:
        async for event in tracker.run.events():
            try:
                tracker.add(event)
            except Exception:
                log.exception("showing %s", event)
            if event.state in ("cordoned", "disabled", "drained", "uncordoned", "enabled", "waiting") or not event.step:
                self.app.hub.refresh()  # other screens see the host closing (or reopening) now
        verdict = tracker.run.outcome.verdict(tracker.plan)
        self.app.notify(
            f"{tracker.plan.action} {', '.join(tracker.plan.hosts)}: {verdict}",
            severity="information" if verdict == "ok" else "error",
            timeout=8,
        )

    def show_runs(self) -> None:
        tracker = next(
            (t for t in reversed(self.trackers) if not t.finished), self.trackers[-1] if self.trackers else None
        )
        if tracker is None:
            self.app.notify("no operation in this session", timeout=3)
            return
        self.app.push_screen(RunScreen(tracker))

    def offer_unfinished(self) -> None:
        if self.operator.site.read_only:
            return
        runs = self.operator.unfinished()
        runs = [r for r in runs if r.plan.site == self.operator.site.name]
        if runs:
            self.app.run_worker(self._unfinished(runs), group="ops-unfinished", exclusive=True, exit_on_error=False)

    async def _unfinished(self, runs: list[Unfinished]) -> None:
        app = self.app
        choice = await app.push_screen_wait(UnfinishedScreen(runs))
        if choice is None:
            return
        what, run_id = choice
        run = next(r for r in runs if r.id == run_id)
        if what == "abandon":
            self.operator.abandon(run)
            app.notify(f"run {run.id} abandoned (recorded in the audit log)", timeout=5)
            return
        await app.hub.poll_all()
        try:
            plan = await self.operator.replan(run)
        except OpsError as exc:
            app.notify(str(exc), severity="error", timeout=8)
            return
        if not await app.push_screen_wait(PlanScreen(plan)):
            return
        self._launch(self.operator.resume(run, plan), plan)


def drain_reason(view: Any, host: str) -> str:
    """The GPU verdict that recommends draining ``host``, as the reason to offer ("" when none does)."""
    from ..model.health import drain_recommendation

    return drain_recommendation(view.gpus or (), host) if view is not None else ""


class HostActions:
    """Keys that act on hosts (``c`` cordon, ``D`` drain, ``u`` uncordon), for a screen that can name its hosts."""

    def op_hosts(self) -> list[str]:  # pragma: no cover - overridden
        raise NotImplementedError

    def op_reason(self, hosts: list[str]) -> str:
        return ""

    def action_host_op(self, action: str) -> None:
        hosts = self.op_hosts()
        self.app.operations.start(action, hosts, reason=self.op_reason(hosts))  # type: ignore[attr-defined]


def host_action_bindings(prefix: str) -> list[Binding]:
    return [
        Binding("c", "host_op('cordon')", "Cordon", id=f"{prefix}.cordon"),
        Binding("D", "host_op('drain')", "Drain", id=f"{prefix}.drain"),
        Binding("u", "host_op('uncordon')", "Uncordon", id=f"{prefix}.uncordon"),
    ]
