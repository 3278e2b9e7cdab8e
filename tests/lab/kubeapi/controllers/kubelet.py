"""Provides the fake cluster's kubelet: it starts bound pods, reports them ready, stops deleted ones, restores mirrors."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..store import rfc3339
from .objects import STOP_AFTER, deleting, node_ready, ready, set_ready, start_pod

if TYPE_CHECKING:
    from .manager import Controllers


class Kubelet:
    """Every node's kubelet at once: what a pod's containers do is timed, not run."""

    def __init__(self, ctl: Controllers) -> None:
        self._ctl = ctl
        #: deleted mirror pods, recreated shortly after (the static pod still runs)
        self._mirrors: dict[str, dict] = {}
        #: pods the kubelet is stopping: key → (uid, when it saw the deletion, when it removes the pod, its timer)
        self._stopping: dict[str, tuple[str, float, float, asyncio.TimerHandle | None]] = {}

    def remember_mirror(self, key: str, obj: dict) -> None:
        """A mirror pod was deleted: the kubelet posts it again, as a new object, soon after."""
        self._mirrors[key] = obj
        self._ctl.later(0.3, "mirror", key)

    def sync(self, key: str) -> None:
        entry = self._ctl.store.objects["pods"].get(key)
        if entry is None:
            return
        pod = entry.obj()
        if deleting(pod):
            self._stop(key, pod)
        elif (pod.get("spec") or {}).get("nodeName") and (pod.get("status") or {}).get("phase") == "Pending":
            node = self._ctl.store.get("nodes", "", pod["spec"]["nodeName"])
            if node is not None and node_ready(node.obj()):
                self._ctl.later(self._ctl.start_delay, "kubelet_start", key)

    def _stop(self, key: str, pod: dict) -> None:
        """The kubelet saw the pod's deletion: it sends SIGTERM, and removes the pod when its containers have exited
        (after ``STOP_AFTER`` seconds) or when the grace period ends (SIGKILL), whichever comes first."""
        meta = pod["metadata"]
        now = self._ctl.now()
        known = self._stopping.get(key)
        seen = known[1] if known is not None and known[0] == meta["uid"] else now
        try:
            exits = float((meta.get("annotations") or {}).get(STOP_AFTER, self._ctl.stop_delay))
        except ValueError:
            exits = self._ctl.stop_delay
        due = seen + max(0.0, min(exits, float(meta.get("deletionGracePeriodSeconds") or 0)))
        if known is not None and known[0] == meta["uid"] and known[2] <= due:
            return
        if known is not None and known[3] is not None:
            known[3].cancel()
        handle = asyncio.get_running_loop().call_later(max(0.0, due - now), self._ctl.enqueue, "kubelet_stop", key)
        self._stopping[key] = (meta["uid"], seen, due, handle)

    def remove_stopped(self, key: str) -> None:
        entry = self._ctl.store.objects["pods"].get(key)
        known = self._stopping.get(key)
        if entry is None or not deleting(entry.obj()):
            self._stopping.pop(key, None)
            return
        left = known[2] - self._ctl.now() if known is not None and known[0] == entry.obj()["metadata"]["uid"] else 0.0
        if left > 0.005:  # woken early (the loop's clock is not the wall clock): wait for the rest
            handle = asyncio.get_running_loop().call_later(left, self._ctl.enqueue, "kubelet_stop", key)
            self._stopping[key] = (*known[:3], handle)  # type: ignore[index]
            return
        self._stopping.pop(key, None)
        self._ctl.store.delete("pods", entry.namespace, entry.name)

    def start_containers(self, key: str) -> None:
        entry = self._ctl.store.objects["pods"].get(key)
        if entry is None:
            return
        pod = entry.obj()
        status = pod.setdefault("status", {})
        if deleting(pod) or status.get("phase") != "Pending" or not pod["spec"].get("nodeName"):
            return
        start_pod(pod, self._ctl.now())
        delay = max(
            (
                int((c.get("readinessProbe") or {}).get("initialDelaySeconds") or 0)
                for c in pod["spec"].get("containers") or ()
            ),
            default=0,
        )
        if delay > 0:  # running, but not Ready until its readiness probe first passes
            set_ready(pod, False, rfc3339(self._ctl.now()))
            self._ctl.later(delay, "kubelet_ready", key)
        self._ctl.store.replace("pods", pod)
        self._ctl.record(
            pod,
            "Pod",
            "Normal",
            "Started",
            f"Started container {pod['spec']['containers'][0]['name']}",
            "kubelet",
            pod["spec"]["nodeName"],
        )

    def mark_ready(self, key: str) -> None:
        entry = self._ctl.store.objects["pods"].get(key)
        if entry is None:
            return
        pod = entry.obj()
        if deleting(pod) or ready(pod) or (pod.get("status") or {}).get("phase") != "Running":
            return
        set_ready(pod, True, rfc3339(self._ctl.now()))
        self._ctl.store.replace("pods", pod)

    def recreate_mirror(self, key: str) -> None:
        obj = self._mirrors.pop(key, None)
        if obj is None or key in self._ctl.store.objects["pods"]:
            return
        obj["metadata"] = {
            k: v
            for k, v in obj["metadata"].items()
            if k
            not in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
        }
        obj["status"] = {"phase": "Pending", "conditions": []}
        self._ctl.store.create("pods", obj)
