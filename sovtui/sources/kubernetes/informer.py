"""Provides the informer: a cache of one resource kind, kept by one paginated list and then a watch from its version.

The list yields a resourceVersion; the watch from it (with bookmarks) keeps the cache current. A dropped connection
resumes the watch from the last version seen, a 410 Expired lists again. The informer reaches nothing of its owner's
but the :class:`InformerHost` it is given: the API client, the bounds of its reads, and callbacks for what it sees.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from ..base import AuthError, BadAnswer, SourceError, Unreachable, jittered_backoff
from .errors import KubeForbidden, status_of
from .kinds import ResourceKind
from .wire import MAX_EVENT_BYTES, bounded, call_raw, object_key, parse_event, parse_list, read_bounded

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # as client-go's reflector pages its lists


class InformerHost(Protocol):
    """What an informer is given by its owner: the API client, the bounds of its reads, and callbacks."""

    timeout_s: float  # every request is bounded by it
    interval_s: float  # the owner's refresh: a failing kind is retried at least about this often
    watch_idle_s: float  # a watch silent for this long is presumed dead and resumed

    @property
    def api(self) -> Any:
        """The ``kubernetes.aio`` ApiClient requests go through; ``None`` once closed (the informer then stops)."""

    def classify(self, exc: BaseException, verb: str, kind: ResourceKind) -> SourceError:
        """A failed request as a typed error."""

    def http_error(self, status: int, raw: bytes, verb: str, kind: ResourceKind) -> SourceError:
        """An error answer as a typed error."""

    async def refresh_credentials(self) -> None:
        """Called after a 401: read the credentials again before the retry."""

    def on_relist(self, kind: ResourceKind, items: dict[str, Any]) -> None:
        """A (re-)list replaced the whole cache with ``items``."""

    def on_change(self, kind: ResourceKind, key: str, old: Any, new: Any) -> None:
        """A watch event changed one object: ``old`` or ``new`` is ``None`` when it came or went."""

    def on_state(self, kind: ResourceKind) -> None:
        """The informer became listed (``synced``) or ``watching``, or its error cleared."""

    def on_error(self, kind: ResourceKind, err: SourceError) -> None:
        """The informer failed with ``err`` (now its ``error``) and retries after a backoff."""


class _Expired(Exception):
    """410 Gone, reason Expired: the watch (or list continuation) is too old; list again."""


def _decode_page(raw: bytes, project: Callable[[dict], Any], what: str = "list") -> tuple[list[tuple[str, Any]], dict]:
    """A list response's items projected, and its list metadata (run off the event loop); BadAnswer if it is no list."""
    items, meta = parse_list(raw, what)
    return [(object_key(obj), project(obj)) for obj in items], meta


@dataclass
class InformerStats:
    """Counters of one informer's traffic: how often it listed, watched, resumed, and what it received."""

    lists: int = 0  # complete lists (the first one and every re-list)
    pages: int = 0
    listed_items: int = 0
    relists: int = 0  # lists after the first: forced by 410 Expired or a failed resume
    watches: int = 0  # watch requests made
    resumes: int = 0  # watches resumed from a resourceVersion after a drop or a server timeout
    events: int = 0  # ADDED/MODIFIED/DELETED received
    bookmarks: int = 0
    expired: int = 0  # 410s received
    errors: int = 0


class Informer:
    """A cache of one resource, kept by list + watch; runs as a task on its host's event loop, and tells the host what it
    sees through the :class:`InformerHost` callbacks."""

    def __init__(self, kind: ResourceKind, host: InformerHost) -> None:
        self.kind = kind
        self.host = host
        self.items: dict[str, Any] = {}
        self.resource_version = ""
        self.synced = False
        self.watching = False
        self.error: SourceError | None = None
        self.stats = InformerStats()
        self.progress = (0, None)  # (items so far, remaining per the server) while the first list runs
        self.task: asyncio.Task | None = None
        self.stopped = False
        self.last_ok_at: float | None = None  # when a poll last saw it in sync (listed, and watching or about to)

    def _call(self) -> Callable:
        from kubernetes.aio import client

        if self.stopped or self.host.api is None:
            raise asyncio.CancelledError  # never fall back to the client's default configuration
        api = getattr(client, self.kind.api)(self.host.api)
        call = getattr(api, f"{self.kind.method}_without_preload_content")
        return functools.partial(call, *self.kind.args) if self.kind.args else call

    async def run(self) -> None:
        need_list = True
        failures = 0
        while not self.stopped:
            was_watching = False
            try:
                if need_list:
                    await self._list()
                    need_list = False
                    failures = 0
                    self.error = None
                    self.synced = True
                    self.host.on_state(self.kind)
                self.stats.watches += 1
                was_watching = await self._watch()
                failures = 0
                self.stats.resumes += 1  # the server ended the watch (its timeout): resume from where we are
                continue
            except _Expired:
                self.stats.expired += 1
                self.stats.relists += 1
                need_list = True
                continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error and a retry
                err = self.host.classify(exc, "watch" if self.synced and not need_list else "list", self.kind)
                was_watching = getattr(exc, "_sovtui_streamed", False)
                if getattr(exc, "_sovtui_healthy", False):
                    failures = 0  # a fresh problem, not a repeat of the last one
            self.stats.errors += 1
            failures += 1
            if isinstance(err, AuthError) and not isinstance(err, KubeForbidden):
                await self.host.refresh_credentials()
            if failures == 1 and was_watching and isinstance(err, Unreachable):
                self.stats.resumes += 1  # a dropped connection: resume at once, from the last version seen
                continue
            self.error = err
            self.host.on_error(self.kind, err)
            # backoff, but a failing kind is retried at least once per refresh: it is seen back by the next one or two polls
            delay = jittered_backoff(failures, 0.25, min(30.0, max(1.0, self.host.interval_s)))
            log.info("kubernetes %s: %s; retrying in %.1fs", self.kind.resource, err, delay)
            await asyncio.sleep(delay)

    async def _list(self) -> None:
        call = self._call()
        items: dict[str, Any] = {}
        token: str | None = None
        timeout = self.host.timeout_s
        while True:
            kwargs: dict[str, Any] = {"limit": PAGE_SIZE}
            if token:
                kwargs["_continue"] = token
            if self.kind.field_selector:
                kwargs["field_selector"] = self.kind.field_selector
            status, raw, _ = await call_raw(call, timeout, **kwargs)
            if status != 200:
                if status == 410:
                    raise _Expired(status_of(raw).get("message", "continue token expired"))
                raise self.host.http_error(status, raw, "list", self.kind)
            what = f"list {self.kind.qualified}"
            page, meta = (
                await asyncio.to_thread(_decode_page, raw, self.kind.project, what)
                if len(raw) > 65536
                else _decode_page(raw, self.kind.project, what)
            )
            items.update(page)
            self.stats.pages += 1
            self.progress = (len(items), meta.get("remainingItemCount"))
            token = meta.get("continue") or None
            if not token:
                self.resource_version = str(meta.get("resourceVersion") or "")
                break
        self.stats.lists += 1
        self.stats.listed_items += len(items)
        self.items = items
        self.host.on_relist(self.kind, items)

    async def _watch(self) -> bool:
        """Watch from ``resource_version`` until the server ends the stream; True if it got as far as streaming."""
        from aiohttp.http_exceptions import LineTooLong

        call = self._call()
        window = int(300 * (1 + random.random()))  # 5-10 minutes, as client-go spreads its watches
        timeout = self.host.timeout_s
        kwargs: dict[str, Any] = {
            "watch": True,
            "resource_version": self.resource_version,
            "allow_watch_bookmarks": True,
            "timeout_seconds": window,
            "_request_timeout": window + timeout,
        }
        if self.kind.field_selector:
            kwargs["field_selector"] = self.kind.field_selector
        resp = await bounded(call(**kwargs), timeout)
        streaming = False
        try:
            if resp.status != 200:
                raw = await bounded(
                    read_bounded(resp.content, MAX_EVENT_BYTES, f"watch {self.kind.qualified}"), timeout
                )
                if resp.status == 410:
                    raise _Expired(status_of(raw).get("message", ""))
                raise self.host.http_error(resp.status, raw, "watch", self.kind)
            streaming = True
            started = time.monotonic()
            received = 0
            self.watching = True
            self.error = None
            self.host.on_state(self.kind)
            items, project, changed = self.items, self.kind.project, self.host.on_change
            idle = self.host.watch_idle_s
            what = f"watch {self.kind.qualified}"
            while True:
                try:
                    line = await bounded(resp.content.readline(max_line_length=MAX_EVENT_BYTES), idle)
                except LineTooLong:  # an endless event
                    raise BadAnswer(
                        f"{what}: a watch event larger than {MAX_EVENT_BYTES // 2**20} MiB, cut off"
                    ) from None
                if not line:
                    return True
                line = line.strip()
                if not line:
                    continue
                etype, obj = parse_event(line, what)
                received += 1
                if etype == "ERROR":
                    if obj.get("code") == 410:
                        raise _Expired(obj.get("message", ""))
                    raise self.host.http_error(int(obj.get("code") or 500), line, "watch", self.kind)
                rv = (obj.get("metadata") or {}).get("resourceVersion")
                if etype == "BOOKMARK":
                    self.stats.bookmarks += 1
                elif etype in ("ADDED", "MODIFIED"):
                    key = object_key(obj)
                    rec = project(obj)
                    old = items.get(key)
                    items[key] = rec
                    changed(self.kind, key, old, rec)
                    self.stats.events += 1
                elif etype == "DELETED":
                    key = object_key(obj)
                    old = items.pop(key, None)
                    changed(self.kind, key, old, None)
                    self.stats.events += 1
                if rv:
                    self.resource_version = rv
        except BaseException as exc:
            resp.close()  # a broken or abandoned stream: its connection is not reusable
            if streaming and isinstance(exc, Exception):
                exc._sovtui_streamed = True  # type: ignore[attr-defined]
                # one that streamed for a while (or delivered something) before it broke was a healthy watch
                if received or time.monotonic() - started > 5.0:
                    exc._sovtui_healthy = True  # type: ignore[attr-defined]
            raise
        finally:
            self.watching = False
            resp.release()
