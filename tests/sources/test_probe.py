"""Provides tests of the GPU host probe on a fake libnvidia-ml.so.1 loaded by the real nvidia-ml-py: its program text and every scenario, compared with the scenario's known values (gpustat must agree)."""

from __future__ import annotations

import ast
import base64
import re
import shlex
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from sovtui.model.health import gpu_verdict
from sovtui.model.types import Health
from sovtui.sources.probe import probe_command, probe_source
from tests.lab.fakenvml import MIB, SCENARIOS, kernel_pci, processes
from tests.probe_support import (
    CID,
    POD_UID,
    as_model_gpu,
    assert_matches,
    probe_scenario,
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
