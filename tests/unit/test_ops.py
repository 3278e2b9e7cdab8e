"""Provides tests of the operations layer: drain/cordon/uncordon plans (kubectl drain's filters, Nova, Slurm), runs, audit, journal."""

from __future__ import annotations

import asyncio
import json

import pytest

from sovtui.model.types import SiteInfo
from sovtui.model.workload import BudgetRef, PodRef, SlurmJobRef, VmRef
from sovtui.ops import audit
from sovtui.ops.drain import plan_kube
from sovtui.ops.journal import Journal
from sovtui.ops.operator import Operator
from sovtui.ops.plan import OpsError, Options, Plan, ReadOnly, UnknownHost
from sovtui.ops.render import plan_lines
from tests.lab.layers import FakeKube, FakeNova, FakeSlurm, results_of

SITE = SiteInfo(name="lab")


def pod(name, **kw) -> PodRef:
    kw.setdefault("owner_kind", "ReplicaSet")
    kw.setdefault("owner_name", f"{name}-rs")
    return PodRef("ml", name, uid=f"uid-{name}", **kw)


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path


def operator(*layers, site=SITE, poll_s=0.01):
    op = Operator(site, layers, lambda: results_of(*layers), poll_s=poll_s)
    return op


# ------------------------------------------------------------------ plans (pure)
def test_a_node_whose_pods_are_unknown_is_not_drained():
    for pods, why in ((None, ""), ([pod("web")], "forbidden"), (None, "not served")):
        steps, blockers = plan_kube("gpu01", "gpu01", pods, False, "drain", Options(reason="r"), why)
        assert [s.action for s in steps] == ["cordon"]  # no pod step from a cache that is not known
        assert len(blockers) == 1 and blockers[0].fatal
        assert f"the pods on this node are not known ({why or 'the pod cache is not loaded'})" in blockers[0].why
        assert "RBAC" in blockers[0].lift


def test_kubectl_filters_in_order():
    pods = [
        pod("ds", owner_kind="DaemonSet", owner_name="dcgm", emptydir=True),  # DaemonSet wins over emptyDir
        PodRef("kube-system", "static", mirror=True),  # mirror wins over no controller
        pod("scratch", emptydir=True),
        PodRef("ml", "bare", uid="u"),
        pod("web", gpus=2),
        pod("leaving", deleting=True),
    ]
    steps, blockers = plan_kube("gpu01", "gpu01", pods, False, "drain", Options(reason="r"))
    by = {s.name: s for s in steps}
    assert by["gpu01"].action == "cordon"
    assert by["ml/ds"].action == "skip" and "DaemonSet" in by["ml/ds"].detail
    assert by["kube-system/static"].action == "skip" and "mirror" in by["kube-system/static"].detail
    assert by["ml/web"].action == "evict" and by["ml/web"].gpus == 2
    assert by["ml/leaving"].action == "wait"
    fatal = {b.item: b for b in blockers if b.fatal}
    assert set(fatal) == {"ml/scratch", "ml/bare"}
    assert "emptyDir" in fatal["ml/scratch"].why and "--delete-emptydir-data" in fatal["ml/scratch"].lift
    assert "no controller" in fatal["ml/bare"].why and "--force" in fatal["ml/bare"].lift


def test_options_lift_blockers_and_pdb_is_a_wait():
    pods = [
        pod("scratch", emptydir=True),
        PodRef("ml", "bare"),
        pod("held", budgets=(BudgetRef("ml", "web-pdb", 0, 2, 2, 2),)),
    ]
    steps, blockers = plan_kube(
        "h", "h", pods, True, "drain", Options(reason="r", force=True, delete_emptydir_data=True)
    )
    assert [b.fatal for b in blockers] == [False]
    assert "web-pdb allows 0" in blockers[0].why and "2 healthy, needs 2" in blockers[0].why
    assert next(s for s in steps if s.kind == "node").detail == "already cordoned"
    assert all(s.action == "evict" for s in steps if s.kind == "pod")


def test_cordon_moves_nothing_and_uncordon_skips_open_node():
    steps, _ = plan_kube("h", "h", [pod("a")], False, "cordon", Options(reason="r"))
    assert [(s.kind, s.action) for s in steps] == [("node", "cordon"), ("pod", "stay")]
    steps, _ = plan_kube("h", "h", [pod("a")], False, "uncordon", Options())
    assert [(s.kind, s.action) for s in steps] == [("node", "skip")]


def test_options_are_checked():
    with pytest.raises(OpsError, match="needs a reason"):
        Options().check("drain")
    with pytest.raises(OpsError, match="layers"):
        Options(reason="x", layers=("ceph",)).check("drain")
    assert Options(layers=("slurm", "kubernetes")).check("uncordon").layers == ("kubernetes", "slurm")
    assert Options(reason="  a\n b ").check("cordon").reason == "a b"


async def test_plan_across_three_layers(env):
    kube = FakeKube({"gpu01": [pod("a", gpus=4)], "gpu02": []})
    nova = FakeNova(
        {
            "gpu01": [
                VmRef("v1", "vm-plain", status="ACTIVE", vcpus=4, ram_mb=8192),
                VmRef("v2", "vm-pci", status="ACTIVE", gpu="pci", flavor="g1.pci"),
                VmRef("v3", "vm-off", status="SHUTOFF"),
            ],
            "gpu02": [],
        }
    )
    slurm = FakeSlurm({"gpu01": [SlurmJobRef("42", "train", "ana", "RUNNING", gpus=4)], "gpu02": []})
    plan = await operator(kube, nova, slurm).plan("drain", ["GPU01.lab.example"], Options(reason="bad GPU"))
    assert plan.runnable and plan.hosts == ("GPU01.lab.example",)
    actions = {(s.layer, s.name): s.action for s in plan.steps}
    assert actions[("kubernetes", "ml/a")] == "evict"
    assert actions[("nova", "gpu01")] == "disable"
    assert actions[("nova", "vm-plain")] == "live-migrate"
    assert actions[("nova", "vm-pci")] in ("cold-migrate", "live-migrate")
    assert actions[("nova", "vm-off")] == "cold-migrate"
    assert actions[("slurm", "gpu01")] == "drain" and actions[("slurm", "42")] == "wait"
    assert plan.summary()["gpus_freed"] == 4
    text = "\n".join(plan_lines(plan))
    assert "reason: bad GPU" in text and "Kubernetes" in text and "Nova" in text and "Slurm" in text
    assert json.loads(json.dumps(plan.to_json()))["runnable"] is True
    assert Plan.from_json(plan.to_json()) == plan


async def test_read_only_refuses_every_action(env):
    kube = FakeKube({"gpu01": []})
    op = operator(kube, site=SiteInfo(name="lab", read_only=True))
    for action in ("drain", "cordon", "uncordon"):
        with pytest.raises(ReadOnly, match="read-only"):
            await op.plan(action, ["gpu01"], Options(reason="r"))
    assert kube.cordoned == {}


async def test_unknown_host_names_the_layers(env):
    with pytest.raises(UnknownHost, match="gpu99.*Kubernetes"):
        await operator(FakeKube({"gpu01": []})).plan("drain", ["gpu99"], Options(reason="r"))


async def test_a_layer_not_answering_blocks_a_drain_of_hosts_it_may_hold(env):
    from sovtui.model.types import SourceResult, SourceStatus

    kube = FakeKube({"gpu01": [pod("a")]})
    slurm = FakeSlurm({"gpu01": []})
    results = results_of(kube, slurm)
    results[kube.name] = SourceResult(SourceStatus(name=kube.name, kind=kube.kind, ok=False, error="timed out"), None)
    op = Operator(SITE, (kube, slurm), lambda: results)
    plan = await op.plan("drain", ["gpu01"], Options(reason="r"))
    assert not plan.runnable
    blocker = next(b for b in plan.blockers if b.layer == "kubernetes")
    assert "not answering (timed out)" in blocker.why and "--layers nova,slurm" in blocker.lift
    assert (await op.plan("drain", ["gpu01"], Options(reason="r", layers=("nova", "slurm")))).runnable
    assert (await op.plan("uncordon", ["gpu01"], Options())).runnable  # reopening what answers is always safe


# ------------------------------------------------------------------ runs
async def test_drain_runs_every_layer_concurrently_and_audits(env):
    kube = FakeKube({"gpu01": [pod(f"p{i}") for i in range(20)] + [pod("ds", owner_kind="DaemonSet")]}, terminate_s=0.2)
    nova = FakeNova({"gpu01": [VmRef("v1", "vm1", status="ACTIVE"), VmRef("v2", "vm2", status="SHUTOFF")], "gpu02": []})
    slurm = FakeSlurm({"gpu01": [SlurmJobRef("7")]})
    op = operator(kube, nova, slurm)
    plan = await op.plan("drain", ["gpu01"], Options(reason="XID 79"))
    run = op.start(plan)
    seen = []
    async for event in run.events():
        seen.append(event)
        if event.state == "waiting" and event.step.endswith("|job|7"):
            slurm.end_job("7")
    assert run.outcome.verdict(plan) == "ok", run.outcome.states
    assert kube.cordoned == {"gpu01": "XID 79"} and nova.hosts["gpu01"].disabled_reason == "XID 79"
    assert slurm.reasons["gpu01"] == "XID 79" and slurm.state["gpu01"] == "drained"
    assert kube.max_in_flight == 20  # issued concurrently, not one by one
    assert "ml/ds" not in kube.evictions
    assert ("confirm", "v2") in nova.calls
    [line] = audit.read()
    assert line["action"] == "drain" and line["outcome"] == "ok" and line["options"]["reason"] == "XID 79"
    assert line["identities"]["kubernetes"].startswith("user admin") and line["user"]
    assert {i["state"] for i in line["items"]} <= {
        "gone",
        "migrated",
        "drained",
        "done",
        "cordoned",
        "disabled",
        "skipped",
    }
    assert Journal().unfinished() == []


async def test_pdb_429_is_retried_until_it_allows(env):
    kube = FakeKube({"gpu01": [pod("held", budgets=(BudgetRef("ml", "pdb", 0, 1, 1, 1),))]})
    kube.blocked["ml/held"] = 2
    op = operator(kube)
    plan = await op.plan("drain", ["gpu01"], Options(reason="r"))
    run = op.start(plan)
    run.pdb_retry_s = 0.01
    states = [e.state for e in [e async for e in run.events()] if e.step.endswith("ml/held")]
    assert states.count("blocked") == 2 and states[-1] == "gone"


async def test_forbidden_eviction_stops_the_run_cleanly(env):
    kube = FakeKube({"a": [pod("x")], "b": [pod("y")]})
    kube.forbidden.add("ml/x")
    op = operator(kube)
    plan = await op.plan("drain", ["a", "b"], Options(reason="r"))
    outcome = await op.start(plan).execute()
    assert outcome.verdict(plan) == "failed" and "denied" in outcome.error
    key = next(s.key for s in plan.steps if s.name == "ml/x")
    assert outcome.states[key] == "failed" and outcome.details[key].startswith("denied: cannot create pods/eviction")
    assert "b" not in kube.cordoned  # the next host never started
    assert audit.read()[0]["outcome"] == "failed"


async def test_cancel_reports_each_item_and_leaves_host_cordoned(env):
    kube = FakeKube({"gpu01": [pod("a"), pod("b")]})
    kube.stuck = {"ml/a", "ml/b"}
    op = operator(kube)
    plan = await op.plan("drain", ["gpu01"], Options(reason="r"))
    run = op.start(plan)
    async for event in run.events():
        if event.state == "terminating":
            run.cancel()
    assert run.outcome.verdict(plan) == "cancelled"
    assert kube.cordoned == {"gpu01": "r"}
    pods = [s.key for s in plan.steps if s.kind == "pod"]
    assert {run.outcome.states[k] for k in pods} == {"cancelled"}
    assert audit.read()[0]["outcome"] == "cancelled"


async def test_timeout_names_what_is_left(env):
    kube = FakeKube({"gpu01": [pod("slow")]})
    kube.stuck = {"ml/slow"}
    op = operator(kube)
    plan = await op.plan("drain", ["gpu01"], Options(reason="r", timeout_s=0.2))
    outcome = await op.start(plan).execute()
    key = next(s.key for s in plan.steps if s.kind == "pod")
    assert outcome.states[key] == "timeout" and "terminating" in outcome.details[key]


async def test_uncordon_reopens_every_layer(env):
    kube = FakeKube({"gpu01": []})
    kube.cordoned["gpu01"] = "r"
    nova = FakeNova({"gpu01": [], "gpu02": []})
    nova.disable_compute("gpu01", "r")
    slurm = FakeSlurm({"gpu01": []})
    await slurm.drain("gpu01", "r")
    op = operator(kube, nova, slurm)
    plan = await op.plan("uncordon", ["gpu01"], Options())
    outcome = await op.start(plan).execute()
    assert outcome.verdict(plan) == "ok"
    assert kube.cordoned == {} and nova.hosts["gpu01"].service_status == "enabled" and slurm.state["gpu01"] == "idle"


async def test_crash_leaves_an_unfinished_run_to_resume(env):
    kube = FakeKube({"gpu01": [pod("a"), pod("b")]})
    kube.stuck = {"ml/b"}
    op = operator(kube)
    plan = await op.plan("drain", ["gpu01"], Options(reason="r"))
    run = op.start(plan)
    entry_file = next((env / "state" / "sovtui" / "runs").glob("*.json"))
    doc = json.loads(entry_file.read_text())
    doc["pid"] = 2**22 + 12345  # as if its process had died
    entry_file.write_text(json.dumps(doc))
    task = asyncio.ensure_future(run.execute())
    await asyncio.sleep(0)
    [left] = Journal().unfinished()
    assert left.plan.hosts == ("gpu01",)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def test_audit_never_holds_a_secret_and_reads_back_since(env):
    audit.append({"at": "2020-01-01T00:00:00Z", "token": "abc", "identities": {"k": "u", "password": "p"}})
    audit.append({"at": audit._iso(None), "action": "drain"})
    text = audit.audit_path().read_text()
    assert "abc" not in text and "password" not in text
    assert [r.get("action") for r in audit.read(since_s=3600)] == ["drain"]
    assert audit.parse_duration("10m") == 600 and audit.parse_duration("2d") == 172800
    with pytest.raises(ValueError):
        audit.parse_duration("soon")


def test_capacity_is_judged_per_host_and_unknown_gives_no_verdict():
    from sovtui.model.types import NovaHost
    from sovtui.ops.drain import _capacity_shortfall

    def host(name, gpus_free, vcpus=64):
        return NovaHost(
            name,
            service_state="up",
            service_status="enabled",
            vcpus=vcpus,
            vcpus_used=0,
            memory_mb=512000,
            memory_mb_used=0,
            gpu_inventory=(("PGPU", 8, 8 - gpus_free),),
        )

    big = VmRef("v", "train", vcpus=32, ram_mb=1000, gpu="pci", gpus=8)
    assert "train (32 vCPU, 1000 MB, 8 PGPU)" in _capacity_shortfall(
        [big], [host("a", 4), host("b", 4)]
    )  # 8 free, not on one host
    assert _capacity_shortfall([big], [host("a", 4), host("b", 8)]) == ""
    assert _capacity_shortfall([big], [NovaHost("c", service_state="up", service_status="enabled")]) == ""  # unknown
    assert "no other enabled" in _capacity_shortfall(
        [big], [NovaHost("d", service_state="up", service_status="disabled")]
    )
