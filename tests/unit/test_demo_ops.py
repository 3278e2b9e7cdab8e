"""Tests the demo cluster under operations: cordon and evictions with budgets, Nova migrations, Slurm drains, through the demo sources."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from sovtui.demo import DEMO_EPOCH, TICK_S, DemoCluster, demo_sources
from sovtui.model.types import SourceData
from sovtui.sources.base import BadAnswer
from sovtui.sources.kubernetes import EvictionBlocked, PodGone


class Clock:
    """The sources' clock, moved by the test."""

    def __init__(self, t: float = DEMO_EPOCH) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Site:
    """One demo cluster, its sources by kind, and the clock they advance it to."""

    def __init__(self, seed: int = 7) -> None:
        self.clock = Clock()
        self.cluster = DemoCluster(seed=seed)
        self.sources = {s.kind: s for s in demo_sources(self.cluster, self.clock)}
        self.kube = self.sources["kubernetes"]
        self.nova = self.sources["openstack"]
        self.slurm = self.sources["slurm"]

    def until(self, cond: Callable[[], object], within_s: float, what: str) -> float:
        """Move simulated time a tick at a time, polled as the hub does, until ``cond()`` holds; the seconds it took."""
        started = self.clock.t
        while not cond():
            if self.clock.t - started > within_s:
                pytest.fail(f"not within {within_s:g} simulated seconds: {what}")
            self.clock.t += TICK_S
            self.kube.fetch_sync()
        return self.clock.t - started

    def data(self, kind: str) -> SourceData:
        return self.sources[kind].fetch_sync()


def movable(kube, node: str):
    return [p for p in kube.pods_on(node) if not p.daemonset and not p.mirror]


async def evict_all(site: Site, node: str) -> tuple[dict[str, str], dict[str, EvictionBlocked]]:
    """Evict every pod a drain would (not DaemonSets); (uid by pod name of those evicted, refusals by pod name)."""
    evicted, blocked = {}, {}
    for pod in movable(site.kube, node):
        try:
            await site.kube.evict(pod.namespace, pod.name)
            evicted[pod.key] = pod.uid
        except EvictionBlocked as exc:
            blocked[pod.key] = exc
    return evicted, blocked


def inference(site: Site, owner: str) -> list:
    return [p for p in site.cluster.pods("inference") if p.owner_name == owner and not p.terminal]


# ---------------------------------------------------------------------------------------------
# Kubernetes


async def test_pods_on_a_host_with_owners_budgets_and_uids():
    site = Site()
    pods = site.kube.pods_on("gpu05")
    assert site.kube.pods_on("gpu99") is None
    by_owner = {p.owner_kind for p in pods}
    assert by_owner == {"ReplicaSet", "DaemonSet"}
    assert {p.owner_name for p in pods if p.daemonset} == {
        "nvidia-device-plugin-daemonset",
        "nvidia-dcgm-exporter",
        "node-exporter",
    }
    llama = next(p for p in pods if p.name.startswith("vllm-llama"))
    assert (
        llama.owner_name.startswith("vllm-llama-3-70b-") and llama.gpus == 4 and llama.emptydir and not llama.deleting
    )
    (budget,) = llama.budgets
    assert (
        budget.name,
        budget.current_healthy,
        budget.desired_healthy,
        budget.expected_pods,
        budget.disruptions_allowed,
    ) == ("vllm-llama-3-70b", 4, 3, 4, 1)
    assert all(not p.budgets for p in pods if p.daemonset)
    assert len({p.uid for p in pods}) == len(pods) and site.kube.pod_uid("inference", llama.name) == llama.uid
    assert site.kube.pod_uid("inference", "no-such-pod") is None
    assert site.kube.node_unschedulable("gpu16") is True and site.kube.node_unschedulable("gpu05") is False
    assert site.kube.node_unschedulable("gpu99") is None
    control_plane = site.kube.pods_on("k8s-cp1")
    assert any(p.mirror for p in control_plane)  # static pods: kube-apiserver, etcd, kube-scheduler
    assert site.kube.identity() == "user demo-admin in context demo (simulated API server)"


async def test_cordon_keeps_the_reason_and_dry_run_changes_nothing():
    site = Site()
    preview = await site.kube.cordon("gpu05", reason="GPU 3 ECC", dry_run=True)
    assert preview.unschedulable and "node.kubernetes.io/unschedulable:NoSchedule" in preview.taints
    assert site.kube.node_unschedulable("gpu05") is False and site.kube.cordon_reason("gpu05") is None
    node = await site.kube.cordon("gpu05", reason="GPU 3 ECC")
    assert node.name == "gpu05" and node.unschedulable and site.kube.node_unschedulable("gpu05") is True
    assert site.kube.cordon_reason("gpu05") == "GPU 3 ECC"
    assert next(n for n in site.data("kubernetes").kube_nodes if n.name == "gpu05").unschedulable
    node = await site.kube.cordon("gpu05", unschedulable=False)
    assert not node.unschedulable and site.kube.cordon_reason("gpu05") is None
    assert not next(n for n in site.data("kubernetes").kube_nodes if n.name == "gpu05").unschedulable
    with pytest.raises(BadAnswer, match="not found"):
        await site.kube.cordon("gpu99", reason="x")


async def test_drain_a_host_pods_terminate_and_are_recreated_elsewhere_with_new_uids():
    site = Site()
    await site.kube.cordon("gpu05", reason="GPU 3 ECC")
    daemons = {p.uid for p in site.kube.pods_on("gpu05") if p.daemonset}
    evicted, blocked = await evict_all(site, "gpu05")
    assert not blocked and {k.split("/")[1].rsplit("-", 2)[0] for k in evicted} == {
        "vllm-llama-3-70b",
        "vllm-mixtral-8x7b",
    }
    # evicted: terminating for a moment (deleting, GPUs still held), the same uid
    terminating = [p for p in site.kube.pods_on("gpu05") if not p.daemonset]
    assert terminating and all(p.deleting for p in terminating)
    assert all(site.kube.pod_uid(*key.split("/")) == uid for key, uid in evicted.items())
    took = site.until(lambda: not movable(site.kube, "gpu05"), 30, "evicted pods gone")
    assert took <= 2 * TICK_S
    assert all(site.kube.pod_uid(*key.split("/")) is None for key in evicted)
    assert {p.uid for p in site.kube.pods_on("gpu05")} == daemons  # DaemonSet pods stay, untouched
    # the controllers replaced them: new pods, new uids, never on the cordoned host
    mixtral = inference(site, "vllm-mixtral-8x7b")
    llama = inference(site, "vllm-llama-3-70b")
    assert len(mixtral) == 2 and len(llama) == 4
    assert all(p.node != "gpu05" for p in mixtral + llama)
    old_uids = set(evicted.values())
    new = [p for p in mixtral + llama if f"inference/{p.name}" not in evicted and p.created_at >= DEMO_EPOCH]
    assert len(new) == 2 and not old_uids & {site.kube.pod_uid("inference", p.name) for p in new}
    site.until(lambda: all(p.ready for p in inference(site, "vllm-mixtral-8x7b")), 120, "the new mixtral replica ready")
    moved = next(p for p in new if p.owner_name == "vllm-mixtral-8x7b")
    assert next(p for p in inference(site, "vllm-mixtral-8x7b") if p.name == moved.name).node in (
        "gpu06",
        "gpu07",
        "gpu08",
    )
    # the 4-GPU llama replica finds no host with 4 free GPUs: Pending, said so
    waiting = next(p for p in inference(site, "vllm-llama-3-70b") if p.phase == "Pending")
    assert "Insufficient nvidia.com/gpu" in waiting.reason and "unschedulable" in waiting.reason
    node = next(n for n in site.data("kubernetes").kube_nodes if n.name == "gpu05")
    assert node.unschedulable and node.gpu_requested == 0 and node.pods_with_gpus == ()
    # uncordon reverses the cordon
    await site.kube.cordon("gpu05", unschedulable=False)
    assert not next(n for n in site.data("kubernetes").kube_nodes if n.name == "gpu05").unschedulable


async def test_a_budget_holds_a_pod_until_its_replacement_runs():
    site = Site()
    await site.kube.cordon("gpu05", reason="first host")
    await evict_all(site, "gpu05")
    site.clock.t += TICK_S  # gone, and replaced (the replacements start)
    await site.kube.cordon("gpu06", reason="second host")
    _, blocked = await evict_all(site, "gpu06")
    mixtral = next(k for k in blocked if "mixtral" in k)
    llama = next(k for k in blocked if "llama" in k)
    exc = blocked[mixtral]
    assert "disruption budget" in str(exc) and exc.causes == (
        "The disruption budget vllm-mixtral-8x7b needs 1 healthy pods and has 1 currently",
    )
    pod = next(p for p in site.kube.pods_on("gpu06") if p.key == mixtral)
    assert pod.budgets[0].disruptions_allowed == 0 and pod.budgets[0].current_healthy == 1
    # a dry run asks the same question and changes nothing
    with pytest.raises(EvictionBlocked):
        await site.kube.evict(*mixtral.split("/"), dry_run=True)

    async def try_evict() -> bool:
        try:
            await site.kube.evict(*mixtral.split("/"))
            return True
        except EvictionBlocked:
            return False

    # retry as a drain does, a tick at a time, until the budget lets it go
    started = site.clock.t
    while not await try_evict():
        replacement_ready = any(
            p.ready and p.node not in ("gpu05", "gpu06") and p.created_at > DEMO_EPOCH
            for p in inference(site, "vllm-mixtral-8x7b")
        )
        assert not replacement_ready, "blocked although the replacement is ready"
        assert site.clock.t - started <= 120, "the budget never allowed the eviction"
        site.clock.t += TICK_S
        site.kube.fetch_sync()
    waited = site.clock.t - started
    assert 60 <= waited <= 90  # the replacement's start-up (80 s) after it was placed
    running = [p for p in inference(site, "vllm-mixtral-8x7b") if p.ready]
    assert len(running) == 1 and running[0].node not in ("gpu05", "gpu06")
    # the llama replica stays held: its budget needs 3 healthy and the 4th cannot be placed anywhere
    site.clock.t += 60
    with pytest.raises(EvictionBlocked, match="needs 3 healthy pods and has 3"):
        await site.kube.evict(*llama.split("/"))


async def test_evict_errors_and_grace_period():
    site = Site()
    with pytest.raises(PodGone):
        await site.kube.evict("inference", "no-such-pod")
    static = next(p for p in site.kube.pods_on("k8s-cp1") if p.mirror)
    with pytest.raises(BadAnswer, match="static pod"):
        await site.kube.evict(static.namespace, static.name)
    tei = next(p for p in site.kube.pods_on("gpu07") if p.name.startswith("tei-"))
    await site.kube.evict(tei.namespace, tei.name, grace_period_s=0)  # no grace: gone at once
    assert site.kube.pod_uid(tei.namespace, tei.name) is None
    assert tei.key not in {p.key for p in site.kube.pods_on("gpu07")}
    llama = next(p for p in site.kube.pods_on("gpu07") if p.name.startswith("vllm-llama"))
    await site.kube.evict(llama.namespace, llama.name)
    await site.kube.evict(llama.namespace, llama.name)  # already terminating: accepted again, as the API does
    assert next(p for p in site.kube.pods_on("gpu07") if p.key == llama.key).deleting


async def test_pods_changed_advances_the_simulation_while_it_waits():
    site = Site()
    assert await site.kube.pods_changed(0.2) is False  # a frozen clock: nothing moves
    pod = next(p for p in site.kube.pods_on("gpu07") if p.name.startswith("vllm-llama"))
    await site.kube.evict(pod.namespace, pod.name)

    async def tick_later() -> None:
        await asyncio.sleep(0.1)
        site.clock.t += TICK_S

    ticker = asyncio.create_task(tick_later())
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await site.kube.pods_changed(5.0) is True
    assert loop.time() - started < 4.0
    await ticker
    assert site.kube.pod_uid(pod.namespace, pod.name) is None


# ---------------------------------------------------------------------------------------------
# OpenStack


def test_servers_flavors_and_identity():
    site = Site()
    nova = site.nova
    assert nova.compute_version() == "2.96"
    assert nova.identity() == "user demo-admin in project admin (cloud demo)"
    vms = {v.name: v for v in nova.servers_on("gpu16")}
    assert set(vms) == {"llm-finance-01", "build-runner-03"}
    finance = vms["llm-finance-01"]
    assert (finance.gpu, finance.gpus, finance.vcpus, finance.status) == ("pci", 4, 48, "ACTIVE")
    assert (vms["build-runner-03"].gpu, vms["build-runner-03"].status) == ("", "SHUTOFF")
    assert nova.server(vms["llm-finance-01"].id) == vms["llm-finance-01"]
    assert nova.server("00000000-0000-0000-0000-000000000000") is None
    assert nova.servers_on("gpu01") == ()


def test_disable_migrate_live_and_cold_then_enable():
    site = Site()
    nova = site.nova
    nova.disable_compute("gpu15", "GPU 2 ECC errors")
    host = next(h for h in site.data("openstack").nova_hosts if h.name == "gpu15")
    assert (host.service_status, host.disabled_reason) == ("disabled", "GPU 2 ECC errors")
    vms = {v.name: v for v in nova.servers_on("gpu15")}
    # live: MIGRATING, then ACTIVE on the only other A100 host with room
    nova.live_migrate(vms["ws-research-01"].id)
    moving = nova.server(vms["ws-research-01"].id)
    assert (moving.status, moving.task_state, moving.host) == ("MIGRATING", "migrating", "gpu15")
    site.until(lambda: nova.server(vms["ws-research-01"].id).host == "gpu16", 30, "live migration landed")
    landed = nova.server(vms["ws-research-01"].id)
    assert (landed.status, landed.task_state) == ("ACTIVE", "")
    # no room left for the other one: gpu16 is full, gpu14 has H100s and no free GPU
    with pytest.raises(BadAnswer, match="No valid host"):
        nova.cold_migrate(vms["ws-research-02"].id)
    # a stopped server is not live-migrated; it is cold-migrated and waits for a confirmation
    runner = next(v for v in nova.servers_on("gpu16") if v.name == "build-runner-03")
    with pytest.raises(BadAnswer, match="vm_state shutoff"):
        nova.live_migrate(runner.id)
    nova.cold_migrate(runner.id, target_host="gpu14")
    assert nova.server(runner.id).status == "RESIZE"
    with pytest.raises(BadAnswer, match="confirmResize"):
        nova.confirm_resize(runner.id)
    site.until(lambda: nova.server(runner.id).status == "VERIFY_RESIZE", 40, "cold migration done")
    assert nova.server(runner.id).host == "gpu14"
    nova.confirm_resize(runner.id)
    assert (nova.server(runner.id).status, nova.server(runner.id).host) == ("SHUTOFF", "gpu14")
    hosts = {h.name: h for h in site.data("openstack").nova_hosts}
    assert hosts["gpu16"].servers == ("llm-finance-01", "ws-research-01") and hosts["gpu16"].gpus_used == 8
    assert hosts["gpu15"].servers == ("ws-research-02",) and hosts["gpu14"].running_vms == 2
    with pytest.raises(BadAnswer, match="No valid host"):
        nova.live_migrate(vms["ws-research-02"].id, target_host="gpu16")
    nova.enable_compute("gpu15")
    host = next(h for h in site.data("openstack").nova_hosts if h.name == "gpu15")
    assert (host.service_status, host.disabled_reason) == ("enabled", "")
    with pytest.raises(BadAnswer, match="could not be found"):
        nova.disable_compute("gpu01", "x")


def test_cold_migration_holds_both_hosts_gpus_until_confirmed():
    site = Site()
    nova = site.nova
    vm = next(v for v in nova.servers_on("gpu15") if v.name == "ws-research-02")
    free = {n: len(site.cluster._hosts[n].free_gpus()) for n in ("gpu15", "gpu16")}
    nova.cold_migrate(vm.id)
    site.until(lambda: nova.server(vm.id).status == "VERIFY_RESIZE", 40, "cold migration done")
    assert nova.server(vm.id).host == "gpu16"
    assert len(site.cluster._hosts["gpu16"].free_gpus()) == free["gpu16"] - 2
    assert len(site.cluster._hosts["gpu15"].free_gpus()) == free["gpu15"]  # still held for a revert
    nova.confirm_resize(vm.id)
    assert len(site.cluster._hosts["gpu15"].free_gpus()) == free["gpu15"] + 2
    assert nova.server(vm.id).status == "ACTIVE"


# ---------------------------------------------------------------------------------------------
# Slurm


async def test_slurm_drain_waits_for_jobs_then_undrain():
    site = Site()
    slurm = site.slurm
    assert slurm.identity() == "demo-admin@demo-login"
    jobs = slurm.jobs_on("gpu12")
    assert {j.id for j in jobs} == {"48207", "48209"} and all(
        j.state == "RUNNING" and j.nodes == ("gpu12",) for j in jobs
    )
    assert slurm.node("gpu99") is None and slurm.jobs_on("gpu99") == ()
    with pytest.raises(BadAnswer):
        await slurm.read_node("gpu99")
    with pytest.raises(BadAnswer, match="reason"):
        await slurm.drain("gpu12", "")
    await slurm.drain("gpu12", "GPU 3 ECC")
    node = await slurm.read_node("gpu12")
    assert node.state == "draining" and node.reason == "GPU 3 ECC" and set(node.jobs) == {"48207", "48209"}
    states = set()

    def drained() -> bool:
        current = slurm.node("gpu12")
        states.add(current.state)
        return current.state == "drained"

    site.until(drained, 900, "gpu12 drained")
    assert states == {"draining", "drained"}  # no job started there meanwhile
    assert slurm.jobs_on("gpu12") == ()
    view = next(n for n in site.data("slurm").slurm_nodes if n.name == "gpu12")
    assert (view.state, view.reason) == ("drained", "GPU 3 ECC")
    await slurm.undrain("gpu12")
    node = await slurm.read_node("gpu12")
    assert not node.state.startswith("drain") and node.reason == ""


async def test_slurm_requeue_frees_the_node():
    site = Site()
    slurm = site.slurm
    await slurm.drain("gpu13", "maintenance")
    job = next(j for j in slurm.jobs_on("gpu13") if j.id == "48212")
    await slurm.requeue(job.id)
    assert "48212" not in (await slurm.read_node("gpu13")).jobs
    requeued = next(j for j in site.cluster.slurm_jobs() if j.id_str == "48212")
    assert requeued.state in ("PENDING", "RUNNING") and requeued.requeues == 1
    with pytest.raises(BadAnswer, match="Invalid job id"):
        await slurm.requeue("999999")
    for other in slurm.jobs_on("gpu13"):
        await slurm.requeue(other.id)
    site.clock.t += TICK_S
    assert (await slurm.read_node("gpu13")).state == "drained"
    assert all("gpu13" not in dict(j.alloc) for j in site.cluster.slurm_jobs() if j.state == "RUNNING")


# ---------------------------------------------------------------------------------------------
# the whole site


async def test_the_site_shows_a_drained_host_in_every_layer_and_uncordon_reverses_it():
    site = Site()
    # gpu16 is a Nova host that the storyline cordoned in Kubernetes; gpu12 a Slurm host
    await site.kube.cordon("gpu12", reason="maintenance")
    site.nova.disable_compute("gpu16", "maintenance")
    await site.slurm.drain("gpu12", "maintenance")
    kube = {n.name: n for n in site.data("kubernetes").kube_nodes}
    nova = {h.name: h for h in site.data("openstack").nova_hosts}
    slurm = {n.name: n for n in site.data("slurm").slurm_nodes}
    assert kube["gpu12"].unschedulable and kube["gpu16"].unschedulable
    assert (nova["gpu16"].service_status, nova["gpu16"].disabled_reason) == ("disabled", "maintenance")
    assert slurm["gpu12"].state in ("draining", "drained") and slurm["gpu12"].reason == "maintenance"
    await site.kube.cordon("gpu12", unschedulable=False)
    site.nova.enable_compute("gpu16")
    await site.slurm.undrain("gpu12")
    kube = {n.name: n for n in site.data("kubernetes").kube_nodes}
    nova = {h.name: h for h in site.data("openstack").nova_hosts}
    slurm = {n.name: n for n in site.data("slurm").slurm_nodes}
    assert not kube["gpu12"].unschedulable
    assert (nova["gpu16"].service_status, nova["gpu16"].disabled_reason) == ("enabled", "")
    assert not slurm["gpu12"].state.startswith("drain") and slurm["gpu12"].reason == ""


def test_operations_keep_the_simulation_deterministic():
    async def run() -> tuple:
        site = Site()
        await site.kube.cordon("gpu05", reason="x")
        await evict_all(site, "gpu05")
        site.nova.live_migrate(next(v.id for v in site.nova.servers_on("gpu15") if v.name == "ws-research-01"))
        await site.slurm.drain("gpu12", "x")
        site.clock.t += 300
        return tuple(site.data(kind) for kind in ("kubernetes", "openstack", "slurm", "ssh", "prometheus"))

    assert asyncio.run(run()) == asyncio.run(run())


def test_without_operations_the_sources_answer_as_before():
    """Reading what a drain reads changes nothing: the data equals that of a cluster nobody asked."""
    t = DEMO_EPOCH + 300
    read = Site()
    read.kube.pods_on("gpu05")
    read.nova.servers_on("gpu15")
    read.slurm.jobs_on("gpu12")
    read.clock.t = t
    untouched = {s.name: s.fetch_sync() for s in demo_sources(DemoCluster(seed=7), lambda: t)}
    assert {s.name: s.fetch_sync() for s in read.sources.values()} == untouched


async def test_the_operations_layer_drains_and_uncordons_the_demo():
    """sovtui.ops plans and runs on the demo sources as on real ones (the demo's time runs 50 times faster here)."""
    import time

    from sovtui.model.types import SiteInfo, SourceResult, SourceStatus
    from sovtui.ops.drain import make_plan
    from sovtui.ops.layers import Layers
    from sovtui.ops.plan import Options
    from sovtui.ops.run import Run

    origin = time.monotonic()

    def clock() -> float:
        return DEMO_EPOCH + 50.0 * (time.monotonic() - origin)

    cluster = DemoCluster(seed=7)
    sources = demo_sources(cluster, clock)
    site = SiteInfo("demo", demo=True)

    async def layers() -> Layers:
        results = {
            s.name: SourceResult(SourceStatus(s.name, s.kind, ok=True, last_ok_at=clock()), await s.fetch())
            for s in sources
        }
        return Layers.from_sources(sources, results)

    async def run(action: str, hosts: list[str], options: Options):
        current = await layers()
        plan = await make_plan(action, hosts, options, current, site)
        assert plan.runnable, plan.blockers
        outcome = await Run(plan, current, clock=clock, poll_s=0.05, pdb_retry_s=0.1).execute()
        return plan, outcome

    plan, outcome = await run(
        "drain", ["gpu05", "gpu15"], Options(reason="GPU ECC", delete_emptydir_data=True, timeout_s=60)
    )
    states = {key.split("|", 2)[2]: state for key, state in outcome.states.items() if state != "skipped"}
    assert states.pop("server|ws-research-02") == "failed"  # no A100 host has room for it: Nova's answer is said
    assert set(states.values()) <= {"cordoned", "disabled", "gone", "migrated"}
    assert sum(1 for key in states if key.startswith("pod|")) == 2 and states["server|ws-research-01"] == "migrated"
    data = {s.kind: await s.fetch() for s in sources}
    kube = {n.name: n for n in data["kubernetes"].kube_nodes}
    nova = {h.name: h for h in data["openstack"].nova_hosts}
    assert kube["gpu05"].unschedulable and kube["gpu05"].gpu_requested == 0
    assert (nova["gpu15"].service_status, nova["gpu15"].disabled_reason) == ("disabled", "GPU ECC")
    assert nova["gpu15"].servers == ("ws-research-02",) and "ws-research-01" in nova["gpu16"].servers

    plan, outcome = await run("uncordon", ["gpu05", "gpu15"], Options())
    assert outcome.verdict(plan) == "ok"
    data = {s.kind: await s.fetch() for s in sources}
    assert not any(n.unschedulable for n in data["kubernetes"].kube_nodes if n.name in ("gpu05", "gpu15"))
    assert next(h for h in data["openstack"].nova_hosts if h.name == "gpu15").service_status == "enabled"


async def test_undrained_node_with_a_lost_gpu_is_drained_again_by_the_health_check():
    site = Site()
    story = site.cluster.storyline()
    host = story.xid_gpu[0]
    site.until(lambda: site.slurm.node(host).state.startswith("drain"), 600, f"{host} drained by the health check")
    await site.slurm.undrain(host)
    assert not (await site.slurm.read_node(host)).state.startswith("drain")
    took = site.until(lambda: site.slurm.node(host).state.startswith("drain"), 120, f"{host} drained again")
    assert 55 <= took <= 65 and "XID 79" in site.slurm.node(host).reason
