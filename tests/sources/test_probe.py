"""Provides tests of the GPU host probe against a fake libnvidia-ml.so.1 loaded by the real nvidia-ml-py.

Every scenario runs the probe as its own process (``LD_LIBRARY_PATH`` + ``FAKE_NVML_STATE``) and
compares its JSON with the scenario's known values; gpustat, run on the same fake host, must agree.
The parse functions (kernel log XIDs, cgroups, nvidia-smi CSV) are unit-tested on sample text.
"""

from __future__ import annotations

import ast
import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sovtui.model.health import gpu_verdict
from sovtui.model.types import Gpu, Health
from sovtui.sources.probe import PROBE_PATH, probe_command, probe_source
from sovtui.sources.probe import gpuprobe as gp
from tests.lab.fakenvml import MIB, SCENARIOS, build_fake_nvml, fake_env, kernel_pci, processes, write_state
from tests.lab.fakenvml import state as fake_state
from tests.lab.procs import SKIP_ENV, require_binary, skipped_components

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


@pytest.fixture(scope="session")
def fake_nvml(lab_dir) -> FakeNvml:
    """The fake NVML, compiled once per session with gcc."""
    if "nvml" in skipped_components():
        pytest.skip(f"fake NVML opted out ({SKIP_ENV}={os.environ.get(SKIP_ENV)})")
    gcc = require_binary("gcc", "nvml")
    libdir = Path(lab_dir) / "fakenvml"
    build_fake_nvml(libdir, gcc=gcc)
    return FakeNvml(libdir)


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


# ------------------------------------------------------------------------------ the probe's program text
def test_probe_is_python38_stdlib_and_pynvml_only():
    source = probe_source()
    tree = ast.parse(source, feature_version=(3, 8))
    assert ast.get_docstring(tree).startswith("Provides ")
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module != "__future__", "the probe must stand alone"
            imported.add(node.module.split(".")[0])
    assert imported - set(sys.stdlib_module_names) == {"pynvml"}
    # APIs newer than 3.8 that the grammar check above cannot see
    for newer in (".removeprefix(", ".removesuffix(", "functools.cache(", "@cache", "zip(strict", "math.lcm"):
        assert newer not in source, newer


def test_probe_command_carries_the_source_and_keeps_stdin_free():
    cmd = probe_command("/opt/py/bin/python3")
    argv = shlex.split(cmd)
    assert argv[:3] == ["/opt/py/bin/python3", "-u", "-c"]
    assert argv[-1] == "--serve"
    payload = re.search(r"b64decode\('([A-Za-z0-9+/=]+)'\)", argv[3]).group(1)
    assert zlib.decompress(base64.b64decode(payload)).decode() == probe_source()
    assert shlex.split(probe_command("python3", "--once"))[-1] == "--once"
    assert len(cmd) < 32_000  # far below ARG_MAX and any sshd limit


# ------------------------------------------------------------------------------ scenarios on the fake NVML
SCENARIO_NAMES = ["healthy", "ecc", "row_remap", "thermal", "mig", "nvlink", "unsupported", "fell_off_bus_gone"]


@pytest.mark.nvml
@pytest.mark.parametrize("name", SCENARIO_NAMES)
def test_probe_reports_the_fake_hosts_values(fake_nvml, tmp_path, name):
    scenario = SCENARIOS[name]()
    doc = probe_scenario(fake_nvml, tmp_path, scenario)
    assert_matches(doc, scenario)
    assert doc["xid_source"] == "journalctl"
    want = [(kernel_pci_of(line), code_of(line)) for _, line in scenario.get("kmsg", []) if "Xid" in line]
    assert [(x["pci"], x["code"]) for x in doc["xids"]] == want


def kernel_pci_of(line: str) -> str:
    return re.search(r"PCI:([0-9a-f:]+)\)", line).group(1)


def code_of(line: str) -> int:
    return int(re.search(r"\): (\d+),", line).group(1))


@pytest.mark.nvml
def test_health_rules_flag_each_scenario(fake_nvml, tmp_path):
    """The probe's numbers carry each problem through to the health verdict the UI shows."""
    cases = {
        "healthy": {},
        "ecc": {2: (Health.CRIT, "3 uncorrected ECC errors")},
        "row_remap": {5: (Health.WARN, "row remap pending"), 6: (Health.CRIT, "row remap failed: replace GPU")},
        "thermal": {6: (Health.WARN, "throttled: sw thermal, hw thermal")},
        "nvlink": {4: (Health.WARN, "2 NVLink links down")},
        "fell_off_bus": {3: (Health.CRIT, "GPU missing")},
    }
    for name, bad in cases.items():
        doc = probe_scenario(fake_nvml, tmp_path, SCENARIOS[name](), "--no-xids")
        for g in doc["gpus"]:
            verdict = gpu_verdict(as_model_gpu(doc, g))
            level, reason = bad.get(g["index"], (Health.OK, ""))
            assert verdict.level == level, (name, g["index"], verdict)
            if reason:
                assert verdict.reasons[0].startswith(reason), (name, verdict.reasons)


@pytest.mark.nvml
@pytest.mark.parametrize("mode", ["lost", "handle"])
def test_gpu_that_fell_off_the_bus_is_reported_lost(fake_nvml, tmp_path, mode):
    scenario = SCENARIOS["fell_off_bus" if mode == "lost" else "fell_off_bus_handle"]()
    doc = probe_scenario(fake_nvml, tmp_path, scenario)
    assert doc["backend"] == "nvml" and doc["gpu_count"] == 8
    lost = doc["gpus"][3]
    assert lost["error"] == "GPU is lost"
    assert lost["temp_c"] is None and lost["util_gpu"] is None and lost["processes"] == []
    for g in doc["gpus"][:3] + doc["gpus"][4:]:
        assert g["error"] == "" and g["temp_c"] is not None
    xid = doc["xids"][-1]
    assert (xid["code"], xid["pci"], xid["msg"]) == (
        79,
        kernel_pci(scenario["gpus"][3]["pci"]),
        "GPU has fallen off the bus.",
    )
    assert abs(xid["t"] - scenario["kmsg"][-1][0]) < 1e-3


@pytest.mark.nvml
def test_gone_gpu_lowers_the_enumerated_count(fake_nvml, tmp_path):
    doc = probe_scenario(fake_nvml, tmp_path, SCENARIOS["fell_off_bus_gone"](), "--no-xids")
    assert doc["gpu_count"] == 7
    assert [g["index"] for g in doc["gpus"]] == list(range(7))
    assert SCENARIOS["healthy"]()["gpus"][3]["uuid"] not in {g["uuid"] for g in doc["gpus"]}


@pytest.mark.nvml
def test_running_processes_map_to_names(fake_nvml, tmp_path):
    sleepers = [subprocess.Popen(["sleep", "60"]) for _ in range(3)]
    try:
        pids = [p.pid for p in sleepers]
        doc = probe_scenario(fake_nvml, tmp_path, processes(pids), "--no-xids")
    finally:
        for p in sleepers:
            p.kill()
            p.wait()
    got = {p["pid"]: p for g in doc["gpus"] for p in g["processes"]}
    assert sorted(got) == sorted(pids)
    assert [len(g["processes"]) for g in doc["gpus"]] == [1, 1, 1, 0, 0, 0, 0, 0]
    assert got[pids[0]]["used_mib"] == 2048.0 and got[pids[1]]["used_mib"] == 2049.0
    assert got[pids[2]]["used_mib"] is None  # NVML_VALUE_NOT_AVAILABLE
    for p in got.values():
        assert p["name"] == "sleep"
        assert set(p) == {"pid", "used_mib", "name", "pod", "container", "slurm_job"}


POD_UID = "8f1c2d3e-4b5a-4c6d-9e8f-0a1b2c3d4e5f"
CID = "3b1f" + "a" * 60


def _fake_proc(root: Path, pid: int, comm: str, cgroup: str) -> None:
    d = root / str(pid)
    d.mkdir(parents=True)
    (d / "comm").write_text(comm + "\n")
    (d / "cgroup").write_text(cgroup)


@pytest.mark.nvml
def test_processes_map_to_pods_and_slurm_jobs(fake_nvml, tmp_path):
    proc, pods, containers = tmp_path / "proc", tmp_path / "pods", tmp_path / "containers"
    _fake_proc(
        proc,
        4242,
        "python3",
        "0::/kubepods.slice/kubepods-burstable.slice/"
        f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n",
    )
    _fake_proc(
        proc,
        4243,
        "pt_main_thread",
        "12:memory:/kubepods/besteffort/pod11111111-2222-3333-4444-555555555555/" + "c" * 64 + "\n0::/\n",
    )
    _fake_proc(proc, 4244, "torchrun", "0::/system.slice/slurmstepd.scope/job_81234/step_0/user/task_0\n")
    (pods / f"ml-team_trainer-0_{POD_UID}").mkdir(parents=True)
    containers.mkdir()
    (containers / f"trainer-0_ml-team_pytorch-{CID}.log").write_text("")
    scenario = processes([4242, 4243, 4244, 4245])
    scenario["gpus"][3]["procs"][0]["used"] = 10 * MIB
    doc = probe_scenario(
        fake_nvml,
        tmp_path,
        scenario,
        "--no-xids",
        "--proc-root",
        str(proc),
        "--pods-dir",
        str(pods),
        "--containers-dir",
        str(containers),
    )
    got = {p["pid"]: p for g in doc["gpus"] for p in g["processes"]}
    assert got[4242] == {
        "pid": 4242,
        "used_mib": 2048.0,
        "name": "python3",
        "pod": "ml-team/trainer-0",
        "container": "pytorch",
        "slurm_job": "",
    }
    assert (got[4243]["pod"], got[4243]["container"]) == ("11111111-2222-3333-4444-555555555555", "c" * 12)
    assert (got[4244]["name"], got[4244]["pod"], got[4244]["slurm_job"]) == ("torchrun", "", "81234")
    assert got[4245] == {"pid": 4245, "used_mib": 10.0, "name": "", "pod": "", "container": "", "slurm_job": ""}


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


# ------------------------------------------------------------------------------ the fake itself
@pytest.mark.nvml
def test_fake_nvml_is_thread_safe_while_the_state_changes(fake_nvml, tmp_path):
    a, b = SCENARIOS["healthy"](), SCENARIOS["healthy"]()
    for i, g in enumerate(b["gpus"]):
        g["temp"] = 70 + i
        g["util_gpu"] = i
    write_state(tmp_path / "a", a)
    write_state(tmp_path / "b", b)
    state = tmp_path / "state"
    shutil.copy(tmp_path / "a", state)
    script = f"""
import os, shutil, threading, pynvml
pynvml.nvmlInit()
bad, seen, stop = [], set(), threading.Event()
def worker():
    hs = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(8)]
    for _ in range(400):
        for i, h in enumerate(hs):
            t = pynvml.nvmlDeviceGetTemperature(h, 0)
            if t not in (55 + i, 70 + i):
                bad.append((i, t))
            seen.add(t - i)
            pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
def flipper():
    k = 0
    while not stop.is_set():
        k += 1
        shutil.copy({str(tmp_path)!r} + ("/a" if k % 2 else "/b"), {str(state)!r} + ".tmp")
        os.replace({str(state)!r} + ".tmp", {str(state)!r})
ts = [threading.Thread(target=worker) for _ in range(4)]
f = threading.Thread(target=flipper)
f.start()
[t.start() for t in ts]
[t.join() for t in ts]
stop.set(); f.join()
pynvml.nvmlShutdown()
print(len(bad), bad[:5], sorted(seen))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], env=fake_nvml.env(state), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0 [] [55, 70]"  # no torn values, and both states were seen


def test_state_file_round_trips():
    for name, build in SCENARIOS.items():
        scenario = build()
        back = fake_state.load(fake_state.dump(scenario))
        for got, want in zip(back["gpus"], scenario["gpus"], strict=True):
            full = fake_state.gpu(**want)
            for proc in full["procs"]:
                proc.setdefault("gi", None)
                proc.setdefault("ci", None)
            assert got == full, name


# ------------------------------------------------------------------------------ parse functions
KERNEL_LOG = """\
1712345678.123456 gpu-07 kernel: NVRM: Xid (PCI:0000:18:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.
1712345679.000001 gpu-07 kernel: NVRM: GPU at PCI:0000:18:00: GPU-5f0c0000-8d1e-4b2a-9c3f-000000000000
1712345680.5 gpu-07 kernel: NVRM: Xid (PCI:0000:ba:00): 48, pid=1234, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0.
1712345681.25 gpu-07 kernel: NVRM: Xid (PCI:0000:5d:00): 63, Row Remapper: New row (0x00000000000b7a0b) marked for remapping, reset gpu to activate.
1712345682.0 gpu-07 kernel: NVRM: Xid (PCI:0000:2a:00): 31, pid=77, name=pt_main_thread, Ch 00000008, intr 00000000. MMU Fault: ENGINE GRAPHICS
1712345683.0 gpu-07 kernel: NVRM: Xid (PCI:0000:db:00): 119, pid=2345, name=python, Timeout after 6s of waiting for RPC response from GPU7 GSP! Expected function 76 (GSP_RM_CONTROL).
1712345684.0 gpu-07 kernel: nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 45 egress non-posted PRIV error
"""


def test_parse_journalctl_xids():
    xids = gp.parse_xids(KERNEL_LOG)
    assert [(x["t"], x["pci"], x["code"]) for x in xids] == [
        (1712345678.123456, "0000:18:00", 79),
        (1712345680.5, "0000:ba:00", 48),
        (1712345681.25, "0000:5d:00", 63),
        (1712345682.0, "0000:2a:00", 31),
        (1712345683.0, "0000:db:00", 119),
    ]
    assert [x["msg"] for x in xids][:4] == [
        "GPU has fallen off the bus.",
        "An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 0, subpartition 0.",
        "Row Remapper: New row (0x00000000000b7a0b) marked for remapping, reset gpu to activate.",
        "intr 00000000. MMU Fault: ENGINE GRAPHICS",
    ]


def test_parse_dmesg_xids_uses_boot_time():
    text = "[ 1234.500000] NVRM: Xid (PCI:0000:18:00): 79, pid=1, GPU has fallen off the bus.\n[    2.0] usb 1-1: new device\n"
    (xid,) = gp.parse_xids(text, boot_time=1_700_000_000.0)
    assert xid == {"t": 1_700_001_234.5, "pci": "0000:18:00", "code": 79, "msg": "GPU has fallen off the bus."}
    assert gp.parse_xids(text)[0]["t"] is None
    assert gp.parse_xid_line("NVRM: Xid (PCI:0000:18:00.0): 13, Graphics Exception")["code"] == 13


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_xid_parsing_never_raises(text):
    for xid in gp.parse_xids(text, boot_time=1.0):
        assert isinstance(xid["code"], int) and isinstance(xid["pci"], str)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdef:,.() =-[]x\n"), st.text())
def test_xid_lines_with_garbage_never_raise(middle, tail):
    gp.parse_xids(
        f"[1.0] NVRM: Xid (PCI:{middle}): {middle}{tail}\n1712345678.1 h kernel: NVRM: Xid (PCI:0000:{middle}", 0.0
    )


CGROUPS = {
    "k8s cgroup v2, systemd driver": (
        f"0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{CID}.scope\n",
        {"pod_uid": POD_UID, "container_id": CID, "slurm_job": ""},
    ),
    "k8s cgroup v1, cgroupfs driver": (
        f"12:pids:/kubepods/besteffort/pod{POD_UID}/{CID}\n11:memory:/kubepods/besteffort/pod{POD_UID}/{CID}\n0::/\n",
        {"pod_uid": POD_UID, "container_id": CID, "slurm_job": ""},
    ),
    "k8s guaranteed pod, crio": (
        f"0::/kubepods.slice/kubepods-pod{POD_UID.replace('-', '_')}.slice/crio-{CID}.scope\n",
        {"pod_uid": POD_UID, "container_id": CID, "slurm_job": ""},
    ),
    "k8s pod sandbox level only": (
        f"0::/kubepods/burstable/pod{POD_UID}\n",
        {"pod_uid": POD_UID, "container_id": "", "slurm_job": ""},
    ),
    "slurm cgroup v1": (
        "7:devices:/slurm/uid_1000/job_4711/step_0/task_0\n4:memory:/slurm/uid_1000/job_4711/step_0/task_0\n",
        {"pod_uid": "", "container_id": "", "slurm_job": "4711"},
    ),
    "slurm cgroup v2": (
        "0::/system.slice/slurmstepd.scope/job_81234/step_batch/user/task_0\n",
        {"pod_uid": "", "container_id": "", "slurm_job": "81234"},
    ),
    "login session": (
        "0::/user.slice/user-1000.slice/session-3.scope\n",
        {"pod_uid": "", "container_id": "", "slurm_job": ""},
    ),
    "docker": (f"0::/system.slice/docker-{CID}.scope\n", {"pod_uid": "", "container_id": "", "slurm_job": ""}),
    "not slurm, a path that says job": (
        "0::/user.slice/job_12/x\n",
        {"pod_uid": "", "container_id": "", "slurm_job": ""},
    ),
    "empty": ("", {"pod_uid": "", "container_id": "", "slurm_job": ""}),
}


@pytest.mark.parametrize("case", sorted(CGROUPS))
def test_parse_cgroup(case):
    text, want = CGROUPS[case]
    assert gp.parse_cgroup(text) == want


@given(st.text())
def test_parse_cgroup_never_raises(text):
    assert set(gp.parse_cgroup(text)) == {"pod_uid", "container_id", "slurm_job"}


def test_parse_kubelet_log_names():
    assert gp.parse_pod_log_dir(f"ml-team_trainer-0_{POD_UID}") == ("ml-team", "trainer-0", POD_UID)
    assert gp.parse_pod_log_dir("not-a-pod") is None
    assert gp.parse_container_log_name(f"trainer-0_ml-team_py-torch-{CID}.log") == ("py-torch", CID)
    assert gp.parse_container_log_name(f"trainer-0_ml-team_pytorch-{CID[:12]}.log") is None


def test_pod_index_resolves_and_falls_back_to_the_uid(tmp_path):
    (tmp_path / "pods" / f"ns1_pod-a_{POD_UID}").mkdir(parents=True)
    index = gp.PodIndex(str(tmp_path / "pods"), str(tmp_path / "missing"))
    assert index.pod(POD_UID, 0.0) == "ns1/pod-a"
    assert index.pod("0000", 1.0) == "0000"
    assert index.container(CID, 2.0) == CID[:12]


SMI_FIELDS_ORDER = ", ".join(gp.SMI_FIELDS)


def test_parse_nvidia_smi_csv():
    text = (
        "0, GPU-aaa, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 97, 40, 1234, 81559, 61, 312.54, 700.00, 1980, 2619, "
        "Enabled, 0, 2, 2, [N/A], 0x0000000000000060, Disabled, 550.54.15\n"
        "1, GPU-bbb, Tesla T4, 00000000:3B:00.0, [Not Supported], 0, 5, 15360, 40, [N/A], [N/A], 300, 5000, "
        "Disabled, [N/A], [N/A], [N/A], No, 0x0000000000000001, [N/A], 550.54.15\n"
        "Unable to determine the device handle for GPU0000:5D:00.0: GPU is lost.  Reboot the system to recover this GPU\n"
        "Unable to determine the device handle for GPU 0000:9A:00.0: Unknown Error\n"
    )
    gpus, driver, other = gp.parse_smi(text)
    assert driver == "550.54.15" and other == []
    a, b, lost, unknown = gpus
    assert (a["util_gpu"], a["mem_used_mib"], a["power_w"], a["ecc_mode"], a["ecc_uncorrected_volatile"]) == (
        97,
        1234.0,
        312.54,
        True,
        2,
    )
    assert (a["throttle_reasons"], a["retired_pages_pending"], a["mig_mode"]) == (
        ["sw_thermal", "hw_thermal"],
        None,
        False,
    )
    assert (b["util_gpu"], b["power_w"], b["ecc_mode"], b["ecc_corrected_volatile"], b["retired_pages_pending"]) == (
        None,
        None,
        False,
        None,
        False,
    )
    assert (b["throttle_reasons"], b["mig_mode"]) == (["gpu_idle"], None)
    assert (lost["index"], lost["pci_bus_id"], lost["error"]) == (2, "00000000:5D:00.0", "GPU is lost")
    assert (unknown["index"], unknown["error"]) == (3, "Unknown Error")


def test_decode_throttle_and_cuda_version():
    assert gp.decode_throttle(0) == []
    assert gp.decode_throttle(None) is None
    assert gp.decode_throttle(0x1FF) == [name for _, name in gp.THROTTLE_BITS]
    assert gp.decode_throttle(0x20 | 0x1000) == ["sw_thermal", "0x1000"]
    assert gp.cuda_version_text(12040) == "12.4"
    assert gp.cuda_version_text(11080) == "11.8"
    assert gp.cuda_version_text(0) == ""


def test_kernel_log_is_cached_between_reads(monkeypatch):
    calls = []

    def fake_run(argv, timeout):
        calls.append(argv)
        assert timeout == gp.KERNEL_LOG_TIMEOUT_S
        return 0, "1712345678.5 h kernel: NVRM: Xid (PCI:0000:18:00): 79, GPU has fallen off the bus.\n", ""

    monkeypatch.setattr(gp, "_run", fake_run)
    t0 = 1712345678.0
    log = gp.KernelLog(interval=30, window=3600)
    assert [x["code"] for x in log.poll(t0 + 10)] == [79]
    assert calls[0][-3:] == ["--since", "-1h", "--no-pager"]
    assert [x["code"] for x in log.poll(t0 + 20)] == [79] and len(calls) == 1  # cached
    log.poll(t0 + 41)
    assert len(calls) == 2 and calls[1][-3:-1] == ["--since", f"@{int(t0 + 10 - gp.JOURNAL_OVERLAP_S)}"]  # incremental
    assert len(log.events) == 1  # the same event read twice is kept once
    assert log.poll(t0 + 3700) == [] and len(calls) == 3  # older than the window


def test_resident_probe_keeps_answering_when_a_poll_crashes():
    class Broken:
        host = "h"

        def poll(self):
            raise RuntimeError("boom")

    import io

    out = io.StringIO()
    gp.serve(Broken(), io.StringIO("poll\npoll\n"), out)
    docs = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(docs) == 2 and docs[0]["backend"] == "none" and docs[0]["error"] == "probe failed: RuntimeError: boom"


def test_serve_mode_loop_is_line_per_request():
    """A threaded reader sees each answer before the next request is sent (no buffering between them)."""
    r_req, w_req = os.pipe()
    r_out, w_out = os.pipe()

    class Echo:
        host = "h"
        n = 0

        def poll(self):
            self.n += 1
            return {"n": self.n}

    with os.fdopen(r_req) as req_in, os.fdopen(w_out, "w") as out:
        t = threading.Thread(target=gp.serve, args=(Echo(), req_in, out))
        t.start()
        with os.fdopen(w_req, "w") as req, os.fdopen(r_out) as answers:
            for i in (1, 2, 3):
                req.write("poll\n")
                req.flush()
                assert json.loads(answers.readline()) == {"n": i}
            req.close()
            t.join(timeout=10)
            assert not t.is_alive()
