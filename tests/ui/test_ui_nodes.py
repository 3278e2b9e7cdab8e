"""End-to-end tests of the Nodes screen and ``sovtui snapshot``'s nodes on the lab's Kubernetes API and real OpenStack."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sovtui.app import SovtuiApp
from sovtui.config import SiteConfig
from sovtui.screens.nodes import NodesScreen
from sovtui.sources.kubernetes import KubernetesSource
from sovtui.sources.openstack import OpenStackSource
from sovtui.sources.registry import site_info
from tests.lab.kubeapi.lab import start_cluster
from tests.lab.kubeapi.seed import bare_gpu_pod
from tests.lab.kubeapi.seed import node as node_obj

pytestmark = [pytest.mark.kubernetes, pytest.mark.openstack, pytest.mark.ui, pytest.mark.slow]


@pytest.fixture(scope="module")
def kube(lab_dir, lab_openstack):
    """A Kubernetes API server of its own whose GPU nodes carry the names of the OpenStack lab's computes."""
    from kubernetes import client, config

    cluster = start_cluster(lab_dir / "kube-nodes-e2e", "nodes-e2e", {"kind": "gpu"})
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig), context="lab")
    core = client.CoreV1Api(api)
    now = time.time()
    for i, host in enumerate(lab_openstack.hosts):
        core.create_node(node_obj(host, now, index=200 + i)[1])
    core.create_namespaced_pod("lab-tests", bare_gpu_pod("llm-serve-0", lab_openstack.hosts[0], 4))
    yield cluster, core
    api.close()
    cluster.close()


@pytest.fixture
def admin(lab_openstack):
    conn = lab_openstack.connect()
    yield conn
    conn.close()


async def _close(sources) -> None:
    for source in sources:
        closing = getattr(source, "aclose", None)
        if closing is not None:
            await closing()
        else:
            source.close()


def _site(lab_openstack) -> SiteConfig:
    return SiteConfig("lab", kube_context="lab", openstack_cloud=lab_openstack.cloud, refresh_s=1.0, timeout_s=10.0)


async def _until(check, timeout_s: float = 15.0, what: str = ""):
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g}s: {what}")
        await asyncio.sleep(0.1)


def _row(screen: NodesScreen, name: str) -> tuple[str, ...] | None:
    """The row of ``name`` as drawn: each cell's plain text."""
    for row in screen._rows:
        if row.key == name:
            return tuple(c.plain if hasattr(c, "plain") else str(c) for c in row.cells)
    return None


async def test_nodes_screen_shows_every_layer_and_follows_changes(kube, lab_openstack, admin):
    cluster, core = kube
    host = lab_openstack.hosts[0]
    site = _site(lab_openstack)
    sources = [
        KubernetesSource(site, kubeconfig=cluster.kubeconfig),
        OpenStackSource(site, clouds_yaml=lab_openstack.clouds_yaml),
    ]
    svc = next(admin.compute.services(binary="nova-compute", host=host))
    app = SovtuiApp(site_info(site), sources, watch_tty=False)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("3")
            screen = app.screen
            assert isinstance(screen, NodesScreen)
            # both layers side by side: the seeded GPU nodes (Kubernetes only) and the two computes in both
            row = await _until(
                lambda: (r := _row(screen, host)) and "enabled" in r[3] and r[2] != "—" and r, what="both layers"
            )
            assert row[1] == "✓ serving" and row[2].startswith("ready ") and row[3] == "enabled 0vm"
            assert (
                _row(screen, "gpu-a-03")[1] == "▲ draining" and _row(screen, "gpu-a-03")[3] == "—"
            )  # cordoned, pods left
            assert _row(screen, "gpu-b-04")[1] == "✗ down"
            assert [c[1] for c in app.screen.table.column_spec] == ["Host", "Status", "K8s GPUs", "Nova", "Why"]

            # cordon through the API as kubectl does: within seconds, a mismatch with Nova
            t0 = time.monotonic()
            core.patch_node(host, {"spec": {"unschedulable": True}})
            row = await _until(lambda: (r := _row(screen, host)) and "mismatch" in r[1] and r, what="cordon seen")
            cordon_s = time.monotonic() - t0
            assert row[-1] == "cordoned in K8s but enabled in Nova" and row[2].startswith("cordon ")

            # disable the compute service through the SDK: closed everywhere, with a GPU pod left: draining
            t0 = time.monotonic()
            admin.compute.disable_service(svc, host=host, binary="nova-compute", disabled_reason="GPU swap")
            row = await _until(lambda: (r := _row(screen, host)) and "draining" in r[1] and r, what="disable seen")
            disable_s = time.monotonic() - t0
            assert row[-1].startswith("cordoned in K8s; disabled in Nova (GPU swap); still running: ")
            assert "GPU pod" in row[-1]
            assert cordon_s < 5 and disable_s < 10, (cordon_s, disable_s)

            # the details: pods with GPUs, taints, conditions, the Nova service and its reason
            await pilot.press("slash", *host, "enter", "enter")
            await pilot.pause()
            fields = dict((k, v.plain if hasattr(v, "plain") else v) for k, v in app.screen.fields)
            assert fields["status"] == "▲ draining"
            assert "lab-tests/llm-serve-0  4 GPUs" in [v for k, v in app.screen.fields if k == "  pod"]
            assert fields["nova-compute"].startswith("disabled, up — GPU swap")
            assert "node.kubernetes.io/unschedulable:NoSchedule" in [
                v for k, v in app.screen.fields if k == "  taint"
            ] or fields["node"].endswith("SchedulingDisabled (cordoned)")
    finally:
        admin.compute.enable_service(svc, host=host, binary="nova-compute")
        core.patch_node(host, {"spec": {"unschedulable": False}})
        await _close(sources)


async def test_outages_and_denials_are_said_on_the_nodes_screen(kube, lab_openstack, tmp_path):
    cluster, _ = kube
    dead = tmp_path / "clouds.yaml"
    dead.write_text(lab_openstack.clouds_yaml.read_text().replace(lab_openstack.keystone_url, "http://127.0.0.1:9"))
    site = SiteConfig(
        "lab", kube_context="lab-viewer", openstack_cloud=lab_openstack.cloud, refresh_s=1.0, timeout_s=5.0
    )
    sources = [KubernetesSource(site, kubeconfig=cluster.kubeconfig), OpenStackSource(site, clouds_yaml=dead)]
    app = SovtuiApp(site_info(site), sources, watch_tty=False)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("3")
            status = app.screen.query_one("#table-status")

            def said():
                text = str(status.render())
                return "kubernetes failing" in text and "openstack failing" in text and text

            text = await _until(said, what="both failures on the screen")
            assert 'cannot list resource "nodes"' in text or "forbidden" in text.lower()
            assert "127.0.0.1:9" in text or "reach" in text
    finally:
        await _close(sources)


def test_snapshot_has_a_nodes_key_with_every_layer(kube, lab_openstack, tmp_path):
    cluster, _ = kube
    config = tmp_path / "config.toml"
    config.write_text(
        f'default_site = "lab"\n[sites.lab]\nkube_context = "lab"\nopenstack_cloud = "{lab_openstack.cloud}"\n'
        "timeout_s = 20\n"
    )
    env = dict(
        os.environ,
        KUBECONFIG=str(cluster.kubeconfig),
        OS_CLIENT_CONFIG_FILE=str(lab_openstack.clouds_yaml),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "sovtui", "snapshot", "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    nodes = {n["name"]: n for n in doc["nodes"]}
    for host in lab_openstack.hosts:
        assert nodes[host]["kubernetes"]["ready"] is True
        assert nodes[host]["nova"]["status"] in ("enabled", "disabled") and nodes[host]["nova"]["state"] == "up"
    assert {"pod": "lab-tests/llm-serve-0", "gpus": 4} in nodes[lab_openstack.hosts[0]]["kubernetes"]["pods_with_gpus"]
    assert nodes["gpu-b-04"]["status"] == "down" and nodes["gpu-b-04"]["nova"] is None
    assert doc["sources"]["kubernetes"]["ok"] and doc["sources"]["openstack"]["ok"]


def test_a_node_whose_pods_are_unknown_shows_no_count():
    from sovtui.model.types import KubeNode
    from sovtui.screens.nodes import _kube_fields, kube_text

    unknown = KubeNode(
        "gpu01",
        ready=True,
        gpu_capacity=8,
        gpu_allocatable=8,
        pods_unknown="forbidden",
        gpu_requested=4,
        pods_with_gpus=(("ml/a", 4),),
    )
    assert kube_text(unknown).plain == "ready ?/8"  # unknown, never "0/8" nor a stale count
    fields = dict((k, str(v)) for k, v in _kube_fields(unknown))
    assert (
        fields["GPUs"] == "? requested of 8 allocatable (8 capacity): pods unknown: forbidden" and "  pod" not in fields
    )
    assert (
        kube_text(KubeNode("gpu01", ready=True, gpu_capacity=8, gpu_allocatable=8, gpu_requested=4)).plain
        == "ready 4/8"
    )
