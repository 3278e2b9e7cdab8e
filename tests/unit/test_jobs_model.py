"""Tests the rows of work across Slurm, Kubernetes and Kueue: order, merging, GPUs pending."""

from __future__ import annotations

from sovtui.model.jobs import (
    JobsState,
    KubeJob,
    KueueWorkload,
    PendingPod,
    SlurmJob,
    SlurmPartition,
    merge_jobs,
    pending_gpus,
    work_rows,
)


def _state() -> JobsState:
    return JobsState(
        slurm_jobs=(
            SlurmJob(id="1", name="train", user="alice", partition="gpu", state="RUNNING", gpus=4, started_at=50.0),
            SlurmJob(
                id="2",
                name="big",
                user="bob",
                partition="gpu",
                state="PENDING",
                gpus=8,
                submitted_at=20.0,
                reason_code="Resources",
                reason="waits for resources",
            ),
            SlurmJob(id="3", user="carol", partition="gpu", state="PENDING", gpus=None, submitted_at=10.0),
        ),
        slurm_partitions=(SlurmPartition(name="gpu", state="UP", gpus_total=16),),
    )


def test_pending_first_oldest_wait_first_then_running():
    kube = JobsState(
        pending_pods=(
            PendingPod(namespace="ml", name="infer-0", gpus=2, reason="0/4 nodes are available", since=15.0),
        ),
        kueue_workloads=(
            KueueWorkload(
                namespace="ml",
                name="wl-a",
                queue="team-a",
                state="pending",
                gpus=4,
                queued=5.0,
                reason="insufficient quota",
            ),
            KueueWorkload(namespace="ml", name="wl-b", queue="team-a", cluster_queue="cq", state="admitted", gpus=4),
        ),
        kube_jobs=(
            KubeJob(namespace="ml", name="etl", active=1, state="running", created=40.0, gpus=1),
            KubeJob(namespace="ml", name="old", succeeded=1, state="complete"),
        ),
    )
    rows = work_rows(merge_jobs([_state(), kube]))
    assert [r.key for r in rows] == [
        "kueue:ml/wl-a",
        "slurm:3",
        "kubernetes:ml/infer-0",
        "slurm:2",
        "job:ml/etl",
        "slurm:1",
    ]
    assert [r.pending for r in rows] == [True] * 4 + [False] * 2
    big = next(r for r in rows if r.key == "slurm:2")
    assert (big.id, big.owner, big.queue, big.gpus, big.reason, big.since) == (
        "2 big",
        "bob",
        "gpu",
        8,
        "waits for resources",
        20.0,
    )
    assert pending_gpus(rows) == (4 + 2 + 8, False)  # job 3 does not say how many GPUs: the sum is a floor


def test_merge_keeps_each_systems_part_and_none_for_a_missing_one():
    merged = merge_jobs([None, _state(), JobsState(kube_jobs=())])
    assert merged is not None
    assert len(merged.slurm_jobs or ()) == 3 and merged.kube_jobs == () and merged.pending_pods is None
    assert merge_jobs([None, None]) is None
    assert work_rows(None) == []


def test_short_reason_names_the_gist():
    from sovtui.model.jobs import WorkRow, short_reason

    def row(system, reason, pending=True):
        return WorkRow(
            key="k",
            system=system,
            queue="q",
            id="i",
            owner="o",
            state="PENDING",
            gpus=1,
            since=None,
            reason=reason,
            pending=pending,
        )

    assert short_reason(row("slurm", "waits for resources"), "Resources") == "Resources"
    pod = "0/19 nodes are available: 8 Insufficient nvidia.com/gpu, 1 node(s) were unschedulable."
    assert short_reason(row("kubernetes", pod)) == "no GPU free"
    assert (
        short_reason(row("kubernetes", "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector."))
        == "no node matches"
    )
    assert (
        short_reason(row("kueue", "couldn't assign flavors: insufficient unused quota for nvidia.com/gpu"))
        == "no quota"
    )
    assert short_reason(row("slurm", "running", pending=False)) == ""
