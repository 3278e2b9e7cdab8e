"""Provides the GPU host probe: a self-contained program that reports a host's GPUs as one JSON document per request.

It runs on the GPU host itself, shipped over SSH as source (see ``sovtui.sources.probe``), so it
uses only the standard library and, when importable, nvidia-ml-py (``import pynvml``), and runs
on Python 3.8 and later. Backends, best first: NVML; ``nvidia-smi --query-gpu``; none (with the
reason).

    python3 gpuprobe.py --once     one JSON document on stdout, then exit
    python3 gpuprobe.py --serve    one JSON line per line read from stdin; exit on EOF or "quit"

In ``--serve`` mode NVML is initialised once and kept, static facts (names, thresholds, link
counts, unsupported calls) are cached per GPU UUID, and the kernel log is read at most every
``--xid-interval`` seconds, so a steady poll costs about the NVML calls alone.

It is one file on purpose (it is shipped to hosts as one script). Its sections, in order:

    protocol and limits        the document's version, NVML codes, field lists, timeouts
    small helpers              empty GPU entry, throttle and CUDA version decoding, text of values and errors
    kernel log (XIDs)          XID lines from journalctl or dmesg, read at most every interval
    processes → pods / jobs    a GPU process's Kubernetes pod and container or Slurm job, from its cgroup
    NVML                       the nvidia-ml-py backend
    nvidia-smi                 the fallback backend: ``--query-gpu`` CSV
    the probe                  backend choice and fallback, one document per poll
    output and main            JSON lines, ``--serve`` loop and command line
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import time

# ------------------------------------------------------------------------------ protocol and limits
PROTOCOL_VERSION = 1
MIB = 1024.0 * 1024.0

# NVML return codes (numbers, not pynvml's classes: old nvidia-ml-py releases lack some classes)
_NVML_ERROR_INVALID_ARGUMENT = 2
_NVML_ERROR_NOT_SUPPORTED = 3
_NVML_ERROR_NO_PERMISSION = 4
_NVML_ERROR_NOT_FOUND = 6
_NVML_ERROR_FUNCTION_NOT_FOUND = 13
_NVML_ERROR_GPU_IS_LOST = 15
#: answers that will not change while the probe runs: the call is not made again for that GPU
_NVML_PERMANENT = (_NVML_ERROR_NOT_SUPPORTED, _NVML_ERROR_NO_PERMISSION, _NVML_ERROR_FUNCTION_NOT_FOUND)

#: NVML clock event ("throttle") reason bits and the names the probe reports
THROTTLE_BITS = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal"),
    (0x40, "hw_thermal"),
    (0x80, "hw_power_brake"),
    (0x100, "display_clocks"),
)

#: the nvidia-smi fallback's query, in column order
SMI_FIELDS = (
    "index",
    "uuid",
    "name",
    "pci.bus_id",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "power.limit",
    "clocks.sm",
    "clocks.mem",
    "ecc.mode.current",
    "ecc.errors.corrected.volatile.total",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.uncorrected.aggregate.total",
    "retired_pages.pending",
    "clocks_throttle_reasons.active",
    "mig.mode.current",
    "driver_version",
)

GPU_FIELDS = (
    "index",
    "uuid",
    "name",
    "pci_bus_id",
    "util_gpu",
    "util_mem",
    "mem_used_mib",
    "mem_total_mib",
    "temp_c",
    "temp_slowdown_c",
    "temp_shutdown_c",
    "power_w",
    "power_limit_w",
    "sm_clock_mhz",
    "mem_clock_mhz",
    "throttle_reasons",
    "ecc_mode",
    "ecc_corrected_volatile",
    "ecc_uncorrected_volatile",
    "ecc_corrected_aggregate",
    "ecc_uncorrected_aggregate",
    "retired_pages_pending",
    "row_remap_pending",
    "row_remap_failure",
    "mig_mode",
    "mig_instances",
    "nvlink",
    "processes",
    "error",
)

XID_INTERVAL_S = 30.0
XID_WINDOW_S = 3600.0
XID_KEEP = 200
KERNEL_LOG_TIMEOUT_S = 2.0
JOURNAL_OVERLAP_S = 5.0
SMI_TIMEOUT_S = 15.0
NVML_RETRY_S = 30.0
PODS_RESCAN_S = 10.0


# ------------------------------------------------------------------------------ small helpers
def empty_gpu(index):
    """A GPU entry with every field present and unknown."""
    gpu = dict.fromkeys(GPU_FIELDS)
    gpu["index"] = index
    gpu["uuid"] = gpu["name"] = gpu["pci_bus_id"] = gpu["error"] = ""
    gpu["mig_instances"] = []
    gpu["processes"] = []
    return gpu


def decode_throttle(mask):
    """Names of the reasons set in an NVML clock event reason bitmask (unknown bits as ``0x...``)."""
    if mask is None:
        return None
    mask = int(mask)
    names = [name for bit, name in THROTTLE_BITS if mask & bit]
    rest = mask & ~sum(bit for bit, _ in THROTTLE_BITS)
    if rest:
        names.append(f"0x{rest:x}")
    return names


def cuda_version_text(value):
    """NVML's CUDA driver version number (12040) as ``12.4``."""
    if not value:
        return ""
    value = int(value)
    return f"{value // 1000}.{value % 1000 // 10}"


def _text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _quietly(call, default=None):
    """``call()``, or ``default`` when it fails: for what the probe does without (a version, a shutdown, a text)."""
    try:
        return call()
    except Exception:  # noqa: BLE001 - what it reads is optional, what it closes is gone
        return default


def _error_text(exc):
    # an error's text must never fail the poll
    return _quietly(lambda: str(exc), "") or type(exc).__name__


# ------------------------------------------------------------------------------ kernel log (XIDs)
_XID_RE = re.compile(
    r"NVRM: Xid \(PCI:([0-9A-Fa-f]{1,8}:[0-9A-Fa-f]{1,2}:[0-9A-Fa-f]{1,2})(?:\.[0-9A-Fa-f])?\):\s*(\d{1,6})\b,?\s*(.*)"
)
_UNIX_TS_RE = re.compile(r"^\s*(\d{9,11}(?:\.\d+)?)\s")
_DMESG_TS_RE = re.compile(r"^\s*(?:<\d+>)?\[\s*(\d{1,9}(?:\.\d+)?)\]")
_XID_NOISE_RE = re.compile(r"^(?:pid=[^,]*|name=[^,]*|Ch [0-9a-fA-F]+)\s*,\s*")


def parse_xid_line(line, boot_time=None):
    """One kernel log line → ``{"t", "pci", "code", "msg"}`` when it is an NVIDIA XID, else None.

    Understands ``journalctl -o short-unix`` lines (``1712345678.123456 host kernel: NVRM: Xid ...``)
    and ``dmesg`` lines (``[  123.456789] NVRM: Xid ...``, timed from ``boot_time``).
    """
    match = _XID_RE.search(line)
    if not match:
        return None
    pci, code, msg = match.group(1), match.group(2), match.group(3)
    t = None
    unix = _UNIX_TS_RE.match(line)
    if unix:
        t = float(unix.group(1))
    elif boot_time is not None:
        rel = _DMESG_TS_RE.match(line)
        if rel:
            t = round(boot_time + float(rel.group(1)), 6)
    for _ in range(4):
        stripped = _XID_NOISE_RE.sub("", msg, count=1)
        if stripped == msg:
            break
        msg = stripped
    return {"t": t, "pci": pci.lower(), "code": int(code), "msg": msg.strip()}


def parse_xids(text, boot_time=None):
    """Every XID in a kernel log text, oldest first."""
    out = []
    for line in text.splitlines():
        if "Xid" in line:
            xid = parse_xid_line(line, boot_time)
            if xid is not None:
                out.append(xid)
    return out


def _boot_time(now):
    try:
        with open("/proc/uptime") as fh:
            return now - float(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _run(argv, timeout):
    """(returncode, stdout, stderr), or (None, "", why) when it could not run."""
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except FileNotFoundError:
        return None, "", f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return None, "", f"{argv[0]}: timed out after {timeout:g}s"
    except OSError as exc:
        return None, "", f"{argv[0]}: {exc}"
    return done.returncode, done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace")


#: journalctl's stderr when it ran but cannot show the kernel log (no journal, or not allowed to read it)
_JOURNAL_UNUSABLE = ("No journal files", "insufficient permissions", "not seeing messages")


class KernelLog:
    """The last hour's XIDs from journalctl (incrementally) or dmesg, re-read at most every ``interval`` seconds."""

    def __init__(self, interval=XID_INTERVAL_S, window=XID_WINDOW_S):
        self.interval = interval
        self.window = window
        self.events = []
        self.source = ""
        self.error = ""
        self._last_run = None
        self._journal_since = None  # where the next journalctl read starts (unix seconds)

    def poll(self, now):
        if self._last_run is not None and now - self._last_run < self.interval:
            return self.events
        self._last_run = now
        found = self._journalctl(now)
        if found is None:
            found = self._dmesg(now)
            if found is not None:
                self.events = []
        if found is not None:
            self._merge(found, now)
        return self.events

    def _journalctl(self, now):
        since = "-1h" if self._journal_since is None else f"@{int(self._journal_since)}"
        rc, out, err = _run(
            ["journalctl", "-k", "-o", "short-unix", "--since", since, "--no-pager"], KERNEL_LOG_TIMEOUT_S
        )
        if rc is None or rc != 0 or any(hint in err for hint in _JOURNAL_UNUSABLE):
            if self._journal_since is not None:
                self._journal_since = None  # start over with a full hour next time
            self.error = (err.strip().splitlines() or ["journalctl failed"])[-1] if rc is not None else err
            return None
        if self.source != "journalctl":
            self.events = []
        self.source = "journalctl"
        self.error = ""
        # the next read starts a little before this one did; _merge drops what is read twice
        self._journal_since = now - JOURNAL_OVERLAP_S
        return parse_xids(out)

    def _dmesg(self, now):
        rc, out, err = _run(["dmesg"], KERNEL_LOG_TIMEOUT_S)
        if rc != 0:
            why = err.strip().splitlines()[-1] if err.strip() else "dmesg failed"
            self.error = "; ".join(x for x in (self.error, why) if x)
            self.source = ""
            self.events = []
            return None
        self.source = "dmesg"
        self.error = ""
        return parse_xids(out, _boot_time(now))

    def _merge(self, found, now):
        seen = set((x["t"], x["pci"], x["code"], x["msg"]) for x in self.events)
        for xid in found:
            key = (xid["t"], xid["pci"], xid["code"], xid["msg"])
            if key not in seen:
                seen.add(key)
                self.events.append(xid)
        cutoff = now - self.window
        self.events = [x for x in self.events if x["t"] is None or x["t"] >= cutoff][-XID_KEEP:]


# ------------------------------------------------------------------------------ processes → pods / jobs
_POD_UID_RE = re.compile(
    r"pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})"
)
_CONTAINER_RE = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?$")
_SLURM_JOB_RE = re.compile(r"/job_(\d+)(?:/|$)")


def parse_cgroup(text):
    """``/proc/<pid>/cgroup`` → ``{"pod_uid", "container_id", "slurm_job"}`` (empty strings when not found).

    Kubernetes: ``.../kubepods/burstable/pod<uid>/<container id>`` (cgroupfs) or
    ``.../kubepods-burstable-pod<uid with _>.slice/cri-containerd-<id>.scope`` (systemd).
    Slurm: ``/slurm/uid_<n>/job_<m>/step_0/...`` (v1) or ``.../slurmstepd.scope/job_<m>/...`` (v2).
    """
    out = {"pod_uid": "", "container_id": "", "slurm_job": ""}
    for line in text.splitlines():
        parts = line.split(":", 2)
        path = parts[2] if len(parts) == 3 else line
        if "kubepods" in path and not out["pod_uid"]:
            match = _POD_UID_RE.search(path)
            if match:
                out["pod_uid"] = match.group(1).replace("_", "-").lower()
                tail = path.rstrip("/").rsplit("/", 1)[-1]
                cid = _CONTAINER_RE.search(tail)
                if cid:
                    out["container_id"] = cid.group(1)
        if "slurm" in path and not out["slurm_job"]:
            match = _SLURM_JOB_RE.search(path)
            if match:
                out["slurm_job"] = match.group(1)
    return out


def parse_pod_log_dir(name):
    """``/var/log/pods`` entry ``<namespace>_<pod>_<uid>`` → (namespace, pod, uid), else None."""
    parts = name.split("_")
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2].lower()


def parse_container_log_name(name):
    """``/var/log/containers`` entry ``<pod>_<namespace>_<container>-<64 hex id>.log`` → (container, id), else None."""
    if not name.endswith(".log"):
        return None
    stem = name[:-4]
    parts = stem.split("_")
    if len(parts) != 3:
        return None
    container, _, cid = parts[2].rpartition("-")
    if not container or len(cid) != 64:
        return None
    return container, cid


class PodIndex:
    """Maps pod UIDs to ``namespace/name`` and container ids to names from the kubelet's log directories."""

    def __init__(self, pods_dir="/var/log/pods", containers_dir="/var/log/containers"):
        self.pods_dir = pods_dir
        self.containers_dir = containers_dir
        self.pods = {}
        self.containers = {}
        self._scanned = None

    def _scan(self, now):
        if self._scanned is not None and now - self._scanned < PODS_RESCAN_S:
            return
        self._scanned = now
        pods, containers = {}, {}
        for entry in _listdir(self.pods_dir):
            parsed = parse_pod_log_dir(entry)
            if parsed:
                pods[parsed[2]] = parsed[0] + "/" + parsed[1]
        for entry in _listdir(self.containers_dir):
            parsed = parse_container_log_name(entry)
            if parsed:
                containers[parsed[1]] = parsed[0]
        self.pods, self.containers = pods, containers

    def pod(self, uid, now):
        if uid not in self.pods:
            self._scan(now)
        return self.pods.get(uid, uid)

    def container(self, cid, now):
        if cid not in self.containers:
            self._scan(now)
        return self.containers.get(cid, cid[:12])


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read_small(path):
    try:
        with open(path, "rb") as fh:
            return fh.read(65536).decode("utf-8", "replace")
    except OSError:
        return None


class ProcessMapper:
    """pid → ``{"name", "pod", "container", "slurm_job"}``, cached while the pid stays on a GPU."""

    def __init__(self, proc_root="/proc", pods=None):
        self.proc_root = proc_root
        self.pods = pods or PodIndex()
        self._cache = {}
        self._seen = set()

    def begin(self):
        self._seen = set()

    def end(self):
        for pid in list(self._cache):
            if pid not in self._seen:
                del self._cache[pid]

    def info(self, pid, now):
        self._seen.add(pid)
        cached = self._cache.get(pid)
        if cached is not None:
            return cached
        base = os.path.join(self.proc_root, str(pid))
        comm = _read_small(os.path.join(base, "comm"))
        out = {"name": (comm or "").strip(), "pod": "", "container": "", "slurm_job": ""}
        cgroup = _read_small(os.path.join(base, "cgroup"))
        if cgroup:
            parsed = parse_cgroup(cgroup)
            if parsed["pod_uid"]:
                out["pod"] = self.pods.pod(parsed["pod_uid"], now)
                if parsed["container_id"]:
                    out["container"] = self.pods.container(parsed["container_id"], now)
            out["slurm_job"] = parsed["slurm_job"]
        if comm is not None:  # a pid we cannot read yet may become readable: do not cache the blank
            self._cache[pid] = out
        return out


# ------------------------------------------------------------------------------ NVML
class _Lost(Exception):
    """The GPU answered NVML_ERROR_GPU_IS_LOST."""


class NvmlBackend:
    """NVML through nvidia-ml-py, initialised once; per-GPU caches keyed by UUID."""

    name = "nvml"

    def __init__(self, procs):
        import pynvml

        self.N = pynvml
        pynvml.nvmlInit()
        self.procs = procs
        self._mismatch = getattr(pynvml, "NVMLLibraryMismatchError", None)
        self._gpus = {}  # uuid → {"skip": set(), static facts}
        self._identity = {}  # index → (uuid, name, pci bus id) when last seen healthy
        self._count = None
        self.driver = _quietly(lambda: _text(pynvml.nvmlSystemGetDriverVersion()), "")
        self.cuda = _quietly(lambda: cuda_version_text(pynvml.nvmlSystemGetCudaDriverVersion()), "")

    def close(self):
        _quietly(lambda: self.N.nvmlShutdown())

    # one NVML call: None when unsupported (remembered in ``skip``), _Lost when the GPU is lost
    def _q(self, skip, name, handle, *args):
        key = (name,) + args
        if key in skip:
            return None
        fn = getattr(self.N, name, None)
        if fn is None:
            skip.add(key)
            return None
        try:
            return fn(handle, *args)
        except self.N.NVMLError as exc:
            value = getattr(exc, "value", None)
            if value == _NVML_ERROR_GPU_IS_LOST:
                raise _Lost() from None
            if value in _NVML_PERMANENT:
                skip.add(key)
            return None
        except (TypeError, AttributeError):  # an nvidia-ml-py too old for this call's signature
            skip.add(key)
            return None
        except Exception as exc:  # noqa: BLE001
            if self._mismatch is not None and isinstance(exc, self._mismatch):
                skip.add(key)
            return None

    def poll(self, doc, now):
        N = self.N
        count = N.nvmlDeviceGetCount()
        if count != self._count:
            self._gpus = {}
            self._identity = {}
            self._count = count
        doc["driver"], doc["cuda"], doc["gpu_count"] = self.driver, self.cuda, count
        self.procs.begin()
        gpus = []
        for index in range(count):
            gpus.append(self._gpu(index, now))
        self.procs.end()
        doc["gpus"] = gpus

    def _gpu(self, index, now):
        gpu = empty_gpu(index)
        N = self.N
        try:
            handle = N.nvmlDeviceGetHandleByIndex(index)
        except N.NVMLError as exc:
            gpu["error"] = "GPU is lost" if getattr(exc, "value", None) == _NVML_ERROR_GPU_IS_LOST else _error_text(exc)
            self._remembered(gpu)
            return gpu
        try:
            self._fill(gpu, index, handle, now)
        except _Lost:
            gpu["error"] = "GPU is lost"
        if gpu["error"] == "GPU is lost":
            self._remembered(gpu)
        elif gpu["uuid"]:
            self._identity[index] = (gpu["uuid"], gpu["name"], gpu["pci_bus_id"])
        return gpu

    def _remembered(self, gpu):
        """A lost GPU keeps the identity it had at an earlier poll of this probe, when it had one."""
        known = self._identity.get(gpu["index"])
        if known is not None:
            gpu["uuid"] = gpu["uuid"] or known[0]
            gpu["name"] = gpu["name"] or known[1]
            gpu["pci_bus_id"] = gpu["pci_bus_id"] or known[2]

    def _fill(self, gpu, index, handle, now):
        N = self.N
        boot_skip = set()
        uuid = _text(self._q(boot_skip, "nvmlDeviceGetUUID", handle))
        key = uuid or f"#{index}"
        st = self._gpus.get(key)
        if st is None:
            st = {"skip": set()}
            self._gpus[key] = st
        skip = st["skip"]
        q = self._q
        gpu["uuid"] = uuid
        if "name" not in st:
            st["name"] = _text(q(skip, "nvmlDeviceGetName", handle))
            pci = q(skip, "nvmlDeviceGetPciInfo", handle)
            st["pci"] = _text(getattr(pci, "busId", "")) if pci is not None else ""
            st["slowdown"] = q(skip, "nvmlDeviceGetTemperatureThreshold", handle, 1)
            st["shutdown"] = q(skip, "nvmlDeviceGetTemperatureThreshold", handle, 0)
        gpu["name"], gpu["pci_bus_id"] = st["name"], st["pci"]
        gpu["temp_slowdown_c"], gpu["temp_shutdown_c"] = st["slowdown"], st["shutdown"]

        util = q(skip, "nvmlDeviceGetUtilizationRates", handle)
        if util is not None:
            gpu["util_gpu"], gpu["util_mem"] = util.gpu, util.memory
        mem = None
        version = getattr(N, "nvmlMemory_v2", None)
        if version is not None:
            mem = q(skip, "nvmlDeviceGetMemoryInfo", handle, version)
        if mem is None:
            mem = q(skip, "nvmlDeviceGetMemoryInfo", handle)
        if mem is not None:
            gpu["mem_used_mib"] = round(mem.used / MIB, 3)
            gpu["mem_total_mib"] = round(mem.total / MIB, 3)
        gpu["temp_c"] = q(skip, "nvmlDeviceGetTemperature", handle, 0)
        power = q(skip, "nvmlDeviceGetPowerUsage", handle)
        gpu["power_w"] = None if power is None else power / 1000.0
        limit = q(skip, "nvmlDeviceGetEnforcedPowerLimit", handle)
        gpu["power_limit_w"] = None if limit is None else limit / 1000.0
        gpu["sm_clock_mhz"] = q(skip, "nvmlDeviceGetClockInfo", handle, 1)
        gpu["mem_clock_mhz"] = q(skip, "nvmlDeviceGetClockInfo", handle, 2)
        mask = q(skip, "nvmlDeviceGetCurrentClocksEventReasons", handle)
        if mask is None:
            mask = q(skip, "nvmlDeviceGetCurrentClocksThrottleReasons", handle)
        gpu["throttle_reasons"] = decode_throttle(mask)

        ecc = q(skip, "nvmlDeviceGetEccMode", handle)
        if ecc is not None:
            gpu["ecc_mode"] = bool(ecc[0])
            if gpu["ecc_mode"]:
                gpu["ecc_corrected_volatile"] = q(skip, "nvmlDeviceGetTotalEccErrors", handle, 0, 0)
                gpu["ecc_uncorrected_volatile"] = q(skip, "nvmlDeviceGetTotalEccErrors", handle, 1, 0)
                gpu["ecc_corrected_aggregate"] = q(skip, "nvmlDeviceGetTotalEccErrors", handle, 0, 1)
                gpu["ecc_uncorrected_aggregate"] = q(skip, "nvmlDeviceGetTotalEccErrors", handle, 1, 1)
        pending = q(skip, "nvmlDeviceGetRetiredPagesPendingStatus", handle)
        gpu["retired_pages_pending"] = None if pending is None else bool(pending)
        rows = q(skip, "nvmlDeviceGetRemappedRows", handle)
        if rows is not None:
            gpu["row_remap_pending"], gpu["row_remap_failure"] = bool(rows[2]), bool(rows[3])

        mig = q(skip, "nvmlDeviceGetMigMode", handle)
        if mig is not None:
            gpu["mig_mode"] = bool(mig[0])
            if gpu["mig_mode"]:
                gpu["mig_instances"] = self._mig_instances(handle, skip)
        gpu["nvlink"] = self._nvlink(handle, st)
        gpu["processes"] = self._processes(handle, skip, now)

    def _mig_instances(self, handle, skip):
        N = self.N
        out = []
        count = self._q(skip, "nvmlDeviceGetMaxMigDeviceCount", handle) or 0
        for k in range(count):
            try:
                mh = N.nvmlDeviceGetMigDeviceHandleByIndex(handle, k)
            except N.NVMLError as exc:
                if getattr(exc, "value", None) == _NVML_ERROR_GPU_IS_LOST:
                    raise _Lost() from None
                continue
            mskip = set()
            name = _text(self._q(mskip, "nvmlDeviceGetName", mh))
            mem = self._q(mskip, "nvmlDeviceGetMemoryInfo", mh)
            out.append(
                {
                    "gi": self._q(mskip, "nvmlDeviceGetGpuInstanceId", mh),
                    "ci": self._q(mskip, "nvmlDeviceGetComputeInstanceId", mh),
                    "profile": name.split(" MIG ", 1)[1] if " MIG " in name else "",
                    "uuid": _text(self._q(mskip, "nvmlDeviceGetUUID", mh)),
                    "mem_total_mib": None if mem is None else round(mem.total / MIB, 3),
                }
            )
        return out

    def _nvlink(self, handle, st):
        N = self.N
        known = st.get("nvlinks")
        if known == 0:
            return None
        limit = known if known is not None else int(getattr(N, "NVML_NVLINK_MAX_LINKS", 18))
        if not hasattr(N, "nvmlDeviceGetNvLinkState"):
            st["nvlinks"] = 0
            return None
        links = []
        for link in range(limit):
            try:
                active = N.nvmlDeviceGetNvLinkState(handle, link)
            except N.NVMLError as exc:
                if getattr(exc, "value", None) == _NVML_ERROR_GPU_IS_LOST:
                    raise _Lost() from None
                if known is None:
                    break  # past the last link (or no NVLink at all)
                continue
            links.append({"link": link, "active": bool(active)})
        if known is None:
            st["nvlinks"] = len(links)
        return links or None

    def _processes(self, handle, skip, now):
        procs = self._q(skip, "nvmlDeviceGetComputeRunningProcesses", handle)
        if procs is None:
            procs = self._q(skip, "nvmlDeviceGetComputeRunningProcesses_v2", handle)
        if procs is None:
            return []
        out = []
        for p in procs:
            pid = int(p.pid)
            used = getattr(p, "usedGpuMemory", None)
            entry = {"pid": pid, "used_mib": None if used is None else round(used / MIB, 3)}
            entry.update(self.procs.info(pid, now))
            out.append(entry)
        return out


# ------------------------------------------------------------------------------ nvidia-smi
#: older or newer names nvidia-smi may know a field by
SMI_ALTERNATES = {"clocks_throttle_reasons.active": "clocks_event_reasons.active"}
_SMI_INVALID_RE = re.compile(r'Field "([^"]+)" is not a valid field to query')


def smi_command(fields=SMI_FIELDS):
    return ["nvidia-smi", "--query-gpu=" + ",".join(fields), "--format=csv,noheader,nounits"]


def _smi_missing(value):
    return value == "" or value.startswith("[") or value.upper() in ("N/A", "NOT SUPPORTED")


def _smi_number(value, kind):
    if _smi_missing(value):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return int(number) if kind is int else number


def _smi_bool(value):
    low = value.strip().lower()
    if low in ("enabled", "yes", "true", "1"):
        return True
    if low in ("disabled", "no", "false", "0"):
        return False
    return None


def _smi_mask(value):
    if _smi_missing(value):
        return None
    try:
        return int(value, 16) if value.lower().startswith("0x") else int(value)
    except ValueError:
        return None


_SMI_HANDLE_RE = re.compile(r"for GPU\s*([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f])\s*:\s*(.*)")


def parse_smi(text, fields=SMI_FIELDS):
    """The fallback query's CSV → (gpus, driver version, unparsed lines)."""
    gpus, other = [], []
    driver = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        cols = [c.strip() for c in line.split(",")]
        if len(cols) != len(fields):
            handle = _SMI_HANDLE_RE.search(line)
            if handle:
                gpu = empty_gpu(len(gpus))
                pci = handle.group(1)
                gpu["pci_bus_id"] = ("0000" + pci) if len(pci.split(":")[0]) == 4 else pci
                why = handle.group(2).strip()
                gpu["error"] = "GPU is lost" if "is lost" in why.lower() else why.rstrip(".")
                gpus.append(gpu)
            else:
                other.append(line)
            continue
        v = dict.fromkeys(SMI_FIELDS, "")
        for position, name in enumerate(fields):
            v[name] = cols[position]
        for canonical, alternate in SMI_ALTERNATES.items():
            if alternate in v:
                v[canonical] = v[alternate]
        index = _smi_number(v["index"], int)
        gpu = empty_gpu(len(gpus) if index is None else index)
        gpu["uuid"], gpu["name"], gpu["pci_bus_id"] = v["uuid"], v["name"], v["pci.bus_id"]
        gpu["util_gpu"] = _smi_number(v["utilization.gpu"], int)
        gpu["util_mem"] = _smi_number(v["utilization.memory"], int)
        gpu["mem_used_mib"] = _smi_number(v["memory.used"], float)
        gpu["mem_total_mib"] = _smi_number(v["memory.total"], float)
        gpu["temp_c"] = _smi_number(v["temperature.gpu"], int)
        gpu["power_w"] = _smi_number(v["power.draw"], float)
        gpu["power_limit_w"] = _smi_number(v["power.limit"], float)
        gpu["sm_clock_mhz"] = _smi_number(v["clocks.sm"], int)
        gpu["mem_clock_mhz"] = _smi_number(v["clocks.mem"], int)
        gpu["ecc_mode"] = _smi_bool(v["ecc.mode.current"])
        gpu["ecc_corrected_volatile"] = _smi_number(v["ecc.errors.corrected.volatile.total"], int)
        gpu["ecc_uncorrected_volatile"] = _smi_number(v["ecc.errors.uncorrected.volatile.total"], int)
        gpu["ecc_uncorrected_aggregate"] = _smi_number(v["ecc.errors.uncorrected.aggregate.total"], int)
        gpu["retired_pages_pending"] = _smi_bool(v["retired_pages.pending"])
        gpu["throttle_reasons"] = decode_throttle(_smi_mask(v["clocks_throttle_reasons.active"]))
        gpu["mig_mode"] = _smi_bool(v["mig.mode.current"])
        if not _smi_missing(v["driver_version"]):
            driver = v["driver_version"]
        gpus.append(gpu)
    return gpus, driver, other


class Smi:
    """The nvidia-smi fallback; learns once which of its fields this nvidia-smi knows."""

    def __init__(self):
        self.fields = list(SMI_FIELDS)

    def poll(self, doc):
        """Fill ``doc`` from nvidia-smi; '' on success, else why it failed."""
        for _ in range(4):
            rc, out, err = _run(smi_command(self.fields), SMI_TIMEOUT_S)
            if rc is None:
                return err
            invalid = _SMI_INVALID_RE.search(out + err)
            if not invalid or invalid.group(1) not in self.fields:
                break
            bad = invalid.group(1)
            alternate = SMI_ALTERNATES.get(bad)
            if alternate and alternate not in self.fields:
                self.fields[self.fields.index(bad)] = alternate
            else:
                self.fields.remove(bad)
        gpus, driver, other = parse_smi(out, tuple(self.fields))
        if not gpus:
            why = " ".join((other or err.strip().splitlines() or ["no GPUs listed"])[:2])
            return f"nvidia-smi (exit {rc}): {why}"
        doc["gpus"] = gpus
        doc["gpu_count"] = len(gpus)
        doc["driver"] = driver
        return ""


# ------------------------------------------------------------------------------ the probe
class Probe:
    """Answers polls: NVML when it works, else nvidia-smi, else backend "none" with the reasons."""

    def __init__(
        self,
        xid_interval=XID_INTERVAL_S,
        proc_root="/proc",
        pods_dir="/var/log/pods",
        containers_dir="/var/log/containers",
        xids=True,
    ):
        self.host = socket.gethostname()
        self.kernel_log = KernelLog(xid_interval) if xids else None
        self.procs = ProcessMapper(proc_root, PodIndex(pods_dir, containers_dir))
        self.smi = Smi()
        self.nvml = None
        self.nvml_error = ""
        self._nvml_tried = None

    def _nvml_ready(self, now):
        if self.nvml is not None:
            return True
        if self._nvml_tried is not None and now - self._nvml_tried < NVML_RETRY_S:
            return False
        self._nvml_tried = now
        try:
            self.nvml = NvmlBackend(self.procs)
            self.nvml_error = ""
        except ImportError as exc:
            self.nvml_error = f"pynvml not importable ({_error_text(exc)})"
        except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded, ...
            self.nvml_error = f"NVML init failed: {_error_text(exc)}"
        return self.nvml is not None

    def poll(self):
        started = time.perf_counter()
        now = time.time()
        doc = {
            "v": PROTOCOL_VERSION,
            "host": self.host,
            "t": now,
            "backend": "none",
            "error": "",
            "nvml_error": "",
            "driver": "",
            "cuda": "",
            "gpu_count": 0,
            "probe_ms": 0.0,
            "gpus": [],
            "xids": [],
            "xid_source": "",
            "xid_error": "",
        }
        if self._nvml_ready(now):
            try:
                self.nvml.poll(doc, now)
                doc["backend"] = "nvml"
            except Exception as exc:  # noqa: BLE001 - NVML broke under us: fall back now, re-init later
                self.nvml_error = f"NVML failed: {_error_text(exc)}"
                self.nvml.close()
                self.nvml = None
                self._nvml_tried = now
                doc.update(driver="", cuda="", gpu_count=0, gpus=[])
        if doc["backend"] != "nvml":
            doc["nvml_error"] = self.nvml_error
            why = self.smi.poll(doc)
            if why:
                doc["backend"] = "none"
                doc["error"] = "; ".join(
                    x for x in ("nvml: " + self.nvml_error if self.nvml_error else "", "nvidia-smi: " + why) if x
                )
            else:
                doc["backend"] = "nvidia-smi"
        if self.kernel_log is not None:
            doc["xids"] = list(self.kernel_log.poll(now))
            doc["xid_source"] = self.kernel_log.source
            doc["xid_error"] = self.kernel_log.error
        doc["probe_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return doc

    def close(self):
        if self.nvml is not None:
            self.nvml.close()
            self.nvml = None


# ------------------------------------------------------------------------------ output and main
def _failure_doc(host, exc):
    return {
        "v": PROTOCOL_VERSION,
        "host": host,
        "t": time.time(),
        "backend": "none",
        "error": f"probe failed: {type(exc).__name__}: {_error_text(exc)}",
        "nvml_error": "",
        "driver": "",
        "cuda": "",
        "gpu_count": 0,
        "probe_ms": 0.0,
        "gpus": [],
        "xids": [],
        "xid_source": "",
        "xid_error": "",
    }


def _emit(doc, out):
    out.write(json.dumps(doc, separators=(",", ":")) + "\n")
    out.flush()


def serve(probe, stdin, stdout):
    """One JSON line per request line; ends on EOF or a ``quit`` line."""
    while True:
        line = stdin.readline()
        if not line or line.strip() in ("quit", "exit"):
            return
        try:
            doc = probe.poll()
        except Exception as exc:  # noqa: BLE001 - the resident probe must keep answering
            doc = _failure_doc(probe.host, exc)
        _emit(doc, stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="gpuprobe", description="Report this host's GPUs as JSON.")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="print one JSON document and exit (default)")
    mode.add_argument("--serve", action="store_true", help="answer one JSON line per stdin line until EOF")
    parser.add_argument("--xid-interval", type=float, default=XID_INTERVAL_S, help="seconds between kernel log reads")
    parser.add_argument("--no-xids", action="store_true", help="do not read the kernel log")
    parser.add_argument("--proc-root", default="/proc", help=argparse.SUPPRESS)
    parser.add_argument("--pods-dir", default="/var/log/pods", help=argparse.SUPPRESS)
    parser.add_argument("--containers-dir", default="/var/log/containers", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    probe = Probe(
        xid_interval=args.xid_interval,
        proc_root=args.proc_root,
        pods_dir=args.pods_dir,
        containers_dir=args.containers_dir,
        xids=not args.no_xids,
    )
    try:
        if args.serve:
            serve(probe, sys.stdin, sys.stdout)
        else:
            try:
                doc = probe.poll()
            except Exception as exc:  # noqa: BLE001
                doc = _failure_doc(probe.host, exc)
            _emit(doc, sys.stdout)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        probe.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
