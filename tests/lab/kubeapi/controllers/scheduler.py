"""Provides the fake cluster's scheduler: the filters a pod must pass on a node, bin-packing, FailedScheduling words."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..store import Entry, rfc3339
from .objects import GPU, deleting, pod_gpus, quantity, set_condition, terminal, tolerates

if TYPE_CHECKING:
    from .manager import Controllers


class Scheduler:
    """Binds pending pods to the fullest node that fits, or says why none does; decodes each object version once."""

    def __init__(self, ctl: Controllers) -> None:
        self._ctl = ctl
        #: the decoded view of each object version seen last pass (entries are immutable per version)
        self._facts: dict[str, tuple[Entry, tuple[str, bool, int, bool]]] = {}
        self._node_objs: dict[str, tuple[Entry, dict]] = {}

    def _pod_facts(
        self, entry: Entry, cache: dict[str, tuple[Entry, tuple[str, bool, int, bool]]]
    ) -> tuple[str, bool, int, bool]:
        """(nodeName, finished, GPUs, waits for the scheduler) of one stored pod version, decoded once per version."""
        known = self._facts.get(entry.key)
        if known is not None and known[0] is entry:
            cache[entry.key] = known
            return known[1]
        pod = entry.obj()
        node = (pod.get("spec") or {}).get("nodeName") or ""
        waits = not node and (pod.get("status") or {}).get("phase", "Pending") == "Pending" and not deleting(pod)
        facts = (node, terminal(pod), pod_gpus(pod), waits)
        cache[entry.key] = (entry, facts)
        return facts

    def run(self, _key: str) -> None:
        nodes = []
        node_cache: dict[str, tuple[Entry, dict]] = {}
        for entry in self._ctl.store.entries("nodes"):  # decoded once per node version
            known = self._node_objs.get(entry.key)
            obj = known[1] if known is not None and known[0] is entry else entry.obj()
            node_cache[entry.key] = (entry, obj)
            nodes.append(obj)
        self._node_objs = node_cache
        used: dict[str, int] = {}
        pending: list[dict] = []
        facts_cache: dict[str, tuple[Entry, tuple[str, bool, int, bool]]] = {}
        for entry in self._ctl.store.iter("pods"):
            node, finished, gpus, waits = self._pod_facts(entry, facts_cache)
            if node:
                if not finished:
                    used[node] = used.get(node, 0) + gpus
            elif waits:
                pending.append(entry.obj())
        self._facts = facts_cache
        pending.sort(key=lambda p: (p["metadata"].get("creationTimestamp", ""), p["metadata"]["name"]))
        # pods alike (GPUs, selector, tolerations) get the same answer until a binding changes what is used
        binds = 0
        alike: dict[str, tuple[int, list[tuple[int, str]], dict[str, int]]] = {}
        for pod in pending:
            want = pod_gpus(pod)
            spec = pod.get("spec") or {}
            shape = json.dumps([want, spec.get("nodeSelector"), spec.get("tolerations")], sort_keys=True)
            seen = alike.get(shape)
            if seen is not None and seen[0] == binds:
                fits, reasons = list(seen[1]), seen[2]
            else:
                fits, reasons = [], {}
                for node in nodes:
                    why = unfit(pod, node, want, used.get(node["metadata"]["name"], 0))
                    if why:
                        reasons[why] = reasons.get(why, 0) + 1
                    else:
                        free = quantity(node["status"].get("allocatable", {}).get(GPU)) - used.get(
                            node["metadata"]["name"], 0
                        )
                        fits.append((free, node["metadata"]["name"]))
                alike[shape] = (binds, list(fits), reasons)
            now = rfc3339(self._ctl.now())
            if fits:
                fits.sort()
                chosen = fits[0][1]  # bin-pack: the fullest node that fits
                used[chosen] = used.get(chosen, 0) + want
                binds += 1
                pod["spec"]["nodeName"] = chosen
                status = pod.setdefault("status", {})
                status["conditions"] = set_condition(status.get("conditions") or [], "PodScheduled", "True", now=now)
                for cond in status["conditions"]:
                    if cond["type"] == "PodScheduled":
                        cond.pop("reason", None)
                        cond.pop("message", None)
                self._ctl.store.replace("pods", pod)
                self._ctl.record(
                    pod,
                    "Pod",
                    "Normal",
                    "Scheduled",
                    f"Successfully assigned {pod['metadata']['namespace']}/{pod['metadata']['name']} to {chosen}",
                    "default-scheduler",
                )
            else:
                message = unschedulable_message(len(nodes), reasons)
                status = pod.setdefault("status", {})
                current = next((c for c in status.get("conditions") or () if c["type"] == "PodScheduled"), None)
                if current is None or current.get("message") != message or status.get("phase") != "Pending":
                    status["phase"] = "Pending"
                    status["conditions"] = set_condition(
                        status.get("conditions") or [], "PodScheduled", "False", "Unschedulable", message, now
                    )
                    self._ctl.store.replace("pods", pod)
                    self._ctl.record(pod, "Pod", "Warning", "FailedScheduling", message, "default-scheduler")


def unfit(pod: dict, node: dict, want: int, used: int) -> str:
    """Why ``pod`` cannot go to ``node`` (empty if it can), checked in the scheduler's filter order."""
    spec = pod.get("spec") or {}
    if node["spec"].get("unschedulable"):
        if not tolerates(pod, {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
            return "node(s) were unschedulable"
    for taint in node["spec"].get("taints") or ():
        if taint.get("key") == "node.kubernetes.io/unschedulable":
            continue
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(pod, taint):
            return f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"
    labels = node["metadata"].get("labels") or {}
    for key, value in (spec.get("nodeSelector") or {}).items():
        if labels.get(key) != value:
            return "node(s) didn't match Pod's node affinity/selector"
    free = quantity(node["status"].get("allocatable", {}).get(GPU)) - used
    if want > free:
        return f"Insufficient {GPU}"
    return ""


def explain(pod: dict, nodes: list[dict], used: dict[str, int]) -> str:
    """The scheduler's FailedScheduling message for a pod no node fits (empty if one does)."""
    want = pod_gpus(pod)
    reasons: dict[str, int] = {}
    for node in nodes:
        why = unfit(pod, node, want, used.get(node["metadata"]["name"], 0))
        if not why:
            return ""
        reasons[why] = reasons.get(why, 0) + 1
    return unschedulable_message(len(nodes), reasons)


def unschedulable_message(n_nodes: int, reasons: dict[str, int]) -> str:
    parts = ", ".join(sorted(f"{count} {why}" for why, count in reasons.items()))
    return f"0/{n_nodes} nodes are available: {parts}. preemption: 0/{n_nodes} nodes are available: {n_nodes} Preemption is not helpful for scheduling."
