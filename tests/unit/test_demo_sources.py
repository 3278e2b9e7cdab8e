"""Provides tests of the demo sources: the source interface, the hub polling them, their speed, the nodes' layers."""

from __future__ import annotations

import ast
import asyncio
import time
from pathlib import Path

import sovtui.demo as demo_pkg
from sovtui.demo import DEMO_EPOCH, DemoCluster, demo_sources
from sovtui.hub import Hub
from tests.demo_support import Clock, nodes_at

# ---------------------------------------------------------------------------------------------
# sources


def test_sources_follow_the_interface():
    cluster = DemoCluster()
    sources = demo_sources(cluster, Clock())
    assert [(s.name, s.kind) for s in sources] == [
        ("prometheus", "prometheus"),
        ("ssh", "ssh"),
        ("kubernetes", "kubernetes"),
        ("slurm", "slurm"),
        ("openstack", "openstack"),
    ]
    assert all(s.interval_s == 2.0 for s in sources)

    async def doctor():
        return [c for s in sources for c in await s.doctor()]

    checks = asyncio.run(doctor())
    assert len(checks) == 5 and all(c.ok and c.check == "simulated" for c in checks)
    assert all("simulated" in c.detail for c in checks)


def test_hub_polls_demo_sources_like_any_other():
    clock = Clock()
    cluster = DemoCluster()
    hub = Hub(demo_sources(cluster, clock), clock=clock)

    async def run():
        first = await hub.poll_all()
        clock.t += 300
        second = await hub.poll_all()
        await hub.stop()
        return first, second

    first, second = asyncio.run(run())
    assert all(r.status.ok for r in first.values()) and all(r.status.ok for r in second.values())
    assert first["ssh"].data.gpus != second["ssh"].data.gpus
    assert cluster.now == DEMO_EPOCH + 300


def test_fetch_is_fast():
    cluster = DemoCluster()
    clock = Clock(DEMO_EPOCH + 1)
    sources = demo_sources(cluster, clock)

    async def poll_once():
        for s in sources:
            await s.fetch()

    asyncio.run(poll_once())
    started = time.perf_counter()
    for _ in range(10):
        clock.t += 2.0  # like the hub: every 2 s, a tick every other poll
        asyncio.run(poll_once())
    assert (time.perf_counter() - started) / 10 < 0.05


def test_package_hygiene():
    root = Path(demo_pkg.__file__).parent
    for path in sorted(root.glob("*.py")):
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        assert doc and doc.startswith("Provides ") and doc.splitlines()[0].endswith("."), path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] == "textual" for a in node.names), path.name
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "textual", path.name


def test_every_host_in_every_layer_and_operations_show():
    cluster = DemoCluster()
    nodes = nodes_at(cluster, DEMO_EPOCH)
    assert len(nodes) == 19  # 16 GPU hosts and 3 control-plane nodes
    assert all(n.kube is not None for n in nodes.values())
    assert {n for n, v in nodes.items() if v.nova is not None} == {"gpu14", "gpu15", "gpu16"}
    assert {n for n, v in nodes.items() if v.slurm is not None} == {f"gpu{i:02d}" for i in range(9, 14)}
    # the GPU accounting agrees with the pods the sim placed
    for node in nodes.values():
        k = node.kube
        assert k.gpu_requested == sum(g for _, g in k.pods_with_gpus) <= k.gpu_allocatable
    # the storyline's forgotten cordon
    assert nodes["gpu16"].status.status == "mismatch"
    assert nodes["gpu16"].status.reason == "cordoned in K8s but enabled in Nova"
    # an operator finishes the job in Nova: with its VMs still there, the host drains
    cluster.disable_nova("gpu16", "maintenance")
    after = nodes_at(cluster, DEMO_EPOCH + 5)["gpu16"]
    assert after.status.status == "draining" and "2 VMs" in after.status.reason
    # cordoning a Kubernetes host with GPU pods on it: draining, with what still runs
    busy = next(n for n, v in nodes.items() if v.kube.pods_with_gpus and v.nova is None and v.slurm is None)
    cluster.cordon(busy)
    assert nodes_at(cluster, DEMO_EPOCH + 10)[busy].status.status == "draining"
