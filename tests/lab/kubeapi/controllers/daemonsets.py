"""Provides the fake cluster's DaemonSet controller: one pod on every node the template's pods may run on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .objects import deleting, owner_ref, ready, shape_pod, suffix, template_hash, terminal
from .scheduler import unfit

if TYPE_CHECKING:
    from .manager import Controllers


def reconcile(ctl: Controllers, key: str) -> None:
    entry = ctl.store.objects["daemonsets"].get(key)
    if entry is None:
        return
    ds = entry.obj()
    meta, spec = ds["metadata"], ds["spec"]
    template = spec["template"]
    pods = [p for p in ctl.owned(meta["uid"], entry.namespace) if not terminal(p)]
    by_node = {p["spec"].get("nodeName"): p for p in pods if not deleting(p)}
    nodes = {e.name: e.obj() for e in ctl.store.iter("nodes")}
    probe = {
        "spec": {
            "tolerations": [{"operator": "Exists"}],
            **{k: v for k, v in template["spec"].items() if k == "nodeSelector"},
        }
    }
    if template["spec"].get("tolerations"):
        probe["spec"]["tolerations"] = template["spec"]["tolerations"] + [
            {"key": k, "operator": "Exists"}
            for k in (
                "node.kubernetes.io/not-ready",
                "node.kubernetes.io/unreachable",
                "node.kubernetes.io/unschedulable",
                "node.kubernetes.io/disk-pressure",
                "node.kubernetes.io/memory-pressure",
                "node.kubernetes.io/pid-pressure",
            )
        ]
    eligible = [
        n
        for n, node in sorted(nodes.items())
        if not unfit(probe, dict(node, spec={**node["spec"], "unschedulable": False}), 0, 0)
    ]
    ref = owner_ref("DaemonSet", "apps/v1", ds)
    for name in eligible:
        if name not in by_node:
            pod = shape_pod(
                template,
                entry.namespace,
                f"{meta['name']}-{suffix()}",
                ref,
                {
                    "controller-revision-hash": template_hash(template)[:10],
                    "pod-template-generation": str(meta.get("generation", 1)),
                },
                node=name,
            )
            ctl.store.create("pods", pod)
            ctl.record(
                ds,
                "DaemonSet",
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                "daemonset-controller",
            )
    for name, pod in by_node.items():
        if name not in nodes:
            ctl.delete_pod(entry.namespace, pod["metadata"]["name"])
    pods = [p for p in ctl.owned(meta["uid"], entry.namespace) if not terminal(p) and not deleting(p)]
    n_ready = sum(1 for p in pods if ready(p))
    status = {
        "currentNumberScheduled": len(pods),
        "desiredNumberScheduled": len(eligible),
        "numberMisscheduled": 0,
        "numberReady": n_ready,
        "numberAvailable": n_ready,
        "updatedNumberScheduled": len(pods),
        "observedGeneration": meta.get("generation", 1),
    }
    if len(eligible) > n_ready:
        status["numberUnavailable"] = len(eligible) - n_ready
    status = {
        k: v
        for k, v in status.items()
        if v or k in ("currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled", "numberReady")
    }
    if ds.get("status") != status:
        ds["status"] = status
        ctl.store.replace("daemonsets", ds)
