"""Provides Slurm's queue knowledge the sources and the demo share: reasons in words, partitions' GPUs from their nodes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .jobs import SlurmPartition
from .types import SlurmNode

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


def slurm_duration(value: str) -> float | None:
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
                max_time_s=slurm_duration(pairs.get("MaxTime", "")),
            )
        )
    return tuple(out)
