"""Provides the Slurm lab: munged, slurmctld and four slurmd (gpu01-gpu04, 4 fake H100 each) and a login host over sshd.

Every daemon runs on loopback with its own files under the lab dir and its own free ports, started
by hand and stopped by PID. The login host is a real sshd whose sessions get ``SLURM_CONF`` through
``SetEnv``, so ``sinfo``/``squeue``/``scontrol``/``sbatch`` work for the SSH user there. That user is
also the ``SlurmUser``: it may update nodes and requeue jobs, as an operator would.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .procs import Daemon, free_port, require_binary, start_daemon, wait_port, wait_until
from .slurm_files import LOGIN_ALIAS, chown_to, login_host, run_command, write_conf
from .sshd import LAB_USER, _ensure_user

NODES = ("gpu01", "gpu02", "gpu03", "gpu04")
#: Ceph's messenger takes this range later in a run: Slurm stays out of it
_AVOID_PORTS = range(6800, 7301)


def _port(taken: set[int]) -> int:
    while True:
        port = free_port()
        if port not in _AVOID_PORTS and port not in taken:
            taken.add(port)
            return port


@dataclass
class SlurmLab:
    """A running Slurm cluster with a login host; helpers for tests act on it as an operator would."""

    workdir: Path
    conf: Path
    user: str
    ctld_port: int
    node_ports: dict[str, int]
    munged: Daemon
    ctld: Daemon
    slurmd: dict[str, Daemon]
    login: Daemon
    login_port: int
    ssh_config: Path  # an OpenSSH client config with the alias ``login1``
    known_hosts: Path
    client_key: Path
    jobs_dir: Path
    authorized_keys: Path
    alias: str = LOGIN_ALIAS
    nodes: tuple[str, ...] = NODES
    partitions: tuple[str, ...] = ("gpu", "debug")
    version: str = ""
    timings: dict[str, float] = field(default_factory=dict)

    # -- commands ----------------------------------------------------------------------------
    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(
        self, *argv: str, as_user: bool = False, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess:
        """A Slurm command on this machine with the lab's ``SLURM_CONF`` (as the Slurm user when asked)."""
        words = list(argv)
        if as_user and os.geteuid() == 0:
            words = ["runuser", "-u", self.user, "--", "env", f"SLURM_CONF={self.conf}", *words]
        return run_command(words, env=self.env, timeout=timeout, check=check)

    def sinfo_json(self) -> dict:
        return json.loads(self.run("sinfo", "--json").stdout)

    def squeue_json(self) -> dict:
        return json.loads(self.run("squeue", "--json").stdout)

    def node_states(self) -> dict[str, str]:
        """``{node: state word with flags}`` as ``sinfo -N -h -o '%N %T'`` says (idle, drained, mixed, ...)."""
        out = self.run("sinfo", "-N", "-h", "-o", "%N %T").stdout
        return {name: state for name, state in (line.split(None, 1) for line in out.splitlines() if line.strip())}

    def show_node(self, name: str) -> dict[str, str]:
        """``scontrol -o show node NAME`` as key=value pairs (``Reason`` keeps its spaces)."""
        line = self.run("scontrol", "-o", "show", "node", name).stdout.strip()
        reason = ""
        if " Reason=" in line:
            line, reason = line.split(" Reason=", 1)
        pairs = dict(word.split("=", 1) for word in line.split() if "=" in word)
        if reason:
            pairs["Reason"] = reason
        return pairs

    def submit(
        self,
        script_or_cmd: str,
        *,
        nodes: str | None = None,
        gres: str | None = None,
        partition: str | None = None,
        name: str = "lab",
        extra: tuple[str, ...] = (),
    ) -> str:
        """``sbatch`` as the Slurm user (output under the lab's jobs dir); the job id."""
        argv = [
            "sbatch",
            "--parsable",
            f"--chdir={self.jobs_dir}",
            f"--output={self.jobs_dir}/slurm-%j.out",
            f"--job-name={name}",
        ]
        if nodes:
            argv.append(f"--nodelist={nodes}")
        if gres:
            argv.append(f"--gres={gres}")
        if partition:
            argv.append(f"--partition={partition}")
        argv.extend(extra)
        text = script_or_cmd if script_or_cmd.startswith("#!") else f"#!/bin/sh\n{script_or_cmd}\n"
        script = self.jobs_dir / f"job-{uuid.uuid4().hex[:8]}.sh"
        script.write_text(text, encoding="utf-8")
        script.chmod(0o755)
        out = self.run(*argv, str(script), as_user=True)
        return out.stdout.strip().split(";")[0]

    def cancel(self, job_id: str) -> None:
        self.run("scancel", str(job_id), as_user=True)

    def job_state(self, job_id: str) -> str:
        """The job's state word (``RUNNING``, ``PENDING``, ...), or "" once it left the queue."""
        for job in self.squeue_json().get("jobs", []):
            if str(job.get("job_id")) == str(job_id):
                state = job.get("job_state")
                return state[0] if isinstance(state, list) and state else str(state or "")
        return ""

    def wait_job(self, job_id: str, state: str, *, timeout_s: float = 30.0) -> None:
        wait_until(lambda: self.job_state(job_id) == state, timeout_s=timeout_s, what=f"job {job_id} {state}")

    def wait_states(self, wanted: dict[str, str], *, timeout_s: float = 30.0) -> None:
        """Until every node named shows that ``sinfo %T`` state."""
        wait_until(
            lambda: all(self.node_states().get(n) == s for n, s in wanted.items()),
            timeout_s=timeout_s,
            what=f"nodes {wanted}",
        )

    def reset_nodes(self) -> None:
        """Every node back to service (idle, no reason) and no jobs left: a clean start for the next test."""
        for job in self.squeue_json().get("jobs", []):
            self.run("scancel", str(job.get("job_id")), check=False)
        for name in self.nodes:
            if not self.slurmd[name].alive():
                self.start_slurmd(name)
        for name, state in self.node_states().items():
            if state != "idle":
                self.run("scontrol", "update", f"nodename={name}", "state=resume", check=False)
        self.wait_states(dict.fromkeys(self.nodes, "idle"), timeout_s=60)

    # -- faults ------------------------------------------------------------------------------
    def stop_slurmd(self, name: str) -> None:
        self.slurmd[name].stop(grace_s=2.0)

    def start_slurmd(self, name: str) -> None:
        self.slurmd[name] = _slurmd(self, name)

    def stop_ctld(self) -> None:
        self.ctld.stop()

    def start_ctld(self) -> None:
        self.ctld = _slurmctld(self.workdir, self.conf, self.ctld_port)
        wait_until(
            lambda: self.run("sinfo", "-h", "-o", "%D", check=False).returncode == 0,
            daemon=self.ctld,
            timeout_s=30,
            what="answering sinfo",
        )

    def stop_login(self) -> None:
        self.login.stop()

    def start_login(self) -> None:
        self.login = _start_login_sshd(self.workdir, self.login_port)

    # -- measuring ---------------------------------------------------------------------------
    def rss_mb(self) -> float:
        """Resident memory of every daemon of the lab, in MB."""
        total = 0
        for daemon in (self.munged, self.ctld, self.login, *self.slurmd.values()):
            if daemon.pid is None or not daemon.alive():
                continue
            try:
                for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                pass
        return total / 1024

    def _job_processes(self) -> list[int]:
        """PIDs of what the cluster started for jobs (slurmstepd, job scripts): their environment names our conf."""
        mark = f"SLURM_CONF={self.conf}".encode()
        own = {d.pid for d in (self.munged, self.ctld, self.login, *self.slurmd.values()) if d.pid}
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in own or int(entry) == os.getpid():
                continue
            try:
                env = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if mark in env.split(b"\0"):
                found.append(int(entry))
        return found

    def close(self) -> None:
        if self.ctld.alive():
            self.run("scancel", "--full", "--user", self.user, check=False, timeout=10)
            self.run("scancel", "--full", "--user", "root", check=False, timeout=10)
        for daemon in (self.login, *self.slurmd.values(), self.ctld, self.munged):
            try:
                daemon.stop(grace_s=3.0)
            except Exception as exc:  # noqa: BLE001 - stop the others anyway
                print(f"slurm lab: stopping {daemon.name} failed: {exc}")
        for pid in self._job_processes():  # slurmstepd detaches from slurmd: end what is left by PID
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.authorized_keys.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------- building
def _start_munged(workdir: Path) -> tuple[Daemon, Path]:
    munged = require_binary("munged", "slurm", candidates=("/usr/sbin/munged",))
    mdir = workdir / "munge"
    mdir.mkdir(mode=0o755, exist_ok=True)
    mdir.chmod(0o755)  # the socket's parent dirs must be searchable by every client
    key = mdir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    socket = mdir / "munge.socket"
    user = "munge" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    for path in (mdir, key):
        chown_to(path, user)
    argv = [
        munged,
        "-F",
        f"--socket={socket}",
        f"--key-file={key}",
        f"--pid-file={mdir / 'munged.pid'}",
        f"--log-file={mdir / 'munged.log'}",
        f"--seed-file={mdir / 'munged.seed'}",
        "--num-threads=4",
    ]
    if os.geteuid() == 0:
        # setpriv execs munged itself (runuser would fork), so the PID we keep is munged's
        argv = ["setpriv", "--reuid=munge", "--regid=munge", "--init-groups", *argv]
    daemon = start_daemon("munged", argv, workdir)
    wait_until(socket.exists, daemon=daemon, timeout_s=15, what="listening on its socket")
    return daemon, socket


def _slurmctld(workdir: Path, conf: Path, port: int) -> Daemon:
    binary = require_binary("slurmctld", "slurm", candidates=("/usr/sbin/slurmctld",))
    daemon = start_daemon("slurmctld", [binary, "-D", "-i", "-f", str(conf)], workdir, env={"SLURM_CONF": str(conf)})
    wait_port("127.0.0.1", port, daemon=daemon, timeout_s=30)
    return daemon


def _slurmd(lab: SlurmLab, name: str) -> Daemon:
    binary = require_binary("slurmd", "slurm", candidates=("/usr/sbin/slurmd",))
    (lab.workdir / "spool" / name).mkdir(parents=True, exist_ok=True)
    daemon = start_daemon(
        f"slurmd-{name}",
        [binary, "-D", "-N", name, "-f", str(lab.conf)],
        lab.workdir,
        env={"SLURM_CONF": str(lab.conf)},
    )
    wait_port("127.0.0.1", lab.node_ports[name], daemon=daemon, timeout_s=30)
    return daemon


def _start_login_sshd(workdir: Path, port: int) -> Daemon:
    sshd = require_binary("/usr/sbin/sshd", "slurm", candidates=("sshd",))
    config = workdir / "login" / "sshd_config"
    daemon = start_daemon("sshd-login", [sshd, "-D", "-e", "-f", str(config), "-p", str(port)], workdir / "login")
    wait_port("127.0.0.1", port, daemon=daemon, timeout_s=15, banner=b"SSH-2.0")
    return daemon


def start_slurm(workdir: Path) -> SlurmLab:
    """Start munged, slurmctld, four slurmd and the login sshd; ready when ``sinfo`` shows every node idle."""
    t0 = time.perf_counter()
    for tool in ("sinfo", "squeue", "scontrol", "sbatch", "scancel"):
        require_binary(tool, "slurm")
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    user = LAB_USER if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        _ensure_user(LAB_USER)
    taken: set[int] = set()
    ctld_port = _port(taken)
    node_ports = {name: _port(taken) for name in NODES}
    login_port = _port(taken)
    jobs_dir = workdir / "jobs"
    jobs_dir.mkdir(exist_ok=True)
    jobs_dir.chmod(0o777)
    started: list[Daemon] = []
    try:
        munged, socket = _start_munged(workdir)
        started.append(munged)
        conf = write_conf(workdir, user, socket, ctld_port, node_ports)
        login_user, ssh_config, known_hosts, client_key, authorized = login_host(workdir, conf, login_port)
        ctld = _slurmctld(workdir, conf, ctld_port)
        started.append(ctld)
        lab = SlurmLab(
            workdir=workdir,
            conf=conf,
            user=login_user,
            ctld_port=ctld_port,
            node_ports=node_ports,
            munged=munged,
            ctld=ctld,
            slurmd={},
            login=None,
            login_port=login_port,  # type: ignore[arg-type]
            ssh_config=ssh_config,
            known_hosts=known_hosts,
            client_key=client_key,
            jobs_dir=jobs_dir,
            authorized_keys=authorized,
        )
        for name in NODES:
            lab.slurmd[name] = _slurmd(lab, name)
            started.append(lab.slurmd[name])
        lab.login = _start_login_sshd(workdir, login_port)
        started.append(lab.login)
        lab.wait_states(dict.fromkeys(NODES, "idle"), timeout_s=60)
        version = lab.run("sinfo", "--version").stdout.strip()
        lab.version = re.sub(r"^slurm(-wlm)?\s+", "", version)
    except BaseException:
        for daemon in reversed(started):
            daemon.stop(grace_s=2.0)
        raise
    lab.timings["start_s"] = time.perf_counter() - t0
    lab.timings["rss_mb"] = lab.rss_mb()
    return lab
