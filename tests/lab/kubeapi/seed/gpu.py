"""Provides the small GPU cluster: two control-plane and eight 8-GPU nodes, system pods, workloads, planted faults."""

from __future__ import annotations

from ..controllers.objects import MIRROR
from ..store import rfc3339
from .gpu_kueue import kueue_setup
from .gpu_work import gpu_events, serving, training
from .nodes import A100, H100, Obj, namespace, node, ref, uid
from .pods import container, pod
from .workloads import daemonset, deployment, finish, pod_template

CP_TOLERATION = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]


def gpu_cluster(now: float, *, kueue: bool = True) -> list[Obj]:
    """Two control-plane nodes and eight 8-GPU nodes with vLLM, training Jobs, DaemonSets, mirror pods, PDBs and events;
    with ``kueue``, Kueue's objects too (see :func:`kueue_setup`); without, no trace of it.

    Planted state: gpu-a-03 cordoned; gpu-b-02 tainted for a degraded GPU (7 of 8 allocatable); gpu-b-04 NotReady
    (unreachable taints); H100 jobs that cannot fit stay Pending; the vLLM PDB allows no disruption.
    """
    out: list[Obj] = [
        namespace(ns, now)
        for ns in ("default", "kube-system", "gpu-operator", "ml-serving", "ml-train", "research", "lab-tests")
    ]
    cps = ["cp-1", "cp-2"]
    gpu_nodes = [f"gpu-a-0{i}" for i in range(1, 5)] + [f"gpu-b-0{i}" for i in range(1, 5)]
    out.extend(_nodes(now, cps, gpu_nodes))
    out.extend(_system_pods(now, cps, gpu_nodes))
    out.extend(serving(now))
    out.extend(training(now))
    out.extend(gpu_events(out, now))
    if kueue:
        out.extend(kueue_setup(out, now))
    return finish(out, now)


def _nodes(now: float, cps: list[str], gpu_nodes: list[str]) -> list[Obj]:
    """The control plane, then the GPU nodes with their planted faults."""
    out: list[Obj] = []
    for i, name in enumerate(cps):
        out.append(
            node(
                name,
                now,
                index=i,
                gpus=0,
                role="control-plane",
                taints=({"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},),
            )
        )
    specials = {
        "gpu-a-03": {"unschedulable": True},
        "gpu-b-02": {
            "allocatable_gpus": 7,
            "taints": ({"key": "nvidia.com/gpu.health", "value": "degraded", "effect": "NoSchedule"},),
        },
        "gpu-b-04": {
            "ready": "Unknown",
            "taints": (
                {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule", "timeAdded": rfc3339(now - 900)},
                {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": rfc3339(now - 890)},
            ),
        },
    }
    for i, name in enumerate(gpu_nodes):
        product = H100 if name.startswith("gpu-a") else A100
        zone = "zone-a" if name.startswith("gpu-a") else "zone-b"
        out.append(node(name, now, index=10 + i, product=product, zone=zone, **specials.get(name, {})))
    return out


def _system_pods(now: float, cps: list[str], gpu_nodes: list[str]) -> list[Obj]:
    """DaemonSets and their pods, the control plane's static pods (as mirror pods), a GPU health check, CoreDNS."""
    out: list[Obj] = []
    # DaemonSets: kube-proxy everywhere, dcgm-exporter and the device plugin on GPU nodes
    for ns, name, image, nodes, sel in (
        ("kube-system", "kube-proxy", "registry.k8s.io/kube-proxy:v1.31.4", cps + gpu_nodes, None),
        (
            "gpu-operator",
            "nvidia-dcgm-exporter",
            "nvcr.io/nvidia/k8s/dcgm-exporter:3.3.8-3.6.0-ubuntu22.04",
            gpu_nodes,
            {"nvidia.com/gpu.present": "true"},
        ),
        (
            "gpu-operator",
            "nvidia-device-plugin-daemonset",
            "nvcr.io/nvidia/k8s-device-plugin:v0.16.2",
            gpu_nodes,
            {"nvidia.com/gpu.present": "true"},
        ),
    ):
        labels = {"app": name}
        spec: dict = {"tolerations": [{"operator": "Exists"}]}
        if sel:
            spec["nodeSelector"] = sel
        tmpl = pod_template(
            labels,
            [
                container(
                    name.split("-")[-1] if "nvidia" not in name else name.replace("nvidia-", ""),
                    image,
                    cpu="100m",
                    memory="256Mi",
                )
            ],
            **spec,
        )
        plural, ds = daemonset(
            ns, name, now, template=tmpl, nodes=nodes, ready_nodes=[n for n in nodes if n != "gpu-b-04"]
        )
        out.append((plural, ds))
        ds_ref = ref("DaemonSet", "apps/v1", name, ds["metadata"]["uid"])
        for n in nodes:
            pname = f"{name}-{uid('dspod', name, n)[:5]}"
            out.append(
                pod(
                    ns,
                    pname,
                    now,
                    node_name=n,
                    containers=tmpl["spec"]["containers"],
                    owner_ref=ds_ref,
                    labels={**labels, "controller-revision-hash": "6d9f8b7c5d", "pod-template-generation": "1"},
                    is_ready=n != "gpu-b-04",
                    age_s=86400 * 10,
                    tolerations=tmpl["spec"]["tolerations"],
                    node_selector=sel,
                )
            )

    # static pods on the control plane, seen through their mirror pods
    for n in cps:
        for comp, image in (
            ("kube-apiserver", "registry.k8s.io/kube-apiserver:v1.31.4"),
            ("etcd", "registry.k8s.io/etcd:3.5.15-0"),
            ("kube-scheduler", "registry.k8s.io/kube-scheduler:v1.31.4"),
            ("kube-controller-manager", "registry.k8s.io/kube-controller-manager:v1.31.4"),
        ):
            node_ref = {"apiVersion": "v1", "kind": "Node", "name": n, "uid": uid("node", n), "controller": True}
            out.append(
                pod(
                    "kube-system",
                    f"{comp}-{n}",
                    now,
                    node_name=n,
                    containers=[container(comp, image, cpu="250m", memory="1Gi")],
                    owner_ref=node_ref,
                    labels={"component": comp, "tier": "control-plane"},
                    annotations={
                        MIRROR: uid("mirror", comp, n)[:32],
                        "kubernetes.io/config.hash": uid("mirror", comp, n)[:32],
                        "kubernetes.io/config.source": "file",
                    },
                    tolerations=[{"operator": "Exists", "effect": "NoExecute"}],
                    age_s=86400 * 20,
                )
            )
    # a static GPU health check holding one GPU on gpu-b-01
    out.append(
        pod(
            "kube-system",
            "gpu-healthcheck-gpu-b-01",
            now,
            node_name="gpu-b-01",
            containers=[
                container("healthcheck", "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04", gpus=1, cpu="1", memory="2Gi")
            ],
            owner_ref={
                "apiVersion": "v1",
                "kind": "Node",
                "name": "gpu-b-01",
                "uid": uid("node", "gpu-b-01"),
                "controller": True,
            },
            labels={"component": "gpu-healthcheck"},
            annotations={
                MIRROR: uid("mirror", "hc")[:32],
                "kubernetes.io/config.hash": uid("mirror", "hc")[:32],
                "kubernetes.io/config.source": "file",
            },
            age_s=86400 * 3,
        )
    )

    # coredns
    dns_tmpl = pod_template(
        {"k8s-app": "kube-dns"},
        [container("coredns", "registry.k8s.io/coredns/coredns:v1.11.3", cpu="100m", memory="170Mi")],
        tolerations=CP_TOLERATION,
    )
    objs = deployment("kube-system", "coredns", now, replicas=2, template=dns_tmpl, pods_ready=2)
    out.extend(objs)
    rs = objs[1][1]
    for i, n in enumerate(cps):
        out.append(
            pod(
                "kube-system",
                f"{rs['metadata']['name']}-{'xk9vp' if i == 0 else 'm2q7z'}",
                now,
                node_name=n,
                containers=dns_tmpl["spec"]["containers"],
                owner_ref=ref("ReplicaSet", "apps/v1", rs["metadata"]["name"], rs["metadata"]["uid"]),
                labels=rs["spec"]["template"]["metadata"]["labels"],
                tolerations=CP_TOLERATION,
                age_s=86400 * 20,
            )
        )
    return out
