"""Provides the parsing of Prometheus's answers: instant vectors, range matrices and its alert list, each checked (anything malformed is a BadAnswer)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..model.types import (
    Alert,
)
from .alerts import labels as _labels
from .alerts import make_alert, sort_alerts
from .base import BadAnswer, short
from .http import api_error


class Sample(NamedTuple):
    """One element of an instant vector: its labels (``__name__`` included when kept), value and time."""

    labels: Mapping[str, str]
    value: float
    at: float

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range query: its labels and its ``(unix seconds, value)`` points."""

    labels: tuple[tuple[str, str], ...]
    points: tuple[tuple[float, float], ...]

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def _point(raw: Any) -> tuple[float, float]:
    """``[1700000000.123, "42"]`` → ``(1700000000.123, 42.0)``; NaN/±Inf are kept as floats."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise BadAnswer("Prometheus answered a sample that is not a [time, value] pair")
    ts, value = raw
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise BadAnswer("Prometheus answered a sample with a bad timestamp")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadAnswer("Prometheus answered a sample value that is not a number")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError):
        raise BadAnswer(f"Prometheus answered a sample value that is not a number: {short(value, 40)!r}") from None
    return float(ts), number


def parse_vector(result: Any) -> list[Sample]:
    """The ``data.result`` of an instant query (vector) as samples; anything malformed → :class:`BadAnswer`."""
    if not isinstance(result, list):
        raise BadAnswer("Prometheus answered a result that is not a list (expected an instant vector)")
    samples = []
    for item in result:
        if not isinstance(item, dict) or "value" not in item:
            raise BadAnswer("Prometheus answered a result that is not an instant vector")
        at, value = _point(item["value"])
        samples.append(Sample(_labels(item.get("metric", {})), value, at))
    return samples


def parse_matrix(result: Any) -> list[RangeSeries]:
    """The ``data.result`` of a range query (matrix); anything malformed → :class:`BadAnswer`."""
    if not isinstance(result, list):
        raise BadAnswer("Prometheus answered a result that is not a list (expected a range matrix)")
    series = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise BadAnswer("Prometheus answered a result that is not a range matrix")
        labels = _labels(item.get("metric", {}))
        points = tuple(_point(p) for p in item["values"])
        series.append(RangeSeries(tuple(sorted(labels.items())), points))
    return series


def finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def as_int(value: float | None) -> int | None:
    value = finite(value)
    return int(value) if value is not None else None


def as_bool(value: float | None) -> bool | None:
    value = finite(value)
    return None if value is None else value != 0


def parse_prometheus_alerts(payload: Any) -> tuple[Alert, ...]:
    """The JSON of ``GET /api/v1/alerts`` (firing and pending) as alerts; malformed → :class:`BadAnswer`."""
    data = success_data(payload, "alerts")
    raw = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise BadAnswer("Prometheus answered /api/v1/alerts without an alert list")
    alerts = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadAnswer("Prometheus answered an alert that is not an object")
        state = item.get("state")
        if state not in ("firing", "pending"):
            continue
        alerts.append(
            make_alert(item.get("labels"), item.get("annotations"), state, item.get("activeAt"), "prometheus")
        )
    return sort_alerts(alerts)


def success_data(payload: Any, what: str) -> Any:
    if not isinstance(payload, dict):
        raise BadAnswer(f"Prometheus answered {what} with something that is not a JSON object")
    if payload.get("status") != "success":
        raise BadAnswer(api_error(payload) or f"Prometheus answered {what} without status success")
    return payload.get("data")
