"""Provides tests of the fake NVML itself and of the probe's parse functions (kernel log XIDs, cgroups, nvidia-smi CSV) on sample text."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sovtui.sources.probe import gpuprobe as gp
from tests.lab.fakenvml import SCENARIOS, write_state
from tests.lab.fakenvml import state as fake_state
from tests.probe_support import (
    CID,
    POD_UID,
)


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
