"""Provides tests of the Kubernetes source's errors: RBAC denials, bad tokens and exec plugins, unreachable servers, kubeconfig and TLS."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from sovtui.sources.base import AuthError, SourceError, Timeout, Unreachable
from sovtui.sources.kubernetes import KubeForbidden
from tests.kube_support import kube_api, kube_source, status_body
from tests.lab.procs import free_port
from tests.lab.stubs import SilentServer

lab = pytest.mark.kubernetes


# ---------------------------------------------------------------------------------- errors
@lab
async def test_rbac_denial_is_a_typed_error_naming_verb_and_resource(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_source(lab_kube.kubeconfig, "lab-viewer") as src:
        with pytest.raises(KubeForbidden) as err:
            await src.fetch()
    assert (err.value.verb, err.value.resource, err.value.group) == ("list", "nodes", "")
    assert 'User "viewer" cannot list resource "nodes"' in str(err.value) and err.value.hint

    async with kube_source(lab_kube.kubeconfig, "lab-lister") as src:
        data = await src.fetch()  # listing pods is allowed, watching is not: pods fail alone, nodes still show
        pods = next(p for p in data.parts if p.name == "pods")
        assert (
            not pods.ok
            and pods.error
            == 'forbidden: User "lister" cannot watch resource "pods" in API group "" at the cluster scope'
        )
        assert data.kube_nodes and all(n.pods_unknown == "forbidden" for n in data.kube_nodes)
        assert src.pods_on(data.kube_nodes[0].name) is None  # a pod cache that is not watched is not "these pods"

    async with kube_source(lab_kube.kubeconfig, "lab-noevents") as src:
        data = await src.fetch()  # events are a part: failing alone, not the source
    assert data.kube_nodes and data.notes == ()
    failing = {p.name: p.error for p in data.parts if not p.ok}
    assert set(failing) == {"events", "kueue"}  # the user reads neither events nor Kueue's kinds
    assert (
        failing["events"]
        == 'forbidden: User "noevents" cannot list resource "events" in API group "" at the cluster scope'
    )
    assert all(n.pods_known for n in data.kube_nodes)

    async with kube_api(lab_kube.kubeconfig, "lab-viewer") as api:
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).list_node()
        assert err.value.status == 403
        assert status_body(err.value) == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'nodes is forbidden: User "viewer" cannot list resource "nodes" in API group "" at the cluster scope',
            "reason": "Forbidden",
            "details": {"kind": "nodes"},
            "code": 403,
        }
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).create_namespaced_pod_eviction(
                "notebook-alice",
                "research",
                client.V1Eviction(metadata=client.V1ObjectMeta(name="notebook-alice", namespace="research")),
            )
        assert (
            status_body(err.value)["message"]
            == 'pods "notebook-alice" is forbidden: User "viewer" cannot create resource "pods/eviction" in API group "" in the namespace "research"'
        )


@lab
async def test_bad_token_is_401_and_exec_plugin_works(lab_kube):
    from kubernetes.aio import client
    from kubernetes.aio.client.exceptions import ApiException

    async with kube_source(lab_kube.kubeconfig, "lab-badtoken") as src:
        with pytest.raises(AuthError) as err:
            await src.fetch()
    assert (
        not isinstance(err.value, KubeForbidden)
        and "unauthorized" in str(err.value)
        and "lab-badtoken" in str(err.value)
    )
    async with kube_api(lab_kube.kubeconfig, "lab-badtoken") as api:
        with pytest.raises(ApiException) as err:
            await client.CoreV1Api(api).list_node()
    assert status_body(err.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    }
    async with kube_source(lab_kube.kubeconfig, "lab-exec") as src:  # token from an exec credential plugin
        assert len((await src.fetch()).kube_nodes) == len(lab_kube.truth.nodes)


def _kubeconfig(path: Path, server: str, *, ca: Path | None = None) -> Path:
    cluster: dict = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "x",
        "clusters": [{"name": "x", "cluster": cluster}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}],
    }
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def test_unreachable_timeout_and_kubeconfig_errors_are_typed(tmp_path):
    closed = _kubeconfig(tmp_path / "closed", f"https://127.0.0.1:{free_port()}")
    async with kube_source(closed, "x", timeout_s=2.0) as src:
        with pytest.raises(Unreachable) as err:
            await src.fetch()
    assert "cannot connect" in str(err.value)

    with SilentServer() as silent:
        async with kube_source(_kubeconfig(tmp_path / "silent", silent.url), "x", timeout_s=1.0) as src:
            t0 = time.perf_counter()
            with pytest.raises(Timeout):
                await src.fetch()
            assert time.perf_counter() - t0 < 3.0

    with pytest.raises(SourceError, match="kubeconfig"):
        async with kube_source(tmp_path / "missing", "x") as src:
            await src.fetch()
    with pytest.raises(SourceError, match="kubeconfig"):
        async with kube_source(closed, "no-such-context") as src:
            await src.fetch()


@lab
async def test_a_certificate_from_another_ca_is_refused(lab_kube, tmp_path):
    from tests.lab.kubeapi.lab import make_tls

    other_ca, _, _ = make_tls(tmp_path / "other")
    kubeconfig = _kubeconfig(tmp_path / "kubeconfig", lab_kube.url, ca=other_ca)
    async with kube_source(kubeconfig, "x") as src:
        with pytest.raises(Unreachable) as err:
            await src.fetch()
    assert "TLS" in str(err.value)
