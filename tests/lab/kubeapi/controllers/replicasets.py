"""Provides the fake cluster's ReplicaSet controller: as many pods as replicas, the least useful deleted first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .objects import deleting, owner_ref, ready, shape_pod, suffix, terminal

if TYPE_CHECKING:
    from .manager import Controllers


def reconcile(ctl: Controllers, key: str) -> None:
    entry = ctl.store.objects["replicasets"].get(key)
    if entry is None:
        return
    rs = entry.obj()
    meta = rs["metadata"]
    if deleting(rs):
        return
    pods = [p for p in ctl.owned(meta["uid"], entry.namespace) if not terminal(p)]
    active = [p for p in pods if not deleting(p)]
    want = rs["spec"].get("replicas", 1)
    if len(active) < want:
        ref = owner_ref("ReplicaSet", "apps/v1", rs)
        for _ in range(want - len(active)):
            pod = shape_pod(rs["spec"]["template"], entry.namespace, f"{meta['name']}-{suffix()}", ref)
            ctl.store.create("pods", pod)
            ctl.record(
                rs,
                "ReplicaSet",
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                "replicaset-controller",
            )
    elif len(active) > want:
        # scale down the least useful first: unscheduled, then not ready, then the youngest
        active.sort(
            key=lambda p: (bool(p["spec"].get("nodeName")), ready(p), p["metadata"].get("creationTimestamp", ""))
        )
        for pod in active[: len(active) - want]:
            ctl.delete_pod(entry.namespace, pod["metadata"]["name"])
            ctl.record(
                rs,
                "ReplicaSet",
                "Normal",
                "SuccessfulDelete",
                f"Deleted pod: {pod['metadata']['name']}",
                "replicaset-controller",
            )
    active = [p for p in ctl.owned(meta["uid"], entry.namespace) if not terminal(p) and not deleting(p)]
    n_ready = sum(1 for p in active if ready(p))
    status = {
        "replicas": len(active),
        "fullyLabeledReplicas": len(active),
        "readyReplicas": n_ready,
        "availableReplicas": n_ready,
        "observedGeneration": meta.get("generation", 1),
    }
    status = {k: v for k, v in status.items() if v or k in ("replicas", "observedGeneration")}
    if rs.get("status") != status:
        rs["status"] = status
        ctl.store.replace("replicasets", rs)
