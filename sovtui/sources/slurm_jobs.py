"""Provides the reading of Slurm's queue: whole job records of ``squeue --json`` and partitions, with reasons in words.

Every shape :mod:`.slurm_parse` knows is read here too: 22.05's plain numbers and ``job_state`` string
(``time_limit`` absent or ``null`` when unlimited, ``4294967295`` when INFINITE), 23.02's and 23.11+'s
``{"set", "infinite", "number"}`` numbers and 23.11+'s ``job_state`` list. Nothing here raises on odd
input: a value of the wrong type is unknown, never a made-up 0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ..model.jobs import SlurmJob, SlurmPartition
from ..model.types import SlurmNode
from .slurm_parse import _dict, _list, expand_hostlist, integer, job_gpus, number, text, words

#: Slurm's INFINITE and NO_VAL for 32-bit fields (22.05 prints them as plain numbers)
_INFINITE32 = 0xFFFFFFFF
_NO_VAL32 = 0xFFFFFFFE

#: Slurm's reason codes (``state_reason``) in words; an unknown code is shown as Slurm wrote it
REASONS = {
    "Resources": "waits for resources: the GPUs or nodes it asks for are in use",
    "Priority": "queued behind jobs of higher priority",
    "Dependency": "waits for the jobs it depends on",
    "DependencyNeverSatisfied": "its dependency can never be met (cancel it or fix the dependency)",
    "JobHeldUser": "held by its user (release it to queue it)",
    "JobHeldAdmin": "held by an administrator (release it to queue it)",
    "BeginTime": "waits for its begin time",
    "ReqNodeNotAvail": "a node it asks for is down, drained or reserved",
    "NodeDown": "a node of the job is down",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is inactive",
    "PartitionTimeLimit": "its time limit is over the partition's",
    "PartitionNodeLimit": "it asks for more nodes than the partition allows",
    "PartitionConfig": "it asks for more than the partition is configured for",
    "Reservation": "waits for its reservation",
    "Licenses": "waits for licenses",
    "BadConstraints": "its constraints can never be met",
    "JobArrayTaskLimit": "its array is at its limit of running tasks",
    "launch failed requeued held": "its launch failed: requeued and held",
    "Prolog": "its prolog is running",
    "Cleaning": "its nodes are being cleaned up after a previous run",
    "InvalidAccount": "its account is not valid",
    "InvalidQOS": "its QOS is not valid",
    "QOSMaxGRESPerUser": "its user is at the QOS's GPU limit",
    "QOSMaxGRESPerJob": "it asks for more GPUs than its QOS allows a job",
    "QOSGrpGRES": "its QOS is at its GPU limit",
    "QOSMaxJobsPerUserLimit": "its user is at the QOS's limit of running jobs",
    "QOSMaxSubmitJobPerUserLimit": "its user is at the QOS's limit of submitted jobs",
    "QOSGrpCpuLimit": "its QOS is at its CPU limit",
    "AssocGrpGRES": "its account is at its GPU limit",
    "AssocMaxGRESPerJob": "it asks for more GPUs than its account allows a job",
    "AssocGrpJobsLimit": "its account is at its limit of running jobs",
    "AssocMaxJobsLimit": "its user is at the account's limit of running jobs",
    "AssocGrpCpuLimit": "its account is at its CPU limit",
    "AssocGrpNodeLimit": "its account is at its node limit",
    "MaxRequeueExceeded": "requeued too many times",
    "TimeLimit": "reached its time limit",
    "NonZeroExitCode": "exited with a non-zero code",
}


def reason_words(code: str, description: str = "") -> str:
    """A job's reason in words: Slurm's own description when it gives one, else :data:`REASONS`, else the code."""
    if code in ("", "None"):
        return description
    if description:
        return description
    return REASONS.get(code, code)


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


def _minutes_text(value: str) -> float | None:
    """``MaxTime`` as scontrol writes it (``UNLIMITED``, minutes, ``m:s``, ``h:m:s``, ``d-h[:m[:s]]``) in seconds; None if unlimited."""
    if not value or value.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    days, _, rest = value.rpartition("-")
    parts = rest.split(":")
    if not all(p.isdigit() for p in parts) or (days and not days.isdigit()) or len(parts) > 3:
        return None
    nums = [int(p) for p in parts]
    if days:  # days-hours[:minutes[:seconds]]
        nums += [0] * (3 - len(nums))
        seconds = nums[0] * 3600 + nums[1] * 60 + nums[2]
    elif len(nums) == 3:  # hours:minutes:seconds
        seconds = nums[0] * 3600 + nums[1] * 60 + nums[2]
    else:  # minutes[:seconds]
        seconds = nums[0] * 60 + (nums[1] if len(nums) == 2 else 0)
    return float(seconds + (int(days) * 86400 if days else 0))


def build_partitions(nodes: Iterable[SlurmNode], shown: dict[str, dict[str, str]] | None) -> tuple[SlurmPartition, ...]:
    """One record per partition from its nodes (GPUs by what the nodes do) and ``scontrol`` (state, limits).

    ``shown`` is None when ``scontrol show partition`` did not answer: the state is then unknown (""), never "UP".
    """
    members: dict[str, list[SlurmNode]] = {}
    for name in shown or {}:
        members.setdefault(name, [])
    for node in nodes:
        for part in node.partitions:
            members.setdefault(part, []).append(node)
    out = []
    for name, group in members.items():
        pairs = (shown or {}).get(name, {})
        total = allocated = idle = drained = down = 0
        for node in group:
            total += node.gpus
            allocated += min(node.gpus_allocated, node.gpus)
            free = max(0, node.gpus - node.gpus_allocated)
            if node.down:
                down += node.gpus
            elif node.closed:
                drained += node.gpus
            else:
                idle += free
        states = Counter(n.state or "unknown" for n in group)
        out.append(
            SlurmPartition(
                name=name,
                state=pairs.get("State", "").upper(),
                default=pairs.get("Default", "").upper() == "YES",
                nodes=len(group),
                nodes_by_state=tuple(sorted(states.items(), key=lambda kv: (-kv[1], kv[0]))),
                gpus_total=total if group else None,
                gpus_allocated=allocated if group else None,
                gpus_idle=idle if group else None,
                gpus_drained=drained if group else None,
                gpus_down=down if group else None,
                max_time_s=_minutes_text(pairs.get("MaxTime", "")),
            )
        )
    return tuple(out)
