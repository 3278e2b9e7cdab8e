"""Provides the Slurm lab's files (slurm.conf, gres.conf, the login host's keys and ssh configs) and its command runner."""

from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from pathlib import Path

from .procs import LabError, require_binary
from .sshd import LAB_USER, _ensure_user, _keygen

GPUS_PER_NODE = 4
CPUS = 8
REAL_MEMORY = 64000
LOGIN_ALIAS = "login1"


def run_command(
    argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 30.0, check: bool = True
) -> subprocess.CompletedProcess:
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=None if env is None else {**os.environ, **env}
    )
    if check and out.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({out.returncode}): {(out.stderr or out.stdout).strip()}")
    return out


def chown_to(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def write_conf(workdir: Path, user: str, socket: Path, ctld_port: int, node_ports: dict[str, int]) -> Path:
    state = workdir / "state"
    spool = workdir / "spool"
    gres_dir = workdir / "dev"
    for path in (state, spool, gres_dir):
        path.mkdir(exist_ok=True)
    chown_to(state, user)
    for index in range(GPUS_PER_NODE):
        (gres_dir / f"nvidia{index}").touch()
    lines = [
        "ClusterName=sovtui-lab",
        "SlurmctldHost=localhost(127.0.0.1)",
        f"SlurmctldPort={ctld_port}",
        f"SlurmUser={user}",
        "SlurmdUser=root" if os.geteuid() == 0 else f"SlurmdUser={user}",
        f"AuthInfo=socket={socket}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        "CommunicationParameters=NoInAddrAny",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "GresTypes=gpu",
        "SlurmdParameters=config_overrides",
        # a node set DOWN by an operator stays DOWN; one that stopped answering comes back when it registers
        "ReturnToService=1",
        "MpiDefault=none",
        "SwitchType=switch/none",
        "MailProg=/bin/true",
        f"StateSaveLocation={state}",
        f"SlurmdSpoolDir={spool}/%n",
        # slurmctld runs as the SlurmUser: its own files live in the state dir it owns
        f"SlurmctldPidFile={state / 'slurmctld.pid'}",
        f"SlurmctldLogFile={state / 'slurmctld.log'}",
        f"SlurmdPidFile={spool / '%n' / 'slurmd.pid'}",
        f"SlurmdLogFile={spool / '%n' / 'slurmd.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=30",
        "InactiveLimit=0",
        "MinJobAge=2",
        "KillWait=2",
        "Waittime=0",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=sched_interval=1",
        "JobRequeue=1",
    ]
    for name, port in node_ports.items():
        lines.append(
            f"NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs={CPUS} "
            f"RealMemory={REAL_MEMORY} Gres=gpu:h100:{GPUS_PER_NODE} State=UNKNOWN"
        )
    lines += [
        f"PartitionName=gpu Nodes={','.join(node_ports)} Default=YES MaxTime=INFINITE State=UP",
        f"PartitionName=debug Nodes={','.join(list(node_ports)[:2])} MaxTime=INFINITE State=UP",
        "",
    ]
    conf = workdir / "slurm.conf"
    conf.write_text("\n".join(lines), encoding="utf-8")
    (workdir / "gres.conf").write_text(
        "AutoDetect=off\n"
        f"NodeName={','.join(node_ports)} Name=gpu Type=h100 File={gres_dir}/nvidia[0-{GPUS_PER_NODE - 1}]\n",
        encoding="utf-8",
    )
    for path in (conf, workdir / "gres.conf"):
        path.chmod(0o644)
    return conf


def login_host(workdir: Path, conf: Path, port: int) -> tuple[str, Path, Path, Path, Path]:
    """Keys, sshd config, client ssh config and known_hosts of the login host; (user, ssh_config, known_hosts,
    client key, authorized_keys)."""
    sshd = require_binary("/usr/sbin/sshd", "slurm", candidates=("sshd",))
    keygen = require_binary("ssh-keygen", "slurm")
    ldir = workdir / "login"
    ldir.mkdir(exist_ok=True)
    host_key = ldir / "ssh_host_ed25519_key"
    client_key = ldir / "id_ed25519"
    host_pub = " ".join(_keygen(keygen, host_key, "sovtui-slurm-login").split()[:2])
    client_pub = _keygen(keygen, client_key, "sovtui-slurm-client")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
        entry = _ensure_user(LAB_USER)
        ssh_dir = Path(entry.pw_dir) / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(ssh_dir, entry.pw_uid, entry.pw_gid)
        authorized = ssh_dir / f"authorized_keys.slurm-{uuid.uuid4().hex[:12]}"
        authorized.write_text(client_pub + "\n", encoding="utf-8")
        os.chown(authorized, entry.pw_uid, entry.pw_gid)
        user, strict = LAB_USER, "yes"
    else:
        user = pwd.getpwuid(os.geteuid()).pw_name
        authorized = ldir / "authorized_keys"
        authorized.write_text(client_pub + "\n", encoding="utf-8")
        strict = "no"
    authorized.chmod(0o600)
    config = ldir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {ldir / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                f"AllowUsers {user}",
                f"AuthorizedKeysFile {authorized}",
                f"StrictModes {strict}",
                "PermitRootLogin no",
                "MaxStartups 100:30:100",
                "MaxSessions 100",
                "UseDNS no",
                "LogLevel INFO",
                # every session on the login host finds the lab's cluster, as /etc/slurm/slurm.conf would give it
                f"SetEnv SLURM_CONF={conf}",
                "",
            ]
        ),
        encoding="utf-8",
    )
    run_command([sshd, "-t", "-f", str(config), "-p", str(port)])
    known_hosts = ldir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub}\n", encoding="utf-8")
    ssh_config = ldir / "ssh_config"
    ssh_config.write_text(
        f"Host {LOGIN_ALIAS}\n  HostName 127.0.0.1\n  Port {port}\n  User {user}\n  IdentityFile {client_key}\n"
        f"  IdentitiesOnly yes\n  UserKnownHostsFile {known_hosts}\n",
        encoding="utf-8",
    )
    return user, ssh_config, known_hosts, client_key, authorized
