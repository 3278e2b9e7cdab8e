"""Provides what a drain needs from the Kubernetes source: pods by node with their budgets, cordon with a reason, eviction.

:class:`DrainMixin` is mixed into :class:`~sovtui.sources.kubernetes.KubernetesSource`. Its index of pods by node and of
PodDisruptionBudgets by namespace is kept by the informers' callbacks, so :meth:`DrainMixin.pods_on` costs the pods of
one node, never a scan of the cluster; budgets are matched to pods by their label selectors (:mod:`.selectors`).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from ...model.workload import BudgetRef, PodRef
from .errors import EvictionBlocked, PodGone, status_of
from .kinds import ResourceKind
from .projections import project_node, project_pod
from .selectors import selector_matches
from .wire import call_raw

if TYPE_CHECKING:
    from ...model.types import KubeNode
    from ..base import SourceError
    from .records import NodeRec, PdbRec, PodRec

CORDON_REASON_ANNOTATION = "sovtui.io/cordon-reason"
MAX_KUBECONFIG_BYTES = 4 * 2**20  # a kubeconfig read for identity() before the source has started


# ================================================================================== the mixin
class DrainMixin:
    """Drain-facing methods of the Kubernetes source (see ``ops-spec``): the state they read is the informers' caches."""

    # provided by KubernetesSource
    _informers: dict[str, Any]
    _nodes: dict[str, Any]
    _loader: Any
    api: Any
    kubeconfig: str | None
    context: str | None
    server: str
    timeout_s: float
    _start: Callable[[], Awaitable[None]]
    _node_view: Callable[[NodeRec], KubeNode]
    classify: Callable[[BaseException, str, ResourceKind], SourceError]
    http_error: Callable[[int, bytes, str, ResourceKind], SourceError]

    def _init_drain(self) -> None:
        self._pod_waiters: set[asyncio.Future] = set()
        self._reset_drain_index()

    def _reset_drain_index(self) -> None:
        self._by_node: dict[str, dict[str, PodRec]] = {}  # node → pod key → pod bound to it
        self._pdbs_by_ns: dict[str, dict[str, PdbRec]] = {}  # namespace → PDB key → PDB
        self._pods_on_memo: dict[str, tuple[PodRef, ...]] = {}

    # -- kept by the informers' callbacks ---------------------------------------------------------
    def _index_relist(self, kind: ResourceKind, items: Mapping[str, Any]) -> None:
        """A (re-)list replaced one cache: the index of pods by node, or of budgets by namespace, is rebuilt."""
        if kind.resource == "pods":
            self._index_pods(items)
        elif kind.resource == "poddisruptionbudgets":
            self._index_pdbs(items)

    def _index_change(self, kind: ResourceKind, key: str, old: Any, new: Any) -> None:
        """A watch event changed one pod or budget: the index follows."""
        if kind.resource == "pods":
            self._index_pod(key, old, new)
        elif kind.resource == "poddisruptionbudgets":
            self._index_pdb(key, old, new)

    def _index_pods(self, items: Mapping[str, PodRec]) -> None:
        by_node: dict[str, dict[str, PodRec]] = {}
        for key, pod in items.items():
            if pod.node:
                by_node.setdefault(pod.node, {})[key] = pod
        self._by_node = by_node
        self._pods_on_memo.clear()
        self._wake_pod_waiters()

    def _index_pod(self, key: str, old: PodRec | None, new: PodRec | None) -> None:
        if old is not None and old.node:
            here = self._by_node.get(old.node)
            if here is not None:
                here.pop(key, None)
                if not here:
                    del self._by_node[old.node]
            self._pods_on_memo.pop(old.node, None)
        if new is not None and new.node:
            self._by_node.setdefault(new.node, {})[key] = new
            self._pods_on_memo.pop(new.node, None)
        self._wake_pod_waiters()

    def _index_pdbs(self, items: Mapping[str, PdbRec]) -> None:
        by_ns: dict[str, dict[str, PdbRec]] = {}
        for key, pdb in items.items():
            by_ns.setdefault(pdb.namespace, {})[key] = pdb
        self._pdbs_by_ns = by_ns
        self._pods_on_memo.clear()

    def _index_pdb(self, key: str, old: PdbRec | None, new: PdbRec | None) -> None:
        if old is not None:
            mine = self._pdbs_by_ns.get(old.namespace)
            if mine is not None:
                mine.pop(key, None)
                if not mine:
                    del self._pdbs_by_ns[old.namespace]
        if new is not None:
            self._pdbs_by_ns.setdefault(new.namespace, {})[key] = new
        if old != new:
            self._pods_on_memo.clear()

    def _wake_pod_waiters(self) -> None:
        waiters, self._pod_waiters = self._pod_waiters, set()
        for fut in waiters:
            if not fut.done():
                fut.set_result(True)

    # -- reads from the cache (sync, no I/O) ---------------------------------------------------
    def _pods_failing(self) -> bool:
        inf = self._informers.get("pods")
        return inf is None or (inf.error is not None and not (inf.synced and inf.watching))

    def _synced(self, resource: str) -> bool:
        inf = self._informers.get(resource)
        return inf is not None and inf.synced

    def pods_on(self, node: str) -> tuple[PodRef, ...] | None:
        """Every non-terminal pod bound to ``node``, by namespace/name, each with the PodDisruptionBudgets of its namespace
        whose selector matches it; ``None`` when the node is unknown or the pods are not known (not listed yet, or the
        pods are failing: denied, not served — a stale cache is not "these pods")."""
        if node not in self._nodes or not self._synced("pods") or self._pods_failing():
            return None
        memo = self._pods_on_memo.get(node)
        if memo is not None:
            return memo
        pdbs = self._pdbs_by_ns
        refs = []
        for _, pod in sorted(self._by_node.get(node, {}).items()):
            if pod.phase in ("Succeeded", "Failed"):
                continue
            budgets: tuple[BudgetRef, ...] = ()
            candidates = pdbs.get(pod.namespace)
            if candidates:
                labels = dict(pod.labels)
                budgets = tuple(
                    BudgetRef(
                        b.namespace,
                        b.name,
                        b.disruptions_allowed,
                        b.current_healthy,
                        b.desired_healthy,
                        b.expected_pods,
                    )
                    for _, b in sorted(candidates.items())
                    if selector_matches(b.selector, labels)
                )
            refs.append(
                PodRef(
                    pod.namespace,
                    pod.name,
                    pod.uid,
                    pod.phase,
                    pod.owner_kind,
                    pod.owner_name,
                    pod.mirror,
                    pod.emptydir,
                    pod.deleting,
                    pod.gpus,
                    pod.grace_period_s,
                    budgets,
                )
            )
        out = tuple(refs)
        self._pods_on_memo[node] = out
        return out

    def node_unschedulable(self, node: str) -> bool | None:
        """Whether the node is cordoned (spec.unschedulable), from the cache; ``None`` when unknown."""
        rec = self._nodes.get(node)
        return None if rec is None else rec.unschedulable

    def pod_uid(self, namespace: str, name: str) -> str | None:
        """The UID of the pod now cached under that name; ``None`` when there is none (gone, or finished)."""
        inf = self._informers.get("pods")
        pod = inf.items.get(f"{namespace}/{name}") if inf is not None else None
        return None if pod is None else pod.uid

    async def pods_changed(self, timeout_s: float) -> bool:
        """Wait for the pods cache to change (a watch event or a re-list) after this call: True; False after ``timeout_s``."""
        fut = asyncio.get_running_loop().create_future()
        self._pod_waiters.add(fut)  # before any await: no change can slip in between
        try:
            async with asyncio.timeout(max(0.0, timeout_s)):
                await self._start()
                return await fut
        except TimeoutError:
            return False
        finally:
            self._pod_waiters.discard(fut)

    def identity(self) -> str:
        """``user U in context C (server)`` from the kubeconfig; never a credential."""
        user = cluster_server = ""
        ctx = self.context or ""
        loader = self._loader
        if loader is not None:
            current = loader.current_context
            ctx = ctx or str(current.get("name") or "")
            user = str((current.get("context") or {}).get("user") or "")
        else:
            ctx, user, cluster_server = _kubeconfig_names(self.kubeconfig, self.context)
        server = self.server or cluster_server or "server unknown"
        return f"user {user or 'unknown'} in context {ctx or 'current'} ({server})"

    # -- actions ------------------------------------------------------------------------------
    async def cordon(
        self, node: str, *, unschedulable: bool = True, reason: str | None = None, dry_run: bool = False
    ) -> KubeNode:
        """Mark a node (un)schedulable, as ``kubectl cordon``/``uncordon`` does, in one JSON merge patch that also sets
        (cordon with a ``reason``) or removes (uncordon) the ``sovtui.io/cordon-reason`` annotation; returns the node as
        the server has it."""
        from kubernetes.aio import client

        await self._start()
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        body: dict[str, Any] = {"spec": {"unschedulable": True if unschedulable else None}}
        if not unschedulable:
            body["metadata"] = {"annotations": {CORDON_REASON_ANNOTATION: None}}
        elif reason:
            body["metadata"] = {"annotations": {CORDON_REASON_ANNOTATION: reason}}
        kind = ResourceKind("nodes", "", "", "", project_node)
        try:
            call = client.CoreV1Api(self.api).patch_node_without_preload_content
            status, raw, _ = await call_raw(
                call, self.timeout_s, node, body, _content_type="application/merge-patch+json", **kwargs
            )
        except Exception as exc:  # noqa: BLE001
            raise self.classify(exc, "patch", kind) from None
        if status != 200:
            raise self.http_error(status, raw, "patch", kind)
        return self._node_view(project_node(json.loads(raw)))

    async def evict(
        self, namespace: str, pod: str, *, grace_period_s: int | None = None, dry_run: bool = False
    ) -> None:
        """Evict a pod through the Eviction API (PodDisruptionBudgets are honoured by the server), with
        ``grace_period_s`` as DeleteOptions.gracePeriodSeconds (``None``: the pod's own terminationGracePeriodSeconds).

        Raises :class:`~sovtui.sources.kubernetes.EvictionBlocked` when a budget refuses (429),
        :class:`~sovtui.sources.kubernetes.KubeForbidden` without RBAC (403), :class:`PodGone` when there is no such pod (404).
        """
        from kubernetes.aio import client

        await self._start()
        options = client.V1DeleteOptions(grace_period_seconds=grace_period_s) if grace_period_s is not None else None
        body = client.V1Eviction(
            api_version="policy/v1",
            kind="Eviction",
            metadata=client.V1ObjectMeta(name=pod, namespace=namespace),
            delete_options=options,
        )
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        kind = ResourceKind("pods/eviction", "", "", "", project_pod)
        try:
            call = client.CoreV1Api(self.api).create_namespaced_pod_eviction_without_preload_content
            status, raw, headers = await call_raw(call, self.timeout_s, pod, namespace, body, **kwargs)
        except Exception as exc:  # noqa: BLE001
            raise self.classify(exc, "create", kind) from None
        if status in (200, 201):
            return
        doc = status_of(raw)
        if status == 429:
            details = doc.get("details") or {}
            causes = tuple(str(c.get("message", "")) for c in details.get("causes") or () if c.get("message"))
            retry = headers.get("Retry-After") or details.get("retryAfterSeconds")
            try:
                retry_s = float(retry) if retry else None
            except ValueError:
                retry_s = None
            raise EvictionBlocked(namespace, pod, str(doc.get("message") or "too many requests"), causes, retry_s)
        if status == 404:
            raise PodGone(namespace, pod, str(doc.get("message") or "not found"))
        raise self.http_error(status, raw, "create", kind)


def _kubeconfig_names(path: str | None, context: str | None) -> tuple[str, str, str]:
    """(context, user, server) named by a kubeconfig file, read without loading credentials; blanks when unreadable."""
    import yaml

    paths = [path] if path else (os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")).split(os.pathsep)
    for one in paths:
        try:
            with open(one, "rb") as fh:
                doc = yaml.safe_load(fh.read(MAX_KUBECONFIG_BYTES))
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(doc, dict):
            continue
        name = context or str(doc.get("current-context") or "")
        ctx = next(
            (
                c.get("context") or {}
                for c in doc.get("contexts") or ()
                if isinstance(c, dict) and c.get("name") == name
            ),
            None,
        )
        if ctx is None:
            continue
        cluster = next(
            (
                c.get("cluster") or {}
                for c in doc.get("clusters") or ()
                if isinstance(c, dict) and c.get("name") == ctx.get("cluster")
            ),
            {},
        )
        return name, str(ctx.get("user") or ""), str(cluster.get("server") or "")
    return context or "", "", ""
