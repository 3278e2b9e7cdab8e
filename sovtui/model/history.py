"""Provides in-memory history rings per GPU (util, memory, temperature, power) for sparklines."""

from __future__ import annotations

from array import array
from collections.abc import Iterable

METRICS = ("util_pct", "mem_pct", "temp_c", "power_w")


class Ring:
    """A fixed-size ring of floats (NaN = no reading), compact enough for thousands of GPUs."""

    __slots__ = ("_data", "_next", "_count")

    def __init__(self, size: int) -> None:
        self._data = array("f", [float("nan")]) * size
        self._next = 0
        self._count = 0

    def push(self, value: float | None) -> None:
        self._data[self._next] = float("nan") if value is None else float(value)
        self._next = (self._next + 1) % len(self._data)
        self._count = min(self._count + 1, len(self._data))

    def values(self) -> list[float | None]:
        size = len(self._data)
        start = (self._next - self._count) % size
        out = []
        for i in range(self._count):
            v = self._data[(start + i) % size]
            out.append(None if v != v else float(v))
        return out


class GpuHistory:
    """Keeps the last ``size`` readings of each GPU; a reading is recorded once per observation."""

    def __init__(self, size: int = 120) -> None:
        self.size = size
        self._rings: dict[str, dict[str, Ring]] = {}
        self._last_seen: dict[str, float] = {}

    def record(self, gpus: Iterable, now: float) -> None:
        """Append one sample per GPU whose reading is new (``observed_at`` moved, or ``now`` if unknown)."""
        for gpu in gpus:
            stamp = gpu.observed_at or now
            key = gpu.key
            if self._last_seen.get(key) == stamp:
                continue
            self._last_seen[key] = stamp
            rings = self._rings.get(key)
            if rings is None:
                rings = self._rings[key] = {m: Ring(self.size) for m in METRICS}
            for metric in METRICS:
                rings[metric].push(getattr(gpu, metric))

    def series(self, key: str, metric: str) -> list[float | None]:
        rings = self._rings.get(key)
        return rings[metric].values() if rings else []

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
