"""Tests the reading of Slurm's queue: recorded 22.05 output of the lab's real cluster, the later shapes, odd input."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sovtui.model import slurm_queue as sq
from sovtui.model.jobs import SlurmJob
from sovtui.sources.slurm import jobs as sj
from sovtui.sources.slurm import parse as sp

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"


def _load(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def _num(n, *, infinite=False, set_=True):
    return {"set": set_, "infinite": infinite, "number": n}


# ---------------------------------------------------------------------------------- 22.05, recorded
def test_recorded_2205_queue_every_job_and_reason():
    # the lab's real Slurm 22.05: three jobs run on gpu01-03, gpu04 is drained, the rest wait for different reasons
    jobs = {j.name: j for j in sj.parse_slurm_jobs(_load("squeue-jobs-22.05.json"))}
    assert len(jobs) == 9
    run = jobs["train-gpu01"]
    assert (run.id, run.state, run.nodes, run.gpus, run.reason_code, run.reason) == (
        "1",
        "RUNNING",
        ("gpu01",),
        4,
        "",
        "",
    )
    assert run.time_limit_s == 120 * 60 and not run.unlimited and run.started_at and run.submitted_at
    assert run.user and run.partition == "gpu" and run.priority == 4294901759
    big = jobs["finetune-big"]
    assert (big.state, big.reason_code, big.gpus, big.nodes, big.started_at) == ("PENDING", "Resources", 4, (), None)
    assert big.reason == sq.REASONS["Resources"]
    assert jobs["eval-small"].reason_code == "Priority" and jobs["eval-small"].gpus == 2
    assert jobs["eval-small"].time_limit_s is None  # no --time: the partition's (unlimited) limit
    held = jobs["held-job"]
    assert held.held and held.reason_code == "JobHeldUser" and held.priority == 0
    sweep = jobs["sweep"]
    assert sweep.id == "7_[0-3]" and sweep.reason_code == "Priority" and sweep.time_limit_s == 600
    dep = jobs["after-train"]
    assert dep.reason_code == "Dependency" and dep.dependency.startswith("afterok:1")
    cpu = jobs["cpu-only"]  # Slurm's own description wins over the code's words
    assert cpu.gpus is None and cpu.reason.startswith("Nodes required for job are DOWN, DRAINED")
    assert sum(j.gpus or 0 for j in jobs.values() if j.pending) == 4 + 2 + 1 + 1 + 1


def test_recorded_2205_partitions():
    nodes = sp.parse_nodes(_load("sinfo-jobs-22.05.json"))
    shown = sj.parse_partition_lines((FIXTURES / "scontrol-show-partition-22.05.txt").read_text(encoding="utf-8"))
    parts = {p.name: p for p in sq.build_partitions(nodes, shown)}
    gpu = parts["gpu"]
    assert (gpu.state, gpu.default, gpu.nodes, gpu.max_time_s) == ("UP", True, 4, None)
    assert (gpu.gpus_total, gpu.gpus_allocated, gpu.gpus_idle, gpu.gpus_drained, gpu.gpus_down) == (16, 12, 0, 4, 0)
    assert dict(gpu.nodes_by_state) == {"mixed": 3, "drained": 1}
    debug = parts["debug"]
    assert (debug.state, debug.default, debug.nodes, debug.gpus_total, debug.gpus_allocated) == ("UP", False, 2, 8, 8)


def test_partition_state_unknown_without_scontrol():
    nodes = sp.parse_nodes(_load("sinfo-jobs-22.05.json"))
    parts = sq.build_partitions(nodes, None)
    assert {p.name for p in parts} == {"gpu", "debug"} and all(p.state == "" for p in parts)


def test_a_partition_without_nodes_has_unknown_gpus():
    (part,) = sq.build_partitions([], {"empty": {"PartitionName": "empty", "State": "INACTIVE"}})
    assert part.state == "INACTIVE" and part.nodes == 0 and part.gpus_total is None


# ---------------------------------------------------------------------------------- later shapes
def test_2311_shape_numbers_as_objects_and_state_list():
    raw = {
        "job_id": 42,
        "array_job_id": _num(0),
        "array_task_id": _num(0, set_=False),
        "name": "llm",
        "user_name": "alice",
        "account": "ml",
        "partition": "gpu",
        "job_state": ["PENDING", "REQUEUED"],
        "state_reason": "QOSMaxGRESPerUser",
        "state_description": "",
        "tres_per_node": "gres/gpu:8",
        "node_count": _num(2),
        "submit_time": _num(1_700_000_000),
        "start_time": _num(1_700_009_999),
        "time_limit": _num(0, infinite=True),
        "priority": _num(1000),
        "nodes": "",
    }
    job = sj.slurm_job(raw)
    assert job == SlurmJob(
        id="42",
        name="llm",
        user="alice",
        account="ml",
        partition="gpu",
        state="PENDING",
        flags=("REQUEUED",),
        reason_code="QOSMaxGRESPerUser",
        reason=sq.REASONS["QOSMaxGRESPerUser"],
        gpus=16,
        nodes=(),
        node_count=2,
        submitted_at=1_700_000_000,
        started_at=None,
        time_limit_s=None,
        unlimited=True,
        priority=1000,
    )


def test_2405_shape_nodes_under_job_resources_and_array_task():
    raw = {
        "job_id": 77,
        "array_job_id": _num(70),
        "array_task_id": _num(3),
        "job_state": ["RUNNING"],
        "state_reason": "None",
        "tres_alloc_str": "cpu=8,mem=64G,node=2,billing=8,gres/gpu=8",
        "job_resources": {"nodes": {"count": 2, "list": "gpu[07-08]"}},
        "time_limit": _num(60),
        "start_time": _num(1_700_000_100),
        "hold": False,
    }
    job = sj.slurm_job(raw)
    assert job is not None
    assert (job.id, job.state, job.nodes, job.gpus, job.time_limit_s, job.reason) == (
        "70_3",
        "RUNNING",
        ("gpu07", "gpu08"),
        8,
        3600.0,
        "",
    )


def test_2205_infinite_and_no_val_limits():
    assert sj._time_limit(4294967295) == (None, True)
    assert sj._time_limit(4294967294) == (None, False)
    assert sj._time_limit(30) == (1800.0, False)
    assert sj._epoch(0) is None and sj._epoch(4294967294) is None and sj._epoch(10) == 10


def test_scontrol_max_time_forms():
    f = sq.slurm_duration
    assert (f("UNLIMITED"), f("60"), f("2:30:00"), f("1-00:00:00"), f("1-12"), f("5:30"), f("junk")) == (
        None,
        3600.0,
        9000.0,
        86400.0,
        129600.0,
        330.0,
        None,
    )


def test_unknown_reason_code_is_shown_as_written():
    assert sq.reason_words("SomeNewReason") == "SomeNewReason"
    assert sq.reason_words("None") == "" and sq.reason_words("") == ""


# ---------------------------------------------------------------------------------- odd input
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)
_FIELDS = (
    "job_id",
    "array_job_id",
    "array_task_id",
    "array_task_string",
    "job_state",
    "state_reason",
    "state_description",
    "time_limit",
    "submit_time",
    "start_time",
    "priority",
    "nodes",
    "job_resources",
    "tres_per_node",
    "tres_alloc_str",
    "node_count",
    "hold",
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(_FIELDS), _json, max_size=len(_FIELDS)))
def test_any_job_record_parses_or_is_skipped(raw):
    job = sj.slurm_job(raw)
    if job is None:
        return
    assert isinstance(job.id, str) and job.id
    assert job.gpus is None or job.gpus >= 0
    assert job.time_limit_s is None or job.time_limit_s >= 0
    assert not (job.unlimited and job.time_limit_s is not None)
    assert job.started_at is None or job.state != "PENDING"


@given(_json)
def test_any_document_gives_a_tuple_of_jobs(doc):
    assert isinstance(sj.parse_slurm_jobs(doc), tuple)
    assert isinstance(sj.parse_partition_lines(doc if isinstance(doc, str) else ""), dict)
