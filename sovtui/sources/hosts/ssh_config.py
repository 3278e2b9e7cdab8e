"""Provides the ssh config resolution of the fleet's hosts: per-host filtered config copies and connect options."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ...config import SshConfig
from ..sshconn import KnownHostsCache, connect_options, local_user


class SshConfigFilter:
    """Per-host copies of the ssh config holding only the ``Host`` blocks that can apply to that host.

    asyncssh tokenizes every line of the config at every connect, so a config with one block per
    host costs O(hosts²) for a fleet. The copies keep the global part, every ``Match`` block and
    the ``Host`` blocks whose patterns match the alias (matched as asyncssh does: against the
    name as given), in order, so each host sees exactly the settings the full file gives it.
    Configs that canonicalize host names (the name changes between passes) are used unfiltered.
    """

    def __init__(self, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self._stamp: tuple | None = None
        self._blocks: list[list[tuple[Any, list[str]]]] | None = None
        self._dir: str | None = None
        self._written: dict[str, str] = {}
        self._has_jumps = False

    @property
    def stamp(self) -> tuple | None:
        return self._stamp

    def _refresh(self) -> None:
        stamp = []
        for path in self.paths:
            try:
                st = os.stat(path)
                stamp.append((path, st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((path, None, None))
        if tuple(stamp) == self._stamp:
            return
        self._stamp = tuple(stamp)
        self._written.clear()
        try:
            texts = [Path(p).read_text(encoding="utf-8") for p in self.paths]
        except (OSError, UnicodeDecodeError):
            self._blocks = None  # asyncssh reports the problem itself
            return
        if any("canonicalize" in text.lower() for text in texts):
            self._blocks = None
            return
        self._has_jumps = any("proxyjump" in text.lower() for text in texts)
        try:
            self._blocks = [self._split(text) for text in texts]
        except ValueError:  # unbalanced quotes and the like: asyncssh says where
            self._blocks = None

    @staticmethod
    def _split(text: str) -> list[tuple[Any, list[str]]]:
        import shlex

        from asyncssh.pattern import WildcardPatternList

        blocks: list[tuple[Any, list[str]]] = [(None, [])]
        for raw in text.splitlines():
            line = raw.strip()
            if not line or line[0] == "#":
                blocks[-1][1].append(raw)
                continue
            head = line.split(None, 1)[0].split("=", 1)[0].lower()
            if head == "host":
                tokens = shlex.split(line)
                keyword, equal, rest = tokens[0].partition("=")
                words = ([rest] if rest else []) + tokens[1:] if equal else tokens[1:]
                if not equal and words and words[0].startswith("="):  # "Host = a b" / "Host =a"
                    words = ([words[0][1:]] if words[0][1:] else []) + words[1:]
                blocks.append((WildcardPatternList(",".join(words)), [raw]))
            elif head == "match":
                blocks.append((None, [raw]))
            else:
                blocks[-1][1].append(raw)
        return blocks

    def paths_for(self, alias: str) -> list[str]:
        """Config paths to hand asyncssh for ``alias`` (a filtered copy when that is safe).

        The copy also keeps the blocks of the ``ProxyJump`` hosts on the way to ``alias`` (and
        theirs), because asyncssh opens the jump connections with the same config files.
        """
        self._refresh()
        if self._blocks is None or not self.paths:
            return self.paths
        written = self._written.get(alias)
        if written is not None and os.path.exists(written):
            return [written]
        names = [alias]
        while True:
            path = self._write(alias, names)
            new = [hop for name in names for hop in self._jumps(path, name) if hop not in names]
            if not new:
                break
            names.extend(dict.fromkeys(new))
        self._written[alias] = path
        return [path]

    def _write(self, alias: str, names: Sequence[str]) -> str:
        assert self._blocks is not None
        parts = []
        for number, blocks in enumerate(self._blocks):
            if number:
                parts.append("Host *")  # a new file starts unconditional, as asyncssh does
            for matcher, lines in blocks:
                if matcher is None or any(matcher.matches(name) for name in names):
                    parts.extend(lines)
        if self._dir is None or not os.path.isdir(self._dir):
            import atexit
            import shutil
            import tempfile

            self._dir = tempfile.mkdtemp(prefix="sovtui-ssh-config-")
            atexit.register(shutil.rmtree, self._dir, True)
        import hashlib

        path = os.path.join(self._dir, hashlib.sha1(alias.encode()).hexdigest()[:20] + ".conf")
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("\n".join(parts) + "\n")
        return path

    def _jumps(self, path: str, name: str) -> list[str]:
        """The host names in ``name``'s ProxyJump (``[user@]host[:port],...``) per the config at ``path``."""
        if not self._has_jumps:
            return []
        from asyncssh.config import SSHClientConfig

        try:
            cfg = SSHClientConfig.load(None, [path], False, False, False, local_user(), (), name, ())
        except ValueError:
            return []
        value = cfg.get("ProxyJump")
        if not isinstance(value, str) or value.lower() == "none":
            return []
        hops = []
        for hop in value.split(","):
            host = hop.strip().rsplit("@", 1)[-1]
            host = host[1:].split("]", 1)[0] if host.startswith("[") else host.rsplit(":", 1)[0]
            if host:
                hops.append(host)
        return hops

    def cleanup(self) -> None:
        if self._dir is not None:
            import shutil

            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._written.clear()


class HostResolver:
    """Connect options of the fleet's hosts: the ssh config over the site's user and port defaults.

    Each host is resolved through its own filtered copy of the config (see :class:`SshConfigFilter`);
    its host key is checked against known_hosts, parsed once for all hosts.
    """

    def __init__(self, ssh: SshConfig, paths: Sequence[str]) -> None:
        self.ssh = ssh
        #: the user's ssh config files (``~/.ssh/config`` or ``$SOVTUI_SSH_CONFIG``)
        self.paths = list(paths)
        self._filter = SshConfigFilter(self.paths)
        self._known_hosts = KnownHostsCache()

    @property
    def stamp(self) -> tuple | None:
        """Changes whenever a config file changes (options resolved under an older stamp are stale)."""
        return self._filter.stamp

    def paths_for(self, alias: str) -> list[str]:
        """The config paths asyncssh gets for ``alias`` (re-read when a config file changed)."""
        return self._filter.paths_for(alias)

    def options(
        self, alias: str, paths: Sequence[str], on_key_lookup: Callable[[bool], None]
    ) -> tuple[dict[str, Any], str]:
        """asyncssh connect options for ``alias`` read from ``paths``, and its resolved ``user@host:port``."""
        ssh = self.ssh
        return connect_options(
            alias,
            paths,
            cache=self._known_hosts,
            user=ssh.user,
            port=ssh.port,
            known_hosts=ssh.known_hosts,
            full_paths=self.paths,
            on_key_lookup=on_key_lookup,
        )

    def cleanup(self) -> None:
        """Remove the filtered copies."""
        self._filter.cleanup()
