"""Provides the Kubernetes source's errors, and the mapping of HTTP statuses and client failures to them, in words.

RBAC is respected: a denied verb is reported (:class:`KubeForbidden` names it), never worked around.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..base import AuthError, BadAnswer, SourceError, Timeout, Unreachable

if TYPE_CHECKING:
    from .kinds import ResourceKind


class KubeForbidden(AuthError):
    """The API server's RBAC denied one verb on one resource (403); ``verb``, ``resource`` and ``group`` say which."""

    hint = "grant this user the verb on the resource (a ClusterRole and ClusterRoleBinding); sovtui does not work around RBAC"

    def __init__(self, verb: str, resource: str, group: str = "", message: str = "", namespace: str = "") -> None:
        self.verb, self.resource, self.group, self.namespace = verb, resource, group, namespace
        self.server_message = message
        qualified = f"{resource}.{group}" if group else resource
        super().__init__(
            f"cannot {verb} {qualified}: {message}" if message else f"cannot {verb} {qualified} (forbidden)"
        )


class EvictionBlocked(SourceError):
    """An eviction refused with 429 because the pod's PodDisruptionBudget allows no disruption now."""

    hint = "wait for the budget to allow a disruption (more healthy pods), or change the PodDisruptionBudget"

    def __init__(
        self, namespace: str, pod: str, message: str, causes: tuple[str, ...] = (), retry_after_s: float | None = None
    ) -> None:
        self.namespace, self.pod, self.causes, self.retry_after_s = namespace, pod, causes, retry_after_s
        detail = f" ({'; '.join(causes)})" if causes else ""
        super().__init__(f"evicting {namespace}/{pod}: {message}{detail}")


class PodGone(SourceError):
    """The pod is not there (404): already deleted, or never was."""

    hint = "the pod left before the request; nothing to do for it"

    def __init__(self, namespace: str, pod: str, message: str = "") -> None:
        self.namespace, self.pod = namespace, pod
        super().__init__(f"{namespace}/{pod} is gone" + (f" ({message})" if message else ""))


def status_of(raw: bytes) -> dict:
    """An error answer's Status object (its message, reason, details); a non-JSON answer's first bytes as its message."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return {"message": raw[:200].decode("utf-8", "replace").strip()}
    return doc if isinstance(doc, dict) else {}


def http_error(status: int, raw: bytes, verb: str, kind: ResourceKind, server: str, where: str) -> SourceError:
    """An error answer of the API server at ``server`` as a typed error; ``where`` names the server and context for a 401."""
    doc = status_of(raw)
    message = str(doc.get("message") or "").strip()
    if status == 401:
        return AuthError(
            f"unauthorized: {where} rejected the credentials",
            hint="the token or client certificate is invalid or expired; log in again or refresh the kubeconfig",
        )
    if status == 403:
        return KubeForbidden(verb, kind.resource, kind.group, message)
    if status == 404:
        return BadAnswer(
            not_served_words(verb, kind.qualified, server),
            hint="the cluster does not serve this API (its group, version or CRD is missing)",
        )
    if status == 429:
        return BadAnswer(
            f"{verb} {kind.qualified}: the API server is throttling requests (429)",
            hint="the API server is overloaded; sovtui retries with backoff",
        )
    return BadAnswer(f"{verb} {kind.qualified}: HTTP {status}" + (f": {message}" if message else ""))


def classify(exc: BaseException, verb: str, kind: ResourceKind, server: str, timeout_s: float) -> SourceError:
    """Any failure of a request to ``server`` as a typed error: a timeout, a TLS or connection fault, an unreadable answer."""
    import aiohttp

    if isinstance(exc, SourceError):
        return exc
    what = f"{verb} {kind.qualified}"
    if isinstance(exc, TimeoutError):
        return Timeout(f"{what}: no answer from {server} within {timeout_s:g}s")
    if isinstance(exc, (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError)):
        return Unreachable(
            f"TLS with {server} failed: {exc}",
            hint="check certificate-authority(-data) and the server name in the kubeconfig",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        why = (
            exc.os_error.strerror if getattr(exc, "os_error", None) is not None and exc.os_error.strerror else str(exc)
        )
        return Unreachable(f"cannot connect to {server}: {why}")
    if isinstance(
        exc, (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, ConnectionError)
    ):
        return Unreachable(f"{what}: connection to {server} dropped ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientError):
        return Unreachable(f"{what}: {type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError):
        return BadAnswer(f"{what}: unreadable answer from {server}: {exc}")
    return BadAnswer(f"{what}: {type(exc).__name__}: {exc}")


def forbidden_words(server_message: str, verb: str, qualified: str) -> str:
    """A 403 in words: ``forbidden: User "x" cannot list resource "pods" in API group "" at the cluster scope``."""
    _, sep, why = server_message.partition(" is forbidden: ")
    return (
        f"forbidden: {why}"
        if sep and why
        else f"forbidden: cannot {verb} {qualified}" + (f" ({server_message})" if server_message else "")
    )


def error_words(err: Any, qualified: str) -> str:
    """A kind's error as its part says it: a 403 in the API server's words, anything else as the error reads."""
    if hasattr(err, "server_message") and hasattr(err, "verb"):
        words = forbidden_words(err.server_message, err.verb, qualified)
        return words if qualified.split(".")[0] in words else f"{qualified}: {words}"
    return str(err)


def not_served_words(verb: str, qualified: str, server: str) -> str:
    return f"{verb} {qualified}: not served (404) by {server or 'the API server'}"
