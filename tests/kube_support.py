"""Provides what the Kubernetes source tests share: a lab site, the source and the official client on the lab's kubeconfig."""

from __future__ import annotations

import contextlib
import json

from sovtui.config import SiteConfig
from sovtui.model.types import KubeNode
from sovtui.sources.kubernetes import KubernetesSource


def site(ctx: str = "lab", timeout_s: float = 5.0) -> SiteConfig:
    return SiteConfig("lab", kube_context=ctx, timeout_s=timeout_s)


@contextlib.asynccontextmanager
async def kube_source(kubeconfig, ctx: str = "lab", timeout_s: float = 5.0):
    src = KubernetesSource(site(ctx, timeout_s), kubeconfig=kubeconfig)
    try:
        yield src
    finally:
        await src.aclose()


@contextlib.asynccontextmanager
async def kube_api(kubeconfig, ctx: str = "lab"):
    """The official asyncio client, configured from the lab's kubeconfig as any user of the library would."""
    from kubernetes.aio import client, config

    cfg = client.Configuration()
    await config.load_kube_config(
        config_file=str(kubeconfig), context=ctx, client_configuration=cfg, persist_config=False
    )
    async with client.ApiClient(cfg) as api:
        yield api


def node_of(data, name: str) -> KubeNode:
    return next(n for n in data.kube_nodes if n.name == name)


def status_body(exc) -> dict:
    return json.loads(exc.body)
