"""Provides the one check that a name from the cluster (a host, a node) is a plain host name, before it reaches ssh or a remote command.

Host names come from the config, from Kubernetes nodes and Nova hypervisors (discovery) and from the
Slurm controller; they end up as the destination of an SSH connection (``asyncssh``, whose ssh config
may substitute ``%h`` into a ``ProxyCommand`` run by a shell), as the argument of the ``ssh`` binary
(the ``s`` key) and inside commands run on a login host. A name is data, never code: only a name made
of letters, digits and ``. _ -`` (starting with a letter or digit, at most 253 characters, labels of
at most 63) passes; anything else (a leading ``-`` that ssh would read as an option, spaces, shell
metacharacters, newlines, control or non-ASCII characters) is refused with a reason.
"""

from __future__ import annotations

import re

#: a DNS-like host name, also allowing ``_`` (seen in inventories and Slurm node names)
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
MAX_LEN = 253


class BadName(ValueError):
    """A name that is not a plain host name; ``str()`` says which name (escaped) and why."""


def shown(name: object) -> str:
    """``name`` as it may be shown or logged: as is when it is a host name, else escaped and quoted (``repr``)."""
    return name if is_host_name(name) else ascii(name)  # type: ignore[return-value]


def is_host_name(name: object) -> bool:
    return type(name) is str and 0 < len(name) <= MAX_LEN and _HOST.fullmatch(name) is not None


def check_host_name(name: object, what: str = "host") -> str:
    """``name`` itself if it is a plain host name; :class:`BadName` naming the first problem otherwise."""
    if is_host_name(name):
        return name  # type: ignore[return-value]
    label = ascii(name)
    if type(name) is not str:
        why = f"a {type(name).__name__}, not text"
    elif not name:
        why = "empty"
    elif len(name) > MAX_LEN:
        why = f"longer than {MAX_LEN} characters"
    elif name.startswith("-"):
        why = "it begins with '-' (it would be read as an ssh option)"
    elif any(c.isspace() for c in name):
        why = "it holds white space"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        why = "it holds control characters"
    elif not name.isascii():
        why = "it holds non-ASCII characters"
    elif bad := sorted({c for c in name if not (c.isalnum() or c in "._-")}):
        why = "it holds " + " ".join(repr(c) for c in bad)
    else:
        why = "it is not a host name (labels of letters, digits, '-' and '_', separated by dots)"
    raise BadName(f"refused {what} name {label}: {why}")


def ssh_argv(host: object, ssh: str = "ssh") -> list[str]:
    """The argv of an interactive ``ssh`` to ``host``: the name checked, and after ``--`` so it is never an option."""
    return [ssh, "--", check_host_name(host)]
