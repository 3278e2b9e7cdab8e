"""Provides the fault matrix's Slurm cells: the lab's real Slurm read over a login sshd that sits behind a fault proxy."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sovtui.app import SovtuiApp
from sovtui.config import SiteConfig, SlurmConfig, SshConfig
from sovtui.model.types import SiteInfo
from sovtui.sources.slurm import SlurmSource
from tests.faults.harness import check_fault
from tests.lab.faultproxy import FaultProxy
from tests.lab.procs import free_port, require_binary, start_daemon, wait_port

pytestmark = [pytest.mark.slurm, pytest.mark.ssh, pytest.mark.ui]

TIMEOUT_S = 1.5

#: in front of the real sinfo/squeue on the login host: what its mode file says it prints instead
_WRAPPER = """#!/bin/sh
case "$(cat {mode} 2>/dev/null)" in
  garbage) echo '<html><body>502 Bad Gateway</body></html>'; exit 0 ;;
  wrong-types) echo '{{"nodes": "many", "jobs": 7, "meta": 3}}'; exit 0 ;;
  refused) echo '{tool}: error: Access/permission denied'; exit 1 ;;
esac
exec {real} "$@"
"""


class FaultLogin:
    """A second login sshd for the lab's Slurm (same keys, a PATH with a stand-in sinfo), behind a fault proxy."""

    def __init__(self, lab, root: Path) -> None:
        self.lab = lab
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)
        self.root = root
        bindir = root / "bin"
        bindir.mkdir(exist_ok=True)
        bindir.chmod(0o755)
        self.modes = {}
        for tool in ("sinfo", "squeue"):
            mode = self.modes[tool] = root / f"{tool}.mode"
            mode.write_text("", encoding="utf-8")
            mode.chmod(0o644)
            wrapper = bindir / tool
            wrapper.write_text(
                _WRAPPER.format(mode=mode, tool=tool, real=require_binary(tool, "slurm")), encoding="utf-8"
            )
            wrapper.chmod(0o755)
        login = lab.workdir / "login"
        lines = []
        for line in (login / "sshd_config").read_text(encoding="utf-8").splitlines():
            if line.startswith("PidFile "):
                line = f"PidFile {root / 'sshd.pid'}"
            elif line.startswith("SetEnv "):
                line = f"{line} PATH={bindir}:/usr/local/bin:/usr/bin:/bin"
            lines.append(line)
        config = root / "sshd_config"
        config.write_text("\n".join(lines) + "\n", encoding="utf-8")
        port = free_port()
        sshd = require_binary("/usr/sbin/sshd", "slurm", candidates=("sshd",))
        self.daemon = start_daemon("sshd-login-faults", [sshd, "-D", "-e", "-f", str(config), "-p", str(port)], root)
        wait_port("127.0.0.1", port, daemon=self.daemon, timeout_s=15, banner=b"SSH-2.0")
        self.proxy = FaultProxy("127.0.0.1", port)
        host_pub = " ".join((login / "ssh_host_ed25519_key.pub").read_text(encoding="utf-8").split()[:2])
        self.known_hosts = root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.proxy.port} {host_pub}\n", encoding="utf-8")
        self.bad_key = root / "id_ed25519_not_authorized"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.bad_key)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.ssh_config = root / "ssh_config"
        self.write_config()

    def write_config(self, *, bad_key: bool = False) -> None:
        key = self.bad_key if bad_key else self.lab.client_key
        tmp = self.ssh_config.with_suffix(".tmp")
        tmp.write_text(
            f"Host {self.lab.alias}\n  HostName 127.0.0.1\n  Port {self.proxy.port}\n  User {self.lab.user}\n"
            f"  IdentityFile {key}\n  IdentitiesOnly yes\n  UserKnownHostsFile {self.known_hosts}\n",
            encoding="utf-8",
        )
        tmp.replace(self.ssh_config)

    def sinfo(self, mode: str) -> None:
        self.modes["sinfo"].write_text(mode, encoding="utf-8")

    def squeue(self, mode: str) -> None:
        self.modes["squeue"].write_text(mode, encoding="utf-8")

    def cut(self) -> None:
        """Drop the open connection (reset); new ones pass."""
        self.proxy.set("reset")
        self.proxy.heal()

    def close(self) -> None:
        self.proxy.close()
        self.daemon.stop()


@pytest.fixture(scope="module")
def login(slurm_lab, lab_dir):
    root = lab_dir / "slurm-faults"
    shutil.rmtree(root, ignore_errors=True)
    fl = FaultLogin(slurm_lab, root)
    try:
        yield fl
    finally:
        fl.close()


def _app(fl: FaultLogin, timeout_s: float = TIMEOUT_S) -> SovtuiApp:
    site = SiteConfig(
        name="lab", refresh_s=1.0, ssh=SshConfig(), slurm=SlurmConfig(host=fl.lab.alias, timeout_s=timeout_s)
    )
    return SovtuiApp(SiteInfo("lab"), [SlurmSource(site, ssh_config=str(fl.ssh_config))], watch_tty=False)


def _nodes_shown(app) -> bool:
    return len(app.view.slurm_nodes or ()) == 4


def _ctld_down(fl: FaultLogin) -> None:
    fl.lab.stop_ctld()


def _ctld_up(fl: FaultLogin) -> None:
    fl.lab.start_ctld()


_CELLS = {
    # fault: (inject, heal, says, the source's command timeout)
    "down": (lambda fl: fl.proxy.set("refuse"), lambda fl: fl.proxy.heal(), ("slurm", "refused"), TIMEOUT_S),
    "slow": (
        lambda fl: fl.proxy.set("slow", delay_s=10 * TIMEOUT_S),
        lambda fl: fl.proxy.heal(),
        ("slurm", "no SSH answer", "1.5s"),
        TIMEOUT_S,
    ),
    "401": (
        lambda fl: (fl.write_config(bad_key=True), fl.cut()),
        lambda fl: fl.write_config(),
        ("slurm", "permission denied"),
        TIMEOUT_S,
    ),
    "garbage": (
        lambda fl: fl.sinfo("garbage"),
        lambda fl: fl.sinfo(""),
        ("slurm", "sinfo --json answered no JSON"),
        TIMEOUT_S,
    ),
    "wrong-types": (
        lambda fl: fl.sinfo("wrong-types"),
        lambda fl: fl.sinfo(""),
        ("slurm", "sinfo --json", "shape sovtui cannot read", "'nodes'"),
        TIMEOUT_S,
    ),
    # sinfo waits ~9 s for a dead controller: cut at the bound, then scontrol ping says why in Slurm's words
    "daemon-down": (_ctld_down, _ctld_up, ("slurm", "slurmctld does not answer", "is DOWN"), TIMEOUT_S),
}


@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.fault("slurm", f), id=f) for f in _CELLS])
async def test_slurm_fault(login, fault):
    inject, heal, says, timeout_s = _CELLS[fault]
    app = _app(login, timeout_s)
    healed = []

    def healing():
        heal(login)
        healed.append(True)

    started = time.monotonic()
    try:
        async with app.run_test(size=(160, 30)) as pilot:
            seen = await check_fault(
                pilot,
                "slurm",
                inject=lambda: inject(login),
                heal=healing,
                says=says,
                kept=_nodes_shown,
                state="failing",
                first_s=30,
                fault_s=30,
                recover_s=60,
            )
    finally:
        if not healed:
            heal(login)
    print(f"slurm x {fault}: {time.monotonic() - started:.1f}s; header: {seen['header'].splitlines()[-1]}")


@pytest.mark.parametrize(
    "mode,says",
    [("refused", ("squeue", "refused", "permission denied")), ("wrong-types", ("squeue", "no 'jobs' list"))],
)
async def test_squeue_fails_alone_nodes_and_last_jobs_stay(login, mode, says):
    """squeue is a part of its own: when it fails the nodes still update (sinfo), the last queues stay, named partial."""
    app = _app(login)

    def queues_kept(app) -> bool:
        return _nodes_shown(app) and any(q.system == "slurm" for q in app.view.queues or ())

    try:
        async with app.run_test(size=(160, 30)) as pilot:
            seen = await check_fault(
                pilot,
                "slurm",
                inject=lambda: login.squeue(mode),
                heal=lambda: login.squeue(""),
                says=("slurm partial", *says),
                kept=queues_kept,
                state="partial",
            )
    finally:
        login.squeue("")
    (part,) = seen["status"].failing_parts
    assert part.name == "squeue" and part.last_ok_at is not None


async def test_squeue_that_never_answered_leaves_queues_unknown_not_empty(login):
    site = SiteConfig(
        name="lab", refresh_s=1.0, ssh=SshConfig(), slurm=SlurmConfig(host=login.lab.alias, timeout_s=5.0)
    )
    source = SlurmSource(site, ssh_config=str(login.ssh_config))
    login.squeue("refused")
    try:
        data = await source.fetch()
        assert len(data.slurm_nodes) == 4 and data.queues is None
        parts = {p.name: p for p in data.parts}
        assert parts["sinfo"].ok and not parts["squeue"].ok and parts["squeue"].last_ok_at is None
        assert "permission denied" in parts["squeue"].error.lower()
        login.squeue("")
        data = await source.fetch()
        assert data.queues is not None and all(p.ok for p in data.parts)
    finally:
        login.squeue("")
        await source.aclose()
