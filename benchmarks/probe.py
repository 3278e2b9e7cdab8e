"""Provides the GPU probe benchmark: a resident ``--serve`` request against starting ``gpustat --json`` per poll.

Runs locally (no SSH) on the fake 8x H100 host of the test lab: builds the fake libnvidia-ml.so.1
with gcc, starts the probe the way sovtui starts it on a host (``probe_command()`` through
``/bin/sh``), and times steady-state requests (wall time per request and the probe's own
``probe_ms``), then times fresh ``gpustat --json`` processes on the same fake host. Prints the
medians and the ratio.

    python benchmarks/probe.py [--requests 200] [--gpustat-runs 10]

gpustat sleeps 0.1 s per GPU whose process list NVML returns (even an empty one) to sample CPU
use, so most of its time on an 8-GPU host is that sleep; ``probe --once`` (a fresh process per
poll, no kernel log) is printed too, to separate process start-up from the resident saving.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sovtui.sources.probe import probe_command  # noqa: E402 - after the path set-up above
from tests.lab.fakenvml import SCENARIOS, build_fake_nvml, fake_env, write_state  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_serve(env: dict[str, str], requests: int, warmup: int) -> tuple[list[float], list[float], float]:
    started = time.perf_counter()
    proc = subprocess.Popen(
        ["/bin/sh", "-c", probe_command(sys.executable)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall, probe = [], []
    first = None
    try:
        for i in range(warmup + requests):
            t0 = time.perf_counter()
            proc.stdin.write("poll\n")
            proc.stdin.flush()
            doc = json.loads(proc.stdout.readline())
            elapsed = (time.perf_counter() - t0) * 1000
            if first is None:
                first = (time.perf_counter() - started) * 1000
            assert doc["backend"] == "nvml" and doc["gpu_count"] == 8, doc.get("error")
            if i >= warmup:
                wall.append(elapsed)
                probe.append(doc["probe_ms"])
        proc.stdin.close()
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return wall, probe, first or 0.0


def bench_process(argv: list[str], env: dict[str, str], runs: int) -> list[float]:
    """Wall ms of a fresh process per poll (what a poller without a resident probe pays)."""
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
        out.append((time.perf_counter() - t0) * 1000)
        assert done.returncode == 0 and len(json.loads(done.stdout)["gpus"]) == 8, done.stderr
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gpustat-runs", type=int, default=10)
    parser.add_argument("--scenario", default="healthy", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sovtui-probe-bench-") as tmp:
        libdir = Path(tmp) / "fakenvml"
        build_fake_nvml(libdir)
        state = write_state(Path(tmp) / "state", SCENARIOS[args.scenario]())
        env = fake_env(libdir, state)
        wall, probe, first = bench_serve(env, args.requests, args.warmup)
        gpustat = bench_process([str(Path(sys.executable).with_name("gpustat")), "--json"], env, args.gpustat_runs)
        once = bench_process(
            ["/bin/sh", "-c", probe_command(sys.executable, "--once", "--no-xids")], env, args.gpustat_runs
        )
    serve_ms = statistics.median(wall)
    gpustat_ms = statistics.median(gpustat)
    print(f"fake host: 8x H100 ({args.scenario}), python {sys.version.split()[0]}")
    print(f"probe --serve   start + first answer {first:8.1f} ms")
    print(
        f"probe --serve   per request   median {serve_ms:8.2f} ms  p95 {pct(wall, 0.95):6.2f} ms  ({len(wall)} requests)"
    )
    print(f"probe --serve   probe_ms      median {statistics.median(probe):8.2f} ms  p95 {pct(probe, 0.95):6.2f} ms")
    print(
        f"probe --once    per call      median {statistics.median(once):8.1f} ms  p95 {pct(once, 0.95):6.1f} ms  ({len(once)} runs, fresh process)"
    )
    print(
        f"gpustat --json  per call      median {gpustat_ms:8.1f} ms  p95 {pct(gpustat, 0.95):6.1f} ms  ({len(gpustat)} runs)"
    )
    print(f"ratio gpustat / probe request: {gpustat_ms / serve_ms:.0f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
