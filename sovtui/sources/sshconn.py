"""Provides the SSH pieces the sources share: ssh config lookup, known_hosts checks, connect options, typed failures.

A host is named as in ``~/.ssh/config`` (or ``$SOVTUI_SSH_CONFIG``); asyncssh resolves its HostName, User,
Port, IdentityFile and ProxyJump from there. Host keys are checked against known_hosts only: an unknown or
changed key is an error, never accepted.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .base import AuthError, SourceError, Timeout, Unreachable, short

#: environment variable naming an OpenSSH client config file to use instead of ``~/.ssh/config``
SSH_CONFIG_ENV = "SOVTUI_SSH_CONFIG"

_LOCAL_USER: str | None = None


def local_user() -> str:
    """The name of the user running sovtui (the ssh default user)."""
    global _LOCAL_USER
    if _LOCAL_USER is None:
        try:
            _LOCAL_USER = getpass.getuser()
        except (KeyError, OSError):  # pragma: no cover - no user name in the environment
            _LOCAL_USER = "root"
    return _LOCAL_USER


def config_paths(explicit: str | os.PathLike | None) -> list[str]:
    """The ssh config files to read: ``explicit``, else ``~/.ssh/config`` when it is readable, else none."""
    if explicit:
        return [str(Path(explicit).expanduser())]
    default = Path("~", ".ssh", "config").expanduser()
    return [str(default)] if os.access(default, os.R_OK) else []


class KnownHostsCache:
    """known_hosts files parsed once and re-read when they change on disk (shared by all hosts)."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], tuple[tuple, Any]] = {}

    def get(self, paths: Sequence[str]) -> Any:
        import asyncssh

        stamp = []
        readable = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError:
                continue
            if os.access(path, os.R_OK):
                readable.append(path)
                stamp.append((path, st.st_mtime_ns, st.st_size))
        key = tuple(paths)
        cached = self._cache.get(key)
        if cached is not None and cached[0] == tuple(stamp):
            return cached[1]
        known = asyncssh.import_known_hosts(
            "".join(Path(p).read_text(encoding="utf-8", errors="replace") + "\n" for p in readable)
        )
        self._cache[key] = (tuple(stamp), known)
        return known


def connect_options(
    alias: str,
    paths: Sequence[str],
    *,
    cache: KnownHostsCache,
    user: str | None = None,
    port: int | None = None,
    known_hosts: str | None = None,
    full_paths: Sequence[str] | None = None,
    on_key_lookup: Callable[[bool], None] | None = None,
) -> tuple[dict[str, Any], str]:
    """asyncssh connect options for ``alias`` and its resolved ``user@host:port``.

    The ssh config wins over ``user``/``port`` (the site's defaults). ``known_hosts`` replaces the
    config's UserKnownHostsFile/GlobalKnownHostsFile. ``paths`` may be a filtered copy of
    ``full_paths``: a config error is then reported against the user's own files.
    ``on_key_lookup(trusted)`` is called when the host key is looked up, with whether known_hosts
    names any key for the host.
    """
    from asyncssh.config import SSHClientConfig

    me = local_user()
    try:
        cfg = SSHClientConfig.load(None, list(paths), False, False, False, me, (), alias, ())
    except ValueError:
        if full_paths is None or list(full_paths) == list(paths):
            raise
        cfg = SSHClientConfig.load(None, list(full_paths), False, False, False, me, (), alias, ())
    options: dict[str, Any] = {"config": list(paths)}
    if cfg.get("User") is None and user:
        options["username"] = user
    if cfg.get("Port") is None and port:
        options["port"] = port
    if known_hosts:
        files = [str(Path(known_hosts).expanduser())]
    else:
        user_files = cfg.get("UserKnownHostsFile", ())
        files = (
            [str(Path(p).expanduser()) for p in user_files]
            if user_files != ()
            else [str(Path("~", ".ssh", "known_hosts").expanduser())]
        )
        files += [str(Path(p).expanduser()) for p in cfg.get("GlobalKnownHostsFile", ["/etc/ssh/ssh_known_hosts"])]

    def check(host: str, addr: str, port: int | None):
        # asyncssh asks with the resolved HostName (or HostKeyAlias), the address and the port
        from asyncssh.known_hosts import match_known_hosts

        result = match_known_hosts(cache.get(files), host, addr, port)
        if on_key_lookup is not None:
            on_key_lookup(bool(result[0] or result[1]))
        return result

    options["known_hosts"] = check
    who = options.get("username") or cfg.get("User") or me
    where = options.get("port") or cfg.get("Port") or 22
    return options, f"{who}@{cfg.get('Hostname') or alias}:{where}"


def credential_of(alias: str, paths: Sequence[str]) -> str:
    """Which credential ssh offers for ``alias`` (the agent, the IdentityFile paths), never its value; for doctor."""
    from asyncssh.config import SSHClientConfig

    try:
        cfg = SSHClientConfig.load(None, list(paths), False, False, False, local_user(), (), alias, ())
    except ValueError:
        return "see the ssh config"
    files = [str(Path(f).expanduser()) for f in cfg.get("IdentityFile", ()) or ()]
    if not files:
        files = [
            str(Path("~", ".ssh", name).expanduser()) + " (default)"
            for name in ("id_ed25519", "id_ecdsa", "id_rsa")
            if Path("~", ".ssh", name).expanduser().exists()
        ]
    agent = os.environ.get("SSH_AUTH_SOCK") and cfg.get("IdentitiesOnly") is not True
    offered = (["ssh-agent"] if agent else []) + files
    return "key " + ", ".join(offered) if offered else "no key (no agent, no IdentityFile)"


def ssh_failure(exc: BaseException, name: str, target: str = "", *, had_trusted_keys: bool = False) -> SourceError:
    """A connection failure as a typed :class:`SourceError` with a short reason."""
    import asyncssh

    who = target or name
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        if had_trusted_keys:
            return AuthError(
                f"host key CHANGED for {name} — possible MITM; fix known_hosts",
                hint="verify the host's key out of band, then fix known_hosts (ssh-keygen -R HOST)",
            )
        return AuthError(
            f"host key not trusted for {name} (not in known_hosts)",
            hint="verify the host's key out of band, then add it to known_hosts (ssh HOST once)",
        )
    if isinstance(exc, asyncssh.PermissionDenied):
        return AuthError(f"permission denied for {who} (check key/agent)")
    if isinstance(exc, asyncssh.KeyImportError):
        return AuthError(f"cannot load the SSH key for {name}: {short(exc)}")
    if isinstance(exc, asyncssh.ConnectionLost):
        return Unreachable(f"connection to {name} lost ({short(exc.reason) or 'closed'})")
    if isinstance(exc, asyncssh.DisconnectError):
        return Unreachable(f"{name} disconnected: {short(exc.reason)}")
    if isinstance(exc, asyncssh.ChannelOpenError):
        return Unreachable(f"{name} refused to run a command: {short(exc.reason)}")
    if isinstance(exc, TimeoutError):
        return Timeout(str(exc) or f"no SSH answer from {name}")
    if isinstance(exc, socket.gaierror):
        return Unreachable(f"cannot resolve {name} ({short(exc.strerror or exc)})")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable(f"connection refused by {who}")
    if isinstance(exc, OSError):
        return Unreachable(f"cannot reach {who}: {short(exc.strerror or exc)}")
    if isinstance(exc, ValueError):  # asyncssh config errors (ConfigParseError is one)
        return Unreachable(f"ssh config for {name}: {short(exc)}", hint="fix the ssh config")
    return Unreachable(f"{type(exc).__name__}: {short(exc)}")
