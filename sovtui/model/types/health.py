"""Provides the health levels and verdicts every view is judged by."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Health(enum.StrEnum):
    """A verdict level; ordered so that ``max()`` picks the worst."""

    OK = "ok"
    WARN = "warn"
    CRIT = "crit"
    UNKNOWN = "unknown"

    @property
    def rank(self) -> int:
        return _HEALTH_RANK[self]

    @property
    def glyph(self) -> str:
        """A symbol that carries the level without colour."""
        return _HEALTH_GLYPH[self]

    @classmethod
    def worst(cls, levels: Iterable[Health]) -> Health:
        seen = list(levels)
        if not seen:
            return cls.OK
        worst: Health = max(seen, key=lambda h: h.rank)
        return worst


_HEALTH_RANK = {Health.OK: 0, Health.UNKNOWN: 1, Health.WARN: 2, Health.CRIT: 3}
_HEALTH_GLYPH = {Health.OK: "✓", Health.UNKNOWN: "?", Health.WARN: "▲", Health.CRIT: "✗"}


@dataclass(frozen=True, slots=True)
class Verdict:
    """A health level with the human reasons behind it, worst first."""

    level: Health = Health.OK
    reasons: tuple[str, ...] = ()

    @property
    def first_reason(self) -> str:
        return self.reasons[0] if self.reasons else ""
