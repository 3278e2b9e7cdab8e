"""Provides tests of the demo cluster: determinism, the fleet at t0, and operations on it."""

from __future__ import annotations

import asyncio
import re

import pytest

from sovtui.demo import (
    DEMO_EPOCH,
    TICK_S,
    DemoCluster,
    DemoOperationError,
    DisruptionBudgetViolation,
    NotFound,
    demo_sources,
)
from sovtui.model.types import SourceData
from tests.demo_support import SEEDS, at, fetch_all, find_gpu

# ---------------------------------------------------------------------------------------------
# determinism


def test_same_seed_and_time_give_identical_data():
    t = DEMO_EPOCH + 437.0
    assert fetch_all(DemoCluster(seed=7), t) == fetch_all(DemoCluster(seed=7), t)


def test_async_fetch_equals_sync_fetch():
    t = DEMO_EPOCH + 437.0
    sources = demo_sources(DemoCluster(seed=7), lambda: t)

    async def run() -> dict[str, SourceData]:
        return {s.name: await s.fetch() for s in sources}

    assert asyncio.run(run()) == fetch_all(DemoCluster(seed=7), t)


def test_polling_cadence_does_not_change_state():
    t_end = DEMO_EPOCH + 420.0
    jumped = fetch_all(DemoCluster(), t_end)
    for step in (1.0, 2.0, 7.3):
        cluster = DemoCluster()
        t = DEMO_EPOCH
        while t < t_end:
            fetch_all(cluster, t)
            t += step
        assert fetch_all(cluster, t_end) == jumped, f"polling every {step}s diverged"


def test_state_within_a_tick_is_the_tick_state():
    a = fetch_all(DemoCluster(), DEMO_EPOCH + 10.0)
    b = fetch_all(DemoCluster(), DEMO_EPOCH + 10.0 + TICK_S * 0.9)
    assert a == b


def test_different_seeds_differ():
    a, b = DemoCluster(seed=7), DemoCluster(seed=8)
    assert a.storyline() != b.storyline()
    assert fetch_all(a, DEMO_EPOCH)["ssh"].gpus != fetch_all(b, DEMO_EPOCH)["ssh"].gpus


def test_time_never_runs_backwards():
    cluster = at(DemoCluster(), DEMO_EPOCH + 120)
    before = fetch_all(cluster, DEMO_EPOCH + 120)
    assert fetch_all(cluster, DEMO_EPOCH) == before
    assert cluster.now == DEMO_EPOCH + 120


def test_live_demo_starts_now():
    now = 1_700_000_123.4
    cluster = DemoCluster.live(now=now)
    assert cluster.now == now
    data = fetch_all(cluster, now)
    assert all(g.observed_at == now for g in data["ssh"].gpus)


# ---------------------------------------------------------------------------------------------
# the fleet


def test_fleet_shape():
    cluster = DemoCluster()
    data = fetch_all(cluster, DEMO_EPOCH)
    ssh, prom = data["ssh"], data["prometheus"]
    assert len(ssh.gpus) == len(prom.gpus) == 128
    hosts = sorted({g.host for g in ssh.gpus})
    assert hosts == [f"gpu{n:02d}" for n in range(1, 17)]
    names = {g.name for g in ssh.gpus}
    assert names == {"NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-80GB"}
    assert sum(1 for g in ssh.gpus if "A100" in g.name) == 16
    uuid_re = re.compile(r"^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
    assert all(uuid_re.match(g.uuid) for g in ssh.gpus)
    assert len({g.uuid for g in ssh.gpus}) == 128
    assert {g.uuid for g in ssh.gpus} == {g.uuid for g in prom.gpus}
    assert {g.uuid for g in DemoCluster(seed=7).nvml_gpus()} == {g.uuid for g in ssh.gpus}  # stable
    assert {g.uuid for g in DemoCluster(seed=8).nvml_gpus()}.isdisjoint({g.uuid for g in ssh.gpus})
    assert all(g.sources == ("nvml",) for g in ssh.gpus)
    assert all(g.sources == ("dcgm",) for g in prom.gpus)
    live = [g for g in ssh.gpus if not g.lost]
    assert all(g.temp_slowdown_c and g.temp_shutdown_c and g.power_limit_w for g in live)
    assert all(g.temp_slowdown_c is None for g in prom.gpus)
    assert len(ssh.gpu_hosts) == 16
    assert {(h.expected_gpus, h.driver_version, h.cuda_version) for h in ssh.gpu_hosts} == {(8, "550.54.15", "12.4")}
    assert any(g.workload.startswith("slurm:") for g in ssh.gpus)
    assert any(g.workload.startswith("inference/vllm-") for g in prom.gpus)
    assert not any(g.workload.startswith("slurm:") for g in prom.gpus)  # dcgm-exporter only maps pods

    ceph = prom.ceph
    assert [p.name for p in ceph.pools] == ["rbd-vms", "cephfs-data", "datasets"]
    assert ceph.osds_total == 12
    assert 1.1 * 2**50 < ceph.total_bytes < 1.3 * 2**50
    assert (ceph.nearfull_ratio, ceph.full_ratio) == (0.85, 0.95)

    fabric = prom.fabric
    assert fabric.devices == ("leaf1", "leaf2", "leaf3", "leaf4", "spine1", "spine2")
    for leaf in ("leaf1", "leaf2", "leaf3", "leaf4"):
        for spine in ("spine1", "spine2"):
            uplinks = [x for x in fabric.links if x.device == leaf and x.peer.startswith(spine + ":")]
            assert len(uplinks) == 2 and all(x.speed_mbps == 400_000 for x in uplinks)
    host_ports = [x for x in fabric.links if x.peer.startswith("gpu")]
    assert sorted(x.peer.split(":")[0] for x in host_ports) == hosts

    assert {q.name for q in data["slurm"].queues} == {"gpu", "debug"}
    assert all(q.system == "slurm" for q in data["slurm"].queues)
    assert all(q.system == "kubernetes" for q in data["kubernetes"].queues)
    assert {q.name for q in prom.queues} == {"gpu", "debug"}


def test_richer_state_is_there():
    cluster = DemoCluster()
    nodes = cluster.k8s_nodes()
    assert sum(1 for n in nodes if n.role == "control-plane") == 3
    assert sum(1 for n in nodes if n.role == "worker") == 16
    kinds = {p.owner_kind for p in cluster.pods()}
    assert {"ReplicaSet", "Job", "DaemonSet"} <= kinds
    owners = {p.owner_name for p in cluster.pods()}
    assert {"nvidia-dcgm-exporter", "nvidia-device-plugin-daemonset", "vllm-llama-3-70b"} <= owners
    assert {p.namespace for p in cluster.pods() if p.phase == "Pending" and p.gpus}
    assert {n.name for n in cluster.slurm_nodes()} == {"gpu09", "gpu10", "gpu11", "gpu12", "gpu13"}
    states = {j.state for j in cluster.slurm_jobs()}
    assert {"RUNNING", "PENDING"} <= states
    assert {s.host for s in cluster.nova_services()} == {"gpu14", "gpu15", "gpu16"}
    assert any(s.gpus and s.status == "ACTIVE" for s in cluster.nova_servers())
    # copies: mutating what was handed out does not touch the sim
    cluster.k8s_nodes()[5].unschedulable = True
    assert [n.name for n in cluster.k8s_nodes() if n.unschedulable] == ["gpu16"]  # the storyline's one


# ---------------------------------------------------------------------------------------------
# t0


@pytest.mark.parametrize("seed", SEEDS)
def test_t0_is_already_interesting(seed):
    cluster = DemoCluster(seed=seed)
    story = cluster.storyline()
    data = fetch_all(cluster, cluster.start)
    gpus = data["ssh"].gpus

    ecc = find_gpu(gpus, *story.ecc_gpu)
    assert ecc.ecc_uncorrected_volatile == 1 and ecc.row_remap_pending
    assert [x.code for x in ecc.xids] == [94, 63]
    assert all(x.at < cluster.start for x in ecc.xids)

    hot = find_gpu(gpus, *story.hot_gpu)
    assert "sw_thermal" in hot.throttle_reasons
    assert hot.temp_slowdown_c - 5 <= hot.temp_c < hot.temp_shutdown_c - 2

    others = [g for g in gpus if (g.host, g.index) not in (story.ecc_gpu, story.hot_gpu)]
    assert not any(g.ecc_uncorrected_volatile or g.xids or g.lost for g in others)
    assert not any("sw_thermal" in g.throttle_reasons for g in others)
    assert all(g.temp_c < g.temp_slowdown_c - 5 for g in others)

    firing = {(a.name, a.severity) for a in data["prometheus"].alerts if a.state == "firing"}
    assert {("GpuEccUncorrectable", "critical"), ("GpuXidErrors", "critical")} <= firing
    assert {("GpuThermalThrottling", "warning"), ("KubeGpuPodPending", "warning")} <= firing
    assert all(a.active_since <= cluster.start for a in data["prometheus"].alerts)

    gpu_q = next(q for q in data["slurm"].queues if q.name == "gpu")
    assert gpu_q.pending_jobs > 0 and gpu_q.pending_gpus > 0 and gpu_q.running_jobs > 0
    assert gpu_q.oldest_pending_s > 3600  # someone has waited more than an hour
    research = next(q for q in data["kubernetes"].queues if q.name == "research")
    assert research.pending_jobs >= 1 and research.pending_gpus >= 8
    assert data["prometheus"].fabric.links_down == ()


def test_t0_verdicts():
    health = pytest.importorskip("sovtui.model.health")
    cluster = DemoCluster()
    story = cluster.storyline()
    levels = {(g.host, g.index): health.gpu_verdict(g).level.value for g in cluster.nvml_gpus()}
    assert levels[story.ecc_gpu] == "crit"
    assert levels[story.hot_gpu] == "warn"
    assert sum(1 for v in levels.values() if v != "ok") == 2


# ---------------------------------------------------------------------------------------------
# operations


def test_cordon_keeps_new_pods_off_the_node():
    cluster = DemoCluster()
    victim = next(p for p in cluster.pods("inference") if p.owner_name == "vllm-mixtral-8x7b")
    node = victim.node
    cluster.cordon(node)
    assert next(n for n in cluster.k8s_nodes() if n.name == node).unschedulable
    cluster.evict_pod("inference", victim.name)
    assert victim.name not in {p.name for p in cluster.pods()}
    cluster.advance_to(cluster.now + 3 * TICK_S)
    replacements = [p for p in cluster.pods("inference") if p.owner_name == "vllm-mixtral-8x7b"]
    assert len(replacements) == 2
    assert all(p.node != node for p in replacements)  # not back on the cordoned node
    assert any(p.phase == "Running" for p in replacements)
    cluster.uncordon(node)
    assert not next(n for n in cluster.k8s_nodes() if n.name == node).unschedulable
    with pytest.raises(NotFound):
        cluster.cordon("gpu99")


def test_eviction_respects_the_vllm_disruption_budget():
    cluster = DemoCluster()
    vllm = [p for p in cluster.pods("inference") if p.owner_name == "vllm-llama-3-70b"]
    assert len(vllm) == 4 and all(p.ready for p in vllm)
    cluster.evict_pod("inference", vllm[0].name)  # 4 healthy, minAvailable 3: allowed
    with pytest.raises(DisruptionBudgetViolation) as err:
        cluster.evict_pod("inference", vllm[1].name)
    assert isinstance(err.value, DemoOperationError)
    assert err.value.budget == "vllm-llama-3-70b" and err.value.min_available == 3 and err.value.healthy == 3
    assert "disruption budget" in str(err.value)
    assert vllm[1].name in {p.name for p in cluster.pods()}  # still there
    cluster.advance_to(cluster.now + 150)  # the replacement is scheduled and loads the model
    assert sum(1 for p in cluster.pods("inference") if p.owner_name == "vllm-llama-3-70b" and p.ready) == 4
    cluster.evict_pod("inference", vllm[1].name)  # healthy again: allowed
    with pytest.raises(NotFound):
        cluster.evict_pod("inference", "no-such-pod")


def test_evicting_a_daemonset_pod_recreates_it_on_the_same_node():
    cluster = DemoCluster()
    pod = next(p for p in cluster.pods("gpu-operator") if p.owner_name == "nvidia-dcgm-exporter" and p.node == "gpu03")
    cluster.evict_pod("gpu-operator", pod.name)
    cluster.advance_to(cluster.now + TICK_S)
    again = [p for p in cluster.pods("gpu-operator") if p.owner_name == "nvidia-dcgm-exporter" and p.node == "gpu03"]
    assert len(again) == 1 and again[0].name != pod.name


def test_drain_slurm_lets_jobs_finish_and_starts_nothing_new():
    cluster = DemoCluster()
    cluster.drain_slurm("gpu12", "maintenance: swap PSU")
    node = next(n for n in cluster.slurm_nodes() if n.name == "gpu12")
    assert node.drain and node.reason == "maintenance: swap PSU"
    assert cluster.slurm_node_state(node) == "draining"
    cluster.advance_to(cluster.now + 40 * 60)
    node = next(n for n in cluster.slurm_nodes() if n.name == "gpu12")
    assert cluster.slurm_node_state(node) == "drained"
    assert not any(j.state == "RUNNING" and any(h == "gpu12" for h, _ in j.alloc) for j in cluster.slurm_jobs())
    cluster.resume_slurm("gpu12")
    cluster.advance_to(cluster.now + 10 * 60)
    node = next(n for n in cluster.slurm_nodes() if n.name == "gpu12")
    assert cluster.slurm_node_state(node) != "drained"
    with pytest.raises(NotFound):
        cluster.drain_slurm("gpu01", "not a slurm node")
    with pytest.raises(DemoOperationError):
        cluster.drain_slurm("gpu12", "")


def test_disable_nova():
    cluster = DemoCluster()
    cluster.disable_nova("gpu15", "GPU 2 ECC errors")
    service = next(s for s in cluster.nova_services() if s.host == "gpu15")
    assert (service.status, service.disabled_reason) == ("disabled", "GPU 2 ECC errors")
    cluster.enable_nova("gpu15")
    assert next(s for s in cluster.nova_services() if s.host == "gpu15").status == "enabled"
    with pytest.raises(NotFound):
        cluster.disable_nova("gpu01", "x")


def test_operations_are_deterministic_too():
    def run():
        cluster = DemoCluster()
        cluster.cordon("gpu05")
        pod = next(p for p in cluster.pods("inference") if p.node == "gpu05" and p.owner_name == "vllm-llama-3-70b")
        cluster.evict_pod("inference", pod.name)
        cluster.drain_slurm("gpu13", "test")
        return fetch_all(cluster, DEMO_EPOCH + 900), [(p.name, p.node, p.phase) for p in cluster.pods()]

    assert run() == run()
