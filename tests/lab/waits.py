"""Provides the one way tests wait: ``eventually(check)`` polls a condition until it holds or a deadline passes."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def eventually(
    check: Callable[[], Any], timeout_s: float = 10.0, what: str = "", *, interval_s: float = 0.05, pilot: Any = None
) -> Any:
    """The first truthy value of ``check()`` (sync or async); AssertionError naming ``what`` after ``timeout_s``.

    With a Pilot, each round also lets the app process its messages (``pilot.pause``).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s: {what or check}")
        if pilot is not None:
            await pilot.pause(interval_s)
        else:
            await asyncio.sleep(interval_s)


async def timed(waiting: Any) -> float:
    """How many seconds an awaitable (usually ``eventually(...)``) took."""
    started = time.perf_counter()
    await waiting
    return time.perf_counter() - started
