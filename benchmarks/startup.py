"""Provides the start-up benchmark: process start to first painted screen of ``sovtui --demo``, and peak RSS.

Runs the real command on a pseudo-terminal (80x24), as a user's terminal would, and stops the
clock when the first frame containing the DEMO badge and a tile has been written. Prints the
median of several runs, the ratio to the 0.5 s target, and the peak RSS (VmHWM).

    python benchmarks/startup.py [--runs 7] [--target 0.5]
"""

from __future__ import annotations

import argparse
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import sys
import termios
import time


def peak_rss_kib(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def one_run(command: list[str], markers: list[bytes], timeout: float, settle: float) -> tuple[float, int | None]:
    t0 = time.perf_counter()
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ["TERM"] = "xterm-256color"
        os.environ.pop("NO_COLOR", None)
        os.execvp(command[0], command)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    seen = b""
    first_paint = None
    try:
        while time.perf_counter() - t0 < timeout:
            ready, _, _ = select.select([fd], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
                if first_paint is None and all(m in seen for m in markers):
                    first_paint = time.perf_counter() - t0
                    deadline = time.perf_counter() + settle
                    while time.perf_counter() < deadline:  # let it poll sources for a moment
                        if select.select([fd], [], [], 0.05)[0]:
                            try:
                                os.read(fd, 65536)
                            except OSError:
                                break
                    break
        rss = peak_rss_kib(pid)
    finally:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        os.close(fd)
    if first_paint is None:
        raise SystemExit(f"no first paint within {timeout}s; output tail: {seen[-400:]!r}")
    return first_paint, rss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--target", type=float, default=0.5, help="first-paint target in seconds")
    parser.add_argument("--timeout", type=float, default=20.0)
    args = parser.parse_args()
    command = [sys.executable, "-m", "sovtui", "--demo", "--seed", "7"]
    markers = [b"DEMO", b"GPUs"]
    one_run(command, markers, args.timeout, 0.0)  # warm the page cache
    times, rss = [], []
    for _ in range(args.runs):
        t, r = one_run(command, markers, args.timeout, 1.0)
        times.append(t)
        if r:
            rss.append(r)
    median = statistics.median(times)
    print(
        f"first paint: median {median * 1000:.0f} ms over {args.runs} runs (min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f})"
    )
    print(
        f"target {args.target * 1000:.0f} ms: ratio {median / args.target:.2f} ({'met' if median <= args.target else 'MISSED'})"
    )
    if rss:
        print(f"peak RSS after 1 s of polling: {max(rss) / 1024:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
