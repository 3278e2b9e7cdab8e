"""Provides the hub: the one owner of refresh (intervals, timeouts, backoff, last good data).

The hub is plain asyncio so that the TUI, ``sovtui snapshot`` and the tests share it; the app
turns its callback into a Textual message.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from .model.types import DoctorCheck, SourceData, SourceResult, SourceStatus
from .sources.base import DaemonPool, Source, SourceError, jittered_backoff

log = logging.getLogger(__name__)

UpdateCallback = Callable[[str, SourceResult], None]


def describe_error(exc: BaseException, timeout_s: float) -> str:
    """A short human reason for a failed poll."""
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return f"timed out after {timeout_s:g}s"
    if isinstance(exc, SourceError):
        return str(exc)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if str(exc) else text


def backoff_delay(failures: int, interval_s: float, *, cap_s: float = 120.0, rng: random.Random | None = None) -> float:
    """Delay before the next attempt: the interval when healthy, else jittered exponential backoff."""
    if failures <= 0:
        return interval_s
    return max(1.0, jittered_backoff(failures, interval_s, max(cap_s, interval_s), rng))


class Hub:
    """Polls every source on its own interval and keeps, per source, the last good data."""

    def __init__(
        self,
        sources: Iterable[Source],
        *,
        clock: Callable[[], float] = time.time,
        on_update: UpdateCallback | None = None,
        max_threads: int = 4,
        rng: random.Random | None = None,
    ) -> None:
        self.sources: dict[str, Source] = {}
        for source in sources:
            if source.name in self.sources:
                raise ValueError(f"two sources named {source.name!r}")
            self.sources[source.name] = source
        self.clock = clock
        self.on_update = on_update
        self._rng = rng or random.Random()
        self._executor = DaemonPool(max_threads, "sovtui-src")
        self._results: dict[str, SourceResult] = {
            name: SourceResult(SourceStatus(name=name, kind=s.kind, interval_s=s.interval_s))
            for name, s in self.sources.items()
        }
        self._tasks: dict[str, asyncio.Task] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closed = False
        self._stale_by_others: set[str] = set()

    # -- reading ---------------------------------------------------------------------------
    @property
    def results(self) -> dict[str, SourceResult]:
        return dict(self._results)

    def result(self, name: str) -> SourceResult:
        return self._results[name]

    # -- polling ---------------------------------------------------------------------------
    async def poll(self, name: str) -> SourceResult:
        """Poll one source now (at most one poll per source at a time)."""
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:
            return await self._poll(name)

    async def _poll(self, name: str) -> SourceResult:
        source = self.sources[name]
        previous = self._results[name]
        started = self.clock()
        t0 = time.perf_counter()
        try:
            data = await asyncio.wait_for(source.fetch(self._executor), timeout=source.timeout_s)
            if not isinstance(data, SourceData):
                raise TypeError(f"{name} returned {type(data).__name__}, not SourceData")
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            reason = describe_error(exc, source.timeout_s)
            if not isinstance(exc, (SourceError, asyncio.TimeoutError, TimeoutError)):
                log.exception("source %s failed", name)
            else:
                log.warning("source %s failed: %s", name, reason)
            status = replace(
                previous.status,
                ok=False,
                error=reason,
                latency_s=time.perf_counter() - t0,
                last_attempt_at=started,
                failures=previous.status.failures + 1,
            )
            result = SourceResult(status, previous.data)
        else:
            status = replace(
                previous.status,
                ok=True,
                error="",
                latency_s=time.perf_counter() - t0,
                last_ok_at=self.clock(),
                last_attempt_at=started,
                failures=0,
                parts=tuple(data.parts),
            )
            result = SourceResult(status, data)
            self._tell_others(name, source.kind, data)
        self._results[name] = result
        if self.on_update is not None:
            try:
                self.on_update(name, result)
            except Exception:
                log.exception("update callback failed for %s", name)
        return result

    def _tell_others(self, name: str, kind: str, data: SourceData) -> None:
        """Let every other source see what ``name`` delivered; wake those that want to poll again."""
        for other, source in self.sources.items():
            if other == name:
                continue
            try:
                again = source.observe(kind, data)
            except Exception:
                log.exception("%s observing %s", other, name)
                continue
            if again:
                self._stale_by_others.add(other)
                self.refresh(other)

    async def poll_all(self) -> dict[str, SourceResult]:
        """Poll every source once, concurrently; used by ``sovtui snapshot`` and at start.

        A source that another one changed meanwhile (hosts discovered from Kubernetes, say) is
        polled once more, so that one call gives the whole picture.
        """
        self._stale_by_others.clear()
        await asyncio.gather(*(self.poll(name) for name in self.sources))
        again, self._stale_by_others = set(self._stale_by_others), set()
        if again:
            await asyncio.gather(*(self.poll(name) for name in again))
        return self.results

    async def doctor(self) -> list[DoctorCheck]:
        """Run each source's own checks, each bounded by its timeout."""

        async def one(source: Source) -> list[DoctorCheck]:
            try:
                return await asyncio.wait_for(source.doctor(self._executor), timeout=source.timeout_s * 3)
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                hint = getattr(exc, "hint", "")
                return [DoctorCheck(source.name, "reachable", False, describe_error(exc, source.timeout_s * 3), hint)]

        checks = await asyncio.gather(*(one(s) for s in self.sources.values()))
        return [c for group in checks for c in group]

    # -- scheduling ------------------------------------------------------------------------
    def start(self) -> None:
        """Start one polling task per source in the running loop."""
        for name in self.sources:
            if name not in self._tasks:
                self._wake[name] = asyncio.Event()
                self._tasks[name] = asyncio.create_task(self._run(name), name=f"hub:{name}")

    def refresh(self, name: str | None = None) -> None:
        """Ask for an immediate poll of one source, or of all."""
        for key in [name] if name else list(self._wake):
            if key in self._wake:
                self._wake[key].set()

    async def _run(self, name: str) -> None:
        source = self.sources[name]
        wake = self._wake[name]
        while not self._closed:
            result = await self.poll(name)
            delay = backoff_delay(result.status.failures, source.interval_s, rng=self._rng)
            wake.clear()
            try:
                await asyncio.wait_for(wake.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        """Stop polling and close every source."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        for source in self.sources.values():
            try:
                source.close()
            except Exception:
                log.exception("closing %s", source.name)
        self._executor.shutdown(wait=False, cancel_futures=True)
