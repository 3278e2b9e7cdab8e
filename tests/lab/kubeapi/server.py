"""Provides the fake Kubernetes API server: the real REST paths, JSON shapes, status codes, watch stream and RBAC."""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import kueue_objects
from .controllers.disruption import pdb_status
from .controllers.manager import Controllers
from .controllers.objects import GPU, ready, shape_pod, suffix, terminal
from .faults import Faults
from .patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from .selectors import (
    FieldRequirement,
    SelectorError,
    labels_match,
    parse_field_selector,
    parse_label_selector,
    selector_from_label_selector,
)
from .store import (
    BY_GROUP_VERSION,
    RESOURCES,
    STORED,
    Entry,
    Expired,
    ResourceType,
    Store,
    Watcher,
    dumps,
    render,
    rfc3339,
    with_kind,
)

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T11:36:29Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}
TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")
CONTINUE_TOO_OLD = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new list without "
    "the continue parameter, or use the continue token in this response to retrieve the remainder of the results. "
    "Continuing with the provided token results in an inconsistent list - objects that were created, modified, or "
    "deleted between the time the first chunk was returned and now may show up in the list."
)


# ------------------------------------------------------------------------------ errors
class ApiError(Exception):
    """An error the server answers with a ``Status`` object."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details
        self.headers = headers or {}

    def status(self) -> dict:
        return status_object(self.code, self.reason, self.message, self.details)


def status_object(code: int, reason: str, message: str, details: dict | None = None) -> dict:
    out: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        out["details"] = details
    out["code"] = code
    return out


def _details(rtype: ResourceType, name: str = "", **extra: Any) -> dict:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if rtype.group:
        out["group"] = rtype.group
    out["kind"] = rtype.plural
    out.update(extra)
    return out


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.group_resource} "{name}" not found', _details(rtype, name))


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(rtype: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid with one cause per (reason, field, message), worded as field.ErrorList prints them."""
    text = ", ".join(f"{fld}: {msg}" for _, fld, msg in causes)
    if len(causes) > 1:
        text = f"[{text}]"
    details: dict[str, Any] = {"name": name}
    if rtype.group:
        details["group"] = rtype.group
    details["kind"] = rtype.kind
    details["causes"] = [{"reason": r, "message": m, "field": f} for r, f, m in causes]
    return ApiError(422, "Invalid", f'{rtype.qualified_kind} "{name}" is invalid: {text}', details)


# ------------------------------------------------------------------------------ auth
@dataclass
class User:
    """An authenticated user with the RBAC rules bound to it (ClusterRoles, or Roles with ``namespaces``)."""

    name: str
    groups: tuple[str, ...] = ()
    rules: tuple[dict, ...] = ()

    def allowed(self, verb: str, group: str, resource: str, namespace: str, name: str = "") -> bool:
        if "system:masters" in self.groups:
            return True
        for rule in self.rules:
            if (
                not _any(rule.get("verbs"), verb)
                or not _any(rule.get("apiGroups"), group)
                or not _any(rule.get("resources"), resource)
            ):
                continue
            if rule.get("resourceNames") and name not in rule["resourceNames"]:
                continue
            scopes = rule.get("namespaces")
            if scopes is not None and namespace not in scopes:
                continue
            return True
        return False


def _any(allowed: list | None, value: str) -> bool:
    return bool(allowed) and ("*" in allowed or value in allowed)


def forbidden(user: User, verb: str, rtype: ResourceType, namespace: str, name: str = "", sub: str = "") -> ApiError:
    """403 as the apiserver words it (responsewriters.forbiddenMessage + errors.NewForbidden)."""
    resource = f"{rtype.plural}/{sub}" if sub else rtype.plural
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user.name}" cannot {verb} resource "{resource}" in API group "{rtype.group}" {scope}'
    subject = f'{rtype.group_resource} "{name}"' if name else rtype.group_resource
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", _details(rtype, name))


# ------------------------------------------------------------------------------ the server
@dataclass
class Snapshot:
    keys: list[str]
    entries: list[Entry]
    rv: int
    at: float


@dataclass(eq=False)
class OpenWatch:
    watcher: Watcher
    transport: Any


@dataclass
class Stats:
    requests: Counter = field(default_factory=Counter)  # "verb resource" → count
    items: Counter = field(default_factory=Counter)  # resource → objects returned by list
    watch_events: Counter = field(default_factory=Counter)  # resource → events sent
    bookmarks: Counter = field(default_factory=Counter)
    expired: Counter = field(default_factory=Counter)  # resource → 410s sent
    denied: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {
            k: dict(getattr(self, k)) for k in ("requests", "items", "watch_events", "bookmarks", "expired", "denied")
        }


class ApiServer:
    """Routes requests to the store as kube-apiserver would; ``control_token`` guards the lab's own ``/_lab`` knobs."""

    def __init__(
        self,
        store: Store,
        controllers: Controllers,
        users: dict[str, User],
        *,
        control_token: str,
        bookmark_s: float = 1.0,
        continue_ttl_s: float = 300.0,
        address: str = "127.0.0.1:6443",
        crd_groups: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        #: API groups whose CustomResourceDefinitions are installed (served and discoverable)
        self.crd_groups = crd_groups
        self.controllers = controllers
        self.users = users
        self.control_token = control_token
        self.bookmark_s = bookmark_s
        self.continue_ttl_s = continue_ttl_s
        self.address = address
        self.stats = Stats()
        self.snapshots: dict[str, Snapshot] = {}
        self.watches: set[OpenWatch] = set()
        self.hold_watches_until = 0.0
        self.faults = Faults()  # per-kind fault toggles (403, 404, 401), switched through /_lab/faults

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 2**20)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- entry -----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        try:
            if request.path.startswith("/_lab/"):
                return await self.control(request)
            if self.faults.reject_tokens:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            user = self.authenticate(request)
            return await self.route(request, user)
        except ApiError as err:
            return web.Response(
                status=err.code, body=dumps(err.status()), content_type="application/json", headers=err.headers
            )

    def authenticate(self, request: web.Request) -> User:
        header = request.headers.get("Authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        user = self.users.get(token) if token else None
        if user is None:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        return user

    async def control(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization", "") != f"Bearer {self.control_token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        what = request.path[len("/_lab/") :]
        if what == "stats":
            return web.json_response({**self.stats.as_dict(), "rv": self.store.rv, "open_watches": len(self.watches)})
        if what == "reset-stats":
            self.stats = Stats()
            return web.json_response({})
        if what == "drop-watches":
            # ?hold=S: new watches wait S seconds before they are served (an apiserver restarting)
            self.hold_watches_until = time.monotonic() + float(request.query.get("hold", "0") or 0)
            dropped = 0
            for open_watch in list(self.watches):
                open_watch.watcher.closed = True
                if open_watch.transport is not None:
                    open_watch.transport.abort()
                dropped += 1
            self.watches.clear()
            return web.json_response({"dropped": dropped})
        if what == "faults":
            # ?set=JSON: {"forbidden": [...], "unserved": [...], "unserved_groups": [...], "reject_tokens": bool, "clear": bool}
            before = self.faults.as_dict()
            self.faults.update(json.loads(request.query.get("set", "{}") or "{}"))
            cut = 0
            for open_watch in list(self.watches):
                if self.faults.touched(before, open_watch.watcher.rtype):
                    open_watch.watcher.closed = True
                    if open_watch.transport is not None:
                        open_watch.transport.abort()
                    self.watches.discard(open_watch)
                    cut += 1
            return web.json_response({**self.faults.as_dict(), "watches_cut": cut})
        if what == "compact":
            self.store.compact()
            self.snapshots.clear()
            return web.json_response({"rv": self.store.rv})
        raise ApiError(404, "NotFound", "the server could not find the requested resource", {})

    # -- routing ---------------------------------------------------------------------------
    async def route(self, request: web.Request, user: User) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if path in ("/healthz", "/readyz", "/livez"):
            return web.Response(text="ok")
        if path == "/version":
            return web.json_response(VERSION)
        if path == "/api":
            return web.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}],
                }
            )
        groups = self._groups()
        if path == "/apis":
            return web.json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [self._group_doc(g, groups[g]) for g in sorted(groups)],
                }
            )
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 2 and parts[0] == "apis" and parts[1] in groups:
            if len(parts) == 2:
                return web.json_response(
                    {"kind": "APIGroup", "apiVersion": "v1", **self._group_doc(parts[1], groups[parts[1]])}
                )
            if parts[2] not in groups[parts[1]]:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if not rest:
            return web.json_response(self._resource_list(group, version))
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural, name, sub = rest[0], rest[1] if len(rest) > 1 else "", rest[2] if len(rest) > 2 else ""
        rtype = BY_GROUP_VERSION.get((group, version, plural))
        if (
            rtype is None
            or not self._served(rtype)
            or len(rest) > 3
            or (namespace and not rtype.namespaced)
            or (sub and sub not in rtype.subresources)
        ):
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        query = request.query
        method = request.method
        if method == "GET":
            watching = query.get("watch") in ("1", "true", "True")
            verb = "watch" if watching else ("get" if name else "list")
        else:
            verb = {
                "POST": "create",
                "PATCH": "patch",
                "PUT": "update",
                "DELETE": "delete" if name else "deletecollection",
            }.get(method, "")
            if not verb:
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
        self.stats.requests[f"{verb} {rtype.group_resource}"] += 1
        if self.faults.forbids(rtype) or not user.allowed(
            verb, rtype.group, f"{plural}/{sub}" if sub else plural, namespace, name
        ):
            self.stats.denied[f"{verb} {rtype.group_resource}"] += 1
            raise forbidden(user, verb, rtype, namespace, name, sub)
        dry_run = self._dry_run(query)
        if (
            namespace
            and rtype.plural != "namespaces"
            and method in ("POST", "PUT")
            and self.store.get("namespaces", "", namespace) is None
        ):
            raise not_found(STORED["namespaces"], namespace)
        if verb == "watch":
            return await self.watch(request, rtype, namespace, name)
        if verb == "list":
            return self._bytes(200, self.list(rtype, namespace, query))
        if verb == "get":
            return self._bytes(200, render(rtype, self._entry(rtype, namespace, name), kind=True))
        body = await self._json(request) if method in ("POST", "PATCH", "PUT", "DELETE") else None
        if sub == "eviction":
            return self.evict(namespace, name, body, dry_run)
        if verb == "create":
            if name:
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            return self._obj(201, rtype, self.create(rtype, namespace, body, dry_run))
        if verb == "patch":
            return self._obj(200, rtype, self.patch(rtype, namespace, name, sub, request.content_type, body, dry_run))
        if verb == "update":
            return self._obj(200, rtype, self.update(rtype, namespace, name, sub, body, dry_run))
        if verb == "delete":
            return self.delete(rtype, namespace, name, dry_run, _grace_period(query, body))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _bytes(status: int, body: bytes) -> web.Response:
        return web.Response(status=status, body=body, content_type="application/json")

    def _obj(self, status: int, rtype: ResourceType, obj: dict) -> web.Response:
        return self._bytes(status, with_kind(rtype, dumps(obj)))

    @staticmethod
    async def _json(request: web.Request) -> Any:
        raw = await request.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError as exc:
            raise bad_request(f"error decoding request body: {exc}") from None

    @staticmethod
    def _dry_run(query) -> bool:
        values = query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return bool(values)

    def _entry(self, rtype: ResourceType, namespace: str, name: str) -> Entry:
        entry = self.store.get(rtype.stored_as, namespace, name)
        if entry is None:
            raise not_found(rtype, name)
        return entry

    def _served(self, rtype: ResourceType) -> bool:
        return (not rtype.crd or rtype.group in self.crd_groups) and self.faults.serves(rtype)

    def _groups(self) -> dict[str, list[str]]:
        """Served API groups → their versions (built-in groups, and those of installed CRDs)."""
        out: dict[str, list[str]] = {}
        for r in RESOURCES:
            if r.group and self._served(r) and r.version not in out.setdefault(r.group, []):
                out[r.group].append(r.version)
        return out

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> dict:
        docs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {"name": group, "versions": docs, "preferredVersion": docs[0]}

    def _resource_list(self, group: str, version: str) -> dict:
        resources = []
        for r in RESOURCES:
            if r.group != group or r.version != version or not self._served(r):
                continue
            doc: dict[str, Any] = {
                "name": r.plural,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": list(r.verbs),
            }
            if r.short_names:
                doc["shortNames"] = list(r.short_names)
            resources.append(doc)
            for sub in r.subresources:
                if sub == "eviction":
                    resources.append(
                        {
                            "name": f"{r.plural}/eviction",
                            "singularName": "",
                            "namespaced": True,
                            "group": "policy",
                            "version": "v1",
                            "kind": "Eviction",
                            "verbs": ["create"],
                        }
                    )
                else:
                    resources.append(
                        {
                            "name": f"{r.plural}/{sub}",
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "kind": r.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _selectors(self, rtype: ResourceType, query) -> tuple[tuple, tuple[FieldRequirement, ...]]:
        try:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"), rtype.supported_fields(), rtype.kind)
        except SelectorError as exc:
            raise bad_request(str(exc)) from None
        fields = tuple(FieldRequirement(rtype.canonical_field(f.field), f.value, f.negate) for f in fields)
        return labels, fields

    # -- list ------------------------------------------------------------------------------
    def list(self, rtype: ResourceType, namespace: str, query) -> bytes:
        labels, fields = self._selectors(rtype, query)
        probe = Watcher(rtype, namespace, labels, fields, queue=None)  # type: ignore[arg-type]
        try:
            limit = int(query.get("limit") or 0)
        except ValueError:
            raise bad_request(f"limit: Invalid value: {query.get('limit')!r}") from None
        token = query.get("continue", "")
        now = time.monotonic()
        for key in [k for k, s in self.snapshots.items() if now - s.at > self.continue_ttl_s]:
            del self.snapshots[key]
        if token:
            start = self._decode_continue(token)
            snap = self.snapshots.get(token)
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
                and int(rv_param) != self.store.rv
                and int(rv_param) < self.store.floor[rtype.stored_as]
            ):
                raise ApiError(410, "Expired", "The resourceVersion for the provided list is too old.")
            entries = self.store.entries(rtype.stored_as, namespace)
            snap = Snapshot([e.key for e in entries], entries, self.store.rv, now)
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
            next_token = self._encode_continue(snap.rv, snap.keys[i])
            self.snapshots[next_token] = snap
            meta["continue"] = next_token
            if not labels and not fields:
                meta["remainingItemCount"] = n - i
        while len(self.snapshots) > 64:
            del self.snapshots[next(iter(self.snapshots))]
        self.stats.items[rtype.group_resource] += len(items)
        head = dumps({"kind": rtype.list_kind, "apiVersion": rtype.api_version, "metadata": meta})
        return head[:-1] + b',"items":[' + b",".join(items) + b"]}"

    @staticmethod
    def _encode_continue(rv: int, start: str) -> str:
        raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start + "\x00"}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @staticmethod
    def _decode_continue(token: str) -> str:
        try:
            doc = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            return str(doc["start"]).rstrip("\x00")
        except (binascii.Error, ValueError, KeyError, TypeError):
            raise bad_request(
                "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"
            ) from None

    # -- watch -----------------------------------------------------------------------------
    async def watch(self, request: web.Request, rtype: ResourceType, namespace: str, name: str) -> web.StreamResponse:
        query = request.query
        labels, fields = self._selectors(rtype, query)
        if name:
            fields = fields + (FieldRequirement("metadata.name", name),)
        while time.monotonic() < self.hold_watches_until:
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
        store = self.store
        plural = rtype.stored_as
        watcher = Watcher(rtype, namespace, labels, fields)
        lines: list[bytes] = []
        # from here to the subscription nothing awaits: no event can slip between replay and live
        if rv_param in ("", "0") or send_initial:
            for entry in store.entries(plural, namespace):
                lines.append(watcher.event("ADDED", None, entry, store.rv))
            if send_initial and bookmarks:
                lines.append(self._bookmark(rtype, store.rv, initial_end=True))
            lines = [line for line in lines if line]
        else:
            try:
                rv = int(rv_param)
            except ValueError:
                await resp.write(self._error_line(400, "BadRequest", f"invalid resource version: {rv_param}"))
                await resp.write_eof()
                return resp
            try:
                history = store.events_since(plural, rv)
            except Expired as exc:
                self.stats.expired[rtype.group_resource] += 1
                await resp.write(self._error_line(410, "Expired", str(exc)))
                await resp.write_eof()
                return resp
            for ev_rv, kind, old, new in history:
                line = watcher.event(kind, old, new, ev_rv)
                if line:
                    lines.append(line)
        store.watchers[plural].add(watcher)
        handle = OpenWatch(watcher, request.transport)
        self.watches.add(handle)
        deadline = time.monotonic() + timeout
        try:
            for line in lines:
                await resp.write(line)
                self.stats.watch_events[rtype.group_resource] += 1
            while not watcher.closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    line = await asyncio.wait_for(
                        watcher.queue.get(), timeout=min(left, self.bookmark_s) if bookmarks else left
                    )
                except TimeoutError:
                    if bookmarks and watcher.queue.empty():
                        await resp.write(self._bookmark(rtype, store.rv))
                        self.stats.bookmarks[rtype.group_resource] += 1
                    continue
                if not line:
                    break
                await resp.write(line)
                self.stats.watch_events[rtype.group_resource] += 1
            if not watcher.closed:
                await resp.write_eof()
        except (ConnectionResetError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            store.watchers[plural].discard(watcher)
            self.watches.discard(handle)
        return resp

    @staticmethod
    def _bookmark(rtype: ResourceType, rv: int, *, initial_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(rv), "creationTimestamp": None}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj: dict[str, Any] = {"kind": rtype.kind, "apiVersion": rtype.api_version, "metadata": meta}
        if rtype.plural == "pods":
            obj["spec"] = {"containers": None}
            obj["status"] = {}
        return b'{"type":"BOOKMARK","object":%s}\n' % dumps(obj)

    @staticmethod
    def _error_line(code: int, reason: str, message: str) -> bytes:
        return b'{"type":"ERROR","object":%s}\n' % dumps(status_object(code, reason, message))

    # -- writes ----------------------------------------------------------------------------
    def create(self, rtype: ResourceType, namespace: str, body: Any, dry_run: bool) -> dict:
        if rtype.storage:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        obj = self._check_body(rtype, body)
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        if not meta.get("name"):
            if meta.get("generateName"):
                meta["name"] = meta["generateName"] + suffix()
            else:
                raise invalid(
                    rtype,
                    "",
                    [("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")],
                )
        if self.store.get(rtype.plural, namespace, meta["name"]) is not None:
            raise ApiError(
                409,
                "AlreadyExists",
                f'{rtype.group_resource} "{meta["name"]}" already exists',
                _details(rtype, meta["name"]),
            )
        for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(key, None)
        if rtype.crd and "status" in rtype.subresources:
            obj.pop("status", None)  # with a status subresource, status is only written through it
        _defaults(rtype, obj)
        self._validate(rtype, obj)
        if rtype.plural == "poddisruptionbudgets" and not dry_run:
            pods = [e.obj() for e in self.store.iter("pods") if e.namespace == namespace]
            obj["metadata"]["generation"] = 1
            obj["status"] = pdb_status(obj, pods, self.store.clock())
        return self.store.create(rtype.plural, obj, dry_run=dry_run)

    def _check_body(self, rtype: ResourceType, body: Any) -> dict:
        if not isinstance(body, dict):
            raise bad_request(
                "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf"
            )
        kind, api_version = body.get("kind"), body.get("apiVersion")
        if (kind and kind != rtype.kind) or (api_version and api_version != rtype.api_version):
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rtype.api_version})"
                if api_version != rtype.api_version
                else f"kind {kind} does not match {rtype.kind}"
            )
        return body

    def patch(
        self, rtype: ResourceType, namespace: str, name: str, sub: str, content_type: str, body: Any, dry_run: bool
    ) -> dict:
        if rtype.storage:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        entry = self._entry(rtype, namespace, name)
        current = with_kind_dict(rtype, entry.obj())
        try:
            if content_type == "application/merge-patch+json":
                patched = merge_patch(current, body)
            elif content_type == "application/strategic-merge-patch+json":
                if rtype.crd:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
                    )
                patched = strategic_merge_patch(current, body)
            elif content_type == "application/json-patch+json":
                patched = json_patch(current, body)
            elif content_type == "application/apply-patch+yaml":
                raise ApiError(415, "UnsupportedMediaType", "the lab server does not implement server-side apply")
            else:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json",
                )
        except PatchError as exc:
            if exc.code == 422:
                raise ApiError(422, "Invalid", str(exc)) from None
            raise bad_request(str(exc)) from None
        if not isinstance(patched, dict):
            raise bad_request("patch produced a non-object")
        return self._write(rtype, entry, patched, sub, dry_run)

    def update(self, rtype: ResourceType, namespace: str, name: str, sub: str, body: Any, dry_run: bool) -> dict:
        if rtype.storage:
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        entry = self._entry(rtype, namespace, name)
        obj = self._check_body(rtype, body)
        if (obj.get("metadata") or {}).get("name") not in (None, name):
            raise bad_request(
                f"the name of the object ({obj['metadata']['name']}) does not match the name on the URL ({name})"
            )
        return self._write(rtype, entry, obj, sub, dry_run)

    def _write(self, rtype: ResourceType, entry: Entry, new: dict, sub: str, dry_run: bool) -> dict:
        old = entry.obj()
        new.pop("kind", None)
        new.pop("apiVersion", None)
        meta = new.setdefault("metadata", {})
        want_rv = meta.get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rtype.group_resource} "{entry.name}": the object has been modified; please apply your changes to the latest version and try again',
                _details(rtype, entry.name),
            )
        if sub == "status":
            merged = dict(old)
            merged["status"] = new.get("status", {})
            new = merged
        else:
            if rtype.has_status:
                if "status" in old:
                    new["status"] = old["status"]
                else:
                    new.pop("status", None)
            for key in (
                "uid",
                "creationTimestamp",
                "namespace",
                "name",
                "generation",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if key in old["metadata"]:
                    meta[key] = old["metadata"][key]
                else:
                    meta.pop(key, None)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        self._validate(rtype, new)
        if new == old:  # a no-op write is not a write: no new resourceVersion, no watch event
            return old
        return self.store.replace(rtype.plural, new, dry_run=dry_run)

    def delete(
        self, rtype: ResourceType, namespace: str, name: str, dry_run: bool, grace_s: int | None = None
    ) -> web.Response:
        if rtype.storage or rtype.plural == "namespaces":
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
        entry = self._entry(rtype, namespace, name)
        if rtype.plural == "pods":
            pod = self.controllers.delete_pod(namespace, name, dry_run=dry_run, grace_s=grace_s)
            return self._obj(200, rtype, pod or entry.obj())
        uid = entry.obj()["metadata"]["uid"]
        self.store.delete(rtype.plural, namespace, name, dry_run=dry_run)
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": _details(rtype, name, uid=uid),
        }
        return self._bytes(200, dumps(body))

    # -- eviction --------------------------------------------------------------------------
    def evict(self, namespace: str, name: str, body: Any, dry_run: bool) -> web.Response:
        pods = STORED["pods"]
        if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
            raise bad_request("not a Eviction object")
        if (body.get("metadata") or {}).get("name") != name:
            raise bad_request("name in URL does not match name in Eviction object")
        opts = body.get("deleteOptions") or {}
        dry_run = dry_run or "All" in (opts.get("dryRun") or ())
        grace = _grace_period({}, opts)
        entry = self._entry(pods, namespace, name)
        pod = entry.obj()
        success = web.Response(
            status=201,
            body=dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
            content_type="application/json",
        )
        phase = (pod.get("status") or {}).get("phase")
        if terminal(pod) or phase == "Pending" or pod["metadata"].get("deletionTimestamp"):
            self.controllers.delete_pod(namespace, name, evicted=True, dry_run=dry_run, grace_s=grace)
            return success
        pdbs = []
        for pdb_entry in self.store.iter("poddisruptionbudgets"):
            if pdb_entry.namespace != namespace:
                continue
            pdb = pdb_entry.obj()
            sel = selector_from_label_selector(pdb["spec"].get("selector"))
            if sel is not None and labels_match(sel, pod["metadata"].get("labels") or {}):
                pdbs.append(pdb)
        if len(pdbs) > 1:
            raise ApiError(
                500,
                "InternalError",
                "Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                {
                    "causes": [
                        {
                            "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                        }
                    ]
                },
            )
        if pdbs:
            pdb = pdbs[0]
            status = pdb.get("status") or {}
            healthy_enough = (
                status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0)
                and status.get("desiredHealthy", 0) > 0
            )
            if not ready(pod) and (pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or healthy_enough):
                self.controllers.delete_pod(namespace, name, evicted=True, dry_run=dry_run, grace_s=grace)
                return success
            if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {
                        "causes": [
                            {
                                "reason": "DisruptionBudget",
                                "message": f"The disruption budget {pdb['metadata']['name']} is still being processed by the server.",
                            }
                        ],
                        "retryAfterSeconds": 10,
                    },
                    headers={"Retry-After": "10"},
                )
            if status.get("disruptionsAllowed", 0) == 0:
                message = f"The disruption budget {pdb['metadata']['name']} needs {status.get('desiredHealthy', 0)} healthy pods and has {status.get('currentHealthy', 0)} currently"
                raise ApiError(
                    429,
                    "TooManyRequests",
                    "Cannot evict pod as it would violate the pod's disruption budget.",
                    {"causes": [{"reason": "DisruptionBudget", "message": message}]},
                )
            if not dry_run:
                status = dict(status)
                status["disruptionsAllowed"] = status["disruptionsAllowed"] - 1
                status.setdefault("disruptedPods", {})[name] = rfc3339(self.store.clock())
                pdb["status"] = status
                self.store.replace("poddisruptionbudgets", pdb)
        self.controllers.delete_pod(namespace, name, evicted=True, dry_run=dry_run, grace_s=grace)
        return success

    # -- validation --------------------------------------------------------------------------
    def _validate(self, rtype: ResourceType, obj: dict) -> None:
        name = obj["metadata"].get("name", "")
        causes: list[tuple[str, str, str]] = []
        spec = obj.get("spec") or {}
        if rtype.plural == "nodes":
            if "unschedulable" in spec and not isinstance(spec["unschedulable"], bool):
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.unschedulable",
                        f"Invalid value: {json.dumps(spec['unschedulable'])}: must be a boolean",
                    )
                )
            seen = set()
            for i, taint in enumerate(spec.get("taints") or ()):
                if not isinstance(taint, dict) or not taint.get("key"):
                    causes.append(("FieldValueRequired", f"spec.taints[{i}].key", "Required value"))
                    continue
                effect = taint.get("effect", "")
                if effect not in TAINT_EFFECTS:
                    supported = ", ".join(f'"{e}"' for e in TAINT_EFFECTS)
                    word = (
                        "Required value"
                        if not effect
                        else f'Unsupported value: "{effect}": supported values: {supported}'
                    )
                    causes.append(
                        (
                            "FieldValueRequired" if not effect else "FieldValueNotSupported",
                            f"spec.taints[{i}].effect",
                            word,
                        )
                    )
                if (taint["key"], effect) in seen:
                    causes.append(
                        ("FieldValueDuplicate", f"spec.taints[{i}]", f'Duplicate value: "{taint["key"]}:{effect}"')
                    )
                seen.add((taint["key"], effect))
        elif rtype.plural == "pods":
            containers = spec.get("containers") or []
            if not containers:
                causes.append(("FieldValueRequired", "spec.containers", "Required value"))
            for i, c in enumerate(containers):
                if not c.get("name"):
                    causes.append(("FieldValueRequired", f"spec.containers[{i}].name", "Required value"))
                if not c.get("image"):
                    causes.append(("FieldValueRequired", f"spec.containers[{i}].image", "Required value"))
                res = c.get("resources") or {}
                req, lim = (res.get("requests") or {}).get(GPU), (res.get("limits") or {}).get(GPU)
                if req is not None and lim is not None and str(req) != str(lim):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f"spec.containers[{i}].resources.requests",
                            f'Invalid value: "{req}": must be equal to {GPU} limit of {lim}',
                        )
                    )
        elif rtype.plural in ("deployments", "replicasets", "daemonsets", "statefulsets"):
            sel = spec.get("selector")
            if not sel:
                causes.append(("FieldValueRequired", "spec.selector", "Required value"))
            else:
                reqs = selector_from_label_selector(sel)
                tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
                if reqs is not None and not labels_match(reqs, tlabels):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            "spec.template.metadata.labels",
                            f"Invalid value: {json.dumps(tlabels, separators=(',', ':'))}: `selector` does not match template `labels`",
                        )
                    )
            if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.replicas",
                        f"Invalid value: {spec['replicas']}: must be greater than or equal to 0",
                    )
                )
        elif rtype.plural == "poddisruptionbudgets":
            if "minAvailable" in spec and "maxUnavailable" in spec:
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec",
                        "Invalid value: policy.PodDisruptionBudgetSpec: minAvailable and maxUnavailable cannot be both set",
                    )
                )
        elif rtype.plural == "events":
            causes += _event_causes(obj)
        elif rtype.crd:
            causes += kueue_objects.invalid_fields(rtype.plural, obj)
        if causes:
            raise invalid(rtype, name, causes)


def _event_causes(event: dict) -> list[tuple[str, str, str]]:
    """core/v1 Event validation as the apiserver applies it to v1 writes (legacyValidateEvent): an old-style event
    (no eventTime) must sit in its object's namespace ("default" or none for cluster-scoped objects); a new-style one
    must name its reporting component, instance, action and reason."""
    ns = event["metadata"].get("namespace", "")
    inv = event.get("involvedObject") or {}
    inv_ns = inv.get("namespace") or ""
    causes: list[tuple[str, str, str]] = []
    mismatch = (
        "FieldValueInvalid",
        "involvedObject.namespace",
        f"Invalid value: {json.dumps(inv_ns)}: does not match event.namespace",
    )
    if not event.get("eventTime"):
        if (not inv_ns and ns not in ("", "default")) or (inv_ns and ns != inv_ns):
            causes.append(mismatch)
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            causes.append(mismatch)
        for fld in ("reportingComponent", "reportingInstance", "action", "reason"):
            if not event.get(fld):
                causes.append(("FieldValueRequired", fld, "Required value"))
    return causes


def _grace_period(query: Any, options: Any) -> int | None:
    """DeleteOptions.gracePeriodSeconds, from the body (DeleteOptions, or an Eviction's deleteOptions) or the query."""
    value = options.get("gracePeriodSeconds") if isinstance(options, dict) else None
    if value is None:
        value = query.get("gracePeriodSeconds")
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"gracePeriodSeconds: Invalid value: {value!r}") from None


def with_kind_dict(rtype: ResourceType, obj: dict) -> dict:
    return {"kind": rtype.kind, "apiVersion": rtype.api_version, **obj}


def _defaults(rtype: ResourceType, obj: dict) -> None:
    """The API's defaulting for what the lab lets clients create."""
    spec = obj.setdefault("spec", {}) if rtype.plural != "events" else {}
    if rtype.crd:
        kueue_objects.defaults(rtype.plural, obj)
    elif rtype.plural == "pods":
        template = {"metadata": {}, "spec": spec}
        shaped = shape_pod(
            template, obj["metadata"]["namespace"], obj["metadata"]["name"], None, node=spec.get("nodeName", "")
        )
        obj["spec"] = shaped["spec"]
        obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rtype.plural == "deployments":
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
        )
        obj.setdefault("status", {})
    elif rtype.plural == "jobs":
        spec.setdefault("parallelism", 1)
        spec.setdefault("completions", 1)
        spec.setdefault("backoffLimit", 6)
        obj.setdefault("status", {})
