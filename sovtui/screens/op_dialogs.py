"""Provides the modal screens of an operation: its options form, the plan with its confirmation, live progress, unfinished runs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Checkbox, DataTable, Input, Select, Static

from ..ops.plan import FINAL, LAYER_TITLE, SUCCESS, Event, OpsError, Options, Plan
from ..ops.render import outcome_lines, plan_lines, step_line

if TYPE_CHECKING:
    from ..ops.journal import Unfinished
    from ..ops.run import Run

STATE_STYLE = {
    "failed": "bold red",
    "timeout": "bold red",
    "cancelled": "yellow",
    "blocked": "yellow",
    "skipped": "dim",
    "pending": "dim",
}
MODAL_CSS = """
{name} {{ align: center middle; background: $background 40%; }}
{name} > Vertical {{ width: 96%; max-width: 140; height: 96%; border: round $accent; background: $surface; padding: 0 1; }}
{name} .production {{ background: $error; color: $text; text-style: bold; width: 100%; }}
{name} .hint {{ color: $text-muted; height: auto; }}
"""


def _duration(text: str) -> float:
    from ..ops.audit import parse_duration

    return parse_duration(text)


class OperationForm(ModalScreen[Options | None]):
    """The options of a drain, cordon or uncordon; ``enter`` makes the plan, ``esc`` gives up."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="ops.form.cancel"),
        Binding("ctrl+s", "submit", "Plan", id="ops.form.submit"),
    ]
    DEFAULT_CSS = (
        MODAL_CSS.format(name="OperationForm")
        + """
    OperationForm > Vertical { height: auto; max-height: 96%; }
    OperationForm Horizontal { height: auto; }
    OperationForm Input { width: 1fr; }
    OperationForm Checkbox { width: auto; border: none; padding: 0 1; }
    OperationForm Select { width: 24; }
    """
    )

    def __init__(self, action: str, hosts: list[str], *, reason: str = "", production: bool = False) -> None:
        super().__init__()
        self.action, self.hosts, self.reason, self.production = action, hosts, reason, production

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.production:
                yield Static(" PRODUCTION site: this changes live capacity ", classes="production")
            if self.action != "uncordon":
                yield Input(self.reason, placeholder="reason (required: recorded in every layer)", id="reason")
            with Horizontal():
                for layer in ("kubernetes", "nova", "slurm"):
                    yield Checkbox(LAYER_TITLE[layer], True, id=f"layer-{layer}")
            if self.action == "drain":
                with Horizontal():
                    yield Input("10m", placeholder="timeout", id="timeout")
                    yield Input("", placeholder="grace period s (blank: each pod's own)", id="grace")
                    yield Select(
                        [("VMs: live-migrate", "live"), ("VMs: cold-migrate", "cold"), ("VMs: leave", "leave")],
                        value="live",
                        allow_blank=False,
                        id="vm-policy",
                    )
                with Horizontal():
                    yield Checkbox("delete emptyDir data", False, id="emptydir")
                    yield Checkbox("force (pods without controller)", False, id="force")
                    yield Checkbox("requeue Slurm jobs", False, id="requeue")
            yield Static("enter or ctrl+s: show the plan · tab: next field · esc: cancel", classes="hint")
            yield Static("", id="form-error")

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = f"{self.action.capitalize()} {', '.join(self.hosts)}"
        if self.action != "uncordon":
            self.query_one("#reason", Input).focus()
        else:
            self.query_one(Checkbox).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_submit()

    def _value(self, widget_id: str) -> Any:
        return self.query_one(f"#{widget_id}").value

    def action_submit(self) -> None:
        try:
            layers = tuple(x for x in ("kubernetes", "nova", "slurm") if self._value(f"layer-{x}"))
            kwargs: dict[str, Any] = {"layers": layers}
            if self.action != "uncordon":
                kwargs["reason"] = self._value("reason")
            if self.action == "drain":
                grace = str(self._value("grace")).strip()
                kwargs.update(
                    timeout_s=_duration(self._value("timeout")),
                    grace_period_s=int(grace) if grace else None,
                    vm_policy=self._value("vm-policy"),
                    delete_emptydir_data=self._value("emptydir"),
                    force=self._value("force"),
                    requeue_jobs=self._value("requeue"),
                )
            options = Options(**kwargs).check(self.action)
        except (OpsError, ValueError) as exc:
            self.query_one("#form-error", Static).update(Text(f"✗ {exc}", style="bold red"))
            return
        self.dismiss(options)

    def action_cancel(self) -> None:
        self.dismiss(None)


class PlanScreen(ModalScreen[bool]):
    """The plan; typing the host name (or ``yes`` for several hosts) and ``enter`` runs it."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="ops.plan.cancel")]
    DEFAULT_CSS = (
        MODAL_CSS.format(name="PlanScreen")
        + """
    PlanScreen VerticalScroll { height: 1fr; }
    PlanScreen Input { dock: bottom; }
    """
    )

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan
        self.expected = plan.hosts[0] if len(plan.hosts) == 1 else "yes"

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.plan.production:
                yield Static(f" PRODUCTION site {self.plan.site} ", classes="production")
            with VerticalScroll(id="plan-body"):
                yield Static(self._text(), id="plan-text")
            if self.plan.runnable:
                yield Input(placeholder=f"type {self.expected} to {self.plan.action}, esc to cancel", id="confirm")
            else:
                yield Static(
                    Text("blocked: lift the ✗ items (esc, change the options) — nothing will run", style="bold red")
                )

    def _text(self) -> Text:
        text = Text()
        for line in plan_lines(self.plan):
            style = (
                "bold red"
                if line.lstrip().startswith(("✗", "BLOCKED"))
                else "yellow"
                if line.lstrip().startswith("!")
                else ""
            )
            if " — " in line and not line.startswith(" "):
                style = "bold"
            text.append(line + "\n", style=style)
        return text

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = f"Plan: {self.plan.action} {', '.join(self.plan.hosts)}"
        if self.plan.runnable:
            self.query_one("#confirm", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.value.strip() == self.expected:
            self.dismiss(True)
        else:
            event.input.value = ""
            self.notify(f"type {self.expected!r} exactly to go on", severity="warning", timeout=3)

    def action_cancel(self) -> None:
        self.dismiss(False)


class Tracker:
    """A run the app drives: its plan, its events so far, and the progress screen watching it (if any)."""

    def __init__(self, run: Run, plan: Plan) -> None:
        self.run, self.plan = run, plan
        self.events: list[Event] = []
        self.started = time.monotonic()
        self.finished = False
        self.screen: RunScreen | None = None

    def add(self, event: Event) -> None:
        self.events.append(event)
        if not event.step:
            self.finished = True
        if self.screen is not None and self.screen.is_attached:
            self.screen.show_event(event)


class RunScreen(ModalScreen[None]):
    """Live progress per item; ``x`` cancels the run, ``esc`` hides this (the run goes on)."""

    BINDINGS = [
        Binding("x", "cancel_run", "Cancel run", id="ops.run.cancel"),
        Binding("escape", "close", "Hide", id="ops.run.close"),
    ]
    DEFAULT_CSS = (
        MODAL_CSS.format(name="RunScreen")
        + """
    RunScreen DataTable { height: 1fr; }
    RunScreen #run-summary { height: auto; }
    """
    )

    def __init__(self, tracker: Tracker) -> None:
        super().__init__()
        self.tracker = tracker
        tracker.screen = self

    def compose(self) -> ComposeResult:
        with Vertical():
            if self.tracker.plan.production:
                yield Static(f" PRODUCTION site {self.tracker.plan.site} ", classes="production")
            yield DataTable(id="run-table", cursor_type="row", zebra_stripes=False)
            yield Static("", id="run-summary")

    _mounted = False

    def on_mount(self) -> None:
        self._mounted = True
        plan = self.tracker.plan
        self.query_one(Vertical).border_title = f"{plan.action} {', '.join(plan.hosts)} · x cancel · esc hide"
        table = self.query_one(DataTable)
        table.add_column("state", key="state", width=12)
        table.add_column("item", key="item")
        table.add_column("detail", key="detail")
        for step in plan.steps:
            state = "pending" if step.acts else "skipped"
            table.add_row(
                Text(state, style=STATE_STYLE.get(state, "")),
                f"{step.host} {LAYER_TITLE[step.layer]} {step_line(step)}"[:70],
                "",
                key=step.key,
            )
        for event in self.tracker.events:
            self.show_event(event)
        self.set_interval(1.0, self._tick)
        self._tick()

    def show_event(self, event: Event) -> None:
        if not self._mounted:  # on_mount shows every event so far
            return
        table = self.query_one(DataTable)
        if event.step and event.step in table.rows:
            style = STATE_STYLE.get(event.state, "green" if event.state in SUCCESS else "")
            word = (
                "✓ "
                if event.state in SUCCESS and event.state in FINAL
                else "✗ "
                if event.state in ("failed", "timeout")
                else ""
            ) + event.state
            table.update_cell(event.step, "state", Text(word, style=style))
            table.update_cell(event.step, "detail", event.detail)
        self._tick()

    def _tick(self) -> None:
        tracker = self.tracker
        elapsed = time.monotonic() - tracker.started
        if tracker.finished:
            lines = outcome_lines(tracker.plan, tracker.run.outcome)
            text = Text(
                "\n".join(lines),
                style="bold green" if tracker.run.outcome.verdict(tracker.plan) == "ok" else "bold red",
            )
        else:
            done = sum(1 for s in tracker.plan.steps if s.acts and tracker.run.outcome.states.get(s.key) in FINAL)
            acting = sum(1 for s in tracker.plan.steps if s.acts)
            text = Text(
                f"running {elapsed:.0f} s · {done} of {acting} items ended"
                + (" · cancelling…" if tracker.run.stopping else "")
            )
        self.query_one("#run-summary", Static).update(text)

    def action_cancel_run(self) -> None:
        if not self.tracker.finished:
            self.tracker.run.cancel()
            self.notify("cancelling: no new work is issued; the host stays closed", timeout=4)

    def action_close(self) -> None:
        self.tracker.screen = None
        self.dismiss(None)


class UnfinishedScreen(ModalScreen[tuple[str, str] | None]):
    """Runs a crashed session left unfinished: ``r`` resume (plan made again from the live cluster), ``a`` abandon."""

    BINDINGS = [
        Binding("r", "choose('resume')", "Resume", id="ops.unfinished.resume"),
        Binding("a", "choose('abandon')", "Abandon", id="ops.unfinished.abandon"),
        Binding("escape", "later", "Later", id="ops.unfinished.later"),
    ]
    DEFAULT_CSS = (
        MODAL_CSS.format(name="UnfinishedScreen")
        + """
    UnfinishedScreen > Vertical { height: auto; max-height: 80%; }
    UnfinishedScreen DataTable { height: auto; max-height: 12; }
    """
    )

    def __init__(self, runs: list[Unfinished]) -> None:
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static("A run did not finish (sovtui stopped while it ran). Its hosts may be half drained.")
            yield DataTable(id="unfinished", cursor_type="row")
            yield Static(
                "r: resume it (the plan is made again from the live cluster) · a: abandon · esc: later", classes="hint"
            )

    def on_mount(self) -> None:
        self.query_one(Vertical).border_title = "Unfinished runs"
        table = self.query_one(DataTable)
        table.add_column("run", key="run")
        table.add_column("what", key="what")
        for run in self.runs:
            table.add_row(run.id, run.describe(), key=run.id)
        table.focus()

    def action_choose(self, what: str) -> None:
        table = self.query_one(DataTable)
        if not self.runs:
            self.dismiss(None)
            return
        row = self.runs[min(table.cursor_row, len(self.runs) - 1)]
        self.dismiss((what, row.id))

    def action_later(self) -> None:
        self.dismiss(None)
