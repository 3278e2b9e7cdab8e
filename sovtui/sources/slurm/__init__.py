"""Provides the Slurm source: nodes and partition queues read on a login host over SSH, and node drains there."""

from .source import NodeUnknown, SlurmCommandError, SlurmSource

__all__ = ["NodeUnknown", "SlurmCommandError", "SlurmSource"]
