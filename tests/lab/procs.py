"""Provides daemon handling for the test lab: start by hand, wait until ready, stop by PID."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SKIP_ENV = "SOVTUI_LAB_SKIP"


class LabError(RuntimeError):
    """A lab daemon could not be started or did not become ready; the message carries its log tail."""


def skipped_components() -> set[str]:
    """Components named in ``$SOVTUI_LAB_SKIP`` (comma or space separated)."""
    raw = os.environ.get(SKIP_ENV, "")
    return {part.strip().lower() for part in raw.replace(" ", ",").split(",") if part.strip()}


def require_binary(name: str, component: str, *, candidates: Sequence[str] = ()) -> str:
    """The path of a binary the lab needs: skip if the component is opted out, else fail loudly."""
    for candidate in (name, *candidates):
        found = shutil.which(candidate) or (
            candidate if os.path.isabs(candidate) and os.access(candidate, os.X_OK) else None
        )
        if found:
            return found
    if component in skipped_components():
        pytest.skip(f"{component} lab skipped: {name} is not installed ({SKIP_ENV}={os.environ.get(SKIP_ENV)})")
    pytest.fail(
        f"lab component {component!r} needs {name!r}, which is not installed. "
        f"Run scripts/test (it installs the lab packages) or opt out with {SKIP_ENV}={component}.",
        pytrace=False,
    )
    raise AssertionError("unreachable")  # pragma: no cover


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on loopback right now (chosen by the kernel)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


@dataclass
class Daemon:
    """One process the lab started, known by its PID; its output goes to ``log_path``."""

    name: str
    argv: list[str]
    log_path: Path
    proc: subprocess.Popen | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    _log_file: object | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> Daemon:
        if self.alive():
            raise LabError(f"{self.name} already runs as PID {self.pid}")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab", buffering=0)
        log.write(f"\n=== start {time.strftime('%H:%M:%S')}: {' '.join(self.argv)}\n".encode())
        try:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
            )
        except OSError as exc:
            log.close()
            raise LabError(f"cannot start {self.name} ({self.argv[0]}): {exc}") from None
        self._log_file = log
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, why: str) -> LabError:
        state = (
            f"exited with {self.proc.returncode}" if self.proc and self.proc.poll() is not None else f"PID {self.pid}"
        )
        return LabError(f"{self.name} ({state}): {why}\n--- {self.log_path} (tail) ---\n{self.log_tail()}")

    def stop(self, grace_s: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; also ends what it left in its own process group."""
        proc = self.proc
        if proc is not None and proc.returncode is None:
            _signal(proc.pid, signal.SIGTERM)
            if not _exited(proc.pid, grace_s):
                _signal(proc.pid, signal.SIGKILL)
                _exited(proc.pid, 10.0)
            # Not reaped yet, so its PID (= its process group id) cannot have been reused: children
            # it left behind (e.g. sshd's per-connection processes) are ours to end.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None


def _exited(pid: int, timeout_s: float) -> bool:
    """Wait until ``pid`` (our child) exits, without reaping it (``WNOWAIT``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT | os.WNOHANG) is not None:
                return True
        except ChildProcessError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def start_daemon(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Daemon:
    """Start ``argv`` in its own session with output to ``log_dir/name.log``."""
    full_env = None if env is None else {**os.environ, **env}
    return Daemon(name, list(argv), Path(log_dir) / f"{name}.log", env=full_env, cwd=cwd).start()


def wait_until(
    check: Callable[[], object],
    *,
    daemon: Daemon | None = None,
    timeout_s: float = 15.0,
    interval_s: float = 0.02,
    what: str = "ready",
) -> object:
    """Call ``check`` until it returns something truthy; raise with the daemon's log tail on deadline."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    delay = interval_s
    while True:
        if daemon is not None and not daemon.alive():
            raise daemon.fail(f"exited before it was {what}")
        try:
            result = check()
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            result, last_error = None, f"{type(exc).__name__}: {exc}"
        if result:
            return result
        if time.monotonic() > deadline:
            why = f"not {what} after {timeout_s:g}s" + (f" (last error: {last_error})" if last_error else "")
            if daemon is not None:
                raise daemon.fail(why)
            raise LabError(why)
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def http_ok(url: str, timeout_s: float = 1.0) -> bool:
    """True when ``url`` answers 2xx."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return 200 <= resp.status < 300
    except urllib.error.HTTPError:
        return False


def wait_http(url: str, *, daemon: Daemon | None = None, timeout_s: float = 15.0) -> None:
    """Wait until ``url`` answers 2xx."""
    wait_until(lambda: http_ok(url), daemon=daemon, timeout_s=timeout_s, what=f"answering {url}")


def port_open(host: str, port: int, *, banner: bytes = b"") -> bool:
    """True when ``host:port`` accepts a connection (and sends ``banner`` first, if given)."""
    with socket.create_connection((host, port), timeout=1.0) as sock:
        if banner:
            sock.settimeout(2.0)
            return sock.recv(len(banner)) == banner
    return True


def wait_port(
    host: str, port: int, *, daemon: Daemon | None = None, timeout_s: float = 15.0, banner: bytes = b""
) -> None:
    """Wait until ``host:port`` accepts connections."""
    wait_until(
        lambda: port_open(host, port, banner=banner),
        daemon=daemon,
        timeout_s=timeout_s,
        what=f"listening on {host}:{port}",
    )
