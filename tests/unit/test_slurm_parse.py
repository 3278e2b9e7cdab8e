"""Provides tests of the Slurm JSON parsing: the lab's real 22.05 answers, the documented 23.02-24.11 shapes, odd input."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sovtui.model.types import SlurmNode
from sovtui.sources.slurm import parse as sp
from sovtui.sources.slurm import values as sv

FIXTURES = Path(__file__).parents[1] / "fixtures" / "slurm"


def load(name: str):
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------------- the real 22.05 answers
def test_real_sinfo_22_05_nodes():
    """Recorded from the lab: gpu01 drained while a job runs, gpu02 drained idle, gpu03 set down, gpu04 busy."""
    doc = load("sinfo-22.05.json")
    nodes = {n.name: n for n in sp.parse_nodes(doc)}
    assert sp.slurm_version(doc) == "22.05.8"
    assert list(nodes) == ["gpu01", "gpu02", "gpu03", "gpu04"]
    g1, g2, g3, g4 = (nodes[f"gpu0{i}"] for i in range(1, 5))
    assert (g1.state, g1.flags, g1.reason, g1.reason_user) == (
        "draining",
        ("MIXED", "DRAIN"),
        'xid 79 on GPU 3; "rma" #42',
        "sovtui-lab",
    )
    assert g1.reason_time is not None and g1.reason_time > 1.7e9
    assert (g1.gpus, g1.gpus_allocated, g1.partitions) == (4, 2, ("gpu", "debug"))
    assert (g2.state, g2.flags, g2.reason) == ("drained", ("IDLE", "DRAIN"), "maintenance window")
    assert (g3.state, g3.flags, g3.reason, g3.down, g3.closed) == ("down", ("DOWN",), "PSU failed", True, True)
    assert (g4.state, g4.flags, g4.reason, g4.reason_user, g4.reason_time) == ("mixed", ("MIXED",), "", "", None)
    assert (g4.gpus_allocated, g4.partitions, g4.closed) == (3, ("gpu",), False)


def test_real_squeue_22_05_jobs_and_queues():
    jobs, submitted = sp.parse_jobs(load("squeue-22.05.json"))
    by_id = {j.id: j for j in jobs}
    assert set(by_id) == {"1", "2", "3", "4"}
    assert (by_id["1"].state, by_id["1"].nodes, by_id["1"].gpus, by_id["1"].user, by_id["1"].name) == (
        "RUNNING",
        ("gpu01",),
        2,
        "sovtui-lab",
        "train-a",
    )
    assert by_id["1"].started is not None
    assert (by_id["2"].nodes, by_id["2"].gpus) == (("gpu04",), 3)  # gpu:h100:3 (typed gres)
    assert (by_id["3"].state, by_id["3"].partition, by_id["3"].gpus, by_id["3"].started) == (
        "PENDING",
        "debug",
        8,
        None,
    )
    assert by_id["4"].gpus == 1
    nodes = sp.attach_jobs(sp.parse_nodes(load("sinfo-22.05.json")), jobs)
    assert {n.name: n.jobs for n in nodes} == {"gpu01": ("1",), "gpu02": (), "gpu03": (), "gpu04": ("2",)}
    now = max(t for t in submitted.values() if t) + 100
    queues = {q.name: q for q in sp.build_queues(nodes, jobs, submitted, now)}
    assert list(queues) == ["gpu", "debug"]
    gpu, debug = queues["gpu"], queues["debug"]
    assert (gpu.system, gpu.pending_jobs, gpu.running_jobs, gpu.pending_gpus) == ("slurm", 1, 2, 1)
    assert (debug.pending_jobs, debug.running_jobs, debug.pending_gpus) == (1, 0, 8)
    assert abs(debug.oldest_pending_s - (now - submitted["3"])) < 1e-6


def test_real_scontrol_reason_user_and_time():
    shown = sp.parse_scontrol_nodes((FIXTURES / "scontrol-show-node-22.05.txt").read_text(encoding="utf-8"))
    assert set(shown) == {"gpu01", "gpu02", "gpu03", "gpu04"}
    assert shown["gpu01"]["Reason"] == 'xid 79 on GPU 3; "rma" #42'
    assert shown["gpu01"]["ReasonUser"] == "sovtui-lab"
    assert shown["gpu03"]["State"] == "DOWN"
    assert "Reason" not in shown["gpu04"]


def test_scontrol_fills_in_what_the_json_lacks():
    shown = sp.parse_scontrol_nodes((FIXTURES / "scontrol-show-node-22.05.txt").read_text(encoding="utf-8"))
    nodes = [
        SlurmNode("gpu01", "draining", reason='xid 79 on GPU 3; "rma" #42'),
        SlurmNode("gpu04", "mixed"),
        SlurmNode("gpu02", "drained", reason="maintenance window", reason_user="admin", reason_time=5.0),
    ]
    g1, g4, g2 = sp.with_scontrol(nodes, shown, to_epoch=lambda stamp: 1234.0 if stamp else None)
    assert (g1.reason_user, g1.reason_time) == ("sovtui-lab", 1234.0)
    assert (g4.reason_user, g4.reason_time) == ("", None)  # no reason: nothing to fill in
    assert (g2.reason_user, g2.reason_time) == ("admin", 5.0)  # the JSON said it: kept


# ---------------------------------------------------------------------------------- documented newer shapes
def test_node_records_23_02_state_list_and_number_objects():
    doc = {
        "meta": {"slurm": {"version": {"major": "23", "minor": "11", "micro": "4"}, "release": "23.11.4"}},
        "nodes": [
            {
                "name": "n1",
                "state": ["IDLE", "DRAIN"],
                "reason": "bad dimm",
                "reason_set_by_user": "ops",
                "reason_changed_at": {"set": True, "infinite": False, "number": 1762337299},
                "partitions": ["gpu"],
                "gres": "gpu:a100:8(S:0-1)",
                "gres_used": "gpu:a100:0(IDX:N/A)",
            },
            {
                "name": "n2",
                "state": ["DOWN", "NOT_RESPONDING"],
                "reason": "Not responding",
                "reason_changed_at": {"set": False, "infinite": False, "number": 0},
            },
            {"name": "n3", "state": ["ALLOCATED", "COMPLETING", "DRAIN"]},
            {"name": "n4", "state": ["MIXED", "NOT_RESPONDING"]},
            {"name": "n5", "state": ["DOWN", "DRAIN"]},
        ],
    }
    nodes = {n.name: n for n in sp.parse_nodes(doc)}
    assert sp.slurm_version(doc) == "23.11.4"
    assert (nodes["n1"].state, nodes["n1"].gpus, nodes["n1"].gpus_allocated, nodes["n1"].reason_time) == (
        "drained",
        8,
        0,
        1762337299.0,
    )
    assert (nodes["n2"].state, nodes["n2"].flags, nodes["n2"].reason_time) == ("down", ("DOWN", "NOT_RESPONDING"), None)
    assert nodes["n3"].state == "draining"
    assert (nodes["n4"].state, nodes["n4"].flags, nodes["n4"].down) == ("mixed", ("MIXED", "NOT_RESPONDING"), False)
    assert (nodes["n5"].state, nodes["n5"].down, nodes["n5"].closed) == ("drained", True, True)


def test_grouped_sinfo_23_11_merges_partitions_and_reads_reason_objects():
    doc = {
        "sinfo": [
            {
                "node": {"state": ["MIXED", "DRAIN"]},
                "nodes": {"nodes": ["g1", "g2"]},
                "partition": {"name": "gpu"},
                "gres": {"total": "gpu:l40s:4(S:0-1)", "used": "gpu:l40s:1(IDX:0)"},
                "reason": {
                    "description": "rma",
                    "user": "ops",
                    "time": {"set": True, "infinite": False, "number": 17e8},
                },
            },
            {
                "node": {"state": ["MIXED", "DRAIN"]},
                "nodes": {"nodes": ["g1"]},
                "partition": {"name": "all"},
                "gres": {"total": "gpu:l40s:4", "used": "gpu:l40s:1(IDX:0)"},
                "reason": {"description": "rma"},
            },
            {"node": {"state": ["IDLE"]}, "nodes": {"nodes": ["g3"]}, "partition": {"name": "gpu"}, "reason": ""},
        ]
    }
    nodes = {n.name: n for n in sp.parse_nodes(doc)}
    assert nodes["g1"].partitions == ("gpu", "all")
    assert (nodes["g2"].state, nodes["g2"].reason, nodes["g2"].reason_user, nodes["g2"].reason_time) == (
        "draining",
        "rma",
        "ops",
        17e8,
    )
    assert (nodes["g2"].gpus, nodes["g2"].gpus_allocated) == (4, 1)
    assert (nodes["g3"].state, nodes["g3"].gpus, nodes["g3"].reason) == ("idle", 0, "")


def test_jobs_24_11_state_lists_and_number_objects():
    doc = {
        "jobs": [
            {
                "job_id": 525,
                "name": "x",
                "user_name": "u",
                "partition": "gpu",
                "job_state": ["RUNNING"],
                "nodes": "g[01-02]",
                "tres_alloc_str": "cpu=2,mem=4G,node=2,gres/gpu=4,gres/gpu:l40s=4",
                "start_time": {"set": True, "infinite": False, "number": 1755290346},
                "submit_time": {"set": True, "infinite": False, "number": 1755290000},
            },
            {
                "job_id": 526,
                "job_state": ["PENDING"],
                "partition": "gpu,all",
                "tres_per_node": "gres/gpu:2",
                "node_count": {"set": True, "infinite": False, "number": 3},
                "submit_time": {"set": True, "infinite": False, "number": 1755280000},
                "start_time": {"set": True, "infinite": False, "number": 0},
            },
            {
                "job_id": 527,
                "array_job_id": {"set": True, "number": 520},
                "array_task_id": {"set": True, "number": 7},
                "job_state": ["PENDING"],
                "partition": "gpu",
                "tres_per_job": "gres/gpu:h100:8",
            },
        ]
    }
    jobs, submitted = sp.parse_jobs(doc)
    running, pending, array = jobs
    assert (running.state, running.nodes, running.gpus, running.started) == ("RUNNING", ("g01", "g02"), 4, 1755290346.0)
    assert (pending.gpus, pending.started) == (6, None)
    assert array.id == "520_7" and array.gpus == 8
    queues = {q.name: q for q in sp.build_queues([], jobs, submitted, 1755290400.0)}
    assert (queues["gpu"].pending_jobs, queues["gpu"].running_jobs, queues["gpu"].pending_gpus) == (2, 1, 14)
    assert queues["gpu"].oldest_pending_s == 10400.0
    assert (queues["all"].pending_jobs, queues["all"].pending_gpus) == (1, 6)
    assert queues["all"].oldest_pending_s == 10400.0


def test_unknown_state_word_stays_what_it_says():
    nodes = sp.parse_nodes({"nodes": [{"name": "x", "state": "PERPLEXED"}, {"name": "y"}]})
    assert (nodes[0].state, nodes[0].flags, nodes[0].closed) == ("perplexed", ("PERPLEXED",), False)
    assert (nodes[1].state, nodes[1].flags) == ("", ())


def test_hostlists():
    assert sv.expand_hostlist("gpu[01-03,07],login1") == ("gpu01", "gpu02", "gpu03", "gpu07", "login1")
    assert sv.expand_hostlist("r[1-2]-n[08-09]") == ("r1-n08", "r1-n09", "r2-n08", "r2-n09")
    assert sv.expand_hostlist("bad[3-1],odd[x]") == ("bad[3-1]", "odd[x]")
    assert sv.expand_hostlist("") == () and sv.expand_hostlist(None) == ()
    assert len(sv.expand_hostlist("n[0-99999999]", limit=1000)) == 1  # too big: kept as written, not expanded


def test_gres_and_tres_counts():
    assert sv.gres_gpus("gpu:h100:4(S:0-1),gpu:a100:2") == 6
    assert sv.gres_gpus("gpu:h100:2(IDX:0-1,3)") == 2
    assert sv.gres_gpus("gres:gpu:2") == 2 and sv.gres_gpus("gres/gpu:h100:3") == 3
    assert sv.gres_gpus("tmpsize:7T") is None and sv.gres_gpus("N/A") is None and sv.gres_gpus("") is None
    assert sv.tres_gpus("cpu=1,gres/gpu=3,gres/gpu:h100=3") == 3
    assert sv.tres_gpus("cpu=1,mem=4G") is None


# ---------------------------------------------------------------------------------- odd input never raises
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=30,
)
KEYS = st.sampled_from(
    [
        "name",
        "state",
        "state_flags",
        "reason",
        "reason_set_by_user",
        "reason_changed_at",
        "partitions",
        "gres",
        "gres_used",
        "job_id",
        "job_state",
        "nodes",
        "partition",
        "tres_per_node",
        "tres_alloc_str",
        "tres_req_str",
        "tres_per_job",
        "gres_detail",
        "node_count",
        "submit_time",
        "start_time",
        "array_job_id",
        "array_task_id",
        "user_name",
        "node",
        "job_resources",
    ]
)
RECORD = st.dictionaries(KEYS, JSON, max_size=10)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nodes=st.lists(RECORD, max_size=5), jobs=st.lists(RECORD, max_size=5), top=JSON)
def test_parsers_never_raise_on_odd_input(nodes, jobs, top):
    for doc in ({"nodes": nodes}, {"sinfo": nodes}, {"jobs": jobs}, top, {"meta": top, "errors": top}):
        parsed = sp.parse_nodes(doc)
        found, submitted = sp.parse_jobs(doc)
        sp.slurm_version(doc)
        sp.api_errors(doc)
        attached = sp.attach_jobs(parsed, found)
        queues = sp.build_queues(attached, found, submitted, 2e9)
        for node in attached:
            assert isinstance(node.state, str) and node.gpus >= 0
            if not node.flags:
                assert node.state == ""  # no state given: unknown, never made up
        for queue in queues:
            assert queue.pending_jobs >= 0 and queue.running_jobs >= 0


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_string_parsers_never_raise(value):
    sv.expand_hostlist(value, limit=1000)
    sv.gres_gpus(value)
    sv.tres_gpus(value)
    sv.words(value)
    sp.parse_scontrol_nodes(value)
    sp.parse_scontrol_nodes("NodeName=" + value + " Reason=" + value)
