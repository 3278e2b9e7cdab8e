"""Provides the alerts from Prometheus and Alertmanager."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert from Prometheus or Alertmanager."""

    name: str
    severity: str = "none"
    state: str = "firing"  # firing | pending | suppressed
    labels: tuple[tuple[str, str], ...] = ()
    summary: str = ""
    description: str = ""
    active_since: float | None = None
    source: str = "prometheus"

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)

    @property
    def identity(self) -> tuple[Any, ...]:
        """Same alert from Prometheus and Alertmanager compares equal on this."""
        return (self.name, tuple(sorted(kv for kv in self.labels if kv[0] not in ("alertname",))))
