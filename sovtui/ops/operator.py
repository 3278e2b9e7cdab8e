"""Provides the one path every mutation takes, for the TUI and the CLI alike: plan, then run with journal and audit.

The caller shows the plan and asks for confirmation in between; :meth:`Operator.start` journals the run
as it goes, appends its audit line when it ends (cancelled or not) and removes its journal file.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..model.types import SiteInfo, SourceResult
from . import audit
from .drain import make_plan
from .journal import Journal, Unfinished
from .layers import Layers
from .plan import Event, OpsError, Options, Plan, ReadOnly
from .run import Run

log = logging.getLogger(__name__)


class Operator:
    """Operations on one site, over the hub's sources and their last results."""

    def __init__(
        self,
        site: SiteInfo,
        sources: Iterable[Any],
        results: Callable[[], Mapping[str, SourceResult]],
        *,
        journal: Journal | None = None,
        audit_file: Path | None = None,
        clock: Callable[[], float] = time.time,
        poll_s: float = 2.0,
    ) -> None:
        self.site = site
        self.sources = list(sources)
        self.results = results
        self.journal = journal or Journal()
        self.audit_file = audit_file
        self.clock = clock
        self.poll_s = poll_s

    def layers(self) -> Layers:
        return Layers.from_sources(self.sources, self.results())

    def can_act(self) -> bool:
        return not self.site.read_only

    async def plan(self, action: str, hosts: Sequence[str], options: Options) -> Plan:
        """The plan (ReadOnly on a read-only site, UnknownHost, OpsError for bad options)."""
        return await make_plan(action, hosts, options, self.layers(), self.site)

    def start(self, plan: Plan, *, resumed_from: str = "", on_event: Callable[[Event], None] | None = None) -> Run:
        """A run of ``plan``, journalled and audited; iterate its ``events()`` (or ``execute()``) to drive it."""
        if self.site.read_only:
            raise ReadOnly(f"read-only: site {self.site.name!r} refuses to {plan.action}")
        if not plan.runnable:
            raise OpsError("the plan has blockers: lift them (see the plan) before running it")
        entry = self.journal.begin(plan, resumed_from=resumed_from, clock=self.clock)
        run: Run

        def record(event: Event) -> None:
            entry.record(event)
            if on_event is not None:
                on_event(event)
            if not event.step:  # the run's own last event
                try:
                    audit.append(
                        audit.record_of(entry.id, plan, run.outcome, resumed_from=resumed_from), self.audit_file
                    )
                except OSError as exc:
                    log.error("audit log: %s", exc)
                entry.finish()

        run = Run(plan, self.layers(), clock=self.clock, poll_s=self.poll_s, on_event=record)
        run.id = entry.id
        return run

    def unfinished(self) -> list[Unfinished]:
        return self.journal.unfinished()

    async def replan(self, run: Unfinished) -> Plan:
        """The plan of an unfinished run, made again from the live cluster (what is done is not redone)."""
        if run.plan.site != self.site.name:
            raise OpsError(f"run {run.id} was on site {run.plan.site!r}, not {self.site.name!r}")
        return await self.plan(run.plan.action, run.plan.hosts, run.plan.options)

    def resume(self, run: Unfinished, plan: Plan, *, on_event: Callable[[Event], None] | None = None) -> Run:
        """Run the fresh plan of an unfinished run; its journal file is replaced by the new run's."""
        new = self.start(plan, resumed_from=run.id, on_event=on_event)
        self.journal.remove(run)
        return new

    def abandon(self, run: Unfinished) -> None:
        """Forget an unfinished run; the audit log says it was abandoned and where its items stood."""
        audit.append(audit.abandoned_record(run.id, run.plan, run.states, run.details), self.audit_file)
        self.journal.remove(run)
