"""Provides the fake NVML state file format: a scenario dict to the line format fakenvml.c reads, and back.

Stdlib only: the fake ``nvidia-smi`` and kernel-log scripts import it by path, under any Python 3.

Top-level lines: ``driver``, ``cuda``, ``count`` (what the driver enumerates), ``init_error`` (an
NVML return code for ``nvmlInit``), and for the python fakes only ``smi_error``, ``journal``
(ok | fail), ``dmesg`` (ok | fail) and ``kmsg <unix-time> <kernel message>``. Each ``gpu`` line
starts a GPU section whose keys are written by :func:`dump` below.
"""

from __future__ import annotations

import os

MIB = 1024 * 1024

GPU_DEFAULTS = {
    "uuid": "",
    "name": "NVIDIA H100 80GB HBM3",
    "pci": "",
    "util_gpu": 0,
    "util_mem": 0,
    "mem_total": 81559 * MIB,
    "mem_used": 0,
    "mem_reserved": 0,
    "temp": 35,
    "temp_slowdown": 87,
    "temp_shutdown": 92,
    "temp_mem_max": 95,
    "temp_gpu_max": 87,
    "power_mw": 70000,
    "power_limit_mw": 700000,
    "sm_clock": 345,
    "mem_clock": 2619,
    "throttle": 0,
    "ecc_mode": True,
    "ecc": [0, 0, 0, 0],  # corrected volatile, uncorrected volatile, corrected aggregate, uncorrected aggregate
    "retired_pending": False,
    "remap": [0, 0, False, False],  # correctable rows, uncorrectable rows, pending, failure
    "mig_mode": False,
    "migs": [],  # {"gi", "ci", "mem_total", "mem_used", "uuid", "profile"}
    "nvlinks": 18,
    "nvlink_down": [],
    "procs": [],  # {"pid", "used" (bytes or None), "gi", "ci"}
    "lost": 0,  # 1: every query says GPU_IS_LOST; 2: so does getting its handle
    "fan": None,
    "unsupported": [],  # feature names that answer NVML_ERROR_NOT_SUPPORTED (see fakenvml.c)
}

TOP_DEFAULTS = {
    "driver": "550.54.15",
    "cuda": 12040,
    "count": None,
    "init_error": 0,
    "smi_error": "",
    "journal": "ok",
    "dmesg": "ok",
    "kmsg": [],  # [unix time, message]
}


def gpu(**values) -> dict:
    """A GPU dict with every key, defaults filled in."""
    unknown = set(values) - set(GPU_DEFAULTS)
    if unknown:
        raise KeyError(f"unknown GPU keys: {sorted(unknown)}")
    out = {k: (list(v) if isinstance(v, list) else v) for k, v in GPU_DEFAULTS.items()}
    out.update(values)
    return out


def _line(key: str, *values: object) -> str:
    text = " ".join(str(v) for v in values)
    if "\n" in text:
        raise ValueError(f"{key}: newline in value")
    return f"{key} {text}".rstrip()


def dump(scenario: dict) -> str:
    """The state file text for a scenario."""
    top = {**TOP_DEFAULTS, **{k: v for k, v in scenario.items() if k != "gpus"}}
    lines = ["# fake NVML state (tests/lab/fakenvml)"]
    lines.append(_line("driver", top["driver"]))
    lines.append(_line("cuda", int(top["cuda"])))
    if top["count"] is not None:
        lines.append(_line("count", int(top["count"])))
    lines.append(_line("init_error", int(top["init_error"])))
    if top["smi_error"]:
        lines.append(_line("smi_error", top["smi_error"]))
    lines.append(_line("journal", top["journal"]))
    lines.append(_line("dmesg", top["dmesg"]))
    for t, msg in top["kmsg"]:
        lines.append(_line("kmsg", repr(float(t)), msg))
    for raw in scenario.get("gpus", []):
        g = gpu(**raw)
        lines.append("gpu")
        lines.append(_line("uuid", g["uuid"]))
        lines.append(_line("name", g["name"]))
        lines.append(_line("pci", g["pci"]))
        lines.append(_line("util", g["util_gpu"], g["util_mem"]))
        lines.append(_line("mem", g["mem_total"], g["mem_used"], g["mem_reserved"]))
        lines.append(
            _line("temp", g["temp"], g["temp_slowdown"], g["temp_shutdown"], g["temp_mem_max"], g["temp_gpu_max"])
        )
        lines.append(_line("power", g["power_mw"], g["power_limit_mw"]))
        lines.append(_line("clocks", g["sm_clock"], g["mem_clock"]))
        lines.append(_line("throttle", hex(g["throttle"])))
        lines.append(_line("ecc_mode", int(bool(g["ecc_mode"]))))
        lines.append(_line("ecc", *(int(v) for v in g["ecc"])))
        lines.append(_line("retired_pending", int(bool(g["retired_pending"]))))
        corr, unc, pending, failure = g["remap"]
        lines.append(_line("remap", int(corr), int(unc), int(bool(pending)), int(bool(failure))))
        lines.append(_line("mig_mode", int(bool(g["mig_mode"]))))
        for m in g["migs"]:
            lines.append(_line("mig", m["gi"], m["ci"], m["mem_total"], m.get("mem_used", 0), m["uuid"], m["profile"]))
        lines.append(_line("nvlinks", int(g["nvlinks"])))
        if g["nvlink_down"]:
            lines.append(_line("nvlink_down", *g["nvlink_down"]))
        for p in g["procs"]:
            used = "na" if p.get("used") is None else int(p["used"])
            gi, ci = p.get("gi"), p.get("ci")
            extra = () if gi is None else (gi, 0 if ci is None else ci)
            lines.append(_line("proc", int(p["pid"]), used, *extra))
        lines.append(_line("lost", int(g["lost"])))
        lines.append(_line("fan", -1 if g["fan"] is None else int(g["fan"])))
        if g["unsupported"]:
            lines.append(_line("unsupported", *g["unsupported"]))
    return "\n".join(lines) + "\n"


def write(path: str | os.PathLike, scenario: dict) -> None:
    """Write atomically (new inode), so a reader never sees half a file and notices the change."""
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(dump(scenario))
    os.replace(tmp, path)


def _ints(value: str) -> list[int]:
    return [int(v) for v in value.split()]


def load(text: str) -> dict:
    """The scenario dict back from state file text (what the python fakes need of it)."""
    top: dict = {**TOP_DEFAULTS, "kmsg": [], "gpus": []}
    g: dict | None = None
    for raw in text.splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        key, _, value = raw.partition(" ")
        if key == "gpu":
            g = gpu()
            top["gpus"].append(g)
            continue
        if g is None:
            if key in ("cuda", "init_error", "count"):
                top[key] = int(value)
            elif key == "kmsg":
                t, _, msg = value.partition(" ")
                top["kmsg"].append([float(t), msg])
            elif key in TOP_DEFAULTS:
                top[key] = value
            continue
        if key in ("uuid", "name", "pci"):
            g[key] = value
        elif key == "util":
            g["util_gpu"], g["util_mem"] = _ints(value)
        elif key == "mem":
            g["mem_total"], g["mem_used"], g["mem_reserved"] = _ints(value)
        elif key == "temp":
            g["temp"], g["temp_slowdown"], g["temp_shutdown"], g["temp_mem_max"], g["temp_gpu_max"] = _ints(value)
        elif key == "power":
            g["power_mw"], g["power_limit_mw"] = _ints(value)
        elif key == "clocks":
            g["sm_clock"], g["mem_clock"] = _ints(value)
        elif key == "throttle":
            g["throttle"] = int(value, 0)
        elif key in ("ecc_mode", "retired_pending", "mig_mode"):
            g[key] = bool(int(value))
        elif key == "ecc":
            g["ecc"] = _ints(value)
        elif key == "remap":
            corr, unc, pending, failure = _ints(value)
            g["remap"] = [corr, unc, bool(pending), bool(failure)]
        elif key == "mig":
            gi, ci, total, used, uuid, profile = value.split()
            g["migs"].append(
                {
                    "gi": int(gi),
                    "ci": int(ci),
                    "mem_total": int(total),
                    "mem_used": int(used),
                    "uuid": uuid,
                    "profile": profile,
                }
            )
        elif key == "nvlinks":
            g["nvlinks"] = int(value)
        elif key == "nvlink_down":
            g["nvlink_down"] = _ints(value)
        elif key == "proc":
            parts = value.split()
            proc = {"pid": int(parts[0]), "used": None if parts[1] == "na" else int(parts[1]), "gi": None, "ci": None}
            if len(parts) >= 4:
                proc["gi"], proc["ci"] = int(parts[2]), int(parts[3])
            g["procs"].append(proc)
        elif key in ("lost",):
            g["lost"] = int(value)
        elif key == "fan":
            g["fan"] = None if int(value) < 0 else int(value)
        elif key == "unsupported":
            g["unsupported"] = value.split()
    return top


def read(path: str | os.PathLike) -> dict:
    with open(path, encoding="utf-8") as fh:
        return load(fh.read())
