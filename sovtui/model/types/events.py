"""Provides the recent events about a host or what runs on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A recent (warning) event about a host or about something running on it, from one source."""

    node: str
    source: str  # kubernetes | openstack | slurm
    kind: str  # the object's kind: Node, Pod, ...
    object: str  # namespace/name or name
    type: str  # Warning | Normal
    reason: str
    message: str
    count: int = 1
    last_seen: float | None = None
