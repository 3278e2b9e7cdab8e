"""Provides what the probe tests share: the fake NVML's environment, running the probe, and what it must say."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sovtui.model.types import Gpu
from sovtui.sources.probe import PROBE_PATH
from sovtui.sources.probe import gpuprobe as gp
from tests.lab.fakenvml import MIB, fake_env, write_state
from tests.lab.fakenvml import state as fake_state

GPUSTAT = Path(sys.executable).with_name("gpustat")


THROTTLE_NAMES = {0x4: "sw_power_cap", 0x20: "sw_thermal", 0x40: "hw_thermal"}


# ------------------------------------------------------------------------------ the fake host
@dataclass
class FakeNvml:
    """The built fake library (``libdir/libnvidia-ml.so.1``) and its command-line fakes (``libdir/bin``)."""

    libdir: Path

    def env(self, state_path: Path, **extra: str) -> dict[str, str]:
        env = fake_env(self.libdir, state_path)
        env.pop("PYTHONPATH", None)
        env.update(extra)
        return env


def run_probe(env: dict[str, str], *args: str, python: list[str] | None = None, timeout: float = 60) -> dict:
    argv = [*(python or [sys.executable]), str(PROBE_PATH), "--once", *args]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1, done.stdout
    return json.loads(done.stdout)


def probe_scenario(fake: FakeNvml, tmp_path: Path, scenario: dict, *args: str, python: list[str] | None = None) -> dict:
    state = write_state(tmp_path / "state", scenario)
    return run_probe(fake.env(state), *args, python=python)


# ------------------------------------------------------------------------------ what the probe must say
def expected_gpu(g: dict, index: int) -> dict:
    """The probe's entry for a fake GPU, worked out from the scenario (independently of the probe's code)."""
    if g["lost"]:
        return {"index": index, "error": "GPU is lost"}
    off = set(g["unsupported"])
    ecc_on = "ecc" not in off and g["ecc_mode"]
    cv, uv, ca, ua = g["ecc"]
    _, _, remap_pending, remap_failure = g["remap"]
    return {
        "index": index,
        "uuid": g["uuid"],
        "name": g["name"],
        "pci_bus_id": g["pci"],
        "util_gpu": g["util_gpu"],
        "util_mem": g["util_mem"],
        "mem_used_mib": round(g["mem_used"] / MIB, 3),
        "mem_total_mib": round(g["mem_total"] / MIB, 3),
        "temp_c": g["temp"],
        "temp_slowdown_c": None if "temp_threshold" in off else g["temp_slowdown"],
        "temp_shutdown_c": None if "temp_threshold" in off else g["temp_shutdown"],
        "power_w": None if "power" in off else g["power_mw"] / 1000,
        "power_limit_w": None if "power_limit" in off else g["power_limit_mw"] / 1000,
        "sm_clock_mhz": g["sm_clock"],
        "mem_clock_mhz": g["mem_clock"],
        "throttle_reasons": None
        if "throttle" in off
        else [THROTTLE_NAMES[b] for b in sorted(THROTTLE_NAMES) if g["throttle"] & b],
        "ecc_mode": None if "ecc" in off else bool(g["ecc_mode"]),
        "ecc_corrected_volatile": cv if ecc_on else None,
        "ecc_uncorrected_volatile": uv if ecc_on else None,
        "ecc_corrected_aggregate": ca if ecc_on else None,
        "ecc_uncorrected_aggregate": ua if ecc_on else None,
        "retired_pages_pending": None if "retired_pages" in off else bool(g["retired_pending"]),
        "row_remap_pending": None if "remap" in off else bool(remap_pending),
        "row_remap_failure": None if "remap" in off else bool(remap_failure),
        "mig_mode": None if "mig" in off else bool(g["mig_mode"]),
        "mig_instances": [
            {
                "gi": m["gi"],
                "ci": m["ci"],
                "profile": m["profile"],
                "uuid": m["uuid"],
                "mem_total_mib": round(m["mem_total"] / MIB, 3),
            }
            for m in (g["migs"] if g["mig_mode"] else [])
        ],
        "nvlink": None
        if ("nvlink" in off or not g["nvlinks"])
        else [{"link": k, "active": k not in g["nvlink_down"]} for k in range(g["nvlinks"])],
        "error": "",
    }


def assert_matches(doc: dict, scenario: dict) -> None:
    gpus = scenario["gpus"]
    count = scenario.get("count") or len(gpus)
    assert doc["v"] == 1
    assert doc["backend"] == "nvml", doc["error"] or doc["nvml_error"]
    assert doc["error"] == ""
    assert doc["driver"] == scenario.get("driver", "550.54.15")
    cuda = scenario.get("cuda", 12040)
    assert doc["cuda"] == f"{cuda // 1000}.{cuda % 1000 // 10}"
    assert doc["gpu_count"] == count == len(doc["gpus"])
    assert isinstance(doc["probe_ms"], float) and doc["probe_ms"] > 0
    assert abs(doc["t"] - time.time()) < 120
    for index, (got, g) in enumerate(zip(doc["gpus"], gpus[:count], strict=True)):
        want = expected_gpu(fake_state.gpu(**g), index)
        assert set(gp.GPU_FIELDS) == set(got), f"GPU {index}: fields differ"
        for key, value in want.items():
            assert got[key] == value, f"GPU {index} {key}: probe says {got[key]!r}, the fake host has {value!r}"


def as_model_gpu(doc: dict, g: dict) -> Gpu:
    """Enough of the sovtui model from one probe GPU entry to ask the health rules about it."""
    down = None if g["nvlink"] is None else sum(not link["active"] for link in g["nvlink"])
    return Gpu(
        host=doc["host"],
        index=g["index"],
        uuid=g["uuid"],
        temp_c=g["temp_c"],
        temp_slowdown_c=g["temp_slowdown_c"],
        temp_shutdown_c=g["temp_shutdown_c"],
        ecc_uncorrected_volatile=g["ecc_uncorrected_volatile"],
        row_remap_pending=g["row_remap_pending"],
        row_remap_failure=g["row_remap_failure"],
        retired_pages_pending=g["retired_pages_pending"],
        throttle_reasons=tuple(g["throttle_reasons"] or ()),
        nvlink_down=down,
        error=g["error"],
        lost=g["error"] == "GPU is lost",
    )


POD_UID = "8f1c2d3e-4b5a-4c6d-9e8f-0a1b2c3d4e5f"


CID = "3b1f" + "a" * 60
