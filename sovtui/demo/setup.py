"""Provides the demo site's set-up: the simulated cluster's sources and the clock they share with the hub."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..model.types import SiteInfo
from ..sources.base import Source
from .cluster import DEMO_EPOCH, DemoCluster
from .sources import demo_sources

Clock = Callable[[], float]


def demo_clock(start: float, *, frozen: bool = False) -> Clock:
    """A clock that starts at ``start`` and advances with wall time, or stays there when frozen."""
    if frozen:
        return lambda: start
    origin = time.monotonic()
    return lambda: start + (time.monotonic() - origin)


def demo_setup(seed: int, *, frozen: bool = False) -> tuple[SiteInfo, list[Source], Clock]:
    """The demo site: a simulated cluster with its sources and the clock they share.

    Live, the simulation starts now and runs on wall time, so the header shows the real time.
    Frozen (snapshots, tests, ``sovtui snapshot --demo``), it stays at ``DEMO_EPOCH``, so the
    same seed gives the same screen and the same JSON.
    """
    start = DEMO_EPOCH if frozen else time.time()
    clock = demo_clock(start, frozen=frozen)

    def cluster() -> DemoCluster:  # built at the first poll, after the first paint
        return DemoCluster(seed=seed, start=start)

    return SiteInfo(name="demo", demo=True), list(demo_sources(cluster, clock)), clock
