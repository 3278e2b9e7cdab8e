"""SVG snapshot tests of the demo cluster (fixed seed, frozen clock) at 80x24 and 160x48."""

from __future__ import annotations

import pytest

from sovtui.app import SovtuiApp
from sovtui.demo.setup import demo_setup

pytestmark = [pytest.mark.snapshot, pytest.mark.ui]


def demo_app() -> SovtuiApp:
    site, sources, clock = demo_setup(7, frozen=True)
    return SovtuiApp(site, sources, clock=clock, watch_tty=False)


async def _ready(pilot) -> None:
    app = pilot.app
    await app.hub.poll_all()
    app.rebuild_view()
    await pilot.pause()


def _then(*keys: str):
    async def run(pilot) -> None:
        await _ready(pilot)
        if keys:
            await pilot.press(*keys)
            await pilot.pause()
            await _ready(pilot)

    return run


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_overview(snap_compare, size):
    assert snap_compare(demo_app(), terminal_size=size, run_before=_then())


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_gpus(snap_compare, size):
    assert snap_compare(demo_app(), terminal_size=size, run_before=_then("2"))


def test_alerts(snap_compare):
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=_then("7"))


def test_sick_gpu_detail(snap_compare):
    # the worst GPU is first in the fleet table; enter opens its detail
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=_then("2", "enter"))


def test_ceph(snap_compare):
    assert snap_compare(demo_app(), terminal_size=(160, 48), run_before=_then("4"))


def test_fabric(snap_compare):
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=_then("5"))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_jobs(snap_compare, size):
    assert snap_compare(demo_app(), terminal_size=size, run_before=_then("6"))


def test_job_detail(snap_compare):
    # the top row is the job that waited longest; its details name the reason in words
    assert snap_compare(demo_app(), terminal_size=(100, 40), run_before=_then("6", "enter"))


def test_help(snap_compare):
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=_then("question_mark"))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_nodes(snap_compare, size):
    assert snap_compare(demo_app(), terminal_size=size, run_before=_then("3"))


def test_node_detail(snap_compare):
    # the worst host first; enter opens it across its layers
    assert snap_compare(demo_app(), terminal_size=(100, 40), run_before=_then("3", "down", "enter"))


def _plan_of(*keys: str, reason: str = "", form_keys: tuple[str, ...] = ("enter",)):
    """Open the Nodes screen, press ``keys`` (an action), type the reason (none: keep the one offered), wait for the plan."""

    async def run(pilot) -> None:
        from sovtui.screens.op_dialogs import PlanScreen
        from tests.lab.waits import eventually

        await _ready(pilot)
        await pilot.press("3")
        await _ready(pilot)
        await pilot.press(*keys)
        await pilot.pause()
        await pilot.press(*[{" ": "space"}.get(ch, ch) for ch in reason], *form_keys)
        await eventually(lambda: isinstance(pilot.app.screen, PlanScreen), 10, "the plan", pilot=pilot)
        await pilot.pause()

    return run


def test_drain_plan_blocked(snap_compare):
    # the worst host: D offers its GPU verdict as the reason; enter → a plan blocked by pods with emptyDir data
    assert snap_compare(demo_app(), terminal_size=(80, 24), run_before=_plan_of("D"))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
def test_drain_plan(snap_compare, size):
    # the same with "delete emptyDir data" ticked (tab to it, space, ctrl+s): a runnable plan and its confirmation
    keys = ("tab",) * 7 + ("space", "ctrl+s")
    assert snap_compare(demo_app(), terminal_size=size, run_before=_plan_of("D", form_keys=keys))
