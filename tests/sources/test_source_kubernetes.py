"""Provides tests of the Kubernetes source's reading: projections, the lab's fake API server through the official client, lists and the watch."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sovtui.config import SiteConfig
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
from tests.kube_support import kube_api, kube_source, node_of, status_body
from tests.lab.waits import eventually, timed

lab = pytest.mark.kubernetes


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
