"""Provides the controller manager: a work queue fed by the store's changes, the event recorder, pod deletion, dispatch."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from functools import partial

from .. import kueue
from ..store import Entry, Store, micro_time, rfc3339
from . import daemonsets, deployments, disruption, jobs, nodes, replicasets, statefulsets
from .kubelet import Kubelet
from .objects import MIRROR, deleting, owner, set_condition, stamp_seconds, terminal
from .scheduler import Scheduler


class Controllers:
    """Level-triggered control loops fed by the store's changes; every write they make is a real write (RV, watch events)."""

    def __init__(self, store: Store, *, start_delay: float = 0.15, stop_delay: float = 0.1) -> None:
        self.store = store
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self._queue: dict[tuple[str, str], None] = {}
        self._wake = asyncio.Event()
        self._timers: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._event_index: dict[tuple[str, str, str], str] = {}
        self._task: asyncio.Task | None = None
        self.scheduler = Scheduler(self)
        self.kubelet = Kubelet(self)
        #: work item kind → the loop that handles it (its key: an object's, a namespace, a uid, or none)
        self._loops: dict[str, Callable[[str], None]] = {
            "sched": self.scheduler.run,
            "kubelet": self.kubelet.sync,
            "kubelet_start": self.kubelet.start_containers,
            "kubelet_ready": self.kubelet.mark_ready,
            "kubelet_stop": self.kubelet.remove_stopped,
            "mirror": self.kubelet.recreate_mirror,
            "rs": partial(replicasets.reconcile, self),
            "deploy": partial(deployments.reconcile, self),
            "job": partial(jobs.reconcile, self),
            "ds": partial(daemonsets.reconcile, self),
            "sts": partial(statefulsets.reconcile, self),
            "pdbns": partial(disruption.reconcile, self),
            "node": partial(nodes.reconcile, self),
            "gc": self._collect_garbage,
            "kueue": self._kueue,
        }
        store.listeners.append(self._on_change)

    # -- plumbing --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, kind: str, key: str = "") -> None:
        self._queue[(kind, key)] = None
        self._wake.set()

    def later(self, delay: float, kind: str, key: str) -> None:
        """Enqueue ``(kind, key)`` after ``delay`` seconds (once: a timer already set for it stays)."""
        if (kind, key) in self._timers:
            return
        loop = asyncio.get_running_loop()

        def fire() -> None:
            self._timers.pop((kind, key), None)
            self.enqueue(kind, key)

        self._timers[(kind, key)] = loop.call_later(delay, fire)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            rounds = 0
            while self._queue:
                item = next(iter(self._queue))
                del self._queue[item]
                try:
                    self._loops[item[0]](item[1])
                except Exception as exc:  # noqa: BLE001 - a bug in one loop must not stop the others
                    print(f"controller {item}: {type(exc).__name__}: {exc}", flush=True)
                rounds += 1
                if rounds % 50 == 0:
                    await asyncio.sleep(0)

    def now(self) -> float:
        return self.store.clock()

    def _on_change(self, plural: str, kind: str, old: Entry | None, new: Entry | None) -> None:
        entry = new or old
        assert entry is not None
        if plural == "pods":
            obj = entry.obj()
            ref = owner(obj)
            if ref is not None:
                target = {"ReplicaSet": "rs", "Job": "job", "DaemonSet": "ds", "StatefulSet": "sts"}.get(ref["kind"])
                if target:
                    self.enqueue(target, f"{entry.namespace}/{ref['name']}")
            self.enqueue("pdbns", entry.namespace)
            self.enqueue("sched")
            if new is not None:
                self.enqueue("kubelet", entry.key)
            elif MIRROR in (obj["metadata"].get("annotations") or {}):
                self.kubelet.remember_mirror(entry.key, obj)
        elif plural == "replicasets":
            self.enqueue("rs", entry.key)
            ref = owner(entry.obj())
            if ref is not None and ref["kind"] == "Deployment":
                self.enqueue("deploy", f"{entry.namespace}/{ref['name']}")
        elif plural == "deployments":
            self.enqueue("deploy", entry.key)
        elif plural == "jobs":
            self.enqueue("job", entry.key)
        elif plural == "daemonsets":
            self.enqueue("ds", entry.key)
        elif plural == "statefulsets":
            self.enqueue("sts", entry.key)
        elif plural == "poddisruptionbudgets":
            self.enqueue("pdbns", entry.namespace)
        elif plural in kueue.PLURALS:
            self.enqueue("kueue")
        elif plural == "nodes":
            self.enqueue("node", entry.key)
            self.enqueue("sched")
            for ds in self.store.iter("daemonsets"):
                self.enqueue("ds", ds.key)
        if kind == "DELETED" and plural in ("deployments", "replicasets", "jobs", "daemonsets", "statefulsets"):
            self.enqueue("gc", old.obj()["metadata"]["uid"])  # type: ignore[union-attr]

    # -- events ----------------------------------------------------------------------------
    def record(
        self, involved: dict, kind: str, etype: str, reason: str, message: str, component: str, host: str = ""
    ) -> None:
        """Record an Event about an object, aggregating repeats; kube-scheduler's go through events.k8s.io/v1
        (eventTime, action, series), the others through the core/v1 recorder (count, first/lastTimestamp)."""
        meta = involved["metadata"]
        ns = meta.get("namespace") or "default"
        t = self.now()
        new_api = component == "default-scheduler"
        index = (meta["uid"], reason, message)
        existing = self._event_index.get(index)
        if existing:
            entry = self.store.get("events", ns, existing)
            if entry is not None:
                ev = entry.obj()
                if new_api:
                    series = ev.get("series") or {"count": 1}
                    ev["series"] = {"count": series["count"] + 1, "lastObservedTime": micro_time(t)}
                else:
                    ev["count"] = ev.get("count", 1) + 1
                    ev["lastTimestamp"] = rfc3339(t)
                self.store.replace("events", ev)
                return
        name = f"{meta['name']}.{uuid.uuid4().hex[:16]}"
        api_version = {
            "Pod": "v1",
            "Node": "v1",
            "Deployment": "apps/v1",
            "ReplicaSet": "apps/v1",
            "Job": "batch/v1",
            "DaemonSet": "apps/v1",
            "StatefulSet": "apps/v1",
        }.get(kind, "v1")
        ref = {
            "kind": kind,
            "name": meta["name"],
            "uid": meta["uid"],
            "apiVersion": api_version,
            "resourceVersion": meta.get("resourceVersion", ""),
        }
        if meta.get("namespace"):
            ref["namespace"] = meta["namespace"]
        ev = {
            "metadata": {"name": name, "namespace": ns},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "type": etype,
        }
        if new_api:
            ev.update(
                source={},
                firstTimestamp=None,
                lastTimestamp=None,
                eventTime=micro_time(t),
                action="Scheduling",
                reportingComponent=component,
                reportingInstance=f"{component}-cp-1",
            )
        else:
            source = {"component": component}
            if host:
                source["host"] = host
            ev.update(
                source=source,
                firstTimestamp=rfc3339(t),
                lastTimestamp=rfc3339(t),
                count=1,
                eventTime=None,
                reportingComponent=component,
                reportingInstance=host,
            )
        self.store.create("events", ev)
        self._event_index[index] = name

    # -- pods ------------------------------------------------------------------------------
    def delete_pod(
        self, namespace: str, name: str, *, evicted: bool = False, dry_run: bool = False, grace_s: int | None = None
    ) -> dict | None:
        """Delete a pod as the API does (the pod strategy's CheckGracefulDelete): unbound or finished pods, or a grace
        period of 0, go at once; running ones get a deletionTimestamp ``grace_s`` (DeleteOptions.gracePeriodSeconds,
        else spec.terminationGracePeriodSeconds) from now; a second delete may only shorten it."""
        entry = self.store.get("pods", namespace, name)
        if entry is None:
            return None
        pod = entry.obj()
        spec = pod.get("spec") or {}
        grace = grace_s if grace_s is not None else spec.get("terminationGracePeriodSeconds", 30)
        grace = 1 if grace < 0 else int(grace)
        if not spec.get("nodeName") or terminal(pod) or grace == 0:
            if not dry_run:
                self.store.delete("pods", namespace, name)
            return pod
        meta = pod["metadata"]
        if deleting(pod):
            old_grace = int(meta.get("deletionGracePeriodSeconds") or 0)
            if grace >= old_grace:
                return pod
            # as the registry's BeforeDelete: the deletion's start stays, its end comes sooner
            started = stamp_seconds(meta["deletionTimestamp"]) - old_grace
            meta["deletionTimestamp"] = rfc3339(started + grace)
            meta["deletionGracePeriodSeconds"] = grace
            return self.store.replace("pods", pod, dry_run=dry_run)
        meta["deletionTimestamp"] = rfc3339(self.now() + grace)
        meta["deletionGracePeriodSeconds"] = grace
        if evicted:
            status = pod.setdefault("status", {})
            status["conditions"] = set_condition(
                status.get("conditions") or [],
                "DisruptionTarget",
                "True",
                "EvictionByEvictionAPI",
                "Eviction API: evicting",
                rfc3339(self.now()),
            )
        return self.store.replace("pods", pod, dry_run=dry_run)

    def owned(self, uid: str, namespace: str) -> list[dict]:
        """The pods in ``namespace`` whose controller is the object with ``uid``."""
        out = []
        for entry in self.store.iter("pods"):
            if entry.namespace != namespace:
                continue
            pod = entry.obj()
            ref = owner(pod)
            if ref is not None and ref["uid"] == uid:
                out.append(pod)
        return out

    # -- garbage collector ---------------------------------------------------------------
    def _collect_garbage(self, uid: str) -> None:
        """The ReplicaSets and pods a deleted owner leaves go too."""
        for plural in ("replicasets", "pods"):
            for entry in self.store.iter(plural):
                obj = entry.obj()
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or ()):
                    if plural == "pods":
                        self.delete_pod(entry.namespace, entry.name)
                    else:
                        self.store.delete(plural, entry.namespace, entry.name)

    # -- Kueue ---------------------------------------------------------------------------
    def _kueue(self, _key: str) -> None:
        """Kueue's scheduler and queue status, on any change to its objects (the lab's are few: all in one pass)."""
        objs = {plural: {e.key: e.obj() for e in self.store.iter(plural)} for plural in kueue.PLURALS}
        for plural, obj in kueue.reconcile(
            objs["resourceflavors"], objs["clusterqueues"], objs["localqueues"], objs["workloads"], self.now()
        ):
            self.store.replace(plural, obj)
