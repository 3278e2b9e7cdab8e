"""Provides tests of the probe's resident mode (--serve), its fallbacks (nvidia-smi, no NVML), other Pythons and gpustat."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sovtui.sources.probe import PROBE_PATH, probe_command
from tests.lab.fakenvml import MIB, SCENARIOS, kernel_pci, write_state
from tests.probe_support import (
    GPUSTAT,
    assert_matches,
    probe_scenario,
    run_probe,
)


# ------------------------------------------------------------------------------ --serve
@pytest.mark.nvml
def test_serve_answers_each_request_and_follows_state_changes(fake_nvml, tmp_path):
    state = write_state(tmp_path / "state", SCENARIOS["healthy"]())
    env = fake_nvml.env(state)
    proc = subprocess.Popen(
        [sys.executable, "-u", str(PROBE_PATH), "--serve", "--xid-interval", "3600"],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def ask() -> dict:
            proc.stdin.write("poll\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            assert line.endswith("\n"), proc.stderr.read()
            return json.loads(line)

        first = ask()
        assert_matches(first, SCENARIOS["healthy"]())
        assert first["xids"] == []
        again = [ask() for _ in range(3)]
        assert all(d["backend"] == "nvml" for d in again)
        assert all(d["t"] >= first["t"] for d in again)
        assert max(d["probe_ms"] for d in again) < first["probe_ms"]  # NVML kept, kernel log cached

        changed = SCENARIOS["ecc"]()  # new values and a new XID in the kernel log
        changed["gpus"][1]["temp"] = 83
        write_state(state, changed)
        after = ask()
        assert_matches(after, changed)
        assert after["xids"] == []  # kernel log is read at most every --xid-interval

        gone = SCENARIOS["fell_off_bus"]()
        write_state(state, gone)
        lost = ask()
        assert lost["gpus"][3]["error"] == "GPU is lost"
        # remembered from an earlier poll of this probe: the UI can still say which GPU it was
        assert (lost["gpus"][3]["uuid"], lost["gpus"][3]["pci_bus_id"]) == (
            gone["gpus"][3]["uuid"],
            gone["gpus"][3]["pci"],
        )

        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.nvml
def test_serve_rereads_the_kernel_log_incrementally_and_exits_on_eof(fake_nvml, tmp_path):
    scenario = SCENARIOS["healthy"]()
    state = write_state(tmp_path / "state", scenario)
    proc = subprocess.Popen(
        [sys.executable, str(PROBE_PATH), "--serve", "--xid-interval", "0"],
        env=fake_nvml.env(state),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def ask() -> dict:
            proc.stdin.write("\n")
            proc.stdin.flush()
            return json.loads(proc.stdout.readline())

        assert ask()["xids"] == []
        pci = scenario["gpus"][0]["pci"]
        now = time.time()
        scenario["kmsg"] = [
            [
                now - 1,
                f"NVRM: Xid (PCI:{kernel_pci(pci)}): 13, pid=4242, name=python3, Graphics SM Warp Exception on (GPC 0, TPC 0, SM 0): Out Of Range Address",
            ]
        ]
        write_state(state, scenario)
        xids = ask()["xids"]
        assert [(x["code"], x["pci"]) for x in xids] == [(13, kernel_pci(pci))]
        assert xids[0]["msg"].startswith("Graphics SM Warp Exception")
        scenario["kmsg"].append(
            [
                now,
                f"NVRM: Xid (PCI:{kernel_pci(pci)}): 31, pid=4242, name=python3, Ch 00000008, intr 00000000. MMU Fault",
            ]
        )
        write_state(state, scenario)
        assert [x["code"] for x in ask()["xids"]] == [13, 31]  # merged, no duplicates
        assert [x["code"] for x in ask()["xids"]] == [13, 31]
        proc.stdin.close()
        assert proc.wait(timeout=10) == 0
        assert proc.stdout.read() == ""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.nvml
def test_dmesg_is_the_fallback_kernel_log(fake_nvml, tmp_path):
    scenario = SCENARIOS["fell_off_bus"]()
    scenario["journal"] = "fail"  # a container without a journal: journalctl exits 0 with "No journal files"
    doc = probe_scenario(fake_nvml, tmp_path, scenario)
    assert doc["xid_source"] == "dmesg"
    assert [x["code"] for x in doc["xids"]] == [79]
    assert abs(doc["xids"][0]["t"] - scenario["kmsg"][-1][0]) < 2  # boot time + dmesg's seconds since boot
    scenario["dmesg"] = "fail"
    doc = probe_scenario(fake_nvml, tmp_path, scenario)
    assert (doc["xid_source"], doc["xids"], doc["backend"]) == ("", [], "nvml")
    assert doc["xid_error"] == "No journal files were found.; dmesg: read kernel buffer failed: Operation not permitted"


# ------------------------------------------------------------------------------ fallbacks
NO_PYNVML = [sys.executable, "-I", "-S"]  # no site-packages: pynvml really is absent


@pytest.mark.nvml
@pytest.mark.parametrize("name", ["healthy", "thermal", "ecc", "unsupported", "fell_off_bus"])
def test_nvidia_smi_fallback_when_pynvml_is_absent(fake_nvml, tmp_path, name):
    scenario = SCENARIOS[name]()
    smi = probe_scenario(fake_nvml, tmp_path, scenario, "--no-xids", python=NO_PYNVML)
    nvml = probe_scenario(fake_nvml, tmp_path, scenario, "--no-xids")
    assert smi["backend"] == "nvidia-smi" and smi["error"] == ""
    assert smi["nvml_error"].startswith("pynvml not importable")
    assert (smi["driver"], smi["gpu_count"], smi["cuda"]) == (nvml["driver"], nvml["gpu_count"], "")
    for a, b, g in zip(smi["gpus"], nvml["gpus"], scenario["gpus"], strict=True):
        if b["error"]:
            assert a["error"] == b["error"] == "GPU is lost"
            assert a["pci_bus_id"] == g["pci"]
            continue
        for key in (
            "index",
            "uuid",
            "name",
            "pci_bus_id",
            "util_gpu",
            "util_mem",
            "temp_c",
            "sm_clock_mhz",
            "mem_clock_mhz",
            "power_limit_w",
            "throttle_reasons",
            "ecc_mode",
            "ecc_corrected_volatile",
            "ecc_uncorrected_volatile",
            "ecc_uncorrected_aggregate",
            "retired_pages_pending",
            "mig_mode",
            "error",
        ):
            assert a[key] == b[key], (key, a[key], b[key])
        assert a["mem_used_mib"] == (g["mem_used"] // MIB) and a["mem_total_mib"] == g["mem_total"] // MIB
        assert a["power_w"] == (None if b["power_w"] is None else round(b["power_w"], 2))
        # what nvidia-smi cannot tell in this query
        assert a["temp_slowdown_c"] is a["row_remap_pending"] is a["nvlink"] is None and a["processes"] == []


@pytest.mark.nvml
def test_backend_none_says_why(fake_nvml, tmp_path):
    doc = probe_scenario(fake_nvml, tmp_path, SCENARIOS["no_driver"](), "--no-xids")
    assert (doc["backend"], doc["gpu_count"], doc["gpus"]) == ("none", 0, [])
    assert "NVML init failed: Driver Not Loaded" in doc["error"]
    assert "couldn't communicate with the NVIDIA driver" in doc["error"]
    state = write_state(tmp_path / "state", SCENARIOS["healthy"]())
    env = fake_nvml.env(state, PATH="/nonexistent")
    doc = run_probe(env, "--no-xids", python=NO_PYNVML)
    assert doc["backend"] == "none"
    assert doc["error"] == "nvml: pynvml not importable (No module named 'pynvml'); nvidia-smi: nvidia-smi: not found"


@pytest.mark.nvml
def test_nvml_library_missing_falls_back_to_nvidia_smi(fake_nvml, tmp_path):
    state = write_state(tmp_path / "state", SCENARIOS["healthy"]())
    env = fake_nvml.env(state)
    env["LD_LIBRARY_PATH"] = str(tmp_path)  # pynvml is there, libnvidia-ml.so.1 is not
    doc = run_probe(env, "--no-xids")
    assert doc["backend"] == "nvidia-smi" and doc["gpu_count"] == 8
    assert doc["nvml_error"] == "NVML init failed: NVML Shared Library Not Found"


# ------------------------------------------------------------------------------ other pythons, gpustat
def _python38() -> str | None:
    """A real Python 3.8 interpreter (not a pyenv shim that may refuse to run it), if this machine has one."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [str(p) for p in sorted(pyenv.glob("3.8*/bin/python3.8"))]
    candidates += [p for p in (shutil.which("python3.8"),) if p and "/shims/" not in p]
    for candidate in candidates:
        done = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True
        )
        if done.returncode == 0 and done.stdout.strip() == "(3, 8)":
            return candidate
    return None


@pytest.mark.nvml
def test_resident_probe_command_runs_on_python38(fake_nvml, tmp_path):
    """The exact shell command sovtui sends over SSH, run by an old host python with nvidia-ml-py on its path."""
    python38 = _python38()
    if python38 is None:
        pytest.skip("no python3.8 on this machine (the grammar check above still covers 3.8)")
    import pynvml

    site = tmp_path / "site"
    site.mkdir()
    shutil.copy(pynvml.__file__, site / "pynvml.py")
    scenario = SCENARIOS["mig"]()
    state = write_state(tmp_path / "state", scenario)
    env = fake_nvml.env(state, PYTHONPATH=str(site))
    proc = subprocess.Popen(
        ["/bin/sh", "-c", probe_command(python38)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        out, err = proc.communicate("poll\npoll\n", timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    docs = [json.loads(line) for line in out.splitlines()]
    assert len(docs) == 2
    for doc in docs:
        assert_matches(doc, scenario)


def _gpustat(env: dict[str, str]) -> dict:
    done = subprocess.run([str(GPUSTAT), "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.nvml
@pytest.mark.parametrize("name", ["healthy", "thermal", "mig", "processes"])
def test_probe_agrees_with_gpustat(fake_nvml, tmp_path, name):
    if not GPUSTAT.exists():
        pytest.fail(f"gpustat is a dev dependency but {GPUSTAT} is missing: pip install -e '.[dev]'")
    scenario = SCENARIOS[name]()
    state = write_state(tmp_path / "state", scenario)
    env = fake_nvml.env(state)
    ours = run_probe(env, "--no-xids")
    theirs = _gpustat(env)
    assert theirs["driver_version"] == ours["driver"]
    assert len(theirs["gpus"]) == len(ours["gpus"]) == 8
    for a, b in zip(ours["gpus"], theirs["gpus"], strict=True):
        assert (a["index"], a["uuid"], a["name"]) == (b["index"], b["uuid"], b["name"])
        assert (a["util_gpu"], a["temp_c"]) == (b["utilization.gpu"], b["temperature.gpu"])
        # gpustat floors to whole MiB and whole watts
        assert (int(a["mem_used_mib"]), int(a["mem_total_mib"])) == (b["memory.used"], b["memory.total"])
        assert (int(a["power_w"]), int(a["power_limit_w"])) == (b["power.draw"], b["enforced.power.limit"])
        assert sorted(p["pid"] for p in a["processes"]) == sorted(p["pid"] for p in b["processes"] or [])


@pytest.mark.nvml
def test_nvitop_agrees_if_installed(fake_nvml, tmp_path):
    nvitop = shutil.which("nvitop") or (
        str(Path(sys.executable).with_name("nvitop")) if Path(sys.executable).with_name("nvitop").exists() else None
    )
    if nvitop is None:
        pytest.skip("nvitop is not installed (optional)")
    scenario = SCENARIOS["healthy"]()
    state = write_state(tmp_path / "state", scenario)
    done = subprocess.run([nvitop, "--once"], env=fake_nvml.env(state), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "H100" in done.stdout
