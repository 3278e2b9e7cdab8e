"""Provides the fake sources the tests share: scripted answers, a blocking and a plain thread source, a switchable
Prometheus-like source, and a quick one with its own doctor checks."""

from __future__ import annotations

import threading

from sovtui.model.types import Alert, DoctorCheck, Gpu, PartStatus, SourceData
from sovtui.sources.base import Source, Unreachable

DATA = SourceData(gpus=(Gpu(host="gpu-01", index=0, uuid="GPU-a", util_pct=50.0),), version="1")
NOW = 1_790_000_000.0


class ScriptedSource(Source):
    """An async source that answers from a script: SourceData, an exception, or a callable."""

    kind = "fake"

    def __init__(self, name="fake", script=(), *, interval_s=10.0, timeout_s=1.0, default=DATA) -> None:
        self.name = name
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.script = list(script)
        self.default = default
        self.calls = 0
        self.closed = False

    async def fetch(self, executor=None):
        self.calls += 1
        step = self.script.pop(0) if self.script else self.default
        if callable(step) and not isinstance(step, type):
            step = await step()
        if isinstance(step, BaseException) or (isinstance(step, type) and issubclass(step, BaseException)):
            raise step
        return step

    def close(self) -> None:
        self.closed = True


class BlockingSource(Source):
    """A thread source (``fetch_sync``) that blocks until released."""

    kind = "thread"

    def __init__(self, name="blocking", timeout_s=0.1) -> None:
        self.name = name
        self.timeout_s = timeout_s
        self.release = threading.Event()
        self.started = threading.Event()

    def fetch_sync(self) -> SourceData:
        self.started.set()
        self.release.wait(10)
        return DATA


class SyncSource(Source):
    """A thread source that answers at once, from a worker thread."""

    kind = "thread"
    name = "sync"

    def __init__(self) -> None:
        self.threads: list[str] = []

    def fetch_sync(self) -> SourceData:
        self.threads.append(threading.current_thread().name)
        return DATA


class SwitchedSource(Source):
    """A Prometheus-like source with two hosts of four GPUs and two alerts; set ``fail`` to make it fail."""

    name = "prometheus"
    kind = "prometheus"
    interval_s = 60.0
    timeout_s = 1.0

    def __init__(self) -> None:
        self.fail: str | None = None
        self.calls = 0

    async def fetch(self, executor=None) -> SourceData:
        self.calls += 1
        if self.fail:
            raise Unreachable(self.fail)
        gpus = tuple(
            Gpu(
                host=f"gpu{h:02d}",
                index=i,
                uuid=f"GPU-{h}-{i}",
                name="NVIDIA H100",
                util_pct=10.0 * i,
                mem_used_mib=100,
                mem_total_mib=1000,
                temp_c=50,
                power_w=200,
                sources=("dcgm",),
            )
            for h in (1, 2)
            for i in range(4)
        )
        alerts = (
            Alert(
                "GpuXidErrors",
                "critical",
                labels=(("instance", "gpu01"),),
                summary="XID 79 on gpu01",
                active_since=NOW - 60,
            ),
            Alert(
                "CephNearFull",
                "warning",
                labels=(("pool", "rbd"),),
                summary="pool rbd nearfull",
                active_since=NOW - 600,
            ),
        )
        return SourceData(gpus=gpus, alerts=alerts)


class FakeSource(Source):
    """A source that answers at once (ok, or unreachable) and has doctor checks of its own."""

    kind = "fake"

    def __init__(
        self, name: str, *, ok: bool = True, checks: list[DoctorCheck] | None = None, parts: tuple[PartStatus, ...] = ()
    ) -> None:
        self.name = name
        self.ok = ok
        self.checks = checks
        self.parts = parts
        self.timeout_s = 1.0

    async def fetch(self, executor=None) -> SourceData:
        if not self.ok:
            raise Unreachable("unreachable: connection refused")
        return SourceData(alerts=(), parts=self.parts)

    async def doctor(self, executor=None) -> list[DoctorCheck]:
        if self.checks is not None:
            return self.checks
        if not self.ok:
            raise Unreachable("connection refused", hint="is it running?")
        return [DoctorCheck(self.name, "reachable", True, "v1")]
