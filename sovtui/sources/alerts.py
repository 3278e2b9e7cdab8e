"""Provides what the alert sources share: an alert from its labels and annotations, RFC 3339 times, and worst-first order."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..model.types import Alert
from .base import BadAnswer

_SEVERITY_ORDER = {"critical": 0, "page": 0, "error": 1, "major": 1, "warning": 2, "minor": 2, "info": 3, "none": 4}


def labels(raw: Any) -> dict[str, str]:
    """A series' or an alert's labels, checked to be strings."""
    if not isinstance(raw, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise BadAnswer("Prometheus answered a series whose labels are not strings")
    return raw


def parse_time(text: Any) -> float | None:
    """RFC 3339 (Go's, with up to 9 fractional digits) → unix seconds; unknown, zero or bad → ``None``."""
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    value = text.strip().replace("z", "Z")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Python wants at most 6 fractional digits
    if "." in value:
        head, _, rest = value.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = head + "." + rest[: min(digits, 6)] + rest[digits:] if digits else head + rest[digits:]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.timestamp()
    except (OverflowError, OSError, ValueError):
        return None


def _severity_rank(severity: str) -> int:
    return _SEVERITY_ORDER.get(severity.lower(), 5)


def sort_alerts(alerts: Iterable[Alert]) -> tuple[Alert, ...]:
    """Worst first: severity, firing before pending/suppressed, then name and labels."""
    state_rank = {"firing": 0, "pending": 1, "suppressed": 2}
    return tuple(
        sorted(alerts, key=lambda a: (_severity_rank(a.severity), state_rank.get(a.state, 3), a.name, a.labels))
    )


def make_alert(labels_raw: Any, annotations_raw: Any, state: str, since: Any, source: str) -> Alert:
    labels_ = labels(labels_raw if labels_raw is not None else {})
    annotations = annotations_raw if isinstance(annotations_raw, dict) else {}
    text = {k: v for k, v in annotations.items() if isinstance(k, str) and isinstance(v, str)}
    return Alert(
        name=labels_.get("alertname", ""),
        severity=labels_.get("severity", "none") or "none",
        state=state,
        labels=tuple(sorted(labels_.items())),
        summary=text.get("summary") or text.get("message") or text.get("title") or "",
        description=text.get("description", ""),
        active_since=parse_time(since),
        source=source,
    )
