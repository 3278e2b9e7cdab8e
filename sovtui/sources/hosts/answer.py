"""Provides the reading of the probe's answers: one JSON line checked and mapped to GPUs and a host.

Answer format of the probe (one line per request; any field may be null)::

    {"v": 1, "host": "gpu01", "t": 1790000000.0, "backend": "nvml", "error": "",
     "driver": "550.54.15", "cuda": "12.4", "gpu_count": 8, "probe_ms": 3.1,
     "gpus": [{"index": 0, "uuid": "GPU-…", "util_gpu": 97, ..., "error": ""}],
     "xids": [{"t": 1789999000.0, "pci": "0000:18:00", "code": 79, "msg": "..."}]}

A host keeps a :class:`HostMemory` for the whole session, so that a GPU that stops being
enumerated is still reported (lost, under its old identity) rather than silently gone.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ...model.types import Gpu, GpuHost, GpuProcess, MigInstance, XidEvent
from ..base import short

#: protocol version of the probe's answers this module understands
PROBE_VERSION = 1


class ProbeError(ValueError):
    """The probe answered something that is not a valid answer; ``str()`` is the reason."""


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
        raise ProbeError(f"answer is not JSON: {short(line, 60)!r}") from None
    if type(data) is not dict:
        raise ProbeError(f"answer is a JSON {type(data).__name__}, not an object")
    version = data.get("v")
    if version is not None and version != PROBE_VERSION:
        raise ProbeError(f"probe speaks protocol version {short(version, 20)}, this sovtui speaks {PROBE_VERSION}")
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
        raise ProbeError(f"GPU {short(raw.get('index'), 10)}: '{key}' is not a list of objects")
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
        raise ProbeError(f"GPU {short(get('index'), 10)}: 'throttle_reasons' is not a list")
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
            notes.append(f"{name}: XID {event.code} on {where} (no GPU there): {short(event.message, 80)}")
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
        notes.append(f"{name}: NVML unavailable ({short(nvml_error, 100)}); read with nvidia-smi")
    error = _str(data.get("error"))
    host_error = ""
    if error:
        if backend == "none" and not raw_gpus:
            host_error = f"no GPU backend: {short(error)}"
        else:
            notes.append(f"{name}: probe: {short(error)}")
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
