"""Provides the parsing of Slurm's JSON (``sinfo --json``/``squeue --json``, openapi v0.0.37 to v0.0.41) and ``scontrol -o``.

Shapes seen across versions, all handled here:

* 21.08/22.05 (v0.0.37/38): ``{"nodes": [{"name", "state": "mixed", "state_flags": ["DRAIN"], "reason",
  "reason_set_by_user", "reason_changed_at": 1700000000, "partitions": [...], "gres", "gres_used"}]}``;
  jobs with ``"job_state": "RUNNING"`` and plain numbers.
* 23.02 (v0.0.39): the same node records with ``"state": ["MIXED", "DRAIN"]``.
* 23.11+ (v0.0.40/41): numbers as ``{"set": true, "infinite": false, "number": N}``, ``job_state`` a list,
  and ``sinfo --json`` as ``{"sinfo": [{"node": {"state": [...]}, "nodes": {"nodes": [...]},
  "partition": {"name"}, "gres": {"total", "used"}, "reason": ...}]}`` (one record per group of nodes).

Every function here takes whatever JSON it is given and never raises on odd input: a value of the
wrong type is unknown (``None``, ``""``, empty), never a made-up 0 or a made-up state. Single values
(numbers, texts, state words, hostlists, gres) are read by :mod:`.values`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ...model.types import QueueState, SlurmNode
from ...model.workload import SlurmJobRef
from .values import expand_hostlist, gres_gpus, integer, number, text, tres_gpus, words

BASE_STATES = ("UNKNOWN", "DOWN", "IDLE", "ALLOCATED", "ERROR", "MIXED", "FUTURE")
#: job states whose job holds nodes
ACTIVE_JOB_STATES = (
    "RUNNING",
    "COMPLETING",
    "SUSPENDED",
    "CONFIGURING",
    "STOPPED",
    "RESIZING",
    "SIGNALING",
    "STAGE_OUT",
)


def _dict(value: Any) -> dict:
    return value if type(value) is dict else {}


def _list(value: Any) -> list:
    return value if type(value) is list else []


# ---------------------------------------------------------------------------------- GPUs of a job
def job_gpus(raw: dict) -> int | None:
    """All GPUs of a job: allocated if known, else requested (per job, or per node × nodes)."""
    for key in ("tres_alloc_str", "tres_req_str"):
        found = tres_gpus(raw.get(key))
        if found is not None:
            return found
    per_job = gres_gpus(raw.get("tres_per_job"))
    if per_job is not None:
        return per_job
    details = [gres_gpus(d) for d in _list(raw.get("gres_detail"))]
    if details and all(d is not None for d in details):
        return sum(d for d in details if d is not None)
    per_node = gres_gpus(raw.get("tres_per_node"))
    if per_node is not None:
        nodes = integer(raw.get("node_count"))
        if nodes is None:
            nodes = len(expand_hostlist(raw.get("nodes"))) or None
        return per_node * nodes if nodes is not None else None
    return None


# ---------------------------------------------------------------------------------- jobs
def job_ref(raw: Any) -> SlurmJobRef | None:
    """One job of ``squeue --json``; None when it has no job id."""
    if type(raw) is not dict:
        return None
    job_id = raw.get("job_id")
    if type(job_id) is dict:
        job_id = integer(job_id)
    if type(job_id) is int and not isinstance(job_id, bool):
        ident = str(job_id)
    elif type(job_id) is str and job_id.strip():
        ident = job_id.strip()
    else:
        return None
    array_task = integer(raw.get("array_task_id"))
    array_job = integer(raw.get("array_job_id"))
    if array_task is not None and array_job:
        ident = f"{array_job}_{array_task}"
    state = words(raw.get("job_state"))
    nodes = raw.get("nodes")
    if type(nodes) is not str:
        nodes = _dict(raw.get("job_resources")).get("nodes")
    return SlurmJobRef(
        id=ident,
        name=text(raw.get("name")),
        user=text(raw.get("user_name")),
        state=state[0] if state else "",
        partition=text(raw.get("partition")),
        nodes=expand_hostlist(nodes) if type(nodes) is str else (),
        gpus=job_gpus(raw) or 0,
        started=number(raw.get("start_time")) or None,
    )


def parse_jobs(doc: Any) -> tuple[tuple[SlurmJobRef, ...], dict[str, float | None]]:
    """The jobs of ``squeue --json`` and each job's submit time (for the oldest pending age)."""
    jobs: list[SlurmJobRef] = []
    submitted: dict[str, float | None] = {}
    for raw in _list(_dict(doc).get("jobs")):
        job = job_ref(raw)
        if job is None:
            continue
        jobs.append(job)
        submitted[job.id] = number(raw.get("submit_time")) or None
    return tuple(jobs), submitted


# ---------------------------------------------------------------------------------- nodes
def node_state(state_words: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """sinfo's state word (lower case, as ``%T`` without the ``*`` of a node not responding) and the words as
    given, base state first."""
    if not state_words:
        return "", ()
    base = next((w for w in state_words if w in BASE_STATES), "")
    flags = tuple(w for w in state_words if w != base)
    ordered = ((base,) if base else ()) + flags
    if not base:
        return state_words[0].lower(), ordered
    busy = base in ("ALLOCATED", "MIXED") or "COMPLETING" in flags
    if base == "DOWN":  # sinfo says "drained" for DOWN+DRAIN; SlurmNode.down reads the base state
        return ("drained" if "DRAIN" in flags else "down"), ordered
    if "DRAIN" in flags:
        if base == "ERROR":
            return "error", ordered
        return ("draining" if busy else "drained"), ordered
    if "FAIL" in flags:
        return ("failing" if busy else "fail"), ordered
    if "MAINTENANCE" in flags or "MAINT" in flags:
        return "maint", ordered
    if base == "IDLE" and "COMPLETING" in flags:
        return "completing", ordered
    if "INVALID_REG" in flags or "INVALID" in flags:
        return "inval", ordered
    return base.lower(), ordered


def _reason_parts(raw: dict) -> tuple[str, str, float | None]:
    reason = raw.get("reason")
    if type(reason) is dict:  # {"description", "time", "user"}
        return (text(reason.get("description")), text(reason.get("user"), 100), number(reason.get("time")) or None)
    return (text(reason), text(raw.get("reason_set_by_user"), 100), number(raw.get("reason_changed_at")) or None)


def _node_record(raw: dict) -> SlurmNode | None:
    name = text(raw.get("name"), 200)
    if not name:
        return None
    state_words = words(raw.get("state")) + words(raw.get("state_flags"))
    state, flags = node_state(tuple(dict.fromkeys(state_words)))
    reason, user, when = _reason_parts(raw)
    partitions = tuple(p for p in _list(raw.get("partitions")) if type(p) is str and p)
    if not partitions and type(raw.get("partitions")) is str:
        partitions = tuple(p for p in raw["partitions"].split(",") if p)
    return SlurmNode(
        name=name,
        state=state,
        reason=reason,
        partitions=partitions,
        gpus=gres_gpus(raw.get("gres")) or 0,
        gpus_allocated=gres_gpus(raw.get("gres_used")) or 0,
        flags=flags,
        reason_user=user,
        reason_time=when,
    )


def _grouped_records(entries: list) -> list[SlurmNode]:
    """The 23.11+ ``sinfo`` records (a group of nodes in one partition each) merged into one node each."""
    merged: dict[str, SlurmNode] = {}
    for entry in entries:
        if type(entry) is not dict:
            continue
        names = [n for n in _list(_dict(entry.get("nodes")).get("nodes")) if type(n) is str and n]
        state, flags = node_state(words(_dict(entry.get("node")).get("state")))
        reason, user, when = _reason_parts(entry)
        partition = text(_dict(entry.get("partition")).get("name"), 200)
        gres = _dict(entry.get("gres"))
        for name in names:
            old = merged.get(name)
            parts = (old.partitions if old else ()) + (
                (partition,) if partition and (not old or partition not in old.partitions) else ()
            )
            merged[name] = SlurmNode(
                name=name,
                state=state,
                reason=reason,
                partitions=parts,
                gpus=gres_gpus(gres.get("total")) or 0,
                gpus_allocated=gres_gpus(gres.get("used")) or 0,
                flags=flags,
                reason_user=user,
                reason_time=when,
            )
    return list(merged.values())


def parse_nodes(doc: Any) -> list[SlurmNode]:
    """The nodes of ``sinfo --json`` (or ``scontrol show nodes --json``), any version's shape."""
    body = _dict(doc)
    if type(body.get("nodes")) is list:
        return [n for n in map(_node_record, (r for r in body["nodes"] if type(r) is dict)) if n is not None]
    if type(body.get("sinfo")) is list:
        return _grouped_records(body["sinfo"])
    return []


def slurm_version(doc: Any) -> str:
    """``22.05.8`` from the ``meta`` block (``Slurm`` in 22.05, ``slurm`` from 23.02); "" when absent."""
    meta = _dict(_dict(doc).get("meta"))
    block = _dict(meta.get("Slurm") or meta.get("slurm"))
    release = text(block.get("release"), 40)
    if release:
        return release
    version = _dict(block.get("version"))
    parts = [version.get(k) for k in ("major", "minor", "micro")]
    if all(type(p) in (int, str) and str(p).isdigit() for p in parts):
        major, minor, micro = (int(p) for p in parts)  # type: ignore[arg-type]
        return f"{major}.{minor:02d}.{micro}"
    return ""


def api_errors(doc: Any) -> list[str]:
    """The ``errors`` Slurm put into its JSON answer, as short texts."""
    found = []
    for err in _list(_dict(doc).get("errors")):
        if type(err) is dict:
            message = text(err.get("description") or err.get("error") or err.get("source"), 200)
            if message:
                found.append(message)
        elif type(err) is str and err:
            found.append(text(err, 200))
    return found


# ---------------------------------------------------------------------------------- scontrol -o
_SCONTROL_TIME = re.compile(r"^(?P<reason>.*?)\s*\[(?P<user>[^\[\]@]*)@(?P<when>[0-9T:-]+)\]\s*$")


def parse_scontrol_nodes(output: str) -> dict[str, dict[str, str]]:
    """``scontrol -o show node`` (one node a line, ``Key=Value`` words) as ``{name: {key: value}}``.

    ``Reason=`` holds spaces and comes last; its ``[user@time]`` suffix becomes ``ReasonUser``/``ReasonTime``.
    """
    nodes: dict[str, dict[str, str]] = {}
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("NodeName="):
            continue
        reason = None
        if " Reason=" in line:
            line, reason = line.split(" Reason=", 1)
        pairs: dict[str, str] = {}
        for word in line.split():
            key, eq, value = word.partition("=")
            if eq:
                pairs[key] = value
        if reason is not None:
            match = _SCONTROL_TIME.match(reason)
            if match:
                pairs.update(Reason=match["reason"], ReasonUser=match["user"], ReasonTime=match["when"])
            else:
                pairs["Reason"] = reason
        name = pairs.get("NodeName")
        if name:
            nodes[name] = pairs
    return nodes


def with_scontrol(nodes: list[SlurmNode], shown: dict[str, dict[str, str]], *, to_epoch) -> list[SlurmNode]:
    """Fill in the reason's user and time the JSON lacked from ``scontrol -o show node``."""
    out = []
    for node in nodes:
        pairs = shown.get(node.name)
        if pairs and node.reason and (not node.reason_user or node.reason_time is None):
            when = to_epoch(pairs.get("ReasonTime", "")) if node.reason_time is None else node.reason_time
            node = replace(node, reason_user=node.reason_user or pairs.get("ReasonUser", ""), reason_time=when)
        out.append(node)
    return out


# ---------------------------------------------------------------------------------- assembling
def attach_jobs(nodes: list[SlurmNode], jobs: Iterable[SlurmJobRef]) -> list[SlurmNode]:
    """Each node with the ids of the jobs that hold it."""
    held: dict[str, list[str]] = {}
    for job in jobs:
        if job.state in ACTIVE_JOB_STATES:
            for name in job.nodes:
                held.setdefault(name, []).append(job.id)
    return [replace(n, jobs=tuple(held.get(n.name, ()))) for n in nodes]


def build_queues(
    nodes: Iterable[SlurmNode], jobs: Iterable[SlurmJobRef], submitted: dict[str, float | None], now: float
) -> tuple[QueueState, ...]:
    """One queue per partition: pending and running jobs, GPUs waiting, the oldest pending job's age."""
    order: dict[str, None] = {}
    for node in nodes:
        order.update(dict.fromkeys(node.partitions))
    counts: dict[str, list] = {}
    jobs = list(jobs)
    for job in jobs:
        for part in (p for p in job.partition.split(",") if p):
            order.setdefault(part, None)
    for part in order:
        counts[part] = [0, 0, 0, None]  # pending, running, pending GPUs, oldest submit
    for job in jobs:
        for part in (p for p in job.partition.split(",") if p):
            entry = counts[part]
            if job.state == "PENDING":
                entry[0] += 1
                entry[2] += job.gpus
                at = submitted.get(job.id)
                if at is not None and (entry[3] is None or at < entry[3]):
                    entry[3] = at
            elif job.state in ACTIVE_JOB_STATES:
                entry[1] += 1
    return tuple(
        QueueState(
            name=part,
            system="slurm",
            pending_jobs=p,
            running_jobs=r,
            pending_gpus=g,
            oldest_pending_s=max(0.0, now - oldest) if oldest is not None else None,
        )
        for part, (p, r, g, oldest) in counts.items()
    )
