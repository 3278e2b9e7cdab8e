"""Provides the requests to the API server: the client's lazy import, one bounded raw request, bounded bodies, and the
decoding of list answers and watch events.

Every read is bounded in time and in size. Responses are read as raw bytes (``*_without_preload_content``), never as
the client's generated models.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from ..base import BadAnswer

if TYPE_CHECKING:
    from .kinds import ResourceKind

#: a list page larger than this is refused (500 objects of a few KiB each are far below it)
MAX_PAGE_BYTES = 64 * 2**20
#: a watch event (one object) larger than this is refused; etcd stores objects of at most 1.5 MiB
MAX_EVENT_BYTES = 4 * 2**20
#: the types of watch event the API sends
EVENT_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"})


def import_client(kinds: Iterable[ResourceKind]) -> None:
    """Import the client and the API classes it loads lazily (run in a thread)."""
    from kubernetes.aio import client, config  # noqa: F401

    for name in {k.api for k in kinds} | {
        "VersionApi",
        "ApisApi",
        "CustomObjectsApi",
        "ApiClient",
        "Configuration",
        "V1Eviction",
        "V1ObjectMeta",
    }:
        getattr(client, name)


async def bounded(awaitable: Any, seconds: float) -> Any:
    """``await`` with a deadline; unlike ``wait_for`` on Python 3.11 it never swallows a cancellation."""
    async with asyncio.timeout(seconds):
        return await awaitable


async def call_raw(
    call: Callable, seconds: float, *args: Any, _limit: int = MAX_PAGE_BYTES, **kwargs: Any
) -> tuple[int, bytes, Any]:
    """One request through a client ``*_without_preload_content`` method: (status, body, headers), all within ``seconds``
    and a body of at most ``_limit`` bytes."""
    async with asyncio.timeout(seconds):
        resp = await call(*args, _request_timeout=seconds, **kwargs)
        try:
            return (
                resp.status,
                await read_bounded(resp.content, _limit, getattr(call, "__name__", "request")),
                resp.headers,
            )
        finally:
            resp.release()


async def read_bounded(content: Any, limit: int, what: str) -> bytes:
    """A response body read in chunks, refused as soon as it grows past ``limit`` bytes (an endless answer is cut)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BadAnswer(
                f"{what}: answer larger than {limit // 2**20} MiB, cut off",
                hint="the API server (or a proxy before it) sent an endless answer",
            )
        chunks.append(chunk)


def parse_list(raw: bytes, what: str) -> tuple[list[dict], dict]:
    """A list answer's items and metadata; BadAnswer when it is not a Kubernetes list (HTML, the wrong shape)."""
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise BadAnswer(f"{what}: unreadable answer (not JSON: {exc})") from None
    items = doc.get("items") if isinstance(doc, dict) else None
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if items is None and isinstance(doc, dict) and isinstance(meta, dict) and str(doc.get("kind", "")).endswith("List"):
        items = []  # an empty list may leave items out
    if not isinstance(items, list) or not isinstance(meta, dict) or not all(isinstance(i, dict) for i in items):
        raise BadAnswer(f"{what}: the answer is not a list of objects (wrong shape: {_shape(doc)})")
    return items, meta


def parse_event(line: bytes, what: str) -> tuple[str, dict]:
    """One watch line's (type, object); BadAnswer when it is not a watch event."""
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise BadAnswer(f"{what}: unreadable watch event (not JSON: {exc})") from None
    etype = event.get("type") if isinstance(event, dict) else None
    obj = event.get("object") if isinstance(event, dict) else None
    if etype not in EVENT_TYPES or not isinstance(obj, dict):
        raise BadAnswer(f"{what}: not a watch event (wrong shape: {_shape(event)})")
    return etype, obj


def _shape(doc: Any) -> str:
    if isinstance(doc, dict):
        return "an object with " + (", ".join(sorted(map(str, doc))[:5]) or "no keys")
    return type(doc).__name__


def object_key(obj: dict) -> str:
    """An object's cache key: ``namespace/name``, or its name when it has no namespace."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name', '')}" if ns else meta.get("name", "")
