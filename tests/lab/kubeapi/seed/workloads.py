"""Provides the seed's workloads: Deployments with their ReplicaSet, Jobs, DaemonSets, PDBs, and the status they imply."""

from __future__ import annotations

from ..controllers.disruption import pdb_status
from ..controllers.objects import pod_gpus, template_hash, terminal
from ..controllers.scheduler import explain
from ..store import rfc3339
from .nodes import Obj, ref, uid


def pod_template(labels: dict, containers: list[dict], **spec: object) -> dict:
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
