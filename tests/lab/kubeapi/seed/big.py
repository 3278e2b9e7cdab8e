"""Provides the big generated cluster: a thousand 8-GPU nodes, twenty thousand pods owned as a real cluster's, events."""

from __future__ import annotations

import random

from ..controllers.objects import terminal
from .nodes import A100, H100, Obj, namespace, node, ref, uid
from .pods import container, event, pod
from .workloads import daemonset, deployment, pod_template


def big_cluster(now: float, *, nodes: int = 1000, pods: int = 20000, seed: int = 1) -> list[Obj]:
    """``nodes`` 8-GPU nodes and ``pods`` pods: two DaemonSet pods per node, GPU workloads filling ~85% of the GPUs,
    CPU pods, finished Job pods, and a tail of Pending GPU pods; everything owned as a real cluster's would be; and events."""
    rng = random.Random(seed)
    out: list[Obj] = [namespace(ns, now) for ns in ("default", "kube-system", "gpu-operator")]
    teams = [f"team-{i:02d}" for i in range(40)]
    out.extend(namespace(ns, now) for ns in teams)
    names = [f"node-{i:04d}" for i in range(nodes)]
    free: dict[str, int] = {}
    for i, name in enumerate(names):
        cordon = i % 97 == 5
        out.append(
            node(
                name,
                now,
                index=i % 250,
                product=H100 if i % 3 else A100,
                unschedulable=cordon,
                zone=f"zone-{'abc'[i % 3]}",
            )
        )
        free[name] = 8
    budget = pods
    for ns, name in (("gpu-operator", "nvidia-dcgm-exporter"), ("gpu-operator", "nvidia-device-plugin-daemonset")):
        labels = {"app": name}
        tmpl = pod_template(
            labels,
            [
                container(
                    name.replace("nvidia-", ""), "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.8", cpu="100m", memory="256Mi"
                )
            ],
            tolerations=[{"operator": "Exists"}],
        )
        plural, ds = daemonset(ns, name, now, template=tmpl, nodes=names, ready_nodes=names)
        out.append((plural, ds))
        ds_ref = ref("DaemonSet", "apps/v1", name, ds["metadata"]["uid"])
        for n in names:
            out.append(
                pod(
                    ns,
                    f"{name}-{n[-4:]}{rng.randrange(10**6):06d}"[:60],
                    now,
                    node_name=n,
                    containers=tmpl["spec"]["containers"],
                    owner_ref=ds_ref,
                    labels=labels,
                    tolerations=tmpl["spec"]["tolerations"],
                    age_s=86400,
                )
            )
            budget -= 1
    finished = max(0, pods // 40)
    pending = max(0, pods // 60)
    cpu_pods = max(0, pods // 5)
    gpu_pods = max(0, budget - finished - pending - cpu_pods)
    order = list(names)
    rng.shuffle(order)
    total_free = 8 * nodes
    floor = 8 * nodes * 0.15  # leave ~15% of the GPUs free
    slot = 0
    n_deploy = 0
    while gpu_pods > 0:
        ns = teams[n_deploy % len(teams)]
        replicas = min(gpu_pods, rng.choice((4, 8, 16, 32)))
        gpus = rng.choice((1, 1, 2, 4))
        tmpl = pod_template(
            {"app": f"svc-{n_deploy}"},
            [container("server", "vllm/vllm-openai:v0.6.4", gpus=gpus, cpu="8", memory="64Gi")],
        )
        objs = deployment(ns, f"svc-{n_deploy}", now, replicas=replicas, template=tmpl, pods_ready=replicas)
        out.extend(objs)
        rs = objs[1][1]
        rs_ref = ref("ReplicaSet", "apps/v1", rs["metadata"]["name"], rs["metadata"]["uid"])
        for k in range(replicas):
            placed, gpus_here = order[slot % len(order)], 0
            if total_free - gpus >= floor:
                for _ in range(len(order)):
                    cand = order[slot % len(order)]
                    slot += 1
                    if free[cand] >= gpus:
                        placed, gpus_here = cand, gpus
                        free[cand] -= gpus
                        total_free -= gpus
                        break
            else:
                slot += 1
            c = [container("server", "vllm/vllm-openai:v0.6.4", gpus=gpus_here, cpu="8", memory="64Gi")]
            out.append(
                pod(
                    ns,
                    f"{rs['metadata']['name']}-{k:05d}",
                    now,
                    node_name=placed,
                    containers=c,
                    owner_ref=rs_ref,
                    labels=rs["spec"]["template"]["metadata"]["labels"],
                    age_s=rng.uniform(600, 86400),
                )
            )
        gpu_pods -= replicas
        n_deploy += 1
    for k in range(cpu_pods):
        ns = teams[k % len(teams)]
        out.append(
            pod(
                ns,
                f"web-{k:05d}",
                now,
                node_name=order[k % len(order)],
                containers=[container("web", "nginx:1.27", cpu="500m", memory="512Mi")],
                labels={"app": "web"},
                age_s=rng.uniform(60, 86400),
            )
        )
    for k in range(finished):
        ns = teams[k % len(teams)]
        out.append(
            pod(
                ns,
                f"eval-{k:05d}",
                now,
                node_name=order[k % len(order)],
                containers=[container("eval", "nvcr.io/nvidia/pytorch:24.10-py3", gpus=1)],
                labels={"app": "eval"},
                phase="Succeeded",
                age_s=rng.uniform(3600, 7200),
                restart_policy="Never",
            )
        )
    unschedulable = f"0/{nodes} nodes are available: {nodes} Insufficient nvidia.com/gpu. preemption: 0/{nodes} nodes are available: {nodes} No preemption victims found for incoming pod."
    for k in range(pending):
        ns = teams[k % len(teams)]
        out.append(
            pod(
                ns,
                f"train-{k:05d}",
                now,
                containers=[container("train", "nvcr.io/nvidia/pytorch:24.10-py3", gpus=8, cpu="64", memory="1Ti")],
                labels={"app": "train"},
                phase="Pending",
                age_s=rng.uniform(60, 7200),
                pending_message=unschedulable,
                restart_policy="Never",
            )
        )
    out.extend(_big_events(out, now, rng, unschedulable))
    return out


def _big_events(objects: list[Obj], now: float, rng: random.Random, unschedulable: str) -> list[Obj]:
    """What a busy cluster's event log holds: Warnings from kubelets about every 20th node and every 100th running pod,
    the scheduler's about pending pods, and the Normal chatter the source asks the server to leave out."""
    node_objs = [o for plural, o in objects if plural == "nodes"]
    pods = [o for plural, o in objects if plural == "pods"]
    running = [o for o in pods if o["spec"].get("nodeName") and not terminal(o)]
    waiting = [o for o in pods if not o["spec"].get("nodeName")]
    out: list[Obj] = []
    for n in node_objs[::20]:
        name = n["metadata"]["name"]
        reason, message = rng.choice(
            (
                ("SystemOOM", "System OOM encountered, victim process: python3, pid: 48213"),
                ("ContainerGCFailed", "rpc error: code = DeadlineExceeded desc = context deadline exceeded"),
                ("Rebooted", f"Node {name} has been rebooted, boot id: {uid('boot', name)}"),
            )
        )
        out.append(
            event(
                "default",
                n,
                "Node",
                "Warning",
                reason,
                message,
                "kubelet",
                now,
                age_s=rng.uniform(60, 3600),
                count=rng.randint(1, 5),
                host=name,
            )
        )
    for p in running[::100]:
        host = p["spec"]["nodeName"]
        reason, message = rng.choice(
            (
                ("Unhealthy", "Readiness probe failed: HTTP probe failed with statuscode: 503"),
                (
                    "BackOff",
                    f"Back-off restarting failed container {p['spec']['containers'][0]['name']} in pod {p['metadata']['name']}_{p['metadata']['namespace']}",
                ),
            )
        )
        out.append(
            event(
                p["metadata"]["namespace"],
                p,
                "Pod",
                "Warning",
                reason,
                message,
                "kubelet",
                now,
                age_s=rng.uniform(30, 7200),
                count=rng.randint(1, 20),
                host=host,
            )
        )
    for p in running[50::200]:
        out.append(
            event(
                p["metadata"]["namespace"],
                p,
                "Pod",
                "Normal",
                "Pulled",
                f'Container image "{p["spec"]["containers"][0]["image"]}" already present on machine',
                "kubelet",
                now,
                age_s=rng.uniform(600, 86400),
                host=p["spec"]["nodeName"],
            )
        )
    for p in waiting[:50]:
        out.append(
            event(
                p["metadata"]["namespace"],
                p,
                "Pod",
                "Warning",
                "FailedScheduling",
                unschedulable,
                "default-scheduler",
                now,
                age_s=rng.uniform(60, 3600),
                count=rng.randint(2, 30),
                action="Scheduling",
            )
        )
    return out
