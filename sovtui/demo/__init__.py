"""Provides the built-in demo: a simulated cluster behind the same Source interface as real backends.

Wiring: the hub and the demo sources share one clock, and the cluster starts where that clock does::

    clock = lambda: DEMO_EPOCH + (time.monotonic() - origin)   # or frozen at DEMO_EPOCH for snapshots
    hub = Hub(demo_sources(DemoCluster(seed=7), clock), clock=clock)

or, with wall-clock timestamps, ``Hub(demo_sources(DemoCluster.live(), time.time), clock=time.time)``.
:func:`~sovtui.demo.setup.demo_setup` does this wiring for ``sovtui --demo`` (live, or frozen for snapshots).
"""

from .cluster import (
    DEMO_EPOCH,
    TICK_S,
    DemoCluster,
    DemoOperationError,
    DisruptionBudgetViolation,
    NotFound,
    Storyline,
)
from .setup import demo_clock, demo_setup
from .sources import DemoSource, demo_sources

__all__ = [
    "DEMO_EPOCH",
    "TICK_S",
    "DemoCluster",
    "DemoOperationError",
    "DemoSource",
    "DisruptionBudgetViolation",
    "NotFound",
    "Storyline",
    "demo_clock",
    "demo_setup",
    "demo_sources",
]
