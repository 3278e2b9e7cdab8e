"""Provides the readers of single values in Slurm's output: numbers, texts, state words, hostlists, GPU counts.

Numbers come in any version's shape (plain, or 23.11's ``{"set", "infinite", "number"}``); GPU
counts are read from gres and TRES strings. Every function here takes whatever JSON it is given
and never raises on odd input: a value of the wrong type is unknown (``None``, ``""``, empty),
never a made-up 0.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

#: bound on the names one hostlist expression may expand to
MAX_HOSTS = 100_000
_MAX_TEXT = 1000


# ---------------------------------------------------------------------------------- values
def number(value: Any) -> float | None:
    """A JSON number, or the ``number`` of a set, finite ``{"set", "infinite", "number"}`` object; else None."""
    if type(value) is dict:
        if value.get("set") is False or value.get("infinite") is True:
            return None
        value = value.get("number")
    kind = type(value)
    if kind is int:
        return float(value) if -1e18 < value < 1e18 else None
    if kind is float:
        return value if value - value == 0.0 else None
    return None


def integer(value: Any) -> int | None:
    n = number(value)
    return int(n) if n is not None and n == int(n) else None


def text(value: Any, limit: int = _MAX_TEXT) -> str:
    if type(value) is not str:
        return ""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def words(value: Any) -> tuple[str, ...]:
    """State words upper case: from a list of strings, or a string like ``"MIXED+DRAIN"``/``"idle"``."""
    if type(value) is str:
        items: Iterable[Any] = re.split(r"[+,\s]+", value)
    elif type(value) is list:
        items = value
    else:
        return ()
    return tuple(w.strip().upper() for w in items if type(w) is str and w.strip())[:32]


# ---------------------------------------------------------------------------------- hostlists
def _split_top(expr: str, sep: str = ",", opening: str = "[(", closing: str = "])") -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch in opening:
            depth += 1
        elif ch in closing:
            depth = max(0, depth - 1)
        elif ch == sep and depth == 0:
            parts.append(expr[start:i])
            start = i + 1
    parts.append(expr[start:])
    return [p.strip() for p in parts if p.strip()]


def _expand_one(item: str, limit: int) -> list[str] | None:
    match = re.search(r"\[([^\[\]]*)\]", item)
    if match is None:
        return None if "[" in item or "]" in item else [item]
    head, tail = item[: match.start()], item[match.end() :]
    values: list[str] = []
    for part in match.group(1).split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not lo.isdigit() or (dash and not hi.isdigit()):
            return None
        if not dash:
            values.append(lo)
            continue
        start, end = int(lo), int(hi)
        if end < start or end - start >= limit:
            return None
        width = len(lo)
        values.extend(str(n).zfill(width) for n in range(start, end + 1))
        if len(values) > limit:
            return None
    rests = _expand_one(tail, limit) if tail else [""]
    if rests is None or len(values) * len(rests) > limit:
        return None
    return [f"{head}{v}{r}" for v in values for r in rests]


def expand_hostlist(expr: Any, limit: int = MAX_HOSTS) -> tuple[str, ...]:
    """``gpu[01-03,07],login1`` → every name; a malformed part stays as written; at most ``limit`` names."""
    if type(expr) is not str:
        return ()
    names: list[str] = []
    for item in _split_top(expr):
        names.extend(_expand_one(item, limit) or [item])
        if len(names) >= limit:
            return tuple(names[:limit])
    return tuple(dict.fromkeys(names))


# ---------------------------------------------------------------------------------- GPUs
def gres_gpus(value: Any) -> int | None:
    """GPUs in a gres string (``gpu:h100:4(S:0-1),gpu:2``, ``gres:gpu:2``, ``gres/gpu:h100:2``); None if it names none."""
    if type(value) is not str or not value.strip() or value.strip().upper() in ("N/A", "(NULL)"):
        return None
    total, seen = 0, False
    for item in _split_top(value):
        item = re.sub(r"\(.*$", "", item).strip()
        for prefix in ("gres:", "gres/"):
            if item.startswith(prefix):
                item = item[len(prefix) :]
        item = item.replace("=", ":")
        parts = item.split(":")
        if parts[0] != "gpu":
            continue
        seen = True
        count = parts[-1] if len(parts) > 1 else "1"
        if count.isdigit():
            total += int(count)
        elif len(parts) == 2:  # "gpu:h100" names a type, one GPU
            total += 1
        else:
            return None
    return total if seen else None


def tres_gpus(value: Any) -> int | None:
    """``gres/gpu`` of a TRES string (``cpu=2,mem=4G,gres/gpu=2,gres/gpu:h100=2``); None when it has none."""
    if type(value) is not str:
        return None
    for item in value.split(","):
        key, _, count = item.partition("=")
        if key.strip() == "gres/gpu":
            return int(count) if count.strip().isdigit() else None
    return None
