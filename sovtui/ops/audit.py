"""Provides the audit log: one JSON line per run in ``$XDG_STATE_HOME/sovtui/audit.jsonl``, and reading it back.

A line says who (the local user and the identity used in each layer), when, on which site, what
(action, hosts, options, the plan's summary), and how each item ended. It never holds a secret: the
identities are names, and any field whose name says token, password or secret is dropped.
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import re
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import xdg_dir
from .journal import local_user
from .plan import SUCCESS, Outcome, Plan

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
MAX_READ_BYTES = 64 * 1024 * 1024  # the newest 64 MiB are read back
_SECRET = re.compile(r"token|passw|secret|private.?key|credential", re.I)


def audit_path() -> Path:
    return xdg_dir("state") / AUDIT_FILE


def scrub(value: Any) -> Any:
    """``value`` without any mapping entry whose key names a secret."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items() if not _SECRET.search(str(k))}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def record_of(run_id: str, plan: Plan, outcome: Outcome, *, resumed_from: str = "") -> dict[str, Any]:
    """The audit line of one run."""
    items = []
    for step in plan.steps:
        items.append(
            {
                "host": step.host,
                "layer": step.layer,
                "kind": step.kind,
                "name": step.name,
                "action": step.action,
                "state": outcome.states.get(step.key, "skipped" if not step.acts else "not started"),
                "detail": outcome.details.get(step.key, step.detail if not step.acts else ""),
            }
        )
    doc = {
        "id": run_id,
        "at": _iso(outcome.finished_at or time.time()),
        "started": _iso(outcome.started_at) if outcome.started_at else None,
        "finished": _iso(outcome.finished_at) if outcome.finished_at else None,
        "user": local_user(),
        "identities": dict(plan.identities),
        "site": plan.site,
        "production": plan.production,
        "action": plan.action,
        "hosts": list(plan.hosts),
        "options": plan.options.to_json(),
        "plan": plan.summary(),
        "outcome": outcome.verdict(plan),
        "error": outcome.error,
        "items": items,
    }
    if resumed_from:
        doc["resumed_from"] = resumed_from
    clean: dict[str, Any] = scrub(doc)
    return clean


def abandoned_record(run_id: str, plan: Plan, states: dict[str, str], details: dict[str, str]) -> dict[str, Any]:
    """The audit line of an unfinished run the operator chose not to resume."""
    outcome = Outcome(states=dict(states), details=dict(details), finished_at=time.time())
    doc = record_of(run_id, plan, outcome)
    doc["outcome"] = "abandoned"
    return doc


def append(record: dict[str, Any], path: Path | None = None) -> Path:
    """Append one line (one write call, so concurrent sovtui processes do not interleave lines)."""
    path = path or audit_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(scrub(record), separators=(",", ":"), ensure_ascii=False) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
    return path


def read(*, since_s: float | None = None, path: Path | None = None, now: float | None = None) -> list[dict[str, Any]]:
    """The audit lines, oldest first; only those of the last ``since_s`` seconds when given. Bad lines are skipped."""
    path = path or audit_path()
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            if size > MAX_READ_BYTES:
                fh.seek(size - MAX_READ_BYTES)
                fh.readline()
            raw = fh.read()
    except FileNotFoundError:
        return []
    cutoff = None if since_s is None else (now if now is not None else time.time()) - since_s
    out = []
    for line in raw.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if not isinstance(doc, dict):
            continue
        if cutoff is not None and _epoch(doc.get("at")) < cutoff:
            continue
        out.append(doc)
    return out


def parse_duration(text: str) -> float:
    """``90s``, ``15m``, ``1h``, ``2d``, ``1w`` (or plain seconds) as seconds; ValueError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text or "")
    if not match:
        raise ValueError(f"expected a duration such as 90s, 10m, 1h or 2d, got {text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]


def format_lines(records: Iterable[dict[str, Any]]) -> str:
    """One line per run, for a terminal: when, who, outcome, action, hosts, reason, item counts."""
    lines = []
    for r in records:
        items = r.get("items") or []
        bad = [i for i in items if i.get("state") not in SUCCESS]
        reason = (r.get("options") or {}).get("reason") or ""
        lines.append(
            f"{r.get('at', '?')}  {r.get('user', '?'):<10} {r.get('outcome', '?'):<9} {r.get('action', '?'):<8} "
            f"{','.join(r.get('hosts') or ())}  site={r.get('site', '?')}"
            + (f"  reason={reason!r}" if reason else "")
            + f"  items={len(items)}"
            + (f" not-as-planned={len(bad)}" if bad else "")
        )
        for i in bad:
            lines.append(
                f"    {i.get('host')} {i.get('layer')} {i.get('kind')} {i.get('name')}: {i.get('state')} {i.get('detail') or ''}".rstrip()
            )
    return "\n".join(lines)


def _iso(t: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t if t is not None else time.time()))


def _epoch(text: Any) -> float:
    try:
        return float(calendar.timegm(time.strptime(str(text), "%Y-%m-%dT%H:%M:%SZ")))
    except (ValueError, OverflowError):
        return 0.0
