"""Provides in-memory history rings per GPU (util, memory, temperature, power) for sparklines."""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

METRICS = ("util_pct", "mem_pct", "temp_c", "power_w")


_NAN = float("nan")
_METRIC_INDEX = {metric: i for i, metric in enumerate(METRICS)}


class GpuHistory:
    """Keeps the last ``size`` readings of each GPU; a reading is recorded once per observation.

    Each GPU has one float array holding its readings of every metric side by side, so that
    recording a fleet's poll is one pass with no per-metric objects.
    """

    def __init__(self, size: int = 120) -> None:
        self.size = size
        #: per GPU key: [readings (size x METRICS, NaN = none), next slot, readings held]
        self._rings: dict[str, list[Any]] = {}
        self._last_seen: dict[str, float] = {}
        self._blank = array("f", [_NAN]) * (size * len(METRICS))

    def record(self, gpus: Iterable[Any], now: float) -> None:
        """Append one sample per GPU whose reading is new (``observed_at`` moved, or ``now`` if unknown)."""
        size = self.size
        rings = self._rings
        last_seen = self._last_seen
        nan = _NAN
        for gpu in gpus:
            stamp = gpu.observed_at or now
            key = gpu.key
            if last_seen.get(key) == stamp:
                continue
            last_seen[key] = stamp
            ring = rings.get(key)
            if ring is None:
                ring = rings[key] = [array("f", self._blank), 0, 0]
            data, slot, count = ring
            at = slot * 4  # len(METRICS)
            value = gpu.util_pct
            data[at] = nan if value is None else float(value)
            value = gpu.mem_pct
            data[at + 1] = nan if value is None else float(value)
            value = gpu.temp_c
            data[at + 2] = nan if value is None else float(value)
            value = gpu.power_w
            data[at + 3] = nan if value is None else float(value)
            ring[1] = slot + 1 if slot + 1 < size else 0
            if count < size:
                ring[2] = count + 1

    def series(self, key: str, metric: str) -> list[float | None]:
        ring = self._rings.get(key)
        if not ring:
            return []
        offset = _METRIC_INDEX[metric]
        data, slot, count = ring
        size = self.size
        start = (slot - count) % size
        out: list[float | None] = []
        for i in range(count):
            v = data[((start + i) % size) * 4 + offset]
            out.append(None if v != v else float(v))
        return out

    def __len__(self) -> int:
        return len(self._rings)


BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None], width: int = 40, lo: float | None = None, hi: float | None = None) -> str:
    """Unicode block sparkline of the last ``width`` values; gaps are spaces."""
    values = values[-width:]
    present = [v for v in values if v is not None]
    if not present:
        return ""
    lo = min(present) if lo is None else lo
    hi = max(present) if hi is None else hi
    span = hi - lo
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        elif span <= 0:
            out.append(BARS[len(BARS) // 2])
        else:
            idx = int((min(max(v, lo), hi) - lo) / span * (len(BARS) - 1) + 0.5)
            out.append(BARS[idx])
    return "".join(out)
