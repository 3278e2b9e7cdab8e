"""Provides the GPUs (with their processes, MIG instances and XID errors) and the GPU hosts, as the sources see them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class XidEvent:
    """One NVIDIA XID error seen on a GPU."""

    code: int
    at: float | None = None  # unix seconds, when known
    message: str = ""


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A compute process on a GPU, mapped to its Kubernetes pod or Slurm job when the host allows."""

    pid: int
    used_mib: float | None = None
    name: str = ""
    pod: str = ""  # namespace/name
    container: str = ""
    slurm_job: str = ""

    @property
    def workload(self) -> str:
        if self.pod:
            return self.pod
        if self.slurm_job:
            return f"slurm:{self.slurm_job}"
        return self.name or str(self.pid)


@dataclass(frozen=True, slots=True)
class MigInstance:
    """One MIG GPU instance."""

    gi: int
    ci: int | None = None
    profile: str = ""
    uuid: str = ""
    mem_total_mib: float | None = None


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU as seen by one or more sources (NVML over SSH, DCGM in Prometheus, ...)."""

    host: str
    index: int
    uuid: str = ""
    name: str = ""
    util_pct: float | None = None
    mem_util_pct: float | None = None
    mem_used_mib: float | None = None
    mem_total_mib: float | None = None
    temp_c: float | None = None
    temp_slowdown_c: float | None = None
    temp_shutdown_c: float | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    ecc_corrected_volatile: int | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    row_remap_pending: bool | None = None
    row_remap_failure: bool | None = None
    retired_pages_pending: bool | None = None
    throttle_reasons: tuple[str, ...] = ()
    nvlink_down: int | None = None
    nvlink_total: int | None = None
    pci_bus_id: str = ""
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    ecc_mode: bool | None = None
    mig_mode: bool | None = None
    mig_instances: tuple[MigInstance, ...] = ()
    processes: tuple[GpuProcess, ...] = ()
    error: str = ""  # a per-GPU read error (e.g. "GPU is lost")
    xids: tuple[XidEvent, ...] = ()
    lost: bool = False  # fell off the bus / expected but not enumerated
    workload: str = ""  # pod (ns/name) or Slurm job holding the GPU
    sources: tuple[str, ...] = ()
    observed_at: float | None = None

    @property
    def key(self) -> str:
        return self.uuid or f"{self.host}/{self.index}"

    @property
    def mem_pct(self) -> float | None:
        if self.mem_used_mib is None or not self.mem_total_mib:
            return None
        return 100.0 * self.mem_used_mib / self.mem_total_mib

    @property
    def last_xid(self) -> int | None:
        return self.xids[-1].code if self.xids else None


@dataclass(frozen=True, slots=True)
class GpuHost:
    """What a source knows about a GPU host as a whole."""

    name: str
    expected_gpus: int | None = None
    driver_version: str = ""
    cuda_version: str = ""
    backend: str = ""  # nvml | nvidia-smi | dcgm | none
    error: str = ""  # unreachable, host key changed, probe failed: why
    latency_s: float | None = None
    observed_at: float | None = None
