"""Provides tests of drain, cordon and uncordon through the operations layer against the lab's Kubernetes API server.

A drain cluster of its own (tests/lab/kubeapi/drainseed.py) is reached through the real ``kubernetes`` client by the
real source; the plan, the run and the audit are the ones the TUI and the CLI use.
"""

from __future__ import annotations

import contextlib

import pytest

from sovtui.config import SiteConfig
from sovtui.hub import Hub
from sovtui.model.types import SiteInfo
from sovtui.ops import audit
from sovtui.ops.operator import Operator
from sovtui.ops.plan import Options
from sovtui.sources.kubernetes import CORDON_REASON_ANNOTATION, KubernetesSource
from tests.lab.kubeapi.lab import start_cluster

pytestmark = [pytest.mark.kubernetes, pytest.mark.slow]
NS = "drain-lab"


@pytest.fixture(scope="module")
def cluster(lab_dir, lab_kube):
    c = start_cluster(lab_dir / "ops-kube", "ops-kube", {"kind": "drain"})
    yield c
    c.close()


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@contextlib.asynccontextmanager
async def operator(cluster, ctx: str = "lab"):
    src = KubernetesSource(SiteConfig("lab", kube_context=ctx, timeout_s=10.0), kubeconfig=cluster.kubeconfig)
    hub = Hub([src])
    try:
        await hub.poll_all()
        yield Operator(SiteInfo(name="lab"), [src], lambda: hub.results), src
    finally:
        await hub.stop()
        await src.aclose()


async def read_node(cluster, name):
    from kubernetes.aio import client, config

    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(cluster.kubeconfig), context="lab", client_configuration=cfg, persist_config=False
    )
    async with client.ApiClient(cfg) as api:
        return await client.CoreV1Api(api).read_node(name)


def by_name(plan):
    return {s.name.split("/")[-1]: s for s in plan.steps if s.kind == "pod"}


async def test_plan_follows_kubectl_filters_and_options_lift_blockers(cluster, state):
    async with operator(cluster) as (op, _):
        plan = await op.plan("drain", ["drain-a"], Options(reason="GPU 3 XID 79"))
        steps = by_name(plan)
        proxy = next(s for n, s in steps.items() if n.startswith("kube-proxy-"))
        assert proxy.action == "skip" and "DaemonSet" in proxy.detail
        assert steps["node-exporter-drain-a"].action == "skip" and "mirror" in steps["node-exporter-drain-a"].detail
        fatal = {b.item.split("/")[-1]: b for b in plan.blockers if b.fatal}
        assert "debug-shell" in fatal and "no controller" in fatal["debug-shell"].why
        assert any(n.startswith("scratch-") and "emptyDir" in b.why for n, b in fatal.items())
        assert not plan.runnable
        infer = next(s for n, s in steps.items() if n.startswith("infer-"))
        assert infer.action == "evict" and infer.gpus == 2 and plan.summary()["gpus_freed"] == 2

        plan = await op.plan(
            "drain", ["drain-a"], Options(reason="GPU 3 XID 79", force=True, delete_emptydir_data=True)
        )
        assert plan.runnable and plan.identities == (("kubernetes", f"user lab-user in context lab ({cluster.url})"),)


async def test_drain_with_a_budget_that_holds_one_pod(cluster, state):
    """drain-b's web pods: a budget that allows one disruption; the second eviction is refused (429) and retried
    until the ReplicaSet's replacement is Ready on a spare node; the run ends when the watch shows both gone."""
    async with operator(cluster) as (op, src):
        plan = await op.plan("drain", ["drain-b"], Options(reason="bad NVLink"))
        assert plan.runnable
        run = op.start(plan)
        run.pdb_retry_s = 0.5  # kubectl's 5 s, shortened for the test
        events = [e async for e in run.events()]
        assert run.outcome.verdict(plan) == "ok", run.outcome.states
        web = [s for s in plan.steps if s.kind == "pod" and s.name.startswith(f"{NS}/web-")]
        states = {s.key: [e.state for e in events if e.step == s.key] for s in web}
        assert sum("blocked" in v for v in states.values()) == 1 and all(v[-1] == "gone" for v in states.values())
        assert not [p for p in src.pods_on("drain-b") if not p.daemonset]
        node = await read_node(cluster, "drain-b")
        assert node.spec.unschedulable and node.metadata.annotations[CORDON_REASON_ANNOTATION] == "bad NVLink"
        [line] = audit.read()
        assert line["outcome"] == "ok" and line["options"]["reason"] == "bad NVLink"
        assert all(tok not in str(line) for tok in cluster.tokens.values())

        plan = await op.plan("drain", ["drain-b"], Options(reason="again"))  # an already drained node
        assert next(s for s in plan.steps if s.kind == "node").detail == "already cordoned"
        assert all(s.action == "skip" for s in plan.steps if s.kind == "pod")

        plan = await op.plan("uncordon", ["drain-b"], Options())
        assert (await op.start(plan).execute()).verdict(plan) == "ok"
        node = await read_node(cluster, "drain-b")
        assert not node.spec.unschedulable and CORDON_REASON_ANNOTATION not in (node.metadata.annotations or {})


async def test_statefulset_pod_counts_gone_by_its_new_uid_and_slow_pods_time_out(cluster, state):
    """drain-c: db-0 comes back under the same name with a new UID (gone, as kubectl counts it); the slow pods
    ignore SIGTERM for their 2 s grace period, longer than a 1 s timeout."""
    async with operator(cluster) as (op, src):
        plan = await op.plan("drain", ["drain-c"], Options(reason="t", timeout_s=1.0))
        db = next(s for s in plan.steps if s.name == f"{NS}/db-0")
        outcome = await op.start(plan).execute()
        assert outcome.states[db.key] == "gone"
        slow = [s for s in plan.steps if s.name.startswith(f"{NS}/slow-")]
        assert slow and all(outcome.states[s.key] == "timeout" for s in slow)
        assert outcome.verdict(plan) == "failed"


async def test_rbac_denied_eviction_stops_the_run_and_names_it(cluster, state):
    async with operator(cluster, "lab-cordoner") as (op, src):
        plan = await op.plan("drain", ["spare-1"], Options(reason="t", force=True, delete_emptydir_data=True))
        evict = [s for s in plan.steps if s.action == "evict"]
        if not evict:
            pytest.skip("no evictable pod on spare-1 in this seed")
        outcome = await op.start(plan).execute()
        assert outcome.verdict(plan) == "failed" and "denied" in outcome.error
        assert any(outcome.details.get(s.key, "").startswith("denied: cannot create pods/eviction") for s in evict)
        assert src.node_unschedulable("spare-1") is True  # the cordon went through; nothing was evicted
        await src.cordon("spare-1", unschedulable=False)


async def test_cancel_mid_way_leaves_the_node_cordoned(cluster, state):
    async with operator(cluster) as (op, src):
        plan = await op.plan("drain", ["drain-a"], Options(reason="t", force=True, delete_emptydir_data=True))
        run = op.start(plan)
        async for event in run.events():
            if event.state == "terminating":
                run.cancel()
        assert run.outcome.verdict(plan) == "cancelled"
        assert "cancelled" in run.outcome.states.values() and src.node_unschedulable("drain-a") is True
        assert audit.read()[-1]["outcome"] == "cancelled"
