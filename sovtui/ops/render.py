"""Provides plans and progress as plain text lines: what the CLI prints and what the TUI's plan modal shows."""

from __future__ import annotations

from .plan import LAYER_TITLE, Event, Outcome, Plan, Step

#: how a step's action reads in a plan
VERBS = {
    "cordon": "cordon",
    "uncordon": "uncordon",
    "evict": "evict",
    "wait": "wait for",
    "skip": "skip",
    "stay": "stays",
    "disable": "disable",
    "enable": "enable",
    "live-migrate": "live-migrate",
    "cold-migrate": "cold-migrate",
    "leave": "leave",
    "drain": "drain",
    "undrain": "undrain",
    "requeue": "requeue",
}


def step_line(step: Step) -> str:
    what = f"{VERBS.get(step.action, step.action):<13} {step.kind} {step.name}"
    return f"{what}  ({step.detail})" if step.detail else what


def plan_lines(plan: Plan, *, width: int = 0) -> list[str]:
    """The plan: what and why, its blockers and waits first, then host by host and layer by layer, notes, who acts;
    lines cut to ``width`` when given."""
    s = plan.summary()
    opts = plan.options
    head = [
        f"{plan.action.upper()} {', '.join(plan.hosts)} on site {plan.site}"
        + ("  [PRODUCTION]" if plan.production else "")
    ]
    if opts.reason:
        head.append(f"reason: {opts.reason}")
    if plan.action == "drain":
        grace = "each pod's own" if opts.grace_period_s is None else f"{opts.grace_period_s} s"
        head.append(
            f"layers: {', '.join(LAYER_TITLE[x] for x in opts.layers)}; timeout {opts.timeout_s:g} s; grace {grace}; "
            f"VM policy {opts.vm_policy}; {opts.max_unavailable} host(s) at a time"
            + ("; delete emptyDir data" if opts.delete_emptydir_data else "")
            + ("; force" if opts.force else "")
            + ("; requeue Slurm jobs" if opts.requeue_jobs else "")
        )
    counts = ", ".join(f"{n} {VERBS.get(a, a)}" for a, n in sorted(s["steps"].items()))
    head.append(f"{counts}; frees {s['gpus_freed']} GPUs" if plan.action == "drain" else counts)
    lines = list(head)
    fatal = [b for b in plan.blockers if b.fatal]
    waits = [b for b in plan.blockers if not b.fatal]
    if fatal:
        lines.append(f"BLOCKED ({len(fatal)}): nothing runs until these are lifted")
        lines += [f"  ✗ {b.host} {LAYER_TITLE.get(b.layer, b.layer)} {b.item}: {b.why} — {b.lift}" for b in fatal]
    if waits:
        lines.append(f"will wait ({len(waits)})")
        lines += [f"  ! {b.host} {LAYER_TITLE.get(b.layer, b.layer)} {b.item}: {b.why} — {b.lift}" for b in waits]
    for host in plan.hosts:
        for layer in ("kubernetes", "nova", "slurm"):
            steps = [st for st in plan.steps if st.host == host and st.layer == layer]
            if steps:
                lines.append(f"{host} — {LAYER_TITLE[layer]}")
                lines += [f"  {step_line(st)}" for st in steps]
    if plan.notes:
        lines.append("notes")
        lines += [f"  - {n}" for n in plan.notes]
    if plan.identities:
        lines.append("acting as: " + "; ".join(f"{LAYER_TITLE.get(k, k)} {v}" for k, v in plan.identities))
    if width:
        lines = [line if len(line) <= width else line[: width - 1] + "…" for line in lines]
    return lines


def event_line(event: Event, plan: Plan, started: float | None = None) -> str:
    """One progress line: elapsed seconds, the item and its new state."""
    elapsed = f"{event.at - started:6.1f}s " if started is not None else ""
    if not event.step:
        return f"{elapsed}run {event.state}" + (f": {event.detail}" if event.detail else "")
    step = next((s for s in plan.steps if s.key == event.step), None)
    what = f"{step.host} {LAYER_TITLE.get(step.layer, step.layer)} {step.kind} {step.name}" if step else event.step
    return f"{elapsed}{what}: {event.state}" + (f" — {event.detail}" if event.detail else "")


def outcome_lines(plan: Plan, outcome: Outcome) -> list[str]:
    """The end: the verdict, and each item that did not end as planned."""
    failed = outcome.failed(plan)
    verdict = outcome.verdict(plan)
    acting = [s for s in plan.steps if s.acts]
    took = ""
    if outcome.started_at is not None and outcome.finished_at is not None:
        took = f" in {outcome.finished_at - outcome.started_at:.1f} s"
    lines = [f"{plan.action} {verdict}{took}: {len(acting) - len(failed)} of {len(acting)} items as planned"]
    if outcome.error:
        lines.append(f"stopped: {outcome.error}")
    for step in failed:
        state = outcome.states.get(step.key, "not started")
        detail = outcome.details.get(step.key, "")
        lines.append(
            f"  {step.host} {LAYER_TITLE.get(step.layer, step.layer)} {step.kind} {step.name}: {state}"
            + (f" — {detail}" if detail else "")
        )
    return lines
