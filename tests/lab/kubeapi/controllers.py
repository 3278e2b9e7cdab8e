"""Provides the fake cluster's control loops: scheduler, kubelet, ReplicaSet/Deployment/Job/DaemonSet, PDB, node controllers, Kueue."""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import uuid
from typing import Any

from . import kueue
from .selectors import labels_match, selector_from_label_selector
from .store import Entry, Store, micro_time, rfc3339

GPU = "nvidia.com/gpu"
MIRROR = "kubernetes.io/config.mirror"
#: the lab's stand-in for how long a pod's containers take to exit after SIGTERM (seconds; absent: ``stop_delay``);
#: the kubelet kills them when the grace period ends, so a pod that takes longer goes at its deletionTimestamp
STOP_AFTER = "lab.sovtui.io/stop-after-s"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of generated names (rand.SafeEncodeString)
_rng = random.Random(7)


def suffix(n: int = 5) -> str:
    return "".join(_rng.choice(_SAFE) for _ in range(n))


def template_hash(template: dict) -> str:
    digest = int.from_bytes(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()[:5], "big")
    out = ""
    while digest and len(out) < 10:
        digest, r = divmod(digest, len(_SAFE))
        out += _SAFE[r]
    return out or "b"


def quantity(value: Any) -> int:
    if value is None:
        return 0
    try:
        return int(str(value))
    except ValueError:
        return int(float(str(value).rstrip("m")) / 1000) if str(value).endswith("m") else 0


def _req(container: dict) -> int:
    res = container.get("resources") or {}
    return quantity((res.get("requests") or {}).get(GPU, (res.get("limits") or {}).get(GPU)))


def pod_gpus(pod: dict) -> int:
    """The pod's effective ``nvidia.com/gpu`` request: max(sum of containers + sidecars, any init container)."""
    spec = pod.get("spec") or {}
    sidecars = sum(_req(c) for c in spec.get("initContainers") or () if c.get("restartPolicy") == "Always")
    main = sum(_req(c) for c in spec.get("containers") or ()) + sidecars
    init = max((_req(c) for c in spec.get("initContainers") or () if c.get("restartPolicy") != "Always"), default=0)
    return max(main, init)


def terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def deleting(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def ready(pod: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (pod.get("status") or {}).get("conditions") or ()
    )


def node_ready(node: dict) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in (node.get("status") or {}).get("conditions") or ()
    )


def owner(obj: dict) -> dict | None:
    for ref in obj["metadata"].get("ownerReferences") or ():
        if ref.get("controller"):
            return ref
    return None


def owner_ref(kind: str, api_version: str, obj: dict) -> dict:
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": obj["metadata"]["name"],
        "uid": obj["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def tolerates(pod: dict, taint: dict) -> bool:
    for tol in (pod.get("spec") or {}).get("tolerations") or ():
        if tol.get("effect") and tol["effect"] != taint.get("effect"):
            continue
        if tol.get("operator") == "Exists":
            if not tol.get("key") or tol["key"] == taint.get("key"):
                return True
        elif tol.get("key") == taint.get("key") and tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def set_condition(
    conditions: list, ctype: str, status: str, reason: str = "", message: str = "", now: str = ""
) -> list:
    """Conditions with ``ctype`` set; the transition time only moves when the status does."""
    out = [dict(c) for c in conditions]
    for cond in out:
        if cond["type"] == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = now
            cond.update(status=status)
            if reason:
                cond["reason"] = reason
            if message:
                cond["message"] = message
            return out
    cond = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": now}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    out.append(cond)
    return out


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
        self._mirrors: dict[str, dict] = {}
        #: pods the kubelet is stopping: key → (uid, when it saw the deletion, when it removes the pod, its timer)
        self._stopping: dict[str, tuple[str, float, float, asyncio.TimerHandle | None]] = {}
        #: the scheduler's decoded view of each object version it saw last pass (entries are immutable per version)
        self._facts: dict[str, tuple[Entry, tuple[str, bool, int, bool]]] = {}
        self._node_objs: dict[str, tuple[Entry, dict]] = {}
        store.listeners.append(self._on_change)

    # -- plumbing --------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def enqueue(self, kind: str, key: str = "") -> None:
        self._queue[(kind, key)] = None
        self._wake.set()

    def _later(self, delay: float, kind: str, key: str) -> None:
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
                    getattr(self, "_do_" + item[0])(item[1])
                except Exception as exc:  # noqa: BLE001 - a bug in one loop must not stop the others
                    print(f"controller {item}: {type(exc).__name__}: {exc}", flush=True)
                rounds += 1
                if rounds % 50 == 0:
                    await asyncio.sleep(0)

    def _now(self) -> float:
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
                self._mirrors[entry.key] = obj
                self._later(0.3, "mirror", entry.key)
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
        t = self._now()
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
            started = _stamp_seconds(meta["deletionTimestamp"]) - old_grace
            meta["deletionTimestamp"] = rfc3339(started + grace)
            meta["deletionGracePeriodSeconds"] = grace
            return self.store.replace("pods", pod, dry_run=dry_run)
        meta["deletionTimestamp"] = rfc3339(self._now() + grace)
        meta["deletionGracePeriodSeconds"] = grace
        if evicted:
            status = pod.setdefault("status", {})
            status["conditions"] = set_condition(
                status.get("conditions") or [],
                "DisruptionTarget",
                "True",
                "EvictionByEvictionAPI",
                "Eviction API: evicting",
                rfc3339(self._now()),
            )
        return self.store.replace("pods", pod, dry_run=dry_run)

    def _do_kubelet(self, key: str) -> None:
        entry = self.store.objects["pods"].get(key)
        if entry is None:
            return
        pod = entry.obj()
        if deleting(pod):
            self._stop(key, pod)
        elif (pod.get("spec") or {}).get("nodeName") and (pod.get("status") or {}).get("phase") == "Pending":
            node = self.store.get("nodes", "", pod["spec"]["nodeName"])
            if node is not None and node_ready(node.obj()):
                self._later(self.start_delay, "kubelet_start", key)

    def _stop(self, key: str, pod: dict) -> None:
        """The kubelet saw the pod's deletion: it sends SIGTERM, and removes the pod when its containers have exited
        (after ``STOP_AFTER`` seconds) or when the grace period ends (SIGKILL), whichever comes first."""
        meta = pod["metadata"]
        now = self._now()
        known = self._stopping.get(key)
        seen = known[1] if known is not None and known[0] == meta["uid"] else now
        try:
            exits = float((meta.get("annotations") or {}).get(STOP_AFTER, self.stop_delay))
        except ValueError:
            exits = self.stop_delay
        due = seen + max(0.0, min(exits, float(meta.get("deletionGracePeriodSeconds") or 0)))
        if known is not None and known[0] == meta["uid"] and known[2] <= due:
            return
        if known is not None and known[3] is not None:
            known[3].cancel()
        handle = asyncio.get_running_loop().call_later(max(0.0, due - now), self.enqueue, "kubelet_stop", key)
        self._stopping[key] = (meta["uid"], seen, due, handle)

    def _do_kubelet_stop(self, key: str) -> None:
        entry = self.store.objects["pods"].get(key)
        known = self._stopping.get(key)
        if entry is None or not deleting(entry.obj()):
            self._stopping.pop(key, None)
            return
        left = known[2] - self._now() if known is not None and known[0] == entry.obj()["metadata"]["uid"] else 0.0
        if left > 0.005:  # woken early (the loop's clock is not the wall clock): wait for the rest
            handle = asyncio.get_running_loop().call_later(left, self.enqueue, "kubelet_stop", key)
            self._stopping[key] = (*known[:3], handle)  # type: ignore[index]
            return
        self._stopping.pop(key, None)
        self.store.delete("pods", entry.namespace, entry.name)

    def _do_kubelet_start(self, key: str) -> None:
        entry = self.store.objects["pods"].get(key)
        if entry is None:
            return
        pod = entry.obj()
        status = pod.setdefault("status", {})
        if deleting(pod) or status.get("phase") != "Pending" or not pod["spec"].get("nodeName"):
            return
        start_pod(pod, self._now())
        delay = max(
            (
                int((c.get("readinessProbe") or {}).get("initialDelaySeconds") or 0)
                for c in pod["spec"].get("containers") or ()
            ),
            default=0,
        )
        if delay > 0:  # running, but not Ready until its readiness probe first passes
            _set_ready(pod, False, rfc3339(self._now()))
            self._later(delay, "kubelet_ready", key)
        self.store.replace("pods", pod)
        self.record(
            pod,
            "Pod",
            "Normal",
            "Started",
            f"Started container {pod['spec']['containers'][0]['name']}",
            "kubelet",
            pod["spec"]["nodeName"],
        )

    def _do_kubelet_ready(self, key: str) -> None:
        entry = self.store.objects["pods"].get(key)
        if entry is None:
            return
        pod = entry.obj()
        if deleting(pod) or ready(pod) or (pod.get("status") or {}).get("phase") != "Running":
            return
        _set_ready(pod, True, rfc3339(self._now()))
        self.store.replace("pods", pod)

    def _do_mirror(self, key: str) -> None:
        obj = self._mirrors.pop(key, None)
        if obj is None or key in self.store.objects["pods"]:
            return
        obj["metadata"] = {
            k: v
            for k, v in obj["metadata"].items()
            if k
            not in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds")
        }
        obj["status"] = {"phase": "Pending", "conditions": []}
        self.store.create("pods", obj)

    # -- scheduler -------------------------------------------------------------------------
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

    def _do_sched(self, _key: str) -> None:
        nodes = []
        node_cache: dict[str, tuple[Entry, dict]] = {}
        for entry in self.store.entries("nodes"):  # decoded once per node version
            known = self._node_objs.get(entry.key)
            obj = known[1] if known is not None and known[0] is entry else entry.obj()
            node_cache[entry.key] = (entry, obj)
            nodes.append(obj)
        self._node_objs = node_cache
        used: dict[str, int] = {}
        pending: list[dict] = []
        facts_cache: dict[str, tuple[Entry, tuple[str, bool, int, bool]]] = {}
        for entry in self.store.iter("pods"):
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
                    why = self._unfit(pod, node, want, used.get(node["metadata"]["name"], 0))
                    if why:
                        reasons[why] = reasons.get(why, 0) + 1
                    else:
                        free = quantity(node["status"].get("allocatable", {}).get(GPU)) - used.get(
                            node["metadata"]["name"], 0
                        )
                        fits.append((free, node["metadata"]["name"]))
                alike[shape] = (binds, list(fits), reasons)
            now = rfc3339(self._now())
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
                self.store.replace("pods", pod)
                self.record(
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
                    self.store.replace("pods", pod)
                    self.record(pod, "Pod", "Warning", "FailedScheduling", message, "default-scheduler")

    @staticmethod
    def _unfit(pod: dict, node: dict, want: int, used: int) -> str:
        return unfit(pod, node, want, used)

    # -- workloads ------------------------------------------------------------------------
    def _owned(self, uid: str, namespace: str) -> list[dict]:
        out = []
        for entry in self.store.iter("pods"):
            if entry.namespace != namespace:
                continue
            pod = entry.obj()
            ref = owner(pod)
            if ref is not None and ref["uid"] == uid:
                out.append(pod)
        return out

    def _new_pod(
        self, template: dict, namespace: str, name: str, ref: dict, extra_labels: dict | None = None, node: str = ""
    ) -> dict:
        return shape_pod(template, namespace, name, ref, extra_labels, node)

    def _do_rs(self, key: str) -> None:
        entry = self.store.objects["replicasets"].get(key)
        if entry is None:
            return
        rs = entry.obj()
        meta = rs["metadata"]
        if deleting(rs):
            return
        pods = [p for p in self._owned(meta["uid"], entry.namespace) if not terminal(p)]
        active = [p for p in pods if not deleting(p)]
        want = rs["spec"].get("replicas", 1)
        if len(active) < want:
            ref = owner_ref("ReplicaSet", "apps/v1", rs)
            for _ in range(want - len(active)):
                pod = self._new_pod(rs["spec"]["template"], entry.namespace, f"{meta['name']}-{suffix()}", ref)
                self.store.create("pods", pod)
                self.record(
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
                self.delete_pod(entry.namespace, pod["metadata"]["name"])
                self.record(
                    rs,
                    "ReplicaSet",
                    "Normal",
                    "SuccessfulDelete",
                    f"Deleted pod: {pod['metadata']['name']}",
                    "replicaset-controller",
                )
        active = [p for p in self._owned(meta["uid"], entry.namespace) if not terminal(p) and not deleting(p)]
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
            self.store.replace("replicasets", rs)

    def _do_deploy(self, key: str) -> None:
        entry = self.store.objects["deployments"].get(key)
        if entry is None:
            return
        dep = entry.obj()
        meta, spec = dep["metadata"], dep["spec"]
        ns = entry.namespace
        replicas = spec.get("replicas", 1)
        template = spec["template"]
        phash = template_hash(template)
        mine = []
        for rs_entry in self.store.iter("replicasets"):
            if rs_entry.namespace != ns:
                continue
            rs = rs_entry.obj()
            ref = owner(rs)
            if ref is not None and ref["uid"] == meta["uid"]:
                mine.append(rs)
        new = next((rs for rs in mine if (rs["metadata"].get("labels") or {}).get("pod-template-hash") == phash), None)
        old = [rs for rs in mine if rs is not new]
        revision = 1 + max(
            (
                int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "0"))
                for rs in mine
            ),
            default=0,
        )
        strategy = spec.get("strategy") or {}
        rolling = strategy.get("rollingUpdate") or {}
        surge = _scaled(rolling.get("maxSurge", "25%"), replicas, up=True)
        unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        if strategy.get("type") == "Recreate":
            surge, unavailable = 0, replicas
        old_total = sum(rs["spec"].get("replicas", 0) for rs in old)
        now = rfc3339(self._now())
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
            self.store.create("replicasets", new)
            self.record(
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
            self.store.replace("deployments", dep)
            return
        cur = new["spec"].get("replicas", 0)
        if not old:
            target = replicas
        else:
            target = max(cur, min(replicas, replicas + surge - old_total))
        if target != cur:
            new["spec"]["replicas"] = target
            self.store.replace("replicasets", new)
            verb = "up" if target > cur else "down"
            self.record(
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
                self.store.replace("replicasets", rs)
                self.record(
                    dep,
                    "Deployment",
                    "Normal",
                    "ScalingReplicaSet",
                    f"Scaled down replica set {rs['metadata']['name']} to {have - cut} from {have}",
                    "deployment-controller",
                )
        mine = [
            e.obj()
            for e in self.store.iter("replicasets")
            if e.namespace == ns and (owner(e.obj()) or {}).get("uid") == meta["uid"]
        ]
        st = lambda rs, k: (rs.get("status") or {}).get(k, 0)  # noqa: E731
        new_now = next(rs for rs in mine if rs["metadata"]["name"] == new["metadata"]["name"])
        total = sum(st(rs, "replicas") for rs in mine)
        ready_n = sum(st(rs, "readyReplicas") for rs in mine)
        avail = sum(st(rs, "availableReplicas") for rs in mine)
        updated = st(new_now, "replicas")
        complete = (
            updated == replicas
            and total == replicas
            and avail == replicas
            and new_now["spec"].get("replicas") == replicas
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
        if _strip_times(old_status) != _strip_times(status):
            dep["status"] = status
            self.store.replace("deployments", dep)

    def _do_job(self, key: str) -> None:
        entry = self.store.objects["jobs"].get(key)
        if entry is None:
            return
        job = entry.obj()
        meta, spec = job["metadata"], job["spec"]
        status = dict(job.get("status") or {})
        pods = self._owned(meta["uid"], entry.namespace)
        succeeded = sum(1 for p in pods if p["status"].get("phase") == "Succeeded")
        failed = sum(1 for p in pods if p["status"].get("phase") == "Failed")
        active = [p for p in pods if not terminal(p) and not deleting(p)]
        completions = spec.get("completions", 1)
        done = any(
            c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in status.get("conditions") or ()
        )
        want = 0 if done or spec.get("suspend") else min(spec.get("parallelism", 1), completions - succeeded)
        if len(active) < want:
            ref = owner_ref("Job", "batch/v1", job)
            labels = {
                "batch.kubernetes.io/controller-uid": meta["uid"],
                "batch.kubernetes.io/job-name": meta["name"],
                "controller-uid": meta["uid"],
                "job-name": meta["name"],
            }
            for _ in range(want - len(active)):
                pod = self._new_pod(spec["template"], entry.namespace, f"{meta['name']}-{suffix()}", ref, labels)
                pod["spec"]["restartPolicy"] = spec["template"]["spec"].get("restartPolicy", "Never")
                self.store.create("pods", pod)
                self.record(
                    job,
                    "Job",
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    "job-controller",
                )
            active = [p for p in self._owned(meta["uid"], entry.namespace) if not terminal(p) and not deleting(p)]
        new = dict(status)
        new["active"] = len(active)
        new["succeeded"] = succeeded
        new["failed"] = failed
        new["ready"] = sum(1 for p in active if ready(p))
        new = {k: v for k, v in new.items() if v or k in ("conditions", "startTime", "ready")}
        if succeeded >= completions and not done:
            now = rfc3339(self._now())
            new["completionTime"] = now
            new["conditions"] = set_condition(new.get("conditions") or [], "Complete", "True", now=now)
        if new != status:
            job["status"] = new
            self.store.replace("jobs", job)

    def _do_ds(self, key: str) -> None:
        entry = self.store.objects["daemonsets"].get(key)
        if entry is None:
            return
        ds = entry.obj()
        meta, spec = ds["metadata"], ds["spec"]
        template = spec["template"]
        pods = [p for p in self._owned(meta["uid"], entry.namespace) if not terminal(p)]
        by_node = {p["spec"].get("nodeName"): p for p in pods if not deleting(p)}
        nodes = {e.name: e.obj() for e in self.store.iter("nodes")}
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
            if not self._unfit(probe, dict(node, spec={**node["spec"], "unschedulable": False}), 0, 0)
        ]
        ref = owner_ref("DaemonSet", "apps/v1", ds)
        for name in eligible:
            if name not in by_node:
                pod = self._new_pod(
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
                self.store.create("pods", pod)
                self.record(
                    ds,
                    "DaemonSet",
                    "Normal",
                    "SuccessfulCreate",
                    f"Created pod: {pod['metadata']['name']}",
                    "daemonset-controller",
                )
        for name, pod in by_node.items():
            if name not in nodes:
                self.delete_pod(entry.namespace, pod["metadata"]["name"])
        pods = [p for p in self._owned(meta["uid"], entry.namespace) if not terminal(p) and not deleting(p)]
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
            self.store.replace("daemonsets", ds)

    def _do_sts(self, key: str) -> None:
        from .statefulsets import reconcile

        reconcile(self, key)

    def _do_gc(self, uid: str) -> None:
        for plural in ("replicasets", "pods"):
            for entry in self.store.iter(plural):
                obj = entry.obj()
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or ()):
                    if plural == "pods":
                        self.delete_pod(entry.namespace, entry.name)
                    else:
                        self.store.delete(plural, entry.namespace, entry.name)

    # -- Kueue ---------------------------------------------------------------------------
    def _do_kueue(self, _key: str) -> None:
        """Kueue's scheduler and queue status, on any change to its objects (the lab's are few: all in one pass)."""
        objs = {plural: {e.key: e.obj() for e in self.store.iter(plural)} for plural in kueue.PLURALS}
        for plural, obj in kueue.reconcile(
            objs["resourceflavors"], objs["clusterqueues"], objs["localqueues"], objs["workloads"], self._now()
        ):
            self.store.replace(plural, obj)

    # -- disruption budgets --------------------------------------------------------------
    def _do_pdbns(self, namespace: str) -> None:
        pods = [e.obj() for e in self.store.iter("pods") if e.namespace == namespace]
        for entry in self.store.iter("poddisruptionbudgets"):
            if entry.namespace != namespace:
                continue
            pdb = entry.obj()
            status = pdb_status(pdb, pods, self._now())
            if status != pdb.get("status"):
                pdb["status"] = status
                self.store.replace("poddisruptionbudgets", pdb)

    # -- nodes ---------------------------------------------------------------------------
    def _do_node(self, key: str) -> None:
        entry = self.store.objects["nodes"].get(key)
        if entry is None:
            return
        node = entry.obj()
        taints = list(node["spec"].get("taints") or [])
        has = any(t.get("key") == "node.kubernetes.io/unschedulable" for t in taints)
        cordoned = bool(node["spec"].get("unschedulable"))
        if cordoned and not has:
            taints.append(
                {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": rfc3339(self._now())}
            )
        elif has and not cordoned:
            taints = [t for t in taints if t.get("key") != "node.kubernetes.io/unschedulable"]
        else:
            return
        if taints:
            node["spec"]["taints"] = taints
        else:
            node["spec"].pop("taints", None)
        self.store.replace("nodes", node)
        self.record(
            node,
            "Node",
            "Normal",
            "NodeNotSchedulable" if cordoned else "NodeSchedulable",
            f"Node {node['metadata']['name']} status is now: {'NodeNotSchedulable' if cordoned else 'NodeSchedulable'}",
            "kubelet",
            node["metadata"]["name"],
        )


def _set_ready(pod: dict, is_ready: bool, now: str) -> None:
    status = pod["status"]
    word = "True" if is_ready else "False"
    for ctype in ("Ready", "ContainersReady"):
        status["conditions"] = set_condition(
            status.get("conditions") or [],
            ctype,
            word,
            "" if is_ready else "ContainersNotReady",
            "" if is_ready else "containers with unready status",
            now,
        )
    for cs in status.get("containerStatuses") or ():
        cs["ready"] = is_ready
    if is_ready:
        for cond in status["conditions"]:
            if cond["type"] in ("Ready", "ContainersReady"):
                cond.pop("reason", None)
                cond.pop("message", None)


def _stamp_seconds(value: str) -> float:
    import datetime as dt

    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()


def shape_pod(
    template: dict, namespace: str, name: str, ref: dict | None, extra_labels: dict | None = None, node: str = ""
) -> dict:
    """A pod from a template, with the API's defaults filled in (as the controllers and the API create them)."""
    tmeta = template.get("metadata") or {}
    pod = {
        "metadata": {
            "name": name,
            "generateName": name[: name.rfind("-") + 1],
            "namespace": namespace,
            "labels": {**(tmeta.get("labels") or {}), **(extra_labels or {})},
        },
        "spec": json.loads(json.dumps(template.get("spec") or {})),
        "status": {"phase": "Pending", "qosClass": "BestEffort"},
    }
    if ref is not None:
        pod["metadata"]["ownerReferences"] = [ref]
    if tmeta.get("annotations"):
        pod["metadata"]["annotations"] = dict(tmeta["annotations"])
    spec = pod["spec"]
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
    spec.setdefault("priority", 0)
    for c in spec.get("containers") or ():
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("imagePullPolicy", "IfNotPresent")
        c.setdefault("resources", {})
        res = c["resources"]
        if (res.get("limits") or {}).get(GPU) and GPU not in (res.get("requests") or {}):
            res.setdefault("requests", {})[GPU] = res["limits"][GPU]
    spec.setdefault(
        "tolerations",
        [
            {
                "key": "node.kubernetes.io/not-ready",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
            {
                "key": "node.kubernetes.io/unreachable",
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": 300,
            },
        ],
    )
    if node:
        spec["nodeName"] = node
    return pod


def _strip_times(status: dict) -> dict:
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if not k.endswith("Time")} for c in status.get("conditions") or ()]
    return out


def _scaled(value: Any, total: int, *, up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        exact = total * int(text[:-1]) / 100
        return math.ceil(exact) if up else math.floor(exact)
    return int(text)


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


def start_pod(pod: dict, now: float) -> None:
    """What the kubelet reports once the containers run: phase Running, ready conditions, container statuses."""
    stamp = rfc3339(now)
    status = pod.setdefault("status", {})
    status["phase"] = "Running"
    status["hostIP"] = status.get("hostIP") or "10.0.0.1"
    status["podIP"] = status.get("podIP") or f"10.244.{_rng.randrange(1, 250)}.{_rng.randrange(2, 250)}"
    status["podIPs"] = [{"ip": status["podIP"]}]
    status["startTime"] = status.get("startTime") or stamp
    conds = status.get("conditions") or []
    for ctype in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"):
        conds = set_condition(conds, ctype, "True", now=stamp)
    status["conditions"] = conds
    status["containerStatuses"] = [
        {
            "name": c["name"],
            "image": c.get("image", ""),
            "imageID": f"{c.get('image', '')}@sha256:{hashlib.sha256(c.get('image', '').encode()).hexdigest()}",
            "containerID": f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}",
            "ready": True,
            "started": True,
            "restartCount": 0,
            "state": {"running": {"startedAt": stamp}},
            "lastState": {},
        }
        for c in pod["spec"].get("containers") or ()
    ]
    status.setdefault("qosClass", "BestEffort")


def pdb_status(pdb: dict, pods: list[dict], now: float) -> dict:
    """A PodDisruptionBudget's status as the disruption controller computes it from the pods it selects."""
    sel = selector_from_label_selector(pdb["spec"].get("selector"))
    matching = [
        p for p in pods if sel is not None and labels_match(sel, p["metadata"].get("labels") or {}) and not terminal(p)
    ]
    live = [p for p in matching if not deleting(p)]
    old = pdb.get("status") or {}
    disrupted = {
        name: at
        for name, at in (old.get("disruptedPods") or {}).items()
        if any(p["metadata"]["name"] == name and not deleting(p) for p in matching)
    }
    expected = len(live)
    healthy = sum(1 for p in live if ready(p) and p["metadata"]["name"] not in disrupted)
    spec = pdb["spec"]
    if "minAvailable" in spec:
        desired = _scaled(spec["minAvailable"], expected, up=True)
    elif "maxUnavailable" in spec:
        desired = max(0, expected - _scaled(spec["maxUnavailable"], expected, up=True))
    else:
        desired = expected
    allowed = max(0, healthy - desired)
    stamp = rfc3339(now)
    previous = next((c for c in old.get("conditions") or () if c["type"] == "DisruptionAllowed"), None)
    status_word = "True" if allowed > 0 else "False"
    cond = {
        "type": "DisruptionAllowed",
        "status": status_word,
        "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
        "message": "",
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "lastTransitionTime": previous["lastTransitionTime"]
        if previous and previous["status"] == status_word
        else stamp,
    }
    out = {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [cond],
    }
    if disrupted:
        out["disruptedPods"] = disrupted
    return out
