"""Provides the fake NVML lab: build libnvidia-ml.so.1 from fakenvml.c, write its state, and named GPU host scenarios.

A process sees the fake host with::

    LD_LIBRARY_PATH=<outdir>            # the real nvidia-ml-py loads <outdir>/libnvidia-ml.so.1
    FAKE_NVML_STATE=<state file>        # written by write_state(); re-read live when it changes
    PATH=<outdir>/bin:$PATH             # fake nvidia-smi, journalctl and dmesg reading the same state

Every scenario builder returns a fresh dict (see ``state.py`` for the keys); tests compare what a
probe reports against it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import state as _state
from .state import MIB, gpu

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "fakenvml.c"
LIB_NAME = "libnvidia-ml.so.1"

#: the PCI buses of the eight GPUs of a DGX H100
DGX_BUSES = (0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB)


def build_fake_nvml(outdir: str | os.PathLike, *, gcc: str | None = None) -> Path:
    """Compile the fake library into ``outdir`` and put its command-line fakes in ``outdir/bin``; the library's path."""
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    compiler = gcc or shutil.which("gcc") or "gcc"
    lib = out / LIB_NAME
    argv = [
        compiler,
        "-shared",
        "-fPIC",
        "-O2",
        "-Wall",
        "-Wl,-soname," + LIB_NAME,
        "-o",
        str(lib),
        str(SOURCE),
        "-lpthread",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"building the fake NVML failed ({done.returncode}): {' '.join(argv)}\n{done.stderr}")
    bindir = out / "bin"
    bindir.mkdir(exist_ok=True)
    python = shlex.quote(sys.executable)
    for name, script, mode in (
        ("nvidia-smi", HERE / "nvidia-smi", ""),
        ("journalctl", HERE / "kernlog.py", "journalctl"),
        ("dmesg", HERE / "kernlog.py", "dmesg"),
    ):
        wrapper = bindir / name
        wrapper.write_text(f'#!/bin/sh\nexec {python} -I {shlex.quote(str(script))} {mode} "$@"\n', encoding="utf-8")
        wrapper.chmod(0o755)
    return lib


def fake_env(libdir: str | os.PathLike, state_path: str | os.PathLike, base: dict | None = None) -> dict[str, str]:
    """An environment in which NVML, nvidia-smi and the kernel log are the fake host's."""
    env = dict(os.environ if base is None else base)
    libdir = str(libdir)
    env["LD_LIBRARY_PATH"] = libdir + (os.pathsep + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    env["FAKE_NVML_STATE"] = str(state_path)
    env["PATH"] = str(Path(libdir) / "bin") + os.pathsep + env.get("PATH", "/usr/bin:/bin")
    return env


def write_state(path: str | os.PathLike, scenario: dict) -> Path:
    """Write ``scenario`` as the fake's state file (atomically: running fakes see the new values at once)."""
    _state.write(path, scenario)
    return Path(path)


def read_state(path: str | os.PathLike) -> dict:
    return _state.read(path)


# ------------------------------------------------------------------------------ scenarios
def h100(index: int, **values) -> dict:
    """One busy, healthy H100 SXM of a DGX, distinct per index (fractional watts, uneven memory)."""
    base = {
        "uuid": f"GPU-5f0c{index:04x}-8d1e-4b2a-9c3f-0000000{index:05x}",
        "name": "NVIDIA H100 80GB HBM3",
        "pci": f"00000000:{DGX_BUSES[index % len(DGX_BUSES)]:02X}:00.0",
        "util_gpu": 90 + index,
        "util_mem": 40 + 2 * index,
        "mem_total": 81559 * MIB,
        "mem_used": (60000 + 1000 * index) * MIB + 123456 * (index + 1),
        "mem_reserved": 529 * MIB,
        "temp": 55 + index,
        "power_mw": 612517 + 1031 * index,
        "power_limit_mw": 700000,
        "sm_clock": 1980,
        "mem_clock": 2619,
        "unsupported": ["retired_pages"],  # Hopper remaps rows instead of retiring pages
    }
    base.update(values)
    return gpu(**base)


def kernel_pci(pci_bus_id: str) -> str:
    """How the kernel log names a GPU: ``00000000:5D:00.0`` → ``0000:5d:00``."""
    domain, bus, dev = pci_bus_id.split(".")[0].split(":")
    return f"{domain[-4:]}:{bus}:{dev}".lower()


def xid_line(pci_bus_id: str, code: int, text: str, *, pid: str = "'<unknown>'", name: str = "<unknown>") -> str:
    """A kernel log line as the NVIDIA driver writes it, for the GPU at ``pci_bus_id`` (00000000:18:00.0)."""
    return f"NVRM: Xid (PCI:{kernel_pci(pci_bus_id)}): {code}, pid={pid}, name={name}, {text}"


def _recent(t: float | None) -> float:
    """Kernel log events default to a minute ago (probes look back one hour)."""
    return time.time() - 60 if t is None else t


def healthy(n: int = 8, **top) -> dict:
    """A healthy 8x H100 host."""
    return {"name": "healthy", **top, "gpus": [h100(i) for i in range(n)]}


def ecc_uncorrected(t: float | None = None, gpu_index: int = 2) -> dict:
    """One GPU with uncorrected (double-bit) ECC errors and the matching XID 48."""
    t = _recent(t)
    scn = healthy()
    g = scn["gpus"][gpu_index]
    g["ecc"] = [12, 3, 40, 3]
    scn["name"] = "ecc"
    scn["kmsg"] = [
        [
            t,
            xid_line(
                g["pci"],
                48,
                "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0.",
            ),
        ]
    ]
    return scn


def row_remap_pending(t: float | None = None, gpu_index: int = 5) -> dict:
    """One GPU with a row remap pending (needs a reset), and one whose remapping failed."""
    t = _recent(t)
    scn = healthy()
    scn["name"] = "row_remap"
    scn["gpus"][gpu_index]["remap"] = [0, 1, True, False]
    scn["gpus"][gpu_index]["ecc"] = [0, 0, 2, 1]  # the uncorrectable error is in the aggregate count now
    scn["gpus"][gpu_index + 1]["remap"] = [0, 512, False, True]
    pci = scn["gpus"][gpu_index]["pci"]
    scn["kmsg"] = [
        [
            t,
            f"NVRM: Xid (PCI:{kernel_pci(pci)}): 63, Row Remapper: New row (0x00000000000b7a0b) marked for remapping, reset gpu to activate.",
        ]
    ]
    return scn


def fell_off_bus(mode: str = "lost", t: float | None = None, gpu_index: int = 3) -> dict:
    """A GPU fell off the bus: ``lost`` (queries say GPU is lost), ``handle`` (even its handle), ``gone`` (not enumerated)."""
    t = _recent(t)
    scn = healthy()
    scn["name"] = f"fell_off_bus_{mode}"
    pci = scn["gpus"][gpu_index]["pci"]
    scn["kmsg"] = [
        [t - 5, "nvidia 0000:3a:00.0: enabling device (0000 -> 0002)"],
        [t, xid_line(pci, 79, "GPU has fallen off the bus.")],
    ]
    if mode in ("lost", "handle"):
        scn["gpus"][gpu_index]["lost"] = 1 if mode == "lost" else 2
    elif mode == "gone":
        del scn["gpus"][gpu_index]
    else:
        raise ValueError(mode)
    return scn


def thermal_throttle(gpu_index: int = 6) -> dict:
    """One GPU thermally throttled (sw + hw thermal slowdown) at 86 °C, 1 °C below its slowdown threshold."""
    scn = healthy()
    scn["name"] = "thermal"
    g = scn["gpus"][gpu_index]
    g.update(temp=86, temp_slowdown=87, temp_shutdown=92, throttle=0x20 | 0x40, sm_clock=1410)
    scn["gpus"][gpu_index - 1]["throttle"] = 0x4  # power cap: not a health problem
    return scn


def mig(gpu_index: int = 0) -> dict:
    """One GPU in MIG mode with three instances (3g.40gb, 2g.20gb, 1g.10gb)."""
    scn = healthy()
    scn["name"] = "mig"
    g = scn["gpus"][gpu_index]
    g["mig_mode"] = True
    g["migs"] = [
        {
            "gi": 2,
            "ci": 0,
            "mem_total": 40448 * MIB,
            "mem_used": 12 * MIB,
            "uuid": "MIG-2b1f0d6c-6e1c-5a56-8f7b-7d7cf2a1e001",
            "profile": "3g.40gb",
        },
        {
            "gi": 5,
            "ci": 0,
            "mem_total": 20096 * MIB,
            "mem_used": 11 * MIB,
            "uuid": "MIG-2b1f0d6c-6e1c-5a56-8f7b-7d7cf2a1e002",
            "profile": "2g.20gb",
        },
        {
            "gi": 13,
            "ci": 0,
            "mem_total": 9856 * MIB,
            "mem_used": 5 * MIB,
            "uuid": "MIG-2b1f0d6c-6e1c-5a56-8f7b-7d7cf2a1e003",
            "profile": "1g.10gb",
        },
    ]
    return scn


def processes(pids: list[int]) -> dict:
    """Running compute processes: ``pids[i]`` on GPU ``i % 8`` (2 GiB + i MiB each; one without a memory figure)."""
    scn = healthy()
    scn["name"] = "processes"
    for i, pid in enumerate(pids):
        used = None if i == len(pids) - 1 and len(pids) > 1 else (2048 + i) * MIB
        scn["gpus"][i % 8]["procs"].append({"pid": pid, "used": used})
    return scn


def nvlink_down(gpu_index: int = 4) -> dict:
    """Two NVLink links down on one GPU."""
    scn = healthy()
    scn["name"] = "nvlink"
    scn["gpus"][gpu_index]["nvlink_down"] = [3, 7]
    return scn


def unsupported() -> dict:
    """A small PCIe box whose GPUs support little: no ECC counters, row remap, MIG, NVLink, power or thresholds."""
    gone = ["retired_pages", "remap", "mig", "nvlink", "power", "power_limit", "temp_threshold", "ecc", "throttle"]
    gpus = [
        gpu(
            uuid=f"GPU-a10a{i:04x}-0000-4000-8000-00000000a10{i}",
            name="NVIDIA A10",
            pci=f"00000000:{0x3B + i:02X}:00.0",
            util_gpu=10 * i,
            util_mem=i,
            mem_total=23028 * MIB,
            mem_used=(500 + i) * MIB,
            temp=40 + i,
            sm_clock=1695,
            mem_clock=6251,
            nvlinks=0,
            fan=30 + i,
            unsupported=gone,
        )
        for i in range(2)
    ]
    return {"name": "unsupported", "driver": "535.161.08", "cuda": 12020, "gpus": gpus}


def no_driver() -> dict:
    """No usable driver: nvmlInit says Driver Not Loaded and nvidia-smi fails the same way."""
    scn = healthy()
    scn["name"] = "no_driver"
    scn["init_error"] = 9
    scn["smi_error"] = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running."
    )
    return scn


#: scenario name → builder (every builder has defaults, so ``SCENARIOS[name]()`` works)
SCENARIOS = {
    "healthy": healthy,
    "ecc": ecc_uncorrected,
    "row_remap": row_remap_pending,
    "fell_off_bus": fell_off_bus,
    "fell_off_bus_gone": lambda: fell_off_bus("gone"),
    "fell_off_bus_handle": lambda: fell_off_bus("handle"),
    "thermal": thermal_throttle,
    "mig": mig,
    "processes": lambda: processes([os.getpid()]),
    "nvlink": nvlink_down,
    "unsupported": unsupported,
    "no_driver": no_driver,
}

__all__ = [
    "LIB_NAME",
    "MIB",
    "SCENARIOS",
    "build_fake_nvml",
    "fake_env",
    "gpu",
    "h100",
    "kernel_pci",
    "read_state",
    "write_state",
    "xid_line",
]
