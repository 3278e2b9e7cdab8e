"""Provides the API server's answers: Status objects, the errors it raises as them, and JSON responses."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..store import ResourceType, dumps, with_kind


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


def details(rtype: ResourceType, name: str = "", **extra: Any) -> dict:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if rtype.group:
        out["group"] = rtype.group
    out["kind"] = rtype.plural
    out.update(extra)
    return out


def not_found(rtype: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rtype.group_resource} "{name}" not found', details(rtype, name))


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


def raw_response(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


def object_response(status: int, rtype: ResourceType, obj: dict) -> web.Response:
    return raw_response(status, with_kind(rtype, dumps(obj)))
