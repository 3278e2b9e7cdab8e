"""Provides the run of a plan: an async stream of progress events per item that can be cancelled and never blocks.

Per host, every layer is closed first (cordon, disable the compute service, drain the Slurm node: nothing
new lands anywhere), then what runs there moves, each layer at once: evictions are issued concurrently
(bounded), so a host takes about as long as its slowest pod; servers migrate a few at a time; Slurm jobs
are waited for (or requeued). A pod counts as gone only when the watch-fed cache no longer has it or has
it under another UID. Hosts go ``max_unavailable`` at a time; with ``stop_on_failure`` a failed host
stops the hosts not yet started. Cancel stops issuing new work and reports where each item stood; the
layers stay closed. A 403 stops the run the same way, named as a denial.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from .drain import PDB_RETRY_S
from .layers import Layers
from .plan import SUCCESS, Event, Outcome, Plan, Step

log = logging.getLogger(__name__)

EVICT_CONCURRENCY = 256  # evictions in flight per host (kubectl drain evicts every pod at once)
MIGRATE_CONCURRENCY = 2  # server migrations in flight per host (Nova's own default allows one per compute)
#: a migration Nova accepted but that left the server where it was, untouched, for this long has failed
MIGRATION_STALL_S = 30.0


class _Stop(Exception):
    """The run stops: cancelled, timed out, or denied."""


class Run:
    """One execution of a plan. Iterate :meth:`events`; :meth:`cancel` from anywhere on the loop."""

    def __init__(
        self,
        plan: Plan,
        layers: Layers,
        *,
        clock: Callable[[], float] = time.time,
        poll_s: float = 2.0,
        on_event: Callable[[Event], None] | None = None,
        pdb_retry_s: float = PDB_RETRY_S,
    ) -> None:
        self.plan = plan
        self.id = ""  # the journal's name for it, once journalled
        self.pdb_retry_s = pdb_retry_s
        self.layers = layers
        self.clock = clock
        self.poll_s = poll_s
        self.outcome = Outcome()
        self.on_event = on_event
        self._cancel = asyncio.Event()
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._host_failed = False

    # -- control ---------------------------------------------------------------------------
    def cancel(self) -> None:
        """Stop issuing new work; items in flight are reported as they stand."""
        if not self._cancel.is_set():
            self.outcome.cancelled = True
            self._cancel.set()

    @property
    def stopping(self) -> bool:
        return self._cancel.is_set()

    def _deny(self, why: str) -> None:
        if not self.outcome.error:
            self.outcome.error = why
        self._cancel.set()

    def _emit(self, step: Step | None, state: str, detail: str = "") -> None:
        event = Event(self.clock(), step.key if step else "", state, detail, step.host if step else "")
        self.outcome.record(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:
                log.exception("event callback failed")
        self._queue.put_nowait(event)

    async def _pause(self, seconds: float, deadline: float) -> None:
        """Wait ``seconds`` (not past the deadline) unless the run is stopped; _Stop when it is."""
        wait = min(seconds, deadline - time.monotonic())
        if wait > 0:
            try:
                await asyncio.wait_for(self._cancel.wait(), wait)
            except TimeoutError:
                pass
        if self._cancel.is_set():
            raise _Stop("cancelled")

    # -- the stream ------------------------------------------------------------------------
    async def events(self) -> AsyncIterator[Event]:
        """Every progress event until the run ends; the last one is the run's own ("done" or "failed")."""
        task = asyncio.create_task(self._main())
        try:
            while True:
                event = await self._queue.get()
                if event is None:
                    break
                yield event
        finally:
            if not task.done():
                self.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def execute(self) -> Outcome:
        """Run to the end without reading the events one by one."""
        async for _ in self.events():
            pass
        return self.outcome

    async def _main(self) -> None:
        self.outcome.started_at = self.clock()
        try:
            gate = asyncio.Semaphore(max(1, self.plan.options.max_unavailable))
            await asyncio.gather(*(self._host(host, gate) for host in self.plan.hosts))
        except Exception as exc:
            log.exception("run failed")
            self.outcome.error = self.outcome.error or f"{type(exc).__name__}: {exc}"
        finally:
            self.outcome.finished_at = self.clock()
            verdict = self.outcome.verdict(self.plan)
            self._emit(None, "done" if verdict == "ok" else verdict, self.outcome.error)
            self._queue.put_nowait(None)

    # -- one host --------------------------------------------------------------------------
    async def _host(self, host: str, gate: asyncio.Semaphore) -> None:
        steps = list(self.plan.host_steps(host))
        async with gate:
            if self._cancel.is_set() or (self._host_failed and self.plan.options.stop_on_failure):
                why = (
                    "cancelled before it started"
                    if self.outcome.cancelled
                    else (self.outcome.error or "not started: an earlier host failed")
                )
                for step in steps:
                    if step.acts:
                        self._emit(step, "cancelled", why)
                return
            deadline = time.monotonic() + self.plan.options.timeout_s
            for step in steps:
                if not step.acts:
                    self._emit(step, "skipped", step.detail)
            closers = [s for s in steps if s.kind in ("node", "service") and s.acts]
            movers = [s for s in steps if s.kind not in ("node", "service") and s.acts]
            closed = True
            for step in closers:
                if not await self._close(step):
                    closed = False
            if not closed:
                for step in movers:
                    self._emit(step, "cancelled", "not started: closing the host failed")
            else:
                await asyncio.gather(
                    self._each([s for s in movers if s.layer == "kubernetes"], EVICT_CONCURRENCY, self._pod, deadline),
                    self._each([s for s in movers if s.layer == "nova"], MIGRATE_CONCURRENCY, self._server, deadline),
                    self._slurm_moves(
                        host,
                        [s for s in closers if s.layer == "slurm"],
                        [s for s in movers if s.layer == "slurm"],
                        deadline,
                    ),
                )
            if any(s.acts and self.outcome.states.get(s.key) not in SUCCESS for s in steps):
                self._host_failed = True

    async def _close(self, step: Step) -> bool:
        """Close (or reopen) one layer of a host; False when it failed."""
        if self._cancel.is_set():
            self._emit(step, "cancelled", "not started")
            return False
        reason = self.plan.options.reason
        try:
            source = self.layers.source(step.layer)
            if step.layer == "kubernetes":
                await source.cordon(
                    step.ref, unschedulable=step.action == "cordon", reason=reason if step.action == "cordon" else None
                )
                self._emit(
                    step,
                    "cordoned" if step.action == "cordon" else "uncordoned",
                    reason if step.action == "cordon" else "",
                )
            elif step.layer == "nova":
                if step.action == "disable":
                    await self._thread(source.disable_compute, step.ref, reason)
                    self._emit(step, "disabled", reason)
                else:
                    await self._thread(source.enable_compute, step.ref)
                    self._emit(step, "enabled")
            elif step.layer == "slurm":
                if step.action == "drain":
                    await source.drain(step.ref, reason)
                    if self.plan.action == "drain":
                        self._emit(step, "waiting", f"drain set ({reason}); DRAINING while jobs run")
                    else:
                        self._emit(step, "drained", f"drain set ({reason}): no new jobs; running ones continue")
                else:
                    await source.undrain(step.ref)
                    self._emit(step, "done", step.detail or "drain flag cleared")
        except Exception as exc:  # noqa: BLE001 - each failure is said per item
            self._failed(step, exc)
            return False
        return True

    def _failed(self, step: Step, exc: BaseException) -> None:
        from ..sources.base import AuthError

        text = _reason(exc)
        if isinstance(exc, AuthError):
            text = f"denied: {text}"
        self._emit(step, "failed", text)
        if isinstance(exc, AuthError):
            self._deny(f"{step.layer} denied {step.action} of {step.name}: {text}")

    async def _thread(self, fn: Any, *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    # -- Kubernetes --------------------------------------------------------------------------
    async def _each(self, steps: list[Step], limit: int, one: Callable[[Step, float], Any], deadline: float) -> None:
        """``one(step, deadline)`` for every step, at most ``limit`` at a time."""
        gate = asyncio.Semaphore(limit)

        async def bounded(step: Step) -> None:
            async with gate:
                await one(step, deadline)

        await asyncio.gather(*(bounded(s) for s in steps))

    async def _pod(self, step: Step, deadline: float) -> None:
        from ..sources.base import SourceError
        from ..sources.kubernetes import EvictionBlocked

        kube = self.layers.source("kubernetes")
        namespace, _, name = step.name.partition("/")
        uid = step.ref or kube.pod_uid(namespace, name) or ""
        try:
            if step.action == "evict":
                attempt = 0
                while True:
                    if self._cancel.is_set():
                        raise _Stop("not evicted")
                    if time.monotonic() >= deadline:
                        self._emit(step, "timeout", "not evicted before the timeout")
                        return
                    attempt += 1
                    try:
                        await kube.evict(namespace, name, grace_period_s=self.plan.options.grace_period_s)
                        break
                    except EvictionBlocked as exc:
                        self._emit(step, "blocked", f"{exc} (attempt {attempt}; retrying in {self.pdb_retry_s:g} s)")
                        await self._pause(self.pdb_retry_s, deadline)
                    except SourceError as exc:
                        if type(exc).__name__ == "PodGone":
                            self._emit(step, "gone", "already gone")
                            return
                        raise
                self._emit(step, "terminating", "evicted")
            else:
                self._emit(step, "terminating", "already terminating")
            while not _gone(kube.pod_uid(namespace, name), uid):
                if self._cancel.is_set():
                    raise _Stop("evicted, still terminating")
                left = deadline - time.monotonic()
                if left <= 0:
                    self._emit(step, "timeout", "evicted but still terminating at the timeout")
                    return
                await self._until_change(kube, min(left, 5.0))
            self._emit(step, "gone", "")
        except _Stop as stop:
            self._emit(step, "cancelled", str(stop))
        except Exception as exc:  # noqa: BLE001
            self._failed(step, exc)

    async def _until_change(self, kube: Any, seconds: float) -> None:
        """Until the pod cache changes, the run is stopped, or ``seconds`` pass."""
        changed = asyncio.ensure_future(kube.pods_changed(seconds))
        stop = asyncio.ensure_future(self._cancel.wait())
        _, pending = await asyncio.wait({changed, stop}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()

    # -- Nova ----------------------------------------------------------------------------------
    async def _server(self, step: Step, deadline: float) -> None:
        nova = self.layers.source("nova")
        try:
            if self._cancel.is_set():
                raise _Stop("not migrated")
            before = await self._thread(nova.server, step.ref)
            if before is None:
                self._emit(step, "gone", "deleted meanwhile")
                return
            origin = before.host
            live = step.action == "live-migrate"
            await self._thread(nova.live_migrate if live else nova.cold_migrate, step.ref)
            self._emit(step, "migrating", "live" if live else "cold")
            started = time.monotonic()
            confirmed = False
            while True:
                await self._pause(self.poll_s, deadline)
                if time.monotonic() >= deadline:
                    self._emit(step, "timeout", "still migrating at the timeout")
                    return
                vm = await self._thread(nova.server, step.ref)
                if vm is None:
                    self._emit(step, "gone", "deleted while migrating")
                    return
                status = vm.status.upper()
                if status == "ERROR":
                    self._emit(step, "failed", f"in ERROR after the migration (task {vm.task_state or '-'})")
                    return
                if status == "VERIFY_RESIZE" and not confirmed:
                    self._emit(step, "confirming", f"on {vm.host}: confirming the migration")
                    await self._thread(nova.confirm_resize, step.ref)
                    confirmed = True
                    continue
                if vm.host and vm.host != origin and not vm.task_state and status in ("ACTIVE", "SHUTOFF", "PAUSED"):
                    self._emit(step, "migrated", f"to {vm.host}")
                    return
                if vm.host == origin and not vm.task_state and status == before.status.upper():
                    # back where it was, idle: a migration Nova accepted can fail later; its action says why
                    why = await self._nova_action_error(nova, step.ref, "live-migration" if live else "migrate")
                    if why:
                        self._emit(step, "failed", f"still on {origin}: {why}")
                        return
                    if time.monotonic() - started > MIGRATION_STALL_S:
                        self._emit(step, "failed", f"still on {origin}: Nova did not move it (see its migration list)")
                        return
        except _Stop as stop:
            self._emit(step, "cancelled", str(stop))
        except Exception as exc:  # noqa: BLE001
            self._failed(step, exc)

    async def _nova_action_error(self, nova: Any, server_id: str, action: str) -> str | None:
        ask = getattr(nova, "last_action_error", None)
        if ask is None:
            return None
        try:
            said = await self._thread(ask, server_id, action)
            return str(said) if said else None
        except Exception as exc:  # noqa: BLE001 - only a better reason; the stall check still decides
            log.debug("last action of %s: %s", server_id, exc)
            return None

    # -- Slurm ---------------------------------------------------------------------------------
    async def _slurm_moves(self, host: str, nodes: list[Step], jobs: list[Step], deadline: float) -> None:
        if not nodes and not jobs:
            return
        slurm = self.layers.source("slurm")
        for step in [j for j in jobs if j.action == "requeue"]:
            try:
                if self._cancel.is_set():
                    raise _Stop("not requeued")
                await slurm.requeue(step.ref)
                self._emit(step, "requeued")
            except _Stop as stop:
                self._emit(step, "cancelled", str(stop))
            except Exception as exc:  # noqa: BLE001
                self._failed(step, exc)
        node_steps = [s for s in nodes if s.action == "drain" and self.outcome.states.get(s.key) == "waiting"]
        waiting = {s.ref: s for s in jobs if s.action == "wait"}
        if not node_steps and not waiting:
            return
        name = node_steps[0].ref if node_steps else self.plan.layer_name(host, "slurm") or host
        for step in waiting.values():
            self._emit(step, "waiting", "running; the node is DRAINING")
        try:
            while True:
                node = await slurm.read_node(name)
                running = set(node.jobs)
                for ref, step in list(waiting.items()):
                    if ref not in running:
                        self._emit(step, "done", "ended")
                        del waiting[ref]
                drained = node.state.startswith("drained") or (not running and "drain" in node.state)
                if not waiting and drained:
                    for step in node_steps:
                        self._emit(step, "drained", f"{node.state}" + (f" ({node.reason})" if node.reason else ""))
                    return
                if time.monotonic() >= deadline:
                    for step in [*waiting.values(), *node_steps]:
                        self._emit(
                            step,
                            "timeout",
                            f"{node.state} at the timeout"
                            + (f"; {len(running)} job(s) still running" if running else ""),
                        )
                    return
                await self._pause(self.poll_s, deadline)
        except _Stop as stop:
            for step in [*waiting.values(), *node_steps]:
                self._emit(step, "cancelled", f"{stop}: left draining")
        except Exception as exc:  # noqa: BLE001
            for step in [*waiting.values(), *node_steps]:
                self._failed(step, exc)


def _gone(now: str | None, uid: str) -> bool:
    """A pod is gone when the cache no longer has it, or has another pod of that name (a new UID)."""
    return now is None or bool(uid and now != uid)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    return " ".join((str(exc) or type(exc).__name__).split())[:300]
