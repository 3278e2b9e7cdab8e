"""Provides the Slurm source: ``sinfo --json``/``squeue --json`` on a login host over one SSH connection, and node drains.

Configured by ``[sites.X.slurm] host = "login1"`` (an alias resolved through ``~/.ssh/config`` or
``$SOVTUI_SSH_CONFIG``, host key checked against known_hosts, as for the GPU hosts). Each poll runs
``sinfo --json`` and ``squeue --json`` side by side on that connection, plus ``scontrol -o show node``
only when the JSON lacks who set a node's reason and when (the 23.11+ ``sinfo`` shape). The commands
run through :class:`~.login.LoginHost` (bounded in time and output, quoted word by word, ``sudo -n``
for the ones that change something when ``sudo = true``); their output is read by :mod:`.parse`.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from datetime import datetime

from ...config import SiteConfig
from ...model.types import DoctorCheck, PartStatus, SlurmNode, SourceData
from ...model.workload import SlurmJobRef
from ..base import AuthError, BadAnswer, Source, SourceError, Timeout, Unreachable
from ..names import BadName, check_host_name
from ..sshconn import SSH_CONFIG_ENV, config_paths, credential_of
from . import parse as sp
from .login import (
    HINT_CTLD,
    HINT_RIGHTS,
    OUTPUT_LIMIT,
    STDERR_LIMIT,
    LoginHost,
    NodeUnknown,
    SlurmCommandError,
    json_object,
)
from .values import text

Clock = Callable[[], float]

_JOB_ID = re.compile(r"^[0-9]+(_[0-9]+)?$")


def _epoch(stamp: str) -> float | None:
    """``2026-12-03T12:11:49`` (scontrol's local time) as epoch seconds."""
    try:
        return datetime.fromisoformat(stamp).timestamp() if stamp else None
    except ValueError:
        return None


class SlurmSource(Source):
    """Slurm nodes and partition queues read on a login host over SSH; drain, undrain and requeue there."""

    name = "slurm"
    kind = "slurm"

    def __init__(
        self,
        site: SiteConfig,
        *,
        clock: Clock = time.time,
        ssh_config: str | os.PathLike | None = None,
        output_limit: int = OUTPUT_LIMIT,
    ) -> None:
        cfg = site.slurm
        if not cfg.host:
            raise ValueError(f"site {site.name!r} configures no Slurm login host")
        check_host_name(cfg.host, "Slurm login host")  # never an ssh option or a command
        self.site = site
        self.host = cfg.host
        self.clock = clock
        self.interval_s = site.refresh_s
        # a poll connects (when needed) and then runs its commands side by side
        self.timeout_s = 2 * float(cfg.timeout_s) + 2.0
        explicit = ssh_config if ssh_config is not None else os.environ.get(SSH_CONFIG_ENV) or None
        self.ssh_config_paths = config_paths(explicit)
        self.login = LoginHost(
            cfg.host,
            site.ssh,
            self.ssh_config_paths,
            sudo=cfg.sudo,
            timeout_s=float(cfg.timeout_s),
            output_limit=output_limit,
        )
        self._nodes: dict[str, SlurmNode] = {}
        self._jobs: tuple[SlurmJobRef, ...] = ()
        self._submitted: dict = {}
        #: when each part last answered: sinfo (the nodes: without them the source fails whole), squeue (jobs and
        #: queues), scontrol (who set a node's reason, and when, where sinfo --json lacks it)
        self._part_ok_at: dict[str, float] = {}
        self._shown: dict = {}  # scontrol's last answer, kept while it fails
        self.slurm_version = ""
        self.last_poll_s: float | None = None

    # -- commands ----------------------------------------------------------------------------
    def command(self, argv: Sequence[str], *, mutating: bool = False) -> str:
        """The remote command line of ``argv`` (see :meth:`LoginHost.command`)."""
        return self.login.command(argv, mutating=mutating)

    async def run(self, argv: Sequence[str], *, mutating: bool = False, limit: int | None = None) -> str:
        """Run one command on the login host (see :meth:`LoginHost.run`)."""
        return await self.login.run(argv, mutating=mutating, limit=limit)

    def identity(self) -> str:
        """``user@login-host`` as the ssh config resolves it (no I/O)."""
        return self.login.identity()

    # -- reading -----------------------------------------------------------------------------
    async def _read_all(
        self, executor: Executor | None = None
    ) -> tuple[list[SlurmNode], tuple[SlurmJobRef, ...], dict, str, tuple[PartStatus, ...]]:
        """The nodes (``sinfo``: its failure fails the source), the jobs (``squeue``) and reasons' authors
        (``scontrol``), each of the last two failing alone: its last answer is kept and it is named in the parts."""
        sinfo_task = asyncio.ensure_future(self.run(["sinfo", "--json"]))
        squeue_task = asyncio.ensure_future(self.run(["squeue", "--json"]))
        try:
            sinfo_out = await sinfo_task
        except BaseException as exc:  # no nodes, nothing means anything (or the poll was cancelled): squeue stops too
            squeue_task.cancel()
            await asyncio.gather(squeue_task, return_exceptions=True)
            if isinstance(exc, Timeout):  # sinfo waits for a dead controller longer than we do: ask Slurm why
                await self._controller_down(exc)
            raise
        squeue_out: str | None = None
        squeue_error = ""
        try:
            squeue_out = await squeue_task
        except SourceError as exc:
            squeue_error = str(exc)

        def parse() -> tuple[list[SlurmNode], tuple[SlurmJobRef, ...] | None, dict, str, bool, str]:
            sinfo = json_object(sinfo_out, "sinfo --json")
            if type(sinfo.get("nodes")) is not list and type(sinfo.get("sinfo")) is not list:  # unknown, not 0 nodes
                raise BadAnswer(
                    f"sinfo --json answered JSON of a shape sovtui cannot read (no 'nodes' or 'sinfo' list; "
                    f"keys: {text(', '.join(map(str, list(sinfo)[:8])), 120) or 'none'})",
                    hint="sovtui reads the sinfo --json of Slurm 21.08 to 24.x",
                )
            nodes = sp.parse_nodes(sinfo)
            # the JSON of a command that got nothing from slurmctld (down, or not answering in
            # MessageTimeout) is an empty list with an error, whose errno the JSON plugin loses
            errors = sp.api_errors(sinfo)
            if errors and not sinfo.get("nodes") and not sinfo.get("sinfo"):
                raise Unreachable(
                    f"sinfo --json got nothing from slurmctld (from {self.host}): {errors[0]}", hint=HINT_CTLD
                )
            jobs, submitted, error, squeue_version = None, {}, squeue_error, ""
            if squeue_out is not None:
                try:
                    squeue = json_object(squeue_out, "squeue --json")
                    errors = sp.api_errors(squeue)
                    if errors and not squeue.get("jobs"):
                        raise Unreachable(f"squeue --json got nothing from slurmctld (from {self.host}): {errors[0]}")
                    if type(squeue.get("jobs")) is not list:
                        raise BadAnswer("squeue --json answered JSON of a shape sovtui cannot read (no 'jobs' list)")
                    jobs, submitted = sp.parse_jobs(squeue)
                    squeue_version = sp.slurm_version(squeue)
                except SourceError as exc:
                    error = str(exc)
                except Exception as exc:  # noqa: BLE001 - a JSON shape the parser does not know
                    error = f"squeue --json not understood: {type(exc).__name__}: {text(str(exc), 200)}"
            version = sp.slurm_version(sinfo) or squeue_version
            lacking = any(n.reason and (not n.reason_user or n.reason_time is None) for n in nodes)
            return nodes, jobs, submitted, version, lacking, error

        try:
            if executor is not None and len(sinfo_out) + len(squeue_out or "") > 512 * 1024:
                (
                    nodes,
                    jobs,
                    submitted,
                    version,
                    lacking,
                    squeue_error,
                ) = await asyncio.get_running_loop().run_in_executor(executor, parse)
            else:
                nodes, jobs, submitted, version, lacking, squeue_error = parse()
        except Unreachable as exc:  # the JSON plugin's "Unspecified error": scontrol ping says it better
            await self._controller_down(exc)
            raise
        now = self.clock()
        self._part_ok_at["sinfo"] = now
        parts = [PartStatus("sinfo", True, "", now)]
        if jobs is None:  # the last jobs stay, marked with their age by the part
            jobs, submitted = self._jobs, self._submitted
            parts.append(PartStatus("squeue", False, squeue_error, self._part_ok_at.get("squeue")))
        else:
            self._part_ok_at["squeue"] = now
            parts.append(PartStatus("squeue", True, "", now))
        if lacking:  # the JSON does not say who set a reason, or when: scontrol does
            try:
                self._shown = sp.parse_scontrol_nodes(await self.run(["scontrol", "-o", "show", "node"]))
            except SourceError as exc:
                parts.append(PartStatus("scontrol", False, str(exc), self._part_ok_at.get("scontrol")))
            else:
                self._part_ok_at["scontrol"] = now
                parts.append(PartStatus("scontrol", True, "", now))
            nodes = sp.with_scontrol(nodes, self._shown, to_epoch=_epoch)
        return sp.attach_jobs(nodes, jobs), jobs, submitted, version, tuple(parts)

    async def _controller_down(self, cause: SourceError) -> None:
        """After sinfo failed to reach the controller: ``scontrol ping``'s words (it answers at once) as an
        :class:`Unreachable` when it says slurmctld is DOWN; returns when it does not say so."""
        try:
            out = await self.run(["scontrol", "ping"], limit=STDERR_LIMIT)
        except SlurmCommandError as exc:  # exit status 1: some controller is down
            out = str(exc)
        except SourceError:
            return
        said = [
            line[line.lower().index("slurmctld(") :].strip(" |")
            for line in re.split(r"\n| \| ", out)
            if "slurmctld(" in line.lower()
        ]
        if said and all("down" in line.lower() for line in said):
            raise Unreachable(
                f"slurmctld does not answer (from {self.host}): {'; '.join(said)}", hint=HINT_CTLD
            ) from cause

    async def fetch(self, executor: Executor | None = None) -> SourceData:
        started = time.perf_counter()
        nodes, jobs, submitted, version, parts = await self._read_all(executor)
        self._nodes = {n.name: n for n in nodes}
        self._jobs, self._submitted = jobs, submitted
        self.slurm_version = version or self.slurm_version
        # squeue never answered: the queues are unknown, not empty
        queues = sp.build_queues(nodes, jobs, submitted, self.clock()) if "squeue" in self._part_ok_at else None
        self.last_poll_s = time.perf_counter() - started
        return SourceData(
            slurm_nodes=tuple(nodes),
            queues=queues,
            parts=parts,
            version=f"slurm {self.slurm_version}" if self.slurm_version else "",
        )

    def node(self, name: str) -> SlurmNode | None:
        """The node as the last poll saw it (no I/O)."""
        return self._nodes.get(name)

    def jobs_on(self, name: str) -> tuple[SlurmJobRef, ...]:
        """The jobs holding the node at the last poll (no I/O)."""
        return tuple(j for j in self._jobs if name in j.nodes and j.state in sp.ACTIVE_JOB_STATES)

    async def read_node(self, name: str) -> SlurmNode:
        """The node as Slurm has it now (a fresh ``sinfo``/``squeue``); :class:`NodeUnknown` if there is none."""
        self._check_node(name)
        nodes, jobs, _submitted, version, _parts = await self._read_all()
        self._jobs = jobs
        self.slurm_version = version or self.slurm_version
        for node in nodes:
            self._nodes[node.name] = node
            if node.name == name:
                return node
        raise NodeUnknown(f"Slurm knows no node named {name!r}")

    # -- changing ----------------------------------------------------------------------------
    @staticmethod
    def _check_node(name: str) -> None:
        try:
            check_host_name(name, "Slurm node")
        except BadName as exc:
            raise NodeUnknown(f"not a Slurm node name: {exc}") from None

    async def drain(self, name: str, reason: str) -> None:
        """``scontrol update nodename=NAME state=drain reason=REASON``: no new jobs; running jobs go on."""
        self._check_node(name)
        if not isinstance(reason, str) or not reason.strip():
            raise SlurmCommandError("Slurm needs a reason to drain a node")
        if any(ord(c) < 32 or ord(c) == 127 for c in reason):
            raise SlurmCommandError("the reason must be one line of printable text")
        await self.run(["scontrol", "update", f"nodename={name}", "state=drain", f"reason={reason}"], mutating=True)

    async def undrain(self, name: str) -> None:
        """Clear the drain flag, leaving a DOWN node down (``state=undrain``; where Slurm lacks it,
        ``state=resume`` on a node that is not DOWN). A node that is not drained is left as it is."""
        node = await self.read_node(name)
        if "DRAIN" not in node.flags:
            return
        try:
            await self.run(["scontrol", "update", f"nodename={name}", "state=undrain"], mutating=True)
            return
        except SlurmCommandError as exc:
            if "invalid node state" not in str(exc).lower():
                raise
        if node.down or "DOWN" in node.flags:
            raise SlurmCommandError(
                f"{name} is DOWN: Slurm {self.slurm_version or '(this version)'} has no state=undrain, and "
                "state=resume would return the node to service; resume it by hand once it is fixed"
            )
        await self.run(["scontrol", "update", f"nodename={name}", "state=resume"], mutating=True)

    async def requeue(self, job_id: str) -> None:
        """``scontrol requeue JOB``: the job stops and goes back to the queue (it must allow requeueing)."""
        if not isinstance(job_id, str) or not _JOB_ID.match(job_id):
            raise SlurmCommandError(f"not a Slurm job id: {job_id!r}")
        await self.run(["scontrol", "requeue", job_id], mutating=True)

    # -- doctor ------------------------------------------------------------------------------
    async def doctor(self, executor: Executor | None = None) -> list[DoctorCheck]:
        checks = [
            DoctorCheck(self.name, "ssh config", True, ", ".join(self.ssh_config_paths) or "none (no ~/.ssh/config)")
        ]
        try:
            await self.login.connection()
        except SourceError as exc:
            why = str(exc)
            if isinstance(exc, AuthError):  # which credential was offered, never its value
                why += f" ({credential_of(self.host, self.ssh_config_paths)})"
            return [*checks, DoctorCheck(self.name, f"{self.host}: login", False, why, exc.hint)]
        checks.append(
            DoctorCheck(
                self.name,
                f"{self.host}: login",
                True,
                f"{self.login.target or self.host} ({credential_of(self.host, self.ssh_config_paths)})",
            )
        )
        try:
            data = await self.fetch(executor)
        except SourceError as exc:
            return [*checks, DoctorCheck(self.name, "sinfo/squeue", False, str(exc), exc.hint)]
        nodes = data.slurm_nodes or ()
        closed = sum(1 for n in nodes if n.closed)
        checks.append(
            DoctorCheck(
                self.name,
                "sinfo/squeue",
                True,
                f"{data.version or 'slurm ?'}: {len(nodes)} nodes ({closed} not taking jobs), "
                f"{len(self._jobs)} jobs, {len(data.queues or ())} partitions, "
                f"{(self.last_poll_s or 0) * 1000:.0f} ms",
            )
        )
        checks.append(await self._rights_check())
        return checks

    async def _rights_check(self) -> DoctorCheck:
        label = "rights to drain"
        try:
            if self.login.sudo:
                await self.run(["true"], mutating=True)
                return DoctorCheck(self.name, label, True, "sudo -n works on the login host")
            whoami = (await self.run(["id", "-un"])).strip()
            config = await self.run(["scontrol", "show", "config"], limit=1024 * 1024)
        except SourceError as exc:
            return DoctorCheck(self.name, label, False, str(exc), exc.hint or HINT_RIGHTS)
        match = re.search(r"^SlurmUser\s*=\s*([^\s(]+)", config, re.MULTILINE)
        slurm_user = match.group(1) if match else ""
        if whoami in ("root", slurm_user):
            return DoctorCheck(self.name, label, True, f"{whoami} is {'root' if whoami == 'root' else 'the SlurmUser'}")
        return DoctorCheck(
            self.name,
            label,
            False,
            f"{whoami} is neither root nor the SlurmUser ({slurm_user or '?'}): drain works only if "
            "slurmdbd gives it AdminLevel=Operator",
            HINT_RIGHTS,
        )

    def close(self) -> None:
        self.login.close()

    async def aclose(self) -> None:
        await self.login.aclose()
