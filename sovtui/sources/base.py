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


def short(text: object, limit: int = 200) -> str:
    """``text`` on one line (whitespace runs collapsed), cut to ``limit`` characters with an ellipsis."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


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


class DaemonPool(Executor):
    """A thread pool whose threads never hold the process: a backend call stuck for good (a client library
    deadlocked in its own lock, a socket with no timeout) must not keep ``sovtui snapshot`` from exiting once its
    answer is out, as the standard pool's non-daemon threads would. Threads start on demand, up to ``max_workers``."""

    def __init__(self, max_workers: int, name: str) -> None:
        import queue
        import threading

        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._max = max(1, max_workers)
        self._name = name
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        import threading
        from concurrent.futures import Future

        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new work after shutdown")
            self._queue.put((future, fn, args, kwargs))
            if self._idle == 0 and len(self._threads) < self._max:
                thread = threading.Thread(target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1  # one idle worker will take it
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        import queue

        with self._lock:
            self._closed = True
            threads = list(self._threads)
        if cancel_futures:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[0].cancel()
        for _ in threads:
            self._queue.put(None)
        if wait:
            for thread in threads:
                thread.join()
