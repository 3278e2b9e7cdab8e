"""Provides the SSH lab: a real OpenSSH server on loopback with its own host key, test user and client key."""

from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from .procs import Daemon, LabError, free_port, require_binary, start_daemon, wait_port

LAB_USER = "sovtui-lab"


@dataclass
class SshLab:
    """A running sshd: where it listens, who may log in with which key, and how to verify its host key."""

    host: str
    port: int
    user: str
    client_key: Path  # private ed25519 key (no passphrase); ``client_key.with_suffix(".pub")`` is public
    host_public_key: str  # "ssh-ed25519 AAAA..."
    known_hosts: Path  # one line for [host]:port
    workdir: Path
    daemon: Daemon
    authorized_keys: Path
    home: Path

    @property
    def client_public_key(self) -> str:
        return Path(f"{self.client_key}.pub").read_text(encoding="utf-8").strip()

    def close(self) -> None:
        self.daemon.stop()
        if self.authorized_keys.parent != self.workdir:
            self.authorized_keys.unlink(missing_ok=True)


def _run(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({out.returncode}): {(out.stderr or out.stdout).strip()}")
    return out.stdout


def _keygen(keygen: str, path: Path, comment: str) -> str:
    _run([keygen, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    return Path(f"{path}.pub").read_text(encoding="utf-8").strip()


def _ensure_user(name: str) -> pwd.struct_passwd:
    """Create the test user (root only); a ``useradd -m`` user is locked, ``usermod -p '*'`` lets keys in."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        _run([require_binary("useradd", "ssh", candidates=("/usr/sbin/useradd",)), "-m", "-s", "/bin/sh", name])
        entry = pwd.getpwnam(name)
    _run([require_binary("usermod", "ssh", candidates=("/usr/sbin/usermod",)), "-p", "*", name])
    return entry


def start_sshd(workdir: Path) -> SshLab:
    """Start ``sshd -D -e`` on a free loopback port; as root it logs in a dedicated user, else the caller."""
    sshd = require_binary("/usr/sbin/sshd", "ssh", candidates=("sshd",))
    keygen = require_binary("ssh-keygen", "ssh")
    workdir.mkdir(parents=True, exist_ok=True)
    host_key = workdir / "ssh_host_ed25519_key"
    client_key = workdir / "id_ed25519"
    host_pub = _keygen(keygen, host_key, "sovtui-lab-host")
    client_pub = _keygen(keygen, client_key, "sovtui-lab-client")
    port = free_port()

    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)  # privilege separation dir
        entry = _ensure_user(LAB_USER)
        home = Path(entry.pw_dir)
        ssh_dir = home / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(ssh_dir, entry.pw_uid, entry.pw_gid)
        # sshd reads the file as the user and checks its path (StrictModes): keep it in the user's home
        authorized = ssh_dir / f"authorized_keys.lab-{uuid.uuid4().hex[:12]}"
        authorized.write_text(client_pub + "\n", encoding="utf-8")
        os.chown(authorized, entry.pw_uid, entry.pw_gid)
        authorized.chmod(0o600)
        user, strict = LAB_USER, "yes"
    else:
        entry = pwd.getpwuid(os.geteuid())
        home = Path(entry.pw_dir)
        authorized = workdir / "authorized_keys"
        authorized.write_text(client_pub + "\n", encoding="utf-8")
        authorized.chmod(0o600)
        user, strict = entry.pw_name, "no"  # the key lives in a temp dir, under world-writable /tmp

    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "ListenAddress 127.0.0.1",
                f"HostKey {host_key}",
                f"PidFile {workdir / 'sshd.pid'}",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                f"AllowUsers {user}",
                f"AuthorizedKeysFile {authorized}",
                f"StrictModes {strict}",
                "PermitRootLogin no",
                "MaxStartups 1000:30:1000",
                "MaxSessions 100",
                "UseDNS no",
                "LogLevel INFO",
                "Subsystem sftp internal-sftp",
                "",
            ]
        ),
        encoding="utf-8",
    )
    known_hosts = workdir / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {' '.join(host_pub.split()[:2])}\n", encoding="utf-8")
    _run([sshd, "-t", "-f", str(config), "-p", str(port)])  # config errors show here, not as a timeout
    daemon = start_daemon("sshd", [sshd, "-D", "-e", "-f", str(config), "-p", str(port)], workdir)
    try:
        wait_port("127.0.0.1", port, daemon=daemon, timeout_s=15, banner=b"SSH-2.0")
    except BaseException:
        daemon.stop()
        raise
    return SshLab(
        host="127.0.0.1",
        port=port,
        user=user,
        client_key=client_key,
        host_public_key=" ".join(host_pub.split()[:2]),
        known_hosts=known_hosts,
        workdir=workdir,
        daemon=daemon,
        authorized_keys=authorized,
        home=home,
    )
