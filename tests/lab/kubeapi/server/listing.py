"""Provides the API server's lists: selectors from the query, pages with continue tokens over a consistent snapshot."""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..selectors import FieldRequirement, SelectorError, parse_field_selector, parse_label_selector
from ..store import Entry, ResourceType, Watcher, dumps, render
from .answers import ApiError, bad_request

if TYPE_CHECKING:
    from .app import ApiServer

CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list without "
    "the continue parameter, or use the continue token in this response to retrieve the remainder of the results. "
    "Continuing with the provided token results in an inconsistent list - objects that were created, modified, or "
    "deleted between the time the first chunk was returned and now may show up in the list."
)


@dataclass
class Snapshot:
    keys: list[str]
    entries: list[Entry]
    rv: int
    at: float


def query_selectors(rtype: ResourceType, query) -> tuple[tuple, tuple[FieldRequirement, ...]]:
    try:
        labels = parse_label_selector(query.get("labelSelector"))
        fields = parse_field_selector(query.get("fieldSelector"), rtype.supported_fields(), rtype.kind)
    except SelectorError as exc:
        raise bad_request(str(exc)) from None
    fields = tuple(FieldRequirement(rtype.canonical_field(f.field), f.value, f.negate) for f in fields)
    return labels, fields


def list_objects(server: ApiServer, rtype: ResourceType, namespace: str, query) -> bytes:
    labels, fields = query_selectors(rtype, query)
    probe = Watcher(rtype, namespace, labels, fields, queue=None)  # type: ignore[arg-type]
    try:
        limit = int(query.get("limit") or 0)
    except ValueError:
        raise bad_request(f"limit: Invalid value: {query.get('limit')!r}") from None
    token = query.get("continue", "")
    now = time.monotonic()
    for key in [k for k, s in server.snapshots.items() if now - s.at > server.continue_ttl_s]:
        del server.snapshots[key]
    if token:
        start = decode_continue(token)
        snap = server.snapshots.get(token)
        if snap is None:
            raise ApiError(410, "Expired", CONTINUE_TOO_OLD)
        pos = bisect.bisect_left(snap.keys, start)
    else:
        rv_match = query.get("resourceVersionMatch", "")
        rv_param = query.get("resourceVersion", "")
        if rv_param and not rv_param.isdigit():
            raise bad_request(f"resourceVersion: Invalid value: {rv_param!r}: must be a valid resource version")
        if (
            rv_match == "Exact"
            and rv_param
            and int(rv_param) != server.store.rv
            and int(rv_param) < server.store.floor[rtype.stored_as]
        ):
            raise ApiError(410, "Expired", "The resourceVersion for the provided list is too old.")
        entries = server.store.entries(rtype.stored_as, namespace)
        snap = Snapshot([e.key for e in entries], entries, server.store.rv, now)
        pos = 0
    items: list[bytes] = []
    i = pos
    n = len(snap.entries)
    while i < n and (not limit or len(items) < limit):
        entry = snap.entries[i]
        if probe.matches(entry):
            items.append(render(rtype, entry, kind=False))
        i += 1
    meta: dict[str, Any] = {"resourceVersion": str(snap.rv)}
    if limit and i < n:
        next_token = encode_continue(snap.rv, snap.keys[i])
        server.snapshots[next_token] = snap
        meta["continue"] = next_token
        if not labels and not fields:
            meta["remainingItemCount"] = n - i
    while len(server.snapshots) > 64:
        del server.snapshots[next(iter(server.snapshots))]
    server.stats.items[rtype.group_resource] += len(items)
    head = dumps({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": meta})
    return head[:-1] + b',"items":[' + b",".join(items) + b"]}"


def encode_continue(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_continue(token: str) -> str:
    try:
        doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(doc["start"]).rstrip("\x00")
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
        ) from None
