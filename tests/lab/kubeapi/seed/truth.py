"""Provides the seed's truth: what a correct client must conclude about nodes, pending work and Kueue's queues."""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import kueue as kq
from ..controllers.objects import GPU, MIRROR, owner, pod_gpus, stamp_seconds, terminal
from .nodes import Obj


@dataclass
class NodeTruth:
    """What a correct client must conclude about one node."""

    name: str
    ready: bool | None
    unschedulable: bool
    taints: set[str]
    gpu_product: str
    gpu_capacity: int
    gpu_allocatable: int
    gpu_requested: int = 0
    pods: dict[str, int] = field(default_factory=dict)  # "ns/name" → GPUs held


@dataclass
class Truth:
    """The seed's facts, computed straight from the objects (not through the API)."""

    nodes: dict[str, NodeTruth]
    pending: dict[str, tuple[int, int]]  # namespace → (pods, GPUs) waiting
    running: dict[str, int]  # namespace → GPU pods bound to nodes
    pods_total: int
    pods_terminal: int
    warning_events: int
    mirror_pods: set[str]
    daemonset_pods: set[str]
    #: ClusterQueue → (pending workloads, admitted workloads, GPUs the pending ask for, creation time of the oldest pending)
    kueue: dict[str, tuple[int, int, int, float | None]] = field(default_factory=dict)


def truth_of(objects: list[Obj]) -> Truth:
    nodes: dict[str, NodeTruth] = {}
    for plural, obj in objects:
        if plural != "nodes":
            continue
        status = obj["status"]
        ready_cond = next(c for c in status["conditions"] if c["type"] == "Ready")
        nodes[obj["metadata"]["name"]] = NodeTruth(
            name=obj["metadata"]["name"],
            ready={"True": True, "False": False}.get(ready_cond["status"]),
            unschedulable=bool(obj["spec"].get("unschedulable")),
            taints={
                f"{t['key']}{'=' + t['value'] if t.get('value') else ''}:{t['effect']}"
                for t in obj["spec"].get("taints") or ()
            },
            gpu_product=obj["metadata"]["labels"].get("nvidia.com/gpu.product", ""),
            gpu_capacity=int(status["capacity"].get(GPU, 0)),
            gpu_allocatable=int(status["allocatable"].get(GPU, 0)),
        )
    pending: dict[str, tuple[int, int]] = {}
    running: dict[str, int] = {}
    total = term = 0
    mirror, ds = set(), set()
    for plural, obj in objects:
        if plural != "pods":
            continue
        total += 1
        key = f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        if MIRROR in (obj["metadata"].get("annotations") or {}):
            mirror.add(key)
        o = owner(obj)
        if o and o["kind"] == "DaemonSet":
            ds.add(key)
        if terminal(obj):
            term += 1
            continue
        gpus = pod_gpus(obj)
        if not gpus:
            continue
        ns = obj["metadata"]["namespace"]
        where = obj["spec"].get("nodeName")
        if where:
            nodes[where].gpu_requested += gpus
            nodes[where].pods[key] = gpus
            running[ns] = running.get(ns, 0) + 1
        else:
            n, g = pending.get(ns, (0, 0))
            pending[ns] = (n + 1, g + gpus)
    warnings = sum(1 for plural, obj in objects if plural == "events" and obj["type"] == "Warning")
    return Truth(nodes, pending, running, total, term, warnings, mirror, ds, kueue_truth(objects))


def kueue_truth(objects: list[Obj]) -> dict[str, tuple[int, int, int, float | None]]:
    target = {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o["spec"]["clusterQueue"]
        for plural, o in objects
        if plural == "localqueues"
    }
    out: dict[str, list] = {
        o["metadata"]["name"]: [0, 0, 0, None] for plural, o in objects if plural == "clusterqueues"
    }
    for plural, o in objects:
        if plural != "workloads":
            continue
        st = kq.state(o)
        if st == "admitted":
            out[o["status"]["admission"]["clusterQueue"]][1] += 1
        elif st == "pending":
            row = out[target[f"{o['metadata']['namespace']}/{o['spec']['queueName']}"]]
            created = stamp_seconds(o["metadata"]["creationTimestamp"])
            row[0] += 1
            row[2] += kq.workload_gpus(o)
            row[3] = created if row[3] is None else min(row[3], created)
    return {name: (a, b, c, d) for name, (a, b, c, d) in out.items()}
