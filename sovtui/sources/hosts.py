"""Provides the SSH fleet source: one persistent connection per GPU host with the probe kept resident on it.

Per host the source opens one SSH connection (asyncssh, through ``~/.ssh/config`` or
``$SOVTUI_SSH_CONFIG``, the ssh-agent, and host keys verified against known_hosts: an unknown or
changed key is that host's error, never accepted), starts the probe once on it, and for every
poll writes one newline and reads one JSON line back.

Timing: all hosts are polled concurrently and each is bounded by ``site.ssh.timeout_s``, on
connect and on each request, so a fetch takes about as long as the slowest answering host.
A host's first connection is waited for (up to that timeout); a host whose connection or probe
died reconnects in the background with jittered exponential backoff and meanwhile answers at
once with its last error, so unreachable hosts never slow the others down. Connection setup is
capped by ``site.ssh.concurrency``. A request that times out leaves its answer owed: the next
poll reads that answer instead of asking again; a second timeout restarts the probe.

Answer format of the probe (one line per request; any field may be null)::

    {"v": 1, "host": "gpu01", "t": 1790000000.0, "backend": "nvml", "error": "",
     "driver": "550.54.15", "cuda": "12.4", "gpu_count": 8, "probe_ms": 3.1,
     "gpus": [{"index": 0, "uuid": "GPU-…", "util_gpu": 97, ..., "error": ""}],
     "xids": [{"t": 1789999000.0, "pci": "0000:18:00", "code": 79, "msg": "..."}]}
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import math
import os
import random
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..config import SiteConfig
from ..model.types import DoctorCheck, Gpu, GpuHost, GpuProcess, MigInstance, PartStatus, SourceData, XidEvent
from .base import Source, close_quietly, jittered_backoff, wait_quietly
from .names import BadName, check_host_name, shown
from .sshconn import SSH_CONFIG_ENV, KnownHostsCache, config_paths, connect_options, credential_of, local_user

log = logging.getLogger(__name__)

Clock = Callable[[], float]

#: protocol version of the probe's answers this module understands
PROBE_VERSION = 1
#: how many non-JSON lines (e.g. a chatty login script) may precede the probe's first answer
_MAX_JUNK_LINES = 50
#: bound on one answer line of the probe (8 GPUs with their processes are a few 10 kB); longer is not read further
ANSWER_LIMIT = 4 * 1024 * 1024
_MAX_REASON = 200
#: up to this many hosts answers are parsed on the event loop as they arrive; above, in a thread
_INLINE_HOSTS = 32
#: doctor lists every host separately up to this many hosts; above, healthy hosts are summed up
_DOCTOR_DETAIL_HOSTS = 16

# stages of reaching a host, in order; an error names the stage it happened in (for doctor)
STAGES = ("reachable", "host key", "auth", "python3", "probe", "backend")
_HINTS = {
    "reachable": "check that the host is up, its name resolves (HostName in ~/.ssh/config) and sshd listens",
    "host key": "verify the host's key out of band, then fix known_hosts (ssh-keygen -R HOST; ssh HOST once)",
    "auth": "check the user, your ssh-agent or IdentityFile, and the host's authorized_keys",
    "python3": "install python3 on the host (the probe is a self-contained python3 program)",
    "probe": "run the probe by hand on the host (sovtui doctor shows its stderr) and check its python3",
    "backend": "install the NVIDIA driver and nvidia-ml-py (pynvml) for the host's python3, or nvidia-smi",
}


# ================================================================================== parsing
class ProbeError(ValueError):
    """The probe answered something that is not a valid answer; ``str()`` is the reason."""


def _short(text: object, limit: int = _MAX_REASON) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _num(value: Any) -> float | None:
    kind = type(value)  # exact types: JSON gives int/float/str/bool/None, and a bool is no number
    if kind is float:
        return value if value - value == 0.0 else None  # NaN and ±inf fail this
    if kind is int:
        return float(value) if -1e300 < value < 1e300 else None
    return None


def _int(value: Any) -> int | None:
    kind = type(value)
    if kind is int:
        return value
    if kind is float and value - value == 0.0 and value == int(value):
        return int(value)
    return None


def _bool(value: Any) -> bool | None:
    return value if type(value) is bool else None


def _str(value: Any) -> str:
    return value if type(value) is str else ""


def pci_key(text: Any) -> tuple[int, int, int] | None:
    """``00000000:18:00.0`` / ``0000:18:00`` / ``PCI:0000:18:00`` → ``(domain, bus, device)``."""
    if not isinstance(text, str):
        return None
    value = text.strip().lower()
    value = value.removeprefix("pci:")
    parts = value.split(":")
    if len(parts) == 2:
        parts = ["0", *parts]
    if len(parts) != 3:
        return None
    domain, bus, devfn = parts
    try:
        return int(domain, 16), int(bus, 16), int(devfn.split(".")[0], 16)
    except ValueError:
        return None


def parse_answer(line: str) -> dict[str, Any]:
    """One line of the probe as a dict, its shape checked at the top level; :class:`ProbeError` if not.

    Lists inside GPUs are checked while they are mapped (:func:`host_from_answer`), in one pass.
    """
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        raise ProbeError(f"answer is not JSON: {_short(line, 60)!r}") from None
    if type(data) is not dict:
        raise ProbeError(f"answer is a JSON {type(data).__name__}, not an object")
    version = data.get("v")
    if version is not None and version != PROBE_VERSION:
        raise ProbeError(f"probe speaks protocol version {_short(version, 20)}, this sovtui speaks {PROBE_VERSION}")
    for key in ("gpus", "xids"):
        value = data.get(key)
        if value is not None and not (type(value) is list and all(type(item) is dict for item in value)):
            raise ProbeError(f"'{key}' is not a list of objects")
    return data


def _objects(raw: dict, key: str) -> list[dict]:
    """``raw[key]``: a list of objects, or empty when null; anything else is a malformed answer."""
    value = raw.get(key)
    if value is None:
        return []
    if type(value) is not list or not all(type(item) is dict for item in value):
        raise ProbeError(f"GPU {_short(raw.get('index'), 10)}: '{key}' is not a list of objects")
    return value


def _xid_event(raw: dict) -> XidEvent | None:
    code = _int(raw.get("code"))
    if code is None:
        return None
    return XidEvent(code=code, at=_num(raw.get("t")), message=_str(raw.get("msg")))


def _process(raw: dict) -> GpuProcess | None:
    pid = _int(raw.get("pid"))
    if pid is None:
        return None
    job = raw.get("slurm_job")
    return GpuProcess(
        pid=pid,
        used_mib=_num(raw.get("used_mib")),
        name=_str(raw.get("name")),
        pod=_str(raw.get("pod")),
        container=_str(raw.get("container")),
        slurm_job=job if type(job) is str else (str(job) if type(job) is int else ""),
    )


def _mig(raw: dict) -> MigInstance | None:
    gi = _int(raw.get("gi"))
    if gi is None:
        return None
    return MigInstance(
        gi=gi,
        ci=_int(raw.get("ci")),
        profile=_str(raw.get("profile")),
        uuid=_str(raw.get("uuid")),
        mem_total_mib=_num(raw.get("mem_total_mib")),
    )


def workload_of(processes: Iterable[GpuProcess]) -> str:
    """The pods and Slurm jobs (``slurm:ID``) holding a GPU, in order, joined by ``", "``."""
    names: list[str] = []
    for proc in processes:
        name = proc.pod or (f"slurm:{proc.slurm_job}" if proc.slurm_job else "")
        if name and name not in names:
            names.append(name)
    return ", ".join(names)


def gpu_from_probe(
    host: str, raw: dict, position: int, *, backend: str, observed_at: float | None, xids: Sequence[XidEvent] = ()
) -> Gpu:
    """One GPU entry of an answer as a :class:`Gpu` (``xids`` already matched to it)."""
    get = raw.get
    index = _int(get("index"))
    procs = _objects(raw, "processes")
    processes = tuple(p for p in map(_process, procs) if p is not None) if procs else ()
    migs = _objects(raw, "mig_instances")
    links = _objects(raw, "nvlink") if get("nvlink") is not None else None
    nvlink_total = nvlink_down = None
    if links is not None:
        nvlink_total = len(links)
        nvlink_down = sum(1 for link in links if link.get("active") is False)
    error = _str(get("error"))
    throttle = get("throttle_reasons")
    if throttle is not None and type(throttle) is not list:
        raise ProbeError(f"GPU {_short(get('index'), 10)}: 'throttle_reasons' is not a list")
    return Gpu(
        host=host,
        index=index if index is not None else position,
        uuid=_str(get("uuid")),
        name=_str(get("name")),
        util_pct=_num(get("util_gpu")),
        mem_util_pct=_num(get("util_mem")),
        mem_used_mib=_num(get("mem_used_mib")),
        mem_total_mib=_num(get("mem_total_mib")),
        temp_c=_num(get("temp_c")),
        temp_slowdown_c=_num(get("temp_slowdown_c")),
        temp_shutdown_c=_num(get("temp_shutdown_c")),
        power_w=_num(get("power_w")),
        power_limit_w=_num(get("power_limit_w")),
        ecc_corrected_volatile=_int(get("ecc_corrected_volatile")),
        ecc_uncorrected_volatile=_int(get("ecc_uncorrected_volatile")),
        ecc_uncorrected_aggregate=_int(get("ecc_uncorrected_aggregate")),
        row_remap_pending=_bool(get("row_remap_pending")),
        row_remap_failure=_bool(get("row_remap_failure")),
        retired_pages_pending=_bool(get("retired_pages_pending")),
        throttle_reasons=tuple(r for r in throttle if type(r) is str and r) if throttle else (),
        nvlink_down=nvlink_down,
        nvlink_total=nvlink_total,
        pci_bus_id=_str(get("pci_bus_id")),
        sm_clock_mhz=_num(get("sm_clock_mhz")),
        mem_clock_mhz=_num(get("mem_clock_mhz")),
        ecc_mode=_bool(get("ecc_mode")),
        mig_mode=_bool(get("mig_mode")),
        mig_instances=tuple(m for m in map(_mig, migs) if m is not None) if migs else (),
        processes=processes,
        error=error,
        xids=tuple(xids),
        lost=bool(error) and "gpu is lost" in error.lower(),
        workload=workload_of(processes) if processes else "",
        sources=(backend,),
        observed_at=observed_at,
    )


@dataclass
class HostMemory:
    """What the source remembers about one host for the whole session."""

    max_gpus: int = 0
    #: every GPU seen this session by UUID (its last reading), to name a GPU that went missing
    seen: dict[str, Gpu] = field(default_factory=dict)
    driver: str = ""
    cuda: str = ""
    backend: str = ""


@dataclass(frozen=True)
class ParsedHost:
    """One host's answer turned into model objects."""

    host: GpuHost
    gpus: tuple[Gpu, ...]
    notes: tuple[str, ...] = ()


def _account_for_missing(
    name: str,
    gpus: list[Gpu],
    memory: HostMemory,
    expected: int,
    by_pci: dict[tuple[int, int, int], list[XidEvent]],
    matched: set,
    backend: str,
    observed_at: float | None,
) -> None:
    """GPUs seen earlier this session that the answer does not name: give them back their identity.

    A lost GPU the probe cannot name (its queries fail and the probe started after the loss)
    gets the identity it had here, by index or as the only candidate. Any other GPU that is not
    enumerated any more is reported lost under its old identity, in its old index if that is
    free, else in a free one (the driver renumbers the GPUs after a missing one), so the host
    still counts its expected GPUs. Either way the XIDs of its PCI address come with it.
    """
    present_uuids = {g.uuid for g in gpus if g.uuid}
    present_pci = {pci_key(g.pci_bus_id) for g in gpus if g.pci_bus_id}
    missing = sorted(
        (
            old
            for uuid, old in memory.seen.items()
            if uuid not in present_uuids and pci_key(old.pci_bus_id) not in present_pci
        ),
        key=lambda g: g.index,
    )
    if not missing:
        return

    def xids_of(pci: str) -> tuple[XidEvent, ...]:
        key = pci_key(pci)
        own = by_pci.get(key, []) if key is not None else []
        if own:
            matched.add(key)
        return tuple(own)

    for position, gpu in enumerate(gpus):
        if not (gpu.lost and not gpu.uuid) or not missing:
            continue
        same = [old for old in missing if old.index == gpu.index]
        old = same[0] if same else (missing[0] if len(missing) == 1 else None)
        if old is None:
            continue
        missing.remove(old)
        pci = gpu.pci_bus_id or old.pci_bus_id
        gpus[position] = replace(
            gpu, uuid=old.uuid, name=gpu.name or old.name, pci_bus_id=pci, xids=gpu.xids or xids_of(pci)
        )
    taken = {g.index for g in gpus}
    free = [i for i in range(expected) if i not in taken]
    for old in missing:
        if not free:
            break
        index = old.index if old.index in free else free[0]
        free.remove(index)
        gpus.append(
            Gpu(
                host=name,
                index=index,
                uuid=old.uuid,
                name=old.name,
                pci_bus_id=old.pci_bus_id,
                mem_total_mib=old.mem_total_mib,
                lost=True,
                error=f"not enumerated by the driver any more (was GPU {old.index})",
                xids=xids_of(old.pci_bus_id),
                sources=(backend,) if backend != "none" else old.sources[:1],
                observed_at=observed_at,
            )
        )


def host_from_answer(
    name: str, data: dict, memory: HostMemory, *, observed_at: float | None, latency_s: float | None
) -> ParsedHost:
    """Map one checked answer (see :func:`parse_answer`) to GPUs and a host, updating the host's memory."""
    backend = _str(data.get("backend")) or "none"
    raw_gpus = data.get("gpus") or []
    xids = [(pci_key(x.get("pci")), event) for x in data.get("xids") or () if (event := _xid_event(x)) is not None]
    xids.sort(key=lambda item: item[1].at if item[1].at is not None else -math.inf)
    by_pci: dict[tuple[int, int, int], list[XidEvent]] = {}
    for key, event in xids:
        if key is not None:
            by_pci.setdefault(key, []).append(event)
    matched: set[tuple[int, int, int]] = set()
    gpus: list[Gpu] = []
    for position, raw in enumerate(raw_gpus):
        key = pci_key(raw.get("pci_bus_id"))
        own = by_pci.get(key, []) if key is not None else []
        if own:
            matched.add(key)  # type: ignore[arg-type]
        gpus.append(gpu_from_probe(name, raw, position, backend=backend, observed_at=observed_at, xids=own))
    notes: list[str] = []
    # a GPU seen earlier this session that is not enumerated now: report it lost under its old
    # identity (with its XIDs), in its old index if that is free, else in a free one (the driver
    # renumbers the GPUs after a missing one), so that the host still counts its expected GPUs
    count = _int(data.get("gpu_count"))
    expected = max(memory.max_gpus, count or 0, len(raw_gpus))
    if memory.seen and backend != "none":  # without a backend nothing is known about the GPUs
        _account_for_missing(name, gpus, memory, expected, by_pci, matched, backend, observed_at)
    for key, event in xids:
        if key not in matched:
            where = "PCI " + (f"{key[0]:04x}:{key[1]:02x}:{key[2]:02x}" if key else "unknown")
            notes.append(f"{name}: XID {event.code} on {where} (no GPU there): {_short(event.message, 80)}")
    gpus.sort(key=lambda g: g.index)
    for gpu in gpus:
        if gpu.uuid and not gpu.lost:
            memory.seen[gpu.uuid] = gpu
    memory.max_gpus = expected
    memory.driver = _str(data.get("driver")) or memory.driver
    memory.cuda = _str(data.get("cuda")) or memory.cuda
    memory.backend = backend
    nvml_error = _str(data.get("nvml_error"))
    if backend == "nvidia-smi" and nvml_error:
        notes.append(f"{name}: NVML unavailable ({_short(nvml_error, 100)}); read with nvidia-smi")
    error = _str(data.get("error"))
    host_error = ""
    if error:
        if backend == "none" and not raw_gpus:
            host_error = f"no GPU backend: {_short(error)}"
        else:
            notes.append(f"{name}: probe: {_short(error)}")
    elif backend == "none" and memory.max_gpus:
        host_error = "no GPU backend (driver gone?)"
    host = GpuHost(
        name=name,
        expected_gpus=memory.max_gpus or None,
        driver_version=_str(data.get("driver")),
        cuda_version=_str(data.get("cuda")),
        backend=backend,
        error=host_error,
        latency_s=latency_s,
        observed_at=observed_at,
    )
    return ParsedHost(host, tuple(gpus), tuple(notes))


def kept_readings(memory: HostMemory, why: str) -> tuple[Gpu, ...]:
    """A host that did not answer keeps its GPUs' last readings on screen, each marked as no longer read (when it
    last was, and why not), so that its GPUs are unknown rather than gone (a fleet count that silently shrinks)."""
    kept = []
    for gpu in memory.seen.values():
        since = time.strftime("%H:%M:%S", time.localtime(gpu.observed_at)) if gpu.observed_at is not None else "never"
        kept.append(replace(gpu, error=f"no reading since {since}: {why}"))
    kept.sort(key=lambda g: g.index)
    return tuple(kept)


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):.1f} MB" if count >= 1024 * 1024 else f"{count // 1024} kB"


# ================================================================================== SSH
class _ProbeGone(Exception):
    """The probe's stdout ended (it exited) or the connection under it died."""


@dataclass
class _Reply:
    """One host's outcome of one poll: a raw answer line, or an error at a stage."""

    line: str | None = None
    received_at: float | None = None
    latency_s: float | None = None
    error: str = ""
    stage: str = ""


class _SshConfigFilter:
    """Per-host copies of the ssh config holding only the ``Host`` blocks that can apply to that host.

    asyncssh tokenizes every line of the config at every connect, so a config with one block per
    host costs O(hosts²) for a fleet. The copies keep the global part, every ``Match`` block and
    the ``Host`` blocks whose patterns match the alias (matched as asyncssh does: against the
    name as given), in order, so each host sees exactly the settings the full file gives it.
    Configs that canonicalize host names (the name changes between passes) are used unfiltered.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self._stamp: tuple | None = None
        self._blocks: list[list[tuple[Any, list[str]]]] | None = None
        self._dir: str | None = None
        self._written: dict[str, str] = {}
        self._has_jumps = False

    @property
    def stamp(self) -> tuple | None:
        return self._stamp

    def _refresh(self) -> None:
        stamp = []
        for path in self.paths:
            try:
                st = os.stat(path)
                stamp.append((path, st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((path, None, None))
        if tuple(stamp) == self._stamp:
            return
        self._stamp = tuple(stamp)
        self._written.clear()
        try:
            texts = [Path(p).read_text(encoding="utf-8") for p in self.paths]
        except (OSError, UnicodeDecodeError):
            self._blocks = None  # asyncssh reports the problem itself
            return
        if any("canonicalize" in text.lower() for text in texts):
            self._blocks = None
            return
        self._has_jumps = any("proxyjump" in text.lower() for text in texts)
        try:
            self._blocks = [self._split(text) for text in texts]
        except ValueError:  # unbalanced quotes and the like: asyncssh says where
            self._blocks = None

    @staticmethod
    def _split(text: str) -> list[tuple[Any, list[str]]]:
        import shlex

        from asyncssh.pattern import WildcardPatternList

        blocks: list[tuple[Any, list[str]]] = [(None, [])]
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line[0] == "#":
                blocks[-1][1].append(raw)
                continue
            head = line.split(None, 1)[0].split("=", 1)[0].lower()
            if head == "host":
                tokens = shlex.split(line)
                keyword, equal, rest = tokens[0].partition("=")
                words = ([rest] if rest else []) + tokens[1:] if equal else tokens[1:]
                if not equal and words and words[0].startswith("="):  # "Host = a b" / "Host =a"
                    words = ([words[0][1:]] if words[0][1:] else []) + words[1:]
                blocks.append((WildcardPatternList(",".join(words)), [raw]))
            elif head == "match":
                blocks.append((None, [raw]))
            else:
                blocks[-1][1].append(raw)
        return blocks

    def paths_for(self, alias: str) -> list[str]:
        """Config paths to hand asyncssh for ``alias`` (a filtered copy when that is safe).

        The copy also keeps the blocks of the ``ProxyJump`` hosts on the way to ``alias`` (and
        theirs), because asyncssh opens the jump connections with the same config files.
        """
        self._refresh()
        if self._blocks is None or not self.paths:
            return self.paths
        written = self._written.get(alias)
        if written is not None and os.path.exists(written):
            return [written]
        names = [alias]
        while True:
            path = self._write(alias, names)
            new = [hop for name in names for hop in self._jumps(path, name) if hop not in names]
            if not new:
                break
            names.extend(dict.fromkeys(new))
        self._written[alias] = path
        return [path]

    def _write(self, alias: str, names: Sequence[str]) -> str:
        assert self._blocks is not None
        parts = []
        for number, blocks in enumerate(self._blocks):
            if number:
                parts.append("Host *")  # a new file starts unconditional, as asyncssh does
            for matcher, lines in blocks:
                if matcher is None or any(matcher.matches(name) for name in names):
                    parts.extend(lines)
        if self._dir is None or not os.path.isdir(self._dir):
            import atexit
            import shutil
            import tempfile

            self._dir = tempfile.mkdtemp(prefix="sovtui-ssh-config-")
            atexit.register(shutil.rmtree, self._dir, True)
        import hashlib

        path = os.path.join(self._dir, hashlib.sha1(alias.encode()).hexdigest()[:20] + ".conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(parts) + "\n")
        return path

    def _jumps(self, path: str, name: str) -> list[str]:
        """The host names in ``name``'s ProxyJump (``[user@]host[:port],...``) per the config at ``path``."""
        if not self._has_jumps:
            return []
        from asyncssh.config import SSHClientConfig

        try:
            cfg = SSHClientConfig.load(None, [path], False, False, False, local_user(), (), name, ())
        except ValueError:
            return []
        value = cfg.get("ProxyJump")
        if not isinstance(value, str) or value.lower() == "none":
            return []
        hops = []
        for hop in value.split(","):
            host = hop.strip().rsplit("@", 1)[-1]
            host = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
            if host:
                hops.append(host)
        return hops

    def cleanup(self) -> None:
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._written.clear()


def _task(coro: Any, name: str) -> asyncio.Task:
    """A task whose exception counts as retrieved even if nobody awaits it (it was torn down)."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(lambda t: t.cancelled() or t.exception())
    return task


class _Link:
    """One GPU host: its connection, resident probe, in-flight work, backoff and session memory."""

    def __init__(self, name: str) -> None:
        self.name = name
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
        self.answer_limit = answer_limit
        self.clock = clock
        ssh = site.ssh
        self.host_timeout_s = float(ssh.timeout_s)
        self.concurrency = max(1, int(ssh.concurrency))
        self.interval_s = site.refresh_s
        # the hub's bound on a whole fetch: every host answers or times out within host_timeout_s;
        # the margin covers a loaded event loop when hundreds of hosts connect at once
        self.timeout_s = 1.5 * self.host_timeout_s + 5.0
        explicit = ssh_config if ssh_config is not None else os.environ.get(SSH_CONFIG_ENV) or None
        self.ssh_config_paths = self._config_paths(explicit)
        self._ssh_filter = _SshConfigFilter(self.ssh_config_paths)
        self._probe_cmd = probe_cmd
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self._rng = rng or random.Random()
        self._known_hosts = KnownHostsCache()
        self._links: dict[str, _Link] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sem: asyncio.Semaphore | None = None
        self.static_hosts: tuple[str, ...] = tuple(hosts if hosts is not None else ssh.hosts)
        self.discover = tuple(ssh.discover)
        self._discovered: dict[str, tuple[str, ...]] = {}  # layer -> GPU hosts it knows
        self.set_hosts(self.static_hosts)

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
                self._shutdown(self._links.pop(name))
            except Exception:
                log.debug("disconnecting %s", name, exc_info=True)
        links = {}
        for name in wanted:
            links[name] = self._links.get(name) or _Link(name)
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
    @staticmethod
    def _config_paths(explicit: str | os.PathLike | None) -> list[str]:
        return config_paths(explicit)

    def probe_command(self) -> str:
        if self._probe_cmd is None:
            from .probe import probe_command

            self._probe_cmd = probe_command()
        return self._probe_cmd

    def _resolve(self, link: _Link) -> dict[str, Any]:
        """asyncssh connect options for one host: ssh config wins over the site's user/port defaults."""
        paths = self._ssh_filter.paths_for(link.name)
        if link.resolved is not None and link.resolved[0] == self._ssh_filter.stamp:
            return link.resolved[1]
        ssh = self.site.ssh

        def looked_up(trusted: bool) -> None:
            link.key_checked = True
            link.had_trusted_keys = trusted

        options, link.target = connect_options(
            link.name,
            paths,
            cache=self._known_hosts,
            user=ssh.user,
            port=ssh.port,
            known_hosts=ssh.known_hosts,
            full_paths=self.ssh_config_paths,
            on_key_lookup=looked_up,
        )
        link.resolved = (self._ssh_filter.stamp, options)
        return options

    # -- loop binding ------------------------------------------------------------------------
    def _bind_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        # connections belong to the loop that made them: a new loop starts from scratch
        for link in self._links.values():
            link.conn = link.proc = link.connect_task = link.stderr_task = None
            link.buffer = ""
            link.timeouts, link.owed, link.lock = 0, False, asyncio.Lock()
        self._loop = loop
        self._sem = asyncio.Semaphore(self.concurrency)

    # -- polling -----------------------------------------------------------------------------
    async def fetch(self, executor: Executor | None = None) -> SourceData:
        self._bind_loop()
        links = list(self._links.values())
        if executor is not None and len(links) > _INLINE_HOSTS:
            # a big fleet: parse in the hub's thread pool, in one go, so that hundreds of answers
            # arriving together do not hold the event loop (and the UI on it) for their whole parse
            replies = await asyncio.gather(*(self._poll(link) for link in links))
            loop = asyncio.get_running_loop()
            results = await loop.run_in_executor(
                executor, lambda: [self._digest(link, reply) for link, reply in zip(links, replies, strict=True)]
            )
        else:

            async def one(link: _Link) -> ParsedHost:
                # parsed as soon as it arrives, while slower hosts are still answering
                return self._digest(link, await self._poll(link))

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

    def _digest(self, link: _Link, reply: _Reply) -> ParsedHost:
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
                reply = _Reply(error=f"probe failed: {exc}", stage="probe")
            except Exception as exc:
                log.exception("parsing the probe answer of %s", link.name)
                reply = _Reply(error=f"probe failed: {type(exc).__name__}: {_short(exc)}", stage="probe")
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

    async def _poll(self, link: _Link, *, wait_reconnect: bool = False) -> _Reply:
        if link.refused:
            return _Reply(error=link.refused, stage="reachable")
        try:
            if link.alive() and link.connect_task is None:
                return await self._ask(link)
            if link.connect_task is None:
                if time.monotonic() < link.retry_at:
                    return _Reply(error=link.last_error, stage=link.last_stage)
                link.connect_task = _task(self._establish(link), f"ssh-connect:{link.name}")
            if link.failures and not wait_reconnect:
                # a host that failed before reconnects in the background: it answers now with
                # its last error, and with data at the first poll after the reconnect succeeded
                return _Reply(error=link.last_error, stage=link.last_stage)
            try:
                return await asyncio.wait_for(asyncio.shield(link.connect_task), self.host_timeout_s + 0.5)
            except TimeoutError:
                waiting = link.conn is None and self._sem is not None and self._sem.locked()
                why = "waiting for a connection slot" if waiting else "still connecting"
                return _Reply(error=f"{why} ({self.host_timeout_s:g}s passed)", stage="reachable")
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("polling %s", link.name)
            return _Reply(error=f"{type(exc).__name__}: {_short(exc)}", stage="probe")

    async def _ask(self, link: _Link) -> _Reply:
        """One request to the resident probe: write a newline, read one line (or the late one still owed).

        A read that times out (or is cancelled) leaves the answer owed: the next poll reads that
        late answer instead of asking again, so requests and answers never get out of step.
        """
        async with link.lock:
            if not link.owed:
                try:
                    link.proc.stdin.write("\n")
                except Exception:  # noqa: BLE001 - the probe exited or the channel is gone: say which
                    gone = await self._probe_exit(link, "")
                    stage = getattr(gone, "stage", "probe")
                    return self._lost(link, str(gone), stage, keep_conn=stage != "reachable")
                link.asked_at = time.perf_counter()
                link.owed = True
            try:
                async with asyncio.timeout(self.host_timeout_s):
                    line, at_perf = await self._read_answer(link)
            except TimeoutError:
                link.timeouts += 1
                if link.timeouts >= 2:
                    return self._lost(
                        link,
                        f"probe did not answer in {self.host_timeout_s:g}s twice; restarting it",
                        "probe",
                        keep_conn=True,
                    )
                return _Reply(error=f"probe did not answer in {self.host_timeout_s:g}s", stage="probe")
            except _ProbeGone as exc:
                stage = getattr(exc, "stage", "probe")
                return self._lost(link, str(exc), stage, keep_conn=stage != "reachable")
            link.owed = False
            link.timeouts = 0
            link.failures = 0
            return _Reply(line=line, received_at=self.clock(), latency_s=max(0.0, at_perf - link.asked_at))

    async def _read_answer(self, link: _Link, *, first: bool = False) -> tuple[str, float]:
        junk = 0
        while True:
            line = await self._read_line(link)
            if not line.endswith("\n"):
                raise await self._probe_exit(link, line)
            if first and not line.lstrip().startswith("{") and junk < _MAX_JUNK_LINES:
                # a login script talking on stdout before the probe runs, or a broken probe: keep
                # the first such line, it is the reason if no answer follows
                if not junk:
                    link.first_junk = line
                junk += 1
                continue
            return line, time.perf_counter()

    async def _read_line(self, link: _Link) -> str:
        """The probe's next output line (with its newline; without it at EOF), at most ``answer_limit`` long.

        What arrived of a line not yet ended stays in ``link.buffer``, so a read that times out loses nothing.
        """
        proc = link.proc
        while True:
            end = link.buffer.find("\n")
            if end >= 0:
                line, link.buffer = link.buffer[: end + 1], link.buffer[end + 1 :]
                return line
            if len(link.buffer) > self.answer_limit:
                size = len(link.buffer)
                link.buffer = ""
                gone = _ProbeGone(
                    f"probe answer longer than {_size(self.answer_limit)} ({_size(size)} read "
                    "without a line end); not read further"
                )
                gone.stage = "probe"  # type: ignore[attr-defined]
                raise gone
            try:
                chunk = await proc.stdout.read(65536)
            except Exception as exc:  # noqa: BLE001 - connection lost, channel closed, signal
                link.buffer = ""
                gone = _ProbeGone(f"connection lost ({_short(exc) or type(exc).__name__})")
                gone.stage = "reachable"  # type: ignore[attr-defined]
                raise gone from None
            if not chunk:  # EOF: what is left is the partial last line
                line, link.buffer = link.buffer, ""
                return line
            end = chunk.find("\n")
            if end < 0:
                link.buffer += chunk
                continue
            line, link.buffer = link.buffer + chunk[: end + 1], chunk[end + 1 :]
            return line

    async def _probe_exit(self, link: _Link, partial: str) -> _ProbeGone:
        """Why the probe's output ended: its exit status and the tail of its stderr."""
        proc = link.proc
        await wait_quietly("the probe's channel", proc.wait_closed(), 1.0)
        if link.stderr_task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(link.stderr_task), 0.5)
            except Exception:  # noqa: BLE001
                pass
        status = proc.exit_status
        signal = proc.exit_signal
        tail = " | ".join(line for line in link.stderr_tail if line)[-300:]
        if link.conn is None or link.conn.is_closed():
            gone = _ProbeGone("connection lost")
            gone.stage = "reachable"  # type: ignore[attr-defined]
            return gone
        lowered = tail.lower()
        if status == 127 or ("python3" in lowered and ("not found" in lowered or "no such file" in lowered)):
            gone = _ProbeGone(f"python3 not found on {link.name}" + (f": {tail}" if tail else ""))
            gone.stage = "python3"  # type: ignore[attr-defined]
            return gone
        how = (
            f"exited with status {status}"
            if status is not None
            else (f"killed by signal {signal[0]}" if signal else "ended its output")
        )
        detail = tail or (f"last output {_short(partial, 60)!r}" if partial else "")
        gone = _ProbeGone(f"probe {how}" + (f": {detail}" if detail else ""))
        gone.stage = "probe"  # type: ignore[attr-defined]
        return gone

    async def _drain_stderr(self, link: _Link, proc: Any) -> None:
        try:
            async for line in proc.stderr:
                link.stderr_tail.append(_short(line, 300))
        except Exception:  # noqa: BLE001 - ends with the channel
            pass

    def _lost(self, link: _Link, error: str, stage: str, *, keep_conn: bool = False) -> _Reply:
        """The probe or the connection died: tear down and back off before the next attempt."""
        self._teardown(link, keep_conn=keep_conn)
        self._fail(link, error, stage)
        return _Reply(error=error, stage=stage)

    def _fail(self, link: _Link, error: str, stage: str) -> None:
        link.failures += 1
        link.last_error, link.last_stage = error, stage
        link.retry_at = time.monotonic() + jittered_backoff(
            link.failures, self.backoff_base_s, self.backoff_cap_s, self._rng
        )

    def _teardown(self, link: _Link, *, keep_conn: bool = False) -> None:
        link.owed = False
        link.buffer = ""
        proc, link.proc = link.proc, None
        link.timeouts = 0
        if proc is not None:
            close_quietly("the probe's channel", proc.close)
        if not keep_conn or (link.conn is not None and link.conn.is_closed()):
            conn, link.conn = link.conn, None
            if conn is not None:
                close_quietly(f"the connection to {link.name}", conn.close)

    async def _establish(self, link: _Link) -> _Reply:
        """Connect (if needed), start the probe and read its first answer; never raises."""
        try:
            if link.conn is None or link.conn.is_closed():
                link.conn = None
                assert self._sem is not None
                async with self._sem:
                    link.conn = await self._connect(link)
            return await self._start_probe(link)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes the host's error
            error, stage = self._describe(link, exc)
            self._teardown(link, keep_conn=stage in ("python3", "probe"))
            self._fail(link, error, stage)
            return _Reply(error=error, stage=stage)
        finally:
            link.connect_task = None

    async def _connect(self, link: _Link) -> Any:
        import asyncssh

        options = self._resolve(link)
        link.had_trusted_keys = link.key_checked = False
        link.connects += 1
        timeout = self.host_timeout_s
        try:
            return await asyncio.wait_for(
                asyncssh.connect(
                    link.name,
                    connect_timeout=timeout,
                    login_timeout=timeout,
                    keepalive_interval=max(15.0, 2 * timeout),
                    keepalive_count_max=3,
                    **options,
                ),
                timeout + 1.0,
            )
        except TimeoutError:
            raise TimeoutError(f"no SSH answer from {link.name} in {timeout:g}s") from None

    async def _start_probe(self, link: _Link) -> _Reply:
        command = self.probe_command()
        proc = await asyncio.wait_for(
            link.conn.create_process(command, encoding="utf-8", errors="replace"), self.host_timeout_s
        )
        link.proc = proc
        link.probe_starts += 1
        link.stderr_tail.clear()
        link.stderr_task = asyncio.create_task(self._drain_stderr(link, proc), name=f"ssh-stderr:{link.name}")
        link.timeouts, link.owed = 0, False
        link.asked_at = time.perf_counter()
        try:
            proc.stdin.write("\n")
        except Exception:  # noqa: BLE001 - the probe already exited (no python3, say): ask why
            raise await self._probe_exit(link, "") from None
        link.first_junk = None
        try:
            line, at_perf = await asyncio.wait_for(self._read_answer(link, first=True), self.host_timeout_s)
        except TimeoutError:
            if link.first_junk is not None:
                raise _ProbeGone(f"probe failed: answer is not JSON: {_short(link.first_junk, 60)!r}") from None
            raise TimeoutError(f"probe did not answer in {self.host_timeout_s:g}s after start") from None
        link.failures = 0
        return _Reply(line=line, received_at=self.clock(), latency_s=max(0.0, at_perf - link.asked_at))

    def _describe(self, link: _Link, exc: BaseException) -> tuple[str, str]:
        """A short human reason and the stage it belongs to."""
        import asyncssh

        name = link.name
        if isinstance(exc, _ProbeGone):
            return str(exc), getattr(exc, "stage", "probe")
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            if not link.key_checked:  # a ProxyJump host's key, checked by asyncssh with the ssh config's files
                return f"host key not trusted for a jump host on the way to {name}: {_short(exc.reason)}", "host key"
            if "revoked" in str(exc).lower():
                return f"host key REVOKED for {name}; fix known_hosts", "host key"
            if link.had_trusted_keys:
                return f"host key CHANGED for {name} — possible MITM; fix known_hosts", "host key"
            return f"host key not trusted for {name} (not in known_hosts)", "host key"
        if isinstance(exc, asyncssh.KeyExchangeFailed):
            if link.had_trusted_keys and "host key" in str(exc).lower():
                return f"host key CHANGED for {name} — possible MITM; fix known_hosts", "host key"
            return (
                f"key exchange with {name} failed: {_short(exc.reason if hasattr(exc, 'reason') else exc)}",
                "reachable",
            )
        if isinstance(exc, asyncssh.PermissionDenied):
            return f"permission denied for {link.target or name} (check key/agent)", "auth"
        if isinstance(exc, asyncssh.KeyImportError):
            return f"cannot load the SSH key for {name}: {_short(exc)}", "auth"
        if isinstance(exc, asyncssh.ConnectionLost):
            return f"connection to {name} lost ({_short(exc.reason) or 'closed'})", "reachable"
        if isinstance(exc, asyncssh.DisconnectError):
            return f"{name} disconnected: {_short(exc.reason)}", "reachable"
        if isinstance(exc, asyncssh.ChannelOpenError):
            return f"{name} refused to start the probe: {_short(exc.reason)}", "probe"
        if isinstance(exc, ImportError):
            return f"probe not available: {_short(exc)}", "probe"
        if isinstance(exc, TimeoutError):
            return str(
                exc
            ) or f"no answer from {name} in {self.host_timeout_s:g}s", "reachable" if link.conn is None else "probe"
        if isinstance(exc, socket.gaierror):
            return f"cannot resolve {name} ({_short(exc.strerror or exc)})", "reachable"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {link.target or name}", "reachable"
        if isinstance(exc, OSError):
            return f"cannot reach {link.target or name}: {_short(exc.strerror or exc)}", "reachable"
        if isinstance(exc, ValueError):  # asyncssh config errors (ConfigParseError is one)
            return f"ssh config for {name}: {_short(exc)}", "reachable"
        log.warning("connecting %s failed", name, exc_info=exc)
        return f"{type(exc).__name__}: {_short(exc)}", "reachable"

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

        async def check(link: _Link) -> list[DoctorCheck]:
            if not link.alive() and link.connect_task is None:
                link.retry_at = 0.0  # doctor tries now, whatever the backoff says
            reply = await self._poll(link, wait_reconnect=True)
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

    def _doctor_lines(self, link: _Link, reply: _Reply, parsed: ParsedHost) -> list[DoctorCheck]:
        error = parsed.host.error
        stage = link.last_stage if error else ""
        if error and not stage:
            stage = reply.stage or "reachable"
        lines: list[DoctorCheck] = []
        # which credential ssh offers (never its value), once the host is reached
        reached = stage not in ("reachable", "host key")
        credential = credential_of(link.name, self._ssh_filter.paths_for(link.name)) if reached else ""
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
                lines.append(DoctorCheck(self.name, label, False, why, _HINTS[name]))
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
                            self.name, label, False, f"no GPU backend ({host.backend or 'none'})", _HINTS["backend"]
                        )
                    )
                break
            lines.append(DoctorCheck(self.name, label, True, detail_ok[name]))
        return lines

    # -- closing -----------------------------------------------------------------------------
    def _shutdown(self, link: _Link) -> None:
        task, link.connect_task = link.connect_task, None
        if task is not None and not task.done():
            task.cancel()
        if link.proc is not None:
            close_quietly("the probe's stdin", link.proc.stdin.write_eof)  # the probe exits on EOF
        self._teardown(link)

    def close(self) -> None:
        """Close every connection (safe to call from inside or outside the event loop)."""
        for link in self._links.values():
            try:
                self._shutdown(link)
            except Exception:
                log.debug("closing %s", link.name, exc_info=True)
            link.resolved = None
        self._ssh_filter.cleanup()

    async def aclose(self) -> None:
        """Close every connection and wait until they are closed."""
        conns = [link.conn for link in self._links.values() if link.conn is not None]
        self.close()
        for conn in conns:
            await wait_quietly("a connection to close", conn.wait_closed(), 5.0)
