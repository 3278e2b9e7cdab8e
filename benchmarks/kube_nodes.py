"""Provides the Kubernetes nodes benchmark: first list of a 1,000-node/20,000-pod cluster, idle and changed refreshes.

Starts the test lab's fake Kubernetes API server (its own process, HTTPS, the real REST API and
watch stream, its controllers and scheduler at work) seeded with N 8-GPU nodes and P pods
(DaemonSet, GPU, CPU, finished and pending pods, and a few hundred events), and points a real
``KubernetesSource`` at it. A refresh is what the app does when the source answers: ``fetch()``,
``build_view(SiteInfo, {"kubernetes": SourceResult}, now)``, and the Nodes screen's rows
(``view.nodes``, fused when first asked; "—" where this ``build_view`` has none). What is measured:

first list
    Wall time from a fresh source's first ``fetch()`` (client import, kubeconfig, a paginated
    list of every resource, watches open) until it returns complete data; peak RSS of this
    process (``ru_maxrss``) against its RSS before; with ``--tracemalloc`` also the peak of
    Python allocations meanwhile (slower). Then the cost of the view and the Nodes rows from it.
idle refresh
    Once watching and nothing changes: a refresh, median and p95 over ``--idle`` of them with a
    short pause between (watch bookmarks flowing). After each refresh the benchmark freezes the
    garbage collector's generations, as the app does.
refresh after changes
    Through the official ``kubernetes`` client, as ``kubectl drain`` does (concurrently): cordon
    k nodes and delete 10 k GPU pods, then uncordon them and delete 10 k more, for k = 1 and 10;
    the ReplicaSets replace the pods, the lab's scheduler binds them and re-words its message on
    every pending pod. Once the source's watches and the server have gone quiet, one refresh,
    in parts: the source's node views (``kube_nodes()``), its node events (``node_events()``),
    the rest of ``fetch()``, ``build_view`` and the Nodes rows; against the watch events the
    source absorbed and the nodes it rebuilt. O(changes): ten times the changes cost no more
    than about ten times as much, and nothing near the first list.

Both processes share this machine's CPUs, as do whatever else runs on it: single refreshes
after changes are a few milliseconds, so a busy machine shows in them; the medians are steadier.

    python benchmarks/kube_nodes.py [--nodes 1000] [--pods 20000] [--idle 50] [--reps 2] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sovtui.config import SiteConfig  # noqa: E402
from sovtui.model.types import SiteInfo, SourceResult, SourceStatus  # noqa: E402
from sovtui.model.view import build_view  # noqa: E402
from sovtui.sources.kubernetes import KubernetesSource  # noqa: E402

TARGET_FIRST_S = 10.0
TARGET_IDLE_MS = 5.0


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_ticks(pid: int) -> int:
    """User + system CPU ticks of a process (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def results_of(src: KubernetesSource, data, latency_s: float) -> dict[str, SourceResult]:
    now = time.time()
    status = SourceStatus(
        name=src.name,
        kind=src.kind,
        interval_s=src.interval_s,
        ok=True,
        latency_s=latency_s,
        last_ok_at=now,
        last_attempt_at=now,
    )
    return {src.name: SourceResult(status, data)}


def fuse(src: KubernetesSource, site: SiteInfo, data, fetch_s: float) -> dict:
    """The view of ``data`` and the Nodes screen's rows, timed apart."""
    t0 = time.perf_counter()
    view = build_view(site, results_of(src, data, fetch_s), time.time())
    t1 = time.perf_counter()
    rows = getattr(view, "nodes", None)  # fused when first asked, as the Nodes screen asks
    t2 = time.perf_counter()
    return {"view": t1 - t0, "rows": t2 - t1, "n_rows": None if rows is None else len(rows)}


async def refresh(src: KubernetesSource, site: SiteInfo) -> dict:
    """One refresh as the app makes it: poll the source, fuse the view, make the Nodes rows."""
    t0 = time.perf_counter()
    data = await src.fetch()
    fetch_s = time.perf_counter() - t0
    out = {"fetch": fetch_s, **fuse(src, site, data, fetch_s), "data": data}
    gc.freeze()  # as the app does after each refresh: what lives on is set aside from the collector's passes
    return out


def event_count(src: KubernetesSource) -> int:
    return sum(s.events for s in src.informer_stats().values())


async def settle(src: KubernetesSource, server_pid: int, done, quiet_s: float = 1.0, limit_s: float = 120.0) -> float:
    """Wait until ``done()`` holds, no watch event arrived for ``quiet_s`` and the server's CPU rests; the seconds it took."""
    t0 = time.perf_counter()
    last, ticks, since = event_count(src), cpu_ticks(server_pid), time.perf_counter()
    while time.perf_counter() - t0 < limit_s:
        await asyncio.sleep(0.1)
        now, now_ticks = event_count(src), cpu_ticks(server_pid)
        if now != last or now_ticks - ticks > 2:  # more than 20 ms of server CPU in 100 ms: its controllers still work
            last, since = now, time.perf_counter()
        elif done() and time.perf_counter() - since >= quiet_s:
            return time.perf_counter() - t0
        ticks = now_ticks
    raise TimeoutError(f"the source's watches and the server did not go quiet within {limit_s:g}s")


def gpu_pods(src: KubernetesSource, avoid: set[str]) -> list[str]:
    return [key for n in src.kube_nodes() if n.name not in avoid for key, _ in n.pods_with_gpus]


async def changes_round(
    src: KubernetesSource, site: SiteInfo, core, server_pid: int, targets: list[str], cordon: bool, victims: list[str]
) -> dict:
    """Cordon (or uncordon) ``targets`` and delete the pods ``victims`` through the API; then one refresh in parts."""
    await refresh(src, site)  # start clean: nothing to rebuild
    before = event_count(src)
    t0 = time.perf_counter()
    await asyncio.gather(
        *(core.patch_node(name, {"spec": {"unschedulable": True if cordon else None}}) for name in targets)
    )
    await asyncio.gather(*(core.delete_namespaced_pod(key.split("/", 1)[1], key.split("/", 1)[0]) for key in victims))
    made_s = time.perf_counter() - t0
    cache = src._informers["pods"].items

    def seen() -> bool:
        return all(key not in cache for key in victims) and all(src._nodes[n].unschedulable is cordon for n in targets)

    settle_s = await settle(src, server_pid, seen)
    dirty = len(src._dirty)
    absorbed = event_count(src) - before
    t0 = time.perf_counter()
    src.kube_nodes()  # what fetch() would rebuild first
    t1 = time.perf_counter()
    src.node_events()
    t2 = time.perf_counter()
    r = await refresh(src, site)
    return {
        "k": len(targets),
        "cordon": cordon,
        "pods": len(victims),
        "nodes": t1 - t0,
        "node_events": t2 - t1,
        "rest": r["fetch"],
        "fetch": t2 - t0 + r["fetch"],
        "view": r["view"],
        "rows": r["rows"],
        "events": absorbed,
        "dirty": dirty,
        "made": made_s,
        "settle": settle_s,
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict:
    from kubernetes.aio import client, config

    from tests.lab.kubeapi.lab import start_cluster

    print(f"starting the fake API server with {args.nodes} nodes / {args.pods} pods ...", flush=True)
    cluster = start_cluster(workdir / "kubeapi", "bench", {"kind": "big", "nodes": args.nodes, "pods": args.pods})
    print(f"  server up in {cluster.startup_s:.1f} s ({cluster.url})", flush=True)
    out: dict = {}
    try:
        site = SiteInfo("bench")
        src = KubernetesSource(
            SiteConfig("bench", kube_context="lab", timeout_s=args.timeout), kubeconfig=cluster.kubeconfig
        )
        try:
            # (a) the first complete list
            gc.collect()
            rss0 = rss_mib()
            if args.tracemalloc:
                tracemalloc.start()
            t0 = time.perf_counter()
            data = await src.fetch()
            first_s = time.perf_counter() - t0
            traced = tracemalloc.get_traced_memory()[1] / 2**20 if args.tracemalloc else None
            tracemalloc.stop()
            fused = fuse(src, site, data, first_s)
            gc.collect()
            gc.freeze()
            stats = src.informer_stats()
            out["first"] = {
                "s": first_s,
                **fused,
                "rss0": rss0,
                "rss": rss_mib(),
                "peak": peak_rss_mib(),
                "traced": traced,
                "nodes": len(data.kube_nodes),
                "pods": len(src._informers["pods"].items),
                "pages": stats["pods"].pages,
                "sent": cluster.stats()["items"],
                "node_events": len(data.node_events or ()),
                "queues": len(data.queues),
            }
            print(f"  first complete fetch after {first_s:.2f} s", flush=True)

            # (b) idle refreshes
            await asyncio.sleep(1.0)  # the first bookmarks arrive
            idle = []
            same = True
            for _ in range(args.idle):
                r = await refresh(src, site)
                idle.append(r)
                same = same and r["data"].kube_nodes is data.kube_nodes and r["data"].node_events is data.node_events
                await asyncio.sleep(args.pause)
            out["idle"] = {"runs": [{k: v for k, v in r.items() if k != "data"} for r in idle], "same": same}

            # (c) refreshes after changes, made through the official client
            cfg = client.Configuration()
            await config.load_kube_config(
                config_file=str(cluster.kubeconfig), context="lab", client_configuration=cfg, persist_config=False
            )
            rounds = []
            async with client.ApiClient(cfg) as api:
                core = client.CoreV1Api(api)
                names = [n.name for n in data.kube_nodes if not n.unschedulable]
                offset = 0
                for _ in range(args.reps):
                    for k in (1, 10):
                        targets = names[offset : offset + k]
                        offset += k
                        for cordon in (True, False):
                            victims = gpu_pods(src, set(targets))[offset * 7 :][: 10 * k]
                            r = await changes_round(src, site, core, cluster.daemon.pid, targets, cordon, victims)
                            rounds.append(r)
                            print(
                                f"  {'cordon' if cordon else 'uncordon':>8} {k:>2} nodes, delete {r['pods']:>3} GPU pods: {r['events']:>4} watch events, "
                                f"{r['dirty']:>3} nodes to rebuild; fetch {ms(r['fetch'])} ms (node views {ms(r['nodes'])}, node events "
                                f"{ms(r['node_events'])}, rest {ms(r['rest'])}) + build_view {ms(r['view'])} + rows {ms(r['rows'])} ms "
                                f"[made in {r['made']:.1f} s, quiet after {r['settle']:.1f} s]",
                                flush=True,
                            )
            out["changes"] = rounds
        finally:
            await src.aclose()
    finally:
        cluster.close()
    return out


def report(res: dict) -> None:
    first = res["first"]
    print()
    print(
        f"first complete fetch: {first['s']:.2f} s for {first['nodes']} nodes / {first['pods']} pods ({first['pages']} pages of pods; "
        f"the server sent {first['sent'].get('pods', 0)} pods and {first['sent'].get('events', 0)} Warning events); "
        f"{first['node_events']} node events, {first['queues']} queues"
    )
    traced = f"; Python allocations peaked at {first['traced']:.0f} MiB" if first["traced"] is not None else ""
    print(
        f"  RSS {first['rss0']:.0f} MiB before, {first['rss']:.0f} MiB after; peak {first['peak']:.0f} MiB (+{first['peak'] - first['rss0']:.0f} MiB){traced}"
    )
    rows = (
        f"Nodes rows {ms(first['rows'])} ms ({first['n_rows']} rows)"
        if first["n_rows"] is not None
        else "no Nodes rows in this build_view"
    )
    print(f"  then build_view {ms(first['view'])} ms, {rows}")

    idle = res["idle"]["runs"]
    idle_total = [r["fetch"] + r["view"] + r["rows"] for r in idle]
    print(
        f"idle refresh, {len(idle)} times: median fetch {ms(statistics.median(r['fetch'] for r in idle))} ms, build_view "
        f"{ms(statistics.median(r['view'] for r in idle))} ms, Nodes rows {ms(statistics.median(r['rows'] for r in idle))} ms; "
        f"total median {ms(statistics.median(idle_total))} ms, p95 {ms(pct(idle_total, 95))} ms; the source's node and event tuples "
        f"{'reused every time' if res['idle']['same'] else 'REBUILT'}"
    )

    by_k: dict[int, list[dict]] = {}
    for r in res["changes"]:
        by_k.setdefault(r["k"], []).append(r)
    print("refresh after changes, median of the rounds (cordon or uncordon k nodes, delete 10 k GPU pods):")
    print(
        f"  {'k':>3} {'events':>7} {'dirty':>6} {'fetch':>9} {'views':>8} {'n.events':>9} {'build_view':>11} {'rows':>8} {'total':>9} {'per event':>10}"
    )
    med: dict[int, tuple[float, float, float]] = {}
    for k, rounds in sorted(by_k.items()):

        def m(key: str, rounds: list[dict] = rounds) -> float:
            return statistics.median(r[key] for r in rounds)

        total = statistics.median(r["fetch"] + r["view"] + r["rows"] for r in rounds)
        med[k] = (m("events"), m("fetch"), total)
        print(
            f"  {k:>3} {m('events'):>7.0f} {m('dirty'):>6.0f} {ms(m('fetch')):>7}ms {ms(m('nodes')):>6}ms {ms(m('node_events')):>7}ms "
            f"{ms(m('view')):>9}ms {ms(m('rows')):>6}ms {ms(total):>7}ms {total / max(m('events'), 1) * 1e6:>8.1f}µs"
        )

    print()
    print(f"  {'measure':<56} {'value':>10} {'target':>10} {'ratio':>6}")

    def line(name: str, value: float, target: float | None, unit: str, fmt: str = "{:.1f}") -> None:
        if target is None:
            print(f"  {name:<56} {fmt.format(value) + unit:>10} {'—':>10} {'':>6}")
            return
        print(
            f"  {name:<56} {fmt.format(value) + unit:>10} {fmt.format(target) + unit:>10} {value / target:6.2f} {'ok' if value <= target else 'MISSED'}"
        )

    idle_ms = statistics.median(idle_total) * 1000
    idle_source_ms = statistics.median(r["fetch"] + r["view"] for r in idle) * 1000
    line(
        f"first complete list, {first['nodes']} nodes / {first['pods']} pods",
        first["s"],
        TARGET_FIRST_S,
        " s",
        "{:.2f}",
    )
    line("peak RSS growth during the first list", first["peak"] - first["rss0"], None, " MiB", "{:.0f}")
    line("build_view + Nodes rows of the first data", (first["view"] + first["rows"]) * 1000, None, " ms", "{:.2f}")
    line("idle refresh: fetch + build_view (median)", idle_source_ms, TARGET_IDLE_MS, " ms", "{:.3f}")
    if first["n_rows"] is not None:
        line("idle refresh: fetch + build_view + Nodes rows (median)", idle_ms, TARGET_IDLE_MS, " ms", "{:.3f}")
    line("idle refresh / first list", idle_ms / 1000 / first["s"], None, "", "{:.1e}")
    if 1 in med and 10 in med:
        (ev1, f1, t1), (ev10, f10, t10) = med[1], med[10]
        line("refresh after k=10 changes (median)", t10 * 1000, None, " ms", "{:.2f}")
        line("refresh after k=10 changes / first list", t10 / first["s"], None, "", "{:.1e}")
        line("k=10 against k=1: watch events", ev10 / max(ev1, 1), None, "x", "{:.1f}")
        line("k=10 against k=1: fetch", f10 / max(f1, 1e-9), None, "x", "{:.1f}")
        line("k=10 against k=1: whole refresh", t10 / max(t1, 1e-9), None, "x", "{:.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--idle", type=int, default=50, help="idle refreshes to time")
    parser.add_argument("--pause", type=float, default=0.05, help="seconds between idle refreshes")
    parser.add_argument("--reps", type=int, default=2, help="rounds of changes per size")
    parser.add_argument("--timeout", type=float, default=60.0, help="the source's timeout (site timeout_s)")
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also trace Python allocations during the first list (slower)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sovtui-kube-bench-"))
    try:
        report(asyncio.run(run(args, workdir)))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
