"""Provides tests of the Kubernetes source, and of the lab's fake API server through the official ``kubernetes`` client."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import time
from pathlib import Path

import pytest
import yaml

from sovtui.config import SiteConfig
from sovtui.hub import Hub
from sovtui.model.types import KubeNode
from sovtui.sources.base import AuthError, SourceError, Timeout, Unreachable
from sovtui.sources.kubernetes import EvictionBlocked, KubeForbidden, KubernetesSource
from sovtui.sources.kubernetes.kinds import served_version
from sovtui.sources.kubernetes.projections import (
    parse_time,
    pod_gpus,
    project_event,
    project_node,
    project_workload,
    quantity,
)
from sovtui.sources.registry import build_sources
from tests.lab.kubeapi.seed import bare_gpu_pod
from tests.lab.procs import free_port
from tests.lab.stubs import SilentServer
from tests.lab.waits import eventually, timed

lab = pytest.mark.kubernetes


def site(ctx: str = "lab", timeout_s: float = 5.0) -> SiteConfig:
    return SiteConfig("lab", kube_context=ctx, timeout_s=timeout_s)


@contextlib.asynccontextmanager
async def kube_source(kubeconfig, ctx: str = "lab", timeout_s: float = 5.0):
    src = KubernetesSource(site(ctx, timeout_s), kubeconfig=kubeconfig)
    try:
        yield src
    finally:
        await src.aclose()


@contextlib.asynccontextmanager
async def kube_api(kubeconfig, ctx: str = "lab"):
    """The official asyncio client, configured from the lab's kubeconfig as any user of the library would."""
    from kubernetes.aio import client, config

    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(kubeconfig), context=ctx, client_configuration=cfg, persist_config=False
    )
    async with client.ApiClient(cfg) as api:
        yield api


def node_of(data, name: str) -> KubeNode:
    return next(n for n in data.kube_nodes if n.name == name)


def status_body(exc) -> dict:
    return json.loads(exc.body)


# ---------------------------------------------------------------------------------- pure functions
def test_effective_gpu_request_follows_the_scheduler_rules():
    def c(gpus, **kw):
        return {"name": "c", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}, **kw}

    assert pod_gpus({"spec": {"containers": [c(2), c(1)]}}) == 3
    # an init container runs alone: the pod needs the larger of it and the app containers
    assert pod_gpus({"spec": {"initContainers": [c(4)], "containers": [c(1)]}}) == 4
    # a sidecar (init container that keeps running) adds to the app containers
    assert pod_gpus({"spec": {"initContainers": [c(1, restartPolicy="Always")], "containers": [c(2)]}}) == 3
    assert pod_gpus({"spec": {"containers": [{"name": "cpu", "resources": {"requests": {"cpu": "2"}}}]}}) == 0
    assert [quantity(q) for q in ("8", 2, "1k", "500m", "", None, "bogus")] == [8, 2, 1000, 0, 0, 0, 0]


def test_node_and_event_projection():
    node = project_node(
        {
            "metadata": {
                "name": "n1",
                "labels": {
                    "nvidia.com/gpu.product": "H100",
                    "kubernetes.io/hostname": "n1",
                    "node-role.kubernetes.io/gpu": "",
                },
            },
            "spec": {
                "unschedulable": True,
                "taints": [{"key": "a", "value": "b", "effect": "NoSchedule"}, {"key": "c", "effect": "NoExecute"}],
            },
            "status": {
                "capacity": {"nvidia.com/gpu": "8"},
                "allocatable": {"nvidia.com/gpu": "7"},
                "conditions": [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown"}],
            },
        }
    )
    assert node.ready is None and node.unschedulable
    assert node.taints == ("a=b:NoSchedule", "c:NoExecute")
    assert dict(node.labels) == {"nvidia.com/gpu.product": "H100", "node-role.kubernetes.io/gpu": ""}
    assert (node.gpu_capacity, node.gpu_allocatable) == (8, 7)
    # new-style events carry their last time in series, old-style in lastTimestamp
    ev = project_event(
        {
            "metadata": {"name": "e"},
            "type": "Warning",
            "series": {"count": 4, "lastObservedTime": "2024-01-01T00:00:10.000000Z"},
            "eventTime": "2024-01-01T00:00:00.000000Z",
        }
    )
    assert (ev.count, ev.last_seen) == (4, parse_time("2024-01-01T00:00:10Z"))
    ev = project_event(
        {"metadata": {"name": "e"}, "count": 2, "lastTimestamp": "2024-01-01T00:01:00Z", "eventTime": None}
    )
    assert (ev.count, ev.last_seen) == (2, parse_time("2024-01-01T00:01:00Z"))


def test_workload_states_and_kueue_version_as_kueue_reads_them():
    def wl(*conds, active=None, **status):
        spec = {
            "queueName": "q",
            "podSets": [
                {
                    "name": "a",
                    "count": 3,
                    "template": {
                        "spec": {"containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": "2"}}}]}
                    },
                },
                {"name": "b", "template": {"spec": {"containers": [{"name": "c"}]}}},
            ],
        }
        if active is not None:
            spec["active"] = active
        conditions = [
            {"type": t, "status": s, "reason": r, "message": m, "lastTransitionTime": "2024-01-01T01:00:00Z"}
            for t, s, r, m in conds
        ]
        return project_workload(
            {
                "metadata": {"namespace": "ns", "name": "w", "creationTimestamp": "2024-01-01T00:00:00Z"},
                "spec": spec,
                "status": {"conditions": conditions, **status},
            }
        )

    pending = wl(("QuotaReserved", "False", "Pending", "couldn't assign flavors"))
    assert (pending.state, pending.gpus, pending.local_queue, pending.reason, pending.message) == (
        "pending",
        6,
        "ns/q",
        "Pending",
        "couldn't assign flavors",
    )
    assert pending.queued == parse_time("2024-01-01T00:00:00Z")
    # evicted and put back: it waits since its requeue
    assert wl(("Evicted", "True", "Preempted", ""), ("Requeued", "True", "Preempted", "")).queued == parse_time(
        "2024-01-01T01:00:00Z"
    )
    assert wl(("QuotaReserved", "True", "QuotaReserved", "")).state == "reserved"  # admission checks still to pass
    admitted = wl(("QuotaReserved", "True", "", ""), ("Admitted", "True", "", ""), admission={"clusterQueue": "cq"})
    assert (admitted.state, admitted.cluster_queue, admitted.message) == ("admitted", "cq", "")
    assert wl(("Admitted", "True", "", ""), ("Finished", "True", "Succeeded", "")).state == "finished"
    assert wl(active=False).state == "inactive"

    def apis(*versions, preferred):
        return {
            "groups": [
                {"name": "apps"},
                {
                    "name": "kueue.x-k8s.io",
                    "versions": [{"version": v} for v in versions],
                    "preferredVersion": {"version": preferred},
                },
            ]
        }

    assert (
        served_version(apis("v1beta2", "v1beta1", preferred="v1beta2"), "kueue.x-k8s.io", ("v1beta2", "v1beta1"))
        == "v1beta2"
    )
    assert (
        served_version(apis("v1alpha9", "v1beta1", preferred="v1alpha9"), "kueue.x-k8s.io", ("v1beta2", "v1beta1"))
        == "v1beta1"
    )
    assert served_version({"groups": [{"name": "apps"}]}, "kueue.x-k8s.io", ("v1beta1",)) == ""


def test_registry_adds_the_source_only_with_a_context():
    assert not [s for s in build_sources(SiteConfig("x")) if s.kind == "kubernetes"]
    sources = [s for s in build_sources(SiteConfig("x", kube_context="prod")) if s.kind == "kubernetes"]
    assert len(sources) == 1 and sources[0].context == "prod" and sources[0].name == "kubernetes"


# ---------------------------------------------------------------------------------- the fake, through the official client
@lab
async def test_official_client_reads_every_resource_into_its_models(lab_kube):
    """The generated (pydantic, strict) models accept what the fake serves: shapes, required fields, types."""
    from kubernetes.aio import client

    truth = lab_kube.truth
    async with kube_api(lab_kube.kubeconfig) as api:
        core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
        assert (await client.VersionApi(api).get_code()).git_version.startswith("v1.")
        assert (await client.CoreApi(api).get_api_versions()).versions == ["v1"]
        groups = {g.name for g in (await client.ApisApi(api).get_api_versions()).groups}
        assert {"apps", "batch", "policy", "events.k8s.io"} <= groups
        core_resources = {r.name for r in (await core.get_api_resources()).resources}
        assert {"nodes", "pods", "pods/eviction", "pods/status", "events"} <= core_resources

        nodes = await core.list_node()
        assert int(nodes.metadata.resource_version) > 0
        assert {n.metadata.name for n in nodes.items} == set(truth.nodes)
        a01 = next(n for n in nodes.items if n.metadata.name == "gpu-a-01")
        assert a01.status.allocatable["nvidia.com/gpu"] == "8"
        assert a01.metadata.labels["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        a03 = next(n for n in nodes.items if n.metadata.name == "gpu-a-03")
        assert a03.spec.unschedulable and a03.spec.taints[0].key == "node.kubernetes.io/unschedulable"

        pods = await core.list_pod_for_all_namespaces()
        assert len(pods.items) == truth.pods_total
        mirror = [p for p in pods.items if "kubernetes.io/config.mirror" in (p.metadata.annotations or {})]
        assert {f"{p.metadata.namespace}/{p.metadata.name}" for p in mirror} == truth.mirror_pods
        assert all(p.metadata.owner_references[0].kind == "Node" for p in mirror)
        ds_pods = [
            p for p in pods.items if p.metadata.owner_references and p.metadata.owner_references[0].kind == "DaemonSet"
        ]
        assert {f"{p.metadata.namespace}/{p.metadata.name}" for p in ds_pods} == truth.daemonset_pods
        assert len((await core.list_namespaced_pod("ml-serving")).items) == 5

        assert {d.metadata.name for d in (await apps.list_deployment_for_all_namespaces()).items} == {
            "coredns",
            "vllm",
            "embeddings",
        }
        assert {d.metadata.name for d in (await apps.list_daemon_set_for_all_namespaces()).items} >= {
            "nvidia-dcgm-exporter",
            "nvidia-device-plugin-daemonset",
        }
        rs = (await apps.list_replica_set_for_all_namespaces()).items
        assert all(r.metadata.owner_references[0].kind == "Deployment" for r in rs)
        jobs = {j.metadata.name: j for j in (await client.BatchV1Api(api).list_job_for_all_namespaces()).items}
        assert jobs["eval-sweep"].status.succeeded == 6 and jobs["eval-sweep"].status.conditions
        pdbs = {
            p.metadata.name: p
            for p in (await client.PolicyV1Api(api).list_pod_disruption_budget_for_all_namespaces()).items
        }
        assert pdbs["vllm"].status.disruptions_allowed == 0 and pdbs["embeddings"].status.disruptions_allowed == 1
        events = (await core.list_event_for_all_namespaces()).items
        assert sum(1 for e in events if e.type == "Warning") == truth.warning_events
        # events.k8s.io/v1 serves the same events in its schema (the scheduler's have eventTime, so the model takes them)
        new = (
            await client.EventsV1Api(api).list_event_for_all_namespaces(field_selector="reason=FailedScheduling")
        ).items
        assert len(new) == 3 and all(e.event_time and e.regarding.kind == "Pod" and e.note for e in new)


@lab
def test_the_synchronous_client_reads_it_too(lab_kube):
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=str(lab_kube.kubeconfig), context="lab")
    try:
        names = {n.metadata.name for n in client.CoreV1Api(api).list_node(_request_timeout=5).items}
        assert names == set(lab_kube.truth.nodes)
    finally:
        api.close()


# ---------------------------------------------------------------------------------- the source against the truth
@lab
async def test_fetch_gives_each_node_its_gpu_accounting(lab_kube):
    truth = lab_kube.truth
    async with kube_source(lab_kube.kubeconfig) as src:
        data = await src.fetch()
    assert data.version == "v1.31.4" and data.notes == ()
    assert [n.name for n in data.kube_nodes] == sorted(truth.nodes)
    for node in data.kube_nodes:
        want = truth.nodes[node.name]
        assert node.ready is want.ready, node.name
        assert node.unschedulable is want.unschedulable, node.name
        assert set(node.taints) == want.taints, node.name
        assert node.gpu_product == want.gpu_product
        assert (node.gpu_capacity, node.gpu_allocatable, node.gpu_requested) == (
            want.gpu_capacity,
            want.gpu_allocatable,
            want.gpu_requested,
        ), node.name
        assert dict(node.pods_with_gpus) == want.pods, node.name
    # the static pod's mirror holds a GPU too; the NotReady node still has its pod's GPUs allocated
    assert ("kube-system/gpu-healthcheck-gpu-b-01", 1) in node_of(data, "gpu-b-01").pods_with_gpus
    assert node_of(data, "gpu-b-04").ready is None and node_of(data, "gpu-b-04").gpu_requested == 4
    assert node_of(data, "gpu-b-02").gpu_free == 3  # 7 allocatable (one GPU unhealthy), 4 used


@lab
async def test_queues_are_pending_gpu_pods_per_namespace(lab_kube):
    truth = lab_kube.truth
    async with kube_source(lab_kube.kubeconfig) as src:
        data = await src.fetch()
        pending = src.pending_pods()
    queues = {q.name: q for q in data.queues if q.system == "kubernetes"}
    assert {ns: (q.pending_jobs, q.pending_gpus) for ns, q in queues.items() if q.pending_jobs} == truth.pending
    assert {ns: q.running_jobs for ns, q in queues.items() if q.running_jobs} == truth.running
    assert {q.system for q in data.queues} == {"kubernetes", "kueue"}  # the main cluster has Kueue too (below)
    since_start = time.time() - lab_kube.main.started_at
    assert 2600 < queues["research"].oldest_pending_s - since_start < 2800  # created 45 min before the server started
    assert queues["ml-serving"].oldest_pending_s is None
    # the scheduler's own words for why they wait
    assert all("Insufficient nvidia.com/gpu" in p.scheduling for p in pending if p.namespace == "research")


@lab
async def test_selectors_and_pages_are_applied_by_the_server(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    truth = lab_kube.truth
    async with kube_api(lab_kube.kubeconfig) as api:
        core = client.CoreV1Api(api)
        everything = (await core.list_pod_for_all_namespaces()).items
        all_events = (await core.list_event_for_all_namespaces()).items

        def names(items):
            return sorted(f"{p.metadata.namespace}/{p.metadata.name}" for p in items)

        labels = lambda p: p.metadata.labels or {}  # noqa: E731
        for selector, keep in (
            ("app=vllm", lambda p: labels(p).get("app") == "vllm"),
            ("app!=vllm", lambda p: labels(p).get("app") != "vllm"),
            ("app in (vllm, embeddings)", lambda p: labels(p).get("app") in ("vllm", "embeddings")),
            ("app notin (vllm,embeddings)", lambda p: labels(p).get("app") not in ("vllm", "embeddings")),
            ("model", lambda p: "model" in labels(p)),
            ("!model", lambda p: "model" not in labels(p)),
            (
                "app=vllm,model=llama-3-70b",
                lambda p: labels(p).get("app") == "vllm" and labels(p).get("model") == "llama-3-70b",
            ),
        ):
            got = (await core.list_pod_for_all_namespaces(label_selector=selector)).items
            assert names(got) == names([p for p in everything if keep(p)]), selector
        for selector, keep in (
            ("spec.nodeName=gpu-a-01", lambda p: p.spec.node_name == "gpu-a-01"),
            ("status.phase=Succeeded", lambda p: p.status.phase == "Succeeded"),
            ("metadata.namespace=ml-serving", lambda p: p.metadata.namespace == "ml-serving"),
            ("metadata.name==notebook-alice", lambda p: p.metadata.name == "notebook-alice"),
            (
                "spec.nodeName=gpu-b-03,status.phase!=Succeeded",
                lambda p: p.spec.node_name == "gpu-b-03" and p.status.phase != "Succeeded",
            ),
        ):
            got = (await core.list_pod_for_all_namespaces(field_selector=selector)).items
            assert names(got) == names([p for p in everything if keep(p)]) and got, selector
        with pytest.raises(ApiException) as err:
            await core.list_pod_for_all_namespaces(field_selector="spec.foo=bar")
        assert err.value.status == 400 and status_body(err.value)["message"] == "field label not supported: spec.foo"
        with pytest.raises(ApiException) as err:
            await core.list_pod_for_all_namespaces(label_selector="app in vllm")
        assert err.value.status == 400 and status_body(err.value)["reason"] == "BadRequest"

        # limit/continue: pages of one consistent snapshot
        seen, token, pages = [], None, 0
        while True:
            page = await core.list_pod_for_all_namespaces(limit=7, _continue=token)
            pages += 1
            seen += page.items
            token = page.metadata._continue
            if not token:
                break
            assert page.metadata.remaining_item_count == len(everything) - len(seen)
        assert names(seen) == names(everything) and pages == -(-len(everything) // 7)

    # the source asks the server to leave out finished pods and Normal events: count what the server sent it
    lab_kube.main.reset_stats()
    async with kube_source(lab_kube.kubeconfig) as src:
        await src.fetch()
    sent = lab_kube.main.stats()["items"]
    assert sent["pods"] == truth.pods_total - truth.pods_terminal < len(everything)
    assert sent["events"] == sum(1 for e in all_events if e.type == "Warning") < len(all_events)


# ---------------------------------------------------------------------------------- watch
@lab
async def test_watch_picks_up_a_cordon_within_a_second(lab_kube):
    from kubernetes.aio import client

    async with kube_source(lab_kube.kubeconfig) as src, kube_api(lab_kube.kubeconfig) as api:
        assert not node_of(await src.fetch(), "gpu-b-03").unschedulable
        await client.CoreV1Api(api).patch_node("gpu-b-03", {"spec": {"unschedulable": True}})

        async def cordoned():
            node = node_of(await src.fetch(), "gpu-b-03")
            return node.unschedulable and "node.kubernetes.io/unschedulable:NoSchedule" in node.taints

        took = await timed(eventually(cordoned, timeout_s=1.0, interval_s=0.02))
        print(f"\ncordon seen by the source after {took * 1000:.0f} ms")
        stats = src.informer_stats()["nodes"]
        assert stats.lists == 1 and stats.events >= 1  # one list at start, then only changes

        # and back, through the source's own action (strategic merge patch, as kubectl uncordon)
        node = await src.cordon("gpu-b-03", unschedulable=False)
        assert node.unschedulable is False
        await eventually(lambda: _not_cordoned(src, "gpu-b-03"), timeout_s=1.0)


async def _not_cordoned(src, name):
    node = node_of(await src.fetch(), name)
    return not node.unschedulable and not any(t.startswith("node.kubernetes.io/unschedulable") for t in node.taints)


@lab
async def test_watch_resumes_after_a_dropped_connection_without_relisting(lab_kube):
    async with kube_source(lab_kube.kubeconfig) as src:
        await src.fetch()
        assert lab_kube.main.drop_watches() >= len(src.kinds)
        await src.cordon("gpu-b-03")
        await eventually(lambda: _cordoned(src, "gpu-b-03"), timeout_s=2.0)
        stats = src.informer_stats()["nodes"]
        assert stats.resumes >= 1 and stats.lists == 1 and stats.relists == 0
        await src.cordon("gpu-b-03", unschedulable=False)
        await eventually(lambda: _not_cordoned(src, "gpu-b-03"), timeout_s=2.0)


async def _cordoned(src, name):
    return node_of(await src.fetch(), name).unschedulable


@lab
async def test_410_expired_forces_a_relist(lab_kube):
    from kubernetes.aio import client, watch
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_source(lab_kube.kubeconfig) as src, kube_api(lab_kube.kubeconfig) as api:
        await src.fetch()
        old_rv = src._informers["nodes"].resource_version
        # the server restarts: watches drop and wait; meanwhile a node changes and etcd compacts its history
        lab_kube.main.drop_watches(hold_s=0.5)
        await src.cordon("gpu-b-03")
        lab_kube.main.compact()
        await eventually(lambda: _cordoned(src, "gpu-b-03"), timeout_s=3.0)
        stats = src.informer_stats()["nodes"]
        assert stats.expired >= 1 and stats.relists >= 1 and stats.lists == 2
        await src.cordon("gpu-b-03", unschedulable=False)
        await eventually(lambda: _not_cordoned(src, "gpu-b-03"), timeout_s=2.0)
        assert lab_kube.main.stats()["expired"].get("nodes", 0) >= 1

        # the real Status in the stream, as the official watch helper sees it (and turns into an ApiException)
        w = watch.Watch()
        with pytest.raises(ApiException) as err:
            async for _ in w.stream(client.CoreV1Api(api).list_node, resource_version=old_rv, timeout_seconds=5):
                pass
        await w.close()
        assert err.value.status == 410 and str(err.value.reason).startswith("Expired: too old resource version")
        resp = await client.CoreV1Api(api).list_node_without_preload_content(
            watch=True, resource_version=old_rv, timeout_seconds=5
        )
        line = json.loads(await resp.content.readline())
        resp.release()
        assert resp.status == 200 and line["type"] == "ERROR"
        assert {k: v for k, v in line["object"].items() if k != "message"} == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "reason": "Expired",
            "code": 410,
        }


@lab
async def test_official_watch_helper_sees_modified_and_bookmarks(lab_kube):
    from kubernetes.aio import client, watch

    async with kube_api(lab_kube.kubeconfig) as api:
        core = client.CoreV1Api(api)
        rv = (await core.list_node()).metadata.resource_version
        seen: list[tuple[str, str]] = []
        w = watch.Watch()

        async def consume():
            async for event in w.stream(
                core.list_node, resource_version=rv, allow_watch_bookmarks=True, timeout_seconds=3
            ):
                obj = event["object"]
                name = obj.metadata.name if hasattr(obj, "metadata") else ""
                seen.append((event["type"], name))
                if any(t == "BOOKMARK" for t, _ in seen) and ("MODIFIED", "gpu-b-03") in seen:
                    w.stop()

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await core.patch_node("gpu-b-03", {"metadata": {"labels": {"lab/touched": "yes"}}})
        await asyncio.wait_for(task, 5)
        await w.close()
        await core.patch_node("gpu-b-03", {"metadata": {"labels": {"lab/touched": None}}})
    assert ("MODIFIED", "gpu-b-03") in seen and any(t == "BOOKMARK" for t, _ in seen)
    assert int(w.resource_version) > int(rv)


# ---------------------------------------------------------------------------------- errors
@lab
async def test_rbac_denial_is_a_typed_error_naming_verb_and_resource(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_source(lab_kube.kubeconfig, "lab-viewer") as src:
        with pytest.raises(KubeForbidden) as err:
            await src.fetch()
    assert (err.value.verb, err.value.resource, err.value.group) == ("list", "nodes", "")
    assert 'User "viewer" cannot list resource "nodes"' in str(err.value) and err.value.hint

    async with kube_source(lab_kube.kubeconfig, "lab-lister") as src:
        data = await src.fetch()  # listing pods is allowed, watching is not: pods fail alone, nodes still show
        pods = next(p for p in data.parts if p.name == "pods")
        assert (
            not pods.ok
            and pods.error
            == 'forbidden: User "lister" cannot watch resource "pods" in API group "" at the cluster scope'
        )
        assert data.kube_nodes and all(n.pods_unknown == "forbidden" for n in data.kube_nodes)
        assert src.pods_on(data.kube_nodes[0].name) is None  # a pod cache that is not watched is not "these pods"

    async with kube_source(lab_kube.kubeconfig, "lab-noevents") as src:
        data = await src.fetch()  # events are a part: failing alone, not the source
    assert data.kube_nodes and data.notes == ()
    failing = {p.name: p.error for p in data.parts if not p.ok}
    assert set(failing) == {"events", "kueue"}  # the user reads neither events nor Kueue's kinds
    assert (
        failing["events"]
        == 'forbidden: User "noevents" cannot list resource "events" in API group "" at the cluster scope'
    )
    assert all(n.pods_known for n in data.kube_nodes)

    async with kube_api(lab_kube.kubeconfig, "lab-viewer") as api:
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).list_node()
        assert err.value.status == 403
        assert status_body(err.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'nodes is forbidden: User "viewer" cannot list resource "nodes" in API group "" at the cluster scope',
            "reason": "Forbidden",
            "details": {"kind": "nodes"},
            "code": 403,
        }
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).create_namespaced_pod_eviction(
                "notebook-alice",
                "research",
                client.V1Eviction(metadata=client.V1ObjectMeta(name="notebook-alice", namespace="research")),
            )
        assert (
            status_body(err.value)["message"]
            == 'pods "notebook-alice" is forbidden: User "viewer" cannot create resource "pods/eviction" in API group "" in the namespace "research"'
        )


@lab
async def test_bad_token_is_401_and_exec_plugin_works(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_source(lab_kube.kubeconfig, "lab-badtoken") as src:
        with pytest.raises(AuthError) as err:
            await src.fetch()
    assert (
        not isinstance(err.value, KubeForbidden)
        and "unauthorized" in str(err.value)
        and "lab-badtoken" in str(err.value)
    )
    async with kube_api(lab_kube.kubeconfig, "lab-badtoken") as api:
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).list_node()
    assert status_body(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    async with kube_source(lab_kube.kubeconfig, "lab-exec") as src:  # token from an exec credential plugin
        assert len((await src.fetch()).kube_nodes) == len(lab_kube.truth.nodes)


def _kubeconfig(path: Path, server: str, *, ca: Path | None = None) -> Path:
    cluster: dict = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "x",
        "clusters": [{"name": "x", "cluster": cluster}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def test_unreachable_timeout_and_kubeconfig_errors_are_typed(tmp_path):
    closed = _kubeconfig(tmp_path / "closed", f"https://127.0.0.1:{free_port()}")
    async with kube_source(closed, "x", timeout_s=2.0) as src:
        with pytest.raises(Unreachable) as err:
            await src.fetch()
    assert "cannot connect" in str(err.value)

    with SilentServer() as silent:
        async with kube_source(_kubeconfig(tmp_path / "silent", silent.url), "x", timeout_s=1.0) as src:
            t0 = time.perf_counter()
            with pytest.raises(Timeout):
                await src.fetch()
            assert time.perf_counter() - t0 < 3.0

    with pytest.raises(SourceError, match="kubeconfig"):
        async with kube_source(tmp_path / "missing", "x") as src:
            await src.fetch()
    with pytest.raises(SourceError, match="kubeconfig"):
        async with kube_source(closed, "no-such-context") as src:
            await src.fetch()


@lab
async def test_a_certificate_from_another_ca_is_refused(lab_kube, tmp_path):
    from tests.lab.kubeapi.lab import make_tls

    other_ca, _, _ = make_tls(tmp_path / "other")
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", lab_kube.url, ca=other_ca)
    async with kube_source(kubeconfig, "x") as src:
        with pytest.raises(Unreachable) as err:
            await src.fetch()
    assert "TLS" in str(err.value)


# ---------------------------------------------------------------------------------- writes
@lab
async def test_eviction_honours_the_disruption_budget(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_api(lab_kube.kubeconfig) as api, kube_source(lab_kube.kubeconfig) as src:
        core, policy = client.CoreV1Api(api), client.PolicyV1Api(api)
        pods = {p.metadata.name: p for p in (await core.list_namespaced_pod("ml-serving")).items}
        vllm = next(n for n in pods if n.startswith("vllm-"))
        emb = sorted(n for n in pods if n.startswith("embeddings-"))[0]

        def eviction(name):
            return client.V1Eviction(
                api_version="policy/v1",
                kind="Eviction",
                metadata=client.V1ObjectMeta(name=name, namespace="ml-serving"),
            )

        with pytest.raises(ApiException) as err:
            await core.create_namespaced_pod_eviction(vllm, "ml-serving", eviction(vllm))
        assert err.value.status == 429
        assert status_body(err.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Cannot evict pod as it would violate the pod's disruption budget.",
            "reason": "TooManyRequests",
            "details": {
                "causes": [
                    {
                        "reason": "DisruptionBudget",
                        "message": "The disruption budget vllm needs 3 healthy pods and has 3 currently",
                    }
                ]
            },
            "code": 429,
        }
        with pytest.raises(EvictionBlocked) as blocked:
            await src.evict("ml-serving", vllm)
        assert blocked.value.causes == ("The disruption budget vllm needs 3 healthy pods and has 3 currently",)

        # a dry run passes the budget check and changes nothing
        await src.fetch()
        await src.evict("ml-serving", emb, dry_run=True)
        still = await core.read_namespaced_pod(emb, "ml-serving")
        assert still.metadata.deletion_timestamp is None
        assert (
            await policy.read_namespaced_pod_disruption_budget("embeddings", "ml-serving")
        ).status.disruptions_allowed == 1

        # the real one: the pod goes, its ReplicaSet replaces it, the budget recovers
        await src.evict("ml-serving", emb)
        gone = lambda: not any(k == f"ml-serving/{emb}" for n in src.kube_nodes() for k, _ in n.pods_with_gpus)  # noqa: E731
        await eventually(gone, timeout_s=3.0)

        async def replaced():
            names = {
                p.metadata.name
                for p in (await core.list_namespaced_pod("ml-serving", label_selector="app=embeddings")).items
                if p.status.phase == "Running"
            }
            pdb = await policy.read_namespaced_pod_disruption_budget("embeddings", "ml-serving")
            return len(names) == 2 and emb not in names and pdb.status.disruptions_allowed == 1

        await eventually(replaced, timeout_s=5.0)


@lab
async def test_dry_run_validates_but_does_not_persist(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_api(lab_kube.kubeconfig) as api, kube_source(lab_kube.kubeconfig) as src:
        core = client.CoreV1Api(api)
        await src.fetch()
        before = await core.read_node("gpu-b-03")
        events_before = src.informer_stats()["nodes"].events
        answer = await core.patch_node("gpu-b-03", {"spec": {"unschedulable": True}}, dry_run="All")
        assert answer.spec.unschedulable is True
        node = await src.cordon("gpu-b-03", dry_run=True)
        assert node.unschedulable is True
        await asyncio.sleep(0.3)
        after = await core.read_node("gpu-b-03")
        assert not after.spec.unschedulable and after.metadata.resource_version == before.metadata.resource_version
        assert (
            src.informer_stats()["nodes"].events == events_before
            and not node_of(await src.fetch(), "gpu-b-03").unschedulable
        )

        # validated all the same
        with pytest.raises(ApiException) as err:
            await core.patch_node("gpu-b-03", {"spec": {"taints": [{"key": "x", "effect": "Bogus"}]}}, dry_run="All")
        body = status_body(err.value)
        assert err.value.status == 422 and body["reason"] == "Invalid"
        assert body["details"]["causes"] == [
            {
                "reason": "FieldValueNotSupported",
                "message": 'Unsupported value: "Bogus": supported values: "NoExecute", "NoSchedule", "PreferNoSchedule"',
                "field": "spec.taints[0].effect",
            }
        ]
        dep = client.V1Deployment.from_dict(_deployment("dry", image="busybox:1"))
        made = await client.AppsV1Api(api).create_namespaced_deployment("lab-tests", dep, dry_run="All")
        assert made.metadata.name == "dry"
        with pytest.raises(ApiException) as err:
            await client.AppsV1Api(api).read_namespaced_deployment("dry", "lab-tests")
        assert err.value.status == 404 and status_body(err.value)["message"] == 'deployments.apps "dry" not found'


@lab
async def test_patch_flavours_and_a_kubelet_status_update(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_api(lab_kube.kubeconfig) as api, kube_source(lab_kube.kubeconfig) as src:
        core = client.CoreV1Api(api)
        await src.fetch()
        # JSON merge patch replaces the taint list; a JSON patch takes it away again ("test" guards it)
        await core.patch_node(
            "gpu-b-03",
            {"spec": {"taints": [{"key": "lab/maintenance", "value": "disk", "effect": "NoSchedule"}]}},
            _content_type="application/merge-patch+json",
        )
        await eventually(
            lambda: "lab/maintenance=disk:NoSchedule" in node_of_cached(src, "gpu-b-03").taints, timeout_s=1.0
        )
        with pytest.raises(ApiException) as err:
            await core.patch_node(
                "gpu-b-03",
                [
                    {"op": "test", "path": "/spec/taints/0/key", "value": "other"},
                    {"op": "remove", "path": "/spec/taints"},
                ],
            )
        assert err.value.status == 422
        await core.patch_node(
            "gpu-b-03",
            [
                {"op": "test", "path": "/spec/taints/0/key", "value": "lab/maintenance"},
                {"op": "remove", "path": "/spec/taints"},
            ],
        )
        await eventually(lambda: not node_of_cached(src, "gpu-b-03").taints, timeout_s=1.0)
        # strategic merge patch merges conditions by type: the kubelet reports NotReady, the others stay
        await core.patch_node_status(
            "gpu-b-03",
            {
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "KubeletNotReady",
                            "message": "container runtime is down",
                        }
                    ]
                }
            },
        )
        await eventually(lambda: node_of_cached(src, "gpu-b-03").ready is False, timeout_s=1.0)
        conditions = {c[0]: c[1:] for c in node_of_cached(src, "gpu-b-03").conditions}
        assert (
            conditions["Ready"][:2] == ("False", "KubeletNotReady")
            and conditions["MemoryPressure"][0] == "False"
            and len(conditions) == 4
        )
        await core.patch_node_status(
            "gpu-b-03",
            {
                "status": {
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True",
                            "reason": "KubeletReady",
                            "message": "kubelet is posting ready status",
                        }
                    ]
                }
            },
        )
        await eventually(lambda: node_of_cached(src, "gpu-b-03").ready is True, timeout_s=1.0)


def node_of_cached(src: KubernetesSource, name: str) -> KubeNode:
    return next(n for n in src.kube_nodes() if n.name == name)


@lab
async def test_a_finished_pod_leaves_the_cache_and_frees_its_gpus(lab_kube):
    from kubernetes.aio import client

    async with kube_api(lab_kube.kubeconfig) as api, kube_source(lab_kube.kubeconfig) as src:
        core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
        before = node_of(await src.fetch(), "gpu-b-02")
        assert ("ml-train/bert-train-t3p8v", 4) in before.pods_with_gpus
        # the kubelet reports the pod done; the source's watch (status.phase!=Succeeded) gets a DELETED
        await core.patch_namespaced_pod_status("bert-train-t3p8v", "ml-train", {"status": {"phase": "Succeeded"}})
        await eventually(
            lambda: node_of_cached(src, "gpu-b-02").gpu_requested == before.gpu_requested - 4, timeout_s=1.0
        )
        assert "ml-train/bert-train-t3p8v" not in src._informers["pods"].items
        assert (await core.read_namespaced_pod("bert-train-t3p8v", "ml-train")).status.phase == "Succeeded"

        async def complete():
            job = await batch.read_namespaced_job_status("bert-train", "ml-train")
            return any(c.type == "Complete" and c.status == "True" for c in job.status.conditions or ())

        await eventually(complete, timeout_s=2.0)
        await eventually(
            lambda: any(j.name == "bert-train" and j.state == "complete" for j in src.workloads().jobs), timeout_s=1.0
        )


def _warning(client, namespace: str, involved, kind: str, reason: str, message: str, *, host: str, count: int = 1):
    """A Warning as the kubelet's core/v1 recorder writes it: source, first/lastTimestamp and count, no eventTime."""
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    meta = involved.metadata
    ref = client.V1ObjectReference(
        api_version="v1",
        kind=kind,
        name=meta.name,
        namespace=meta.namespace,
        uid=meta.uid,
        resource_version=meta.resource_version,
    )
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{meta.name}.{os.urandom(8).hex()}", namespace=namespace),
        involved_object=ref,
        reason=reason,
        message=message,
        type="Warning",
        source=client.V1EventSource(component="kubelet", host=host),
        first_timestamp=now - dt.timedelta(seconds=count * 10),
        last_timestamp=now,
        count=count,
        reporting_component="kubelet",
        reporting_instance=host,
    )


@lab
async def test_a_gpu_pod_bound_then_deleted_shows_and_leaves_its_node(lab_kube):
    from kubernetes.aio import client

    def running(data) -> int:
        return next((q.running_jobs for q in data.queues if q.name == "lab-tests"), 0)

    async with kube_api(lab_kube.kubeconfig) as api, kube_source(lab_kube.kubeconfig) as src:
        core = client.CoreV1Api(api)
        first = await src.fetch()
        before = node_of(first, "gpu-b-03")
        assert not any(k.startswith("lab-tests/") for k, _ in before.pods_with_gpus)
        await core.create_namespaced_pod("lab-tests", bare_gpu_pod("cuda-check", "gpu-b-03", 2))
        try:

            async def shown():
                data = await src.fetch()
                node = node_of(data, "gpu-b-03")
                return (
                    ("lab-tests/cuda-check", 2) in node.pods_with_gpus
                    and node.gpu_requested == before.gpu_requested + 2
                    and running(data) == running(first) + 1
                )

            took = await timed(eventually(shown, timeout_s=3.0, interval_s=0.02))
            print(f"\nGPU pod on its node after {took * 1000:.0f} ms")
            # the kubelet starts it: a MODIFIED that changes nothing the node shows
            await eventually(
                lambda: src._informers["pods"].items["lab-tests/cuda-check"].phase == "Running", timeout_s=3.0
            )
            assert ("lab-tests/cuda-check", 2) in node_of(await src.fetch(), "gpu-b-03").pods_with_gpus
        finally:
            await core.delete_namespaced_pod("cuda-check", "lab-tests")

        async def gone():
            data = await src.fetch()
            node = node_of(data, "gpu-b-03")
            return (
                node.pods_with_gpus == before.pods_with_gpus
                and node.gpu_requested == before.gpu_requested
                and running(data) == running(first)
            )

        took = await timed(eventually(gone, timeout_s=3.0, interval_s=0.02))
        print(f"deleted GPU pod off its node after {took * 1000:.0f} ms")
        last = await src.fetch()
        assert not any(k == "lab-tests/cuda-check" for n in last.kube_nodes for k, _ in n.pods_with_gpus)
        # only the node the pod was on was rebuilt; the others are the very objects of the first poll
        assert node_of(last, "gpu-b-03") == before and all(
            a is b for a, b in zip(first.kube_nodes, last.kube_nodes, strict=True) if a.name != "gpu-b-03"
        )


@lab
async def test_node_events_are_warnings_about_a_node_or_a_pod_on_it(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_api(lab_kube.kubeconfig) as api, kube_source(lab_kube.kubeconfig) as src:
        core = client.CoreV1Api(api)
        data = await src.fetch()
        # the seed's Warnings: a readiness probe failing on a vLLM pod on gpu-a-03; scheduling failures of unbound pods
        assert [(e.node, e.source, e.kind, e.type, e.reason, e.count) for e in data.node_events] == [
            ("gpu-a-03", "kubernetes", "Pod", "Warning", "Unhealthy", 3)
        ]
        vllm = data.node_events[0]
        assert (
            vllm.object.startswith("ml-serving/vllm-")
            and vllm.object.endswith("-b4kzt")
            and vllm.message.startswith("Readiness probe failed")
        )
        assert 20 < lab_kube.main.started_at - vllm.last_seen < 60  # last seen 30 s before the server started
        again = await src.fetch()
        assert again.node_events is data.node_events  # nothing changed: nothing rebuilt

        # a pod that no event is about changes: still nothing rebuilt
        seen = src.informer_stats()["pods"].events
        await core.patch_namespaced_pod("notebook-alice", "research", {"metadata": {"labels": {"lab/touched": "yes"}}})
        await eventually(lambda: src.informer_stats()["pods"].events > seen, timeout_s=2.0)
        assert (await src.fetch()).node_events is data.node_events
        await core.patch_namespaced_pod("notebook-alice", "research", {"metadata": {"labels": {"lab/touched": None}}})

        made: list[tuple[str, str]] = []
        try:
            await core.create_namespaced_pod("lab-tests", bare_gpu_pod("flaky", "gpu-b-03", 1))
            await eventually(lambda: "lab-tests/flaky" in src._informers["pods"].items, timeout_s=2.0)
            pod = await core.read_namespaced_pod("flaky", "lab-tests")
            node = await core.read_node("gpu-b-03")
            # the kubelet's recorder puts events about the (cluster-scoped) node in "default", about a pod in its namespace
            node_ev = await core.create_namespaced_event(
                "default",
                _warning(
                    client,
                    "default",
                    node,
                    "Node",
                    "SystemOOM",
                    "System OOM encountered, victim process: python3, pid: 4821",
                    host="gpu-b-03",
                    count=2,
                ),
            )
            made.append(("default", node_ev.metadata.name))
            pod_ev = await core.create_namespaced_event(
                "lab-tests",
                _warning(
                    client,
                    "lab-tests",
                    pod,
                    "Pod",
                    "BackOff",
                    "Back-off restarting failed container cuda in pod flaky_lab-tests",
                    host="gpu-b-03",
                    count=4,
                ),
            )
            made.append(("lab-tests", pod_ev.metadata.name))
            assert (
                node_ev.involved_object.kind == "Node"
                and int(node_ev.metadata.resource_version) > 0
                and node_ev.metadata.uid
            )

            async def both():
                events = (await src.fetch()).node_events
                return {(e.kind, e.object): e for e in events if e.node == "gpu-b-03"} if len(events) == 3 else None

            started = time.perf_counter()
            on_b03 = await eventually(both, timeout_s=3.0, interval_s=0.02)
            took = time.perf_counter() - started
            print(f"\nnode and pod Warnings on the node's events after {took * 1000:.0f} ms")
            assert on_b03[("Node", "gpu-b-03")].reason == "SystemOOM" and on_b03[("Node", "gpu-b-03")].count == 2
            backoff = on_b03[("Pod", "lab-tests/flaky")]
            assert (backoff.reason, backoff.count, backoff.message) == (
                "BackOff",
                4,
                "Back-off restarting failed container cuda in pod flaky_lab-tests",
            )
            assert abs(backoff.last_seen - time.time()) < 5
            events = (await src.fetch()).node_events
            assert [e.last_seen for e in events] == sorted((e.last_seen for e in events), reverse=True)  # newest first

            # the apiserver's validation: an old-style event lives in its object's namespace
            with pytest.raises(ApiException) as err:
                await core.create_namespaced_event(
                    "research", _warning(client, "research", pod, "Pod", "BackOff", "x", host="gpu-b-03")
                )
            body = status_body(err.value)
            assert err.value.status == 422 and body["reason"] == "Invalid"
            assert body["details"]["causes"] == [
                {
                    "reason": "FieldValueInvalid",
                    "message": 'Invalid value: "lab-tests": does not match event.namespace',
                    "field": "involvedObject.namespace",
                }
            ]

            # the pod goes: its event, still on the server, has no node any more
            await core.delete_namespaced_pod("flaky", "lab-tests")

            async def pod_event_gone():
                return [(e.kind, e.object) for e in (await src.fetch()).node_events if e.node == "gpu-b-03"] == [
                    ("Node", "gpu-b-03")
                ]

            await eventually(pod_event_gone, timeout_s=3.0)
        finally:
            for ns, name in made:
                await core.delete_namespaced_event(name, ns)
            with contextlib.suppress(ApiException):
                await core.delete_namespaced_pod("flaky", "lab-tests")

        async def back_to_the_seed():
            return [e.object for e in (await src.fetch()).node_events] == [vllm.object]

        await eventually(back_to_the_seed, timeout_s=3.0)


def _deployment(name: str, *, image: str, replicas: int = 2, gpus: int = 1) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": "lab-tests"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {"name": "server", "image": image, "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}
                    ]
                },
            },
        },
    }


@lab
async def test_a_deployment_rolls_out_to_available(lab_kube):
    from kubernetes.aio import client

    async with kube_api(lab_kube.kubeconfig) as api, kube_source(lab_kube.kubeconfig) as src:
        apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
        await src.fetch()
        await apps.create_namespaced_deployment(
            "lab-tests", client.V1Deployment.from_dict(_deployment("rollout", image="server:1"))
        )

        async def rolled_out(image):
            dep = await apps.read_namespaced_deployment_status("rollout", "lab-tests")
            st = dep.status
            conds = {c.type: (c.status, c.reason) for c in st.conditions or ()}
            return (
                st.observed_generation == dep.metadata.generation
                and (st.replicas, st.updated_replicas, st.ready_replicas, st.available_replicas) == (2, 2, 2, 2)
                and conds.get("Available") == ("True", "MinimumReplicasAvailable")
                and conds.get("Progressing") == ("True", "NewReplicaSetAvailable")
                and dep.spec.template.spec.containers[0].image == image
            )

        took = await timed(eventually(lambda: rolled_out("server:1"), timeout_s=5.0, interval_s=0.02))
        print(f"\nrollout of 2 replicas available after {took:.2f}s")
        rs = [
            r
            for r in (await apps.list_namespaced_replica_set("lab-tests")).items
            if r.metadata.owner_references[0].name == "rollout"
        ]
        assert len(rs) == 1 and rs[0].status.available_replicas == 2
        pods = (await core.list_namespaced_pod("lab-tests", label_selector="app=rollout")).items
        assert len(pods) == 2 and all(
            p.metadata.owner_references[0].name == rs[0].metadata.name and p.spec.node_name for p in pods
        )
        assert {q.name: q.running_jobs for q in (await src.fetch()).queues}["lab-tests"] == 2

        # a new template: a second ReplicaSet takes over, the first scales to zero
        await apps.patch_namespaced_deployment(
            "rollout",
            "lab-tests",
            {"spec": {"template": {"spec": {"containers": [{"name": "server", "image": "server:2"}]}}}},
        )
        took = await timed(eventually(lambda: rolled_out("server:2"), timeout_s=8.0, interval_s=0.02))
        print(f"rolling update available after {took:.2f}s")
        rs = {
            r.metadata.name: r
            for r in (await apps.list_namespaced_replica_set("lab-tests")).items
            if r.metadata.owner_references[0].name == "rollout"
        }
        assert sorted(r.spec.replicas for r in rs.values()) == [0, 2]

        async def source_sees_the_rollout():  # the source learns it through its watch, a moment later
            await src.fetch()
            return any(d.name == "rollout" and d.rolled_out for d in src.workloads().deployments)

        await eventually(source_sees_the_rollout, timeout_s=5.0)

        await apps.delete_namespaced_deployment("rollout", "lab-tests")

        async def collected():
            return not (await core.list_namespaced_pod("lab-tests", label_selector="app=rollout")).items

        await eventually(collected, timeout_s=5.0)


@lab
async def test_the_hub_polls_it(lab_kube):
    src = KubernetesSource(site(), kubeconfig=lab_kube.kubeconfig)
    hub = Hub([src])
    try:
        result = await hub.poll("kubernetes")
        assert result.status.ok, result.status.error
        assert len(result.data.kube_nodes) == len(lab_kube.truth.nodes)
        checks = await hub.doctor()
        assert checks and all(c.ok for c in checks), checks
    finally:
        await hub.stop()
        await src.aclose()


# ---------------------------------------------------------------------------------- scale
def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@lab
async def test_a_1000_node_20000_pod_cluster(lab_kube):
    big = lab_kube.big(1000, 20000)
    print(f"\nbig cluster server up in {big.startup_s:.1f}s")
    gc.collect()
    rss0 = _rss_mib()
    async with kube_source(big.kubeconfig, timeout_s=30.0) as src:
        t0 = time.perf_counter()
        data = await src.fetch()
        first = time.perf_counter() - t0
        gc.collect()
        rss1 = _rss_mib()
        t1 = time.perf_counter()
        again = await src.fetch()
        steady = time.perf_counter() - t1
        stats = src.informer_stats()
        sent = big.stats()["items"]
        print(
            f"initial list+watch of 1000 nodes / {sent['pods']} pods ({stats['pods'].pages} pages): {first:.2f}s; "
            f"steady poll: {steady * 1000:.1f} ms; RSS +{rss1 - rss0:.0f} MiB"
        )
    assert len(data.kube_nodes) == 1000 and all(n.gpu_allocatable == 8 for n in data.kube_nodes)
    assert sent["pods"] == 20000 - 20000 // 40  # finished pods stay on the server
    assert stats["pods"].lists == 1 and stats["pods"].pages == -(-sent["pods"] // 500)
    assert sum(q.pending_jobs for q in data.queues) == 20000 // 60
    assert (
        sum(n.gpu_requested for n in data.kube_nodes)
        == sum(g for n in data.kube_nodes for _, g in n.pods_with_gpus)
        > 0
    )
    assert again.kube_nodes is data.kube_nodes  # nothing changed: nothing rebuilt
    # Warnings about every 20th node and every 100th of the 19,167 running pods are on nodes; the 50 about pending pods are not
    assert sent["events"] == 50 + 192 + 50 and len(data.node_events) == 50 + 192
    assert sum(1 for e in data.node_events if e.kind == "Node") == 50 and all(
        e.node.startswith("node-") for e in data.node_events
    )
    assert again.node_events is data.node_events


# ---------------------------------------------------------------------------------- Kueue
KUEUE = ("kueue.x-k8s.io", "v1beta1")


def kueue_queues(data) -> dict:
    return {q.name: q for q in data.queues if q.system == "kueue"}


def _workload(name: str, queue: str, *, pods: int, gpus: int) -> dict:
    """A Workload as a client (or Kueue's Job integration) creates it: one pod set, no status."""
    template = {
        "spec": {
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "train",
                    "image": "nvcr.io/nvidia/pytorch:24.10-py3",
                    "resources": {
                        "requests": {"cpu": "32", "memory": "512Gi"},
                        "limits": {"nvidia.com/gpu": str(gpus)},
                    },
                }
            ],
        }
    }
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta1",
        "kind": "Workload",
        "metadata": {"name": name},
        "spec": {"queueName": queue, "podSets": [{"name": "main", "count": pods, "template": template}]},
    }


def _admitted(cluster_queue: str, *, pods: int, gpus: int) -> dict:
    """The status Kueue's scheduler writes when it admits a one-pod-set Workload on the h100 flavor."""
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    usage = {"cpu": str(32 * pods), "memory": f"{512 * pods}Gi", "nvidia.com/gpu": str(gpus * pods)}
    return {
        "status": {
            "admission": {
                "clusterQueue": cluster_queue,
                "podSetAssignments": [
                    {"name": "main", "flavors": dict.fromkeys(usage, "h100"), "resourceUsage": usage, "count": pods}
                ],
            },
            "conditions": [
                {
                    "type": "QuotaReserved",
                    "status": "True",
                    "reason": "QuotaReserved",
                    "message": f"Quota reserved in ClusterQueue {cluster_queue}",
                    "lastTransitionTime": now,
                    "observedGeneration": 1,
                },
                {
                    "type": "Admitted",
                    "status": "True",
                    "reason": "Admitted",
                    "message": "The workload is admitted",
                    "lastTransitionTime": now,
                    "observedGeneration": 1,
                },
            ],
        }
    }


@lab
async def test_kueue_cluster_queues_are_queues(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    truth = lab_kube.truth.kueue
    assert set(truth) == {"gpu-training", "gpu-research"}
    async with kube_source(lab_kube.kubeconfig) as src, kube_api(lab_kube.kubeconfig) as api:
        data = await src.fetch()
        queues = kueue_queues(data)
        assert src.kueue_version == "v1beta1" and data.notes == ()
        assert {name: (q.pending_jobs, q.running_jobs, q.pending_gpus) for name, q in queues.items()} == {
            name: t[:3] for name, t in truth.items()
        }
        for name, q in queues.items():
            assert abs(q.oldest_pending_s - (time.time() - truth[name][3])) < 15, (
                name
            )  # the truth is dated at the lab start, the server a moment before
        # as Kueue itself counts them into the ClusterQueues' status
        co = client.CustomObjectsApi(api)
        cqs = {
            cq["metadata"]["name"]: cq for cq in (await co.list_cluster_custom_object(*KUEUE, "clusterqueues"))["items"]
        }
        assert {n: (cq["status"]["pendingWorkloads"], cq["status"]["admittedWorkloads"]) for n, cq in cqs.items()} == {
            n: (q.pending_jobs, q.running_jobs) for n, q in queues.items()
        }
        # why they wait, in the scheduler's words; a100 nodes cannot take a pod that asks for H100s
        waiting = {w.owner_name: w for w in src.pending_workloads()}
        assert sorted(waiting) == ["llama-70b-sft", "mixtral-eval", "vit-sweep"]
        assert waiting["llama-70b-sft"].message == (
            "couldn't assign flavors to pod set main: flavor a100 doesn't match node affinity, "
            "insufficient unused quota for nvidia.com/gpu in flavor h100, 32 more needed"
        )
        assert all(
            w.reason == "Pending" and "insufficient unused quota for nvidia.com/gpu" in w.message
            for w in waiting.values()
        )
        assert all(src.informer_stats()[r].lists == 1 for r in ("clusterqueues", "localqueues", "workloads"))

        # discovery, as a real apiserver answers it for installed CRDs
        groups = {g.name: g for g in (await client.ApisApi(api).get_api_versions()).groups}
        assert groups["kueue.x-k8s.io"].preferred_version.group_version == "kueue.x-k8s.io/v1beta1"
        resources = {r.name: r for r in (await co.get_api_resources(*KUEUE)).resources}
        assert {
            "clusterqueues",
            "clusterqueues/status",
            "localqueues",
            "workloads",
            "workloads/status",
            "resourceflavors",
        } <= set(resources)
        assert (
            not resources["clusterqueues"].namespaced
            and resources["workloads"].namespaced
            and "watch" in resources["workloads"].verbs
        )
        lqs = (await co.list_namespaced_custom_object(*KUEUE, "ml-train", "localqueues"))["items"]
        assert [
            (lq["metadata"]["name"], lq["spec"]["clusterQueue"], lq["status"]["pendingWorkloads"]) for lq in lqs
        ] == [("training", "gpu-training", 2)]
        # custom resources take merge and JSON patches, not strategic merge; the CRD's schema is checked
        with pytest.raises(ApiException) as err:
            await co.patch_namespaced_custom_object(
                *KUEUE,
                "ml-train",
                "localqueues",
                "training",
                {"metadata": {"labels": {"a": "b"}}},
                _content_type="application/strategic-merge-patch+json",
            )
        assert err.value.status == 415
        with pytest.raises(ApiException) as err:
            await co.create_namespaced_custom_object(
                *KUEUE,
                "research",
                "workloads",
                {**_workload("broken", "research", pods=1, gpus=1), "spec": {"queueName": "research"}},
            )
        assert err.value.status == 422 and status_body(err.value)["details"]["causes"] == [
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.podSets"}
        ]
        rows = src._kueue_rows
        again = await src.fetch()
        counts = lambda d: [(q.system, q.name, q.pending_jobs, q.running_jobs, q.pending_gpus) for q in d.queues]  # noqa: E731
        assert counts(again) == counts(data) and src._kueue_rows is rows  # nothing changed: nothing recounted


@lab
async def test_a_workload_waits_then_is_admitted(lab_kube):
    from kubernetes.aio import client

    truth = lab_kube.truth.kueue["gpu-research"]
    async with kube_source(lab_kube.kubeconfig) as src, kube_api(lab_kube.kubeconfig) as api:
        co = client.CustomObjectsApi(api)
        first = await src.fetch()
        await co.create_namespaced_custom_object(
            *KUEUE, "research", "workloads", _workload("lab-probe", "research", pods=1, gpus=8)
        )
        try:

            async def waiting():
                q = kueue_queues(await src.fetch())["gpu-research"]
                return (q.pending_jobs, q.running_jobs, q.pending_gpus) == (truth[0] + 1, truth[1], truth[2] + 8)

            took = await timed(eventually(waiting, timeout_s=3.0, interval_s=0.02))
            print(f"\nnew pending Workload in its ClusterQueue after {took * 1000:.0f} ms")
            # the lab's Kueue found no room for it (the queue's 16 H100 GPUs are all reserved)
            await eventually(
                lambda: any(
                    w.name == "lab-probe" and "h100, 8 more needed" in w.message for w in src.pending_workloads()
                ),
                timeout_s=2.0,
            )

            # admitted, as Kueue's scheduler writes it: through the status subresource
            await co.patch_namespaced_custom_object_status(
                *KUEUE, "research", "workloads", "lab-probe", _admitted("gpu-research", pods=1, gpus=8)
            )

            async def running():
                q = kueue_queues(await src.fetch())["gpu-research"]
                return (q.pending_jobs, q.running_jobs, q.pending_gpus) == (truth[0], truth[1] + 1, truth[2])

            took = await timed(eventually(running, timeout_s=3.0, interval_s=0.02))
            print(f"admitted Workload counted as running after {took * 1000:.0f} ms")
            cq = await co.get_cluster_custom_object(*KUEUE, "clusterqueues", "gpu-research")
            gpu_usage = {r["name"]: r["total"] for r in cq["status"]["flavorsUsage"][0]["resources"]}["nvidia.com/gpu"]
            assert (cq["status"]["admittedWorkloads"], gpu_usage) == (truth[1] + 1, "24")
            after = await src.fetch()
            assert after.kube_nodes is first.kube_nodes  # a Workload changes no node: nothing rebuilt

            # an apiserver restart that outlasts the watch history: the Workloads are listed again, not lost
            lab_kube.main.drop_watches(hold_s=0.3)
            await co.delete_namespaced_custom_object(*KUEUE, "research", "workloads", "lab-probe")
            lab_kube.main.compact()

            async def back():
                q = kueue_queues(await src.fetch())["gpu-research"]
                return (q.pending_jobs, q.running_jobs, q.pending_gpus) == truth[:3]

            await eventually(back, timeout_s=3.0)
            stats = src.informer_stats()["workloads"]
            assert stats.expired >= 1 and stats.lists == 2
        finally:
            with contextlib.suppress(Exception):
                await co.delete_namespaced_custom_object(*KUEUE, "research", "workloads", "lab-probe")


@lab
async def test_without_kueue_crds_no_kueue_queues_and_no_note(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    plain = lab_kube.plain()
    async with kube_source(plain.kubeconfig) as src:
        data = await src.fetch()
        checks = await src.doctor()
    assert data.notes == () and src.kueue_version == "" and not kueue_queues(data)
    assert {q.name for q in data.queues} >= {"ml-train", "research"} and len(data.kube_nodes) == len(
        lab_kube.truth.nodes
    )
    assert all(c.ok for c in checks) and any(
        c.check == "discover kueue.x-k8s.io" and c.detail.startswith("not installed") for c in checks
    )
    async with kube_api(plain.kubeconfig) as api:
        assert "kueue.x-k8s.io" not in {g.name for g in (await client.ApisApi(api).get_api_versions()).groups}
        with pytest.raises(ApiException) as err:
            await client.CustomObjectsApi(api).list_cluster_custom_object(*KUEUE, "clusterqueues")
        assert err.value.status == 404


@lab
async def test_a_user_denied_kueue_gets_a_note_and_the_rest(lab_kube):
    async with kube_source(lab_kube.kubeconfig, "lab-nokueue") as src:
        data = await src.fetch()
    assert not kueue_queues(data) and len(data.kube_nodes) == len(lab_kube.truth.nodes)
    assert {q.name: q.pending_jobs for q in data.queues if q.pending_jobs} == {
        ns: n for ns, (n, _) in lab_kube.truth.pending.items()
    }
    assert data.notes == ()
    failing = [p for p in data.parts if not p.ok]
    assert [p.name for p in failing] == ["kueue"] and failing[
        0
    ].last_ok_at is None  # one part for Kueue's kinds, never answered
    assert failing[0].error == (
        'forbidden: User "nokueue" cannot list resource "clusterqueues" in API group "kueue.x-k8s.io" '
        "at the cluster scope (also localqueues, workloads)"
    )  # one fault, said once
