"""Provides tests of the Slurm source against the lab's real Slurm 22.05, reached through a real sshd login host."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

import pytest

from sovtui.config import SiteConfig, SlurmConfig, SshConfig
from sovtui.sources.base import AuthError, BadAnswer, SourceError, Timeout, Unreachable
from sovtui.sources.registry import build_sources
from sovtui.sources.slurm import NodeUnknown, SlurmCommandError, SlurmSource
from tests.lab.procs import wait_port

pytestmark = [pytest.mark.slurm, pytest.mark.ssh]


def site(*, sudo: bool = False, timeout_s: float = 10.0, known_hosts: str | None = None) -> SiteConfig:
    return SiteConfig(
        name="lab",
        refresh_s=1.0,
        ssh=SshConfig(known_hosts=known_hosts),
        slurm=SlurmConfig(host="login1", sudo=sudo, timeout_s=timeout_s),
    )


@pytest.fixture
def lab(slurm_lab):
    """The lab with every node idle and no jobs."""
    slurm_lab.reset_nodes()
    return slurm_lab


@pytest.fixture
async def source(lab):
    src = SlurmSource(site(), ssh_config=str(lab.ssh_config))
    yield src
    await src.aclose()


async def node_until(src: SlurmSource, name: str, predicate, *, timeout_s: float = 30.0):
    """Re-read the node until ``predicate(node)`` holds; the last reading."""
    deadline = time.monotonic() + timeout_s
    while True:
        node = await src.read_node(name)
        if predicate(node):
            return node
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not get there in {timeout_s}s: {node}")
        await asyncio.sleep(0.1)


def gate_job(lab, node: str, gpus: int = 2) -> tuple[str, Path]:
    """A job on ``node`` that runs until the returned file exists."""
    gate = lab.jobs_dir / f"gate-{uuid.uuid4().hex[:8]}"
    job = lab.submit(f"while [ ! -e {gate} ]; do sleep 0.1; done", nodes=node, gres=f"gpu:{gpus}", name="gated")
    lab.wait_job(job, "RUNNING")
    return job, gate


# ---------------------------------------------------------------------------------- reading
async def test_nodes_partitions_and_queues_read(lab, source):
    job, gate = gate_job(lab, "gpu01", gpus=3)
    waiting = lab.submit("true", partition="debug", gres="gpu:4", extra=("-N", "2", "--hold"), name="waiting")
    data = await source.fetch()
    latencies = []
    for _ in range(5):
        started = time.perf_counter()
        data = await source.fetch()
        latencies.append(time.perf_counter() - started)
    print(
        f"slurm poll over ssh: {min(latencies) * 1000:.0f}-{max(latencies) * 1000:.0f} ms; "
        f"lab start {lab.timings['start_s']:.2f} s, {lab.timings['rss_mb']:.0f} MB RSS"
    )
    nodes = {n.name: n for n in data.slurm_nodes}
    assert list(nodes) == ["gpu01", "gpu02", "gpu03", "gpu04"]
    assert {n.gpus for n in nodes.values()} == {4}
    assert (nodes["gpu01"].state, nodes["gpu01"].gpus_allocated, nodes["gpu01"].jobs) == ("mixed", 3, (job,))
    assert (nodes["gpu02"].state, nodes["gpu02"].flags, nodes["gpu02"].jobs) == ("idle", ("IDLE",), ())
    assert nodes["gpu01"].partitions == ("gpu", "debug") and nodes["gpu03"].partitions == ("gpu",)
    queues = {q.name: q for q in data.queues}
    assert list(queues) == ["gpu", "debug"]
    assert (queues["gpu"].system, queues["gpu"].running_jobs, queues["gpu"].pending_jobs) == ("slurm", 1, 0)
    assert queues["gpu"].oldest_pending_s is None  # nothing waits: no age, not 0
    assert (queues["debug"].pending_jobs, queues["debug"].pending_gpus) == (1, 8)
    assert queues["debug"].oldest_pending_s is not None and queues["debug"].oldest_pending_s >= 0
    assert data.version == f"slurm {lab.version}"
    assert source.identity() == f"{lab.user}@login1"
    assert source.node("gpu01") == nodes["gpu01"] and source.node("nope") is None
    (ref,) = source.jobs_on("gpu01")
    assert (ref.id, ref.state, ref.user, ref.gpus, ref.nodes, ref.partition) == (
        job,
        "RUNNING",
        lab.user,
        3,
        ("gpu01",),
        "gpu",
    )
    assert source.jobs_on("gpu02") == ()
    assert max(latencies) < 2.0
    lab.cancel(waiting)
    gate.touch()


async def test_registry_builds_the_slurm_source(lab):
    (src,) = [s for s in build_sources(site()) if s.kind == "slurm"]
    assert isinstance(src, SlurmSource) and src.name == "slurm"
    assert [s for s in build_sources(SiteConfig(name="x")) if s.kind == "slurm"] == []


async def test_doctor_says_everything_is_fine(lab, source):
    checks = await source.doctor()
    assert all(c.ok for c in checks), checks
    labels = [c.check for c in checks]
    assert labels == ["ssh config", "login1: login", "sinfo/squeue", "rights to drain"]
    assert "4 nodes" in checks[2].detail and "SlurmUser" in checks[3].detail


# ---------------------------------------------------------------------------------- drain and undrain
async def test_drain_lets_the_running_job_finish_then_drained_then_undrain(lab, source):
    job, gate = gate_job(lab, "gpu02")
    await source.fetch()
    assert [j.id for j in source.jobs_on("gpu02")] == [job]
    await source.drain("gpu02", "maintenance: swap GPU 3")
    node = await source.read_node("gpu02")
    assert (node.state, node.flags, node.reason, node.reason_user) == (
        "draining",
        ("MIXED", "DRAIN"),
        "maintenance: swap GPU 3",
        lab.user,
    )
    assert node.reason_time is not None and abs(node.reason_time - time.time()) < 120
    assert node.jobs == (job,) and lab.job_state(job) == "RUNNING"  # the job goes on
    gate.touch()  # the job ends
    node = await node_until(source, "gpu02", lambda n: n.state == "drained")
    assert (node.flags, node.jobs, node.closed) == (("IDLE", "DRAIN"), (), True)
    await source.undrain("gpu02")
    # Slurm clears the flag at once and takes jobs again once the node registers (NOT_RESPONDING until then)
    node = await node_until(source, "gpu02", lambda n: n.flags == ("IDLE",), timeout_s=60)
    assert (node.state, node.reason, node.closed) == ("idle", "", False)
    await source.undrain("gpu02")  # nothing to clear: left as it is
    assert (await source.read_node("gpu02")).state == "idle"


async def test_undrain_leaves_a_down_node_down(lab, source):
    lab.run("scontrol", "update", "nodename=gpu03", "state=down", "reason=PSU failed")
    await source.drain("gpu03", "waiting for the PSU")
    node = await node_until(source, "gpu03", lambda n: "DRAIN" in n.flags)
    assert (node.state, node.flags[0], node.down, node.closed) == ("drained", "DOWN", True, True)  # as sinfo says
    await source.undrain("gpu03")
    node = await node_until(source, "gpu03", lambda n: "DRAIN" not in n.flags)
    assert (node.state, node.down) == ("down", True)
    # its slurmd registers anew: a node an operator set DOWN stays down all the same
    before = _slurmd_start(lab, "gpu03")
    lab.stop_slurmd("gpu03")
    lab.start_slurmd("gpu03")
    deadline = time.monotonic() + 30
    while _slurmd_start(lab, "gpu03") == before:
        assert time.monotonic() < deadline, "gpu03 did not register again"
        await asyncio.sleep(0.1)
    node = await source.read_node("gpu03")
    assert (node.state, node.down) == ("down", True)
    await source.undrain("gpu03")  # a DOWN node without the drain flag: nothing to do, stays down
    assert (await source.read_node("gpu03")).state == "down"


def _slurmd_start(lab, name: str):
    return next(n.get("slurmd_start_time") for n in lab.sinfo_json()["nodes"] if n["name"] == name)


async def test_a_reason_is_never_shell(lab, source, tmp_path):
    marker = lab.jobs_dir / f"pwned-{uuid.uuid4().hex[:6]}"
    reason = (
        f'it\'s "broken"; touch {marker} # $(touch {marker}) `touch {marker}` '
        f"&& touch {marker} | x > {marker} state=resume ${{HOME}} \\ end"
    )
    await source.drain("gpu04", reason)
    node = await node_until(source, "gpu04", lambda n: n.state == "drained")
    assert node.reason == reason  # verbatim, through ssh and sinfo --json
    assert lab.show_node("gpu04")["Reason"].startswith(reason)  # and as scontrol has it
    assert not marker.exists()
    assert not Path(os.path.expanduser(f"~{lab.user}"), "state=resume").exists()
    await source.undrain("gpu04")
    await node_until(source, "gpu04", lambda n: "DRAIN" not in n.flags)


async def test_bad_arguments_are_refused_before_anything_runs(lab, source):
    with pytest.raises(NodeUnknown):
        await source.drain("gpu01; scontrol shutdown", "x")
    with pytest.raises(SlurmCommandError, match="reason"):
        await source.drain("gpu01", "   ")
    with pytest.raises(SlurmCommandError, match="one line"):
        await source.drain("gpu01", "two\nlines")
    with pytest.raises(SlurmCommandError, match="job id"):
        await source.requeue("1; reboot")
    with pytest.raises(NodeUnknown, match="gpu99"):
        await source.drain("gpu99", "no such node")
    with pytest.raises(NodeUnknown, match="gpu99"):
        await source.read_node("gpu99")
    assert (await source.read_node("gpu01")).state == "idle"


async def test_sudo_runs_mutations_under_sudo(lab):
    src = SlurmSource(site(sudo=True), ssh_config=str(lab.ssh_config))
    try:
        assert (
            src.command(["scontrol", "update", "nodename=gpu01", "reason=a b"], mutating=True)
            == "sudo -n scontrol update nodename=gpu01 'reason=a b'"
        )
        assert src.command(["sinfo", "--json"]) == "sinfo --json"
        await src.fetch()  # reading needs no sudo
        with pytest.raises(SourceError):  # the lab's login host has no sudo: the drain fails, typed
            await src.drain("gpu01", "needs sudo")
        assert (await src.read_node("gpu01")).state == "idle"
    finally:
        await src.aclose()


# ---------------------------------------------------------------------------------- requeue
async def test_requeue_puts_a_running_job_back_in_the_queue(lab, source):
    job, gate = gate_job(lab, "gpu01")
    await source.requeue(job)
    deadline = time.monotonic() + 30
    while True:
        record = next((j for j in lab.squeue_json()["jobs"] if str(j["job_id"]) == job), {})
        if record.get("restart_cnt", 0) >= 1:
            break
        assert time.monotonic() < deadline, f"job {job} was not requeued: {json.dumps(record)[:300]}"
        await asyncio.sleep(0.1)
    gate.touch()
    with pytest.raises(SlurmCommandError):
        await source.requeue("999999")


# ---------------------------------------------------------------------------------- failures
async def test_output_is_bounded(lab):
    src = SlurmSource(site(), ssh_config=str(lab.ssh_config), output_limit=2000)
    try:
        with pytest.raises(BadAnswer, match="printed more than 2000 bytes"):
            await src.fetch()
        assert (await src.run(["echo", "still connected"])).strip() == "still connected"
    finally:
        await src.aclose()


async def test_dead_login_host_is_unreachable(lab):
    lab.stop_login()
    try:
        src = SlurmSource(site(timeout_s=3.0), ssh_config=str(lab.ssh_config))
        started = time.monotonic()
        with pytest.raises(Unreachable, match="refused"):
            await src.fetch()
        assert time.monotonic() - started < 5
        assert src.identity() == f"{lab.user}@login1"  # no I/O: still says who it would be
        checks = await src.doctor()
        assert [c.ok for c in checks] == [True, False] and "refused" in checks[1].detail
    finally:
        lab.start_login()
        wait_port("127.0.0.1", lab.login_port, timeout_s=15, banner=b"SSH-2.0")


async def test_changed_host_key_is_refused(lab, tmp_path):
    import asyncssh

    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2]
    known = tmp_path / "known_hosts"
    known.write_text(f"[127.0.0.1]:{lab.login_port} {' '.join(other)}\n", encoding="utf-8")
    src = SlurmSource(site(known_hosts=str(known)), ssh_config=str(lab.ssh_config))
    with pytest.raises(AuthError, match="CHANGED"):
        await src.fetch()
    known.write_text("", encoding="utf-8")
    with pytest.raises(AuthError, match="not trusted"):
        await SlurmSource(site(known_hosts=str(known)), ssh_config=str(lab.ssh_config)).fetch()


async def test_dead_slurmctld_is_a_typed_error_and_the_source_recovers(lab, source):
    await source.fetch()
    lab.stop_ctld()
    try:
        started = time.monotonic()
        with pytest.raises((Unreachable, Timeout)) as err:
            await source.fetch()
        took = time.monotonic() - started
        assert took < source.timeout_s
        assert "slurmctld" in str(err.value) or "did not finish" in str(err.value)
        print(f"dead slurmctld: {type(err.value).__name__} after {took:.1f}s: {err.value}")
        # a shorter bound than Slurm's own retries: the command is cut off at the bound, and scontrol ping
        # (which answers at once) says why in Slurm's words
        quick = SlurmSource(site(timeout_s=2.0), ssh_config=str(lab.ssh_config))
        started = time.monotonic()
        with pytest.raises(
            Unreachable, match=r"slurmctld does not answer \(from login1\): Slurmctld\(primary\) at .* is DOWN"
        ):
            await quick.fetch()
        assert time.monotonic() - started < quick.timeout_s
        await quick.aclose()
    finally:
        lab.start_ctld()
    deadline = time.monotonic() + 60
    while True:  # the same source and connection read again once the controller is back
        try:
            data = await source.fetch()
            if len(data.slurm_nodes) == 4:
                break
        except SourceError:
            pass
        assert time.monotonic() < deadline, "no answer after slurmctld came back"
        await asyncio.sleep(0.2)
