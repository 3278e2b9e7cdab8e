"""Provides the Kubernetes source: informer caches (list, then watch) of nodes, pods, PDBs, Jobs, Deployments, events and Kueue.

The official ``kubernetes`` client is imported lazily; its asyncio flavour (``kubernetes.aio``, shipped in the same
package) loads the kubeconfig as kubectl does (contexts, TLS, tokens, exec and OIDC plugins) and makes the requests.
Responses are read as raw JSON and projected to small records, because the generated models cost far more time and
memory than a 20,000-pod cluster allows.

Each resource has an informer: one paginated list that yields a resourceVersion, then a watch from it (with
bookmarks) that keeps the cache current; a dropped connection resumes the watch from the last version seen, a 410
Expired re-lists. A poll (:meth:`KubernetesSource.fetch`) therefore costs what changed, not the cluster's size.
RBAC is respected: a denied verb is reported (:class:`KubeForbidden` names it), never worked around.

Kueue's custom resources (ClusterQueues, LocalQueues, Workloads) are read when the cluster serves their API group,
as discovery (``/apis``) tells, checked at start and every few minutes after (CRDs come and go); without the CRDs
nothing is said.

Only nodes (and the API itself) carry the whole source: every other kind is a part (:mod:`.parts`) that may be
denied, not served or not listed yet on its own, and is reported as such; what needs it (GPU pods on a node, queues)
then says unknown, never 0. Every read is bounded in time and in size.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from typing import Any

from ...config import SiteConfig
from ...model.types import DoctorCheck, KubeNode, NodeEvent, QueueState, SourceData
from ..base import Source, SourceError, Timeout, jittered_backoff
from . import errors
from .drain import DrainMixin
from .informer import Informer, InformerStats
from .kinds import KINDS, KUEUE_GROUP, KUEUE_VERSIONS, ResourceKind, kueue_kinds, served_version
from .parts import KUEUE_PART, doctor_checks, kind_parts, unknown_why
from .records import (
    ClusterQueueRec,
    EventRec,
    KubeWorkloads,
    LocalQueueRec,
    NodeRec,
    PodRec,
    WorkloadRec,
)
from .wire import bounded, call_raw, import_client

log = logging.getLogger(__name__)

Clock = Callable[[], float]

MAX_EVENTS = 500  # most recent Warning events kept
KUEUE_RECHECK_S = 300.0  # how often discovery is asked again whether Kueue is (still) served


# ================================================================================== the source
class KubernetesSource(DrainMixin, Source):
    """Nodes with their GPU accounting, pending GPU pods per namespace and Kueue's ClusterQueues, from the Kubernetes API."""

    name = "kubernetes"
    kind = "kubernetes"
    #: a watch silent for this long is presumed dead and resumed (servers send a bookmark about every minute)
    watch_idle_s = 150.0

    def __init__(
        self,
        site: SiteConfig,
        *,
        kubeconfig: str | os.PathLike | None = None,
        context: str | None = None,
        clock: Clock = time.time,
        kinds: Iterable[ResourceKind] = KINDS,
        kueue: bool = True,
    ) -> None:
        self.site = site
        self.kubeconfig = str(kubeconfig) if kubeconfig else None
        self.context = context or site.kube_context
        self.clock = clock
        self.interval_s = site.refresh_s
        self.timeout_s = site.timeout_s
        self.kinds = tuple(kinds)
        self.version = ""
        self.server = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._api: Any = None
        self._cfg: Any = None
        self._loader: Any = None
        self._informers: dict[str, Informer] = {}
        self._wake: asyncio.Event | None = None
        self._start_lock: asyncio.Lock | None = None
        self._last_refresh = 0.0
        self._closing: set[asyncio.Task] = set()
        self._version_task: asyncio.Task | None = None
        self.kueue = kueue  # read Kueue's objects when the cluster serves them
        self.kueue_version = ""  # the Kueue API version read; "" while not served (or not yet known)
        self._kueue_task: asyncio.Task | None = None
        self._kueue_wake: asyncio.Event | None = None  # set: discovery runs again before its next turn
        self._rediscovered_at = -10.0
        self._kueue_known = False  # discovery has answered at least once
        self._kueue_error: SourceError | None = None  # the last discovery failure, until one succeeds
        self._init_drain()
        self._reset_aggregates()

    # -- aggregates, kept current by the informers' callbacks ------------------------------------
    def _reset_aggregates(self) -> None:
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
        self._reset_drain_index()
        self._reset_kueue()

    def _reset_kueue(self) -> None:
        self._kq_pending: dict[str, dict[str, WorkloadRec]] = {}  # LocalQueue "ns/name" → its pending workloads
        self._kq_summary: dict[
            str, tuple[int, int, float | None]
        ] = {}  # LocalQueue → (pending, GPUs, oldest queued), kept
        self._kq_admitted: dict[str, set[str]] = {}  # ClusterQueue → keys of its admitted workloads
        self._kueue_rows: tuple[tuple[str, int, int, int, float | None], ...] | None = None  # None: recount

    def on_relist(self, kind: ResourceKind, items: dict[str, Any]) -> None:
        """A (re-)list replaced one cache: rebuild what depends on it."""
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
            self._index_pods(items)
        elif kind.resource == "poddisruptionbudgets":
            self._index_pdbs(items)
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

    def on_change(self, kind: ResourceKind, key: str, old: Any, new: Any) -> None:
        """A watch event changed one cached object: update what depends on it."""
        if kind.resource == "pods":
            if old is not None:
                self._remove_pod(key, old)
            if new is not None:
                self._add_pod(key, new)
            # an event is placed by its pod's node: only a pod some event is about, arriving, leaving or moving, counts
            if key in self._event_pods and (old is None or new is None or old.node != new.node):
                self._node_events = None
            self._index_pod(key, old, new)
        elif kind.resource == "poddisruptionbudgets":
            self._index_pdb(key, old, new)
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

    def _node_view(self, name: str) -> KubeNode:
        rec = self._nodes[name]
        held = self._gpu_pods.get(name, {})
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
                view = self._node_view(name)
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

    def informer_stats(self) -> dict[str, InformerStats]:
        return {name: inf.stats for name, inf in self._informers.items()}

    # -- connection ---------------------------------------------------------------------------
    def _where(self) -> str:
        ctx = (
            self.context
            or (self._loader.current_context.get("name") if self._loader is not None else "")
            or "current context"
        )
        return f"{self.server or 'the API server'} (context {ctx})"

    async def _load_config(self) -> None:
        from kubernetes.aio import client, config

        cfg = client.Configuration()
        path = self.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            loader = await bounded(
                config.load_kube_config(
                    config_file=path, context=self.context, client_configuration=cfg, persist_config=False
                ),
                self.timeout_s,
            )
        except TimeoutError:
            raise Timeout(
                f"kubeconfig {path}: the credential plugin did not answer within {self.timeout_s:g}s"
            ) from None
        except (config.ConfigException, OSError, ValueError, KeyError) as exc:
            raise SourceError(
                f"kubeconfig {path}: {exc}", hint="check $KUBECONFIG and the site's kube_context"
            ) from None
        if "exec" in getattr(loader, "_user", {}) or "auth-provider" in getattr(loader, "_user", {}):

            async def refresh(conf: Any) -> None:  # exec/OIDC tokens expire: let the loader renew them
                if "exec" in loader._user:
                    await loader.load_from_exec_plugin()
                if getattr(loader, "token", None):
                    conf.api_key["BearerToken"] = loader.token

            cfg.refresh_api_key_hook = refresh
        self._cfg, self._loader = cfg, loader
        self.server = cfg.host

    async def refresh_credentials(self) -> None:
        """After a 401: read the kubeconfig again (rotated token file, new exec/OIDC token), at most every 30 s."""
        if self._cfg is None or time.monotonic() - self._last_refresh < 30:
            return
        self._last_refresh = time.monotonic()
        from kubernetes.aio import config

        path = self.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
        try:
            await bounded(
                config.load_kube_config(
                    config_file=path, context=self.context, client_configuration=self._cfg, persist_config=False
                ),
                self.timeout_s,
            )
        except Exception as exc:  # noqa: BLE001 - the 401 stays the reported error
            log.info("kubernetes: reloading credentials failed: %s", exc)

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (the old one's tasks died with it)
            self._forget()
            self._loop = loop
            self._wake = asyncio.Event()
            self._start_lock = asyncio.Lock()
        assert self._start_lock is not None
        async with self._start_lock:
            if self._api is not None:
                return
            # importing the client takes a second or more: not on the event loop the UI draws with
            await asyncio.to_thread(import_client, self.kinds)
            from kubernetes.aio import client

            await self._load_config()
            self._api = client.ApiClient(self._cfg)
            self._informers = {kind.resource: Informer(kind, self) for kind in self.kinds}
            for inf in self._informers.values():
                inf.task = loop.create_task(inf.run(), name=f"kubernetes:{inf.kind.resource}")
            self._version_task = loop.create_task(self._fetch_version(), name="kubernetes:version")
            if self.kueue:
                self._kueue_task = loop.create_task(self._discover_kueue(), name="kubernetes:kueue-discovery")

    async def _fetch_version(self) -> None:
        from kubernetes.aio import client

        try:
            status, raw, _ = await call_raw(
                client.VersionApi(self._api).get_code_without_preload_content, self.timeout_s
            )
            if status == 200:
                self.version = str(json.loads(raw).get("gitVersion", ""))
        except Exception as exc:  # noqa: BLE001 - the informers report connection problems
            log.debug("kubernetes: /version failed: %s", exc)

    async def _discover_kueue(self) -> None:
        """Ask discovery whether Kueue's API is served (its CRDs installed), at start and every few minutes; start its
        informers when it appears, stop them when it goes. A failed discovery is retried sooner."""
        from kubernetes.aio import client

        kind = ResourceKind("apis", "", "", "", dict)
        failures = 0
        while self._api is not None:
            try:
                status, raw, _ = await call_raw(
                    client.ApisApi(self._api).get_api_versions_without_preload_content, self.timeout_s
                )
                if status != 200:
                    raise self.http_error(status, raw, "get", kind)
                version = served_version(json.loads(raw), KUEUE_GROUP, KUEUE_VERSIONS)
                self._kueue_error, failures, delay = None, 0, KUEUE_RECHECK_S
                self._use_kueue(version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reported in the poll's notes, retried
                failures += 1
                self._kueue_error = self.classify(exc, "get", kind)
                delay = jittered_backoff(failures, 2.0, min(KUEUE_RECHECK_S, 2.0 * 2**6))
                log.info("kubernetes: discovery of %s: %s; retrying in %.0fs", KUEUE_GROUP, self._kueue_error, delay)
            self._kueue_known = True
            self._poke()
            wake = self._kueue_wake = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await bounded(wake.wait(), delay)

    def _use_kueue(self, version: str) -> None:
        """Read Kueue at ``version`` ("": not at all): informers started or stopped to match."""
        if version == self.kueue_version or self._loop is None:
            return
        for kind in kueue_kinds(self.kueue_version) if self.kueue_version else ():
            inf = self._informers.pop(kind.resource, None)
            if inf is not None:
                inf.stopped = True
                if inf.task is not None:
                    inf.task.cancel()
                    self._closing.add(inf.task)
                    inf.task.add_done_callback(self._closing.discard)
        self._reset_kueue()
        self.kueue_version = version
        for kind in kueue_kinds(version) if version else ():
            inf = self._informers[kind.resource] = Informer(kind, self)
            inf.task = self._loop.create_task(inf.run(), name=f"kubernetes:{kind.resource}")
        log.info("kubernetes: %s", f"reading {KUEUE_GROUP}/{version}" if version else f"{KUEUE_GROUP} is not served")

    def _rediscover(self) -> None:
        """Run Kueue's discovery again now (a Kueue kind answered 404: its CRDs may be gone); at most every 10 s."""
        if self._kueue_wake is not None and time.monotonic() - self._rediscovered_at >= 10.0:
            self._rediscovered_at = time.monotonic()
            self._kueue_wake.set()

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    # -- the informers' callbacks (InformerHost; on_relist and on_change are above) ---------------
    @property
    def api(self) -> Any:
        """The ``kubernetes.aio`` ApiClient the informers and actions use; ``None`` until started and once closed."""
        return self._api

    def on_state(self, kind: ResourceKind) -> None:
        """An informer was listed, started watching, or recovered: a waiting poll looks again."""
        self._poke()

    def on_error(self, kind: ResourceKind, err: SourceError) -> None:
        """An informer failed: a waiting poll looks again; a Kueue kind gone asks discovery whether Kueue still is."""
        self._poke()
        if kind.group == KUEUE_GROUP and "not served" in str(err):
            self._rediscover()

    # -- errors -------------------------------------------------------------------------------
    def http_error(self, status: int, raw: bytes, verb: str, kind: ResourceKind) -> SourceError:
        """An error answer of this cluster's API server as a typed error (:func:`.errors.http_error`)."""
        return errors.http_error(status, raw, verb, kind, self.server, self._where())

    def classify(self, exc: BaseException, verb: str, kind: ResourceKind) -> SourceError:
        """A failed request to this cluster's API server as a typed error (:func:`.errors.classify`)."""
        return errors.classify(exc, verb, kind, self.server, self.timeout_s)

    # -- polling ------------------------------------------------------------------------------
    async def fetch(self, executor: Executor | None = None) -> SourceData:
        await self._start()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.2, self.timeout_s - 0.25)
        assert self._wake is not None
        while True:
            # ready: listed, and watching (or failed, which is reported below); and Kueue's API discovered (or not)
            discovering = self._kueue_task is not None and not self._kueue_known
            pending = [
                inf for inf in self._informers.values() if inf.error is None and not (inf.synced and inf.watching)
            ]
            failed = [
                inf
                for inf in self._informers.values()
                if inf.kind.required and inf.error is not None and not (inf.synced and inf.watching)
            ]
            if failed:
                err = failed[0].error
                assert err is not None
                raise err.with_traceback(None)  # the same error object, raised at every poll: no growing traceback
            if not any(inf.kind.required for inf in pending):
                if (not pending and not discovering) or loop.time() >= deadline:
                    break
            if loop.time() >= deadline:
                slow = next(inf for inf in pending if inf.kind.required)
                if slow.synced:
                    raise Timeout(f"watch of {slow.kind.qualified} not re-established within {self.timeout_s:g}s")
                done, remaining = slow.progress
                so_far = f" ({done} so far" + (f", {remaining} to go)" if remaining else ")") if done else ""
                raise Timeout(
                    f"initial list of {slow.kind.qualified} not complete after {self.timeout_s:g}s{so_far}; still loading"
                )
            self._wake.clear()
            try:
                await bounded(self._wake.wait(), deadline - loop.time())
            except TimeoutError:
                pass
        parts = kind_parts(self._informers.values(), self.clock(), self._kueue_error, bool(self.kueue_version))
        by_name = {p.name: p for p in parts}
        self._set_pods_unknown(unknown_why(by_name.get("pods")) if "pods" in self._informers else "")
        return SourceData(
            queues=self._known_queues(by_name),
            kube_nodes=self.kube_nodes(),
            version=self.version,
            parts=parts,
            node_events=self.node_events(),
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

    # -- actions: cordon() and evict() are DrainMixin's (drain.py) ---------------------------

    # -- doctor -------------------------------------------------------------------------------
    async def doctor(self, executor: Executor | None = None) -> list[DoctorCheck]:
        """Kubeconfig, reachability, Kueue's discovery and, per kind, whether this user may list and watch it (and if not,
        the RBAC rule to grant): see :func:`.parts.doctor_checks`."""
        try:
            await self._start()
        except SourceError as exc:
            return [DoctorCheck(self.name, "kubeconfig", False, str(exc), exc.hint)]
        return await doctor_checks(self)

    # -- shutdown -----------------------------------------------------------------------------
    def _forget(self) -> None:
        for task in (self._version_task, self._kueue_task):
            if task is not None and not task.done():
                try:
                    task.cancel()
                except RuntimeError:
                    pass
        self._kueue_task = None
        self._kueue_known, self._kueue_error, self.kueue_version = False, None, ""
        for inf in self._informers.values():
            inf.stopped = True
            if inf.task is not None:
                try:
                    inf.task.cancel()
                except RuntimeError:  # its loop is closed: the task died with it
                    pass
        self._informers = {}
        self._api = None
        self._reset_aggregates()

    async def aclose(self) -> None:
        """Stop the informers and close the HTTP session."""
        tasks = [inf.task for inf in self._informers.values() if inf.task is not None]
        tasks += [t for t in (self._version_task, self._kueue_task) if t is not None]
        api = self._api
        self._forget()
        await asyncio.gather(*tasks, *self._closing, return_exceptions=True)
        if api is not None:
            await api.close()

    def close(self) -> None:
        """Stop the informers; the session closes on the source's loop if it still runs."""
        api = self._api
        tasks = [inf.task for inf in self._informers.values() if inf.task is not None]
        self._forget()
        loop = self._loop
        if api is None or loop is None or loop.is_closed():
            return

        async def finish() -> None:
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                await api.close()

        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task = loop.create_task(finish())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        elif not loop.is_running():
            loop.run_until_complete(finish())
