"""Provides the fault matrix's OpenStack cells: each fault put between the lab's real services and the app, one service at a time.

Every service of the lab cloud is reached through a FaultProxy of its own (module-scoped): by endpoint override
in the lab's region, or (``catalog-dead``) through a region of the lab's Keystone whose catalog points at the proxies.
Keystone is only asked when a token is needed: its cells let the source's token expire (as it does at the end of its
lifetime) when the fault starts. Keystone and Nova failing fail the source; Placement, Neutron and Glance leave it
partial, and every Nova host with its reasons and servers stays on the Nodes screen throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from sovtui.app import SovtuiApp
from sovtui.config import SiteConfig
from sovtui.model.types import SiteInfo
from sovtui.screens.nodes import NodesScreen
from sovtui.sources.openstack import OpenStackSource
from tests.faults.harness import check_fault
from tests.faults.matrix import cells
from tests.lab.faultproxy import FaultProxy
from tests.lab.openstack_faults import SERVICES, catalog_region, proxy_url, service_proxies, write_clouds_yaml

pytestmark = [pytest.mark.openstack, pytest.mark.ui]

#: the lab's Nova answers a call in 0.3-1 s on this machine under load: a poll of all its services needs this
TIMEOUT_S = 4.0
REGION = "SovtuiFaultsCatalog"
#: the parts whose failure leaves the source partial (the others fail it)
PARTIAL = ("placement", "neutron", "glance")
#: fault -> (FaultProxy mode, knobs)
MODES = {
    "down": ("refuse", {}),
    "catalog-dead": ("refuse", {}),
    "slow": ("slow", {"delay_s": TIMEOUT_S * 10}),
    "garbage": ("garbage", {}),
    "truncated": ("truncate", {"cut_bytes": 200}),
    "wrong-types": ("wrong-types", {}),
    "reset": ("reset", {"cut_bytes": 40}),
    "oversized": ("oversize", {}),
    "401": ("http:401", {}),
    "403": ("http:403", {}),
}
#: fault -> the words the header says (besides the part's name)
WORDS = {
    "down": ("unreachable",),
    "catalog-dead": ("unreachable",),
    "slow": ("timed out",),
    "garbage": ("not JSON",),
    "truncated": ("cut off",),
    "wrong-types": ("unexpected shape",),
    "reset": ("reset",),
    "oversized": (),
    "401": ("401",),
    "403": ("403",),
}


@dataclass
class Cloud:
    proxies: dict[str, FaultProxy]
    by_override: Path
    by_catalog: Path


@pytest.fixture(scope="module")
def cloud(lab_openstack, tmp_path_factory):
    root = tmp_path_factory.mktemp("openstack-faults")
    with service_proxies(lab_openstack) as proxies:
        urls = {part: proxy_url(proxies, part) for part in SERVICES if part != "keystone"}
        with catalog_region(lab_openstack, REGION, urls):
            yield Cloud(
                proxies,
                write_clouds_yaml(root / "override.yaml", lab_openstack, proxies),
                write_clouds_yaml(root / "catalog.yaml", lab_openstack, proxies, region=REGION),
            )


def _source(clouds_yaml: Path) -> OpenStackSource:
    site = SiteConfig(name="lab", openstack_cloud="faults", timeout_s=TIMEOUT_S, refresh_s=0.5)
    source = OpenStackSource(site, clouds_yaml=clouds_yaml)
    source.slow_every_s = 1.0  # every part about every poll: a fault shows at the next one or the one after
    return source


def _kept(hosts: tuple[str, ...]):
    """Every Nova host of the lab on the Nodes screen, with its Nova layer (state, reasons, servers)."""

    def kept(app) -> bool:
        nodes = {n.name: n for n in app.view.nodes or ()}
        if not all(h in nodes and nodes[h].nova is not None for h in hosts):
            return False
        screen = app.active_site_screen
        if isinstance(screen, NodesScreen) and screen.is_mounted:
            keys = {r.key for r in screen.visible_rows()}
            return set(hosts) <= keys
        return True

    return kept


def _rows():
    """Per service: one test for the faults of the lab's own region (run one after another in one app, each
    healed and recovered before the next), and one for a dead endpoint in another region's catalog."""
    by_part: dict[str, list[str]] = {}
    for source, fault in cells():
        if source.startswith("openstack:"):
            by_part.setdefault(source.split(":", 1)[1], []).append(fault)
    for part, faults in by_part.items():
        own = [f for f in faults if f != "catalog-dead"]
        yield pytest.param(part, tuple(own), marks=[pytest.mark.fault(f"openstack:{part}", f) for f in own], id=part)
        if "catalog-dead" in faults:
            yield pytest.param(
                part,
                ("catalog-dead",),
                marks=pytest.mark.fault(f"openstack:{part}", "catalog-dead"),
                id=f"{part}-catalog-dead",
            )


@pytest.mark.parametrize("part,faults", list(_rows()))
async def test_openstack_faults(lab_openstack, cloud, part, faults):
    source = _source(cloud.by_catalog if faults == ("catalog-dead",) else cloud.by_override)
    proxy = cloud.proxies[part]
    app = SovtuiApp(SiteInfo("lab"), [source], watch_tty=False)
    try:
        async with app.run_test(size=(140, 30)) as pilot:
            await pilot.press("3")
            for fault in faults:
                mode, knobs = MODES[fault]

                def inject(mode=mode, knobs=knobs) -> None:
                    proxy.set(mode, **knobs)
                    if part == "keystone":
                        source.connection().session.auth.invalidate()  # the token ends: the next call needs Keystone

                try:
                    seen = await check_fault(
                        pilot,
                        "openstack",
                        inject=inject,
                        heal=proxy.heal,
                        says=(part, *WORDS[fault]),
                        kept=_kept(lab_openstack.hosts),
                        state="partial" if part in PARTIAL else "failing",
                        first_s=40,
                        fault_s=25,
                        recover_s=40,
                        switch=("1", "3"),
                    )
                except AssertionError as exc:
                    raise AssertionError(f"openstack:{part} x {fault}: {exc}") from None
                finally:
                    proxy.heal()
                status = seen["status"]
                failing = [p.name for p in status.failing_parts]
                if (
                    part in PARTIAL
                ):  # the part is named; Keystone and Nova answered (another slow part may time out too)
                    assert part in failing and "keystone" not in failing, (fault, status)
    finally:
        proxy.heal()
