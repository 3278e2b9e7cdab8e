"""Provides the command runner on the Slurm login host: one SSH connection, bounded commands, Slurm's refusals typed.

The login host is an alias resolved through ``~/.ssh/config`` or ``$SOVTUI_SSH_CONFIG``, its host
key checked against known_hosts. Every command is bounded in time and in the size of what it
prints. Commands that change something run under ``sudo -n`` when ``sudo = true``. Every argument
is one word, quoted with :func:`shlex.quote` for the login host's shell: a reason is never parsed as
shell.
"""

from __future__ import annotations

import asyncio
import json
import shlex
from collections.abc import Sequence
from typing import Any

from ...config import SshConfig
from ..base import AuthError, BadAnswer, SourceError, Timeout, Unreachable, close_quietly, wait_quietly
from ..sshconn import KnownHostsCache, connect_options, local_user, ssh_failure
from .values import text

#: bound on what one command may print (a 10,000-node sinfo --json is ~30 MB)
OUTPUT_LIMIT = 64 * 1024 * 1024
#: bound on what one command may print on stderr, and on short answers (``scontrol ping``)
STDERR_LIMIT = 64 * 1024
HINT_CTLD = "check slurmctld on the controller (systemctl status slurmctld; its log)"
HINT_RIGHTS = (
    "run as the SlurmUser or root on the login host, or set sudo = true in [sites.NAME.slurm] "
    "with a sudoers rule for scontrol"
)


class SlurmCommandError(SourceError):
    """Slurm refused a command or answered it with an error; ``str()`` is Slurm's reason."""

    hint = "see the reason; scontrol prints the same when run by hand on the login host"


class NodeUnknown(SlurmCommandError):
    """Slurm does not know the node."""


def first_line(data: bytes | str) -> str:
    """The first three non-empty lines of a command's output, joined by ``" | "`` and cut short."""
    output = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return text(" | ".join(lines[:3]), 300)


def json_object(output: str, what: str) -> Any:
    """``output`` of the command ``what`` as a JSON object, else :class:`BadAnswer` saying what it was."""
    try:
        doc = json.loads(output)
    except (ValueError, RecursionError):
        raise BadAnswer(
            f"{what} answered no JSON: {first_line(output[:200]) or 'nothing'}",
            hint="sovtui needs Slurm 21.08 or newer (--json)",
        ) from None
    if type(doc) is not dict:
        raise BadAnswer(f"{what} answered JSON that is not an object")
    return doc


class LoginHost:
    """The Slurm login host over SSH: one connection (made on first use, per event loop) that runs commands."""

    def __init__(
        self,
        host: str,
        ssh: SshConfig,
        ssh_config_paths: Sequence[str],
        *,
        sudo: bool,
        timeout_s: float,
        output_limit: int = OUTPUT_LIMIT,
    ) -> None:
        self.host = host
        self.ssh = ssh
        self.ssh_config_paths = list(ssh_config_paths)
        self.sudo = sudo
        #: bound on connecting and on each command
        self.timeout_s = timeout_s
        self.output_limit = output_limit
        #: the open connection, or None
        self.conn: Any = None
        #: ``user@host:port`` as the ssh config resolves the login host (once it was resolved)
        self.target = ""
        self._known_hosts = KnownHostsCache()
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._trusted = False
        self._identity = ""

    def _options(self) -> dict[str, Any]:
        def looked_up(trusted: bool) -> None:
            self._trusted = trusted

        ssh = self.ssh
        options, self.target = connect_options(
            self.host,
            self.ssh_config_paths,
            cache=self._known_hosts,
            user=ssh.user,
            port=ssh.port,
            known_hosts=ssh.known_hosts,
            on_key_lookup=looked_up,
        )
        return options

    def _bind_loop(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if loop is not self._loop or self._lock is None:
            self._loop, self.conn, self._lock = loop, None, asyncio.Lock()  # connections belong to their loop
        return self._lock

    async def connection(self) -> Any:
        """The connection to the login host, opened if there is none; a typed error if it cannot be."""
        import asyncssh

        async with self._bind_loop():
            if self.conn is not None and not self.conn.is_closed():
                return self.conn
            self.conn = None
            timeout = self.timeout_s
            self._trusted = False
            try:
                options = self._options()
                self.conn = await asyncio.wait_for(
                    asyncssh.connect(
                        self.host,
                        connect_timeout=timeout,
                        login_timeout=timeout,
                        keepalive_interval=max(15.0, 2 * timeout),
                        keepalive_count_max=3,
                        **options,
                    ),
                    timeout + 1.0,
                )
            except TimeoutError:
                raise Timeout(f"no SSH answer from {self.host} in {timeout:g}s") from None
            except Exception as exc:  # noqa: BLE001 - every failure becomes a typed error
                raise ssh_failure(exc, self.host, self.target, had_trusted_keys=self._trusted) from None
            return self.conn

    def close(self) -> None:
        """Close the connection (the next command opens a new one)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            close_quietly("the connection to the login host", conn.close)

    async def aclose(self) -> None:
        """Close the connection and wait until it is closed."""
        conn = self.conn
        self.close()
        if conn is not None and asyncio.get_running_loop() is self._loop:  # else its loop is gone: nothing to wait for
            await wait_quietly("the login host's connection to close", conn.wait_closed(), 5.0)

    @staticmethod
    async def _read(stream: Any, limit: int, what: str) -> bytes:
        chunks, size = [], 0
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                raise BadAnswer(
                    f"{what} printed more than {limit // (1024 * 1024) or limit} "
                    f"{'MB' if limit >= 1024 * 1024 else 'bytes'}; not read further"
                )
            chunks.append(chunk)

    def command(self, argv: Sequence[str], *, mutating: bool = False) -> str:
        """The remote command line: each word quoted for the login host's shell (``sudo -n`` first if asked)."""
        words = (["sudo", "-n"] if mutating and self.sudo else []) + list(argv)
        return " ".join(shlex.quote(word) for word in words)

    async def run(self, argv: Sequence[str], *, mutating: bool = False, limit: int | None = None) -> str:
        """Run one command on the login host; its stdout, or a typed error naming Slurm's reason."""
        import asyncssh

        what = " ".join(argv[:2])
        conn = await self.connection()
        timeout = self.timeout_s
        proc = None
        try:
            async with asyncio.timeout(timeout):
                proc = await conn.create_process(self.command(argv, mutating=mutating), encoding=None)
                out, err = await asyncio.gather(
                    self._read(proc.stdout, limit or self.output_limit, what),
                    self._read(proc.stderr, STDERR_LIMIT, f"{what} (stderr)"),
                )
                await proc.wait_closed()
        except TimeoutError:
            if proc is not None:
                proc.close()
            raise Timeout(f"{what} on {self.host} did not finish in {timeout:g}s") from None
        except (BadAnswer, asyncio.CancelledError):
            if proc is not None:
                proc.close()
            raise
        except (asyncssh.Error, OSError) as exc:
            self.close()
            raise ssh_failure(exc, self.host, self.target) from None
        status = proc.exit_status
        if status != 0:
            raise self._failure(argv, status, err or out)
        return out.decode("utf-8", "replace")

    def _failure(self, argv: Sequence[str], status: int | None, output: bytes) -> SourceError:
        line = first_line(output) or f"exit status {status}"
        low = line.lower()
        what = argv[0]
        if status == 127 or "command not found" in low or "no such file" in low and what in low:
            return BadAnswer(f"{what} not found on {self.host}", hint="install the Slurm client commands there")
        if "sudo:" in low:
            return AuthError(f"sudo -n {what} refused on {self.host}: {line}", hint=HINT_RIGHTS)
        if any(
            s in low
            for s in (
                "unable to contact slurm controller",
                "socket timed out",
                "connection refused",
                "zero bytes were transmitted",
                "unable to establish",
            )
        ):
            return Unreachable(f"slurmctld does not answer (from {self.host}): {line}", hint=HINT_CTLD)
        if "access/permission denied" in low or "invalid user id" in low or "permission denied" in low:
            return AuthError(f"{what} refused for {self.identity()}: {line}", hint=HINT_RIGHTS)
        if "invalid node name" in low:
            named = next((w.split("=", 1)[1] for w in argv if w.startswith("nodename=")), "")
            return NodeUnknown(
                f"Slurm knows no node {named!r}: {line}" if named else f"Slurm knows no such node: {line}"
            )
        return SlurmCommandError(f"{' '.join(argv[:2])} failed: {line}")

    def identity(self) -> str:
        """``user@login-host`` as the ssh config resolves it (no I/O)."""
        if not self._identity:
            try:
                self._options()
                user = self.target.rsplit("@", 1)[0] if "@" in self.target else local_user()
            except Exception:  # noqa: BLE001 - a broken ssh config: doctor says why
                user = self.ssh.user or local_user()
            self._identity = f"{user}@{self.host}"
        return self._identity
