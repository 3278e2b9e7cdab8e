"""Provides the fake cluster's node controller: a cordoned node gets the unschedulable taint, an uncordoned one loses it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store import rfc3339

if TYPE_CHECKING:
    from .manager import Controllers


def reconcile(ctl: Controllers, key: str) -> None:
    entry = ctl.store.objects["nodes"].get(key)
    if entry is None:
        return
    node = entry.obj()
    taints = list(node["spec"].get("taints") or [])
    has = any(t.get("key") == "node.kubernetes.io/unschedulable" for t in taints)
    cordoned = bool(node["spec"].get("unschedulable"))
    if cordoned and not has:
        taints.append(
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": rfc3339(ctl.now())}
        )
    elif has and not cordoned:
        taints = [t for t in taints if t.get("key") != "node.kubernetes.io/unschedulable"]
    else:
        return
    if taints:
        node["spec"]["taints"] = taints
    else:
        node["spec"].pop("taints", None)
    ctl.store.replace("nodes", node)
    ctl.record(
        node,
        "Node",
        "Normal",
        "NodeNotSchedulable" if cordoned else "NodeSchedulable",
        f"Node {node['metadata']['name']} status is now: {'NodeNotSchedulable' if cordoned else 'NodeSchedulable'}",
        "kubelet",
        node["metadata"]["name"],
    )
