"""Provides the CLI twins of the TUI's actions: ``sovtui drain|cordon|uncordon``, ``sovtui audit`` and ``sovtui runs``.

They go through :class:`sovtui.ops.operator.Operator`, the same plan, run, journal and audit as the TUI.
Exit codes: 0 every item ended as planned; 1 some failed, timed out or were cancelled (each is named),
or the plan is blocked; 2 usage errors, a read-only refusal, an unknown host, or no confirmation.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def add_parsers(subs: Any, add_common: Callable[..., None]) -> None:
    """The operation commands, each taking the global options before or after it."""
    for action, helptext in (
        ("drain", "take hosts out of service in every layer: cordon, evict pods, migrate VMs, drain Slurm"),
        ("cordon", "close hosts to new work in every layer; nothing running moves"),
        ("uncordon", "reopen hosts in every layer: uncordon, enable the compute service, undrain Slurm"),
    ):
        p = subs.add_parser(action, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        add_common(p, sub=True)
        p.add_argument(
            "hosts", nargs="+", metavar="HOST", help="host names as any layer knows them (short names match)"
        )
        if action != "uncordon":
            p.add_argument("--reason", required=True, help="why; recorded in every layer and in the audit log")
        p.add_argument(
            "--layers", default="kubernetes,nova,slurm", help="comma-separated: kubernetes,nova,slurm (default all)"
        )
        if action == "drain":
            p.add_argument("--timeout", default="10m", help="per host, e.g. 600s, 10m (default 10m)")
            p.add_argument(
                "--grace-period", type=int, metavar="S", help="seconds each pod gets to stop (default: its own)"
            )
            p.add_argument(
                "--delete-emptydir-data", action="store_true", help="evict pods with emptyDir data (it is lost)"
            )
            p.add_argument("--force", action="store_true", help="evict pods that no controller recreates")
            p.add_argument(
                "--vm-policy", choices=("live", "cold", "leave"), default="live", help="how VMs leave (default live)"
            )
            p.add_argument(
                "--requeue", action="store_true", help="requeue running Slurm jobs instead of letting them finish"
            )
            p.add_argument(
                "--max-unavailable", type=int, default=1, metavar="N", help="hosts drained at once (default 1)"
            )
            p.add_argument(
                "--continue-on-failure", action="store_true", help="go on with the next hosts when one fails"
            )
        p.add_argument("--dry-run", action="store_true", help="print the plan and change nothing")
        p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
        p.add_argument("--json", action="store_true", help="the plan as JSON, progress as JSON lines")
    audit = subs.add_parser(
        "audit", help="show the audit log of operations", description="Show the audit log: one entry per run."
    )
    add_common(audit, sub=True)
    audit.add_argument("--since", metavar="DURATION", help="only entries of the last DURATION (90s, 10m, 1h, 2d)")
    audit.add_argument("--json", action="store_true", help="JSON lines, as stored")
    runs = subs.add_parser(
        "runs",
        help="list runs a crashed session left unfinished; resume or abandon one",
        description="List unfinished runs; --resume ID makes its plan again from the live cluster and runs it.",
    )
    add_common(runs, sub=True)
    which = runs.add_mutually_exclusive_group()
    which.add_argument("--resume", metavar="ID", help="resume this run (its plan is made again from the live cluster)")
    which.add_argument("--abandon", metavar="ID", help="forget this run (the audit log records it as abandoned)")
    runs.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    runs.add_argument("--json", action="store_true", help="JSON output")


def options_from(args: argparse.Namespace) -> Any:
    from .ops.audit import parse_duration
    from .ops.plan import Options

    layers = tuple(x.strip() for x in str(args.layers).split(",") if x.strip())
    kwargs: dict[str, Any] = {"reason": getattr(args, "reason", "") or "", "layers": layers}
    if args.command == "drain":
        try:
            timeout = parse_duration(args.timeout)
        except ValueError as exc:
            raise _Usage(f"--timeout: {exc}") from None
        kwargs.update(
            timeout_s=timeout,
            grace_period_s=args.grace_period,
            delete_emptydir_data=args.delete_emptydir_data,
            force=args.force,
            vm_policy=args.vm_policy,
            requeue_jobs=args.requeue,
            max_unavailable=args.max_unavailable,
            stop_on_failure=not args.continue_on_failure,
        )
    return Options(**kwargs)


class _Usage(Exception):
    pass


def _err(text: str) -> None:
    print(f"sovtui: {text}", file=sys.stderr)


def _confirm(plan: Any, yes: bool) -> bool:
    """The host name (or ``yes`` for several hosts) typed on a terminal; True with --yes."""
    if yes:
        return True
    if not sys.stdin.isatty():
        _err(f"{plan.action}: refusing without confirmation: pass --yes, or run it on a terminal")
        return False
    want = plan.hosts[0] if len(plan.hosts) == 1 else "yes"
    where = " on a PRODUCTION site" if plan.production else ""
    try:
        typed = input(f"{plan.action} {', '.join(plan.hosts)}{where}: type {want!r} to go on: ")
    except EOFError:
        typed = ""
    if typed.strip() != want:
        _err(f"{plan.action}: not confirmed; nothing was changed")
        return False
    return True


async def _drive(operator: Any, plan: Any, as_json: bool, *, resumed_from: str = "", unfinished: Any = None) -> int:
    from .ops.render import event_line, outcome_lines

    run = operator.resume(unfinished, plan) if unfinished is not None else operator.start(plan)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, run.cancel)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    started = None
    try:
        async for event in run.events():
            started = event.at if started is None else started
            if as_json:
                print(
                    json.dumps(
                        {
                            "at": event.at,
                            "step": event.step,
                            "host": event.host,
                            "state": event.state,
                            "detail": event.detail,
                        }
                    ),
                    flush=True,
                )
            else:
                print(event_line(event, plan, started), flush=True)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.remove_signal_handler(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
    outcome = run.outcome
    if not as_json:
        print("\n".join(outcome_lines(plan, outcome)))
        print(f"audit: run {run.id} recorded (sovtui audit)")
    return EXIT_OK if outcome.verdict(plan) == "ok" else EXIT_FAIL


def _print_plan(plan: Any, as_json: bool) -> None:
    from .ops.render import plan_lines

    if as_json:
        print(json.dumps(plan.to_json(), indent=2), flush=True)
    else:
        print("\n".join(plan_lines(plan)), flush=True)


async def _with_operator(setup: Any, body: Callable[[Any], Any]) -> int:
    from .hub import Hub
    from .ops.operator import Operator

    hub = Hub(setup.sources, clock=setup.clock)
    try:
        results = await hub.poll_all()
        # a source that failed its first answer gets one more chance: a plan made without a layer is blocked
        again = [name for name, result in results.items() if not result.status.ok]
        if again:
            await asyncio.gather(*(hub.poll(name) for name in again))
        operator = Operator(setup.site, setup.sources, lambda: hub.results, clock=setup.clock)
        return await body(operator)
    finally:
        await hub.stop()


def run_operation(args: argparse.Namespace, resolve: Callable[..., Any]) -> int:
    """``sovtui drain|cordon|uncordon``."""
    from .ops.plan import OpsError, ReadOnly, UnknownHost

    try:
        options = options_from(args)
    except _Usage as exc:
        _err(str(exc))
        return EXIT_USAGE
    setup = resolve(args, read_only=args.read_only)

    async def body(operator: Any) -> int:
        try:
            plan = await operator.plan(args.command, args.hosts, options)
        except (ReadOnly, UnknownHost) as exc:
            _err(str(exc))
            return EXIT_USAGE
        except OpsError as exc:
            _err(str(exc))
            return EXIT_USAGE
        _print_plan(plan, args.json)
        if args.dry_run:
            return EXIT_OK if plan.runnable else EXIT_FAIL
        if not plan.runnable:
            _err(f"{plan.action}: the plan is blocked; nothing was changed")
            return EXIT_FAIL
        if not _confirm(plan, args.yes):
            return EXIT_USAGE
        return await _drive(operator, plan, args.json)

    return asyncio.run(_with_operator(setup, body))


def run_audit(args: argparse.Namespace) -> int:
    from .ops import audit

    try:
        since = audit.parse_duration(args.since) if args.since else None
    except ValueError as exc:
        _err(f"--since: {exc}")
        return EXIT_USAGE
    records = audit.read(since_s=since)
    if args.json:
        for r in records:
            print(json.dumps(r, ensure_ascii=False))
    elif records:
        print(audit.format_lines(records))
    else:
        print(f"no audit entries{f' in the last {args.since}' if args.since else ''} ({audit.audit_path()})")
    return EXIT_OK


def run_runs(args: argparse.Namespace, resolve: Callable[..., Any]) -> int:
    """``sovtui runs [--resume ID | --abandon ID]``."""
    from .ops.journal import Journal
    from .ops.plan import OpsError

    unfinished = Journal().unfinished()
    target = args.resume or args.abandon
    if not target:
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "id": u.id,
                            "action": u.plan.action,
                            "hosts": list(u.plan.hosts),
                            "site": u.plan.site,
                            "user": u.user,
                            "started_at": u.started_at,
                            "states": u.states,
                        }
                        for u in unfinished
                    ]
                )
            )
        elif unfinished:
            for u in unfinished:
                print(f"{u.id}  {u.describe()}")
            print("resume one with `sovtui runs --resume ID`, forget it with `sovtui runs --abandon ID`")
        else:
            print("no unfinished runs")
        return EXIT_OK
    run = next((u for u in unfinished if u.id == target), None)
    if run is None:
        _err(f"no unfinished run {target!r} (sovtui runs lists them)")
        return EXIT_USAGE
    if args.site is None and not args.demo and run.plan.site != "demo":
        args.site = run.plan.site
    if run.plan.site == "demo" and not args.demo and args.site is None:
        args.demo = True
    setup = resolve(args, read_only=args.read_only)

    async def body(operator: Any) -> int:
        if args.abandon:
            operator.abandon(run)
            print(f"run {run.id} abandoned; the audit log records where its items stood")
            return EXIT_OK
        try:
            plan = await operator.replan(run)
        except OpsError as exc:
            _err(str(exc))
            return EXIT_USAGE
        _print_plan(plan, args.json)
        if not plan.runnable:
            _err("the plan is blocked; nothing was changed")
            return EXIT_FAIL
        if not _confirm(plan, args.yes):
            return EXIT_USAGE
        return await _drive(operator, plan, args.json, unfinished=run)

    return asyncio.run(_with_operator(setup, body))
