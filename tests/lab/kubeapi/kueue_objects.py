"""Provides Kueue's objects as the lab holds them: builders for the seed, the CRDs' defaults and their validation."""

from __future__ import annotations

import hashlib
from typing import Any

from .kueue import FINALIZER, GPU, JOB_UID_LABEL, Obj, json_copy
from .store import rfc3339


# ------------------------------------------------------------------------------ builders (the seed's)
def resource_flavor(name: str, node_labels: dict[str, str], now: float) -> Obj:
    return "resourceflavors", {
        "metadata": {
            "name": name,
            "creationTimestamp": rfc3339(now - 86400 * 14),
            "generation": 1,
            "finalizers": ["kueue.x-k8s.io/resource-in-use"],
        },
        "spec": {"nodeLabels": dict(node_labels)},
    }


def cluster_queue(name: str, flavors: list[tuple[str, dict[str, str]]], now: float, *, cohort: str = "") -> Obj:
    """A ClusterQueue with one resource group over cpu, memory and GPUs; ``flavors`` as (flavor, {resource: nominalQuota})."""
    spec: dict[str, Any] = {
        "namespaceSelector": {},
        "queueingStrategy": "BestEffortFIFO",
        "resourceGroups": [
            {
                "coveredResources": ["cpu", "memory", GPU],
                "flavors": [
                    {"name": f, "resources": [{"name": r, "nominalQuota": quotas[r]} for r in ("cpu", "memory", GPU)]}
                    for f, quotas in flavors
                ],
            }
        ],
        "flavorFungibility": {"whenCanBorrow": "Borrow", "whenCanPreempt": "TryNextFlavor"},
        "preemption": {
            "borrowWithinCohort": {"policy": "Never"},
            "reclaimWithinCohort": "Never",
            "withinClusterQueue": "Never",
        },
        "stopPolicy": "None",
    }
    if cohort:
        spec["cohort"] = cohort
    return "clusterqueues", {
        "metadata": {
            "name": name,
            "creationTimestamp": rfc3339(now - 86400 * 14),
            "generation": 1,
            "finalizers": [FINALIZER],
        },
        "spec": spec,
    }


def local_queue(namespace: str, name: str, cq: str, now: float) -> Obj:
    return "localqueues", {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "creationTimestamp": rfc3339(now - 86400 * 14),
            "generation": 1,
        },
        "spec": {"clusterQueue": cq, "stopPolicy": "None"},
    }


def workload_name(job_name: str, job_uid: str) -> str:
    """jobframework's name for a Job's Workload: job-<name>-<5 hex of a hash of the owner>."""
    return f"job-{job_name}-{hashlib.sha256(f'Job/batch/v1/{job_name}/{job_uid}'.encode()).hexdigest()[:5]}"


def workload_for_job(job: dict, queue: str) -> Obj:
    """The Workload Kueue's Job integration creates for a Job labelled with a queue: one pod set, "main", of
    ``parallelism`` pods from the Job's template."""
    meta, spec = job["metadata"], job["spec"]
    template = json_copy(spec["template"])
    return "workloads", {
        "metadata": {
            "name": workload_name(meta["name"], meta["uid"]),
            "namespace": meta["namespace"],
            "creationTimestamp": meta["creationTimestamp"],
            "generation": 1,
            "labels": {JOB_UID_LABEL: meta["uid"]},
            "finalizers": [FINALIZER],
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": meta["name"],
                    "uid": meta["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "active": True,
            "podSets": [{"name": "main", "count": int(spec.get("parallelism", 1)), "template": template}],
            "priority": 0,
            "priorityClassSource": "",
            "queueName": queue,
        },
    }


def defaults(plural: str, obj: dict) -> None:
    """The CRDs' schema defaults for what clients create."""
    spec = obj.setdefault("spec", {})
    if plural == "workloads":
        spec.setdefault("active", True)
        for ps in spec.get("podSets") or ():
            if isinstance(ps, dict):
                ps.setdefault("name", "main")
                ps.setdefault("count", 1)
    elif plural == "localqueues":
        spec.setdefault("stopPolicy", "None")
    elif plural == "clusterqueues":
        spec.setdefault("queueingStrategy", "BestEffortFIFO")
        spec.setdefault("stopPolicy", "None")
        spec.setdefault("flavorFungibility", {"whenCanBorrow": "Borrow", "whenCanPreempt": "TryNextFlavor"})
        spec.setdefault(
            "preemption",
            {"borrowWithinCohort": {"policy": "Never"}, "reclaimWithinCohort": "Never", "withinClusterQueue": "Never"},
        )


def invalid_fields(plural: str, obj: dict) -> list[tuple[str, str, str]]:
    """The CRDs' OpenAPI validation of what the lab's clients write, as (reason, field, message)."""
    spec = obj.get("spec") or {}
    causes: list[tuple[str, str, str]] = []
    if plural == "workloads":
        podsets = spec.get("podSets")
        if not podsets:
            causes.append(("FieldValueRequired", "spec.podSets", "Required value"))
        for i, ps in enumerate(podsets or ()):
            if not isinstance(ps, dict) or not isinstance(ps.get("template"), dict):
                causes.append(("FieldValueRequired", f"spec.podSets[{i}].template", "Required value"))
            elif not isinstance(ps.get("count"), int) or ps["count"] < 0:
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"spec.podSets[{i}].count",
                        f"Invalid value: {ps.get('count')!r}: spec.podSets[{i}].count in body should be greater than or equal to 0",
                    )
                )
    elif plural == "localqueues":
        if not spec.get("clusterQueue"):
            causes.append(("FieldValueRequired", "spec.clusterQueue", "Required value"))
    elif plural == "clusterqueues":
        for i, group in enumerate(spec.get("resourceGroups") or ()):
            covered = group.get("coveredResources") or []
            if any(len(flavor.get("resources") or ()) != len(covered) for flavor in group.get("flavors") or ()):
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"spec.resourceGroups[{i}]",
                        'Invalid value: "object": flavors must have the same number of resources as the coveredResources',
                    )
                )
    return causes
