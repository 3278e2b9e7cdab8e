"""Provides the drain benchmark: a node of 100 pods that take 2 s each to stop, drained through sovtui's operations layer.

Two measurements, each printed with its ratio to the target:

drain wall time
    The lab's fake Kubernetes API server (its own process; the real REST API, watch, Eviction API, kubelet
    honouring grace periods) with node ``drain-slow`` running ``--pods`` pods whose containers ignore
    SIGTERM for ``--seconds`` (benchmarks/drain_pods.py). A real ``KubernetesSource`` and the same
    :class:`~sovtui.ops.operator.Operator` the TUI and the CLI use: plan, then run until every pod is gone
    (seen through the watch: NotFound or a new UID). The floor is ``--seconds`` (every pod must wait out its
    grace period); the target is 1.5x the floor: evictions are issued concurrently, so a drain takes about as
    long as its slowest pod, not the sum (kubectl drain evicts concurrently too; 100 x 2 s one by one is 200 s).
plan from the cache
    A generated cluster of ``--nodes`` 8-GPU nodes and ``--big-pods`` pods; once the source has listed and
    watches, ``make_plan("drain", [one node])`` from the informer caches, median of ``--reps`` (target 50 ms).

    python benchmarks/drain.py [--pods 100] [--seconds 2] [--nodes 1000] [--big-pods 20000] [--reps 20]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from drain_pods import CONTEXT, DRAIN_NODE, start_drain_lab  # noqa: E402

from sovtui.config import SiteConfig  # noqa: E402
from sovtui.hub import Hub  # noqa: E402
from sovtui.model.types import SiteInfo  # noqa: E402
from sovtui.ops.drain import make_plan  # noqa: E402
from sovtui.ops.layers import Layers  # noqa: E402
from sovtui.ops.operator import Operator  # noqa: E402
from sovtui.ops.plan import Options  # noqa: E402
from sovtui.sources.kubernetes import KubernetesSource  # noqa: E402

TARGET_RATIO = 1.5
TARGET_PLAN_MS = 50.0
SITE = SiteInfo(name="bench")


async def drain_wall(args: argparse.Namespace, workdir: Path) -> None:
    cluster = start_drain_lab(workdir / "drain", args.pods, args.seconds)
    src = KubernetesSource(SiteConfig("bench", kube_context=CONTEXT, timeout_s=15.0), kubeconfig=cluster.kubeconfig)
    hub = Hub([src])
    try:
        await hub.poll_all()
        op = Operator(SITE, [src], lambda: hub.results, journal=None)
        t0 = time.perf_counter()
        plan = await op.plan("drain", [DRAIN_NODE], Options(reason="benchmark", layers=("kubernetes",)))
        planned = time.perf_counter() - t0
        evict = sum(1 for s in plan.steps if s.action == "evict")
        t1 = time.perf_counter()
        outcome = await op.start(plan).execute()
        took = time.perf_counter() - t1
        floor = args.seconds
        print(
            f"drain {DRAIN_NODE}: {evict} pods evicted, plan {planned * 1000:.1f} ms, run {took:.2f} s, verdict {outcome.verdict(plan)}"
        )
        print(
            f"  wall / floor ({floor:g} s) = {took / floor:.2f}x  (target <= {TARGET_RATIO}x: {'ok' if took / floor <= TARGET_RATIO else 'MISSED'})"
        )
        print(f"  one pod at a time would take {evict * floor:.0f} s: {evict * floor / took:.0f}x slower")
    finally:
        await hub.stop()
        await src.aclose()
        cluster.close()


async def plan_cost(args: argparse.Namespace, workdir: Path) -> None:
    from tests.lab.kubeapi.lab import start_cluster

    cluster = start_cluster(workdir / "big", "bench-big", {"kind": "big", "nodes": args.nodes, "pods": args.big_pods})
    src = KubernetesSource(SiteConfig("bench", kube_context=CONTEXT, timeout_s=60.0), kubeconfig=cluster.kubeconfig)
    hub = Hub([src])
    try:
        await hub.poll_all()
        nodes = hub.results[src.name].data.kube_nodes or ()
        busiest = max(nodes, key=lambda n: len(src.pods_on(n.name) or ()))
        layers = Layers.from_sources([src], hub.results)
        costs = []
        for _ in range(args.reps):
            memo = getattr(src, "_pods_on_memo", None)
            if memo is not None:
                memo.clear()  # the plan's cost, not a remembered answer
            t0 = time.perf_counter()
            plan = await make_plan(
                "drain", [busiest.name], Options(reason="benchmark", layers=("kubernetes",)), layers, SITE
            )
            costs.append(time.perf_counter() - t0)
        med = statistics.median(costs) * 1000
        print(
            f"plan of {busiest.name} ({len(plan.steps) - 1} pods) in a {len(nodes)}-node, "
            f"{sum(len(src.pods_on(n.name) or ()) for n in nodes)}-pod cache: {med:.2f} ms median, {max(costs) * 1000:.2f} ms max"
        )
        print(
            f"  {med / TARGET_PLAN_MS:.2f}x the {TARGET_PLAN_MS:g} ms target ({'ok' if med <= TARGET_PLAN_MS else 'MISSED'})"
        )
    finally:
        await hub.stop()
        await src.aclose()
        cluster.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--big-pods", type=int, default=20000)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sovtui-drain-bench-"))
    try:
        asyncio.run(drain_wall(args, workdir))
        asyncio.run(plan_cost(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
