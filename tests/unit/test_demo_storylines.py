"""Provides tests of the demo cluster's storylines: XIDs, ECC, heat, a filling pool, an OSD, a flapping link, queues."""

from __future__ import annotations

import pytest

from sovtui.demo import DemoCluster
from tests.demo_support import STORY_SEEDS, fetch_all, find_gpu, nodes_at

# ---------------------------------------------------------------------------------------------
# storylines


@pytest.mark.parametrize("seed", STORY_SEEDS)
def test_gpu_throws_xids_then_falls_off_the_bus(seed):
    cluster = DemoCluster(seed=seed)
    host, index = cluster.storyline().xid_gpu
    seen: list[int] = []
    lost_at = None
    t = cluster.start
    while t <= cluster.start + 6 * 60 and lost_at is None:
        gpu = find_gpu(fetch_all(cluster, t)["ssh"].gpus, host, index)
        seen = [x.code for x in gpu.xids]
        if gpu.lost:
            lost_at = t
        t += 10
    assert lost_at is not None, "the GPU never fell off the bus"
    assert seen == [13, 31, 43, 79]
    data = fetch_all(cluster, lost_at)
    nvml = find_gpu(data["ssh"].gpus, host, index)
    assert nvml.lost and nvml.util_pct is None and nvml.last_xid == 79
    assert nvml.xids[-1].message == "GPU has fallen off the bus."
    dcgm = find_gpu(data["prometheus"].gpus, host, index)
    assert dcgm.last_xid == 79 and dcgm.temp_c is None
    xid_alerts = [a for a in data["prometheus"].alerts if a.name == "GpuXidErrors" and a.label_dict["Hostname"] == host]
    assert xid_alerts and "XID 79" in xid_alerts[0].summary and xid_alerts[0].state == "firing"
    node = next(n for n in cluster.slurm_nodes() if n.name == host)
    assert node.drain and "XID 79" in node.reason
    assert not find_gpu(cluster.nvml_gpus(), host, index).workload


def test_ecc_gpu_gets_a_second_error():
    cluster = DemoCluster()
    story = cluster.storyline()
    gpu = find_gpu(fetch_all(cluster, cluster.start + 11 * 60)["ssh"].gpus, *story.ecc_gpu)
    assert gpu.ecc_uncorrected_volatile == 2 and gpu.ecc_uncorrected_aggregate == 2


@pytest.mark.parametrize("seed", STORY_SEEDS)
def test_hot_gpu_stays_throttled_but_below_shutdown(seed):
    cluster = DemoCluster(seed=seed)
    host, index = cluster.storyline().hot_gpu
    for k in range(0, 10 * 60, 5):
        gpu = find_gpu(fetch_all(cluster, cluster.start + k)["ssh"].gpus, host, index)
        assert "sw_thermal" in gpu.throttle_reasons
        assert gpu.temp_c < gpu.temp_shutdown_c - 2


@pytest.mark.parametrize("seed", STORY_SEEDS)
def test_pool_fills_past_nearfull_then_is_purged(seed):
    cluster = DemoCluster(seed=seed)

    def datasets(t):
        ceph = fetch_all(cluster, t)["prometheus"].ceph
        return ceph, next(p for p in ceph.pools if p.name == "datasets")

    ceph, pool = datasets(cluster.start)
    assert pool.used_pct < 85.0
    assert "POOL_NEARFULL" not in ceph.checks
    crossed = None
    for k in range(0, 6 * 60, 5):
        ceph, pool = datasets(cluster.start + k)
        if pool.used_pct >= 85.0:
            crossed = cluster.start + k
            break
    assert crossed is not None, "datasets never crossed nearfull"
    assert ceph.health == "HEALTH_WARN" and "POOL_NEARFULL" in ceph.checks
    data = fetch_all(cluster, crossed + 90)
    alert = next(a for a in data["prometheus"].alerts if a.name == "CephPoolNearFull")
    assert alert.state == "firing" and alert.label_dict["name"] == "datasets" and "datasets" in alert.summary
    assert "OSD_NEARFULL" in data["prometheus"].ceph.checks
    _, pool = datasets(crossed + 10 * 60)
    assert pool.used_pct < 80.0  # purged


@pytest.mark.parametrize("seed", STORY_SEEDS)
def test_an_osd_goes_down_and_comes_back(seed):
    cluster = DemoCluster(seed=seed)
    states = []
    for k in range(0, 10 * 60, 10):
        ceph = fetch_all(cluster, cluster.start + k)["prometheus"].ceph
        states.append((ceph.osds_up, "OSD_DOWN" in ceph.checks))
    assert states[0] == (12, False)
    first_down = states.index((11, True))
    assert (12, False) in states[first_down:]


@pytest.mark.parametrize("seed", STORY_SEEDS)
def test_a_fabric_link_flaps(seed):
    cluster = DemoCluster(seed=seed)
    leaf, ifname = cluster.storyline().flap_link
    history = []
    for k in range(0, 8 * 60, 5):
        data = fetch_all(cluster, cluster.start + k)["prometheus"]
        link = next(x for x in data.fabric.links if x.device == leaf and x.ifname == ifname)
        spine_end = next(x for x in data.fabric.links if x.peer == f"{leaf}:{ifname}")
        assert spine_end.device.startswith("spine") and spine_end.down == link.down  # both ends go down together
        history.append((link.down, link.errors_per_s, data.alerts))
    downs = [i for i, (down, _, _) in enumerate(history) if down]
    assert downs, "the link never went down"
    first = downs[0]
    assert any(not down for down, _, _ in history[first:]), "the link never came back"
    assert history[0][1] == 0 and max(err for _, err, _ in history[:first]) > 10  # errors rose before
    alerts = [a for _, _, alerts in history for a in alerts if a.name == "FabricLinkDown" and a.state == "firing"]
    assert {a.label_dict["instance"] for a in alerts} >= {leaf}
    assert alerts[0].severity == "critical" and leaf in alerts[0].summary


@pytest.mark.parametrize("seed", STORY_SEEDS)
def test_slurm_queue_backs_up_then_drains(seed):
    cluster = DemoCluster(seed=seed)

    def pending(t):
        cluster.advance_to(t)
        return next(q for q in cluster.slurm_queues() if q.name == "gpu").pending_gpus, cluster.alerts()

    start_pending, _ = pending(cluster.start)
    series = [pending(cluster.start + k) for k in range(0, 10 * 60, 30)]
    peak = max(p for p, _ in series)
    assert peak >= start_pending + 48  # the sweep landed
    assert any(a.name == "SlurmQueueBacklog" and a.state == "firing" for _, alerts in series for a in alerts)
    later = [pending(cluster.start + k)[0] for k in range(10 * 60, 150 * 60, 300)]
    assert min(later) < peak / 2


def test_storylines_recur():
    cluster = DemoCluster()
    story = cluster.storyline()
    downs = 0
    for k in range(0, 3600, 5):
        cluster.advance_to(story.flap_from + k)
        downs += bool(cluster.fabric_state().links_down)
    assert downs > 20  # two flaps per half hour, each 30-45 s


def test_gpu_off_the_bus_drains_slurm_and_shows_the_mismatch():
    cluster = DemoCluster()
    story = cluster.storyline()
    host = story.xid_gpu[0]
    t = story.xid_times[-1][1] + 30
    node = nodes_at(cluster, t)[host]
    assert node.slurm.state in ("draining", "drained")
    assert node.status.status == "mismatch" and node.status.level.value == "crit"
    assert "fell off the bus" in node.status.reason
