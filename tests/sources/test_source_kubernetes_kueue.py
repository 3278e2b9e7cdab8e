"""Provides tests of the Kubernetes source at scale and with Kueue: a 1,000-node cluster, ClusterQueues, Workloads, denied Kueue."""

from __future__ import annotations

import contextlib
import gc
import os
import time

import pytest

from tests.kube_support import kube_api, kube_source, status_body
from tests.lab.waits import eventually, timed

lab = pytest.mark.kubernetes


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
