"""Provides what the demo tests share: a settable clock, every demo source polled at an instant, the nodes' view."""

from __future__ import annotations

from sovtui.demo import DEMO_EPOCH, DemoCluster, demo_sources
from sovtui.model.types import SiteInfo, SourceData, SourceResult, SourceStatus
from sovtui.model.view import build_view

SEEDS = (7, 0, 1, 2, 3, 11, 42)  # for cheap checks
STORY_SEEDS = (7, 1, 2, 42)  # for the storylines, which step the sim for minutes


class Clock:
    """A settable clock for the sources and the hub."""

    def __init__(self, t: float = DEMO_EPOCH) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def fetch_all(cluster: DemoCluster, t: float) -> dict[str, SourceData]:
    """Poll every demo source at ``t`` (synchronously: the async fetch gives the same, see test_demo.py)."""
    return {s.name: s.fetch_sync() for s in demo_sources(cluster, lambda: t)}


def at(cluster: DemoCluster, t: float) -> DemoCluster:
    cluster.advance_to(t)
    return cluster


def find_gpu(gpus, host: str, index: int):
    return next(g for g in gpus if g.host == host and g.index == index)


def nodes_at(cluster: DemoCluster, t: float) -> dict:
    """The layered view of every node at ``t``, by name, from every demo source polled then."""
    results = {}
    for source in demo_sources(cluster, lambda: t):
        results[source.name] = SourceResult(
            SourceStatus(source.name, source.kind, ok=True, last_ok_at=t), source.fetch_sync()
        )
    return {n.name: n for n in build_view(SiteInfo("demo", demo=True), results, t).nodes}
