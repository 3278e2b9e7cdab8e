"""Provides tests of the Kubernetes source's parts: each kind denied or not served on its own, unknown never 0, bounded reads.

Run against the lab's fault cluster (the GPU cluster with Kueue over plain HTTP, :meth:`KubeLab.faulty`) with its
per-kind toggles, through the real ``kubernetes`` client; the doctor and the drain plan read the same state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from urllib.parse import urlsplit

import pytest

from sovtui.config import SiteConfig
from sovtui.model.types import SiteInfo
from sovtui.ops.drain import make_plan
from sovtui.ops.layers import Layers
from sovtui.ops.plan import Options
from sovtui.sources.base import BadAnswer
from sovtui.sources.kubernetes import KubeForbidden, KubernetesSource
from sovtui.sources.kubernetes.wire import MAX_PAGE_BYTES, parse_event, parse_list, read_bounded
from tests.lab.faultproxy import FaultProxy
from tests.lab.kubeapi.lab import write_kubeconfig

pytestmark = pytest.mark.kubernetes

KINDS = {  # part -> how the fake names the kind it toggles
    "pods": "pods",
    "events": "events",
    "poddisruptionbudgets": "poddisruptionbudgets.policy",
    "jobs": "jobs.batch",
    "deployments": "deployments.apps",
    "kueue": "clusterqueues.kueue.x-k8s.io",
}


@pytest.fixture(scope="module")
def faulty(lab_kube):
    cluster = lab_kube.faulty()
    yield cluster
    cluster.clear_faults()


@pytest.fixture
def cluster(faulty):
    faulty.clear_faults()
    yield faulty
    faulty.clear_faults()


@contextlib.asynccontextmanager
async def source(cluster, ctx: str = "lab", timeout_s: float = 3.0, kubeconfig=None):
    src = KubernetesSource(
        SiteConfig("lab", kube_context=ctx, timeout_s=timeout_s), kubeconfig=kubeconfig or cluster.kubeconfig
    )
    try:
        yield src
    finally:
        await src.aclose()


def failing(data) -> dict[str, str]:
    return {p.name: p.error for p in data.parts if not p.ok}


async def settle(src, check, timeout_s: float = 10.0):
    """Poll the source (as the hub does, each poll waking on the informers) until ``check(data)`` holds; that data."""
    deadline = time.monotonic() + timeout_s
    while True:
        data = await src.fetch()
        if check(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:g} s; parts now {data.parts}")
        await asyncio.sleep(0.05)


# ---------------------------------------------------------------------------------- the fake's toggles
async def test_the_fakes_toggles_answer_as_the_apiserver_does(cluster):
    from kubernetes.aio import client, config
    from kubernetes.aio.client.exceptions import ApiException

    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(cluster.kubeconfig), context="lab", client_configuration=cfg, persist_config=False
    )
    async with client.ApiClient(cfg) as api:
        cluster.faults(
            forbidden=["pods"], unserved=["jobs.batch", "deployments.apps"], unserved_groups=["kueue.x-k8s.io"]
        )
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).list_pod_for_all_namespaces()
        assert err.value.status == 403 and json.loads(err.value.body) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'pods is forbidden: User "lab-admin" cannot list resource "pods" in API group "" at the cluster scope',
            "reason": "Forbidden",
            "details": {"kind": "pods"},
            "code": 403,
        }
        with pytest.raises(ApiException) as err:
            await client.BatchV1Api(api).list_job_for_all_namespaces()
        assert err.value.status == 404 and json.loads(err.value.body)["reason"] == "NotFound"
        apps = {r.name for r in (await client.AppsV1Api(api).get_api_resources()).resources}
        assert "deployments" not in apps and "replicasets" in apps  # a kind gone from its group's discovery
        groups = {g.name for g in (await client.ApisApi(api).get_api_versions()).groups}
        assert "kueue.x-k8s.io" not in groups and "apps" in groups
        assert "batch" not in groups  # the lab serves only jobs in batch: with it gone, so is the group
        await client.CoreV1Api(api).list_node()  # the rest as before
        cluster.faults(reject_tokens=True)
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).list_node()
        assert err.value.status == 401
        cluster.clear_faults()
        assert (await client.CoreV1Api(api).list_pod_for_all_namespaces(limit=1)).items
        assert "kueue.x-k8s.io" in {g.name for g in (await client.ApisApi(api).get_api_versions()).groups}


# ---------------------------------------------------------------------------------- one kind at a time
@pytest.mark.parametrize("part", list(KINDS))
async def test_a_denied_kind_fails_alone_then_recovers(cluster, part):
    async with source(cluster) as src:
        data = await src.fetch()
        assert failing(data) == {} and {p.name for p in data.parts} == set(KINDS)
        nodes = len(data.kube_nodes)
        cluster.faults(forbidden=[KINDS[part]])  # cuts the kind's open watch: the informer meets the 403 at once
        data = await settle(src, lambda d: part in failing(d))
        assert set(failing(data)) == {part} and len(data.kube_nodes) == nodes
        assert 'forbidden: User "lab-admin" cannot' in failing(data)[part]
        assert f'resource "{KINDS[part].split(".")[0]}"' in failing(data)[part]
        bad = next(p for p in data.parts if p.name == part)
        assert bad.last_ok_at is not None and bad.last_ok_at <= time.time()  # its data is as old as its last sync
        assert all(n.pods_unknown == ("forbidden" if part == "pods" else "") for n in data.kube_nodes)
        cluster.clear_faults()
        data = await settle(src, lambda d: not failing(d), timeout_s=15)
        assert all(n.pods_known for n in data.kube_nodes)


async def test_a_kind_not_served_says_404_and_pods_unknown_are_not_zero(cluster):
    cluster.faults(unserved=["pods"])
    async with source(cluster) as src:
        data = await src.fetch()  # pods never listed: unknown from the start
        assert failing(data)["pods"].startswith("list pods: not served (404) by http://127.0.0.1:")
        assert next(p for p in data.parts if p.name == "pods").last_ok_at is None
        gpu_nodes = [n for n in data.kube_nodes if n.gpu_allocatable]
        assert gpu_nodes and all(n.pods_unknown == "not served" and not n.pods_with_gpus for n in gpu_nodes)
        assert data.queues is not None and {q.system for q in data.queues} == {
            "kueue"
        }  # no namespace queue counted as 0
        assert src.pods_on(gpu_nodes[0].name) is None and src.pods_unknown_reason() == "not served"


async def test_without_pods_and_kueue_the_queues_are_unknown(cluster):
    cluster.faults(forbidden=["pods"], unserved=["clusterqueues.kueue.x-k8s.io"])
    async with source(cluster) as src:
        data = await src.fetch()
    assert set(failing(data)) == {"pods", "kueue"} and data.queues is None  # unknown, not "no queue pending anything"
    assert "not served (404)" in failing(data)["kueue"]


async def test_nodes_denied_fail_the_whole_source(cluster):
    cluster.faults(forbidden=["nodes"])
    async with source(cluster) as src:
        with pytest.raises(KubeForbidden) as err:
            await src.fetch()
    assert 'nodes is forbidden: User "lab-admin" cannot list resource "nodes"' in str(err.value)


async def test_the_drain_plan_refuses_a_node_whose_pods_are_unknown(cluster):
    async with source(cluster) as src:
        data = await src.fetch()
        node = next(n.name for n in data.kube_nodes if n.gpu_allocatable)
        cluster.faults(forbidden=["pods"])
        data = await settle(src, lambda d: "pods" in failing(d))
        layers = Layers(sources={"kubernetes": src}, kube_nodes=data.kube_nodes)
        plan = await make_plan(
            "drain", [node], Options(reason="maintenance", layers=("kubernetes",)), layers, SiteInfo("lab")
        )
    why = [b.why for b in plan.blockers if b.layer == "kubernetes"]
    assert why and "the pods on this node are not known (forbidden)" in why[0]


# ---------------------------------------------------------------------------------- doctor
async def test_doctor_has_one_check_per_kind_and_says_which_are_denied(cluster):
    cluster.faults(forbidden=["jobs.batch"], unserved=["deployments.apps"])
    async with source(cluster) as src:
        checks = {c.check: c for c in await src.doctor()}
    kinds = [c for name, c in checks.items() if name.startswith("list+watch ")]
    assert {c.check for c in kinds} == {
        "list+watch nodes",
        "list+watch pods",
        "list+watch events",
        "list+watch poddisruptionbudgets.policy",
        "list+watch jobs.batch",
        "list+watch deployments.apps",
        "list+watch clusterqueues.kueue.x-k8s.io",
        "list+watch localqueues.kueue.x-k8s.io",
        "list+watch workloads.kueue.x-k8s.io",
    }
    bad = {c.check: c for c in kinds if not c.ok}
    assert set(bad) == {"list+watch jobs.batch", "list+watch deployments.apps"}
    jobs = bad["list+watch jobs.batch"]
    assert (
        jobs.detail
        == 'forbidden: User "lab-admin" cannot list resource "jobs" in API group "batch" at the cluster scope'
    )
    assert 'apiGroups ["batch"], resources ["jobs"]' in jobs.hint
    assert "not served (404)" in bad["list+watch deployments.apps"].detail


async def test_doctor_tells_a_denied_watch(lab_kube):
    async with source(lab_kube.main, "lab-lister") as src:
        checks = {c.check: c for c in await src.doctor()}
    pods = checks["list+watch pods"]
    assert not pods.ok and 'cannot watch resource "pods"' in pods.detail and "verbs" in pods.hint
    assert checks["list+watch nodes"].ok


# ---------------------------------------------------------------------------------- bounds and shapes
class _Endless:
    def __init__(self) -> None:
        self.sent = 0

    async def read(self, n: int) -> bytes:
        self.sent += n
        return b"a" * n


async def test_an_endless_body_is_cut_at_the_bound():
    content = _Endless()
    with pytest.raises(BadAnswer, match="larger than 1 MiB"):
        await read_bounded(content, 2**20, "list pods")
    assert content.sent <= 2**20 + 65536


def test_lists_and_watch_events_of_the_wrong_shape_are_refused():
    with pytest.raises(BadAnswer, match="not a list"):
        parse_list(b'{"unexpected": ["shape"], "data": 42}', "list nodes")
    with pytest.raises(BadAnswer, match="not JSON"):
        parse_list(b"<html>502</html>", "list nodes")
    assert parse_list(b'{"kind": "NodeList", "metadata": {"resourceVersion": "5"}}', "list nodes") == (
        [],
        {"resourceVersion": "5"},
    )
    with pytest.raises(BadAnswer, match="not a watch event"):
        parse_event(b'{"unexpected": ["shape"], "data": 42}', "watch pods")
    assert parse_event(b'{"type": "BOOKMARK", "object": {"metadata": {}}}', "watch pods")[0] == "BOOKMARK"


@pytest.mark.parametrize(
    "mode,says", [("oversize", f"larger than {MAX_PAGE_BYTES // 2**20} MiB"), ("wrong-types", "not a list")]
)
async def test_an_endless_or_misshapen_answer_through_a_proxy_is_refused(cluster, tmp_path, mode, says):
    url = urlsplit(cluster.url)
    with FaultProxy(url.hostname, url.port) as proxy:
        kubeconfig = tmp_path / "kubeconfig"
        write_kubeconfig(kubeconfig, f"http://{proxy.url_host}", cluster.ca_file, cluster.tokens, exec_argv=["true"])
        proxy.set(mode)
        async with source(cluster, kubeconfig=kubeconfig, timeout_s=20.0) as src:
            started = time.monotonic()
            with pytest.raises(BadAnswer, match=says):
                await src.fetch()  # never an empty cluster taken from a wrong answer
            assert time.monotonic() - started < 15.0  # cut by its size or shape, not by the timeout


# ---------------------------------------------------------------------------------- the commands
def _sovtui(cluster, tmp_path, *args: str):
    import os
    import subprocess
    import sys
    from pathlib import Path

    config = tmp_path / "config.toml"
    config.write_text('default_site = "lab"\n[sites.lab]\nkube_context = "lab"\ntimeout_s = 10\n')
    env = dict(os.environ, KUBECONFIG=str(cluster.kubeconfig), XDG_STATE_HOME=str(tmp_path / "state"))
    return subprocess.run(
        [sys.executable, "-m", "sovtui", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )


def test_snapshot_and_doctor_exit_1_naming_the_denied_kind(cluster, tmp_path):
    cluster.faults(forbidden=["events"])
    snap = _sovtui(cluster, tmp_path, "snapshot")
    assert snap.returncode == 1, snap.stderr
    kube = json.loads(snap.stdout)["sources"]["kubernetes"]
    assert kube["ok"] and not kube["complete"] and list(kube["failing"]) == ["events"]
    assert kube["failing"]["events"]["error"].startswith('forbidden: User "lab-admin" cannot')
    doctor = _sovtui(cluster, tmp_path, "doctor")
    assert doctor.returncode == 1
    denied = [line for line in doctor.stdout.splitlines() if "list+watch events" in line]
    assert denied and "forbidden" in doctor.stdout and 'resources ["events"]' in doctor.stdout


async def test_without_kueue_installed_and_pods_denied_there_are_no_queues_at_all(cluster):
    cluster.faults(forbidden=["pods"], unserved_groups=["kueue.x-k8s.io"])  # as a cluster without Kueue's CRDs
    async with source(cluster) as src:
        data = await src.fetch()
    assert src.kueue_version == "" and "kueue" not in {p.name for p in data.parts}  # no Kueue is nothing to report
    assert set(failing(data)) == {"pods"} and data.queues is None  # unknown, not an empty list of queues


async def test_kueue_uninstalled_is_seen_by_discovery_at_once_not_as_a_failure(cluster):
    async with source(cluster) as src:
        data = await src.fetch()
        assert src.kueue_version and "kueue" in {p.name for p in data.parts}
        cluster.faults(unserved_groups=["kueue.x-k8s.io"])  # the CRDs removed: the informers' 404 asks discovery again
        data = await settle(src, lambda d: src.kueue_version == "" and not failing(d))
        assert "kueue" not in {p.name for p in data.parts} and not any(q.system == "kueue" for q in data.queues)


def test_parts_from_informer_states():
    from types import SimpleNamespace as NS

    from sovtui.sources.kubernetes.parts import kind_parts

    def inf(resource, group="", *, synced=True, watching=True, error=None, last=None, required=False):
        qualified = f"{resource}.{group}" if group else resource
        return NS(
            kind=NS(resource=resource, group=group, qualified=qualified, required=required),
            synced=synced,
            watching=watching,
            error=error,
            last_ok_at=last,
        )

    kq = "kueue.x-k8s.io"
    infs = [
        inf("nodes", required=True),
        inf("pods", synced=False, watching=False),
        inf("events", error=BadAnswer("x"), watching=False, last=5.0),
        inf("jobs", "batch", watching=False),  # between two watches, no error: in sync
        inf("clusterqueues", kq),
        inf("localqueues", kq, synced=False, watching=False),
        inf("workloads", kq, synced=False, watching=False),
    ]
    parts = {p.name: p for p in kind_parts(infs, 100.0)}
    assert list(parts) == ["pods", "events", "jobs", "kueue"]  # nodes carry the source: not a part
    assert (parts["pods"].ok, parts["pods"].error, parts["pods"].last_ok_at) == (False, "not listed yet", None)
    assert (parts["events"].ok, parts["events"].error, parts["events"].last_ok_at) == (False, "x", 5.0)
    assert parts["jobs"].ok and parts["jobs"].last_ok_at == 100.0 and infs[3].last_ok_at == 100.0
    assert parts["kueue"] == type(parts["kueue"])("kueue", False, "localqueues: not listed yet (also workloads)", None)
    discovery = {p.name: p for p in kind_parts([], 100.0, kueue_error=BadAnswer("HTTP 500"))}
    assert discovery["kueue"].error == "discovery of kueue.x-k8s.io failed: HTTP 500"
