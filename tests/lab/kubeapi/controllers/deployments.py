"""Provides the fake cluster's Deployment controller: a ReplicaSet per template, rolled within surge and unavailability."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store import rfc3339
from .objects import owner, owner_ref, scaled, set_condition, strip_times, template_hash

if TYPE_CHECKING:
    from .manager import Controllers


def reconcile(ctl: Controllers, key: str) -> None:
    entry = ctl.store.objects["deployments"].get(key)
    if entry is None:
        return
    dep = entry.obj()
    meta, spec = dep["metadata"], dep["spec"]
    ns = entry.namespace
    replicas = spec.get("replicas", 1)
    template = spec["template"]
    phash = template_hash(template)
    mine = []
    for rs_entry in ctl.store.iter("replicasets"):
        if rs_entry.namespace != ns:
            continue
        rs = rs_entry.obj()
        ref = owner(rs)
        if ref is not None and ref["uid"] == meta["uid"]:
            mine.append(rs)
    new = next((rs for rs in mine if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == phash), None)
    old = [rs for rs in mine if rs is not new]
    revision = 1 + max(
        (int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0")) for rs in mine),
        default=0,
    )
    strategy = spec.get("strategy") or {}
    rolling = strategy.get("rollingUpdate") or {}
    surge = scaled(rolling.get("maxSurge", "25%"), replicas, up=True)
    unavailable = scaled(rolling.get("maxUnavailable", "25%"), replicas, up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    if strategy.get("type") == "Recreate":
        surge, unavailable = 0, replicas
    old_total = sum(rs["spec"].get("replicas", 0) for rs in old)
    now = rfc3339(ctl.now())
    if new is None:
        labels = {**(template["metadata"].get("labels") or {}), "pod-template-hash": phash}
        start = max(0, min(replicas, replicas + surge - old_total)) if old_total else replicas
        new = {
            "metadata": {
                "name": f"{meta['name']}-{phash}",
                "namespace": ns,
                "labels": labels,
                "annotations": {
                    "deployment.kubernetes.io/desired-replicas": str(replicas),
                    "deployment.kubernetes.io/max-replicas": str(replicas + surge),
                    "deployment.kubernetes.io/revision": str(revision),
                },
                "ownerReferences": [owner_ref("Deployment", "apps/v1", dep)],
            },
            "spec": {
                "replicas": start,
                "selector": {
                    "matchLabels": {**(spec["selector"].get("matchLabels") or {}), "pod-template-hash": phash}
                },
                "template": {**template, "metadata": {**template.get("metadata", {}), "labels": labels}},
            },
        }
        ctl.store.create("replicasets", new)
        ctl.record(
            dep,
            "Deployment",
            "Normal",
            "ScalingReplicaSet",
            f"Scaled up replica set {new['metadata']['name']} to {start}",
            "deployment-controller",
        )
        dep.setdefault("metadata", {}).setdefault("annotations", {})["deployment.kubernetes.io/revision"] = str(
            revision
        )
        ctl.store.replace("deployments", dep)
        return
    cur = new["spec"].get("replicas", 0)
    if not old:
        target = replicas
    else:
        target = max(cur, min(replicas, replicas + surge - old_total))
    if target != cur:
        new["spec"]["replicas"] = target
        ctl.store.replace("replicasets", new)
        verb = "up" if target > cur else "down"
        ctl.record(
            dep,
            "Deployment",
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {new['metadata']['name']} to {target} from {cur}",
            "deployment-controller",
        )
    # scale old replica sets down as far as availability allows
    available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in mine)
    budget = available - (replicas - unavailable)
    for rs in sorted(old, key=lambda r: r["metadata"]["name"]):
        have = rs["spec"].get("replicas", 0)
        not_ready = have - (rs.get("status") or {}).get("availableReplicas", 0)
        cut = min(have, max(0, budget) + max(0, not_ready))
        if cut > 0:
            budget -= max(0, cut - max(0, not_ready))
            rs["spec"]["replicas"] = have - cut
            ctl.store.replace("replicasets", rs)
            ctl.record(
                dep,
                "Deployment",
                "Normal",
                "ScalingReplicaSet",
                f"Scaled down replica set {rs['metadata']['name']} to {have - cut} from {have}",
                "deployment-controller",
            )
    mine = [
        e.obj()
        for e in ctl.store.iter("replicasets")
        if e.namespace == ns and (owner(e.obj()) or {}).get("uid") == meta["uid"]
    ]
    st = lambda rs, k: (rs.get("status") or {}).get(k, 0)  # noqa: E731
    new_now = next(rs for rs in mine if rs["metadata"]["name"] == new["metadata"]["name"])
    total = sum(st(rs, "replicas") for rs in mine)
    ready_n = sum(st(rs, "readyReplicas") for rs in mine)
    avail = sum(st(rs, "availableReplicas") for rs in mine)
    updated = st(new_now, "replicas")
    complete = (
        updated == replicas and total == replicas and avail == replicas and new_now["spec"].get("replicas") == replicas
    )
    conditions = (dep.get("status") or {}).get("conditions") or []
    if avail >= replicas - unavailable:
        conditions = set_condition(
            conditions, "Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", now
        )
    else:
        conditions = set_condition(
            conditions,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            now,
        )
    rs_name = new["metadata"]["name"]
    if complete:
        conditions = set_condition(
            conditions,
            "Progressing",
            "True",
            "NewReplicaSetAvailable",
            f'ReplicaSet "{rs_name}" has successfully progressed.',
            now,
        )
    else:
        conditions = set_condition(
            conditions, "Progressing", "True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.', now
        )
    for cond in conditions:
        cond.pop("lastProbeTime", None)
        cond.setdefault("lastUpdateTime", now)
    status = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready_n,
        "availableReplicas": avail,
        "unavailableReplicas": max(0, replicas - avail),
        "conditions": conditions,
    }
    status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "conditions")}
    old_status = dict(dep.get("status") or {})
    if strip_times(old_status) != strip_times(status):
        dep["status"] = status
        ctl.store.replace("deployments", dep)
