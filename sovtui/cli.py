"""Provides the ``sovtui`` command: the TUI, ``sovtui snapshot``, ``sovtui doctor`` and the operations (``cli_ops``).

Importing this module stays cheap: Textual, the hub and every client library are imported
only by the command that needs them.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from . import __version__
from .config import ConfigError, config_path, load_config, xdg_dir
from .model.types import SiteInfo

if TYPE_CHECKING:
    from .model.types import DoctorCheck
    from .sources.base import Source

log = logging.getLogger("sovtui.cli")

DEFAULT_SEED = 7
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FILE_NAME = "sovtui.log"

#: exit codes
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A problem with how sovtui was invoked or configured: one line on stderr, exit 2."""


# ---------------------------------------------------------------------------------------------
# arguments


def _add_common(parser: argparse.ArgumentParser, *, sub: bool) -> None:
    """Options every command takes; on subcommands they default to 'not given' so that
    ``sovtui --demo snapshot`` and ``sovtui snapshot --demo`` mean the same."""
    unset = {"default": argparse.SUPPRESS} if sub else {}
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--site", metavar="NAME", help="site to use (default: default_site of the config)", **unset)
    which.add_argument(
        "--demo", action="store_true", help="use the built-in simulated cluster instead of a site", **unset
    )
    parser.add_argument("--seed", type=int, metavar="N", help=f"demo seed (default {DEFAULT_SEED})", **unset)
    parser.add_argument(
        "--config",
        metavar="PATH",
        help="config file (default: $SOVTUI_CONFIG, else $XDG_CONFIG_HOME/sovtui/config.toml)",
        **unset,
    )
    parser.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="log level of the log file in the XDG state dir (default: $SOVTUI_LOG_LEVEL, else WARNING)",
        **unset,
    )
    if sub:
        parser.add_argument(
            "--read-only", action="store_true", help="refuse every action that changes the cluster", **unset
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sovtui",
        description="A keyboard-first terminal UI for running a sovereign AI cluster.",
        epilog=f"Logs go to {xdg_dir('state') / LOG_FILE_NAME}, never to the terminal.",
    )
    parser.add_argument("--version", action="version", version=f"sovtui {__version__}")
    _add_common(parser, sub=False)
    parser.add_argument("--read-only", action="store_true", help="disable every action that changes the cluster")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    snap = subs.add_parser(
        "snapshot",
        help="poll every source once and print the fused view as JSON",
        description="Poll every source once and print the fused view as JSON. Exit 1 if a source did not answer.",
    )
    _add_common(snap, sub=True)
    doc = subs.add_parser(
        "doctor",
        help="check that every configured backend is reachable",
        description="Run each source's checks and print a table. Exit 1 if a check failed.",
    )
    _add_common(doc, sub=True)
    from .cli_ops import add_parsers

    add_parsers(subs, _add_common)
    return parser


# ---------------------------------------------------------------------------------------------
# logging


def _log_level(flag: str | None) -> int:
    name = flag or os.environ.get("SOVTUI_LOG_LEVEL") or "WARNING"
    level = logging.getLevelName(name.strip().upper())
    if not isinstance(level, int):
        raise UsageError(f"SOVTUI_LOG_LEVEL: expected one of {', '.join(LOG_LEVELS)}, got {name!r}")
    return level


def setup_logging(level: int) -> Path | None:
    """Log to ``$XDG_STATE_HOME/sovtui/sovtui.log`` and nowhere else; returns the file, if any."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        # drop handlers writing to the terminal (a FileHandler is a StreamHandler too) and our earlier one
        terminal = (
            isinstance(handler, logging.StreamHandler)
            and not isinstance(handler, logging.FileHandler)
            and getattr(handler, "stream", None) in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
        )
        if terminal or getattr(handler, "_sovtui", False):
            root.removeHandler(handler)
            if not terminal:
                handler.close()
    logging.lastResort = None  # no "No handlers could be found" output on stderr either
    path: Path | None = xdg_dir("state") / LOG_FILE_NAME
    handler: logging.Handler
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        path, handler = None, logging.NullHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._sovtui = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings go to the log file, not over the screen
    return path


# ---------------------------------------------------------------------------------------------
# site resolution


@dataclass
class Setup:
    """What a command runs against: the site, its sources and the clock they share."""

    site: SiteInfo
    sources: list[Source]
    clock: Callable[[], float]
    config_file: Path | None = None
    #: a frozen demo: the same seed must give the same output, byte for byte
    reproducible: bool = False


def resolve(args: argparse.Namespace, *, frozen_demo: bool = False, read_only: bool = False) -> Setup:
    """The demo, or the configured site with its sources; ConfigError/UsageError on problems."""
    if args.demo and args.site is not None:
        raise UsageError("--site and --demo exclude each other")
    if args.demo:
        from .demo.setup import demo_setup

        site, sources, clock = demo_setup(DEFAULT_SEED if args.seed is None else args.seed, frozen=frozen_demo)
        if read_only:
            site = replace(site, read_only=True)
        return Setup(site, sources, clock, reproducible=frozen_demo)
    if args.seed is not None:
        raise UsageError("--seed only applies together with --demo")
    import time

    from .sources.registry import build_sources, site_info

    config = load_config(args.config)
    if not config.sites:
        path = config_path(args.config)
        raise UsageError(f"no site configured: run `sovtui --demo`, or describe your site in {path}")
    site_config = config.site(args.site)
    sources = build_sources(site_config, clock=time.time)
    return Setup(site_info(site_config, read_only=read_only), sources, time.time, config.path)


# ---------------------------------------------------------------------------------------------
# commands


def run_tui(args: argparse.Namespace) -> int:
    setup = resolve(args, read_only=args.read_only)
    from .app import SovtuiApp

    log.info("starting the TUI for site %s with %d sources", setup.site.name, len(setup.sources))
    app = SovtuiApp(site=setup.site, sources=setup.sources, clock=setup.clock)
    app.run()
    return app.return_code or 0


def run_snapshot(args: argparse.Namespace) -> int:
    import asyncio
    import json

    from .hub import Hub
    from .model.export import view_to_json
    from .model.view import build_view

    setup = resolve(args, frozen_demo=True)

    async def poll():
        hub = Hub(setup.sources, clock=setup.clock)
        try:
            return await hub.poll_all()
        finally:
            await hub.stop()

    results = asyncio.run(poll())
    if setup.reproducible:
        # the demo answers in-process: its measured latency is scheduling noise, not data
        results = {name: replace(r, status=replace(r.status, latency_s=0.0)) for name, r in results.items()}
    view = build_view(setup.site, results, setup.clock())
    doc = view_to_json(view)
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    sys.stdout.flush()
    failed = sorted(name for name, r in results.items() if not r.status.ok)
    partial = sorted(
        f"{name} ({', '.join(p.name for p in r.status.failing_parts)})"
        for name, r in results.items()
        if r.status.ok and r.status.failing_parts
    )
    if failed:
        log.warning("snapshot: %d of %d sources did not answer: %s", len(failed), len(results), ", ".join(failed))
    if partial:
        log.warning("snapshot: answered only in part: %s", "; ".join(partial))
    failed += partial
    if not setup.sources:
        print(f"sovtui: site {setup.site.name!r} has no sources configured", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_FAIL if failed else EXIT_OK


def format_checks(checks: Sequence[DoctorCheck]) -> str:
    """An aligned plain-text table, one check per line; the last column is not padded."""
    header = ("SOURCE", "CHECK", "STATUS", "DETAIL", "HINT")
    rows = [header] + [
        (c.source, c.check, "OK" if c.ok else "FAIL", _one_line(c.detail) or "-", _one_line(c.hint) if not c.ok else "")
        for c in checks
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def run_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from .hub import Hub

    setup = resolve(args)
    where = f" (config {setup.config_file})" if setup.config_file else ""
    print(f"site {setup.site.name}{where}")
    if not setup.sources:
        print(
            f"site {setup.site.name!r} has no sources configured: set prometheus_url or alertmanager_url "
            f"under [sites.{setup.site.name}]"
        )
        return EXIT_FAIL

    async def check():
        hub = Hub(setup.sources, clock=setup.clock)
        try:
            return await hub.doctor()
        finally:
            await hub.stop()

    checks = asyncio.run(check())
    print(format_checks(checks))
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed")
    return EXIT_FAIL if failed else EXIT_OK


def _op_commands() -> dict[str, Callable[[argparse.Namespace], int]]:
    from . import cli_ops

    return {
        "drain": lambda a: cli_ops.run_operation(a, resolve),
        "cordon": lambda a: cli_ops.run_operation(a, resolve),
        "uncordon": lambda a: cli_ops.run_operation(a, resolve),
        "audit": cli_ops.run_audit,
        "runs": lambda a: cli_ops.run_runs(a, resolve),
    }


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------
# entry point


def main(argv: Sequence[str] | None = None) -> int:
    """``sovtui`` — returns the process exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_USAGE)
    for name, default in (("site", None), ("demo", False), ("seed", None), ("config", None), ("log_level", None)):
        if not hasattr(args, name):
            setattr(args, name, default)
    if not hasattr(args, "read_only"):
        args.read_only = False
    command = {"snapshot": run_snapshot, "doctor": run_doctor, **_op_commands()}.get(args.command, run_tui)
    log_file: Path | None = None
    try:
        log_file = setup_logging(_log_level(args.log_level))
        log.info("sovtui %s: %s", __version__, " ".join(sys.argv[1:] if argv is None else argv))
        return command(args)
    except ConfigError as exc:
        return _fail(_one_line(str(exc)), EXIT_USAGE)
    except UsageError as exc:
        return _fail(_one_line(str(exc)), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `sovtui snapshot | head`
        _silence_stdout()
        return EXIT_FAIL
    except Exception as exc:
        log.exception("sovtui failed")
        logs = f" (details in {log_file})" if log_file else ""
        return _fail(_one_line(f"{type(exc).__name__}: {exc}") + logs, EXIT_FAIL)


def _fail(message: str, code: int) -> int:
    print(f"sovtui: {message}", file=sys.stderr)
    return code


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
