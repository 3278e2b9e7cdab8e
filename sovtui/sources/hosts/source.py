"""Provides the SSH fleet source (HostsSource): every GPU host polled concurrently through its own link.

Per host the source keeps one link (see :mod:`.link`): one SSH connection (asyncssh, through
``~/.ssh/config`` or ``$SOVTUI_SSH_CONFIG``, the ssh-agent, and host keys verified against
known_hosts: an unknown or changed key is that host's error, never accepted) with the probe kept
resident on it; every poll writes one newline and reads one JSON line back (see :mod:`.answer`).

Timing: all hosts are polled concurrently and each is bounded by ``site.ssh.timeout_s``, on
connect and on each request, so a fetch takes about as long as the slowest answering host.
A host's first connection is waited for (up to that timeout); a host whose connection or probe
died reconnects in the background with jittered exponential backoff and meanwhile answers at
once with its last error, so unreachable hosts never slow the others down. Connection setup is
capped by ``site.ssh.concurrency``. A request that times out leaves its answer owed: the next
poll reads that answer instead of asking again; a second timeout restarts the probe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from typing import Any

from ...config import SiteConfig
from ...model.types import DoctorCheck, Gpu, GpuHost, PartStatus, SourceData
from ..base import Source, short, wait_quietly
from ..names import BadName, check_host_name, shown
from ..sshconn import SSH_CONFIG_ENV, config_paths, credential_of
from .answer import ParsedHost, ProbeError, host_from_answer, kept_readings, parse_answer
from .link import Link, LinkSettings, Reply
from .ssh_config import HostResolver
from .stages import HINTS, STAGES

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: bound on one answer line of the probe (8 GPUs with their processes are a few 10 kB); longer is not read further
ANSWER_LIMIT = 4 * 1024 * 1024
#: up to this many hosts answers are parsed on the event loop as they arrive; above, in a thread
_INLINE_HOSTS = 32
#: doctor lists every host separately up to this many hosts; above, healthy hosts are summed up
_DOCTOR_DETAIL_HOSTS = 16


class HostsSource(Source):
    """GPUs and GPU hosts read over SSH by a probe kept resident on every host."""

    name = "ssh"
    kind = "ssh"

    def __init__(
        self,
        site: SiteConfig,
        *,
        hosts: Sequence[str] | None = None,
        clock: Clock = time.time,
        ssh_config: str | os.PathLike | None = None,
        probe_cmd: str | None = None,
        backoff_base_s: float = 2.0,
        backoff_cap_s: float = 120.0,
        rng: random.Random | None = None,
        answer_limit: int = ANSWER_LIMIT,
    ) -> None:
        self.site = site
        self.clock = clock
        ssh = site.ssh
        host_timeout_s = float(ssh.timeout_s)
        self.concurrency = max(1, int(ssh.concurrency))
        self.interval_s = site.refresh_s
        # the hub's bound on a whole fetch: every host answers or times out within host_timeout_s;
        # the margin covers a loaded event loop when hundreds of hosts connect at once
        self.timeout_s = 1.5 * host_timeout_s + 5.0
        explicit = ssh_config if ssh_config is not None else os.environ.get(SSH_CONFIG_ENV) or None
        self.ssh_config_paths = config_paths(explicit)
        self._resolver = HostResolver(ssh, self.ssh_config_paths)
        self._probe_cmd = probe_cmd
        self._shared = LinkSettings(
            resolver=self._resolver,
            probe_command=self.probe_command,
            clock=clock,
            timeout_s=host_timeout_s,
            answer_limit=answer_limit,
            backoff_base_s=backoff_base_s,
            backoff_cap_s=backoff_cap_s,
            rng=rng or random.Random(),
        )
        self._links: dict[str, Link] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.static_hosts: tuple[str, ...] = tuple(hosts if hosts is not None else ssh.hosts)
        self.discover = tuple(ssh.discover)
        self._discovered: dict[str, tuple[str, ...]] = {}  # layer -> GPU hosts it knows
        self.set_hosts(self.static_hosts)

    @property
    def host_timeout_s(self) -> float:
        """The bound on connecting to one host and on each request to it."""
        return self._shared.timeout_s

    @property
    def answer_limit(self) -> int:
        return self._shared.answer_limit

    @property
    def backoff_base_s(self) -> float:
        return self._shared.backoff_base_s

    @property
    def backoff_cap_s(self) -> float:
        return self._shared.backoff_cap_s

    def observe(self, kind: str, data: SourceData) -> bool:
        """Discovery: the GPU hosts Kubernetes (nodes with ``nvidia.com/gpu``) or Nova (computes with
        VGPU/PGPU in Placement) know join the configured ones; a host they forget is dropped.
        Returns True when the set changed (the hub then polls this source soon)."""
        if kind == "kubernetes" and "kubernetes" in self.discover and data.kube_nodes is not None:
            found = tuple(n.name for n in data.kube_nodes if n.gpu_capacity > 0)
            layer = "kubernetes"
        elif kind == "openstack" and "nova" in self.discover and data.nova_hosts is not None:
            found = tuple(h.name for h in data.nova_hosts if h.gpus_total > 0)
            layer = "nova"
        else:
            return False
        if self._discovered.get(layer) == found:
            return False
        self._discovered[layer] = found
        wanted = [*self.static_hosts, *(name for names in self._discovered.values() for name in names)]
        if list(dict.fromkeys(shown(n.strip()) for n in wanted if n and n.strip())) == list(self._links):
            return False
        self.set_hosts(wanted)
        return True

    # -- hosts -------------------------------------------------------------------------------
    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(self._links)

    def set_hosts(self, names: Iterable[str]) -> None:
        """Poll exactly ``names`` from now on (e.g. discovered from Kubernetes nodes or Nova hypervisors).

        New hosts are connected at the next poll; hosts no longer listed are disconnected. A host
        that stays keeps its connection and its session memory.
        """
        refused: dict[str, str] = {}
        wanted = []
        for raw in names:
            name = raw.strip() if isinstance(raw, str) else raw
            if not name:
                continue
            try:
                check_host_name(name)
            except BadName as exc:  # data from the cluster, never an ssh option or a command
                name = shown(name)
                refused[name] = str(exc)
                log.warning("%s", exc)
            wanted.append(name)
        wanted = list(dict.fromkeys(wanted))
        for name in [n for n in self._links if n not in wanted]:
            try:
                self._links.pop(name).shutdown()
            except Exception:
                log.debug("disconnecting %s", name, exc_info=True)
        links = {}
        for name in wanted:
            links[name] = self._links.get(name) or Link(name, self._shared)
            links[name].refused = refused.get(name, "")
        self._links = links

    def add_hosts(self, names: Iterable[str]) -> None:
        """Poll these hosts too."""
        self.set_hosts([*self._links, *names])

    def stats(self, name: str) -> dict[str, Any]:
        """Counters of one host (connections opened, probes started, failures), for tests and diagnostics."""
        link = self._links[name]
        return {
            "connects": link.connects,
            "probe_starts": link.probe_starts,
            "failures": link.failures,
            "connected": link.alive(),
            "last_error": link.last_error,
            "stage": link.last_stage,
        }

    # -- configuration -----------------------------------------------------------------------
    def probe_command(self) -> str:
        if self._probe_cmd is None:
            from ..probe import probe_command

            self._probe_cmd = probe_command()
        return self._probe_cmd

    # -- loop binding ------------------------------------------------------------------------
    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        # connections belong to the loop that made them: a new loop starts from scratch
        for link in self._links.values():
            link.rebind()
        self._loop = loop
        self._shared.slots = asyncio.Semaphore(self.concurrency)

    # -- polling -----------------------------------------------------------------------------
    async def fetch(self, executor: Executor | None = None) -> SourceData:
        self._bind_loop()
        links = list(self._links.values())
        if executor is not None and len(links) > _INLINE_HOSTS:
            # a big fleet: parse in the hub's thread pool, in one go, so that hundreds of answers
            # arriving together do not hold the event loop (and the UI on it) for their whole parse
            replies = await asyncio.gather(*(link.poll() for link in links))
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(
                executor, lambda: [self._digest(link, reply) for link, reply in zip(links, replies, strict=True)]
            )
        else:

            async def one(link: Link) -> ParsedHost:
                # parsed as soon as it arrives, while slower hosts are still answering
                return self._digest(link, await link.poll())

            results = await asyncio.gather(*(one(link) for link in links))
        gpus: list[Gpu] = []
        hosts: list[GpuHost] = []
        notes: list[str] = []
        parts: list[PartStatus] = []
        for link, parsed in zip(links, results, strict=True):
            gpus.extend(parsed.gpus)
            hosts.append(parsed.host)
            notes.extend(parsed.notes)
            error = parsed.host.error
            if not error:
                link.last_ok_at = parsed.host.observed_at or self.clock()
            # every host is a part of its own: one that fails never hides the others, and is named
            parts.append(PartStatus(link.name, not error, error, link.last_ok_at))
        return SourceData(gpus=tuple(gpus), gpu_hosts=tuple(hosts), notes=tuple(notes), parts=tuple(parts))

    def _digest(self, link: Link, reply: Reply) -> ParsedHost:
        memory = link.memory
        if reply.line is not None:
            try:
                parsed = host_from_answer(
                    link.name,
                    parse_answer(reply.line),
                    memory,
                    observed_at=reply.received_at,
                    latency_s=reply.latency_s,
                )
            except ProbeError as exc:
                reply = Reply(error=f"probe failed: {exc}", stage="probe")
            except Exception as exc:
                log.exception("parsing the probe answer of %s", link.name)
                reply = Reply(error=f"probe failed: {type(exc).__name__}: {short(exc)}", stage="probe")
            else:
                link.last_line = reply.line
                if not parsed.host.error:
                    link.last_error, link.last_stage = "", ""
                else:
                    link.last_error, link.last_stage = parsed.host.error, "backend"
                return parsed
        if reply.stage == "probe" and link.alive():
            link.last_error, link.last_stage = reply.error, reply.stage
        host = GpuHost(
            name=link.name,
            expected_gpus=memory.max_gpus or None,
            driver_version=memory.driver,
            cuda_version=memory.cuda,
            backend=memory.backend,
            error=reply.error or link.last_error or "no answer",
            latency_s=None,
            observed_at=self.clock(),
        )
        return ParsedHost(host, kept_readings(memory, host.error))

    # -- doctor ------------------------------------------------------------------------------
    async def doctor(self, executor: Executor | None = None) -> list[DoctorCheck]:
        self._bind_loop()
        links = list(self._links.values())
        if not links:
            if self.discover:
                return [
                    DoctorCheck(
                        self.name,
                        "hosts",
                        True,
                        f"none yet: discovered from {' and '.join(self.discover)} once those sources answer",
                    )
                ]
            return [
                DoctorCheck(self.name, "hosts", False, "no hosts configured", "list them in [sites.NAME.ssh] hosts")
            ]

        async def check(link: Link) -> list[DoctorCheck]:
            if not link.alive() and link.connect_task is None:
                link.retry_at = 0.0  # doctor tries now, whatever the backoff says
            reply = await link.poll(wait_reconnect=True)
            parsed = self._digest(link, reply)
            return self._doctor_lines(link, reply, parsed)

        groups = await asyncio.gather(*(check(link) for link in links))
        checks = [
            DoctorCheck(self.name, "ssh config", True, ", ".join(self.ssh_config_paths) or "none (no ~/.ssh/config)")
        ]
        if len(links) <= _DOCTOR_DETAIL_HOSTS:
            return checks + [c for group in groups for c in group]
        # a big fleet: one summary line per check, then every failing line
        for stage in STAGES:
            lines = [c for group in groups for c in group if c.check.endswith(f": {stage}")]
            good = sum(1 for c in lines if c.ok)
            if lines:
                checks.append(DoctorCheck(self.name, stage, good == len(lines), f"{good} of {len(links)} hosts ok"))
        checks.extend(c for group in groups for c in group if not c.ok)
        return checks

    def _doctor_lines(self, link: Link, reply: Reply, parsed: ParsedHost) -> list[DoctorCheck]:
        error = parsed.host.error
        stage = link.last_stage if error else ""
        if error and not stage:
            stage = reply.stage or "reachable"
        lines: list[DoctorCheck] = []
        # which credential ssh offers (never its value), once the host is reached
        reached = stage not in ("reachable", "host key")
        credential = credential_of(link.name, self._resolver.paths_for(link.name)) if reached else ""
        detail_ok = {
            "reachable": link.target or link.name,
            "host key": "verified against known_hosts",
            "auth": f"logged in ({credential})",
            "python3": "present",
            "probe": "answers",
        }
        for name in STAGES:
            label = f"{link.name}: {name}"
            if name == stage:
                why = f"{error} ({credential})" if name == "auth" else error  # which credential, never its value
                lines.append(DoctorCheck(self.name, label, False, why, HINTS[name]))
                break
            if name == "backend":
                host = parsed.host
                if host.backend in ("nvml", "nvidia-smi"):
                    detail = f"{host.backend}, driver {host.driver_version or '?'}"
                    if host.cuda_version:
                        detail += f", CUDA {host.cuda_version}"
                    detail += f", {len([g for g in parsed.gpus if not g.lost])} GPUs"
                    lines.append(DoctorCheck(self.name, label, True, detail))
                else:
                    lines.append(
                        DoctorCheck(
                            self.name, label, False, f"no GPU backend ({host.backend or 'none'})", HINTS["backend"]
                        )
                    )
                break
            lines.append(DoctorCheck(self.name, label, True, detail_ok[name]))
        return lines

    # -- closing -----------------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection (safe to call from inside or outside the event loop)."""
        for link in self._links.values():
            try:
                link.shutdown()
            except Exception:
                log.debug("closing %s", link.name, exc_info=True)
            link.resolved = None
        self._resolver.cleanup()

    async def aclose(self) -> None:
        """Close every connection and wait until they are closed."""
        conns = [link.conn for link in self._links.values() if link.conn is not None]
        self.close()
        for conn in conns:
            await wait_quietly("a connection to close", conn.wait_closed(), 5.0)
