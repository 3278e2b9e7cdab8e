"""Provides the seed's cluster-wide objects: stable UIDs, namespaces, and nodes as a kubelet registers them."""

from __future__ import annotations

import uuid

from ..controllers.objects import GPU
from ..store import rfc3339

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
Obj = tuple[str, dict]  # (plural, object)


def uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sovtui-lab/" + "/".join(parts)))


def namespace(name: str, now: float) -> Obj:
    return "namespaces", {
        "metadata": {
            "name": name,
            "uid": uid("ns", name),
            "creationTimestamp": rfc3339(now - 86400 * 30),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    }


def node(
    name: str,
    now: float,
    *,
    index: int,
    gpus: int = 8,
    product: str = H100,
    allocatable_gpus: int | None = None,
    ready: str = "True",
    unschedulable: bool = False,
    taints: tuple[dict, ...] = (),
    role: str = "",
    zone: str = "zone-a",
) -> Obj:
    t = rfc3339(now - 86400 * 20)
    labels = {
        "beta.kubernetes.io/arch": "amd64",
        "beta.kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "topology.kubernetes.io/zone": zone,
        "topology.kubernetes.io/region": "lab-1",
        "node.kubernetes.io/instance-type": "gpu-8x" if gpus else "cpu-32",
    }
    capacity = {
        "cpu": "224" if gpus else "32",
        "ephemeral-storage": "7499362304Ki",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "2113313036Ki" if gpus else "131890092Ki",
        "pods": "110",
    }
    allocatable = {
        "cpu": "222" if gpus else "31",
        "ephemeral-storage": "6911535524937",
        "hugepages-1Gi": "0",
        "hugepages-2Mi": "0",
        "memory": "2101027596Ki" if gpus else "130762092Ki",
        "pods": "110",
    }
    if gpus:
        labels.update(
            {
                "nvidia.com/gpu.present": "true",
                "nvidia.com/gpu.product": product,
                "nvidia.com/gpu.count": str(gpus),
                "nvidia.com/gpu.memory": "81559",
                "nvidia.com/gpu.family": "hopper" if product == H100 else "ampere",
                "nvidia.com/cuda.driver-version.full": "550.127.05",
                "nvidia.com/mig.strategy": "single",
                "feature.node.kubernetes.io/pci-10de.present": "true",
            }
        )
        capacity[GPU] = str(gpus)
        allocatable[GPU] = str(gpus if allocatable_gpus is None else allocatable_gpus)
    if role:
        labels[f"node-role.kubernetes.io/{role}"] = ""
    hb = rfc3339(now - (5 if ready == "True" else 900))

    def cond(ctype: str, status: str, reason: str, message: str) -> dict:
        return {
            "type": ctype,
            "status": status,
            "lastHeartbeatTime": hb,
            "lastTransitionTime": t,
            "reason": reason,
            "message": message,
        }

    if ready == "True":
        conditions = [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
    else:
        conditions = [
            cond(c, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
            for c in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")
        ]
    spec: dict = {
        "podCIDR": f"10.244.{index}.0/24",
        "podCIDRs": [f"10.244.{index}.0/24"],
        "providerID": f"lab://{name}",
    }
    if unschedulable:
        spec["unschedulable"] = True
    all_taints = [dict(x) for x in taints]
    if unschedulable:
        all_taints.append(
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": rfc3339(now - 3600)}
        )
    if all_taints:
        spec["taints"] = all_taints
    return "nodes", {
        "metadata": {
            "name": name,
            "uid": uid("node", name),
            "creationTimestamp": t,
            "labels": labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
                "kubeadm.alpha.kubernetes.io/cri-socket": "unix:///var/run/containerd/containerd.sock",
            },
        },
        "spec": spec,
        "status": {
            "capacity": capacity,
            "allocatable": allocatable,
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": f"10.0.{index // 250}.{index % 250 + 2}"},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": uuid.uuid5(uuid.NAMESPACE_DNS, name).hex,
                "systemUUID": str(uuid.uuid5(uuid.NAMESPACE_OID, name)),
                "bootID": str(uuid.uuid5(uuid.NAMESPACE_X500, name)),
                "kernelVersion": "5.15.0-126-generic",
                "osImage": "Ubuntu 22.04.5 LTS",
                "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": "v1.31.4",
                "kubeProxyVersion": "v1.31.4",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": [],
        },
    }


def ref(kind: str, api_version: str, name: str, ref_uid: str) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": ref_uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
