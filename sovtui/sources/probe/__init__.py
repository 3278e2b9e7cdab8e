"""Provides the GPU host probe's source and the shell command that runs it resident on a host, installing nothing."""

from __future__ import annotations

import base64
import shlex
import zlib
from functools import cache
from pathlib import Path

PROBE_PATH = Path(__file__).with_name("gpuprobe.py")


@cache
def probe_source() -> str:
    """The probe program's text (stdlib + nvidia-ml-py, Python 3.8+)."""
    return PROBE_PATH.read_text(encoding="utf-8")


@cache
def _payload() -> str:
    return base64.b64encode(zlib.compress(probe_source().encode("utf-8"), 9)).decode("ascii")


def probe_command(python: str = "python3", *args: str) -> str:
    """A shell command running the probe from its compressed source on the command line: ``--serve`` unless ``args``.

    Nothing is written on the host and stdin stays free for requests: one line in, one JSON line out.
    """
    code = f"import base64,zlib;exec(zlib.decompress(base64.b64decode('{_payload()}')))"
    argv = " ".join(shlex.quote(a) for a in (args or ("--serve",)))
    return f'{shlex.quote(python)} -u -c "{code}" {argv}'
