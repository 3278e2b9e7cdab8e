"""Tests of the per-host fusion across layers and the combined node status rule (model/nodes.py)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from sovtui.model.export import view_to_json
from sovtui.model.nodes import CORDONED, DOWN, DRAINING, MISMATCH, SERVING, fuse_nodes, host_key, node_status
from sovtui.model.types import (
    Gpu,
    GpuHost,
    Health,
    KubeNode,
    NodeEvent,
    NovaHost,
    SiteInfo,
    SlurmNode,
    SourceData,
    SourceResult,
    SourceStatus,
    XidEvent,
)
from sovtui.model.view import GpuRow, _verdict, build_view

T = 1_790_000_000.0


def kube(name="gpu01", **kw) -> KubeNode:
    kw.setdefault("ready", True)
    kw.setdefault("gpu_capacity", 8)
    kw.setdefault("gpu_allocatable", 8)
    return KubeNode(name, **kw)


def nova(name="gpu01", **kw) -> NovaHost:
    kw.setdefault("service_state", "up")
    kw.setdefault("service_status", "enabled")
    return NovaHost(name, **kw)


def slurm(name="gpu01", state="idle", **kw) -> SlurmNode:
    return SlurmNode(name, state, **kw)


# ---------------------------------------------------------------------------------------------- the rule
def test_every_layer_open_is_serving():
    s = node_status(kube(), nova(), slurm("gpu01", "mixed", jobs=("12",)))
    assert (s.status, s.level, s.reason) == (SERVING, Health.OK, "")


def test_cordoned_in_k8s_but_enabled_in_nova_is_a_mismatch():
    s = node_status(kube(unschedulable=True), nova())
    assert (s.status, s.level) == (MISMATCH, Health.WARN)
    assert s.reason == "cordoned in K8s but enabled in Nova"


def test_disabled_in_nova_but_schedulable_in_k8s_is_a_mismatch_with_the_reason():
    s = node_status(kube(), nova(service_status="disabled", disabled_reason="RMA ticket 42"))
    assert s.status == MISMATCH and s.reason == "disabled in Nova (RMA ticket 42) but schedulable in K8s"


def test_mismatch_with_a_failing_gpu_is_critical():
    s = node_status(
        kube(),
        slurm=slurm(state="drained", reason="XID 79"),
        gpu_level=Health.CRIT,
        gpu_reason="GPU 5: fell off the bus",
    )
    assert (s.status, s.level) == (MISMATCH, Health.CRIT)
    assert "GPU 5: fell off the bus" in s.reason


def test_closed_everywhere_with_work_left_is_draining():
    s = node_status(
        kube(unschedulable=True, pods_with_gpus=(("a/p", 4),), gpu_requested=4),
        nova(service_status="disabled", running_vms=2),
    )
    assert (s.status, s.level) == (DRAINING, Health.WARN)
    assert s.reason.endswith("still running: 1 GPU pod, 2 VMs")


def test_slurm_draining_is_draining_drained_and_empty_is_cordoned():
    assert node_status(slurm=slurm(state="draining", jobs=("7",))).status == DRAINING
    done = node_status(kube(unschedulable=True), slurm=slurm(state="drained", reason="maint"))
    assert (done.status, done.reason) == (CORDONED, "cordoned in K8s; drained in Slurm (maint)")


def test_a_cordoned_node_whose_pods_are_unknown_is_not_empty():
    s = node_status(kube(unschedulable=True, pods_unknown="forbidden"), slurm=slurm(state="drained"))
    assert (s.status, s.level) == (DRAINING, Health.WARN)
    assert s.reason == "cordoned in K8s; drained in Slurm; still running: K8s pods unknown (forbidden)"
    known = node_status(kube(unschedulable=True), slurm=slurm(state="drained"))
    assert known.status == CORDONED


def test_down_wins_over_everything():
    for kw in (
        {"kube": kube(ready=False, unschedulable=True), "nova": nova()},
        {"kube": kube(), "nova": nova(service_state="down")},
        {"kube": kube(ready=None)},
        {"nova": nova(forced_down=True)},
        {"slurm": slurm(state="down", reason="Not responding")},
    ):
        s = node_status(**kw)
        assert (s.status, s.level) == (DOWN, Health.CRIT), kw
    both = node_status(kube(ready=False), nova(service_state="down"))
    assert both.reason == "NotReady in K8s; nova-compute down"


def test_serving_with_a_failing_gpu_is_critical_and_says_so():
    s = node_status(kube(), gpu_level=Health.CRIT, gpu_reason="GPU 3: 1 uncorrected ECC errors")
    assert (s.status, s.level) == (SERVING, Health.CRIT) and "GPU 3" in s.reason


def test_no_scheduler_layer_is_just_the_gpus():
    assert node_status(gpu_level=Health.WARN, gpu_reason="throttled").level is Health.WARN
    blind = node_status(probe_error="permission denied")
    assert blind.status == "" and blind.level is Health.WARN and "permission denied" in blind.reason


layers = st.tuples(
    st.none()
    | st.builds(
        kube,
        ready=st.sampled_from([True, False, None]),
        unschedulable=st.booleans(),
        pods_with_gpus=st.sampled_from([(), (("ns/p", 2),)]),
        pods_unknown=st.sampled_from(["", "", "forbidden"]),
    ),
    st.none()
    | st.builds(
        nova,
        service_state=st.sampled_from(["up", "down"]),
        service_status=st.sampled_from(["enabled", "disabled"]),
        forced_down=st.booleans(),
        running_vms=st.integers(0, 3),
    ),
    st.none()
    | st.builds(
        slurm,
        state=st.sampled_from(
            ["idle", "mixed", "allocated", "draining", "drained", "down", "down*", "maint", "not_responding"]
        ),
        jobs=st.sampled_from([(), ("1",)]),
    ),
    st.sampled_from(list(Health)),
)


@given(layers)
@settings(max_examples=400, deadline=None)
def test_status_rule_properties(args):
    k, n, s, gpu = args
    status = node_status(k, n, s, gpu_level=gpu, gpu_reason="GPU 0: x" if gpu is not Health.OK else "")
    closed = [
        k is not None and k.unschedulable,
        n is not None and n.service_status == "disabled",
        s is not None and s.closed,
    ]
    opened = [
        k is not None and not k.unschedulable,
        n is not None and n.service_status == "enabled",
        s is not None and not s.closed,
    ]
    down = (
        (k is not None and k.ready is not True)
        or (n is not None and (n.service_state == "down" or n.forced_down))
        or (s is not None and s.down)
    )
    # exactly one word, and the level follows from it
    assert status.status in {SERVING, CORDONED, DRAINING, DOWN, MISMATCH, ""}
    if down:
        assert status.status == DOWN and status.level is Health.CRIT
    elif any(closed) and any(opened):
        assert status.status == MISMATCH and status.level in (Health.WARN, Health.CRIT)
        assert " but " in status.reason
    elif any(closed):
        assert status.status in (DRAINING, CORDONED) and status.level is Health.WARN
        if k is not None and k.pods_unknown:  # unknown pods are never "nothing left"
            assert status.status == DRAINING and "K8s pods unknown (forbidden)" in status.reason
    elif any(opened):
        assert status.status == SERVING
        assert status.level is (Health.CRIT if gpu is Health.CRIT else Health.OK)
    else:
        assert status.status == "" and status.level is gpu
    # anything but plain serving says why
    if status.status != SERVING or status.level is not Health.OK:
        assert status.reason or status.status == ""


@given(st.text(alphabet="abcXYZ019-", min_size=1, max_size=8), st.text(alphabet="abc.-", max_size=10))
def test_host_key_ignores_domain_and_case(name, domain):
    assert host_key(f"{name}.{domain}") == host_key(name.upper()) == name.lower()


def test_nodes_named_by_ip_address_stay_apart():
    assert host_key("10.0.0.5") == "10.0.0.5" and host_key("10.0.0.6") != host_key("10.0.0.5")
    assert host_key(" FD00::1 ") == "fd00::1"
    assert len(fuse_nodes(kube_nodes=[kube("10.0.0.5"), kube("10.0.0.6")])) == 2


# ---------------------------------------------------------------------------------------------- fusion
def _gpu(host, index, **kw) -> GpuRow:
    g = Gpu(host=host, index=index, uuid=f"GPU-{host}-{index}", sources=("nvml",), **kw)
    return GpuRow(g, _verdict(g))


def test_fusion_matches_hosts_across_layers_by_short_name():
    rows = fuse_nodes(
        kube_nodes=[kube("gpu01.dc1.example", unschedulable=True), kube("cp1", gpu_capacity=0, gpu_allocatable=0)],
        nova_hosts=[nova("GPU01"), nova("gpu02")],
        slurm_nodes=[slurm("gpu03", "drained")],
        gpu_hosts=[GpuHost("gpu01"), GpuHost("gpu03", error="connection refused by gpu03:22")],
        gpu_rows=[_gpu("gpu01", 0), _gpu("gpu01", 1, xids=(XidEvent(79, T),))],
        events=[
            NodeEvent("gpu01.dc1.example", "kubernetes", "Pod", "a/p", "Warning", "BackOff", "m", 3, T - 5),
            NodeEvent("gpu01.dc1.example", "kubernetes", "Node", "gpu01.dc1.example", "Warning", "Rebooted", "m", 1, T),
        ],
    )
    by = {r.name: r for r in rows}
    assert sorted(by) == ["cp1", "gpu01", "gpu02", "gpu03"]  # the prober's name wins, then Kubernetes'
    one = by["gpu01"]
    assert one.kube.name == "gpu01.dc1.example" and one.nova.name == "GPU01"
    assert (one.gpus_total, one.gpus_bad, one.gpu_level) == (2, 1, Health.CRIT)
    assert one.status.status == MISMATCH and one.status.level is Health.CRIT
    assert [e.reason for e in one.events] == ["Rebooted", "BackOff"]  # newest first
    assert by["gpu02"].status.status == SERVING and by["gpu02"].kube is None
    three = by["gpu03"]
    assert three.status.status == CORDONED and three.gpu_host.error.startswith("connection refused")


def _result(name, data, at=T):
    return SourceResult(SourceStatus(name, name, ok=True, last_ok_at=at), data)


def test_view_and_snapshot_document_carry_every_layer():
    results = {
        "kubernetes": _result(
            "kubernetes",
            SourceData(
                kube_nodes=(kube("gpu01", unschedulable=True, pods_with_gpus=(("ml/train-0", 8),), gpu_requested=8),)
            ),
        ),
        "openstack": _result("openstack", SourceData(nova_hosts=(nova("gpu01", servers=("vm-a",), running_vms=1),))),
        "ssh": _result("ssh", SourceData(gpu_hosts=(GpuHost("gpu01"),), gpus=(_gpu("gpu01", 0).gpu,))),
    }
    view = build_view(SiteInfo("lab"), results, T)
    assert view.layer_sources == {"kubernetes": "kubernetes", "nova": "openstack", "gpu": "ssh"}
    (node,) = view.nodes
    assert node.status.reason == "cordoned in K8s but enabled in Nova"
    doc = view_to_json(view)
    (item,) = doc["nodes"]
    assert item["status"] == "mismatch" and item["level"] == "warn"
    assert item["kubernetes"]["cordoned"] is True and item["kubernetes"]["pods_with_gpus"] == [
        {"pod": "ml/train-0", "gpus": 8}
    ]
    assert item["nova"]["servers"] == ["vm-a"] and item["nova"]["status"] == "enabled"
    assert item["slurm"] is None and item["gpu"]["total"] == 1


def test_no_host_layer_means_no_nodes():
    view = build_view(SiteInfo("lab"), {"prometheus": _result("prometheus", SourceData(alerts=()))}, T)
    assert view.nodes is None and view_to_json(view)["nodes"] is None


def test_pods_not_known_are_null_in_the_snapshot_never_0():
    results = {"kubernetes": _result("kubernetes", SourceData(kube_nodes=(kube("gpu01", pods_unknown="forbidden"),)))}
    (item,) = view_to_json(build_view(SiteInfo("lab"), results, T))["nodes"]
    assert item["kubernetes"]["gpus_requested"] is None and item["kubernetes"]["pods_with_gpus"] is None
    assert item["kubernetes"]["pods_unknown"] == "forbidden"
    known = {"kubernetes": _result("kubernetes", SourceData(kube_nodes=(kube("gpu01", gpu_requested=0),)))}
    (item,) = view_to_json(build_view(SiteInfo("lab"), known, T))["nodes"]
    assert item["kubernetes"]["gpus_requested"] == 0 and item["kubernetes"]["pods_unknown"] is None


def test_gpu_inventory_placement_never_gave_is_null_in_the_snapshot():
    results = {"openstack": _result("openstack", SourceData(nova_hosts=(nova("gpu01", gpu_inventory_known=False),)))}
    (item,) = view_to_json(build_view(SiteInfo("lab"), results, T))["nodes"]
    assert item["nova"]["gpu_inventory"] is None and "Placement" in item["nova"]["gpu_inventory_note"]
    known = {"openstack": _result("openstack", SourceData(nova_hosts=(nova("gpu01"),)))}
    (item,) = view_to_json(build_view(SiteInfo("lab"), known, T))["nodes"]
    assert item["nova"]["gpu_inventory"] == [] and item["nova"]["gpu_inventory_note"] is None
