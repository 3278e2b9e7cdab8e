"""Provides the HTTP plumbing of the JSON sources (Prometheus, Alertmanager): a session whose every answer is bounded in size and time, and the mapping of HTTP failures to the typed source errors."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .base import AuthError, BadAnswer, Timeout, Unreachable, short

if TYPE_CHECKING:  # pragma: no cover
    import requests

#: no answer of a JSON API is read past this size: an 8,000-GPU site's biggest query is ~30 MB
MAX_ANSWER_BYTES = 64 * 1024 * 1024
_CHUNK = 256 * 1024
_MAX_REASON = 160


def api_error(payload: Any) -> str:
    """The error a Prometheus-style API put in its JSON body (``status: error``), or ``""``."""
    if isinstance(payload, dict) and payload.get("status") == "error":
        kind, error = payload.get("errorType", ""), payload.get("error", "")
        return short(f"Prometheus error{f' ({kind})' if kind else ''}: {error}", _MAX_REASON)
    return ""


def content_type(response: Any) -> str:
    return (response.headers.get("Content-Type") or "no content type").split(";")[0] if response is not None else ""


def connection_reason(exc: BaseException) -> str:
    """Why a connection failed, in a few words (from the exception chain's text)."""
    text = repr(exc)
    for needle, reason in (
        ("Connection refused", "connection refused"),
        ("Name or service not known", "host name does not resolve"),
        ("nodename nor servname", "host name does not resolve"),
        ("Temporary failure in name resolution", "host name does not resolve"),
        ("NameResolutionError", "host name does not resolve"),
        ("getaddrinfo failed", "host name does not resolve"),
        ("No route to host", "no route to host"),
        ("Network is unreachable", "network unreachable"),
        ("RemoteDisconnected", "connection closed by the server"),
        ("Connection reset", "connection reset by the server"),
        ("Connection aborted", "connection closed by the server"),
        ("IncompleteRead", "answer cut off mid-body"),
        ("InvalidChunkLength", "answer cut off mid-body"),
        ("ProtocolError", "connection broken mid-answer"),
        ("CERTIFICATE_VERIFY_FAILED", "TLS certificate not trusted"),
        ("SSLError", "TLS error"),
    ):
        if needle in text:
            return reason
    return "cannot connect"


def _seconds(timeout: Any) -> float | None:
    """The read part of a requests timeout (a number or a ``(connect, read)`` pair)."""
    if isinstance(timeout, tuple):
        timeout = timeout[-1]
    return float(timeout) if isinstance(timeout, (int, float)) else None


def bounded_adapter(max_bytes: int, total_s: float | None = None) -> Any:
    """A ``requests`` transport adapter that reads each answer whole before handing it on, but never more than
    ``max_bytes`` of it, and never for longer than ``total_s`` in all (default: the request's timeout) — a server
    that drips an endless answer byte by byte never trips a per-read timeout. The one size bound of every HTTP source."""
    import requests
    import urllib3
    from requests.adapters import HTTPAdapter

    class AnswerTooLarge(requests.exceptions.RequestException):
        """The answer is larger than the bound."""

    class BoundedAdapter(HTTPAdapter):
        too_large = AnswerTooLarge

        def send(self, request, stream=False, timeout=None, **kwargs):
            started = time.monotonic()
            response = super().send(request, stream=True, timeout=timeout, **kwargs)
            if stream:
                return response  # the caller reads it (and bounds it) itself
            budget = total_s if total_s is not None else _seconds(timeout)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                response.close()
                raise AnswerTooLarge(
                    f"answer larger than {max_bytes // 2**20} MB ({int(declared)} bytes)", response=response
                )
            chunks: list[bytes] = []
            size = 0
            try:
                for chunk in response.raw.stream(_CHUNK, decode_content=True):
                    size += len(chunk)
                    if size > max_bytes:
                        raise AnswerTooLarge(f"answer larger than {max_bytes // 2**20} MB, cut", response=response)
                    if budget is not None and time.monotonic() - started > budget:
                        raise requests.exceptions.ReadTimeout(f"answer not complete after {budget:g}s")
                    chunks.append(chunk)
            except (urllib3.exceptions.ProtocolError, urllib3.exceptions.DecodeError) as exc:
                response.close()
                raise requests.exceptions.ChunkedEncodingError(exc, response=response) from None
            except urllib3.exceptions.ReadTimeoutError as exc:
                response.close()
                raise requests.exceptions.ReadTimeout(exc, response=response) from None
            except Exception:
                response.close()
                raise
            response.raw = io.BytesIO(b"".join(chunks))  # already decoded: read as is
            return response

    return BoundedAdapter()


class HttpJson:
    """A lazily made ``requests`` session with a bounded transport, plus the mapping of every failure to the typed
    source errors."""

    def __init__(
        self,
        service: str,
        base_url: str,
        timeout_s: float,
        session: requests.Session | None = None,
        *,
        max_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.service = service
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._session = session
        self._mounted = False
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def session(self) -> requests.Session:
        with self._lock:
            if self._session is None:
                import requests

                self._session = requests.Session()
            if not self._mounted:
                adapter = bounded_adapter(self.max_bytes)
                self._session.mount("http://", adapter)
                self._session.mount("https://", adapter)
                self._mounted = True
            if self._remember not in self._session.hooks.setdefault("response", []):
                self._session.hooks["response"].append(self._remember)
            return self._session

    def bound(self, prefix: str) -> None:
        """Put the bounded transport back on ``prefix``: a client library that mounts its own adapter on the URL
        (prometheus-api-client does, for its retries) would otherwise read answers unbounded."""
        self.session.mount(prefix, bounded_adapter(self.max_bytes))

    def _remember(self, response, *args, **kwargs):
        self._local.response = response
        return response

    @property
    def last_response(self):
        return getattr(self._local, "response", None)

    def deadline(self) -> float:
        return time.monotonic() + self.timeout_s

    @property
    def poll_budget_s(self) -> float:
        """How long one poll's reads may take: a little less than the source's timeout, so that a slow read is
        said in this source's words (which read, which URL) before the hub gives up on the whole source."""
        return max(0.5, self.timeout_s - min(1.0, 0.2 * self.timeout_s))

    def remaining(self, deadline: float | None) -> float:
        if deadline is None:
            return self.timeout_s
        left = deadline - time.monotonic()
        if left <= 0.01:
            raise Timeout(f"{self.service} did not answer within {self.timeout_s:g}s")
        return left

    def get(
        self,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        what: str = "",
        want_json: bool = True,
    ) -> Any:
        """GET ``base_url + path``; the JSON body (or the response when ``want_json`` is false)."""
        what = what or path
        timeout = self.remaining(deadline)
        session = self.session
        response = self.call(lambda: session.get(self.base_url + path, params=params, timeout=timeout), what)
        if not want_json:
            return response
        self.check_status(response, what)
        try:
            return response.json()
        except ValueError:
            raise BadAnswer(
                f"{self.service} answered {what} with something that is not JSON ({content_type(response)})"
            ) from None

    def call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run one HTTP call; map every ``requests`` failure to a short typed error (no traceback)."""
        import requests

        try:
            return fn()
        except requests.exceptions.Timeout:
            raise Timeout(
                f"{self.service} at {self.base_url} did not answer within {self.timeout_s:g}s ({what})"
            ) from None
        except requests.exceptions.JSONDecodeError:
            response = self.last_response
            raise BadAnswer(
                f"{self.service} answered {what} with something that is not JSON"
                f"{f' ({content_type(response)})' if response is not None else ''}"
            ) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            raise BadAnswer(f"{self.service} answered {what} badly: {connection_reason(exc)}") from None
        except requests.exceptions.ConnectionError as exc:
            if "timed out" in str(exc):
                raise Timeout(
                    f"{self.service} at {self.base_url} did not answer within {self.timeout_s:g}s ({what})"
                ) from None
            raise Unreachable(f"{self.service} unreachable at {self.base_url}: {connection_reason(exc)}") from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema):
            raise Unreachable(f"{self.service} unreachable at {self.base_url}: not a valid URL") from None
        except requests.exceptions.RequestException as exc:
            if type(exc).__name__ == "AnswerTooLarge":
                raise BadAnswer(
                    f"{self.service} answered {what} with more than {self.max_bytes // 2**20} MB:"
                    " not read past the size bound"
                ) from None
            raise BadAnswer(f"{self.service} answered {what} badly: {type(exc).__name__}") from None

    def check_status(self, response, what: str) -> None:
        code = response.status_code
        if code in (401, 403):
            raise AuthError(f"{self.service} refused {what}: HTTP {code} {response.reason or ''}".rstrip())
        if code >= 300:
            detail = ""
            try:
                detail = api_error(response.json())
            except ValueError:
                detail = short(response.text, 80) if "html" not in content_type(response) else ""
            raise BadAnswer(f"{self.service} answered {what} with HTTP {code}" + (f": {detail}" if detail else ""))

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
