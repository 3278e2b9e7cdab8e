"""Provides a Ceph cluster's health and capacity."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CephPool:
    """One Ceph pool's usage."""

    name: str
    stored_bytes: float = 0.0
    max_avail_bytes: float = 0.0
    objects: int | None = None

    @property
    def used_pct(self) -> float:
        total = self.stored_bytes + self.max_avail_bytes
        return 100.0 * self.stored_bytes / total if total > 0 else 0.0


@dataclass(frozen=True, slots=True)
class CephState:
    """A Ceph cluster's health and capacity."""

    health: str = "HEALTH_UNKNOWN"  # HEALTH_OK / HEALTH_WARN / HEALTH_ERR
    total_bytes: float = 0.0
    used_bytes: float = 0.0
    nearfull_ratio: float = 0.85
    full_ratio: float = 0.95
    osds_total: int = 0
    osds_up: int = 0
    osds_in: int = 0
    pools: tuple[CephPool, ...] = ()
    checks: tuple[str, ...] = ()  # active health check names, e.g. OSD_NEARFULL

    @property
    def used_pct(self) -> float:
        return 100.0 * self.used_bytes / self.total_bytes if self.total_bytes > 0 else 0.0
