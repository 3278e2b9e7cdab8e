"""Provides tests of sovtui on a real pseudo-terminal: first paint, and a clean exit when the terminal goes away."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import sys
import termios
import time

import pytest

pytestmark = pytest.mark.ui


def _spawn(tmp_path) -> tuple[int, int]:
    pid, fd = pty.fork()
    if pid == 0:  # the child: sovtui on the demo, as a user would start it
        os.environ.update(TERM="xterm-256color", XDG_STATE_HOME=str(tmp_path / "state"))
        os.execv(sys.executable, [sys.executable, "-m", "sovtui", "--demo"])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return pid, fd


def _read_until(fd: int, needle: bytes, timeout_s: float) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout_s
    while needle not in seen and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                seen += os.read(fd, 65536)
            except OSError:
                break
    return seen


def _wait_exit(pid: int, timeout_s: float) -> int | None:
    """The exit status, or None if still running after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # already reaped
            return 0
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.1)


def test_exits_when_the_terminal_hangs_up(tmp_path):
    pid, fd = _spawn(tmp_path)
    try:
        assert b"DEMO" in _read_until(fd, b"DEMO", 20), "no first paint"
        os.close(fd)  # the SSH session drops: the pty master goes away
        fd = -1
        status = _wait_exit(pid, 10)
        assert status is not None, "sovtui kept running after its terminal went away"
    finally:
        if fd >= 0:
            os.close(fd)
        if _wait_exit(pid, 0) is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)


def test_ctrl_q_quits_and_restores_the_terminal(tmp_path):
    pid, fd = _spawn(tmp_path)
    try:
        assert b"DEMO" in _read_until(fd, b"DEMO", 20)
        os.write(fd, b"\x11")  # ctrl+q
        status = _wait_exit(pid, 10)
        assert status is not None and os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        os.close(fd)
        if _wait_exit(pid, 0) is None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
