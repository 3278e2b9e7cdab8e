"""Provides the drain benchmark's cluster: a node with N pods that take S seconds each to terminate, and its floor.

:func:`start_drain_lab` starts the test lab's fake Kubernetes API server (its own process, HTTPS, the real REST API,
watch stream, Eviction API with PodDisruptionBudgets, its controllers, scheduler and kubelet) seeded with the drain
cluster of ``tests/lab/kubeapi/drainseed.py`` plus node ``drain-slow``, which runs ``pods`` pods of the ReplicaSet
``drain-lab/slow-drain``. Their containers ignore SIGTERM and their grace period is ``seconds``: each pod goes when its
grace period ends, and the ReplicaSet replaces it on a spare node. Point a ``KubernetesSource`` at
``cluster.kubeconfig`` (context ``lab``) and drain ``DRAIN_NODE``.

Run alone, it measures what a drain of that node is made of, without any drain logic: the source's first list,
``pods_on(DRAIN_NODE)`` (index by node, budgets matched), and the floor of a drain, every pod evicted at once and
waited for through the watch (``pods_changed``) until each UID is gone: about ``seconds``, however many pods.

    python benchmarks/drain_pods.py [--pods 100] [--seconds 2] [--keep]

``--keep`` leaves the server running (its kubeconfig printed) until Ctrl-C, for a drain run against it.
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

from sovtui.config import SiteConfig  # noqa: E402
from sovtui.sources.kubernetes import KubernetesSource  # noqa: E402

DRAIN_NODE = "drain-slow"
NAMESPACE = "drain-lab"
CONTEXT = "lab"


def start_drain_lab(workdir: Path, pods: int = 100, seconds: float = 2.0):
    """Start the drain cluster with ``pods`` pods on ``DRAIN_NODE``, each taking ``seconds`` to terminate: a KubeCluster
    (``.kubeconfig``, ``.url``, ``.close()``). In tests, ``lab_kube.drain(pods, seconds)`` gives the same, started once."""
    from tests.lab.kubeapi.lab import start_cluster

    return start_cluster(workdir, f"drain-{pods}", {"kind": "drain", "slow_pods": pods, "slow_s": seconds})


async def run(args: argparse.Namespace, workdir: Path) -> None:
    cluster = start_drain_lab(workdir / "drain", args.pods, args.seconds)
    try:
        print(f"drain cluster up in {cluster.startup_s:.1f}s at {cluster.url}; kubeconfig {cluster.kubeconfig}")
        src = KubernetesSource(SiteConfig("bench", kube_context=CONTEXT, timeout_s=10.0), kubeconfig=cluster.kubeconfig)
        try:
            t0 = time.perf_counter()
            await src.fetch()
            print(f"first list + watch: {time.perf_counter() - t0:.2f}s")
            costs = []
            for _ in range(20):
                src._pods_on_memo.clear()  # measure the build, not the cached answer
                t1 = time.perf_counter()
                pods = src.pods_on(DRAIN_NODE)
                costs.append(time.perf_counter() - t1)
            assert pods is not None
            victims = [p for p in pods if p.owner_kind == "ReplicaSet"]
            print(
                f"pods_on({DRAIN_NODE}): {len(pods)} pods ({len(victims)} to evict), built in {statistics.median(costs) * 1000:.2f} ms (median)"
            )
            if args.keep:
                print("serving until Ctrl-C")
                while True:
                    await asyncio.sleep(3600)
            uids = {p.name: p.uid for p in victims}
            t2 = time.perf_counter()
            await asyncio.gather(*(src.evict(NAMESPACE, name) for name in uids))
            evicted = time.perf_counter() - t2

            def left() -> list[str]:
                return [n for n, uid in uids.items() if src.pod_uid(NAMESPACE, n) == uid]

            while left() and time.perf_counter() - t2 < args.seconds + 30:
                await src.pods_changed(1.0)
            took = time.perf_counter() - t2
            print(
                f"evict all {len(uids)}: requests {evicted:.2f}s; every pod gone after {took:.2f}s (grace {args.seconds:g}s); {len(left())} left"
            )
        finally:
            await src.aclose()
    finally:
        cluster.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--keep", action="store_true", help="leave the server running for a drain against it")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sovtui-drain-bench-"))
    try:
        asyncio.run(run(args, workdir))
    except KeyboardInterrupt:
        pass
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
