"""Provides the reading of Slurm's queue: whole job records of ``squeue --json`` and ``scontrol -o show partition``.

Every shape :mod:`.parse` knows is read here too: 22.05's plain numbers and ``job_state`` string
(``time_limit`` absent or ``null`` when unlimited, ``4294967295`` when INFINITE), 23.02's and 23.11+'s
``{"set", "infinite", "number"}`` numbers and 23.11+'s ``job_state`` list. Nothing here raises on odd
input: a value of the wrong type is unknown, never a made-up 0.
"""

from __future__ import annotations

from typing import Any

from ...model.jobs import SlurmJob
from ...model.slurm_queue import reason_words
from .parse import _dict, _list, job_gpus
from .values import expand_hostlist, integer, number, text, words

#: Slurm's INFINITE and NO_VAL for 32-bit fields (22.05 prints them as plain numbers)
_INFINITE32 = 0xFFFFFFFF
_NO_VAL32 = 0xFFFFFFFE


def _epoch(value: Any) -> float | None:
    """A time stamp; 0 and Slurm's NO_VAL/INFINITE are "not set"."""
    when = number(value)
    if when is None or when <= 0 or when >= _NO_VAL32:
        return None
    return when


def _time_limit(value: Any) -> tuple[float | None, bool]:
    """(seconds, unlimited) from minutes in any shape; ``null``/absent means the partition's (unlimited here)."""
    if type(value) is dict and value.get("infinite") is True:
        return None, True
    if value is None:
        return None, False
    minutes = number(value)
    if minutes is None:
        return None, False
    if minutes == _INFINITE32:
        return None, True
    if minutes >= _NO_VAL32 or minutes < 0:
        return None, False
    return minutes * 60.0, False


def _job_id(raw: dict) -> str | None:
    job_id = integer(raw.get("job_id")) if type(raw.get("job_id")) is dict else raw.get("job_id")
    if type(job_id) is int and not isinstance(job_id, bool):
        ident = str(job_id)
    elif type(job_id) is str and job_id.strip():
        ident = job_id.strip()
    else:
        return None
    array_job = integer(raw.get("array_job_id"))
    array_task = integer(raw.get("array_task_id"))
    tasks = text(raw.get("array_task_string"), 200)
    if array_job and array_task is not None:
        return f"{array_job}_{array_task}"
    if array_job and tasks:
        return f"{array_job}_[{tasks}]"
    return ident


def slurm_job(raw: Any) -> SlurmJob | None:
    """One job of ``squeue --json``; None when it has no job id."""
    if type(raw) is not dict:
        return None
    ident = _job_id(raw)
    if ident is None:
        return None
    state_words = words(raw.get("job_state"))
    state = state_words[0] if state_words else ""
    code = text(raw.get("state_reason"), 200)
    nodes = raw.get("nodes")
    if type(nodes) is not str:
        resources = _dict(raw.get("job_resources"))
        nodes = resources.get("nodes")
        if type(nodes) is dict:  # 24.05+: {"count", "list", ...}
            nodes = nodes.get("list")
    limit_s, unlimited = _time_limit(raw.get("time_limit"))
    priority = integer(raw.get("priority"))
    held = code in ("JobHeldUser", "JobHeldAdmin") or raw.get("hold") is True
    return SlurmJob(
        id=ident,
        name=text(raw.get("name")),
        user=text(raw.get("user_name"), 100),
        account=text(raw.get("account"), 100),
        partition=text(raw.get("partition"), 200),
        state=state,
        flags=state_words[1:],
        reason_code="" if code == "None" else code,
        reason=reason_words(code, text(raw.get("state_description"))),
        gpus=job_gpus(raw),
        nodes=expand_hostlist(nodes) if type(nodes) is str else (),
        node_count=integer(raw.get("node_count")),
        submitted_at=_epoch(raw.get("submit_time")),
        started_at=None if state == "PENDING" else _epoch(raw.get("start_time")),
        time_limit_s=limit_s,
        unlimited=unlimited,
        priority=priority if priority is not None and 0 <= priority < _NO_VAL32 else None,
        qos=text(raw.get("qos"), 100),
        dependency=text(raw.get("dependency"), 500),
        held=held,
    )


def parse_slurm_jobs(doc: Any) -> tuple[SlurmJob, ...]:
    """Every job of ``squeue --json`` that has an id, in Slurm's order."""
    return tuple(j for j in map(slurm_job, _list(_dict(doc).get("jobs"))) if j is not None)


def parse_partition_lines(output: str) -> dict[str, dict[str, str]]:
    """``scontrol -o show partition`` as ``{name: {key: value}}`` (values never hold spaces there)."""
    found: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        pairs = dict(w.split("=", 1) for w in line.split() if "=" in w)
        name = pairs.get("PartitionName")
        if name:
            found[name] = pairs
    return found
