"""Provides the API server's watch stream: replay from a resourceVersion, live events, bookmarks, 410 when too old."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..selectors import FieldRequirement
from ..store import Expired, ResourceType, Watcher, dumps
from .answers import bad_request, status_object
from .listing import query_selectors

if TYPE_CHECKING:
    from .app import ApiServer


@dataclass(eq=False)
class OpenWatch:
    watcher: Watcher
    transport: Any


async def watch(
    server: ApiServer, request: web.Request, rtype: ResourceType, namespace: str, name: str
) -> web.StreamResponse:
    query = request.query
    labels, fields = query_selectors(rtype, query)
    if name:
        fields = fields + (FieldRequirement("metadata.name", name),)
    while time.monotonic() < server.hold_watches_until:
        await asyncio.sleep(0.02)
    bookmarks = query.get("allowWatchBookmarks") in ("1", "true", "True")
    try:
        timeout = float(query.get("timeoutSeconds") or random.uniform(1800, 3600))
    except ValueError:
        raise bad_request("timeoutSeconds: Invalid value") from None
    rv_param = query.get("resourceVersion", "")
    send_initial = query.get("sendInitialEvents") in ("1", "true", "True")
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": "application/json", "Cache-Control": "no-cache, private"}
    )
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    writer = getattr(resp, "_payload_writer", None)
    if writer is not None and hasattr(writer, "send_headers"):
        writer.send_headers()  # the apiserver flushes the headers at once; aiohttp would wait for the first event
    store = server.store
    plural = rtype.stored_as
    watcher = Watcher(rtype, namespace, labels, fields)
    lines: list[bytes] = []
    # from here to the subscription nothing awaits: no event can slip between replay and live
    if rv_param in ("", "0") or send_initial:
        for entry in store.entries(plural, namespace):
            lines.append(watcher.event("ADDED", None, entry, store.rv))
        if send_initial and bookmarks:
            lines.append(bookmark(rtype, store.rv, initial_end=True))
        lines = [line for line in lines if line]
    else:
        try:
            rv = int(rv_param)
        except ValueError:
            await resp.write(error_line(400, "BadRequest", f"invalid resource version: {rv_param}"))
            await resp.write_eof()
            return resp
        try:
            history = store.events_since(plural, rv)
        except Expired as exc:
            server.stats.expired[rtype.group_resource] += 1
            await resp.write(error_line(410, "Expired", str(exc)))
            await resp.write_eof()
            return resp
        for ev_rv, kind, old, new in history:
            line = watcher.event(kind, old, new, ev_rv)
            if line:
                lines.append(line)
    store.watchers[plural].add(watcher)
    handle = OpenWatch(watcher, request.transport)
    server.watches.add(handle)
    deadline = time.monotonic() + timeout
    try:
        for line in lines:
            await resp.write(line)
            server.stats.watch_events[rtype.group_resource] += 1
        while not watcher.closed:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                line = await asyncio.wait_for(
                    watcher.queue.get(), timeout=min(left, server.bookmark_s) if bookmarks else left
                )
            except TimeoutError:
                if bookmarks and watcher.queue.empty():
                    await resp.write(bookmark(rtype, store.rv))
                    server.stats.bookmarks[rtype.group_resource] += 1
                continue
            if not line:
                break
            await resp.write(line)
            server.stats.watch_events[rtype.group_resource] += 1
        if not watcher.closed:
            await resp.write_eof()
    except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
        pass
    finally:
        store.watchers[plural].discard(watcher)
        server.watches.discard(handle)
    return resp


def bookmark(rtype: ResourceType, rv: int, *, initial_end: bool = False) -> bytes:
    meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    obj: dict[str, Any] = {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}
    if rtype.plural == "pods":
        obj["spec"] = {"containers": None}
        obj["status"] = {}
    return b'{"type":"BOOKMARK","object":%s}\n' % dumps(obj)


def error_line(code: int, reason: str, message: str) -> bytes:
    return b'{"type":"ERROR","object":%s}\n' % dumps(status_object(code, reason, message))
