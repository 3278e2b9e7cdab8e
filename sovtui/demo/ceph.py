"""Provides the Ceph simulation of the demo: pool growth, the filling and purged datasets pool, an OSD going down."""

from __future__ import annotations

from ..model.types import CephPool
from .common import ramp
from .entities import (
    OSD_PERIOD_S,
    POOL_PERIOD_S,
)


class CephSimMixin:
    """Pools and OSDs over time; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    def _pool_fill(self, now: float) -> float:
        """Fill fraction of the "datasets" pool: fills past nearfull, plateaus, is purged, refills."""
        u = (now - self._story.pool_nearfull_at) % POOL_PERIOD_S
        if u < 240:
            return 0.85 + 0.0001 * u
        if u < 420:
            return 0.874
        if u < 480:
            return ramp(u, 420, 480, 0.874, 0.70)
        return ramp(u, 480, POOL_PERIOD_S, 0.70, 0.85)

    def _ceph_tick(self, now: float) -> None:
        r = self._ceph_rng
        n1, n2 = r.gauss(0, 1), r.gauss(0, 1)
        rbd, cephfs, datasets = self._pools
        rbd.stored = max(0.0, rbd.stored + 2e9 + 5e8 * n1)
        cephfs.stored = max(0.0, cephfs.stored + 1e9 * n2)
        other_raw = rbd.stored * rbd.overhead + cephfs.stored * cephfs.overhead
        budget = 0.95 * self._ceph_raw - other_raw
        datasets.stored = self._pool_fill(now) * budget / datasets.overhead
        u = (now - self._story.osd_down_from) % OSD_PERIOD_S
        for osd in self._osds:
            osd.up = not (osd.id == self._story.osd_down and u < self._story.osd_down_for)
        self._osd_recovering = self._story.osd_down_for <= u < self._story.osd_down_for + 90.0

    def _ceph_pools(self) -> list[CephPool]:
        used = sum(p.stored * p.overhead for p in self._pools)
        free_raw = max(0.0, 0.95 * self._ceph_raw - used)
        return [CephPool(p.name, p.stored, free_raw / p.overhead, int(p.stored / p.object_size)) for p in self._pools]
