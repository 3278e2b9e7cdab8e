"""Provides the Kubernetes source: an informer per resource kind, Kueue's discovery, and polls answered from the caches.

The official ``kubernetes`` client is imported lazily, in a thread at the first start; its asyncio flavour
(``kubernetes.aio``, shipped in the same package) loads the kubeconfig as kubectl does (contexts, TLS, tokens, exec
and OIDC plugins) and makes the requests.

Each resource has an informer (:mod:`.informer`): one paginated list, then a watch from its version that keeps the
cache current. The source is each informer's host: it hands it the API client and feeds what it sees to the
accounting (:mod:`.accounting`) and the drain index (:mod:`.drain`). A poll (:meth:`KubernetesSource.fetch`)
therefore costs what changed, not the cluster's size.

Kueue's custom resources (ClusterQueues, LocalQueues, Workloads) are read when the cluster serves their API group,
as discovery (``/apis``) tells, checked at start and every few minutes after (CRDs come and go); without the CRDs
nothing is said.

Only nodes (and the API itself) carry the whole source: every other kind is a part (:mod:`.parts`) that may be
denied, not served or not listed yet on its own, and is reported as such; what needs it (GPU pods on a node, queues)
then says unknown, never 0. Every read is bounded in time and in size (:mod:`.wire`).
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
from ...model.types import DoctorCheck, SourceData
from ..base import Source, SourceError, Timeout, jittered_backoff
from . import errors
from .accounting import AccountingMixin
from .drain import DrainMixin
from .informer import Informer, InformerStats
from .kinds import KINDS, KUEUE_GROUP, KUEUE_VERSIONS, ResourceKind, kueue_kinds, served_version
from .parts import doctor_checks, kind_parts, unknown_why
from .wire import bounded, call_raw, import_client

log = logging.getLogger(__name__)

Clock = Callable[[], float]

KUEUE_RECHECK_S = 300.0  # how often discovery is asked again whether Kueue is (still) served


# ================================================================================== the source
class KubernetesSource(AccountingMixin, DrainMixin, Source):
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

    def informer_stats(self) -> dict[str, InformerStats]:
        """Each informer's traffic counters, by resource."""
        return {name: inf.stats for name, inf in self._informers.items()}

    # -- connection ---------------------------------------------------------------------------
    def _where(self) -> str:
        ctx = (
            self.context
            or (self._loader.current_context.get("name") if self._loader is not None else "")
            or "current context"
        )
        return f"{self.server or 'the API server'} (context {ctx})"

    def _kubeconfig_path(self) -> str:
        """The kubeconfig file read: the one given, else $KUBECONFIG, else ~/.kube/config."""
        return self.kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")

    async def _load_config(self) -> None:
        from kubernetes.aio import client, config

        cfg = client.Configuration()
        path = self._kubeconfig_path()
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

        path = self._kubeconfig_path()
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

    # -- the informers' callbacks (InformerHost) ----------------------------------------------
    def on_relist(self, kind: ResourceKind, items: dict[str, Any]) -> None:
        """A (re-)list replaced one cache: rebuild what depends on it (the counts, then the drain index)."""
        self._account_relist(kind, items)
        self._index_relist(kind, items)

    def on_change(self, kind: ResourceKind, key: str, old: Any, new: Any) -> None:
        """A watch event changed one cached object: update what depends on it (the counts, then the drain index)."""
        self._account_change(kind, key, old, new)
        self._index_change(kind, key, old, new)

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
        self._reset_drain_index()

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
