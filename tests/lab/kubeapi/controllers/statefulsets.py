"""Provides the fake cluster's StatefulSet controller: stable pod names ``<set>-<ordinal>``, recreated with a new UID."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .objects import deleting, owner, owner_ref, ready, shape_pod, template_hash, terminal

if TYPE_CHECKING:
    from .manager import Controllers


def reconcile(ctl: Controllers, key: str) -> None:
    """One pass of the StatefulSet controller over one set, as kube-controller-manager's does it.

    Every ordinal below ``spec.replicas`` has a pod named ``<set>-<ordinal>``; a missing one is created again under the
    same name (a new object: a new UID) once its predecessor is gone from the API, since two objects cannot share a
    name. With ``podManagementPolicy: OrderedReady`` (the default) ordinal N is only made once N-1 runs and is Ready.
    Ordinals at or above ``spec.replicas`` are deleted, highest first.
    """
    store = ctl.store
    entry = store.objects["statefulsets"].get(key)
    if entry is None:
        return
    sts = entry.obj()
    meta, spec = sts["metadata"], sts["spec"]
    if deleting(sts):
        return
    name, ns = meta["name"], entry.namespace
    replicas = spec.get("replicas", 1)
    ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
    template = spec["template"]
    revision = f"{name}-{template_hash(template)[:10]}"
    ref = owner_ref("StatefulSet", "apps/v1", sts)
    for ordinal in range(replicas):
        pod_name = f"{name}-{ordinal}"
        found = store.get("pods", ns, pod_name)
        if found is None:
            labels = {
                "apps.kubernetes.io/pod-index": str(ordinal),
                "controller-revision-hash": revision,
                "statefulset.kubernetes.io/pod-name": pod_name,
            }
            pod = shape_pod(template, ns, pod_name, ref, labels)
            pod["metadata"].pop("generateName", None)
            pod["spec"].setdefault("hostname", pod_name)
            if spec.get("serviceName"):
                pod["spec"].setdefault("subdomain", spec["serviceName"])
            store.create("pods", pod)
            ctl.record(
                sts,
                "StatefulSet",
                "Normal",
                "SuccessfulCreate",
                f"create Pod {pod_name} in StatefulSet {name} successful",
                "statefulset-controller",
            )
            if ordered:
                break
            continue
        obj = found.obj()
        if (owner(obj) or {}).get("uid") != meta["uid"]:
            continue  # someone else's pod holds the name
        if ordered and (deleting(obj) or not ready(obj)):
            break
    for entry_pod in sorted(store.iter("pods"), key=lambda e: e.name, reverse=True):
        obj = entry_pod.obj()
        if entry_pod.namespace != ns or (owner(obj) or {}).get("uid") != meta["uid"] or deleting(obj):
            continue
        index = obj["metadata"]["name"].rsplit("-", 1)[-1]
        if index.isdigit() and int(index) >= replicas:
            ctl.delete_pod(ns, obj["metadata"]["name"])
            ctl.record(
                sts,
                "StatefulSet",
                "Normal",
                "SuccessfulDelete",
                f"delete Pod {obj['metadata']['name']} in StatefulSet {name} successful",
                "statefulset-controller",
            )
    pods = [p for p in ctl.owned(meta["uid"], ns) if not terminal(p) and not deleting(p)]
    n_ready = sum(1 for p in pods if ready(p))
    status = {
        "observedGeneration": meta.get("generation", 1),
        "replicas": len(pods),
        "readyReplicas": n_ready,
        "currentReplicas": len(pods),
        "updatedReplicas": len(pods),
        "availableReplicas": n_ready,
        "currentRevision": revision,
        "updateRevision": revision,
        "collisionCount": 0,
    }
    status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "replicas", "availableReplicas")}
    if sts.get("status") != status:
        sts["status"] = status
        store.replace("statefulsets", sts)
