"""Provides what every control loop reads and writes on objects: GPU requests, owners, conditions, pod defaults."""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from typing import Any

from ..store import rfc3339

GPU = "nvidia.com/gpu"
MIRROR = "kubernetes.io/config.mirror"
#: the lab's stand-in for how long a pod's containers take to exit after SIGTERM (seconds; absent: ``stop_delay``);
#: the kubelet kills them when the grace period ends, so a pod that takes longer goes at its deletionTimestamp
STOP_AFTER = "lab.sovtui.io/stop-after-s"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of generated names (rand.SafeEncodeString)
_rng = random.Random(7)


def suffix(n: int = 5) -> str:
    return "".join(_rng.choice(_SAFE) for _ in range(n))


def template_hash(template: dict) -> str:
    digest = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:5], "big")
    out = ""
    while digest and len(out) < 10:
        digest, r = divmod(digest, len(_SAFE))
        out += _SAFE[r]
    return out or "b"


def quantity(value: Any) -> int:
    if value is None:
        return 0
    try:
        return int(str(value))
    except ValueError:
        return int(float(str(value).rstrip("m")) / 1000) if str(value).endswith("m") else 0


def _req(container: dict) -> int:
    res = container.get("resources") or {}
    return quantity((res.get("requests") or {}).get(GPU, (res.get("limits") or {}).get(GPU)))


def pod_gpus(pod: dict) -> int:
    """The pod's effective ``nvidia.com/gpu`` request: max(sum of containers + sidecars, any init container)."""
    spec = pod.get("spec") or {}
    sidecars = sum(_req(c) for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always")
    main = sum(_req(c) for c in spec.get("containers") or ()) + sidecars
    init = max((_req(c) for c in spec.get("initContainers") or () if c.get("restartPolicy") != "Always"), default=0)
    return max(main, init)


def terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def deleting(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def node_ready(node: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or ()
    )


def owner(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_ref(kind: str, api_version: str, obj: dict) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def tolerates(pod: dict, taint: dict) -> bool:
    for tol in (pod.get("spec") or {}).get("tolerations") or ():
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def set_condition(
    conditions: list, ctype: str, status: str, reason: str = "", message: str = "", now: str = ""
) -> list:
    """Conditions with ``ctype`` set; the transition time only moves when the status does."""
    out = [dict(c) for c in conditions]
    for cond in out:
        if cond["type"] == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond.update(status=status)
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            return out
    cond = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    out.append(cond)
    return out


def set_ready(pod: dict, is_ready: bool, now: str) -> None:
    status = pod["status"]
    word = "True" if is_ready else "False"
    for ctype in ("Ready", "ContainersReady"):
        status["conditions"] = set_condition(
            status.get("conditions") or [],
            ctype,
            word,
            "" if is_ready else "ContainersNotReady",
            "" if is_ready else "containers with unready status",
            now,
        )
    for cs in status.get("containerStatuses") or ():
        cs["ready"] = is_ready
    if is_ready:
        for cond in status["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond.pop("reason", None)
                cond.pop("message", None)


def stamp_seconds(value: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def strip_times(status: dict) -> dict:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if not k.endswith("Time")} for c in status.get("conditions") or ()]
    return out


def scaled(value: Any, total: int, *, up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        exact = total * int(text[:-1]) / 100
        return math.ceil(exact) if up else math.floor(exact)
    return int(text)


def shape_pod(
    template: dict, namespace: str, name: str, ref: dict | None, extra_labels: dict | None = None, node: str = ""
) -> dict:
    """A pod from a template, with the API's defaults filled in (as the controllers and the API create them)."""
    tmeta = template.get("metadata") or {}
    pod = {
        "metadata": {
            "name": name,
            "generateName": name[: name.rfind("-") + 1],
            "namespace": namespace,
            "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
        },
        "spec": json.loads(json.dumps(template.get("spec") or {})),
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
    if ref is not None:
        pod["metadata"]["ownerReferences"] = [ref]
    if tmeta.get("annotations"):
        pod["metadata"]["annotations"] = dict(tmeta["annotations"])
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    for c in spec.get("containers") or ():
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("resources", {})
        res = c["resources"]
        if (res.get("limits") or {}).get(GPU) and GPU not in (res.get("requests") or {}):
            res.setdefault("requests", {})[GPU] = res["limits"][GPU]
    spec.setdefault(
        "tolerations",
        [
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
    )
    if node:
        spec["nodeName"] = node
    return pod


def start_pod(pod: dict, now: float) -> None:
    """What the kubelet reports once the containers run: phase Running, ready conditions, container statuses."""
    stamp = rfc3339(now)
    status = pod.setdefault("status", {})
    status["phase"] = "Running"
    status["hostIP"] = status.get("hostIP") or "10.0.0.1"
    status["podIP"] = status.get("podIP") or f"10.244.{_rng.randrange(1, 250)}.{_rng.randrange(2, 250)}"
    status["podIPs"] = [{"ip": status["podIP"]}]
    status["startTime"] = status.get("startTime") or stamp
    conds = status.get("conditions") or []
    for ctype in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
        conds = set_condition(conds, ctype, "True", now=stamp)
    status["conditions"] = conds
    status["containerStatuses"] = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": f"{c.get('image', '')}@sha256:{hashlib.sha256(c.get('image', '').encode()).hexdigest()}",
            "containerID": f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": stamp}},
            "lastState": {},
        }
        for c in pod["spec"].get("containers") or ()
    ]
    status.setdefault("qosClass", "BestEffort")
