"""Provides the GPU cluster's Kueue: flavors by GPU product, two ClusterQueues, their LocalQueues, and the Workloads."""

from __future__ import annotations

from .. import kueue as kq
from ..controllers.objects import GPU, stamp_seconds
from ..kueue_objects import cluster_queue, local_queue, resource_flavor, workload_for_job
from ..store import rfc3339
from .gpu_work import NODE_SELECTOR_H100
from .nodes import A100, H100, Obj
from .pods import container
from .workloads import job, pod_template


def kueue_setup(objects: list[Obj], now: float) -> list[Obj]:
    """Kueue in front of the training Jobs: flavors h100 and a100 (by GPU product); ClusterQueues gpu-training
    (h100: 16 GPUs, a100: 8) and gpu-research (h100: 16); LocalQueues ml-train/training, ml-serving/batch (both to
    gpu-training) and research/research. Admitted: llama-finetune (h100) and batch-infer (a100) in gpu-training,
    big-pretrain in gpu-research (Kueue's quota lets it in though its pods find no node); eval-sweep finished.
    Pending, their Jobs suspended: llama-70b-sft (4 x 8 H100 GPUs) and mixtral-eval (8) in gpu-training, vit-sweep
    (2 x 2) in gpu-research, each with the scheduler's "insufficient unused quota" words. The existing Jobs gain
    only the queue label; no pod changes. Statuses are computed by the same pass the lab's Kueue runs."""
    jobs = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for plural, o in objects if plural == "jobs"}
    out: list[Obj] = [
        resource_flavor("h100", {"nvidia.com/gpu.product": H100}, now),
        resource_flavor("a100", {"nvidia.com/gpu.product": A100}, now),
        cluster_queue(
            "gpu-training",
            [("h100", {"cpu": "448", "memory": "4Ti", GPU: "16"}), ("a100", {"cpu": "224", "memory": "2Ti", GPU: "8"})],
            now,
        ),
        cluster_queue("gpu-research", [("h100", {"cpu": "448", "memory": "4Ti", GPU: "16"})], now),
        local_queue("ml-train", "training", "gpu-training", now),
        local_queue("ml-serving", "batch", "gpu-training", now),
        local_queue("research", "research", "gpu-research", now),
    ]

    def managed(job_obj: dict, queue: str) -> dict:
        job_obj["metadata"]["labels"] = {
            **job_obj["metadata"]["labels"],
            kq.QUEUE_LABEL: queue,
        }  # the Job's own labels, not its pods'
        _, wl = workload_for_job(job_obj, queue)
        out.append(("workloads", wl))
        return wl

    for ns, name, queue in (
        ("ml-train", "llama-finetune", "training"),
        ("ml-train", "batch-infer", "training"),
        ("research", "big-pretrain", "research"),
    ):
        managed(jobs[(ns, name)], queue)
    sweep = managed(jobs[("ml-train", "eval-sweep")], "training")
    done = jobs[("ml-train", "eval-sweep")]["status"]["completionTime"]
    total = kq.podset_requests(sweep["spec"]["podSets"][0])
    kq.admit(
        sweep,
        "gpu-training",
        [
            {
                "name": "main",
                "flavors": dict.fromkeys(total, "a100"),
                "resourceUsage": {r: kq.fmt(r, q) for r, q in total.items()},
                "count": 3,
            }
        ],
        sweep["metadata"]["creationTimestamp"],
    )
    kq.finish(sweep, done)

    for ns, name, queue, pods, gpus, selector, age_s in (
        ("ml-train", "llama-70b-sft", "training", 4, 8, NODE_SELECTOR_H100, 7200),
        ("ml-train", "mixtral-eval", "training", 1, 8, None, 1200),
        ("research", "vit-sweep", "research", 2, 2, None, 3000),
    ):
        tmpl = pod_template(
            {"app": name},
            [container("train", "nvcr.io/nvidia/pytorch:24.10-py3", gpus=gpus, cpu="32", memory="512Gi")],
            restartPolicy="Never",
            **({"nodeSelector": selector} if selector else {}),
        )
        _, j = job(ns, name, now, template=tmpl, parallelism=pods, completions=pods, active=0, age_s=age_s)
        t = rfc3339(now - age_s)
        j["spec"]["suspend"] = True  # Kueue's webhook suspends it; the Job starts once its Workload is admitted
        j["status"] = {
            "conditions": [
                {
                    "type": "Suspended",
                    "status": "True",
                    "lastProbeTime": t,
                    "lastTransitionTime": t,
                    "reason": "JobSuspended",
                    "message": "Job suspended",
                }
            ]
        }
        out.append(("jobs", j))
        managed(j, queue)

    def named(plural: str) -> dict[str, dict]:
        return {
            (o["metadata"].get("namespace", "") + "/" if plural in ("localqueues", "workloads") else "")
            + o["metadata"]["name"]: o
            for p, o in out
            if p == plural
        }

    kq.reconcile(named("resourceflavors"), named("clusterqueues"), named("localqueues"), named("workloads"), now)
    admitted = sorted(
        o["metadata"]["name"].rsplit("-", 1)[0][4:] for p, o in out if p == "workloads" and kq.state(o) == "admitted"
    )
    assert admitted == ["batch-infer", "big-pretrain", "llama-finetune"], admitted
    for plural, o in out:  # what Kueue did, it did when each object was new
        created = stamp_seconds(o["metadata"]["creationTimestamp"]) + 2
        for cond in (o.get("status") or {}).get("conditions") or ():
            if plural != "workloads" or cond["type"] != "Finished":
                cond["lastTransitionTime"] = rfc3339(created)
    return out
