"""Provides the fake cluster's contents: a small GPU cluster with known faults, a big generated one, and their truth."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field

from . import kueue as kq
from .controllers.disruption import pdb_status
from .controllers.objects import GPU, MIRROR, owner, pod_gpus, start_pod, template_hash, terminal
from .controllers.scheduler import explain
from .kueue_objects import cluster_queue, local_queue, resource_flavor, workload_for_job
from .store import micro_time, rfc3339

H100 = "NVIDIA-H100-80GB-HBM3"
A100 = "NVIDIA-A100-SXM4-80GB"
Obj = tuple[str, dict]  # (plural, object)


def uid(*parts: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "sovtui-lab/" + "/".join(parts)))


# ------------------------------------------------------------------------------ builders
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


def container(name: str, image: str, gpus: int = 0, cpu: str = "4", memory: str = "16Gi") -> dict:
    res: dict = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"memory": memory}}
    if gpus:
        res["requests"][GPU] = str(gpus)
        res["limits"][GPU] = str(gpus)
    return {
        "name": name,
        "image": image,
        "resources": res,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod(
    ns: str,
    name: str,
    now: float,
    *,
    node_name: str = "",
    containers: list[dict],
    owner_ref: dict | None = None,
    labels: dict | None = None,
    phase: str = "Running",
    is_ready: bool = True,
    age_s: float = 3600,
    node_selector: dict | None = None,
    tolerations: list[dict] | None = None,
    annotations: dict | None = None,
    init_containers: list[dict] | None = None,
    pending_message: str = "",
    restart_policy: str = "Always",
    priority_class: str = "",
) -> Obj:
    created = now - age_s
    meta: dict = {
        "name": name,
        "namespace": ns,
        "uid": uid("pod", ns, name),
        "creationTimestamp": rfc3339(created),
        "labels": dict(labels or {}),
    }
    if owner_ref:
        meta["ownerReferences"] = [owner_ref]
        meta["generateName"] = name[: name.rfind("-") + 1]
    if annotations:
        meta["annotations"] = dict(annotations)
    spec: dict = {
        "containers": containers,
        "restartPolicy": restart_policy,
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": "default",
        "serviceAccount": "default",
        "securityContext": {},
        "schedulerName": "default-scheduler",
        "enableServiceLinks": True,
        "preemptionPolicy": "PreemptLowerPriority",
        "priority": 0,
        "tolerations": tolerations
        if tolerations is not None
        else [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    }
    if init_containers:
        spec["initContainers"] = init_containers
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if priority_class:
        spec["priorityClassName"] = priority_class
    if node_name:
        spec["nodeName"] = node_name
    obj = {"metadata": meta, "spec": spec, "status": {"phase": "Pending", "qosClass": "Burstable"}}
    st = obj["status"]
    t = rfc3339(created)
    if phase == "Pending" and not node_name:
        st["conditions"] = [
            {
                "type": "PodScheduled",
                "status": "False",
                "lastProbeTime": None,
                "lastTransitionTime": t,
                "reason": "Unschedulable",
                "message": pending_message,
            }
        ]
    elif phase in ("Running", "Succeeded", "Failed"):
        start_pod(obj, created + 20)
        if not is_ready:
            for c in st["conditions"]:
                if c["type"] in ("Ready", "ContainersReady"):
                    c["status"] = "False"
            for cs in st["containerStatuses"]:
                cs["ready"] = False
        if phase in ("Succeeded", "Failed"):
            st["phase"] = phase
            code = 0 if phase == "Succeeded" else 1
            for c in st["conditions"]:
                if c["type"] in ("Ready", "ContainersReady"):
                    c["status"] = "False"
                    c["reason"] = "PodCompleted" if code == 0 else "PodFailed"
            for cs in st["containerStatuses"]:
                cs["ready"] = False
                cs["started"] = False
                cs["state"] = {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        "startedAt": t,
                        "finishedAt": rfc3339(created + 600),
                        "containerID": cs["containerID"],
                    }
                }
    return "pods", obj


def event(
    ns: str,
    involved: dict,
    kind: str,
    etype: str,
    reason: str,
    message: str,
    component: str,
    now: float,
    *,
    age_s: float = 60,
    count: int = 1,
    host: str = "",
    action: str = "",
) -> Obj:
    """An Event as a component records it: through events.k8s.io/v1 when ``action`` is given (kube-scheduler does),
    else through the core/v1 recorder (kubelet, controller-manager), whose events have no eventTime."""
    meta = involved["metadata"]
    api_version = {"Node": "v1", "Pod": "v1"}.get(kind, "apps/v1")
    inv = {"kind": kind, "name": meta["name"], "uid": meta["uid"], "apiVersion": api_version}
    if meta.get("namespace"):
        inv["namespace"] = meta["namespace"]
    name = f"{meta['name']}.{uuid.uuid5(uuid.NAMESPACE_URL, reason + meta['name'] + message).hex[:16]}"
    obj: dict = {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid("event", ns, name),
            "creationTimestamp": rfc3339(now - age_s),
        },
        "involvedObject": inv,
        "reason": reason,
        "message": message,
        "type": etype,
    }
    if action:  # the new events API: eventTime, action, reporting*, series for repeats
        obj.update(
            source={},
            firstTimestamp=None,
            lastTimestamp=None,
            eventTime=micro_time(now - age_s),
            action=action,
            reportingComponent=component,
            reportingInstance=f"{component}-{host or 'cp-1'}",
        )
        if count > 1:
            obj["series"] = {"count": count, "lastObservedTime": micro_time(now - min(age_s, 30))}
    else:
        source = {"component": component}
        if host:
            source["host"] = host
        obj.update(
            source=source,
            firstTimestamp=rfc3339(now - age_s),
            lastTimestamp=rfc3339(now - min(age_s, 30)),
            count=count,
            eventTime=None,
            reportingComponent=component,
            reportingInstance=host,
        )
    return "events", obj


def _template(labels: dict, containers: list[dict], **spec: object) -> dict:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": containers, "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, **spec},
    }


def deployment(ns: str, name: str, now: float, *, replicas: int, template: dict, pods_ready: int) -> list[Obj]:
    """A Deployment, its current ReplicaSet, both with status for ``pods_ready`` available pods."""
    dep_uid = uid("deploy", ns, name)
    phash = template_hash(template)
    labels = {**template["metadata"]["labels"], "pod-template-hash": phash}
    rs_name = f"{name}-{phash}"
    t = rfc3339(now - 86400)
    available = pods_ready >= replicas - replicas // 4
    dep = {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": dep_uid,
            "creationTimestamp": t,
            "generation": 1,
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {"deployment.kubernetes.io/revision": "1"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(template["metadata"]["labels"])},
            "template": template,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": 1,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": pods_ready,
            "availableReplicas": pods_ready,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True" if available else "False",
                    "lastUpdateTime": t,
                    "lastTransitionTime": t,
                    "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                    "message": "Deployment has minimum availability."
                    if available
                    else "Deployment does not have minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": t,
                    "lastTransitionTime": t,
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{rs_name}" has successfully progressed.',
                },
            ],
        },
    }
    if replicas - pods_ready:
        dep["status"]["unavailableReplicas"] = replicas - pods_ready
    rs = {
        "metadata": {
            "name": rs_name,
            "namespace": ns,
            "uid": uid("rs", ns, rs_name),
            "creationTimestamp": t,
            "generation": 1,
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(replicas),
                "deployment.kubernetes.io/max-replicas": str(replicas + -(-replicas // 4)),
                "deployment.kubernetes.io/revision": "1",
            },
            "ownerReferences": [ref("Deployment", "apps/v1", name, dep_uid)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {**template["metadata"]["labels"], "pod-template-hash": phash}},
            "template": {**template, "metadata": {"labels": labels}},
        },
        "status": {
            "replicas": replicas,
            "fullyLabeledReplicas": replicas,
            "readyReplicas": pods_ready,
            "availableReplicas": pods_ready,
            "observedGeneration": 1,
        },
    }
    if not pods_ready:
        del rs["status"]["readyReplicas"], rs["status"]["availableReplicas"]
    return [("deployments", dep), ("replicasets", rs)]


def job(
    ns: str,
    name: str,
    now: float,
    *,
    template: dict,
    parallelism: int,
    completions: int,
    active: int,
    succeeded: int = 0,
    failed: int = 0,
    ready_n: int = 0,
    age_s: float = 7200,
) -> Obj:
    job_uid = uid("job", ns, name)
    sel = {"batch.kubernetes.io/controller-uid": job_uid}
    labels = {
        **template["metadata"]["labels"],
        **sel,
        "batch.kubernetes.io/job-name": name,
        "controller-uid": job_uid,
        "job-name": name,
    }
    status: dict = {"startTime": rfc3339(now - age_s), "ready": ready_n, "terminating": 0}
    if active:
        status["active"] = active
    if succeeded:
        status["succeeded"] = succeeded
    if failed:
        status["failed"] = failed
    if succeeded >= completions:
        status["completionTime"] = rfc3339(now - age_s + 1800)
        status["conditions"] = [
            {
                "type": "SuccessCriteriaMet",
                "status": "True",
                "lastProbeTime": rfc3339(now - age_s + 1800),
                "lastTransitionTime": rfc3339(now - age_s + 1800),
            },
            {
                "type": "Complete",
                "status": "True",
                "lastProbeTime": rfc3339(now - age_s + 1800),
                "lastTransitionTime": rfc3339(now - age_s + 1800),
            },
        ]
    return "jobs", {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": job_uid,
            "creationTimestamp": rfc3339(now - age_s),
            "generation": 1,
            "labels": labels,
        },
        "spec": {
            "parallelism": parallelism,
            "completions": completions,
            "backoffLimit": 6,
            "completionMode": "NonIndexed",
            "suspend": False,
            "podReplacementPolicy": "TerminatingOrFailed",
            "manualSelector": False,
            "selector": {"matchLabels": sel},
            "template": {**template, "metadata": {"labels": labels}},
        },
        "status": status,
    }


def job_pod_labels(job_obj: dict) -> dict:
    return dict(job_obj["spec"]["template"]["metadata"]["labels"])


def daemonset(ns: str, name: str, now: float, *, template: dict, nodes: list[str], ready_nodes: list[str]) -> Obj:
    t = rfc3339(now - 86400 * 10)
    return "daemonsets", {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid("ds", ns, name),
            "creationTimestamp": t,
            "generation": 1,
            "labels": dict(template["metadata"]["labels"]),
            "annotations": {"deprecated.daemonset.template.generation": "1"},
        },
        "spec": {
            "selector": {"matchLabels": dict(template["metadata"]["labels"])},
            "template": template,
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "revisionHistoryLimit": 10,
        },
        "status": {
            "currentNumberScheduled": len(nodes),
            "numberMisscheduled": 0,
            "desiredNumberScheduled": len(nodes),
            "numberReady": len(ready_nodes),
            "observedGeneration": 1,
            "updatedNumberScheduled": len(nodes),
            "numberAvailable": len(ready_nodes),
            **({"numberUnavailable": len(nodes) - len(ready_nodes)} if len(nodes) > len(ready_nodes) else {}),
        },
    }


def pdb(
    ns: str,
    name: str,
    now: float,
    *,
    selector: dict,
    min_available: int | str | None = None,
    max_unavailable: int | str | None = None,
) -> Obj:
    spec: dict = {"selector": {"matchLabels": selector}}
    if min_available is not None:
        spec["minAvailable"] = min_available
    if max_unavailable is not None:
        spec["maxUnavailable"] = max_unavailable
    return "poddisruptionbudgets", {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": uid("pdb", ns, name),
            "creationTimestamp": rfc3339(now - 86400),
            "generation": 1,
        },
        "spec": spec,
    }


def finish(objects: list[Obj], now: float) -> list[Obj]:
    """Compute what controllers keep in status once every pod is known: PDB status, the scheduler's message for Pending pods."""
    pods_by_ns: dict[str, list[dict]] = {}
    nodes = [obj for plural, obj in objects if plural == "nodes"]
    used: dict[str, int] = {}
    for plural, obj in objects:
        if plural == "pods":
            pods_by_ns.setdefault(obj["metadata"]["namespace"], []).append(obj)
            if obj["spec"].get("nodeName") and not terminal(obj):
                used[obj["spec"]["nodeName"]] = used.get(obj["spec"]["nodeName"], 0) + pod_gpus(obj)
    for plural, obj in objects:
        if plural == "pods" and not obj["spec"].get("nodeName") and obj["status"].get("phase") == "Pending":
            for cond in obj["status"].get("conditions") or ():
                if cond["type"] == "PodScheduled":
                    cond["message"] = explain(obj, nodes, used)
        if plural == "events" and obj["reason"] == "FailedScheduling":
            target = next(
                (o for p, o in objects if p == "pods" and o["metadata"]["uid"] == obj["involvedObject"]["uid"]), None
            )
            if target is not None:
                obj["message"] = explain(target, nodes, used)
    for plural, obj in objects:
        if plural == "poddisruptionbudgets":
            obj["status"] = pdb_status(obj, pods_by_ns.get(obj["metadata"]["namespace"], []), now)
    return objects


# ------------------------------------------------------------------------------ the GPU cluster
GPU_DS_TOLERATIONS = [
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    {"operator": "Exists", "effect": "NoExecute"},
]
CP_TOLERATION = [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
NODE_SELECTOR_H100 = {"nvidia.com/gpu.product": H100}


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
    gpu_nodes = [f"gpu-a-0{i}" for i in range(1, 5)] + [f"gpu-b-0{i}" for i in range(1, 5)]
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
        tmpl = _template(
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
    dns_tmpl = _template(
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

    # vLLM: 3 replicas x 2 H100, PDB minAvailable 3 (no disruption allowed)
    vllm_tmpl = _template(
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
    emb_tmpl = _template(
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

    # Jobs
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
        tmpl = _template(
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

    # events
    by_name = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]): o for _, o in out if "metadata" in o}
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
    if kueue:
        out.extend(kueue_setup(out, now))
    return finish(out, now)


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
        tmpl = _template(
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
        created = parse_stamp(o["metadata"]["creationTimestamp"]) + 2
        for cond in (o.get("status") or {}).get("conditions") or ():
            if plural != "workloads" or cond["type"] != "Finished":
                cond["lastTransitionTime"] = rfc3339(created)
    return out


def parse_stamp(value: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


# ------------------------------------------------------------------------------ the big cluster
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
        tmpl = _template(
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
        tmpl = _template(
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


# ------------------------------------------------------------------------------ the truth
@dataclass
class NodeTruth:
    """What a correct client must conclude about one node."""

    name: str
    ready: bool | None
    unschedulable: bool
    taints: set[str]
    gpu_product: str
    gpu_capacity: int
    gpu_allocatable: int
    gpu_requested: int = 0
    pods: dict[str, int] = field(default_factory=dict)  # "ns/name" → GPUs held


@dataclass
class Truth:
    """The seed's facts, computed straight from the objects (not through the API)."""

    nodes: dict[str, NodeTruth]
    pending: dict[str, tuple[int, int]]  # namespace → (pods, GPUs) waiting
    running: dict[str, int]  # namespace → GPU pods bound to nodes
    pods_total: int
    pods_terminal: int
    warning_events: int
    mirror_pods: set[str]
    daemonset_pods: set[str]
    #: ClusterQueue → (pending workloads, admitted workloads, GPUs the pending ask for, creation time of the oldest pending)
    kueue: dict[str, tuple[int, int, int, float | None]] = field(default_factory=dict)


def truth_of(objects: list[Obj]) -> Truth:
    nodes: dict[str, NodeTruth] = {}
    for plural, obj in objects:
        if plural != "nodes":
            continue
        status = obj["status"]
        ready_cond = next(c for c in status["conditions"] if c["type"] == "Ready")
        nodes[obj["metadata"]["name"]] = NodeTruth(
            name=obj["metadata"]["name"],
            ready={"True": True, "False": False}.get(ready_cond["status"]),
            unschedulable=bool(obj["spec"].get("unschedulable")),
            taints={
                f"{t['key']}{'=' + t['value'] if t.get('value') else ''}:{t['effect']}"
                for t in obj["spec"].get("taints") or ()
            },
            gpu_product=obj["metadata"]["labels"].get("nvidia.com/gpu.product", ""),
            gpu_capacity=int(status["capacity"].get(GPU, 0)),
            gpu_allocatable=int(status["allocatable"].get(GPU, 0)),
        )
    pending: dict[str, tuple[int, int]] = {}
    running: dict[str, int] = {}
    total = term = 0
    mirror, ds = set(), set()
    for plural, obj in objects:
        if plural != "pods":
            continue
        total += 1
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        if MIRROR in (obj["metadata"].get("annotations") or {}):
            mirror.add(key)
        o = owner(obj)
        if o and o["kind"] == "DaemonSet":
            ds.add(key)
        if terminal(obj):
            term += 1
            continue
        gpus = pod_gpus(obj)
        if not gpus:
            continue
        ns = obj["metadata"]["namespace"]
        where = obj["spec"].get("nodeName")
        if where:
            nodes[where].gpu_requested += gpus
            nodes[where].pods[key] = gpus
            running[ns] = running.get(ns, 0) + 1
        else:
            n, g = pending.get(ns, (0, 0))
            pending[ns] = (n + 1, g + gpus)
    warnings = sum(1 for plural, obj in objects if plural == "events" and obj["type"] == "Warning")
    return Truth(nodes, pending, running, total, term, warnings, mirror, ds, kueue_truth(objects))


def kueue_truth(objects: list[Obj]) -> dict[str, tuple[int, int, int, float | None]]:
    target = {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["spec"]["clusterQueue"]
        for plural, o in objects
        if plural == "localqueues"
    }
    out: dict[str, list] = {
        o["metadata"]["name"]: [0, 0, 0, None] for plural, o in objects if plural == "clusterqueues"
    }
    for plural, o in objects:
        if plural != "workloads":
            continue
        st = kq.state(o)
        if st == "admitted":
            out[o["status"]["admission"]["clusterQueue"]][1] += 1
        elif st == "pending":
            row = out[target[f"{o['metadata']['namespace']}/{o['spec']['queueName']}"]]
            created = parse_stamp(o["metadata"]["creationTimestamp"])
            row[0] += 1
            row[2] += kq.workload_gpus(o)
            row[3] = created if row[3] is None else min(row[3], created)
    return {name: (a, b, c, d) for name, (a, b, c, d) in out.items()}


def bare_gpu_pod(
    name: str,
    node: str,
    gpus: int,
    *,
    namespace: str = "lab-tests",
    image: str = "nvcr.io/nvidia/cuda:12.4.1-base-ubuntu22.04",
) -> dict:
    """A bare pod bound to ``node`` by its spec (as a kubelet-admitted pod is), asking for ``gpus`` GPUs: a body to create."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {
            "nodeName": node,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "cuda", "image": image, "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}],
        },
    }
