"""Provides tests of reading the probe's answers into GPUs and hosts, without SSH."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sovtui.config import SiteConfig, SshConfig
from sovtui.model.view import fuse_gpus
from sovtui.sources.hosts import (
    HostMemory,
    HostsSource,
    ProbeError,
    host_from_answer,
    parse_answer,
    pci_key,
    workload_of,
)
from sovtui.sources.registry import build_sources
from tests.hosts_support import healthy_8, mig_4
from tests.lab.fleet import T0, answer, gpu_json


# ================================================================================== parsing (no SSH)
def test_parse_maps_every_field():
    memory = HostMemory()
    parsed = host_from_answer(
        "gpu01", parse_answer(json.dumps(healthy_8("gpu01"))), memory, observed_at=T0, latency_s=0.01
    )
    host = parsed.host
    assert (host.name, host.expected_gpus, host.driver_version, host.cuda_version, host.backend, host.error) == (
        "gpu01",
        8,
        "550.54.15",
        "12.4",
        "nvml",
        "",
    )
    assert host.latency_s == 0.01 and host.observed_at == T0
    g0, g3, g2 = parsed.gpus[0], parsed.gpus[3], parsed.gpus[2]
    assert (g0.util_pct, g0.mem_util_pct, g0.mem_used_mib, g0.mem_total_mib) == (97.0, 40.0, 1234.0, 81559.0)
    assert (g0.temp_c, g0.temp_slowdown_c, g0.temp_shutdown_c, g0.power_w, g0.power_limit_w) == (61, 87, 92, 312.5, 700)
    assert (g0.sm_clock_mhz, g0.mem_clock_mhz, g0.ecc_mode, g0.mig_mode) == (1980, 2619, True, False)
    assert g0.processes[0].pod == "team-a/llm-0" and g0.processes[0].used_mib == 1000.0
    assert g0.workload == "team-a/llm-0"
    assert g0.sources == ("nvml",) and g0.observed_at == T0
    assert (g0.nvlink_total, g0.nvlink_down) == (18, 0)
    assert (g3.nvlink_total, g3.nvlink_down, g3.throttle_reasons) == (2, 1, ("sw_thermal",))
    assert [x.code for x in g2.xids] == [13, 31] and g2.xids[-1].message == "MMU Fault"
    assert g2.xids[0].at == T0 - 100
    assert all(not g.xids for g in parsed.gpus if g.index != 2)
    assert parsed.notes == ()


def test_parse_mig_slurm_lost_and_nvidia_smi():
    parsed = host_from_answer(
        "gpu02", parse_answer(json.dumps(mig_4("gpu02"))), HostMemory(), observed_at=T0, latency_s=None
    )
    g1, g2, g3 = parsed.gpus[1:]
    assert g1.mig_mode is True and [m.profile for m in g1.mig_instances] == ["3g.40gb", "3g.40gb"]
    assert g1.mig_instances[0].gi == 1 and g1.mig_instances[0].mem_total_mib == 40192
    assert g2.workload == "slurm:7001, ns/p"
    assert g3.lost and g3.error == "GPU is lost" and g3.util_pct is None
    assert parsed.host.backend == "nvidia-smi" and g1.sources == ("nvidia-smi",)


def test_xid_on_a_pci_without_gpu_becomes_a_note():
    data = answer(
        "h", [gpu_json(0)], [{"t": T0, "pci": "0000:99:00", "code": 79, "msg": "GPU has fallen off the bus."}]
    )
    parsed = host_from_answer("h", data, HostMemory(), observed_at=T0, latency_s=None)
    assert parsed.notes == ("h: XID 79 on PCI 0000:99:00 (no GPU there): GPU has fallen off the bus.",)


def test_gpu_gone_is_remembered_lost_with_its_xid():
    memory = HostMemory()
    host_from_answer("h", answer("h", [gpu_json(i) for i in range(4)]), memory, observed_at=T0, latency_s=None)
    gone = answer(
        "h",
        [gpu_json(i) for i in (0, 1, 3)],
        [{"t": T0, "pci": "0000:38:00", "code": 79, "msg": "GPU has fallen off the bus."}],
        gpu_count=3,
    )
    parsed = host_from_answer("h", gone, memory, observed_at=T0 + 10, latency_s=None)
    assert parsed.host.expected_gpus == 4
    lost = [g for g in parsed.gpus if g.lost]
    assert [(g.index, g.uuid, g.last_xid, g.error) for g in lost] == [
        (2, "GPU-02aa-bbbb", 79, "not enumerated by the driver any more (was GPU 2)")
    ]
    assert parsed.notes == ()
    # the view shows four GPUs, one lost, and adds no anonymous placeholder
    fused = fuse_gpus([(T0, parsed.gpus)], (parsed.host,))
    assert [(g.index, g.lost) for g in fused] == [(0, False), (1, False), (2, True), (3, False)]


def test_gpu_gone_and_the_others_renumbered():
    # the driver enumerates the GPUs after a missing one one index lower
    memory = HostMemory()
    host_from_answer("h", answer("h", [gpu_json(i) for i in range(4)]), memory, observed_at=T0, latency_s=None)
    renumbered = [gpu_json(0), gpu_json(1), dict(gpu_json(3), index=2)]
    parsed = host_from_answer("h", answer("h", renumbered, gpu_count=3), memory, observed_at=T0, latency_s=None)
    assert [(g.index, g.uuid, g.lost) for g in parsed.gpus] == [
        (0, "GPU-00aa-bbbb", False),
        (1, "GPU-01aa-bbbb", False),
        (2, "GPU-03aa-bbbb", False),
        (3, "GPU-02aa-bbbb", True),
    ]
    fused = fuse_gpus([(T0, parsed.gpus)], (parsed.host,))
    assert len(fused) == 4 and sum(g.lost for g in fused) == 1


def test_lost_gpu_without_identity_gets_the_one_seen_before():
    memory = HostMemory()
    host_from_answer("h", answer("h", [gpu_json(i) for i in range(2)]), memory, observed_at=T0, latency_s=None)
    nameless = {"index": 1, "error": "GPU is lost"}
    parsed = host_from_answer("h", answer("h", [gpu_json(0), nameless]), memory, observed_at=T0, latency_s=None)
    assert [(g.index, g.uuid, g.lost) for g in parsed.gpus] == [(0, "GPU-00aa-bbbb", False), (1, "GPU-01aa-bbbb", True)]


def test_gpu_count_shrinks_without_identity_still_expected():
    memory = HostMemory()
    host_from_answer("h", answer("h", [gpu_json(i, uuid="") for i in range(4)]), memory, observed_at=T0, latency_s=None)
    parsed = host_from_answer(
        "h", answer("h", [gpu_json(i, uuid="") for i in range(3)]), memory, observed_at=T0, latency_s=None
    )
    assert parsed.host.expected_gpus == 4
    fused = fuse_gpus([(T0, parsed.gpus)], (parsed.host,))
    assert [(g.index, g.lost) for g in fused][-1] == (3, True)


@pytest.mark.parametrize(
    "line, why",
    [
        ("not json", "answer is not JSON"),
        ("[1, 2]", "answer is a JSON list, not an object"),
        ('{"v": 2}', "protocol version 2"),
        ('{"v": 1, "gpus": {"0": {}}}', "'gpus' is not a list of objects"),
        ('{"v": 1, "gpus": [{"index": 0, "processes": 5}]}', "'processes' is not a list of objects"),
        ('{"v": 1, "xids": [1]}', "'xids' is not a list of objects"),
        ('{"v": 1, "gpus": [{"index": 0, "nvlink": [true]}]}', "'nvlink' is not a list of objects"),
        ('{"v": 1, "gpus": [{"index": 0, "throttle_reasons": "hot"}]}', "'throttle_reasons' is not a list"),
    ],
)
def test_malformed_answers_are_probe_errors(line, why):
    with pytest.raises(ProbeError, match=why):
        host_from_answer("h", parse_answer(line), HostMemory(), observed_at=None, latency_s=None)


def test_nulls_and_wrong_types_are_unknown_not_errors():
    raw = {k: None for k in gpu_json(0)}
    raw.update(index=0, temp_c="hot", power_w=float("nan"), ecc_uncorrected_volatile=True)
    data = parse_answer(json.dumps(answer("h", [raw], driver=None, cuda=None, gpu_count=None)).replace("NaN", "null"))
    parsed = host_from_answer("h", data, HostMemory(), observed_at=None, latency_s=None)
    g = parsed.gpus[0]
    assert (g.temp_c, g.power_w, g.ecc_uncorrected_volatile, g.nvlink_total, g.uuid, g.workload) == (
        None,
        None,
        None,
        None,
        "",
        "",
    )
    assert parsed.host.expected_gpus == 1 and parsed.host.driver_version == ""


def test_no_backend_is_a_host_error_other_errors_are_notes():
    data = answer("h", [], backend="none", error="NVML Shared Library Not Found", gpu_count=None, driver=None)
    assert (
        host_from_answer("h", data, HostMemory(), observed_at=None, latency_s=None).host.error
        == "no GPU backend: NVML Shared Library Not Found"
    )
    data = answer("h", [gpu_json(0)], error="xid: cannot read the kernel log")
    parsed = host_from_answer("h", data, HostMemory(), observed_at=None, latency_s=None)
    assert parsed.host.error == "" and parsed.notes == ("h: probe: xid: cannot read the kernel log",)


def test_helpers():
    assert pci_key("00000000:18:00.0") == pci_key("0000:18:00") == pci_key("PCI:0000:18:00") == (0, 0x18, 0)
    assert pci_key("garbage") is None and pci_key(None) is None
    assert workload_of(()) == ""


def test_registry_builds_the_ssh_source_only_with_hosts():
    assert not [s for s in build_sources(SiteConfig(name="x")) if s.kind == "ssh"]
    site = SiteConfig(name="x", ssh=SshConfig(hosts=("gpu01", "gpu02"), timeout_s=4.0))
    (source,) = [s for s in build_sources(site) if s.kind == "ssh"]
    assert isinstance(source, HostsSource) and source.hosts == ("gpu01", "gpu02") and source.name == "ssh"
    assert source.timeout_s > source.host_timeout_s == 4.0


SSH_CONFIG = """\
# site defaults
User ops
ServerAliveInterval 30

Host gpu01 gpu02
  Port 2201
Host gpu0? !gpu03
  IdentityFile ~/.ssh/gpu_key
Host=gpu03
  HostName 10.0.0.3
Host = bastion
  HostName 10.0.0.1
  User jump
Match host gpu*
  ForwardAgent no
Host gpu*
  ProxyJump bastion
  User admin
Host *
  ConnectTimeout 7
"""


@pytest.mark.parametrize("alias", ["gpu01", "gpu02", "gpu03", "gpu07", "gpu10", "bastion", "other"])
def test_ssh_config_copy_per_host_gives_the_same_settings(tmp_path, alias):
    from asyncssh.config import SSHClientConfig

    from sovtui.sources.hosts.ssh_config import SshConfigFilter

    path = tmp_path / "config"
    path.write_text(SSH_CONFIG)
    flt = SshConfigFilter([str(path)])
    copy = flt.paths_for(alias)
    try:
        assert copy != [str(path)]
        assert len(Path(copy[0]).read_text().splitlines()) < len(SSH_CONFIG.splitlines())

        def load(paths):
            return SSHClientConfig.load(None, paths, False, False, False, "me", (), alias, ())._options

        assert load(copy) == load([str(path)])
    finally:
        flt.cleanup()
    assert not Path(copy[0]).exists()


def test_ssh_config_copy_keeps_the_jump_hosts(tmp_path):
    from asyncssh.config import SSHClientConfig

    from sovtui.sources.hosts.ssh_config import SshConfigFilter

    path = tmp_path / "config"
    path.write_text(
        SSH_CONFIG + "Host edge\n  ProxyJump admin@gw:2222\nHost gw\n  HostName 10.9.9.9\n  ProxyJump bastion\n"
    )
    flt = SshConfigFilter([str(path)])
    try:
        (copy,) = flt.paths_for("gpu01")
        text = Path(copy).read_text()
        assert "Host = bastion" in text and "Host gw" not in text

        def load(paths, name):
            return SSHClientConfig.load(None, paths, False, False, False, "me", (), name, ())._options

        for name in ("gpu01", "bastion"):
            assert load([copy], name) == load([str(path)], name)
        (copy,) = flt.paths_for("edge")
        for name in ("edge", "gw", "bastion"):
            assert load([copy], name) == load([str(path)], name)
    finally:
        flt.cleanup()


def test_ssh_config_with_canonicalization_is_used_whole(tmp_path):
    from sovtui.sources.hosts.ssh_config import SshConfigFilter

    path = tmp_path / "config"
    path.write_text("CanonicalizeHostname yes\n" + SSH_CONFIG)
    assert SshConfigFilter([str(path)]).paths_for("gpu01") == [str(path)]


def test_set_hosts_adds_and_removes_live():
    source = HostsSource(SiteConfig(name="x", ssh=SshConfig(hosts=("a", "b"))), ssh_config=os.devnull)
    source.set_hosts(["b", "c", "c", " "])
    assert source.hosts == ("b", "c")
    source.add_hosts(["d"])
    assert source.hosts == ("b", "c", "d")
