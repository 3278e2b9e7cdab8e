"""Provides the Slurm source: nodes and partition queues read on a login host over SSH, and node drains there.

Modules: :mod:`.login` runs commands on the login host, :mod:`.values` reads single values of
Slurm's output, :mod:`.parse` reads its documents into model objects, and :mod:`.source` is
:class:`SlurmSource`. asyncssh is imported only once the login host is connected to.
"""

from .login import NodeUnknown, SlurmCommandError
from .source import SlurmSource

__all__ = ["NodeUnknown", "SlurmCommandError", "SlurmSource"]
