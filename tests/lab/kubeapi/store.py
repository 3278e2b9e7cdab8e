"""Provides the fake API server's storage: typed resources, one resourceVersion counter, bounded history, watchers."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .selectors import (
    EVENT_FIELDS,
    EVENT_V1_FIELD_ALIASES,
    META_FIELDS,
    NODE_FIELDS,
    POD_FIELDS,
    FieldGetter,
    FieldRequirement,
    Requirement,
    fields_match,
    labels_match,
)


def rfc3339(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


# ------------------------------------------------------------------------------ resources
@dataclass(frozen=True)
class ResourceType:
    """One REST resource the server serves, as its discovery document describes it."""

    plural: str
    singular: str
    kind: str
    group: str
    version: str
    namespaced: bool
    fields: dict[str, FieldGetter]
    short_names: tuple[str, ...] = ()
    has_status: bool = True
    has_generation: bool = False
    #: another resource whose objects this one serves in its own schema (events.k8s.io/v1 → core events)
    storage: str = ""
    subresources: tuple[str, ...] = ("status",)
    verbs: tuple[str, ...] = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
    #: served by a CustomResourceDefinition: only on a server that has it installed
    crd: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def stored_as(self) -> str:
        return self.storage or self.plural

    @property
    def group_resource(self) -> str:
        """``nodes`` or ``deployments.apps``: how the server names it in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def supported_fields(self) -> frozenset[str]:
        if self.storage == "events":
            return frozenset({"metadata.name", "metadata.namespace", "reason", "type", *EVENT_V1_FIELD_ALIASES})
        return frozenset(self.fields)

    def canonical_field(self, name: str) -> str:
        return EVENT_V1_FIELD_ALIASES.get(name, name) if self.storage == "events" else name


KUEUE = "kueue.x-k8s.io"


def _rt(plural, singular, kind, group, version, namespaced, fields=META_FIELDS, **kw) -> ResourceType:
    return ResourceType(plural, singular, kind, group, version, namespaced, fields, **kw)


RESOURCES: tuple[ResourceType, ...] = (
    _rt("namespaces", "namespace", "Namespace", "", "v1", False, short_names=("ns",)),
    _rt("nodes", "node", "Node", "", "v1", False, NODE_FIELDS, short_names=("no",)),
    _rt("pods", "pod", "Pod", "", "v1", True, POD_FIELDS, short_names=("po",), subresources=("status", "eviction")),
    _rt(
        "events", "event", "Event", "", "v1", True, EVENT_FIELDS, short_names=("ev",), has_status=False, subresources=()
    ),
    _rt("deployments", "deployment", "Deployment", "apps", "v1", True, short_names=("deploy",), has_generation=True),
    _rt("replicasets", "replicaset", "ReplicaSet", "apps", "v1", True, short_names=("rs",), has_generation=True),
    _rt("daemonsets", "daemonset", "DaemonSet", "apps", "v1", True, short_names=("ds",), has_generation=True),
    _rt("statefulsets", "statefulset", "StatefulSet", "apps", "v1", True, short_names=("sts",), has_generation=True),
    _rt("jobs", "job", "Job", "batch", "v1", True, has_generation=True),
    _rt(
        "poddisruptionbudgets",
        "poddisruptionbudget",
        "PodDisruptionBudget",
        "policy",
        "v1",
        True,
        short_names=("pdb",),
        has_generation=True,
    ),
    _rt(
        "events",
        "event",
        "Event",
        "events.k8s.io",
        "v1",
        True,
        EVENT_FIELDS,
        short_names=("ev",),
        has_status=False,
        storage="events",
        subresources=(),
    ),
    # Kueue's CRDs (kueue.x-k8s.io/v1beta1), as its manifests install them
    _rt(
        "resourceflavors",
        "resourceflavor",
        "ResourceFlavor",
        KUEUE,
        "v1beta1",
        False,
        short_names=("flavor", "flavors", "rf"),
        has_status=False,
        has_generation=True,
        subresources=(),
        crd=True,
    ),
    _rt(
        "clusterqueues",
        "clusterqueue",
        "ClusterQueue",
        KUEUE,
        "v1beta1",
        False,
        short_names=("cq",),
        has_generation=True,
        crd=True,
    ),
    _rt(
        "localqueues",
        "localqueue",
        "LocalQueue",
        KUEUE,
        "v1beta1",
        True,
        short_names=("queue", "queues", "lq"),
        has_generation=True,
        crd=True,
    ),
    _rt(
        "workloads", "workload", "Workload", KUEUE, "v1beta1", True, short_names=("wl",), has_generation=True, crd=True
    ),
)
BY_GROUP_VERSION: dict[tuple[str, str, str], ResourceType] = {(r.group, r.version, r.plural): r for r in RESOURCES}
STORED: dict[str, ResourceType] = {r.plural: r for r in RESOURCES if not r.storage}


# ------------------------------------------------------------------------ events.k8s.io view
def event_v1(core: dict) -> dict:
    """A core/v1 Event in the events.k8s.io/v1 schema (the real server converts the same way)."""
    out: dict[str, Any] = {"metadata": core["metadata"]}
    if core.get("eventTime"):
        out["eventTime"] = core["eventTime"]
    else:
        out["eventTime"] = None
    for src, dst in (
        ("reason", "reason"),
        ("message", "note"),
        ("type", "type"),
        ("action", "action"),
        ("reportingComponent", "reportingController"),
        ("reportingInstance", "reportingInstance"),
        ("involvedObject", "regarding"),
        ("related", "related"),
        ("series", "series"),
    ):
        if core.get(src):
            out[dst] = core[src]
    if core.get("count"):
        out["deprecatedCount"] = core["count"]
    if core.get("firstTimestamp"):
        out["deprecatedFirstTimestamp"] = core["firstTimestamp"]
    if core.get("lastTimestamp"):
        out["deprecatedLastTimestamp"] = core["lastTimestamp"]
    if core.get("source"):
        out["deprecatedSource"] = core["source"]
    return out


# ------------------------------------------------------------------------------ entries
class Entry:
    """One stored object: its JSON (without kind/apiVersion, as list items carry it) and its indexes."""

    __slots__ = ("key", "namespace", "name", "rv", "raw", "labels", "fields")

    def __init__(self, rtype: ResourceType, obj: dict) -> None:
        meta = obj["metadata"]
        self.namespace = meta.get("namespace", "")
        self.name = meta["name"]
        self.key = f"{self.namespace}/{self.name}" if rtype.namespaced else self.name
        self.rv = int(meta["resourceVersion"])
        body = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        self.raw = dumps(body)
        self.labels = dict(meta.get("labels") or {})
        self.fields = {name: get(obj) for name, get in rtype.fields.items()}

    def obj(self) -> dict:
        """A fresh, mutable copy of the object (without kind/apiVersion)."""
        return json.loads(self.raw)


def with_kind(rtype: ResourceType, raw: bytes) -> bytes:
    head = b'{"kind":"%s","apiVersion":"%s"' % (rtype.kind.encode(), rtype.api_version.encode())
    return head + (b"," + raw[1:] if raw != b"{}" else b"}")


def render(rtype: ResourceType, entry: Entry, *, kind: bool) -> bytes:
    """The object as ``rtype`` serves it: list items without kind/apiVersion, everything else with."""
    if rtype.storage == "events":
        raw = dumps(event_v1(entry.obj()))
    else:
        raw = entry.raw
    return with_kind(rtype, raw) if kind else raw


# ------------------------------------------------------------------------------ watchers
@dataclass(eq=False)
class Watcher:
    """One open watch: its filters and a bounded queue of encoded events (a slow reader is dropped)."""

    rtype: ResourceType
    namespace: str
    labels: tuple[Requirement, ...]
    fields: tuple[FieldRequirement, ...]
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(maxsize=20000))
    closed: bool = False
    sent: int = 0

    def matches(self, entry: Entry | None) -> bool:
        if entry is None:
            return False
        if self.namespace and entry.namespace != self.namespace:
            return False
        return labels_match(self.labels, entry.labels) and fields_match(self.fields, entry.fields)

    def event(self, kind: str, old: Entry | None, new: Entry | None, rv: int) -> bytes | None:
        """The line this watcher sees for one change, or ``None``; like the cacher, an object that stops
        matching the selectors arrives as DELETED (old content, new resourceVersion) and one that starts, as ADDED."""
        if kind == "DELETED":
            if not self.matches(old):
                return None
            obj = old.obj()  # type: ignore[union-attr]
            obj["metadata"]["resourceVersion"] = str(rv)
            return self._line("DELETED", obj)
        was, now = self.matches(old), self.matches(new)
        if now:
            return self._line("ADDED" if not was else "MODIFIED", None, new)
        if was:
            obj = old.obj()  # type: ignore[union-attr]
            obj["metadata"]["resourceVersion"] = str(rv)
            return self._line("DELETED", obj)
        return None

    def _line(self, kind: str, obj: dict | None, entry: Entry | None = None) -> bytes:
        if obj is None:
            body = render(self.rtype, entry, kind=True)  # type: ignore[arg-type]
        else:
            if self.rtype.storage == "events":
                obj = event_v1(obj)
            body = with_kind(self.rtype, dumps(obj))
        return b'{"type":"%s","object":%s}\n' % (kind.encode(), body)

    def offer(self, line: bytes | None) -> None:
        if line is None or self.closed:
            return
        try:
            self.queue.put_nowait(line)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.queue.put_nowait(b"")  # wakes the writer, which ends the stream
            except asyncio.QueueFull:
                pass


class Expired(Exception):
    """A watch asked for history the server no longer keeps (410 Gone, reason Expired)."""


# ------------------------------------------------------------------------------ the store
Listener = Callable[[str, str, "Entry | None", "Entry | None"], None]


class Store:
    """All objects, one global resourceVersion, a bounded event history per resource, and the open watches."""

    def __init__(self, *, history: int = 1000, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.rv = 1000
        self.objects: dict[str, dict[str, Entry]] = {plural: {} for plural in STORED}
        self.history: dict[str, deque] = {plural: deque(maxlen=history) for plural in STORED}
        #: every event with a resourceVersion above this is still in ``history``
        self.floor: dict[str, int] = dict.fromkeys(STORED, self.rv)
        self.watchers: dict[str, set[Watcher]] = {plural: set() for plural in STORED}
        self.listeners: list[Listener] = []

    # -- reading --------------------------------------------------------------------------
    def get(self, plural: str, namespace: str, name: str) -> Entry | None:
        key = f"{namespace}/{name}" if STORED[plural].namespaced else name
        return self.objects[plural].get(key)

    def entries(self, plural: str, namespace: str = "") -> list[Entry]:
        """Objects in key order (as etcd lists them), optionally of one namespace."""
        items = self.objects[plural]
        if namespace:
            return [items[k] for k in sorted(items) if items[k].namespace == namespace]
        return [items[k] for k in sorted(items)]

    def iter(self, plural: str) -> Iterable[Entry]:
        return list(self.objects[plural].values())

    def events_since(self, plural: str, rv: int) -> list[tuple[int, str, Entry | None, Entry | None]]:
        if rv < self.floor[plural]:
            raise Expired(f"too old resource version: {rv} ({self.floor[plural]})")
        return [e for e in self.history[plural] if e[0] > rv]

    # -- writing --------------------------------------------------------------------------
    def _stamp(self, rtype: ResourceType, obj: dict) -> dict:
        meta = obj.setdefault("metadata", {})
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        return obj

    def create(self, plural: str, obj: dict, *, dry_run: bool = False, now: float | None = None) -> dict:
        """Store a new object; returns it as stored (on a dry run: as it would be, with no resourceVersion)."""
        rtype = STORED[plural]
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", rfc3339(self.clock() if now is None else now))
        if rtype.has_generation:
            meta["generation"] = 1
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        if dry_run:
            meta.pop("resourceVersion", None)
            return obj
        self._stamp(rtype, obj)
        entry = Entry(rtype, obj)
        self.objects[plural][entry.key] = entry
        self._commit(plural, "ADDED", None, entry)
        return obj

    def replace(self, plural: str, obj: dict, *, dry_run: bool = False) -> dict:
        """Store a new version of an existing object (generation follows spec changes); returns it as stored."""
        rtype = STORED[plural]
        meta = obj["metadata"]
        old = self.get(plural, meta.get("namespace", ""), meta["name"])
        if old is None:
            raise KeyError(meta["name"])
        obj.pop("kind", None)
        obj.pop("apiVersion", None)
        before = old.obj()
        if rtype.has_generation:
            meta["generation"] = before["metadata"].get("generation", 1) + (
                1 if before.get("spec") != obj.get("spec") else 0
            )
        if dry_run:
            meta["resourceVersion"] = before["metadata"]["resourceVersion"]
            return obj
        self._stamp(rtype, obj)
        entry = Entry(rtype, obj)
        self.objects[plural][entry.key] = entry
        self._commit(plural, "MODIFIED", old, entry)
        return obj

    def delete(self, plural: str, namespace: str, name: str, *, dry_run: bool = False) -> Entry | None:
        old = self.get(plural, namespace, name)
        if old is None or dry_run:
            return old
        del self.objects[plural][old.key]
        self.rv += 1
        self._commit(plural, "DELETED", old, None)
        return old

    def _commit(self, plural: str, kind: str, old: Entry | None, new: Entry | None) -> None:
        rv = self.rv
        hist = self.history[plural]
        if len(hist) == hist.maxlen:
            self.floor[plural] = hist[0][0]
        hist.append((rv, kind, old, new))
        for watcher in list(self.watchers[plural]):
            watcher.offer(watcher.event(kind, old, new, rv))
        for listener in self.listeners:
            listener(plural, kind, old, new)

    def compact(self) -> None:
        """Forget every event so far, as etcd compaction does: watches from older versions get 410."""
        for plural in STORED:
            self.history[plural].clear()
            self.floor[plural] = self.rv

    # -- loading --------------------------------------------------------------------------
    def load(self, plural: str, obj: dict) -> Entry:
        """Insert a seed object without events or listeners (the history starts after the seed)."""
        rtype = STORED[plural]
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", rfc3339(self.clock()))
        if rtype.has_generation:
            meta.setdefault("generation", 1)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        entry = Entry(rtype, obj)
        self.objects[plural][entry.key] = entry
        self.floor[plural] = self.rv
        return entry

    def seal(self) -> None:
        """After seeding: the history begins here."""
        for plural in STORED:
            self.floor[plural] = self.rv
