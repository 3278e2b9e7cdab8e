"""Provides the interface every data source implements, and its typed errors."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from ..model.types import DoctorCheck, SourceData


class SourceError(Exception):
    """A source could not deliver; ``str()`` is the short reason shown on screen."""

    hint: str = ""

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


class Unreachable(SourceError):
    """Connection refused, DNS failure, TLS failure, no route."""

    hint = "check the URL/host and that the service is running"


class Timeout(SourceError):
    """The backend did not answer in time."""

    hint = "the backend is slow or overloaded; raise timeout_s for this site if it is expected"


class AuthError(SourceError):
    """401/403 or a refused key."""

    hint = "check credentials and permissions"


class BadAnswer(SourceError):
    """The backend answered something we cannot parse or an HTTP error status."""

    hint = "the backend answered but not as expected; check its version and logs"


class Source:
    """One backend. ``fetch`` returns a :class:`SourceData`; the hub owns scheduling.

    Blocking clients override :meth:`fetch_sync` instead of :meth:`fetch`: the hub runs it in
    its own small thread pool. Every implementation bounds its own calls with ``timeout_s``
    too, because a thread cannot be cancelled from outside.
    """

    #: unique name within a site, shown in the header ("prometheus", "alertmanager", ...)
    name: str = "source"
    #: what kind of backend it is
    kind: str = "generic"
    interval_s: float = 10.0
    timeout_s: float = 5.0

    def observe(self, kind: str, data: SourceData) -> bool:
        """What another source (of ``kind``) just delivered; True if this source should poll again
        soon because of it (the SSH source discovers hosts from Kubernetes and Nova this way)."""
        return False

    async def fetch(self, executor: Executor | None = None) -> SourceData:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self.fetch_sync)

    def fetch_sync(self) -> SourceData:  # pragma: no cover - overridden
        raise NotImplementedError

    async def doctor(self, executor: Executor | None = None) -> list[DoctorCheck]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self.doctor_sync)

    def doctor_sync(self) -> list[DoctorCheck]:
        return [DoctorCheck(self.name, "configured", True)]

    def close(self) -> None:
        """Release connections; called once when the hub stops."""


def jittered_backoff(failures: int, base_s: float, cap_s: float, rng: random.Random | None = None) -> float:
    """The wait before retry number ``failures`` (1 = the first): ``base_s`` doubling per failure up to ``cap_s``,
    then a random half to all of it, so that a fleet failing together does not retry together. The one backoff of
    the hub, the SSH links and the Kubernetes informers."""
    ceiling = min(cap_s, base_s * 2 ** min(max(failures, 1) - 1, 32))  # a capped exponent: 2**1000 overflows a float
    return ceiling * (0.5 + 0.5 * (rng or random).random())


_log = logging.getLogger("sovtui.sources")


def close_quietly(what: str, close: Callable[[], Any]) -> None:
    """Run a close (or an EOF) whose failure changes nothing, the other end being gone already; say it at debug."""
    try:
        close()
    except Exception as exc:  # noqa: BLE001 - nothing to do about it but say it
        _log.debug("closing %s: %s: %s", what, type(exc).__name__, exc)


async def wait_quietly(what: str, waiting: Awaitable[Any], timeout_s: float) -> None:
    """Wait at most ``timeout_s`` for something to end (a channel, a connection); its failure changes nothing."""
    try:
        await asyncio.wait_for(waiting, timeout_s)
    except Exception as exc:  # noqa: BLE001 - nothing to do about it but say it
        _log.debug("waiting for %s: %s: %s", what, type(exc).__name__, exc)

