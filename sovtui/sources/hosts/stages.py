"""Provides the stages of reaching a GPU host and the short reason, and stage, of each way that fails."""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from ..base import short

if TYPE_CHECKING:
    from .link import Link

log = logging.getLogger(__name__)

# stages of reaching a host, in order; an error names the stage it happened in (for doctor)
STAGES = ("reachable", "host key", "auth", "python3", "probe", "backend")
HINTS = {
    "reachable": "check that the host is up, its name resolves (HostName in ~/.ssh/config) and sshd listens",
    "host key": "verify the host's key out of band, then fix known_hosts (ssh-keygen -R HOST; ssh HOST once)",
    "auth": "check the user, your ssh-agent or IdentityFile, and the host's authorized_keys",
    "python3": "install python3 on the host (the probe is a self-contained python3 program)",
    "probe": "run the probe by hand on the host (sovtui doctor shows its stderr) and check its python3",
    "backend": "install the NVIDIA driver and nvidia-ml-py (pynvml) for the host's python3, or nvidia-smi",
}


class ProbeGone(Exception):
    """The probe's stdout ended (it exited) or the connection under it died; ``stage`` says which."""

    def __init__(self, message: str, stage: str = "probe") -> None:
        super().__init__(message)
        self.stage = stage


def describe(link: Link, exc: BaseException, timeout_s: float) -> tuple[str, str]:
    """Why reaching ``link``'s host failed with ``exc``: a short human reason and the stage it belongs to."""
    import asyncssh

    name = link.name
    if isinstance(exc, ProbeGone):
        return str(exc), exc.stage
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if not link.key_checked:  # a ProxyJump host's key, checked by asyncssh with the ssh config's files
            return f"host key not trusted for a jump host on the way to {name}: {short(exc.reason)}", "host key"
        if "revoked" in str(exc).lower():
            return f"host key REVOKED for {name}; fix known_hosts", "host key"
        if link.had_trusted_keys:
            return f"host key CHANGED for {name} — possible MITM; fix known_hosts", "host key"
        return f"host key not trusted for {name} (not in known_hosts)", "host key"
    if isinstance(exc, asyncssh.KeyExchangeFailed):
        if link.had_trusted_keys and "host key" in str(exc).lower():
            return f"host key CHANGED for {name} — possible MITM; fix known_hosts", "host key"
        return (
            f"key exchange with {name} failed: {short(exc.reason if hasattr(exc, 'reason') else exc)}",
            "reachable",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"permission denied for {link.target or name} (check key/agent)", "auth"
    if isinstance(exc, asyncssh.KeyImportError):
        return f"cannot load the SSH key for {name}: {short(exc)}", "auth"
    if isinstance(exc, asyncssh.ConnectionLost):
        return f"connection to {name} lost ({short(exc.reason) or 'closed'})", "reachable"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"{name} disconnected: {short(exc.reason)}", "reachable"
    if isinstance(exc, asyncssh.ChannelOpenError):
        return f"{name} refused to start the probe: {short(exc.reason)}", "probe"
    if isinstance(exc, ImportError):
        return f"probe not available: {short(exc)}", "probe"
    if isinstance(exc, TimeoutError):
        return str(exc) or f"no answer from {name} in {timeout_s:g}s", "reachable" if link.conn is None else "probe"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve {name} ({short(exc.strerror or exc)})", "reachable"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {link.target or name}", "reachable"
    if isinstance(exc, OSError):
        return f"cannot reach {link.target or name}: {short(exc.strerror or exc)}", "reachable"
    if isinstance(exc, ValueError):  # asyncssh config errors (ConfigParseError is one)
        return f"ssh config for {name}: {short(exc)}", "reachable"
    log.warning("connecting %s failed", name, exc_info=exc)
    return f"{type(exc).__name__}: {short(exc)}", "reachable"
