"""Provides the link to one GPU host: its SSH connection, the probe resident on it, one request at a time, backoff.

A link connects (through its ssh config, host key checked), starts the probe once and then, per
request, writes one newline and reads one JSON line back. A request that times out leaves its
answer owed: the next request reads that answer instead of asking again; a second timeout restarts
the probe. A link whose connection or probe died reconnects in the background with jittered
exponential backoff and meanwhile answers at once with its last error.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..base import close_quietly, jittered_backoff, short, wait_quietly
from .answer import HostMemory
from .ssh_config import HostResolver
from .stages import ProbeGone, describe

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: how many non-JSON lines (e.g. a chatty login script) may precede the probe's first answer
_MAX_JUNK_LINES = 50


@dataclass
class Reply:
    """One host's outcome of one poll: a raw answer line, or an error at a stage."""

    line: str | None = None
    received_at: float | None = None
    latency_s: float | None = None
    error: str = ""
    stage: str = ""


@dataclass
class LinkSettings:
    """What the links of one source share: how to connect, what to run, and the bounds on both."""

    resolver: HostResolver
    #: the shell command that runs the probe resident on a host
    probe_command: Callable[[], str]
    clock: Clock
    #: bound on connecting and on each request
    timeout_s: float
    #: bound on one answer line
    answer_limit: int
    backoff_base_s: float
    backoff_cap_s: float
    rng: random.Random
    #: caps how many connections are set up at once; made for the running event loop
    slots: asyncio.Semaphore | None = None


def _task(coro: Any, name: str) -> asyncio.Task:
    """A task whose exception counts as retrieved even if nobody awaits it (it was torn down)."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB" if count >= 1024 * 1024 else f"{count // 1024} kB"


class Link:
    """One GPU host: its connection, resident probe, in-flight work, backoff and session memory."""

    def __init__(self, name: str, settings: LinkSettings) -> None:
        self.name = name
        self.settings = settings
        self.conn: Any = None
        self.proc: Any = None
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.stderr_task: asyncio.Task | None = None
        self.connect_task: asyncio.Task | None = None
        self.owed = False  # a request was written whose answer has not been read yet
        self.lock = asyncio.Lock()  # one request at a time (a poll and doctor may overlap)
        self.asked_at = 0.0
        self.timeouts = 0  # consecutive requests without an answer
        self.failures = 0  # consecutive failed connects / probe deaths
        self.retry_at = 0.0  # monotonic; no reconnect before
        self.last_error = ""
        self.last_stage = ""
        self.memory = HostMemory()
        self.had_trusted_keys = False  # known_hosts named keys for this host in the last attempt
        self.key_checked = False  # its host key was looked up (not reached: a jump host failed first)
        self.connects = 0
        self.probe_starts = 0
        self.last_line: str | None = None
        self.first_junk: str | None = None  # the first non-JSON line before the probe's first answer
        self.target = ""  # user@host:port as resolved, for messages
        self.resolved: tuple[Any, dict[str, Any]] | None = None  # (config stamp, connect options)
        self.buffer = ""  # what the probe printed after the last full line (an answer still arriving)
        self.last_ok_at: float | None = None  # when the host last answered in full (no error)
        self.refused = ""  # why its name is never used (not a host name): it is never connected to

    def alive(self) -> bool:
        return self.proc is not None and self.conn is not None and not self.conn.is_closed()

    def rebind(self) -> None:
        """Forget the connection: it belongs to an event loop that is no longer the running one."""
        self.conn = self.proc = self.connect_task = self.stderr_task = None
        self.buffer = ""
        self.timeouts, self.owed, self.lock = 0, False, asyncio.Lock()

    # -- polling -----------------------------------------------------------------------------
    async def poll(self, *, wait_reconnect: bool = False) -> Reply:
        """This poll's answer of the host, or why there is none; never raises (but on cancellation)."""
        if self.refused:
            return Reply(error=self.refused, stage="reachable")
        timeout_s = self.settings.timeout_s
        try:
            if self.alive() and self.connect_task is None:
                return await self._ask()
            if self.connect_task is None:
                if time.monotonic() < self.retry_at:
                    return Reply(error=self.last_error, stage=self.last_stage)
                self.connect_task = _task(self._establish(), f"ssh-connect:{self.name}")
            if self.failures and not wait_reconnect:
                # a host that failed before reconnects in the background: it answers now with
                # its last error, and with data at the first poll after the reconnect succeeded
                return Reply(error=self.last_error, stage=self.last_stage)
            try:
                return await asyncio.wait_for(asyncio.shield(self.connect_task), timeout_s + 0.5)
            except TimeoutError:
                slots = self.settings.slots
                waiting = self.conn is None and slots is not None and slots.locked()
                why = "waiting for a connection slot" if waiting else "still connecting"
                return Reply(error=f"{why} ({timeout_s:g}s passed)", stage="reachable")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("polling %s", self.name)
            return Reply(error=f"{type(exc).__name__}: {short(exc)}", stage="probe")

    async def _ask(self) -> Reply:
        """One request to the resident probe: write a newline, read one line (or the late one still owed).

        A read that times out (or is cancelled) leaves the answer owed: the next poll reads that
        late answer instead of asking again, so requests and answers never get out of step.
        """
        timeout_s = self.settings.timeout_s
        async with self.lock:
            if not self.owed:
                try:
                    self.proc.stdin.write("\n")
                except Exception:  # noqa: BLE001 - the probe exited or the channel is gone: say which
                    gone = await self._probe_exit("")
                    return self._lost(str(gone), gone.stage, keep_conn=gone.stage != "reachable")
                self.asked_at = time.perf_counter()
                self.owed = True
            try:
                async with asyncio.timeout(timeout_s):
                    line, at_perf = await self._read_answer()
            except TimeoutError:
                self.timeouts += 1
                if self.timeouts >= 2:
                    return self._lost(
                        f"probe did not answer in {timeout_s:g}s twice; restarting it", "probe", keep_conn=True
                    )
                return Reply(error=f"probe did not answer in {timeout_s:g}s", stage="probe")
            except ProbeGone as exc:
                return self._lost(str(exc), exc.stage, keep_conn=exc.stage != "reachable")
            self.owed = False
            self.timeouts = 0
            self.failures = 0
            return Reply(line=line, received_at=self.settings.clock(), latency_s=max(0.0, at_perf - self.asked_at))

    async def _read_answer(self, *, first: bool = False) -> tuple[str, float]:
        junk = 0
        while True:
            line = await self._read_line()
            if not line.endswith("\n"):
                raise await self._probe_exit(line)
            if first and not line.lstrip().startswith("{") and junk < _MAX_JUNK_LINES:
                # a login script talking on stdout before the probe runs, or a broken probe: keep
                # the first such line, it is the reason if no answer follows
                if not junk:
                    self.first_junk = line
                junk += 1
                continue
            return line, time.perf_counter()

    async def _read_line(self) -> str:
        """The probe's next output line (with its newline; without it at EOF), at most ``answer_limit`` long.

        What arrived of a line not yet ended stays in ``buffer``, so a read that times out loses nothing.
        """
        proc = self.proc
        limit = self.settings.answer_limit
        while True:
            end = self.buffer.find("\n")
            if end >= 0:
                line, self.buffer = self.buffer[: end + 1], self.buffer[end + 1 :]
                return line
            if len(self.buffer) > limit:
                size = len(self.buffer)
                self.buffer = ""
                raise ProbeGone(
                    f"probe answer longer than {_size(limit)} ({_size(size)} read without a line end); not read further"
                )
            try:
                chunk = await proc.stdout.read(65536)
            except Exception as exc:  # noqa: BLE001 - connection lost, channel closed, signal
                self.buffer = ""
                raise ProbeGone(f"connection lost ({short(exc) or type(exc).__name__})", "reachable") from None
            if not chunk:  # EOF: what is left is the partial last line
                line, self.buffer = self.buffer, ""
                return line
            end = chunk.find("\n")
            if end < 0:
                self.buffer += chunk
                continue
            line, self.buffer = self.buffer + chunk[: end + 1], chunk[end + 1 :]
            return line

    async def _probe_exit(self, partial: str) -> ProbeGone:
        """Why the probe's output ended: its exit status and the tail of its stderr."""
        proc = self.proc
        await wait_quietly("the probe's channel", proc.wait_closed(), 1.0)
        if self.stderr_task is not None:
            await wait_quietly("the probe's stderr", asyncio.shield(self.stderr_task), 0.5)
        status = proc.exit_status
        signal = proc.exit_signal
        tail = " | ".join(line for line in self.stderr_tail if line)[-300:]
        if self.conn is None or self.conn.is_closed():
            return ProbeGone("connection lost", "reachable")
        lowered = tail.lower()
        if status == 127 or ("python3" in lowered and ("not found" in lowered or "no such file" in lowered)):
            return ProbeGone(f"python3 not found on {self.name}" + (f": {tail}" if tail else ""), "python3")
        how = (
            f"exited with status {status}"
            if status is not None
            else (f"killed by signal {signal[0]}" if signal else "ended its output")
        )
        detail = tail or (f"last output {short(partial, 60)!r}" if partial else "")
        return ProbeGone(f"probe {how}" + (f": {detail}" if detail else ""))

    async def _drain_stderr(self, proc: Any) -> None:
        try:
            async for line in proc.stderr:
                self.stderr_tail.append(short(line, 300))
        except Exception as exc:  # noqa: BLE001 - ends with the channel
            log.debug("stderr of the probe on %s ended: %s: %s", self.name, type(exc).__name__, exc)

    # -- failing -----------------------------------------------------------------------------
    def _lost(self, error: str, stage: str, *, keep_conn: bool = False) -> Reply:
        """The probe or the connection died: tear down and back off before the next attempt."""
        self.teardown(keep_conn=keep_conn)
        self._fail(error, stage)
        return Reply(error=error, stage=stage)

    def _fail(self, error: str, stage: str) -> None:
        settings = self.settings
        self.failures += 1
        self.last_error, self.last_stage = error, stage
        self.retry_at = time.monotonic() + jittered_backoff(
            self.failures, settings.backoff_base_s, settings.backoff_cap_s, settings.rng
        )

    def teardown(self, *, keep_conn: bool = False) -> None:
        """Close the probe's channel, and the connection unless ``keep_conn`` (and it is still open)."""
        self.owed = False
        self.buffer = ""
        proc, self.proc = self.proc, None
        self.timeouts = 0
        if proc is not None:
            close_quietly("the probe's channel", proc.close)
        if not keep_conn or (self.conn is not None and self.conn.is_closed()):
            conn, self.conn = self.conn, None
            if conn is not None:
                close_quietly(f"the connection to {self.name}", conn.close)

    def shutdown(self) -> None:
        """Stop connecting, let the probe exit (EOF on its stdin) and close the connection."""
        task, self.connect_task = self.connect_task, None
        if task is not None and not task.done():
            task.cancel()
        if self.proc is not None:
            close_quietly("the probe's stdin", self.proc.stdin.write_eof)  # the probe exits on EOF
        self.teardown()

    # -- connecting --------------------------------------------------------------------------
    async def _establish(self) -> Reply:
        """Connect (if needed), start the probe and read its first answer; never raises."""
        try:
            if self.conn is None or self.conn.is_closed():
                self.conn = None
                slots = self.settings.slots
                assert slots is not None
                async with slots:
                    self.conn = await self._connect()
            return await self._start_probe()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes the host's error
            error, stage = describe(self, exc, self.settings.timeout_s)
            self.teardown(keep_conn=stage in ("python3", "probe"))
            self._fail(error, stage)
            return Reply(error=error, stage=stage)
        finally:
            self.connect_task = None

    def _key_looked_up(self, trusted: bool) -> None:
        self.key_checked = True
        self.had_trusted_keys = trusted

    def _options(self) -> dict[str, Any]:
        """asyncssh connect options: ssh config wins over the site's user/port defaults (cached per config)."""
        resolver = self.settings.resolver
        paths = resolver.paths_for(self.name)
        if self.resolved is not None and self.resolved[0] == resolver.stamp:
            return self.resolved[1]
        options, self.target = resolver.options(self.name, paths, self._key_looked_up)
        self.resolved = (resolver.stamp, options)
        return options

    async def _connect(self) -> Any:
        import asyncssh

        options = self._options()
        self.had_trusted_keys = self.key_checked = False
        self.connects += 1
        timeout = self.settings.timeout_s
        try:
            return await asyncio.wait_for(
                asyncssh.connect(
                    self.name,
                    connect_timeout=timeout,
                    login_timeout=timeout,
                    keepalive_interval=max(15.0, 2 * timeout),
                    keepalive_count_max=3,
                    **options,
                ),
                timeout + 1.0,
            )
        except TimeoutError:
            raise TimeoutError(f"no SSH answer from {self.name} in {timeout:g}s") from None

    async def _start_probe(self) -> Reply:
        timeout_s = self.settings.timeout_s
        command = self.settings.probe_command()
        proc = await asyncio.wait_for(self.conn.create_process(command, encoding="utf-8", errors="replace"), timeout_s)
        self.proc = proc
        self.probe_starts += 1
        self.stderr_tail.clear()
        self.stderr_task = asyncio.create_task(self._drain_stderr(proc), name=f"ssh-stderr:{self.name}")
        self.timeouts, self.owed = 0, False
        self.asked_at = time.perf_counter()
        try:
            proc.stdin.write("\n")
        except Exception:  # noqa: BLE001 - the probe already exited (no python3, say): ask why
            raise await self._probe_exit("") from None
        self.first_junk = None
        try:
            line, at_perf = await asyncio.wait_for(self._read_answer(first=True), timeout_s)
        except TimeoutError:
            if self.first_junk is not None:
                raise ProbeGone(f"probe failed: answer is not JSON: {short(self.first_junk, 60)!r}") from None
            raise TimeoutError(f"probe did not answer in {timeout_s:g}s after start") from None
        self.failures = 0
        return Reply(line=line, received_at=self.settings.clock(), latency_s=max(0.0, at_perf - self.asked_at))
