"""Provides tests of what a drain reads and does through the Kubernetes source, against the lab's drain cluster.

The cluster (tests/lab/kubeapi/drainseed.py) runs in its own fake API server process; the source talks to it through
the official ``kubernetes`` client, as it talks to a real one. Every wait is for a condition, with a deadline.
"""

from __future__ import annotations

import asyncio
import gc
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sovtui.config import SiteConfig
from sovtui.model.workload import BudgetRef
from sovtui.sources.kubernetes import (
    CORDON_REASON_ANNOTATION,
    EvictionBlocked,
    KubeForbidden,
    KubernetesSource,
    NodeRec,
    PodGone,
)
from sovtui.sources.kubernetes.informer import Informer
from sovtui.sources.kubernetes.projections import intern_labels, project_pdb, project_pod
from sovtui.sources.kubernetes.selectors import parse_selector, selector_matches
from tests.kube_support import kube_api, kube_source
from tests.lab.kubeapi.selectors import labels_match, selector_from_label_selector
from tests.lab.waits import eventually, timed

lab = pytest.mark.kubernetes
NS = "drain-lab"


async def until_pods(src: KubernetesSource, check, timeout_s: float = 10.0):
    """Wait for ``check()`` to hold, re-checking at each change of the source's pods cache; the seconds it took."""
    t0 = time.perf_counter()
    while not check():
        left = timeout_s - (time.perf_counter() - t0)
        if left <= 0:
            raise AssertionError(f"not true after {timeout_s}s")
        await src.pods_changed(left)
    return time.perf_counter() - t0


def by_name(refs) -> dict:
    return {p.name: p for p in refs}


@pytest.fixture(scope="module")
def drain_lab(lab_kube):
    return lab_kube.drain()


# ---------------------------------------------------------------------------------- selectors
KEYS = st.sampled_from(["app", "tier", "a", "b"])
VALUES = st.sampled_from(["x", "y", "web", "db"])
LABELS = st.dictionaries(KEYS, VALUES, max_size=4)


@st.composite
def expressions(draw):
    op = draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"]))
    expr = {"key": draw(KEYS), "operator": op}
    if op in ("In", "NotIn"):
        expr["values"] = draw(st.lists(VALUES, min_size=1, max_size=3))
    return expr


SELECTORS = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {},
        optional={
            "matchLabels": st.dictionaries(KEYS, VALUES, max_size=3),
            "matchExpressions": st.lists(expressions(), max_size=4),
        },
    ),
)


@settings(max_examples=400, deadline=None)
@given(SELECTORS, LABELS)
def test_selector_matches_as_the_api_server_does(sel, labels):
    """Against the lab server's own matcher (its parser of LabelSelectors, as kube-apiserver reads them)."""
    ref = selector_from_label_selector(sel)
    want = ref is not None and labels_match(ref, labels)
    assert selector_matches(parse_selector(sel), labels) is want
    # the labels a PodRec carries (sorted pairs) select the same
    assert selector_matches(parse_selector(sel), dict(intern_labels(labels))) is want


def test_selector_edge_cases():
    assert parse_selector(None) is None and not selector_matches(None, {"app": "x"})  # null selects nothing
    assert selector_matches(parse_selector({}), {}) and selector_matches(
        parse_selector({}), {"app": "x"}
    )  # empty selects all
    assert (
        parse_selector({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}) is None
    )  # not a LabelSelector operator
    assert not selector_matches(
        parse_selector({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}), {"a": "x"}
    )
    assert selector_matches(
        parse_selector({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["x"]}]}), {}
    )


def test_pod_and_budget_projection_carry_what_drain_reads():
    meta = {
        "namespace": "ns",
        "name": "p",
        "uid": "u-1",
        "labels": {"b": "2", "a": "1"},
        "annotations": {"kubernetes.io/config.mirror": "h"},
    }
    spec = {
        "nodeName": "n1",
        "terminationGracePeriodSeconds": 45,
        "volumes": [{"name": "s", "emptyDir": {}}, {"name": "c", "configMap": {"name": "c"}}],
        "containers": [],
    }
    pod = project_pod({"metadata": meta, "spec": spec, "status": {"phase": "Running"}})
    assert (pod.uid, pod.emptydir, pod.labels, pod.grace_period_s, pod.mirror) == (
        "u-1",
        True,
        (("a", "1"), ("b", "2")),
        45,
        True,
    )
    other = project_pod({"metadata": {**meta, "name": "q", "labels": {"a": "1", "b": "2"}}, "spec": {"containers": []}})
    assert other.labels is pod.labels  # one shared tuple per distinct label set
    assert (other.emptydir, other.grace_period_s) == (False, None)
    budget = project_pdb(
        {
            "metadata": {"namespace": "ns", "name": "b"},
            "spec": {
                "selector": {
                    "matchLabels": {"a": "1"},
                    "matchExpressions": [{"key": "b", "operator": "In", "values": ["2"]}],
                }
            },
            "status": {"disruptionsAllowed": 1},
        }
    )
    assert selector_matches(budget.selector, dict(pod.labels)) and budget.disruptions_allowed == 1
    assert project_pdb({"metadata": {"namespace": "ns", "name": "b"}, "spec": {}}).selector is None


# ---------------------------------------------------------------------------------- cost of pods_on in a big cache
def _pod(ns: str, name: str, node: str, labels: dict) -> dict:
    return {
        "metadata": {
            "namespace": ns,
            "name": name,
            "uid": f"uid-{ns}-{name}",
            "labels": labels,
            "ownerReferences": [{"kind": "ReplicaSet", "name": f"{labels['app']}-rs", "controller": True}],
        },
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        },
        "status": {"phase": "Running"},
    }


def test_pods_on_a_node_with_100_pods_in_a_20000_pod_cache_is_cheap():
    """The index by node and by namespace, as the informers' callbacks keep it: pods_on never scans the cluster."""
    src = KubernetesSource(SiteConfig("bench", kube_context="x"))
    kinds = {k.resource: k for k in src.kinds}
    pods: dict[str, object] = {}
    for i in range(20000):
        node = "node-hot" if i < 100 else f"node-{i % 500:04d}"
        ns = f"team-{i % 40:02d}"
        pods[f"{ns}/pod-{i:05d}"] = project_pod(
            _pod(ns, f"pod-{i:05d}", node, {"app": f"svc-{i % 300}", "pod-template-hash": f"h{i % 300}"})
        )
    pdbs = {}
    for t in range(40):
        for j in range(8):  # 8 budgets per namespace, one with expressions
            sel = (
                {"matchLabels": {"app": f"svc-{t + 40 * j}"}}
                if j
                else {"matchExpressions": [{"key": "app", "operator": "In", "values": [f"svc-{t}", f"svc-{t + 40}"]}]}
            )
            obj = {
                "metadata": {"namespace": f"team-{t:02d}", "name": f"pdb-{j}"},
                "spec": {"selector": sel},
                "status": {"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3},
            }
            pdbs[f"team-{t:02d}/pdb-{j}"] = project_pdb(obj)
    for resource, items in (("nodes", {}), ("pods", pods), ("poddisruptionbudgets", pdbs)):
        inf = src._informers[resource] = Informer(kinds[resource], src)
        inf.items, inf.synced = items, True
        src.on_relist(kinds[resource], items)
    for name in ["node-hot", *(f"node-{i:04d}" for i in range(500))]:
        src.on_change(kinds["nodes"], name, None, NodeRec(name, True, False, (), (), "", 8, 8, ()))
    gc.collect()
    t0 = time.perf_counter()
    refs = src.pods_on("node-hot")
    first = time.perf_counter() - t0
    assert (
        refs is not None
        and len(refs) == 100
        and all(p.budgets for p in refs if p.namespace == "team-00" and p.name == "pod-00000")
    )
    again = []
    for _ in range(20):  # after a change on the node: rebuilt, as after every watch event a drain waits on
        key = "team-05/pod-00005"
        src.on_change(kinds["pods"], key, pods[key], pods[key])
        t1 = time.perf_counter()
        src.pods_on("node-hot")
        again.append(time.perf_counter() - t1)
    t2 = time.perf_counter()
    assert src.pods_on("node-hot") is src.pods_on("node-hot")  # unchanged: the same tuple
    hit = (time.perf_counter() - t2) / 2
    print(
        f"\npods_on(100 of 20,000 pods, 320 budgets): first {first * 1000:.2f} ms, rebuilt {sorted(again)[10] * 1000:.2f} ms (median), cached {hit * 1e6:.1f} µs"
    )
    assert first < 0.05 and max(again) < 0.05
    pod0 = by_name(refs)["pod-00000"]
    assert [b.name for b in pod0.budgets] == ["pdb-0"]  # svc-0 matches the expression budget only
    assert (pod0.owner_kind, pod0.uid, pod0.gpus, pod0.grace_period_s) == ("ReplicaSet", "uid-team-00-pod-00000", 1, 30)
    assert src.pods_on("node-none") is None


# ---------------------------------------------------------------------------------- against the drain cluster
@lab
async def test_pods_on_lists_every_kind_with_owner_flags_and_budgets(drain_lab):
    from kubernetes.aio import client

    async with kube_source(drain_lab.kubeconfig) as src, kube_api(drain_lab.kubeconfig) as api:
        assert src.pods_on("drain-a") is None  # nothing listed yet: unknown, not empty
        await src.fetch()
        pods = by_name(src.pods_on("drain-a"))
        truth = {
            p.metadata.name: p
            for p in (
                await client.CoreV1Api(api).list_pod_for_all_namespaces(field_selector="spec.nodeName=drain-a")
            ).items
        }
        assert set(pods) == set(truth)
        assert all(p.uid == truth[p.name].metadata.uid for p in pods.values())

        proxy = next(p for n, p in pods.items() if n.startswith("kube-proxy-"))
        assert proxy.daemonset and (proxy.owner_kind, proxy.owner_name, proxy.namespace) == (
            "DaemonSet",
            "kube-proxy",
            "kube-system",
        )
        mirror = pods["node-exporter-drain-a"]
        assert mirror.mirror and (mirror.owner_kind, mirror.owner_name) == ("Node", "drain-a")
        scratch = next(p for n, p in pods.items() if n.startswith("scratch-"))
        assert scratch.emptydir and scratch.owner_kind == "ReplicaSet" and not scratch.budgets
        shell = pods["debug-shell"]
        assert (shell.owner_kind, shell.owner_name, shell.emptydir, shell.mirror) == ("", "", False, False)
        infer = next(p for n, p in pods.items() if n.startswith("infer-"))
        assert (infer.gpus, infer.grace_period_s, infer.phase, infer.deleting) == (2, 30, "Running", False)
        # its budget selects it by matchExpressions; the same budget in another namespace does not
        assert infer.budgets == (
            BudgetRef(NS, "infer", disruptions_allowed=1, current_healthy=2, desired_healthy=1, expected_pods=2),
        )
        assert all(not p.budgets for p in pods.values() if p is not infer)

        assert src.pods_on("no-such-node") is None and src.node_unschedulable("no-such-node") is None
        assert src.node_unschedulable("spare-1") is False
        ident = src.identity()
        assert ident == f"user lab-user in context lab ({drain_lab.url})"
        assert all(tok not in ident for tok in drain_lab.tokens.values())
    before = KubernetesSource(SiteConfig("lab", kube_context="lab-cordoner"), kubeconfig=drain_lab.kubeconfig)
    assert (
        before.identity() == f"user lab-cordoner-user in context lab-cordoner ({drain_lab.url})"
    )  # read before any connection


@lab
async def test_cordon_with_a_reason_sets_and_clears_the_annotation(drain_lab):
    from kubernetes.aio import client

    async with kube_source(drain_lab.kubeconfig) as src, kube_api(drain_lab.kubeconfig) as api:
        core = client.CoreV1Api(api)
        await src.fetch()
        node = await src.cordon("spare-2", reason="GPU 3 Xid 79; RMA ticket 4711", dry_run=True)
        assert (
            node.unschedulable
            and (await core.read_node("spare-2")).metadata.annotations.get(CORDON_REASON_ANNOTATION) is None
        )
        node = await src.cordon("spare-2", reason="GPU 3 Xid 79; RMA ticket 4711")
        assert node.unschedulable
        read = await core.read_node("spare-2")
        assert (
            read.spec.unschedulable is True
            and read.metadata.annotations[CORDON_REASON_ANNOTATION] == "GPU 3 Xid 79; RMA ticket 4711"
        )
        assert read.metadata.annotations["node.alpha.kubernetes.io/ttl"] == "0"  # the other annotations stay
        await eventually(lambda: src.node_unschedulable("spare-2") is True, timeout_s=3.0)

        node = await src.cordon("spare-2", unschedulable=False)
        assert not node.unschedulable
        read = await core.read_node("spare-2")
        assert not read.spec.unschedulable and CORDON_REASON_ANNOTATION not in read.metadata.annotations
        assert "node.alpha.kubernetes.io/ttl" in read.metadata.annotations
        await eventually(lambda: src.node_unschedulable("spare-2") is False, timeout_s=3.0)


@lab
async def test_eviction_waits_for_the_budget_then_succeeds(drain_lab):
    """web: 2 pods on drain-b, minAvailable 1. The first eviction passes; the second is refused (429) until the
    ReplicaSet's replacement is bound to a spare node and Ready, when the disruption controller allows one again."""
    async with kube_source(drain_lab.kubeconfig) as src:
        await src.fetch()
        await src.cordon("drain-b", reason="drain test")
        web = sorted(n for n in by_name(src.pods_on("drain-b")) if n.startswith("web-"))
        assert len(web) == 2 and all(
            p.budgets[0].disruptions_allowed == 1 for p in src.pods_on("drain-b") if p.name in web
        )
        first, second = web
        await src.evict(NS, first)
        with pytest.raises(EvictionBlocked) as blocked:
            await src.evict(NS, second)
        assert blocked.value.causes[0].startswith("The disruption budget web needs 1 healthy pods and has ")
        assert (blocked.value.namespace, blocked.value.pod) == (NS, second)

        def allowed() -> bool:
            mine = by_name(src.pods_on("drain-b")).get(second)
            return mine is not None and mine.budgets[0].disruptions_allowed >= 1

        took = await timed(eventually(allowed, timeout_s=10.0, interval_s=0.02))
        print(f"\nbudget allows a disruption again {took:.2f}s after the refusal")
        spares = [p for n in ("spare-1", "spare-2") for p in src.pods_on(n) or () if p.name.startswith("web-")]
        assert spares and all(p.phase == "Running" for p in spares)  # the replacement runs on a spare node
        await src.evict(NS, second)
        await until_pods(
            src, lambda: not any(p.name.startswith("web-") for p in src.pods_on("drain-b")), timeout_s=10.0
        )
        await src.cordon("drain-b", unschedulable=False)


@lab
async def test_eviction_denied_by_rbac_is_403_and_a_missing_pod_is_gone(drain_lab):
    async with kube_source(drain_lab.kubeconfig, "lab-cordoner") as src:
        await src.fetch()
        pod = next(p for p in src.pods_on("drain-a") if p.name.startswith("infer-"))
        with pytest.raises(KubeForbidden) as err:
            await src.evict(NS, pod.name)
        assert (err.value.verb, err.value.resource, err.value.group) == ("create", "pods/eviction", "")
        assert f'User "cordoner" cannot create resource "pods/eviction" in API group "" in the namespace "{NS}"' in str(
            err.value
        )
        assert src.pod_uid(NS, pod.name) == pod.uid  # still there
    async with kube_source(drain_lab.kubeconfig) as src:
        with pytest.raises(PodGone) as gone:
            await src.evict(NS, "no-such-pod")
        assert (gone.value.namespace, gone.value.pod) == (NS, "no-such-pod") and "not found" in str(gone.value)


@lab
async def test_pods_changed_resolves_on_a_watch_event(drain_lab):
    from kubernetes.aio import client

    async with kube_source(drain_lab.kubeconfig) as src, kube_api(drain_lab.kubeconfig) as api:
        await src.fetch()
        for _ in range(50):  # once the cluster is quiet, a wait with no change times out: False
            if not await src.pods_changed(0.3):
                break
        else:
            raise AssertionError("the pods never went quiet")
        waiting = asyncio.create_task(src.pods_changed(5.0))
        await asyncio.sleep(0)
        body = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "watched", "namespace": "lab-tests"},
            "spec": {
                "nodeName": "spare-1",
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "c", "image": "busybox:1.36"}],
            },
        }
        t0 = time.perf_counter()
        made = await client.CoreV1Api(api).create_namespaced_pod("lab-tests", body)
        assert await waiting is True
        print(f"\npods_changed resolved {1000 * (time.perf_counter() - t0):.0f} ms after the create")
        assert src.pod_uid("lab-tests", "watched") == made.metadata.uid
        await client.CoreV1Api(api).delete_namespaced_pod("watched", "lab-tests", grace_period_seconds=0)
        await until_pods(src, lambda: src.pod_uid("lab-tests", "watched") is None, timeout_s=3.0)


@lab
async def test_pod_uid_changes_when_its_statefulset_recreates_it(drain_lab):
    from kubernetes.aio import client

    async with kube_source(drain_lab.kubeconfig) as src, kube_api(drain_lab.kubeconfig) as api:
        await src.fetch()
        old = src.pod_uid(NS, "db-0")
        assert old and by_name(src.pods_on("drain-c"))["db-0"].owner_kind == "StatefulSet"
        await src.evict(NS, "db-0")
        # the old pod's DELETED and the new one's ADDED may come in one read of the watch: gone = absent or a new UID
        took = await until_pods(src, lambda: src.pod_uid(NS, "db-0") not in (None, old), timeout_s=10.0)
        new = src.pod_uid(NS, "db-0")
        read = await client.CoreV1Api(api).read_namespaced_pod("db-0", NS)
        assert read.metadata.uid == new != old and read.metadata.deletion_timestamp is None
        assert by_name(src.pods_on(read.spec.node_name))["db-0"].uid == new
        print(f"\ndb-0 recreated with a new UID {took:.2f}s after its eviction")


@lab
async def test_the_grace_period_is_honoured(drain_lab):
    """slow-*: containers that ignore SIGTERM, terminationGracePeriodSeconds 2: the pod goes when its grace period ends;
    an eviction with grace_period_s=1 shortens it."""
    from kubernetes.aio import client

    async with kube_source(drain_lab.kubeconfig) as src, kube_api(drain_lab.kubeconfig) as api:
        await src.fetch()
        slow = sorted(p.name for p in src.pods_on("drain-c") if p.name.startswith("slow-"))
        assert len(slow) == 2 and all(by_name(src.pods_on("drain-c"))[n].grace_period_s == 2 for n in slow)
        default, short = slow
        t0 = time.perf_counter()
        await asyncio.gather(src.evict(NS, default), src.evict(NS, short, grace_period_s=1))
        read = await client.CoreV1Api(api).read_namespaced_pod(default, NS)
        assert read.metadata.deletion_grace_period_seconds == 2 and read.metadata.deletion_timestamp is not None
        assert (await client.CoreV1Api(api).read_namespaced_pod(short, NS)).metadata.deletion_grace_period_seconds == 1
        await until_pods(
            src,
            lambda: all(
                by_name(src.pods_on("drain-c")).get(n) is None or by_name(src.pods_on("drain-c"))[n].deleting
                for n in slow
            ),
            timeout_s=3.0,
        )
        gone: dict[str, float] = {}

        def both_gone() -> bool:
            for n in slow:
                if n not in gone and src.pod_uid(NS, n) is None:
                    gone[n] = time.perf_counter() - t0
            return len(gone) == 2

        await until_pods(src, both_gone, timeout_s=10.0)
        print(f"\ngone after {gone[default]:.2f}s (grace 2 s) and {gone[short]:.2f}s (grace_period_s=1)")
        assert 1.9 <= gone[default] <= 3.5
        assert 0.9 <= gone[short] <= 2.0


@lab
async def test_benchmark_node_has_100_pods_that_take_2s_each(lab_kube):
    """The drain benchmark's cluster: node drain-slow with 100 pods, each terminating in 2 s (their grace period)."""
    cluster = lab_kube.drain(100, 2.0)
    async with kube_source(cluster.kubeconfig) as src:
        await src.fetch()
        slow = [p for p in src.pods_on("drain-slow") if p.name.startswith("slow-drain-")]
        assert (
            len(slow) == 100
            and {p.grace_period_s for p in slow} == {2}
            and all(p.owner_kind == "ReplicaSet" for p in slow)
        )
        t0 = time.perf_counter()
        await src.evict(NS, slow[0].name)
        await until_pods(src, lambda: src.pod_uid(NS, slow[0].name) is None, timeout_s=6.0)
        assert 1.9 <= time.perf_counter() - t0 <= 3.5
