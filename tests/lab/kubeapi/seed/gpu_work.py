"""Provides the GPU cluster's work: vLLM and embeddings behind PDBs, training Jobs, a notebook, and the events seen."""

from __future__ import annotations

from .nodes import H100, Obj, ref
from .pods import container, event, pod
from .workloads import deployment, job, job_pod_labels, pdb, pod_template

NODE_SELECTOR_H100 = {"nvidia.com/gpu.product": H100}


def serving(now: float) -> list[Obj]:
    """vLLM (3 replicas x 2 H100, no disruption allowed) and embeddings (2 x 1 GPU, one may go)."""
    out: list[Obj] = []
    # vLLM: 3 replicas x 2 H100, PDB minAvailable 3 (no disruption allowed)
    vllm_tmpl = pod_template(
        {"app": "vllm", "model": "llama-3-70b"},
        [container("vllm", "vllm/vllm-openai:v0.6.4", gpus=2, cpu="16", memory="128Gi")],
        nodeSelector=NODE_SELECTOR_H100,
    )
    objs = deployment("ml-serving", "vllm", now, replicas=3, template=vllm_tmpl, pods_ready=3)
    out.extend(objs)
    rs = objs[1][1]
    for pname, n in (("7xq2m", "gpu-a-03"), ("b4kzt", "gpu-a-03"), ("r8wfd", "gpu-a-04")):
        out.append(
            pod(
                "ml-serving",
                f"{rs['metadata']['name']}-{pname}",
                now,
                node_name=n,
                containers=vllm_tmpl["spec"]["containers"],
                owner_ref=ref("ReplicaSet", "apps/v1", rs["metadata"]["name"], rs["metadata"]["uid"]),
                labels=rs["spec"]["template"]["metadata"]["labels"],
                node_selector=NODE_SELECTOR_H100,
                age_s=86400 * 2,
            )
        )
    out.append(pdb("ml-serving", "vllm", now, selector={"app": "vllm"}, min_available=3))

    # embeddings: 2 x 1 GPU, PDB maxUnavailable 1
    emb_tmpl = pod_template(
        {"app": "embeddings"},
        [container("tei", "ghcr.io/huggingface/text-embeddings-inference:1.5", gpus=1, cpu="4", memory="16Gi")],
    )
    objs = deployment("ml-serving", "embeddings", now, replicas=2, template=emb_tmpl, pods_ready=2)
    out.extend(objs)
    rs = objs[1][1]
    for pname, n in (("d5n8c", "gpu-a-04"), ("h2l6s", "gpu-b-01")):
        out.append(
            pod(
                "ml-serving",
                f"{rs['metadata']['name']}-{pname}",
                now,
                node_name=n,
                containers=emb_tmpl["spec"]["containers"],
                owner_ref=ref("ReplicaSet", "apps/v1", rs["metadata"]["name"], rs["metadata"]["uid"]),
                labels=rs["spec"]["template"]["metadata"]["labels"],
                age_s=86400,
            )
        )
    out.append(pdb("ml-serving", "embeddings", now, selector={"app": "embeddings"}, max_unavailable=1))
    return out


def training(now: float) -> list[Obj]:
    """Training Jobs running, finished and Pending (some cannot fit anywhere), and a notebook with a GPU init container."""
    out: list[Obj] = []

    def add_job(
        ns: str,
        name: str,
        gpus: int,
        placement: list[tuple[str, str, str]],
        *,
        parallelism: int,
        completions: int,
        selector: dict | None = None,
        age_s: float = 7200,
        image: str = "nvcr.io/nvidia/pytorch:24.10-py3",
    ) -> None:
        tmpl = pod_template(
            {"app": name},
            [container("train", image, gpus=gpus, cpu="32", memory="512Gi")],
            restartPolicy="Never",
            **({"nodeSelector": selector} if selector else {}),
        )
        tmpl["spec"]["restartPolicy"] = "Never"
        phases = [p for _, _, p in placement]
        active = sum(1 for p in phases if p in ("Running", "Pending"))
        plural, j = job(
            ns,
            name,
            now,
            template=tmpl,
            parallelism=parallelism,
            completions=completions,
            active=active,
            succeeded=phases.count("Succeeded"),
            failed=phases.count("Failed"),
            ready_n=sum(1 for (n, _, p) in placement if p == "Running" and n != "gpu-b-04"),
            age_s=age_s,
        )
        out.append((plural, j))
        jref = ref("Job", "batch/v1", name, j["metadata"]["uid"])
        for n, suffix5, phase in placement:
            msg = "0/10 nodes are available" if phase == "Pending" and not n else ""
            out.append(
                pod(
                    ns,
                    f"{name}-{suffix5}",
                    now,
                    node_name=n,
                    containers=tmpl["spec"]["containers"],
                    owner_ref=jref,
                    labels=job_pod_labels(j),
                    phase=phase,
                    is_ready=n != "gpu-b-04",
                    node_selector=selector,
                    age_s=age_s if phase != "Pending" else age_s / 2,
                    pending_message=msg,
                    restart_policy="Never",
                )
            )

    add_job(
        "ml-train",
        "llama-finetune",
        8,
        [("gpu-a-01", "q7k2x", "Running"), ("gpu-a-02", "w9c4n", "Running")],
        parallelism=2,
        completions=2,
        selector=NODE_SELECTOR_H100,
        age_s=5 * 3600,
    )
    add_job(
        "ml-train", "bert-train", 4, [("gpu-b-02", "t3p8v", "Running")], parallelism=1, completions=1, age_s=3 * 3600
    )
    add_job(
        "ml-train", "batch-infer", 4, [("gpu-b-04", "z6m2r", "Running")], parallelism=1, completions=1, age_s=4 * 3600
    )
    add_job(
        "ml-train",
        "eval-sweep",
        1,
        [("gpu-b-03", s, "Succeeded") for s in ("a1b2c", "d3e4f", "g5h6j", "k7l8m", "n9p2q", "r3s4t")]
        + [("gpu-b-03", "v5w6x", "Failed")],
        parallelism=3,
        completions=6,
        age_s=10 * 3600,
    )
    add_job(
        "ml-train",
        "sweep-7",
        2,
        [("", "c8d9f", "Pending")],
        parallelism=1,
        completions=1,
        selector={"nvidia.com/gpu.product": "NVIDIA-GH200-480GB"},
        age_s=1200,
    )
    add_job(
        "research",
        "big-pretrain",
        8,
        [("", "f2g3h", "Pending"), ("", "j4k5l", "Pending")],
        parallelism=2,
        completions=2,
        selector=NODE_SELECTOR_H100,
        age_s=5400,
    )

    # a bare notebook pod with a GPU init container (effective request: max(init, sum of containers))
    out.append(
        pod(
            "research",
            "notebook-alice",
            now,
            node_name="gpu-b-01",
            containers=[
                container(
                    "jupyter", "quay.io/jupyter/pytorch-notebook:cuda12-2024-11-18", gpus=2, cpu="8", memory="64Gi"
                )
            ],
            init_containers=[
                container("warmup", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04", gpus=2, cpu="1", memory="1Gi")
            ],
            labels={"app": "notebook", "user": "alice"},
            age_s=86400 * 4,
        )
    )
    return out


def gpu_events(objects: list[Obj], now: float) -> list[Obj]:
    """What the cluster's components recorded about ``objects``: a node gone NotReady, failed scheduling, probes."""
    out: list[Obj] = []
    by_name = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for _, o in objects if "metadata" in o}
    b04 = by_name[("", "gpu-b-04")]
    out.append(
        event(
            "default",
            b04,
            "Node",
            "Normal",
            "NodeNotReady",
            "Node gpu-b-04 status is now: NodeNotReady",
            "node-controller",
            now,
            age_s=900,
        )
    )
    for pname in ("big-pretrain-f2g3h", "big-pretrain-j4k5l"):
        out.append(
            event(
                "research",
                by_name[("research", pname)],
                "Pod",
                "Warning",
                "FailedScheduling",
                "",
                "default-scheduler",
                now,
                age_s=2700,
                count=14,
                action="Scheduling",
            )
        )
    out.append(
        event(
            "ml-train",
            by_name[("ml-train", "sweep-7-c8d9f")],
            "Pod",
            "Warning",
            "FailedScheduling",
            "",
            "default-scheduler",
            now,
            age_s=600,
            count=5,
            action="Scheduling",
        )
    )
    vllm_pod = next(
        o for (ns, n), o in by_name.items() if ns == "ml-serving" and n.startswith("vllm-") and n.endswith("b4kzt")
    )
    out.append(
        event(
            "ml-serving",
            vllm_pod,
            "Pod",
            "Warning",
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503",
            "kubelet",
            now,
            age_s=300,
            count=3,
            host="gpu-a-03",
        )
    )
    out.append(
        event(
            "ml-serving",
            vllm_pod,
            "Pod",
            "Normal",
            "Pulled",
            'Container image "vllm/vllm-openai:v0.6.4" already present on machine',
            "kubelet",
            now,
            age_s=86400,
            host="gpu-a-03",
        )
    )
    out.append(
        event(
            "ml-train",
            by_name[("ml-train", "llama-finetune-q7k2x")],
            "Pod",
            "Normal",
            "Started",
            "Started container train",
            "kubelet",
            now,
            age_s=5 * 3600,
            host="gpu-a-01",
        )
    )
    return out
