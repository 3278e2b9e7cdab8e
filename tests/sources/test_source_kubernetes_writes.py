"""Provides tests of the Kubernetes source's writes: evictions, dry runs, patches, the cache after writes, node events, rollouts, the hub."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from sovtui.hub import Hub
from sovtui.model.types import KubeNode
from sovtui.sources.kubernetes import EvictionBlocked, KubernetesSource
from tests.kube_support import kube_api, kube_source, node_of, site, status_body
from tests.lab.kubeapi.seed import bare_gpu_pod
from tests.lab.waits import eventually, timed

lab = pytest.mark.kubernetes


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
