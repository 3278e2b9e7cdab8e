"""Provides the Kubernetes source's accounting: nodes with the GPUs their pods hold, GPU queues per namespace and per
Kueue ClusterQueue, and the Warning events about nodes, kept current from the informers' records.

:class:`AccountingMixin` is mixed into :class:`~sovtui.sources.kubernetes.KubernetesSource`; the source feeds it every
re-list and watch event, so a poll costs what changed, not the cluster's size. What needs the pods (GPU pods on a
node, queues) says unknown while they are, never 0.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...model.types import KubeNode, NodeEvent, QueueState
from .kinds import ResourceKind
from .parts import KUEUE_PART
from .records import ClusterQueueRec, EventRec, KubeWorkloads, LocalQueueRec, NodeRec, PodRec, WorkloadRec

MAX_EVENTS = 500  # most recent Warning events kept


class AccountingMixin:
    """The counts the source reports, kept from its informers' caches by :meth:`_account_relist` and
    :meth:`_account_change`."""

    # provided by KubernetesSource
    kind: str
    clock: Callable[[], float]
    kueue_version: str
    _informers: dict[str, Any]

    def _reset_aggregates(self) -> None:
        """Forget every count (a new start, or the source closed)."""
        self._nodes: dict[str, NodeRec] = {}
        self._gpu_pods: dict[str, dict[str, int]] = {}  # node → pod key → GPUs
        self._pending: dict[str, dict[str, PodRec]] = {}  # namespace → pod key → pod waiting for GPUs
        self._bound: dict[str, set[str]] = {}  # namespace → keys of GPU pods bound to a node
        self._views: dict[str, KubeNode] = {}
        self._dirty: set[str] = set()
        self._pods_unknown = ""  # why the pods are not known now ("": they are)
        self._names: list[str] | None = None  # the nodes' names, sorted; None after one came or went
        self._node_tuple: tuple[KubeNode, ...] | None = None
        self._queue_rows: tuple[tuple[str, int, int, int, float | None], ...] | None = None  # None: recount
        self._node_events: tuple[NodeEvent, ...] | None = None  # None: rebuild at the next call
        self._event_views: dict[str, tuple[EventRec, str, NodeEvent]] = {}  # event key → (its record, node, view)
        self._event_pods: frozenset[str] = frozenset()  # keys of the pods the kept events are about
        self._reset_kueue()

    def _reset_kueue(self) -> None:
        """Forget the Kueue counts (Kueue came, went, or changed version)."""
        self._kq_pending: dict[str, dict[str, WorkloadRec]] = {}  # LocalQueue "ns/name" → its pending workloads
        self._kq_summary: dict[
            str, tuple[int, int, float | None]
        ] = {}  # LocalQueue → (pending, GPUs, oldest queued), kept
        self._kq_admitted: dict[str, set[str]] = {}  # ClusterQueue → keys of its admitted workloads
        self._kueue_rows: tuple[tuple[str, int, int, int, float | None], ...] | None = None  # None: recount

    def _account_relist(self, kind: ResourceKind, items: dict[str, Any]) -> None:
        """A (re-)list replaced one cache: rebuild the counts that depend on it."""
        if kind.resource == "nodes":
            self._nodes = dict(items)
            self._views.clear()
            self._dirty = set(self._nodes)
            self._names = self._node_tuple = None
        elif kind.resource == "pods":
            self._gpu_pods, self._pending, self._bound = {}, {}, {}
            for key, pod in items.items():
                self._add_pod(key, pod)
            self._dirty |= set(self._nodes)
            self._node_tuple = self._queue_rows = self._node_events = None
        elif kind.resource == "events":
            if len(items) > MAX_EVENTS * 2:
                self._trim_events(items)
            self._node_events = None
        elif kind.resource == "workloads":
            self._kq_pending, self._kq_summary, self._kq_admitted = {}, {}, {}
            for key, wl in items.items():
                self._add_workload(key, wl)
            self._kueue_rows = None
        elif kind.resource in ("clusterqueues", "localqueues"):
            self._kueue_rows = None

    def _account_change(self, kind: ResourceKind, key: str, old: Any, new: Any) -> None:
        """A watch event changed one cached object: update the counts that depend on it."""
        if kind.resource == "pods":
            if old is not None:
                self._remove_pod(key, old)
            if new is not None:
                self._add_pod(key, new)
            # an event is placed by its pod's node: only a pod some event is about, arriving, leaving or moving, counts
            if key in self._event_pods and (old is None or new is None or old.node != new.node):
                self._node_events = None
        elif kind.resource == "nodes":
            if new is None:
                self._nodes.pop(key, None)
                self._views.pop(key, None)
            else:
                self._nodes[key] = new
            self._dirty.add(key)
            if old is None or new is None:  # one came or went; a change is found by comparing its view
                self._names = self._node_tuple = None
        elif kind.resource == "events":
            self._node_events = None
            events = self._informers["events"].items
            if new is not None and len(events) > MAX_EVENTS * 2:
                self._trim_events(events)
        elif kind.resource == "workloads":
            if old != new:  # Kueue rewrites status often; an unchanged projection changes nothing
                if old is not None:
                    self._remove_workload(key, old)
                if new is not None:
                    self._add_workload(key, new)
        elif kind.resource == "localqueues":
            if old is None or new is None or old.cluster_queue != new.cluster_queue:
                self._kueue_rows = None
        elif kind.resource == "clusterqueues":
            if old != new:
                self._kueue_rows = None

    def _add_workload(self, key: str, wl: WorkloadRec) -> None:
        if wl.state == "pending" and wl.queue:
            self._kq_pending.setdefault(wl.local_queue, {})[key] = wl
            self._kq_summary.pop(wl.local_queue, None)
            self._kueue_rows = None
        elif wl.state == "admitted" and wl.cluster_queue:
            self._kq_admitted.setdefault(wl.cluster_queue, set()).add(key)
            self._kueue_rows = None

    def _remove_workload(self, key: str, wl: WorkloadRec) -> None:
        if wl.state == "pending" and wl.queue:
            waiting = self._kq_pending.get(wl.local_queue)
            if waiting is not None:
                waiting.pop(key, None)
                if not waiting:
                    del self._kq_pending[wl.local_queue]
            self._kq_summary.pop(wl.local_queue, None)
            self._kueue_rows = None
        elif wl.state == "admitted" and wl.cluster_queue:
            admitted = self._kq_admitted.get(wl.cluster_queue)
            if admitted is not None:
                admitted.discard(key)
                if not admitted:
                    del self._kq_admitted[wl.cluster_queue]
            self._kueue_rows = None

    def _add_pod(self, key: str, pod: PodRec) -> None:
        if pod.holds_gpus:
            self._gpu_pods.setdefault(pod.node, {})[key] = pod.gpus
            self._bound.setdefault(pod.namespace, set()).add(key)
            self._dirty.add(pod.node)
            self._queue_rows = None
        elif pod.waits_for_gpus:
            self._pending.setdefault(pod.namespace, {})[key] = pod
            self._queue_rows = None

    def _remove_pod(self, key: str, pod: PodRec) -> None:
        if pod.holds_gpus:
            held = self._gpu_pods.get(pod.node)
            if held is not None:
                held.pop(key, None)
                if not held:
                    del self._gpu_pods[pod.node]
            bound = self._bound.get(pod.namespace)
            if bound is not None:
                bound.discard(key)
                if not bound:
                    del self._bound[pod.namespace]
            self._dirty.add(pod.node)
            self._queue_rows = None
        elif pod.waits_for_gpus:
            waiting = self._pending.get(pod.namespace)
            if waiting is not None:
                waiting.pop(key, None)
                if not waiting:
                    del self._pending[pod.namespace]
            self._queue_rows = None

    @staticmethod
    def _trim_events(events: dict[str, EventRec]) -> None:
        keep = sorted(events.items(), key=lambda kv: kv[1].last_seen or 0.0, reverse=True)[:MAX_EVENTS]
        events.clear()
        events.update(keep)

    def _node_view(self, rec: NodeRec) -> KubeNode:
        """A node's view: its record with the GPUs its pods hold (unknown while the pods are)."""
        held = self._gpu_pods.get(rec.name, {})
        return KubeNode(
            name=rec.name,
            ready=rec.ready,
            unschedulable=rec.unschedulable,
            taints=rec.taints,
            labels=rec.labels,
            gpu_product=rec.gpu_product,
            gpu_capacity=rec.gpu_capacity,
            gpu_allocatable=rec.gpu_allocatable,
            gpu_requested=sum(held.values()),
            conditions=rec.conditions,
            pods_with_gpus=tuple(sorted(held.items())),
            pods_unknown=self._pods_unknown,
        )

    def kube_nodes(self) -> tuple[KubeNode, ...]:
        """Every node, by name; rebuilds only the nodes that changed since the last call, and the same tuple if none did."""
        if not self._dirty and self._node_tuple is not None:
            return self._node_tuple
        views = self._views
        changed = self._node_tuple is None
        for name in self._dirty:
            if name in self._nodes:
                view = self._node_view(self._nodes[name])
                if views.get(name) != view:  # an unchanged node keeps its object: screens compare by identity
                    views[name] = view
                    changed = True
        self._dirty = set()
        if changed:
            if self._names is None:
                self._names = sorted(views)
            self._node_tuple = tuple(views[n] for n in self._names)
        assert self._node_tuple is not None
        return self._node_tuple

    def node_events(self) -> tuple[NodeEvent, ...] | None:
        """Kept Warning events about a node or a pod bound to one, newest first; ``None`` before events are listed.

        Rebuilt only after the events changed, or a pod that one of them is about came, went or moved; an event
        whose record and node are unchanged keeps its view.
        """
        inf = self._informers.get("events")
        if inf is None or not inf.synced:
            return None
        if self._node_events is not None:
            return self._node_events
        pods_inf = self._informers.get("pods")
        pods = pods_inf.items if pods_inf is not None else {}
        previous, views = self._event_views, {}
        about_pods: set[str] = set()
        kind = self.kind
        for key, ev in inf.items.items():
            if ev.object_kind == "Node":
                node = obj = ev.object_name
            elif ev.object_kind == "Pod":
                obj = f"{ev.object_namespace or ev.namespace}/{ev.object_name}"
                about_pods.add(obj)
                pod = pods.get(obj)
                node = pod.node if pod is not None else ""
            else:
                continue
            if not node:
                continue
            known = previous.get(key)
            if known is not None and known[0] is ev and known[1] == node:
                views[key] = known
            else:
                views[key] = (
                    ev,
                    node,
                    NodeEvent(node, kind, ev.object_kind, obj, ev.type, ev.reason, ev.message, ev.count, ev.last_seen),
                )
        out = sorted((v[2] for v in views.values()), key=lambda e: (-(e.last_seen or 0.0), e.node, e.object, e.reason))
        self._event_views = views
        self._event_pods = frozenset(about_pods)
        self._node_events = tuple(out[:MAX_EVENTS])
        return self._node_events

    def queues(self) -> tuple[QueueState, ...]:
        """Per namespace with GPU pods: pods waiting for GPUs (unscheduled), pods holding them, oldest wait; then per
        Kueue ClusterQueue: pending and admitted workloads, GPUs the pending ask for, the oldest one's wait."""
        if self._queue_rows is None:  # recounted only after a GPU pod came, went or was bound
            rows = []
            for ns in sorted(set(self._pending) | set(self._bound)):
                waiting = self._pending.get(ns, {})
                created = [p.created for p in waiting.values() if p.created is not None]
                rows.append(
                    (
                        ns,
                        len(waiting),
                        len(self._bound.get(ns, ())),
                        sum(p.gpus for p in waiting.values()),
                        min(created) if created else None,
                    )
                )
            self._queue_rows = tuple(rows)
        now = self.clock()
        return tuple(
            QueueState(
                name=name,
                system=system,
                pending_jobs=pending,
                running_jobs=running,
                pending_gpus=gpus,
                oldest_pending_s=max(0.0, now - oldest) if oldest is not None else None,
            )
            for system, rows in (("kubernetes", self._queue_rows), ("kueue", self._kueue_queue_rows()))
            for name, pending, running, gpus, oldest in rows
        )

    def _kueue_queue_rows(self) -> tuple[tuple[str, int, int, int, float | None], ...]:
        """(ClusterQueue, pending, admitted, pending GPUs, oldest queued) rows; recounted only after a workload came, went
        or changed state, or a queue came, went or changed. Counts come from the Workloads (as Kueue counts them: pending
        = waiting for quota, admitted = admitted and not finished) when Workloads and LocalQueues are readable, else
        from the ClusterQueues' status (then without GPUs or ages)."""
        if self._kueue_rows is not None:
            return self._kueue_rows
        infs = {r: self._informers.get(r) for r in ("clusterqueues", "localqueues", "workloads")}
        synced = {r: inf is not None and inf.synced for r, inf in infs.items()}
        cqs: dict[str, ClusterQueueRec] = infs["clusterqueues"].items if synced["clusterqueues"] else {}  # type: ignore[union-attr]
        rows = []
        if synced["workloads"] and synced["localqueues"]:
            lqs: dict[str, LocalQueueRec] = infs["localqueues"].items  # type: ignore[union-attr]
            pending: dict[str, list] = {}
            for lq_key, waiting in self._kq_pending.items():
                lq = lqs.get(lq_key)
                if lq is None or not lq.cluster_queue:
                    continue  # no such LocalQueue: Kueue holds it as inadmissible, in no ClusterQueue
                summary = self._kq_summary.get(lq_key)
                if summary is None:
                    queued = [w.queued for w in waiting.values() if w.queued is not None]
                    summary = self._kq_summary[lq_key] = (
                        len(waiting),
                        sum(w.gpus for w in waiting.values()),
                        min(queued) if queued else None,
                    )
                row = pending.setdefault(lq.cluster_queue, [0, 0, None])
                row[0] += summary[0]
                row[1] += summary[1]
                if summary[2] is not None:
                    row[2] = summary[2] if row[2] is None else min(row[2], summary[2])
            names = set(cqs) if synced["clusterqueues"] else set(pending) | set(self._kq_admitted)
            for name in sorted(names):
                n, gpus, oldest = pending.get(name, (0, 0, None))
                rows.append((name, n, len(self._kq_admitted.get(name, ())), gpus, oldest))
        else:
            rows = [(name, cq.pending, cq.admitted, 0, None) for name, cq in sorted(cqs.items())]
        self._kueue_rows = tuple(rows)
        return self._kueue_rows

    def pending_pods(self) -> tuple[PodRec, ...]:
        """Pods waiting for GPUs, oldest first, with the scheduler's reason."""
        pods = [p for waiting in self._pending.values() for p in waiting.values()]
        return tuple(sorted(pods, key=lambda p: (p.created or 0.0, p.key)))

    def pending_workloads(self) -> tuple[WorkloadRec, ...]:
        """Kueue Workloads waiting for quota, longest waiting first, with Kueue's reason."""
        wls = [w for waiting in self._kq_pending.values() for w in waiting.values()]
        return tuple(sorted(wls, key=lambda w: (w.queued or 0.0, w.key)))

    def workloads(self) -> KubeWorkloads:
        def items(resource: str) -> list:
            inf = self._informers.get(resource)
            return list(inf.items.values()) if inf is not None and inf.synced else []

        events = sorted(items("events"), key=lambda e: e.last_seen or 0.0, reverse=True)[:MAX_EVENTS]
        return KubeWorkloads(
            pdbs=tuple(sorted(items("poddisruptionbudgets"))),
            jobs=tuple(sorted(items("jobs"))),
            deployments=tuple(sorted(items("deployments"))),
            warning_events=tuple(events),
        )

    def _set_pods_unknown(self, why: str) -> None:
        """Pods became known or unknown: every node's view says so (its GPU pods and requests are then not counted)."""
        if why != self._pods_unknown:
            self._pods_unknown = why
            self._dirty |= set(self._nodes)

    def pods_unknown_reason(self) -> str:
        """Why the pods (on every node) are not known now — ``forbidden``, ``not served``, ``not listed yet`` — or ""."""
        return self._pods_unknown

    def _known_queues(self, parts: dict) -> tuple[QueueState, ...] | None:
        """The queues whose kind answered at least once: pods' namespaces and Kueue's ClusterQueues; ``None`` when
        neither is known (unknown, never an empty queue list)."""
        queues = self.queues()
        pods = self._informers.get("pods")
        known_pods = pods is not None and pods.synced
        kueue_part = parts.get(KUEUE_PART)
        kueue_on = bool(self.kueue_version)  # no Kueue served: it has no queues to know
        known_kueue = kueue_on and kueue_part is not None and (kueue_part.ok or kueue_part.last_ok_at is not None)
        if not known_pods and not known_kueue:
            return None
        if known_pods and (known_kueue or not kueue_on):
            return queues
        keep = "kubernetes" if known_pods else "kueue"
        return tuple(q for q in queues if q.system == keep)
