"""Provides compact number formatting for narrow terminals: ages, bytes, rates, percentages."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from ..model.types import Health

LEVEL_STYLE = {Health.OK: "green", Health.WARN: "yellow", Health.CRIT: "bold red", Health.UNKNOWN: "dim"}
LEVEL_WORD = {Health.OK: "ok", Health.WARN: "warn", Health.CRIT: "crit", Health.UNKNOWN: "?"}


def fmt_age(seconds: float | None) -> str:
    """Compact age: 5s, 3m, 2h, 4d."""
    if seconds is None:
        return "never"
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def fmt_bytes(n: float | None) -> str:
    """Binary units: 1.2 PiB, 310 GiB."""
    if n is None:
        return "—"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" or abs(n) >= 100 else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} EiB"  # pragma: no cover


def fmt_bps(bps: float | None) -> str:
    """Bits per second in decimal units: 12.4G, 800M."""
    if bps is None:
        return "—"
    for unit, size in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if bps >= size:
            return f"{bps / size:.1f}{unit}"
    return f"{bps:.0f}"


def fmt_num(value: float | None, unit: str = "", digits: int = 0) -> str:
    if value is None:
        return "—"
    return f"{value:.{digits}f}{unit}"


def level_text(level: Health, reason: str = "") -> Text:
    """A glyph and a word so the level survives 16 colours and no colour at all."""
    text = Text(f"{level.glyph} {LEVEL_WORD[level]}", style=LEVEL_STYLE[level])
    if reason:
        text.append(f" {reason}", style="")
    return text


def parts_line(status: Any, now: float, limit: int = 3) -> str:
    """What of a source did not answer, and how old what is shown for it is: ``neutron: unreachable (data 2m old)``.

    At most ``limit`` parts are named (a fleet of a thousand hosts stays one readable line); the snapshot names them all.
    """
    failing = status.failing_parts
    out = []
    for part in failing[:limit]:
        age = f"data {fmt_age(now - part.last_ok_at)} old" if part.last_ok_at is not None else "unknown"
        out.append(f"{part.name}: {part.error or 'no answer'} ({age})")
    if len(failing) > limit:
        out.append(f"… {len(failing) - limit} more of {len(status.parts)} (sovtui snapshot lists them)")
    return "; ".join(out)
