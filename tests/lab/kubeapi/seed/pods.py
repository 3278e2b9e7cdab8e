"""Provides the seed's pods and what they leave: containers, pods in any phase, Events, and a bare pod to create."""

from __future__ import annotations

import uuid

from ..controllers.objects import GPU, start_pod
from ..store import micro_time, rfc3339
from .nodes import Obj, uid


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
