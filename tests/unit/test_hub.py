"""Provides tests of the hub: last good data, timeouts, backoff, refresh, robustness and staleness."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

import sovtui.hub as hub_module
from sovtui.hub import Hub, backoff_delay, describe_error
from sovtui.model.types import DoctorCheck, SourceData, SourceStatus
from sovtui.sources.base import Source, SourceError, Unreachable
from tests.fakes import DATA, BlockingSource, ScriptedSource, SyncSource
from tests.lab.waits import eventually


class Clock:
    """A settable clock."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def fast_backoff(monkeypatch):
    """Make the scheduler's backoff tiny, and record the failure counts it was asked about."""
    seen: list[int] = []

    def fake(failures, interval_s, **kwargs):
        seen.append(failures)
        return 0.005 if failures else interval_s

    monkeypatch.setattr(hub_module, "backoff_delay", fake)
    return seen


# ---------------------------------------------------------------------------------------------
# last good data


async def test_success_records_data_and_status():
    clock = Clock()
    source = ScriptedSource(script=[DATA])
    hub = Hub([source], clock=clock)
    result = await hub.poll("fake")
    assert result.data == DATA
    assert result.status.ok is True and result.status.error == ""
    assert result.status.last_ok_at == clock.now and result.status.last_attempt_at == clock.now
    assert result.status.latency_s is not None and result.status.latency_s >= 0
    assert result.status.kind == "fake" and result.status.failures == 0
    assert hub.result("fake") == result
    await hub.stop()


async def test_last_good_data_kept_on_failure():
    clock = Clock()
    source = ScriptedSource(script=[DATA, Unreachable("connection refused"), ValueError("bad json")])
    hub = Hub([source], clock=clock)
    await hub.poll("fake")
    clock.now += 10
    failed = await hub.poll("fake")
    assert failed.data == DATA, "the last good data survives a failed poll"
    assert failed.status.ok is False
    assert failed.status.error == "connection refused"
    assert failed.status.failures == 1
    assert failed.status.last_ok_at == clock.now - 10
    assert failed.status.last_attempt_at == clock.now
    assert failed.status.state(clock.now) == "failing"
    clock.now += 10
    again = await hub.poll("fake")
    assert again.data == DATA
    assert again.status.error == "ValueError: bad json"
    assert again.status.failures == 2
    # recovery resets the failure count
    recovered = await hub.poll("fake")
    assert recovered.status.ok is True and recovered.status.failures == 0 and recovered.status.error == ""
    await hub.stop()


async def test_failure_before_any_success_has_no_data():
    hub = Hub([ScriptedSource(script=[SourceError("HTTP 503")])])
    result = await hub.poll("fake")
    assert result.data is None and result.status.ok is False and result.status.error == "HTTP 503"
    assert result.status.last_ok_at is None
    await hub.stop()


async def test_wrong_return_type_is_a_failure():
    hub = Hub([ScriptedSource(script=[{"gpus": []}])])
    result = await hub.poll("fake")
    assert result.status.ok is False and "TypeError" in result.status.error and "dict" in result.status.error
    await hub.stop()


async def test_on_update_called_and_its_errors_ignored():
    calls = []

    def on_update(name, result):
        calls.append((name, result.status.ok))
        raise RuntimeError("UI went away")

    hub = Hub([ScriptedSource(script=[DATA, Unreachable("down")])], on_update=on_update)
    await hub.poll("fake")
    await hub.poll("fake")
    assert calls == [("fake", True), ("fake", False)]
    await hub.stop()


def test_duplicate_names_rejected():
    with pytest.raises(ValueError, match="two sources named"):
        Hub([ScriptedSource("a"), ScriptedSource("a")])


async def test_poll_all_is_concurrent():
    async def slow():
        await asyncio.sleep(0.2)
        return DATA

    sources = [ScriptedSource(f"s{i}", [slow]) for i in range(5)]
    hub = Hub(sources)
    t0 = time.perf_counter()
    results = await hub.poll_all()
    assert time.perf_counter() - t0 < 0.6
    assert set(results) == {f"s{i}" for i in range(5)}
    assert all(r.status.ok for r in results.values())
    await hub.stop()


async def test_thread_source_runs_in_the_hubs_pool():
    source = SyncSource()
    hub = Hub([source])
    result = await hub.poll("sync")
    assert result.status.ok and result.data == DATA
    assert source.threads and source.threads[0].startswith("sovtui-src")
    await hub.stop()


# ---------------------------------------------------------------------------------------------
# timeouts


async def test_timeout_async_source():
    async def hang():
        await asyncio.sleep(30)

    hub = Hub([ScriptedSource(script=[hang], timeout_s=0.05)])
    t0 = time.perf_counter()
    result = await hub.poll("fake")
    assert time.perf_counter() - t0 < 1.0
    assert result.status.ok is False
    assert result.status.error == "timed out after 0.05s"
    await hub.stop()


async def test_timeout_thread_source():
    source = BlockingSource(timeout_s=0.05)
    hub = Hub([source])
    try:
        t0 = time.perf_counter()
        result = await hub.poll("blocking")
        assert time.perf_counter() - t0 < 1.0
        assert source.started.is_set()
        assert result.status.ok is False and result.status.error == "timed out after 0.05s"
    finally:
        source.release.set()
        await hub.stop()


async def test_timeout_keeps_last_good_data():
    async def hang():
        await asyncio.sleep(30)

    hub = Hub([ScriptedSource(script=[DATA, hang], timeout_s=0.05)])
    await hub.poll("fake")
    result = await hub.poll("fake")
    assert result.data == DATA and result.status.ok is False and "timed out" in result.status.error
    await hub.stop()


def test_describe_error():
    assert describe_error(TimeoutError(), 2) == "timed out after 2s"
    assert describe_error(TimeoutError(), 0.5) == "timed out after 0.5s"
    assert describe_error(Unreachable("connection refused"), 1) == "connection refused"
    assert describe_error(KeyError("gpu"), 1) == "KeyError: 'gpu'"
    assert describe_error(RuntimeError(), 1) == "RuntimeError"


# ---------------------------------------------------------------------------------------------
# backoff


def test_backoff_healthy_is_the_interval():
    assert backoff_delay(0, 10.0) == 10.0
    assert backoff_delay(0, 300.0) == 300.0


def test_backoff_grows_and_is_capped():
    interval, cap = 5.0, 120.0
    for failures in range(1, 40):
        ceiling = min(cap, interval * 2 ** (failures - 1))
        for seed in range(20):
            delay = backoff_delay(failures, interval, cap_s=cap, rng=random.Random(seed))
            assert max(1.0, 0.5 * ceiling) <= delay <= ceiling
    # upper envelope doubles until the cap
    top = [backoff_delay(n, interval, rng=_MaxRandom()) for n in range(1, 10)]
    assert top == [5.0, 10.0, 20.0, 40.0, 80.0, 120.0, 120.0, 120.0, 120.0]


def test_backoff_is_jittered():
    delays = {round(backoff_delay(4, 10.0, rng=random.Random(seed)), 6) for seed in range(50)}
    assert len(delays) > 40, "different random draws give different delays"
    assert min(delays) < 45 and max(delays) > 75  # spread over [40, 80]


def test_backoff_never_overflows():
    for failures in (64, 1025, 10_000, 10**9):
        assert 60.0 <= backoff_delay(failures, 10.0) <= 120.0
    # an interval longer than the cap is not shortened
    assert 300.0 <= backoff_delay(50, 600.0) <= 600.0


def test_backoff_floor_one_second():
    assert backoff_delay(1, 0.1, rng=random.Random(1)) == 1.0


class _MaxRandom(random.Random):
    def random(self) -> float:
        return 1.0


async def test_scheduler_backs_off_with_growing_failures(fast_backoff):
    source = ScriptedSource(script=[Unreachable("down")] * 4, interval_s=0.01)
    hub = Hub([source])
    hub.start()
    try:
        await eventually(lambda: source.calls >= 6, 2.0, interval_s=0.005)
    finally:
        await hub.stop()
    assert fast_backoff[:5] == [1, 2, 3, 4, 0], "failures count up, then reset on success"


# ---------------------------------------------------------------------------------------------
# scheduling


async def test_refresh_wakes_a_poll():
    source = ScriptedSource(interval_s=3600)
    other = ScriptedSource("other", interval_s=3600)
    hub = Hub([source, other])
    hub.start()
    try:
        await eventually(lambda: source.calls == 1 and other.calls == 1, 2.0, interval_s=0.005)
        await asyncio.sleep(0.05)
        assert source.calls == 1, "no second poll before the interval"
        hub.refresh("fake")
        await eventually(lambda: source.calls == 2, 1.0, interval_s=0.005)
        await asyncio.sleep(0.05)
        assert other.calls == 1, "refresh(name) wakes only that source"
        hub.refresh()
        await eventually(lambda: source.calls == 3 and other.calls == 2, 1.0, interval_s=0.005)
        hub.refresh("no-such-source")  # ignored
    finally:
        await hub.stop()


async def test_start_is_idempotent_and_stop_closes():
    source = ScriptedSource(interval_s=3600)
    hub = Hub([source])
    hub.start()
    hub.start()
    await eventually(lambda: source.calls >= 1, 2.0, interval_s=0.005)
    await asyncio.sleep(0.05)
    assert source.calls == 1
    await hub.stop()
    assert source.closed
    assert hub._tasks == {}


class Boom(BaseException):
    """Not even an Exception."""


async def test_arbitrary_exceptions_never_kill_the_hub(fast_backoff):
    script = [
        ValueError("x"),
        KeyError("k"),
        ZeroDivisionError(),
        RuntimeError,
        Boom("bang"),
        AttributeError("a"),
        DATA,
    ]
    source = ScriptedSource(script=script, interval_s=0.01)
    healthy = ScriptedSource("healthy", interval_s=0.01)
    updates = []
    hub = Hub([source, healthy], on_update=lambda name, result: updates.append((name, result.status.ok)))
    hub.start()
    try:
        await eventually(lambda: source.calls >= len(script) + 1, 2.0, interval_s=0.005)
        assert all(not task.done() for task in hub._tasks.values()), "polling tasks are still alive"
        assert hub.result("fake").status.ok is True
        assert hub.result("healthy").status.ok is True and healthy.calls > 1
    finally:
        await hub.stop()
    failures = [ok for name, ok in updates if name == "fake"][: len(script)]
    assert failures == [False] * (len(script) - 1) + [True]


# ---------------------------------------------------------------------------------------------
# staleness


async def test_stale_after_three_intervals():
    clock = Clock()
    hub = Hub([ScriptedSource(interval_s=10.0)], clock=clock)
    status = (await hub.poll("fake")).status
    t0 = clock.now
    assert status.state(t0) == "ok"
    assert status.state(t0 + 30) == "ok"
    assert status.state(t0 + 30.5) == "stale"
    assert status.age(t0 + 12) == 12
    await hub.stop()


def test_state_pending_failing_and_short_intervals():
    assert SourceStatus("s").state(0) == "pending"
    assert SourceStatus("s", ok=False, last_ok_at=0).state(1) == "failing"
    # for short intervals the grace is at least interval + 10 s
    fast = SourceStatus("s", interval_s=1.0, ok=True, last_ok_at=100.0)
    assert fast.state(110.9) == "ok" and fast.state(111.1) == "stale"
    assert fast.age(50) == 0.0  # clock skew never gives a negative age


# ---------------------------------------------------------------------------------------------
# doctor


class DoctorSource(ScriptedSource):
    def __init__(self, name, behaviour, timeout_s=0.05):
        super().__init__(name, timeout_s=timeout_s)
        self.behaviour = behaviour

    async def doctor(self, executor=None):
        if self.behaviour == "ok":
            return [DoctorCheck(self.name, "reachable", True, "v2.53")]
        if self.behaviour == "raise":
            raise Unreachable("connection refused", hint="is it running?")
        if self.behaviour == "crash":
            raise RuntimeError("oops")
        await asyncio.sleep(30)


async def test_doctor_collects_checks_and_bounds_time():
    hub = Hub(
        [DoctorSource("a", "ok"), DoctorSource("b", "raise"), DoctorSource("c", "hang"), DoctorSource("d", "crash")]
    )
    t0 = time.perf_counter()
    checks = await hub.doctor()
    assert time.perf_counter() - t0 < 2
    by_source = {c.source: c for c in checks}
    assert by_source["a"] == DoctorCheck("a", "reachable", True, "v2.53")
    assert (
        by_source["b"].ok is False
        and by_source["b"].detail == "connection refused"
        and by_source["b"].hint == "is it running?"
    )
    assert by_source["c"].ok is False and "timed out" in by_source["c"].detail
    assert by_source["d"].ok is False and by_source["d"].detail == "RuntimeError: oops"
    await hub.stop()


async def test_default_doctor_runs_in_thread():
    hub = Hub([SyncSource()])
    checks = await hub.doctor()
    assert checks == [DoctorCheck("sync", "configured", True)]
    await hub.stop()


class _Watcher(Source):
    """Wants one more poll each time it sees a new answer from a source of kind "kubernetes"."""

    name, kind = "watcher", "ssh"

    def __init__(self) -> None:
        self.polls, self.seen = 0, []

    async def fetch(self, executor=None) -> SourceData:
        self.polls += 1
        return SourceData(notes=(f"poll {self.polls} after {len(self.seen)} answers",))

    def observe(self, kind: str, data: SourceData) -> bool:
        if kind != "kubernetes":
            return False
        self.seen.append(data)
        return True


class _Lister(Source):
    name, kind = "kube", "kubernetes"

    async def fetch(self, executor=None) -> SourceData:
        await asyncio.sleep(0.05)  # answers after the watcher's first poll
        return SourceData(version="v1")


def test_a_source_that_another_changed_is_polled_again_in_the_same_poll_all():
    watcher = _Watcher()
    hub = Hub([_Lister(), watcher])

    async def run():
        try:
            return await hub.poll_all()
        finally:
            await hub.stop()

    results = asyncio.run(run())
    assert watcher.polls == 2 and len(watcher.seen) == 1
    assert results["watcher"].data.notes == ("poll 2 after 1 answers",)


def test_an_observer_that_raises_does_not_fail_the_poll():
    class Broken(_Watcher):
        def observe(self, kind, data):
            raise RuntimeError("boom")

    hub = Hub([_Lister(), Broken()])

    async def run():
        try:
            return await hub.poll_all()
        finally:
            await hub.stop()

    assert asyncio.run(run())["kube"].status.ok


def test_a_source_answering_in_part_is_partial_and_names_the_part():
    from sovtui.model.types import PartStatus
    from sovtui.widgets.fmt import parts_line

    clock = Clock()
    parts = (
        PartStatus("nova", True, "", clock.now),
        PartStatus("neutron", False, "unreachable: refused", clock.now - 120),
    )
    src = ScriptedSource(script=[SourceData(gpus=DATA.gpus, parts=parts)])
    hub = Hub([src], clock=clock)
    result = asyncio.run(hub.poll("fake"))
    status = result.status
    assert status.ok is True and status.complete is False
    assert [p.name for p in status.failing_parts] == ["neutron"]
    assert status.state(clock.now) == "partial"
    assert parts_line(status, clock.now) == "neutron: unreachable: refused (data 2m old)"
    never = SourceStatus("x", ok=True, last_ok_at=clock.now, parts=(PartStatus("pods", False, "forbidden"),))
    assert parts_line(never, clock.now) == "pods: forbidden (unknown)"
    assert SourceStatus("x", ok=True, last_ok_at=clock.now - 3600, parts=never.parts).state(clock.now) == "stale"
    assert SourceStatus("x", ok=False, parts=never.parts).state(clock.now) == "failing"
    assert SourceStatus("x", ok=True, last_ok_at=clock.now, parts=parts[:1]).state(clock.now) == "ok"


def test_a_thousand_failing_hosts_make_one_short_header_line():
    from sovtui.model.types import PartStatus
    from sovtui.widgets.fmt import parts_line

    parts = tuple(PartStatus(f"gpu{i:04d}", i % 2 == 0, "connection refused", None) for i in range(1000))
    line = parts_line(SourceStatus("ssh", ok=True, last_ok_at=0.0, parts=parts), 10.0)
    assert line.startswith("gpu0001: connection refused (unknown); gpu0003: ")
    assert line.endswith("… 497 more of 1000 (sovtui snapshot lists them)") and len(line) < 200


def test_the_one_backoff_doubles_to_its_cap_with_jitter_and_never_overflows():
    from hypothesis import given
    from hypothesis import strategies as st

    from sovtui.sources.base import jittered_backoff

    @given(st.integers(-5, 10**6), st.floats(0.01, 100.0), st.floats(0.01, 1000.0), st.integers(0, 2**32))
    def check(failures, base, cap, seed):
        delay = jittered_backoff(failures, base, cap, random.Random(seed))
        ceiling = min(cap, base * 2 ** min(max(failures, 1) - 1, 32))
        assert 0.5 * ceiling <= delay <= ceiling

    check()
