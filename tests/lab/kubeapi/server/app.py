"""Provides the fake Kubernetes API server: authentication, routing of the real REST paths, the lab's control knobs."""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ..controllers.manager import Controllers
from ..faults import Faults
from ..store import BY_GROUP_VERSION, STORED, Entry, ResourceType, Store, dumps, render
from . import discovery
from .answers import ApiError, bad_request, not_found, object_response, raw_response
from .auth import User, forbidden
from .eviction import evict
from .listing import Snapshot, list_objects
from .watch import OpenWatch, watch
from .writes import create, delete, grace_period, patch, update


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
            return web.json_response(discovery.VERSION)
        if path == "/api":
            return web.json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}],
                }
            )
        groups = discovery.groups(self._served)
        if path == "/apis":
            return web.json_response(
                {
                    "kind": "APIGroupList",
                    "apiVersion": "v1",
                    "groups": [discovery.group_doc(g, groups[g]) for g in sorted(groups)],
                }
            )
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 2 and parts[0] == "apis" and parts[1] in groups:
            if len(parts) == 2:
                return web.json_response(
                    {"kind": "APIGroup", "apiVersion": "v1", **discovery.group_doc(parts[1], groups[parts[1]])}
                )
            if parts[2] not in groups[parts[1]]:
                raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
        if not rest:
            return web.json_response(discovery.resource_list(group, version, self._served))
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
            return await watch(self, request, rtype, namespace, name)
        if verb == "list":
            return raw_response(200, list_objects(self, rtype, namespace, query))
        if verb == "get":
            return raw_response(200, render(rtype, self.entry(rtype, namespace, name), kind=True))
        body = await self._json(request) if method in ("POST", "PATCH", "PUT", "DELETE") else None
        if sub == "eviction":
            return evict(self, namespace, name, body, dry_run)
        if verb == "create":
            if name:
                raise ApiError(
                    405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
                )
            return object_response(201, rtype, create(self, rtype, namespace, body, dry_run))
        if verb == "patch":
            return object_response(
                200, rtype, patch(self, rtype, namespace, name, sub, request.content_type, body, dry_run)
            )
        if verb == "update":
            return object_response(200, rtype, update(self, rtype, namespace, name, sub, body, dry_run))
        if verb == "delete":
            return delete(self, rtype, namespace, name, dry_run, grace_period(query, body))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- helpers ---------------------------------------------------------------------------
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

    def entry(self, rtype: ResourceType, namespace: str, name: str) -> Entry:
        """The stored object, or the API's 404 for it."""
        entry = self.store.get(rtype.stored_as, namespace, name)
        if entry is None:
            raise not_found(rtype, name)
        return entry

    def _served(self, rtype: ResourceType) -> bool:
        return (not rtype.crd or rtype.group in self.crd_groups) and self.faults.serves(rtype)
