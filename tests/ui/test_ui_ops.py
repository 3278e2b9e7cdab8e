"""Provides Pilot tests of operations in the TUI: keyboard-only drain/cordon/uncordon, marks, read-only, cancel, resume."""

from __future__ import annotations

import json

import pytest

from sovtui.app import SovtuiApp
from sovtui.model.types import SiteInfo
from sovtui.model.workload import PodRef
from sovtui.ops import audit
from sovtui.screens.op_dialogs import OperationForm, PlanScreen, RunScreen, UnfinishedScreen
from tests.lab.layers import FakeKube, FakeSlurm
from tests.lab.waits import eventually

pytestmark = pytest.mark.ui


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state" / "sovtui"


def pods(n: int) -> list[PodRef]:
    return [PodRef("ml", f"p{i}", uid=f"u{i}", owner_kind="ReplicaSet", owner_name="rs", gpus=1) for i in range(n)]


def app_with(*layers, site=SiteInfo(name="lab")) -> SovtuiApp:
    return SovtuiApp(site=site, sources=list(layers), watch_tty=False)


async def nodes_screen(pilot, app, host: str):
    await pilot.press("3")
    screen = await eventually(
        lambda: app.screen if app.screen.NAME == "nodes" and app.screen._rows else None,
        10,
        "the Nodes screen with rows",
        pilot=pilot,
    )
    await eventually(lambda: any(r.key == host for r in screen.visible_rows()), 10, f"{host} listed", pilot=pilot)
    keys = [r.key for r in screen.visible_rows()]
    screen.table.move_cursor(row=keys.index(host))
    await pilot.pause()
    return screen


async def type_text(pilot, text: str) -> None:
    await pilot.press(*[{" ": "space"}.get(ch, ch) for ch in text])


async def confirm_and_run(pilot, app, confirm: str, *, finish: bool = True) -> RunScreen:
    """At the plan modal: type ``confirm`` and enter; the progress modal, once its run ended (with ``finish``)."""
    await eventually(lambda: isinstance(app.screen, PlanScreen), 10, "the plan", pilot=pilot)
    await type_text(pilot, confirm)
    await pilot.press("enter")
    run_screen = await eventually(lambda: isinstance(app.screen, RunScreen) and app.screen, 5, "progress", pilot=pilot)
    if finish:
        await eventually(lambda: run_screen.tracker.finished, 10, "the run to end", pilot=pilot)
    return run_screen


async def test_drain_from_the_nodes_screen_by_keyboard(state):
    kube = FakeKube({"gpu01": pods(3), "gpu02": []})
    slurm = FakeSlurm({"gpu01": [], "gpu02": []})
    app = app_with(kube, slurm)
    async with app.run_test(size=(100, 30)) as pilot:
        await nodes_screen(pilot, app, "gpu01")
        await pilot.press("D")
        form = await eventually(
            lambda: isinstance(app.screen, OperationForm) and app.screen, 5, "the form", pilot=pilot
        )
        assert form.hosts == ["gpu01"]
        await type_text(pilot, "bad GPU")
        await pilot.press("enter")
        plan_screen = await eventually(
            lambda: isinstance(app.screen, PlanScreen) and app.screen, 5, "the plan", pilot=pilot
        )
        text = plan_screen.query_one("#plan-text").render().plain
        assert "DRAIN gpu01" in text and "reason: bad GPU" in text and "evict" in text and "ml/p0" in text
        await type_text(pilot, "gpu02")  # the wrong host does not confirm
        await pilot.press("enter")
        assert isinstance(app.screen, PlanScreen) and kube.cordoned == {}
        await type_text(pilot, "gpu01")
        await pilot.press("enter")
        run_screen = await eventually(
            lambda: isinstance(app.screen, RunScreen) and app.screen, 5, "progress", pilot=pilot
        )
        await eventually(lambda: run_screen.tracker.finished, 10, "the run to end", pilot=pilot)
        assert kube.cordoned == {"gpu01": "bad GPU"} and slurm.reasons == {"gpu01": "bad GPU"}
        assert kube.pods_on("gpu01") == ()
        assert "as planned" in str(run_screen.query_one("#run-summary").render())
        await pilot.press("escape")
        assert app.screen.NAME == "nodes"
    [line] = audit.read()
    assert line["action"] == "drain" and line["hosts"] == ["gpu01"] and line["outcome"] == "ok"


async def test_read_only_refuses_before_asking_anything(state):
    kube = FakeKube({"gpu01": pods(1)})
    app = app_with(kube, site=SiteInfo(name="lab", read_only=True))
    async with app.run_test(size=(100, 30)) as pilot:
        await nodes_screen(pilot, app, "gpu01")
        for key in ("D", "c", "u"):
            await pilot.press(key)
            await pilot.pause()
            assert app.screen.NAME == "nodes"
        notes = [n.message for n in app._notifications]
        assert sum("read-only" in m for m in notes) == 3
    assert kube.cordoned == {} and audit.read() == []


async def test_marked_hosts_cordon_together_and_uncordon(state):
    kube = FakeKube({"gpu01": [], "gpu02": [], "gpu03": []})
    app = app_with(kube)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await nodes_screen(pilot, app, "gpu01")
        await pilot.press("space", "space")  # gpu01, then gpu02 (the cursor moves down)
        assert screen.marked == {"gpu01", "gpu02"}
        await pilot.press("c")
        await eventually(lambda: isinstance(app.screen, OperationForm), 5, "the form", pilot=pilot)
        await type_text(pilot, "rack move")
        await pilot.press("enter")
        await confirm_and_run(pilot, app, "yes")
        assert kube.cordoned == {"gpu01": "rack move", "gpu02": "rack move"}
        await pilot.press("escape")
        await pilot.press("u")
        await eventually(lambda: isinstance(app.screen, OperationForm), 5, "the form", pilot=pilot)
        await pilot.press("ctrl+s")
        await confirm_and_run(pilot, app, "yes")
        assert kube.cordoned == {}
    assert [r["action"] for r in audit.read()] == ["cordon", "uncordon"]


async def test_cancel_from_the_progress_view(state):
    kube = FakeKube({"gpu01": pods(2)})
    kube.stuck = {"ml/p0", "ml/p1"}
    app = app_with(kube)
    async with app.run_test(size=(100, 30)) as pilot:
        await nodes_screen(pilot, app, "gpu01")
        await pilot.press("D")
        await eventually(lambda: isinstance(app.screen, OperationForm), 5, "the form", pilot=pilot)
        await type_text(pilot, "x")
        await pilot.press("enter")
        run_screen = await confirm_and_run(pilot, app, "gpu01", finish=False)
        await eventually(lambda: len(kube.evictions) == 2, 5, "both evictions issued", pilot=pilot)
        await pilot.press("x")
        await eventually(lambda: run_screen.tracker.finished, 5, "the run to stop", pilot=pilot)
        assert run_screen.tracker.run.outcome.verdict(run_screen.tracker.plan) == "cancelled"
    assert kube.cordoned == {"gpu01": "x"} and audit.read()[0]["outcome"] == "cancelled"


async def test_an_unfinished_run_is_offered_at_start(state):
    from sovtui.ops.journal import Journal
    from sovtui.ops.plan import Options, Plan, Step

    plan = Plan(
        "cordon",
        "lab",
        ("gpu01",),
        Options(reason="r"),
        (Step("gpu01", "kubernetes", "node", "gpu01", "cordon", ref="gpu01"),),
    )
    entry = Journal().begin(plan)
    doc = json.loads(entry.path.read_text())
    doc["pid"] = 2**22 + 7  # its process died
    entry.path.write_text(json.dumps(doc))
    kube = FakeKube({"gpu01": []})
    app = app_with(kube)
    async with app.run_test(size=(100, 30)) as pilot:
        await eventually(lambda: isinstance(app.screen, UnfinishedScreen), 5, "the offer", pilot=pilot)
        await pilot.press("r")
        await confirm_and_run(pilot, app, "gpu01")
    assert kube.cordoned == {"gpu01": "r"}
    [line] = audit.read()
    assert line["resumed_from"] == entry.id and Journal().unfinished() == []
