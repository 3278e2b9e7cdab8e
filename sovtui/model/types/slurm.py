"""Provides the Slurm nodes as sinfo and scontrol report them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SlurmNode:
    """A Slurm node as ``sinfo``/``scontrol`` report it."""

    name: str
    state: str = ""  # sinfo's word: idle, mixed, allocated, draining, drained, down, ... (lower case, no flags)
    reason: str = ""
    partitions: tuple[str, ...] = ()
    gpus: int = 0  # gres gpu count
    gpus_allocated: int = 0
    jobs: tuple[str, ...] = ()  # job ids running here
    #: the state words as Slurm gives them, upper case: the base state first, then its flags
    #: (e.g. ("MIXED", "DRAIN"), ("DOWN", "DRAIN", "NOT_RESPONDING")); empty when not known
    flags: tuple[str, ...] = ()
    reason_user: str = ""  # who set the reason
    reason_time: float | None = None  # when the reason was set (epoch seconds)

    @property
    def closed(self) -> bool:
        """No new jobs start here (drained, draining, down, ...)."""
        return self.state.startswith(
            ("drain", "down", "fail", "maint", "reserved", "inval", "unknown", "not_responding")
        )

    @property
    def down(self) -> bool:
        # a DOWN node that is also drained: sinfo's word is "drained", its base state is DOWN
        return self.state.startswith(("down", "not_responding", "fail")) or (
            bool(self.flags) and self.flags[0] == "DOWN"
        )
