"""Provides the projections of API objects (JSON) to records, and the fields they read: quantities, times, GPU requests.

Responses are read as raw JSON and projected to small records, because the client's generated models cost far more
time and memory than a 20,000-pod cluster allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from .records import (
    ClusterQueueRec,
    DeploymentRec,
    EventRec,
    JobRec,
    LocalQueueRec,
    NodeRec,
    PdbRec,
    PodRec,
    WorkloadRec,
)
from .selectors import parse_selector

GPU_RESOURCE = "nvidia.com/gpu"
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
#: node labels worth carrying: roles, placement, and NVIDIA GPU feature discovery's essentials
LABEL_PREFIXES = ("node-role.kubernetes.io/",)
LABEL_KEYS = frozenset(
    {
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/arch",
        "nvidia.com/gpu.product",
        "nvidia.com/gpu.count",
        "nvidia.com/gpu.memory",
        "nvidia.com/gpu.family",
        "nvidia.com/gpu.present",
        "nvidia.com/mig.strategy",
        "nvidia.com/mig.config",
        "nvidia.com/cuda.driver-version.full",
    }
)


# ================================================================================== pod fields
_LABEL_SETS: dict[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] = {}


def intern_labels(labels: Any) -> tuple[tuple[str, str], ...]:
    """A pod's labels as sorted pairs, one shared tuple per distinct set (a ReplicaSet's pods all have the same)."""
    if not labels or not isinstance(labels, Mapping):
        return ()
    pairs = tuple(sorted((str(k), str(v)) for k, v in labels.items()))
    known = _LABEL_SETS.get(pairs)
    if known is not None:
        return known
    if len(_LABEL_SETS) > 65536:
        _LABEL_SETS.clear()
    _LABEL_SETS[pairs] = pairs
    return pairs


def has_emptydir(spec: Mapping) -> bool:
    """Whether the pod has an emptyDir volume (its data is lost when the pod goes)."""
    return any(isinstance(v, Mapping) and v.get("emptyDir") is not None for v in spec.get("volumes") or ())


def grace_period(spec: Mapping) -> int | None:
    value = spec.get("terminationGracePeriodSeconds")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


# ================================================================================== projections
def parse_time(value: Any) -> float | None:
    if not value or not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def quantity(value: Any) -> int:
    """An integer resource quantity such as an extended resource count ("8"); fractions round down."""
    if value is None:
        return 0
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        pass
    suffixes = {"k": 10**3, "M": 10**6, "G": 10**9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in sorted(suffixes.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            try:
                return int(float(text[: -len(suffix)]) * factor)
            except ValueError:
                return 0
    if text.endswith("m"):
        try:
            return int(float(text[:-1]) / 1000)
        except ValueError:
            return 0
    try:
        return int(float(text))
    except ValueError:
        return 0


def _container_gpus(container: dict, resource: str) -> int:
    res = container.get("resources") or {}
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    # for extended resources requests default to limits, and must equal them when both are set
    return quantity(requests.get(resource, limits.get(resource)))


def pod_gpus(pod: dict, resource: str = GPU_RESOURCE) -> int:
    """The pod's effective request: max(sum of app containers and sidecars, largest regular init container)."""
    spec = pod.get("spec") or {}
    init = spec.get("initContainers") or ()
    sidecars = sum(_container_gpus(c, resource) for c in init if c.get("restartPolicy") == "Always")
    main = sum(_container_gpus(c, resource) for c in spec.get("containers") or ()) + sidecars
    first = max((_container_gpus(c, resource) for c in init if c.get("restartPolicy") != "Always"), default=0)
    return max(main, first)


def _taint(t: dict) -> str:
    value = t.get("value")
    return f"{t.get('key', '')}{'=' + value if value else ''}:{t.get('effect', '')}"


def project_node(obj: dict) -> NodeRec:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    labels = meta.get("labels") or {}
    conditions = tuple(
        (c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""))
        for c in status.get("conditions") or ()
    )
    ready_status = next((c[1] for c in conditions if c[0] == "Ready"), "")
    return NodeRec(
        name=meta.get("name", ""),
        ready={"True": True, "False": False}.get(ready_status),
        unschedulable=bool(spec.get("unschedulable")),
        taints=tuple(_taint(t) for t in spec.get("taints") or ()),
        labels=tuple(sorted((k, v) for k, v in labels.items() if k in LABEL_KEYS or k.startswith(LABEL_PREFIXES))),
        gpu_product=labels.get("nvidia.com/gpu.product", ""),
        gpu_capacity=quantity((status.get("capacity") or {}).get(GPU_RESOURCE)),
        gpu_allocatable=quantity((status.get("allocatable") or {}).get(GPU_RESOURCE)),
        conditions=conditions,
    )


def project_pod(obj: dict) -> PodRec:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    owner = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), None)
    scheduled = next((c for c in status.get("conditions") or () if c.get("type") == "PodScheduled"), None)
    why = scheduled.get("message", "") if scheduled and scheduled.get("status") == "False" else ""
    return PodRec(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        node=spec.get("nodeName") or "",
        phase=status.get("phase") or "Pending",
        gpus=pod_gpus(obj),
        owner_kind=owner.get("kind", "") if owner else "",
        owner_name=owner.get("name", "") if owner else "",
        mirror=MIRROR_ANNOTATION in (meta.get("annotations") or {}),
        created=parse_time(meta.get("creationTimestamp")),
        deleting=bool(meta.get("deletionTimestamp")),
        scheduling=why,
        uid=str(meta.get("uid") or ""),
        emptydir=has_emptydir(spec),
        labels=intern_labels(meta.get("labels")),
        grace_period_s=grace_period(spec),
    )


def project_pdb(obj: dict) -> PdbRec:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    return PdbRec(
        meta.get("namespace", ""),
        meta.get("name", ""),
        int(status.get("disruptionsAllowed") or 0),
        int(status.get("currentHealthy") or 0),
        int(status.get("desiredHealthy") or 0),
        int(status.get("expectedPods") or 0),
        parse_selector(spec.get("selector")),
    )


def project_job(obj: dict) -> JobRec:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    conds = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
    state = (
        "complete"
        if conds.get("Complete") == "True"
        else "failed"
        if conds.get("Failed") == "True"
        else "suspended"
        if spec.get("suspend")
        else "running"
    )
    return JobRec(
        meta.get("namespace", ""),
        meta.get("name", ""),
        int(status.get("active") or 0),
        int(status.get("succeeded") or 0),
        int(status.get("failed") or 0),
        spec.get("completions"),
        state,
    )


def project_deployment(obj: dict) -> DeploymentRec:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated, available = int(status.get("updatedReplicas") or 0), int(status.get("availableReplicas") or 0)
    observed = int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0)
    rolled_out = (
        observed and updated == replicas and available == replicas and int(status.get("replicas") or 0) == replicas
    )
    return DeploymentRec(
        meta.get("namespace", ""),
        meta.get("name", ""),
        replicas,
        updated,
        int(status.get("readyReplicas") or 0),
        available,
        rolled_out,
    )


def project_event(obj: dict) -> EventRec:
    meta = obj.get("metadata") or {}
    inv = obj.get("involvedObject") or {}
    series = obj.get("series") or {}
    last = (
        parse_time(series.get("lastObservedTime"))
        or parse_time(obj.get("lastTimestamp"))
        or parse_time(obj.get("eventTime"))
        or parse_time(obj.get("firstTimestamp"))
        or parse_time(meta.get("creationTimestamp"))
    )
    return EventRec(
        meta.get("namespace", ""),
        meta.get("name", ""),
        obj.get("type", ""),
        obj.get("reason", ""),
        obj.get("message", ""),
        inv.get("kind", ""),
        inv.get("name", ""),
        inv.get("namespace", ""),
        int(series.get("count") or obj.get("count") or 1),
        last,
    )


def project_cluster_queue(obj: dict) -> ClusterQueueRec:
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    quota = sum(
        quantity(r.get("nominalQuota"))
        for group in spec.get("resourceGroups") or ()
        for flavor in group.get("flavors") or ()
        for r in flavor.get("resources") or ()
        if r.get("name") == GPU_RESOURCE
    )
    reserved = sum(
        quantity(r.get("total"))
        for f in status.get("flavorsReservation") or ()
        for r in f.get("resources") or ()
        if r.get("name") == GPU_RESOURCE
    )
    return ClusterQueueRec(
        meta.get("name", ""),
        str(spec.get("cohort") or spec.get("cohortName") or ""),
        int(status.get("pendingWorkloads") or 0),
        int(status.get("reservingWorkloads") or 0),
        int(status.get("admittedWorkloads") or 0),
        quota,
        reserved,
    )


def project_local_queue(obj: dict) -> LocalQueueRec:
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    return LocalQueueRec(meta.get("namespace", ""), meta.get("name", ""), str(spec.get("clusterQueue") or ""))


def project_workload(obj: dict) -> WorkloadRec:
    """A Workload's place in its queue, read as Kueue itself reads its conditions."""
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    conds = {c.get("type"): c for c in status.get("conditions") or () if isinstance(c, dict)}

    def holds(ctype: str) -> bool:
        return (conds.get(ctype) or {}).get("status") == "True"

    if holds("Finished"):
        state = "finished"
    elif holds("Admitted"):
        state = "admitted"
    elif holds("QuotaReserved"):
        state = "reserved"
    elif spec.get("active") is False:
        state = "inactive"
    else:
        state = "pending"
    gpus = 0
    for ps in spec.get("podSets") or ():
        count = ps.get("count", 1)
        gpus += (count if isinstance(count, int) else quantity(count)) * pod_gpus(ps.get("template") or {})
    waiting = (conds.get("QuotaReserved") or {}) if state == "pending" else {}
    requeued = conds.get("Requeued")
    owner = next((r for r in meta.get("ownerReferences") or () if r.get("controller")), None)
    return WorkloadRec(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        queue=str(spec.get("queueName") or ""),
        cluster_queue=str((status.get("admission") or {}).get("clusterQueue") or ""),
        state=state,
        gpus=gpus,
        queued=(parse_time(requeued.get("lastTransitionTime")) if requeued else None)
        or parse_time(meta.get("creationTimestamp")),
        reason=str(waiting.get("reason") or ""),
        message=str(waiting.get("message") or ""),
        owner_kind=owner.get("kind", "") if owner else "",
        owner_name=owner.get("name", "") if owner else "",
    )
