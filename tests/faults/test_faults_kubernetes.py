"""Provides the fault matrix's Kubernetes cells: the API as a whole behind a FaultProxy, and each resource kind denied or not served.

The real :class:`~sovtui.sources.kubernetes.KubernetesSource` in a real :class:`~sovtui.app.SovtuiApp` reads the lab's
fault cluster (the GPU cluster with Kueue, over plain HTTP so the proxy can answer HTTP of its own) through one
:class:`~tests.lab.faultproxy.FaultProxy`: its modes make the connection faults (and cut the informers' open watch
streams when switched), the fake's own toggles the 401 and the per-kind 403 and 404.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from sovtui.app import SovtuiApp
from sovtui.config import SiteConfig
from sovtui.model.types import SiteInfo
from sovtui.sources.kubernetes import KINDS, KubernetesSource
from sovtui.sources.kubernetes.wire import import_client
from tests.faults.harness import check_fault
from tests.lab.faultproxy import FaultProxy
from tests.lab.kubeapi.lab import write_kubeconfig

pytestmark = [pytest.mark.kubernetes, pytest.mark.ui]

TIMEOUT_S = 1.5
REFRESH_S = 0.5  # the hub polls this often: a fault is seen, and its end, within about one poll
#: part -> the kinds the fake denies (or stops serving) for it
DENY = {
    "pods": ["pods"],
    "events": ["events"],
    "poddisruptionbudgets": ["poddisruptionbudgets.policy"],
    "jobs": ["jobs.batch"],
    "deployments": ["deployments.apps"],
    "kueue": ["clusterqueues.kueue.x-k8s.io", "localqueues.kueue.x-k8s.io", "workloads.kueue.x-k8s.io"],
}
#: a CRD removed while its group stays: one Kueue kind 404s
UNSERVE = {**{part: kinds[:1] for part, kinds in DENY.items()}}


@pytest.fixture(scope="module")
def kube(lab_kube, tmp_path_factory):
    """(the fault cluster, the proxy before it, a kubeconfig through the proxy)."""
    cluster = lab_kube.faulty()
    import_client(KINDS)  # once: the first poll of each cell then costs what the lists cost
    url = urlsplit(cluster.url)
    with FaultProxy(url.hostname or "127.0.0.1", url.port or 80) as proxy:
        kubeconfig = tmp_path_factory.mktemp("kube-faults") / "kubeconfig"
        write_kubeconfig(kubeconfig, f"http://{proxy.url_host}", cluster.ca_file, cluster.tokens, exec_argv=["true"])
        yield cluster, proxy, kubeconfig
        cluster.clear_faults()


@pytest.fixture
def healthy(kube):
    cluster, proxy, _ = kube
    cluster.clear_faults()
    proxy.heal()
    yield kube
    cluster.clear_faults()
    proxy.heal()


def _app(kubeconfig) -> SovtuiApp:
    site = SiteConfig("lab", kube_context="lab", timeout_s=TIMEOUT_S, refresh_s=REFRESH_S)
    return SovtuiApp(SiteInfo(site.name), [KubernetesSource(site, kubeconfig=kubeconfig)], watch_tty=False)


def _nodes_shown(app) -> bool:
    return bool(app.view.kube_nodes)


# ------------------------------------------------------------------ the API as a whole
_PROXY = {  # fault -> (proxy mode, knobs, words the header must say)
    "down": ("refuse", {}, ("kubernetes", "cannot connect")),
    "slow": ("slow", {"delay_s": TIMEOUT_S * 10}, ("kubernetes", "1.5s")),
    "garbage": ("garbage", {}, ("kubernetes", "unreadable")),
    "truncated": ("truncate", {"cut_bytes": 64}, ("kubernetes", "dropped")),
    "wrong-types": ("wrong-types", {}, ("kubernetes", "wrong shape")),
    "reset": ("reset", {"cut_bytes": 64}, ("kubernetes", "dropped")),
    # an endless answer is cut at 64 MiB, or at the timeout when the proxy cannot pump that much in 1.5 s (a loaded
    # machine): either way it is bounded; the size cut itself is tested on its own (test_source_kubernetes_parts)
    "oversized": ("oversize", {}, ("kubernetes",)),
}


@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.fault("kubernetes", f), id=f) for f in _PROXY])
async def test_kubernetes_connection_fault(healthy, fault):
    _, proxy, kubeconfig = healthy
    mode, knobs, says = _PROXY[fault]
    async with _app(kubeconfig).run_test(size=(120, 30)) as pilot:
        seen = await check_fault(
            pilot,
            "kubernetes",
            inject=lambda: proxy.set(mode, **knobs),
            heal=proxy.heal,
            says=says,
            kept=_nodes_shown,
            state="failing",
        )
    if fault == "oversized":
        assert "cut off" in seen["header"] or "1.5s" in seen["header"], seen["header"]


@pytest.mark.parametrize(
    "fault,toggle,says",
    [
        pytest.param(
            "401",
            {"reject_tokens": True},
            ("kubernetes", "unauthorized"),
            marks=pytest.mark.fault("kubernetes", "401"),
            id="401",
        ),
        pytest.param(
            "403",
            {"forbidden": ["nodes"]},
            ("kubernetes", "nodes", "forbidden", 'User "lab-admin"'),
            marks=pytest.mark.fault("kubernetes", "403"),
            id="403-nodes",
        ),
    ],
)
async def test_kubernetes_api_denies(healthy, fault, toggle, says):
    cluster, _, kubeconfig = healthy
    async with _app(kubeconfig).run_test(size=(120, 30)) as pilot:
        await check_fault(
            pilot,
            "kubernetes",
            inject=lambda: cluster.faults(**toggle),
            heal=cluster.clear_faults,
            says=says,
            kept=_nodes_shown,
            state="failing",
        )


# ------------------------------------------------------------------ one kind at a time
def _kind_cells():
    for part in DENY:
        yield pytest.param(part, "403", marks=pytest.mark.fault(f"kubernetes:{part}", "403"), id=f"{part}-403")
        yield pytest.param(part, "404", marks=pytest.mark.fault(f"kubernetes:{part}", "404"), id=f"{part}-404")


@pytest.mark.parametrize("part,fault", list(_kind_cells()))
async def test_kubernetes_kind_fails_alone(healthy, part, fault):
    cluster, _, kubeconfig = healthy
    app = _app(kubeconfig)
    toggle = {"forbidden": DENY[part]} if fault == "403" else {"unserved": UNSERVE[part]}
    says = (f"{part}:", "forbidden", 'User "lab-admin"') if fault == "403" else (f"{part}:", "not served (404)")

    def unknown_while_failing():
        """What needs the kind says unknown (pods: every node), then the fault ends."""
        if part == "pods":
            nodes = app.view.kube_nodes or ()
            why = "forbidden" if fault == "403" else "not served"
            assert nodes and all(n.pods_unknown == why for n in nodes), [(n.name, n.pods_unknown) for n in nodes]
        cluster.clear_faults()

    async with app.run_test(size=(120, 30)) as pilot:
        await check_fault(
            pilot,
            "kubernetes",
            inject=lambda: cluster.faults(**toggle),
            heal=unknown_while_failing,
            says=says,
            kept=_nodes_shown,
            state="partial",
        )
    assert all(n.pods_known for n in app.view.kube_nodes or ())
