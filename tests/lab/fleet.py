"""Provides the SSH fleet lab: fake GPU hosts behind real sshd processes with the fake NVML, and canned probe answers."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pynvml

from sovtui.config import SiteConfig, SshConfig
from sovtui.sources.hosts import HostsSource

from .procs import Daemon, free_port, require_binary, start_daemon, wait_port
from .sshd import SshLab, _keygen
from .stubs import SilentServer

# ================================================================================== canned answers
T0 = 1_790_000_000.0


def gpu_json(index: int, **over) -> dict:
    """One GPU entry of a probe answer (an H100 at work), with overrides."""
    bus = 0x18 + 0x10 * index
    base = {
        "index": index,
        "uuid": f"GPU-{index:02d}aa-bbbb",
        "name": "NVIDIA H100 80GB HBM3",
        "pci_bus_id": f"00000000:{bus:02X}:00.0",
        "util_gpu": 97,
        "util_mem": 40,
        "mem_used_mib": 1234.0,
        "mem_total_mib": 81559.0,
        "temp_c": 61,
        "temp_slowdown_c": 87,
        "temp_shutdown_c": 92,
        "power_w": 312.5,
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
        "processes": [],
        "error": "",
    }
    base.update(over)
    return base


def answer(host: str, gpus: list[dict], xids: list[dict] | None = None, **over) -> dict:
    data = {
        "v": 1,
        "host": host,
        "t": T0,
        "backend": "nvml",
        "error": "",
        "driver": "550.54.15",
        "cuda": "12.4",
        "gpu_count": len(gpus),
        "probe_ms": 3.1,
        "gpus": gpus,
        "xids": xids or [],
    }
    data.update(over)
    return data


# ================================================================================== the fleet
#: a stand-in for the probe, for protocol faults the real one does not make: same protocol (one
#: JSON line per stdin line, exit on EOF); it answers from the file $SOVTUI_TEST_STATE.json
STANDIN = r"""
import json, os, sys, time
state = os.environ["SOVTUI_TEST_STATE"]
with open(state + ".starts", "a") as f:
    f.write(f"{os.getpid()}\n")
for _ in sys.stdin:
    with open(state + ".json") as f:
        text = f.read()
    if text.startswith("RAW:"):
        sys.stdout.write(text[4:].rstrip("\n") + "\n")
    elif text.startswith("EXIT:"):
        sys.stderr.write("probe blew up\n")
        sys.exit(int(text[5:]))
    elif text.startswith("SLEEP:"):
        time.sleep(float(text[6:]))
        sys.stdout.write("{}\n")
    else:
        sys.stdout.write(json.dumps(json.loads(text)) + "\n")
    sys.stdout.flush()
"""


@dataclass
class FakeHost:
    """One fake GPU host: its own sshd (own port, host key and environment: the fake NVML's state file)."""

    name: str
    port: int
    state: Path  # prefix: <state>.nvml (fake NVML), <state>.json (stand-in probe), <state>.starts
    scenario: dict | None = None
    host_public_key: str = ""
    daemon: Daemon | None = None
    argv: list[str] = field(default_factory=list)
    workdir: Path | None = None

    def starts(self) -> list[int]:
        path = Path(f"{self.state}.starts")
        return [int(x) for x in path.read_text().split()] if path.exists() else []


class Fleet:
    """Fake GPU hosts behind real sshd processes, an ssh config with aliases and a known_hosts.

    Each host runs the real probe (``probe_cmd``) with the real nvidia-ml-py on the fake
    ``libnvidia-ml.so.1``; its sshd sets ``LD_LIBRARY_PATH``, ``FAKE_NVML_STATE``, ``PYTHONPATH``
    and ``PATH`` (fake journalctl/dmesg/nvidia-smi) for every session, as a real host's
    environment would be. ``standin_cmd`` runs the stand-in probe instead.
    """

    def __init__(self, lab: SshLab, root: Path) -> None:
        from sovtui.sources.probe import probe_command
        from tests.lab.fakenvml import build_fake_nvml

        self.lab = lab
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.states = root / "states"
        self.states.mkdir(exist_ok=True)
        self.states.chmod(0o777)  # the lab user's probes write their start marks here
        # the fake NVML, and its fake command-line tools run by the system python3 of the "host"
        self.libdir = root / "fakenvml"
        build_fake_nvml(self.libdir, gcc=require_binary("gcc", "ssh"))
        host_python = shutil.which("python3", path="/usr/bin:/bin") or "python3"
        for tool in (self.libdir / "bin").iterdir():
            text = tool.read_text().replace(shlex.quote(sys.executable), host_python, 1)
            tool.write_text(text)
        # nvidia-ml-py for the host's python3 (the venv is not readable by the lab user)
        self.pylib = root / "pylib"
        self.pylib.mkdir(exist_ok=True)
        shutil.copy(Path(pynvml.__file__), self.pylib / "pynvml.py")
        for path in [*root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() or os.access(path, os.X_OK) else 0o644)
        self.states.chmod(0o777)
        self.standin = root / "standin_probe.py"
        self.standin.write_text(STANDIN, encoding="utf-8")
        self.standin.chmod(0o644)
        self.standin_cmd = f"exec python3 -u {self.standin}"
        # the real probe, its kernel log read at every poll; the shell notes the probe's PID first
        self.probe_cmd = 'echo $$ >> "$SOVTUI_TEST_STATE.starts"; exec ' + probe_command(
            "python3", "--serve", "--xid-interval", "0"
        )
        self.hosts: dict[str, FakeHost] = {}
        self.silent: list[SilentServer] = []
        self.ssh_config = root / "ssh_config"
        self.known_hosts = root / "known_hosts"
        self._template = (lab.workdir / "sshd_config").read_text(encoding="utf-8")
        self._sshd = require_binary("/usr/sbin/sshd", "ssh", candidates=("sshd",))
        self._keygen = require_binary("ssh-keygen", "ssh")

    # -- building ----------------------------------------------------------------------------
    def add_sshd(self, name: str, scenario: dict) -> FakeHost:
        workdir = self.root / name
        workdir.mkdir(exist_ok=True)
        key = workdir / "ssh_host_ed25519_key"
        pub = " ".join(_keygen(self._keygen, key, f"{name}-host").split()[:2])
        host = FakeHost(name, free_port(), self.states / name, host_public_key=pub, workdir=workdir)
        self.hosts[name] = host
        self.set_scenario(name, scenario)
        self.set_answer(name, answer(name, [gpu_json(i) for i in range(4)]))
        lines = []
        for line in self._template.splitlines():
            if line.startswith("HostKey "):
                line = f"HostKey {key}"
            elif line.startswith("PidFile "):
                line = f"PidFile {workdir / 'sshd.pid'}"
            lines.append(line)
        env = {
            "SOVTUI_TEST_STATE": host.state,
            "FAKE_NVML_STATE": f"{host.state}.nvml",
            "LD_LIBRARY_PATH": self.libdir,
            "PYTHONPATH": self.pylib,
            "PATH": f"{self.libdir / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        }
        lines.append("SetEnv " + " ".join(f"{k}={v}" for k, v in env.items()))
        config = workdir / "sshd_config"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        host.argv = [self._sshd, "-D", "-e", "-f", str(config), "-p", str(host.port)]
        self.start(name)
        return host

    def add_closed(self, name: str) -> FakeHost:
        host = FakeHost(name, free_port(), self.states / name)
        self.hosts[name] = host
        return host

    def add_silent(self, name: str) -> FakeHost:
        server = SilentServer()
        self.silent.append(server)
        host = FakeHost(name, int(server.url.rsplit(":", 1)[1]), self.states / name)
        self.hosts[name] = host
        return host

    def write_files(
        self,
        *,
        unknown: tuple[str, ...] = (),
        changed: tuple[str, ...] = (),
        bulk: int = 0,
        bulk_target: str = "gpu01",
        jumps: dict[str, tuple[str, str]] | None = None,
    ) -> None:
        """The ssh config and known_hosts: one alias per host, ``bulk`` aliases of ``bulk_target``, and
        ``jumps`` aliases (alias → (host, jump host)) reached through a ProxyJump."""
        jumps = jumps or {}
        blocks = []
        for host in self.hosts.values():
            blocks.append(f"Host {host.name}\n  HostName 127.0.0.1\n  Port {host.port}\n")
        target = self.hosts[bulk_target]
        blocks.append(f"Host bulk-*\n  HostName 127.0.0.1\n  Port {target.port}\n" if bulk else "")
        for alias, (to, via) in jumps.items():
            blocks.append(f"Host {alias}\n  HostName 127.0.0.1\n  Port {self.hosts[to].port}\n  ProxyJump {via}\n")
        blocks.append(
            f"Host *\n  User {self.lab.user}\n  IdentityFile {self.lab.client_key}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
        )  # for jump hosts, which asyncssh checks itself
        self.ssh_config.write_text("\n".join(blocks), encoding="utf-8")
        known = []
        for host in self.hosts.values():
            if host.name in unknown or not host.host_public_key:
                continue
            key = _other_key() if host.name in changed else host.host_public_key
            known.append(f"[127.0.0.1]:{host.port} {key}")
        self.known_hosts.write_text("\n".join(known) + "\n", encoding="utf-8")
        self.bulk = [f"bulk-{i:03d}" for i in range(bulk)]

    # -- driving -----------------------------------------------------------------------------
    def set_scenario(self, name: str, scenario: dict) -> None:
        """What the fake NVML (and kernel log) of the host shows from now on."""
        from tests.lab.fakenvml import write_state

        host = self.hosts[name]
        host.scenario = scenario
        write_state(f"{host.state}.nvml", scenario)
        Path(f"{host.state}.nvml").chmod(0o644)

    def set_answer(self, name: str, answer_or_text: dict | str) -> None:
        """What the stand-in probe of the host answers from now on."""
        host = self.hosts[name]
        text = answer_or_text if isinstance(answer_or_text, str) else json.dumps(answer_or_text)
        tmp = Path(f"{host.state}.json.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(f"{host.state}.json")

    def start(self, name: str) -> None:
        host = self.hosts[name]
        assert host.workdir is not None
        host.daemon = start_daemon(f"sshd-{name}", host.argv, host.workdir)
        wait_port("127.0.0.1", host.port, daemon=host.daemon, timeout_s=15, banner=b"SSH-2.0")

    def stop(self, name: str) -> None:
        """Stop the host's sshd and every session it started (the connection and the probe die).

        sshd puts each connection in a session of its own, so stopping the listener's process
        group leaves them running: they are found as its descendants first and killed by PID.
        """
        host = self.hosts[name]
        if host.daemon is None or host.daemon.pid is None:
            return
        children = _descendants(host.daemon.pid)
        host.daemon.stop()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def site(self, *, timeout_s: float = 5.0, concurrency: int = 16, known_hosts: str | None = "") -> SiteConfig:
        kh = str(self.known_hosts) if known_hosts == "" else known_hosts
        return SiteConfig(
            name="lab",
            refresh_s=1.0,
            ssh=SshConfig(hosts=tuple(self.hosts), known_hosts=kh, concurrency=concurrency, timeout_s=timeout_s),
        )

    def source(
        self,
        names: list[str],
        *,
        timeout_s: float = 5.0,
        probe_cmd: str | None = None,
        known_hosts: str | None = "",
        **kw,
    ) -> HostsSource:
        return HostsSource(
            self.site(timeout_s=timeout_s, known_hosts=known_hosts),
            hosts=names,
            ssh_config=str(self.ssh_config),
            probe_cmd=probe_cmd or self.probe_cmd,
            **kw,
        )

    def close(self) -> None:
        for name in self.hosts:
            self.stop(name)
        for server in self.silent:
            server.close()


def _descendants(root: int) -> list[int]:
    """PIDs of every process below ``root`` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _other_key() -> str:
    import asyncssh

    return " ".join(asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().split()[:2])
