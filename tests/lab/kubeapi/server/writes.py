"""Provides the API server's writes: create, patch, update and delete, with the API's defaults and conflicts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from .. import kueue_objects
from ..controllers.disruption import pdb_status
from ..controllers.objects import shape_pod, suffix
from ..patches import PatchError, json_patch, merge_patch, strategic_merge_patch
from ..store import Entry, ResourceType, dumps
from .answers import ApiError, bad_request, details, invalid, object_response, raw_response
from .validation import validate

if TYPE_CHECKING:
    from .app import ApiServer


def create(server: ApiServer, rtype: ResourceType, namespace: str, body: Any, dry_run: bool) -> dict:
    if rtype.storage:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    obj = check_body(rtype, body)
    meta = obj.setdefault("metadata", {})
    if rtype.namespaced:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
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
    if server.store.get(rtype.plural, namespace, meta["name"]) is not None:
        raise ApiError(
            409,
            "AlreadyExists",
            f'{rtype.group_resource} "{meta["name"]}" already exists',
            details(rtype, meta["name"]),
        )
    for key in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp", "generation"):
        meta.pop(key, None)
    if rtype.crd and "status" in rtype.subresources:
        obj.pop("status", None)  # with a status subresource, status is only written through it
    defaults(rtype, obj)
    validate(rtype, obj)
    if rtype.plural == "poddisruptionbudgets" and not dry_run:
        pods = [e.obj() for e in server.store.iter("pods") if e.namespace == namespace]
        obj["metadata"]["generation"] = 1
        obj["status"] = pdb_status(obj, pods, server.store.clock())
    return server.store.create(rtype.plural, obj, dry_run=dry_run)


def check_body(rtype: ResourceType, body: Any) -> dict:
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
    server: ApiServer,
    rtype: ResourceType,
    namespace: str,
    name: str,
    sub: str,
    content_type: str,
    body: Any,
    dry_run: bool,
) -> dict:
    if rtype.storage:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    entry = server.entry(rtype, namespace, name)
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
    return write(server, rtype, entry, patched, sub, dry_run)


def update(
    server: ApiServer, rtype: ResourceType, namespace: str, name: str, sub: str, body: Any, dry_run: bool
) -> dict:
    if rtype.storage:
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    entry = server.entry(rtype, namespace, name)
    obj = check_body(rtype, body)
    if (obj.get("metadata") or {}).get("name") not in (None, name):
        raise bad_request(
            f"the name of the object ({obj['metadata']['name']}) does not match the name on the URL ({name})"
        )
    return write(server, rtype, entry, obj, sub, dry_run)


def write(server: ApiServer, rtype: ResourceType, entry: Entry, new: dict, sub: str, dry_run: bool) -> dict:
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
            details(rtype, entry.name),
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
    validate(rtype, new)
    if new == old:  # a no-op write is not a write: no new resourceVersion, no watch event
        return old
    return server.store.replace(rtype.plural, new, dry_run=dry_run)


def delete(
    server: ApiServer, rtype: ResourceType, namespace: str, name: str, dry_run: bool, grace_s: int | None = None
) -> web.Response:
    if rtype.storage or rtype.plural == "namespaces":
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")
    entry = server.entry(rtype, namespace, name)
    if rtype.plural == "pods":
        pod = server.controllers.delete_pod(namespace, name, dry_run=dry_run, grace_s=grace_s)
        return object_response(200, rtype, pod or entry.obj())
    uid = entry.obj()["metadata"]["uid"]
    server.store.delete(rtype.plural, namespace, name, dry_run=dry_run)
    body = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details(rtype, name, uid=uid),
    }
    return raw_response(200, dumps(body))


def grace_period(query: Any, options: Any) -> int | None:
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


def defaults(rtype: ResourceType, obj: dict) -> None:
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
