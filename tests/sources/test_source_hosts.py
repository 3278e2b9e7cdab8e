"""Provides tests of the SSH fleet source against real OpenSSH servers on loopback, one per fake GPU host."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import statistics
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sovtui.config import SiteConfig
from sovtui.hub import Hub
from sovtui.model.types import KubeNode, NovaHost, SourceData
from sovtui.model.view import fuse_gpus
from sovtui.sources.base import Source
from sovtui.sources.hosts import (
    HostsSource,
)
from tests.hosts_support import by_host, fetch_until, gpus_of, lab
from tests.lab.fleet import T0, Fleet, answer, gpu_json


# ================================================================================== the fleet
@pytest.fixture(scope="module")
def fleet(lab_sshd, lab_dir):
    from tests.lab.fakenvml import SCENARIOS, ecc_uncorrected, healthy, mig, processes

    root = lab_dir / "ssh-fleet"
    shutil.rmtree(root, ignore_errors=True)
    fleet = Fleet(lab_sshd, root)
    try:
        fleet.add_sshd("gpu01", processes([os.getpid()]))
        fleet.add_sshd("gpu02", mig())
        fleet.add_sshd("gpu03", healthy())  # its stand-in probe answers garbage
        fleet.set_answer("gpu03", "RAW:this is not json {")
        fleet.add_closed("gpu04")
        fleet.add_silent("gpu05")
        fleet.add_sshd("gpu06", healthy())  # its key is not in known_hosts
        fleet.add_sshd("gpu07", healthy())  # known_hosts has another key for it
        fleet.add_sshd("gpu08", healthy())  # restarted by a test
        fleet.add_sshd("gpu09", healthy())  # loses a GPU in a test
        fleet.add_sshd("gpu10", ecc_uncorrected())
        fleet.add_sshd("gpu11", SCENARIOS["no_driver"]())
        fleet.write_files(
            unknown=("gpu06",),
            changed=("gpu07",),
            bulk=40,
            jumps={"jumped": ("gpu02", "gpu01"), "jumped-bad": ("gpu02", "gpu06")},
        )
        yield fleet
    finally:
        fleet.close()


# ================================================================================== against real sshd
def expect_gpu(gpu, g: dict) -> None:
    """A GPU read over SSH by the real probe equals the fake host's GPU ``g``."""
    from tests.lab.fakenvml import MIB

    assert (gpu.uuid, gpu.name, gpu.pci_bus_id) == (g["uuid"], g["name"], g["pci"])
    assert (gpu.util_pct, gpu.mem_util_pct) == (g["util_gpu"], g["util_mem"])
    assert gpu.mem_total_mib == round(g["mem_total"] / MIB, 3) and gpu.mem_used_mib == round(g["mem_used"] / MIB, 3)
    assert (gpu.temp_c, gpu.temp_slowdown_c, gpu.temp_shutdown_c) == (g["temp"], g["temp_slowdown"], g["temp_shutdown"])
    assert (gpu.power_w, gpu.power_limit_w) == (g["power_mw"] / 1000, g["power_limit_mw"] / 1000)
    assert (gpu.sm_clock_mhz, gpu.mem_clock_mhz) == (g["sm_clock"], g["mem_clock"])
    assert (gpu.nvlink_total, gpu.nvlink_down) == (g["nvlinks"], len(g["nvlink_down"]))
    assert gpu.sources == ("nvml",) and not gpu.lost and gpu.error == ""


@lab
async def test_real_probe_end_to_end(fleet):
    source = fleet.source(["gpu01", "gpu02", "gpu10", "gpu11"])
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    hosts = by_host(data)
    for name in ("gpu01", "gpu02", "gpu10"):
        host = hosts[name]
        assert (host.error, host.backend, host.driver_version, host.cuda_version, host.expected_gpus) == (
            "",
            "nvml",
            "550.54.15",
            "12.4",
            8,
        ), host
        assert host.latency_s is not None and host.latency_s < 5 and host.observed_at is not None
        gpus = gpus_of(data, name)
        assert [g.index for g in gpus] == list(range(8))
        for gpu, g in zip(gpus, fleet.hosts[name].scenario["gpus"], strict=True):
            expect_gpu(gpu, g)
    (proc,) = gpus_of(data, "gpu01")[0].processes
    assert (proc.pid, proc.used_mib) == (os.getpid(), 2048.0)
    mig = gpus_of(data, "gpu02")[0]
    assert mig.mig_mode is True and [m.profile for m in mig.mig_instances] == ["3g.40gb", "2g.20gb", "1g.10gb"]
    ecc = gpus_of(data, "gpu10")[2]
    assert (ecc.ecc_uncorrected_volatile, ecc.last_xid) == (3, 48) and ecc.xids[0].at is not None
    assert all(not g.xids for g in gpus_of(data, "gpu10") if g.index != 2)
    assert hosts["gpu11"].backend == "none" and hosts["gpu11"].error.startswith(
        "no GPU backend: nvml: NVML init failed"
    )
    assert gpus_of(data, "gpu11") == []


@lab
async def test_probe_is_started_once_per_connection(fleet):
    host = fleet.hosts["gpu08"]
    before = len(host.starts())
    source = fleet.source(["gpu08"])
    try:
        for _ in range(5):
            data = await source.fetch()
            assert by_host(data)["gpu08"].error == ""
        stats = source.stats("gpu08")
        pid = host.starts()[-1]
        assert Path(f"/proc/{pid}").exists()  # the same probe process, still running
    finally:
        await source.aclose()
    assert (stats["connects"], stats["probe_starts"]) == (1, 1)
    assert len(host.starts()) == before + 1
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not Path(f"/proc/{pid}").exists(), "the probe must exit when the connection closes"


@lab
async def test_unknown_host_key_is_not_trusted(fleet):
    before = len(fleet.hosts["gpu06"].starts())
    source = fleet.source(["gpu06"])
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    assert by_host(data)["gpu06"].error == "host key not trusted for gpu06 (not in known_hosts)"
    assert gpus_of(data, "gpu06") == [] and len(fleet.hosts["gpu06"].starts()) == before


@lab
async def test_changed_host_key_is_refused(fleet):
    before = len(fleet.hosts["gpu07"].starts())
    source = fleet.source(["gpu07"])
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    assert by_host(data)["gpu07"].error == "host key CHANGED for gpu07 — possible MITM; fix known_hosts"
    assert len(fleet.hosts["gpu07"].starts()) == before  # nothing ran on it


@lab
async def test_known_hosts_from_the_ssh_config(fleet, tmp_path):
    # no known_hosts in the site config: the ssh config's UserKnownHostsFile is used, and still verified
    config = tmp_path / "ssh_config"
    config.write_text(f"UserKnownHostsFile {fleet.known_hosts}\n" + fleet.ssh_config.read_text())
    source = HostsSource(
        fleet.site(known_hosts=None), hosts=["gpu01", "gpu07"], ssh_config=str(config), probe_cmd=fleet.probe_cmd
    )
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    assert by_host(data)["gpu01"].error == ""
    assert "host key CHANGED for gpu07" in by_host(data)["gpu07"].error


@lab
async def test_ssh_config_from_the_environment(fleet, monkeypatch):
    monkeypatch.setenv("SOVTUI_SSH_CONFIG", str(fleet.ssh_config))
    source = HostsSource(fleet.site(), hosts=["gpu01"], probe_cmd=fleet.probe_cmd)
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    assert by_host(data)["gpu01"].error == ""


@lab
async def test_proxyjump_from_the_ssh_config(fleet):
    source = fleet.source(["jumped", "jumped-bad"])
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    hosts = by_host(data)
    assert hosts["jumped"].error == "" and len(gpus_of(data, "jumped")) == 8
    assert [m.profile for m in gpus_of(data, "jumped")[0].mig_instances] == ["3g.40gb", "2g.20gb", "1g.10gb"]
    assert hosts["jumped-bad"].error.startswith("host key not trusted for a jump host on the way to jumped-bad")


@lab
async def test_site_user_is_a_default_the_ssh_config_wins(fleet, tmp_path):
    # the ssh config names the user for every host; the site's user only fills in where it does not
    site = replace(fleet.site(), ssh=replace(fleet.site().ssh, user="nobody-here"))
    source = HostsSource(site, hosts=["gpu01"], ssh_config=str(fleet.ssh_config), probe_cmd=fleet.probe_cmd)
    try:
        assert by_host(await source.fetch())["gpu01"].error == ""
    finally:
        await source.aclose()
    bare = tmp_path / "ssh_config"
    bare.write_text(
        f"Host gpu01\n  HostName 127.0.0.1\n  Port {fleet.hosts['gpu01'].port}\n"
        f"  IdentityFile {fleet.lab.client_key}\n  IdentitiesOnly yes\n"
    )
    source = HostsSource(site, hosts=["gpu01"], ssh_config=str(bare), probe_cmd=fleet.probe_cmd)
    try:
        error = by_host(await source.fetch())["gpu01"].error
    finally:
        await source.aclose()
    assert error.startswith("permission denied for nobody-here@127.0.0.1:"), error


@lab
async def test_dead_and_blackholed_hosts_do_not_slow_the_others(fleet):
    timeout = 2.0
    healthy = fleet.source(["gpu01", "gpu02"], timeout_s=timeout)
    mixed = fleet.source(["gpu01", "gpu02", "gpu04", "gpu05"], timeout_s=timeout, backoff_base_s=30.0)
    try:
        t0 = time.perf_counter()
        await healthy.fetch()
        cold_healthy = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = await mixed.fetch()
        cold_mixed = time.perf_counter() - t0
        hosts = by_host(data)
        assert hosts["gpu01"].error == "" and len(gpus_of(data, "gpu01")) == 8
        assert hosts["gpu04"].error.startswith("connection refused by ")
        assert hosts["gpu05"].error == f"no SSH answer from gpu05 in {timeout:g}s"
        # the blackholed host costs at most the per-host timeout, once
        assert cold_mixed < timeout + 1.0, (cold_healthy, cold_mixed)

        steady_healthy, steady_mixed = [], []
        for _ in range(7):
            t0 = time.perf_counter()
            await healthy.fetch()
            steady_healthy.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            data = await mixed.fetch()
            steady_mixed.append(time.perf_counter() - t0)
            assert by_host(data)["gpu02"].error == ""
        a, b = statistics.median(steady_healthy), statistics.median(steady_mixed)
        assert b < a * 1.5 + 0.02, (steady_healthy, steady_mixed)
        # hosts in backoff are not retried every poll, and keep their error
        assert mixed.stats("gpu04")["connects"] == 1 and mixed.stats("gpu05")["connects"] == 1
        assert by_host(data)["gpu05"].error == f"no SSH answer from gpu05 in {timeout:g}s"
    finally:
        await healthy.aclose()
        await mixed.aclose()


@lab
async def test_reconnects_after_sshd_restart(fleet):
    source = fleet.source(["gpu08"], backoff_base_s=0.2, backoff_cap_s=0.5)
    host = fleet.hosts["gpu08"]
    try:
        data = await source.fetch()
        assert by_host(data)["gpu08"].error == ""
        first_pid = host.starts()[-1]
        fleet.stop("gpu08")
        data = await source.fetch()
        assert by_host(data)["gpu08"].error.startswith("connection lost"), by_host(data)["gpu08"]
        kept = gpus_of(data, "gpu08")  # its last readings stay, each marked as no longer read
        assert len(kept) == 8 and all(g.error.startswith("no reading since ") for g in kept)
        assert by_host(data)["gpu08"].expected_gpus == 8
        data = await source.fetch()  # still down: an error at once
        assert by_host(data)["gpu08"].error
        fleet.start("gpu08")
        data = await fetch_until(source, lambda d: not by_host(d)["gpu08"].error)
        assert len(gpus_of(data, "gpu08")) == 8 and by_host(data)["gpu08"].expected_gpus == 8
        assert host.starts()[-1] != first_pid
        assert source.stats("gpu08")["connects"] >= 2
    finally:
        await source.aclose()


@lab
async def test_probe_killed_is_restarted_on_the_same_connection(fleet):
    source = fleet.source(["gpu01"], backoff_base_s=0.2, backoff_cap_s=0.5)
    host = fleet.hosts["gpu01"]
    try:
        await source.fetch()
        pid = host.starts()[-1]
        os.kill(pid, signal.SIGKILL)
        data = await fetch_until(source, lambda d: by_host(d)["gpu01"].error, timeout_s=5)
        assert by_host(data)["gpu01"].error.startswith(("probe killed by signal", "probe exited")), by_host(data)
        data = await fetch_until(source, lambda d: not by_host(d)["gpu01"].error)
        assert host.starts()[-1] != pid and len(gpus_of(data, "gpu01")) == 8
        stats = source.stats("gpu01")
        assert (stats["connects"], stats["probe_starts"]) == (1, 2)
    finally:
        await source.aclose()


@lab
async def test_gpu_that_falls_off_the_bus(fleet):
    from tests.lab.fakenvml import fell_off_bus, healthy

    source = fleet.source(["gpu09"])
    try:
        data = await source.fetch()
        assert by_host(data)["gpu09"].expected_gpus == 8
        old = gpus_of(data, "gpu09")[3]
        # not enumerated any more: the driver lists 7 GPUs, renumbered, and logs XID 79
        fleet.set_scenario("gpu09", fell_off_bus("gone", t=time.time()))  # logged now
        data = await source.fetch()
        host, gpus = by_host(data)["gpu09"], gpus_of(data, "gpu09")
        assert (host.expected_gpus, host.error, len(gpus)) == (8, "", 8)
        (lost,) = [g for g in gpus if g.lost]
        assert (lost.uuid, lost.pci_bus_id, lost.last_xid) == (old.uuid, old.pci_bus_id, 79)
        assert "was GPU 3" in lost.error
        fused = fuse_gpus([(T0, data.gpus)], data.gpu_hosts)
        assert len(fused) == 8 and [g.uuid for g in fused if g.lost] == [old.uuid]
        # still enumerated, but every query says GPU is lost
        fleet.set_scenario("gpu09", fell_off_bus("lost", t=time.time()))
        data = await source.fetch()
        gpus = gpus_of(data, "gpu09")
        assert [(g.index, g.uuid) for g in gpus if g.lost] == [(3, old.uuid)] and gpus[3].last_xid == 79
        assert gpus[3].error == "GPU is lost"
    finally:
        fleet.set_scenario("gpu09", healthy())
        await source.aclose()


@lab
async def test_malformed_output_is_a_probe_failure(fleet):
    source = fleet.source(["gpu09", "gpu01"], probe_cmd=fleet.standin_cmd)
    try:
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(4)]))
        assert by_host(await source.fetch())["gpu09"].error == ""
        fleet.set_answer("gpu09", "RAW:this is not json {")
        data = await source.fetch()
        assert by_host(data)["gpu09"].error == "probe failed: answer is not JSON: 'this is not json {'"
        kept = gpus_of(data, "gpu09")
        assert len(kept) == 4 and all("no reading since" in g.error and "not JSON" in g.error for g in kept)
        assert by_host(data)["gpu01"].error == ""
        fleet.set_answer("gpu09", '{"v": 1, "gpus": 3}')
        assert by_host(await source.fetch())["gpu09"].error == "probe failed: 'gpus' is not a list of objects"
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(4)]))
        data = await source.fetch()  # the line protocol is intact: the same probe answers right now
        assert by_host(data)["gpu09"].error == "" and source.stats("gpu09")["probe_starts"] == 1
    finally:
        await source.aclose()


@lab
async def test_malformed_first_answer(fleet):
    # before its first answer non-JSON lines are skipped (chatty login scripts); if nothing follows,
    # the first of them is the reason
    # (a loaded machine may take longer than the 1 s poll to connect: the connection goes on between polls)
    source = fleet.source(["gpu03"], timeout_s=1.0, probe_cmd=fleet.standin_cmd)
    try:
        data = await fetch_until(source, lambda d: not by_host(d)["gpu03"].error.startswith("still connecting"))
    finally:
        await source.aclose()
    assert by_host(data)["gpu03"].error == "probe failed: answer is not JSON: 'this is not json {'"


@lab
async def test_login_banner_before_the_first_answer_is_skipped(fleet):
    source = fleet.source(["gpu01"], probe_cmd=f"echo 'Welcome to gpu01'; echo; {fleet.probe_cmd}")
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    assert by_host(data)["gpu01"].error == "" and len(gpus_of(data, "gpu01")) == 8


@lab
async def test_missing_python_and_doctor(fleet):
    source = fleet.source(["gpu01"], probe_cmd="exec python3-not-installed-here -u -c pass")
    try:
        data = await source.fetch()
        assert by_host(data)["gpu01"].error.startswith("python3 not found on gpu01")
        checks = await source.doctor()
    finally:
        await source.aclose()
    failed = [c for c in checks if not c.ok]
    assert [c.check for c in failed] == ["gpu01: python3"] and "install python3" in failed[0].hint
    assert [c.check for c in checks if c.ok][-3:] == ["gpu01: reachable", "gpu01: host key", "gpu01: auth"]


@lab
async def test_probe_gone_before_its_first_request_says_why(fleet, monkeypatch):
    """The probe may exit before sovtui writes its first request: the reason is still python3, not a broken pipe."""
    import asyncssh

    real = asyncssh.SSHClientConnection.create_process

    async def exited_first(self, *args, **kwargs):
        proc = await real(self, *args, **kwargs)
        await asyncio.wait_for(proc.wait_closed(), 5.0)
        return proc

    monkeypatch.setattr(asyncssh.SSHClientConnection, "create_process", exited_first)
    source = fleet.source(["gpu01"], probe_cmd="exec python3-not-installed-here -u -c pass")
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    assert by_host(data)["gpu01"].error.startswith("python3 not found on gpu01")


@lab
async def test_probe_that_exits(fleet):
    fleet.set_answer("gpu09", "EXIT:3")
    source = fleet.source(["gpu09"], probe_cmd=fleet.standin_cmd)
    try:
        data = await source.fetch()
    finally:
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(4)]))
        await source.aclose()
    assert by_host(data)["gpu09"].error == "probe exited with status 3: probe blew up"


@lab
async def test_slow_probe_times_out_then_recovers(fleet):
    fleet.set_answer("gpu09", "SLEEP:1.5")
    source = fleet.source(["gpu09"], timeout_s=1.0, backoff_base_s=0.2, backoff_cap_s=0.5, probe_cmd=fleet.standin_cmd)
    try:
        t0 = time.perf_counter()
        data = await source.fetch()
        assert time.perf_counter() - t0 < 2.0
        assert by_host(data)["gpu09"].error == "probe did not answer in 1s after start"
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(4)]))
        data = await fetch_until(source, lambda d: not by_host(d)["gpu09"].error)
        assert len(gpus_of(data, "gpu09")) == 4
    finally:
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(4)]))
        await source.aclose()


@lab
async def test_a_late_answer_is_read_not_asked_again(fleet):
    # a request that times out leaves its answer owed: the next poll reads it instead of asking
    # again, so requests and answers stay in step
    source = fleet.source(["gpu09"], timeout_s=1.0, probe_cmd=fleet.standin_cmd)
    try:
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(4)]))
        assert by_host(await source.fetch())["gpu09"].error == ""
        fleet.set_answer("gpu09", "SLEEP:1.3")
        assert by_host(await source.fetch())["gpu09"].error == "probe did not answer in 1s"
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(2)]))
        await asyncio.sleep(0.5)
        data = await source.fetch()  # the late answer ("{}": no backend) of the slow request
        assert by_host(data)["gpu09"].error == "no GPU backend (driver gone?)" and gpus_of(data, "gpu09") == []
        data = await source.fetch()
        assert len([g for g in gpus_of(data, "gpu09") if not g.lost]) == 2
        assert source.stats("gpu09")["probe_starts"] == 1
    finally:
        fleet.set_answer("gpu09", answer("gpu09", [gpu_json(i) for i in range(4)]))
        await source.aclose()


@lab
async def test_doctor_per_host(fleet):
    source = fleet.source(["gpu01", "gpu04", "gpu06", "gpu11"])
    try:
        checks = await source.doctor()
    finally:
        await source.aclose()
    lines = {c.check: c for c in checks}
    assert [lines[f"gpu01: {s}"].ok for s in ("reachable", "host key", "auth", "python3", "probe", "backend")] == [
        True
    ] * 6
    assert lines["gpu01: backend"].detail == "nvml, driver 550.54.15, CUDA 12.4, 8 GPUs"
    assert not lines["gpu04: reachable"].ok and lines["gpu04: reachable"].hint
    assert lines["gpu06: reachable"].ok and not lines["gpu06: host key"].ok
    assert "not in known_hosts" in lines["gpu06: host key"].detail and "gpu06: auth" not in lines
    assert lines["gpu11: probe"].ok and not lines["gpu11: backend"].ok
    assert "NVML init failed" in lines["gpu11: backend"].detail and lines["gpu11: backend"].hint


@lab
async def test_many_hosts_through_the_hub(fleet):
    # 40 aliases of one host and two dead ones, polled by the hub (which parses big fleets in its threads)
    source = fleet.source([*fleet.bulk, "gpu04", "gpu05"], timeout_s=1.5, probe_cmd=fleet.standin_cmd)
    hub = Hub([source])
    try:
        t0 = time.perf_counter()
        result = await hub.poll("ssh")
        first = time.perf_counter() - t0
        result = await hub.poll("ssh")
        checks = await hub.doctor()
    finally:
        await hub.stop()
    assert result.status.ok and result.status.kind == "ssh" and first < source.timeout_s
    errors = {h.name: h.error for h in result.data.gpu_hosts if h.error}
    assert set(errors) == {"gpu04", "gpu05"}
    assert len(result.data.gpus) == 4 * len(fleet.bulk)  # the stand-in answers four GPUs
    assert source.timeout_s > source.host_timeout_s
    summary = {c.check: c for c in checks if ":" not in c.check}
    assert summary["reachable"].detail == f"{len(fleet.bulk)} of {len(fleet.bulk) + 2} hosts ok"
    assert {c.check for c in checks if not c.ok and ":" in c.check} == {"gpu04: reachable", "gpu05: reachable"}


@lab
async def test_set_hosts_connects_new_and_drops_old(fleet):
    source = fleet.source(["gpu01"])
    try:
        await source.fetch()
        source.set_hosts(["gpu02"])
        data = await source.fetch()
        assert [h.name for h in data.gpu_hosts] == ["gpu02"] and by_host(data)["gpu02"].error == ""
        assert source.stats("gpu02")["connects"] == 1
    finally:
        await source.aclose()


class _LayerStub(Source):
    """A Kubernetes or OpenStack source as far as discovery cares: the nodes/computes it lists."""

    def __init__(self, name: str, kind: str, data: SourceData) -> None:
        self.name, self.kind, self.data = name, kind, data

    async def fetch(self, executor=None) -> SourceData:
        return self.data


def test_discovery_takes_gpu_hosts_from_kubernetes_and_nova():
    from sovtui.config import SshConfig as Ssh

    source = HostsSource(SiteConfig("lab", ssh=Ssh(hosts=("static01",), discover=("kubernetes", "nova"))))
    kube = SourceData(
        kube_nodes=(KubeNode("cp1"), KubeNode("gpu01.dc", gpu_capacity=8), KubeNode("gpu02", gpu_capacity=8))
    )
    assert source.observe("kubernetes", kube) and source.hosts == ("static01", "gpu01.dc", "gpu02")
    assert not source.observe("kubernetes", kube)  # nothing new: no extra poll
    nova = SourceData(
        nova_hosts=(
            NovaHost("cmp1"),
            NovaHost("gpu02", gpu_inventory=(("VGPU", 4, 0),)),
            NovaHost("gpu03", gpu_inventory=(("PGPU", 8, 8),)),
        )
    )
    assert source.observe("openstack", nova) and source.hosts == ("static01", "gpu01.dc", "gpu02", "gpu03")
    # a node leaves Kubernetes: it goes, unless another layer or the config still names it
    assert source.observe("kubernetes", SourceData(kube_nodes=(KubeNode("gpu02", gpu_capacity=8),)))
    assert source.hosts == ("static01", "gpu02", "gpu03")
    assert not source.observe("prometheus", SourceData(kube_nodes=(KubeNode("x", gpu_capacity=8),)))
    off = HostsSource(SiteConfig("lab", ssh=Ssh(hosts=("a",))))
    assert not off.observe("kubernetes", kube) and off.hosts == ("a",)


@lab
async def test_hosts_discovered_from_kubernetes_are_probed_in_the_same_snapshot(fleet):
    """Through the hub as ``sovtui snapshot`` runs it: Kubernetes names the GPU nodes, SSH probes them."""
    site = replace(
        fleet.site(timeout_s=5.0, known_hosts=""), ssh=replace(fleet.site().ssh, hosts=(), discover=("kubernetes",))
    )
    source = HostsSource(site, ssh_config=str(fleet.ssh_config), probe_cmd=fleet.probe_cmd)
    kube = _LayerStub(
        "kubernetes", "kubernetes", SourceData(kube_nodes=(KubeNode("gpu01", gpu_capacity=8), KubeNode("k8s-cp1")))
    )
    hub = Hub([kube, source])
    try:
        (check,) = await source.doctor()  # no hosts yet, and that is fine
        assert check.ok and "discovered from kubernetes" in check.detail
        results = await hub.poll_all()
    finally:
        await hub.stop()
    data = results["ssh"].data
    assert [h.name for h in data.gpu_hosts] == ["gpu01"] and not data.gpu_hosts[0].error
    assert {g.host for g in data.gpus} == {"gpu01"}
