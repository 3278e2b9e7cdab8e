"""Provides the one check every cell of the fault matrix makes, through the real app: stays up, says why, keeps data, recovers.

``check_fault`` drives a :class:`~sovtui.app.SovtuiApp` (built by the test from real sources pointed at the lab,
usually through a :class:`~tests.lab.faultproxy.FaultProxy`) with Pilot:

1. it waits for the source to answer in full, and for ``kept(app)`` (the data the screen shows) to hold;
2. it injects the fault and waits until the header names the source as failing or partial, with every word of
   ``says`` (what failed and why) and an age for the data shown (``… old``) or ``unknown`` for a part that never answered;
3. while the fault lasts, a screen switch is answered within ``RESPONSIVE_S`` and the data is still on screen;
4. it ends the fault and waits, pressing no key, until the source is complete again.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any

from sovtui.widgets.header import SiteHeader
from tests.lab.waits import eventually

#: a key press must be answered this fast while a backend misbehaves
RESPONSIVE_S = 2.0


def header_text(app: Any) -> str:
    screen = app.active_site_screen
    return screen.query_one(SiteHeader).plain if screen is not None else ""


def status_of(app: Any, source: str) -> Any:
    return app.hub.result(source).status


async def _call(fn: Callable[[], Any] | None) -> None:
    if fn is None:
        return
    value = fn()
    if inspect.isawaitable(value):
        await value


async def check_fault(
    pilot: Any,
    source: str,
    *,
    inject: Callable[[], Any],
    heal: Callable[[], Any] | None,
    says: Sequence[str],
    kept: Callable[[Any], Any],
    state: str | None = None,
    first_s: float = 30.0,
    fault_s: float = 30.0,
    recover_s: float = 60.0,
    switch: tuple[str, str] = ("2", "1"),
) -> dict[str, Any]:
    """The four checks of one cell (see the module docstring); returns what was seen, for the test to add its own."""
    app = pilot.app
    await eventually(lambda: status_of(app, source).complete, first_s, f"{source} answers in full first", pilot=pilot)
    await eventually(lambda: kept(app), first_s, "the screen shows the source's data first", pilot=pilot)
    before_failures = status_of(app, source).failures
    await _call(inject)

    def said() -> str:
        st = status_of(app, source)
        now_state = st.state(app.clock())
        if now_state not in ("failing", "partial") or (state is not None and now_state != state):
            return ""
        text = header_text(app)
        low = text.lower()
        return (
            text
            if all(w.lower() in low for w in says) and (" old" in low or "unknown" in low or "no data yet" in low)
            else ""
        )

    try:
        text = await eventually(
            said,
            fault_s,
            f"the header names {source} failing with {list(says)} and the data's age "
            f"(header: {header_text(app)!r}; status: {status_of(app, source)})",
            pilot=pilot,
        )
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nheader now: {header_text(app)!r}\nstatus now: {status_of(app, source)}") from None
    assert kept(app), "the last good data left the screen during the fault"
    # responsive: a screen switch while the fault lasts
    for key in switch:
        started = time.monotonic()
        before = app.active_site_screen
        await pilot.press(key)
        await eventually(
            lambda b=before: app.active_site_screen is not b, RESPONSIVE_S, f"key {key} answered", pilot=pilot
        )
        assert time.monotonic() - started < RESPONSIVE_S + 0.5
    assert kept(app), "the last good data left the screen after a screen switch"
    seen = {
        "header": text,
        "status": status_of(app, source),
        "failures": status_of(app, source).failures - before_failures,
    }
    if heal is not None:
        await _call(heal)
        await eventually(
            lambda: status_of(app, source).complete and status_of(app, source).state(app.clock()) == "ok",
            recover_s,
            f"{source} recovers by itself (status: {status_of(app, source)})",
            pilot=pilot,
        )
        assert kept(app)
    return seen
