"""Provides the fleet poll benchmark: one steady-state poll of N SSH hosts against polling the slowest one alone.

Starts the test lab's real OpenSSH server on loopback (MaxStartups raised), writes an ssh config
with N host aliases that all point at it, and polls them with the SSH fleet source: one
persistent connection per alias with the probe resident on it. Prints

* connection setup: time until every host has connected, started its probe and answered once;
* the median of several steady-state fleet polls;
* the median of steady-state polls of the slowest host alone, and the ratio of the two
  (target ≤ 1.5x: the fleet costs about as much as its slowest host);
* the client's CPU time per fleet poll.

Every alias is served by the same machine, so the remote side (sshd and N probes) shares the
CPU with the client here; on a real fleet each host answers on its own CPU. ``--probe-ms``
makes the stand-in probe take that long per answer, like a real NVML read of a busy host.

    python benchmarks/fleet_poll.py [--hosts 500] [--polls 5] [--probe standin|real] [--probe-ms 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sovtui.config import SiteConfig, SshConfig  # noqa: E402
from sovtui.sources.hosts import HostsSource  # noqa: E402

#: answers every stdin line with the canned answer in $BENCH_ANSWER after $BENCH_DELAY_MS
STANDIN = r"""
import os, sys, time
answer = open(sys.argv[1]).read().strip() + "\n"
delay = float(sys.argv[2]) / 1000.0
for _ in sys.stdin:
    if delay:
        time.sleep(delay)
    sys.stdout.write(answer)
    sys.stdout.flush()
"""


def canned_answer() -> dict:
    """An 8-GPU host at work, like the probe's answer."""
    gpus = []
    for i in range(8):
        gpus.append(
            {
                "index": i,
                "uuid": f"GPU-{i:08x}-bench",
                "name": "NVIDIA H100 80GB HBM3",
                "pci_bus_id": f"00000000:{0x18 + 0x10 * i:02X}:00.0",
                "util_gpu": 97,
                "util_mem": 40,
                "mem_used_mib": 61234.0,
                "mem_total_mib": 81559.0,
                "temp_c": 61,
                "temp_slowdown_c": 87,
                "temp_shutdown_c": 92,
                "power_w": 512.5,
                "power_limit_w": 700.0,
                "sm_clock_mhz": 1980,
                "mem_clock_mhz": 2619,
                "throttle_reasons": [],
                "ecc_mode": True,
                "ecc_corrected_volatile": 0,
                "ecc_uncorrected_volatile": 0,
                "ecc_corrected_aggregate": 0,
                "ecc_uncorrected_aggregate": 0,
                "retired_pages_pending": False,
                "row_remap_pending": False,
                "row_remap_failure": False,
                "mig_mode": False,
                "mig_instances": [],
                "nvlink": [{"link": n, "active": True} for n in range(18)],
                "processes": [
                    {
                        "pid": 1000 + i,
                        "used_mib": 61000.0,
                        "name": "python3",
                        "pod": f"team-a/train-{i // 4}",
                        "container": "trainer",
                        "slurm_job": None,
                    }
                ],
                "error": "",
            }
        )
    return {
        "v": 1,
        "host": "bench",
        "t": time.time(),
        "backend": "nvml",
        "error": "",
        "driver": "550.54.15",
        "cuda": "12.4",
        "gpu_count": 8,
        "probe_ms": 3.0,
        "gpus": gpus,
        "xids": [],
    }


def real_probe_command(root: Path) -> str:
    """The real probe on the lab's fake NVML (a healthy 8-GPU host), with the environment a GPU host would have."""
    import shlex

    import pynvml

    from sovtui.sources.probe import probe_command
    from tests.lab.fakenvml import SCENARIOS, build_fake_nvml, write_state

    libdir = root / "fakenvml"
    build_fake_nvml(libdir)
    host_python = shutil.which("python3", path="/usr/bin:/bin") or "python3"
    for tool in (libdir / "bin").iterdir():  # the lab user cannot run this venv's python
        tool.write_text(tool.read_text().replace(shlex.quote(sys.executable), host_python, 1))
    pylib = root / "pylib"
    pylib.mkdir()
    shutil.copy(pynvml.__file__, pylib / "pynvml.py")
    state = write_state(root / "state", SCENARIOS["healthy"]())
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
    env = {
        "LD_LIBRARY_PATH": libdir,
        "FAKE_NVML_STATE": state,
        "PYTHONPATH": pylib,
        "PATH": f"{libdir / 'bin'}:/usr/bin:/bin",
    }
    return " ".join(f"{k}={shlex.quote(str(v))}" for k, v in env.items()) + " " + probe_command()


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class StallMeter:
    """How late a 10 ms ticker on the event loop runs: what a UI on the same loop would feel."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task | None = None

    async def _tick(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.01)
            self.worst = max(self.worst, time.perf_counter() - t0 - 0.01)

    def __enter__(self) -> StallMeter:
        self._task = asyncio.get_running_loop().create_task(self._tick())
        return self

    def __exit__(self, *exc) -> None:
        assert self._task is not None
        self._task.cancel()


async def timed_polls(
    source: HostsSource, polls: int, interval_s: float, executor: ThreadPoolExecutor
) -> tuple[list[float], list[float], float, object]:
    walls, cpus, data = [], [], None
    with StallMeter() as stall:
        for _ in range(polls):
            c0, t0 = cpu_s(), time.perf_counter()
            data = await source.fetch(executor)
            walls.append(time.perf_counter() - t0)
            cpus.append(cpu_s() - c0)
            await asyncio.sleep(interval_s)
    return walls, cpus, stall.worst, data


async def run(args: argparse.Namespace, workdir: Path) -> int:
    from tests.lab.sshd import start_sshd

    lab = start_sshd(workdir / "sshd")
    try:
        names = [f"fleet-{i:04d}" for i in range(args.hosts)]
        config = workdir / "ssh_config"
        config.write_text(
            "".join(
                f"Host {name}\n  HostName {lab.host}\n  Port {lab.port}\n  User {lab.user}\n"
                f"  IdentityFile {lab.client_key}\n  IdentitiesOnly yes\n"
                for name in names
            ),
            encoding="utf-8",
        )
        if args.probe == "real":
            probe_cmd = real_probe_command(workdir / "host")
        else:
            share = workdir / "share"
            share.mkdir(mode=0o755)
            (share / "standin.py").write_text(STANDIN, encoding="utf-8")
            (share / "answer.json").write_text(json.dumps(canned_answer()), encoding="utf-8")
            for path in (share / "standin.py", share / "answer.json"):
                path.chmod(0o644)
            probe_cmd = f"exec python3 -u {share / 'standin.py'} {share / 'answer.json'} {args.probe_ms}"

        site = SiteConfig(
            name="bench",
            ssh=SshConfig(
                hosts=tuple(names),
                known_hosts=str(lab.known_hosts),
                concurrency=args.concurrency,
                timeout_s=args.timeout,
            ),
        )
        fleet = HostsSource(site, ssh_config=str(config), probe_cmd=probe_cmd)
        executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="bench")  # as the hub passes
        single = None
        try:
            # connection setup: poll until every host has answered once
            t0 = time.perf_counter()
            c0 = cpu_s()
            first = await fleet.fetch(executor)
            first_s = time.perf_counter() - t0
            first_ok = sum(1 for h in first.gpu_hosts if not h.error)
            data = first
            while sum(1 for h in data.gpu_hosts if not h.error) < args.hosts:
                if time.perf_counter() - t0 > args.setup_limit:
                    errors = sorted({h.error for h in data.gpu_hosts if h.error})
                    print(
                        f"setup: only {sum(1 for h in data.gpu_hosts if not h.error)} of {args.hosts} hosts "
                        f"answered in {args.setup_limit:g}s: {errors[:5]}"
                    )
                    return 1
                data = await fleet.fetch(executor)
            setup_s = time.perf_counter() - t0
            setup_cpu = cpu_s() - c0
            print(
                f"connection setup: {args.hosts} hosts connected, probe started and answered in {setup_s:.2f} s "
                f"(first poll {first_s:.2f} s with {first_ok} ready; client CPU {setup_cpu:.2f} s; "
                f"concurrency {args.concurrency})"
            )

            walls, cpus, stall, data = await timed_polls(fleet, args.polls, args.pause, executor)
            bad = [h for h in data.gpu_hosts if h.error]
            gpus = len(data.gpus)
            fleet_s = statistics.median(walls)
            slowest = max(data.gpu_hosts, key=lambda h: h.latency_s or 0.0)
            print(
                f"fleet poll: median {fleet_s * 1000:.0f} ms over {args.polls} polls "
                f"({', '.join(f'{w * 1000:.0f}' for w in walls)} ms); {gpus} GPUs, {len(bad)} host errors; "
                f"client CPU {statistics.median(cpus) * 1000:.0f} ms per poll; event loop stalled "
                f"at most {stall * 1000:.0f} ms"
            )

            single = HostsSource(site, hosts=[slowest.name], ssh_config=str(config), probe_cmd=probe_cmd)
            await single.fetch(executor)
            swalls, _, _, _ = await timed_polls(single, args.polls, args.pause, executor)
            single_s = statistics.median(swalls)
            ratio = fleet_s / single_s if single_s > 0 else float("inf")
            verdict = "ok" if ratio <= args.target else "over target"
            print(
                f"slowest host alone ({slowest.name}, {slowest.latency_s * 1000:.0f} ms in the fleet poll): "
                f"median {single_s * 1000:.0f} ms"
            )
            print(
                f"ratio fleet / slowest host: {ratio:.2f}x (target ≤ {args.target:g}x: {verdict}); "
                f"probe {args.probe}" + (f" answering in {args.probe_ms:g} ms" if args.probe == "standin" else "")
            )
            return 0
        finally:
            if single is not None:
                await single.aclose()
            await fleet.aclose()
            executor.shutdown(wait=False)
    finally:
        lab.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--polls", type=int, default=5)
    parser.add_argument("--pause", type=float, default=0.5, help="seconds between polls")
    parser.add_argument("--probe", choices=("standin", "real"), default="standin")
    parser.add_argument("--probe-ms", type=float, default=100.0, help="stand-in probe's time per answer")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=10.0, help="per-host timeout (site.ssh.timeout_s)")
    parser.add_argument("--setup-limit", type=float, default=180.0)
    parser.add_argument("--target", type=float, default=1.5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sovtui-fleet-bench-"))
    workdir.chmod(0o755)  # the lab user reads the stand-in probe in here
    try:
        return asyncio.run(run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if os.environ.get("SOVTUI_BENCH_KEEP"):
            print(f"kept {workdir}")


if __name__ == "__main__":
    sys.exit(main())
