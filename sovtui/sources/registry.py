"""Provides the registry that turns a site's config into the list of sources to poll (the demo's are in :mod:`sovtui.demo.setup`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from ..config import SiteConfig
from ..model.types import SiteInfo
from .base import Source

Clock = Callable[[], float]

#: A factory takes the site and the clock and returns the sources of one kind (often none: the
#: site does not configure that backend). Client libraries are imported inside the factory so
#: that building the registry, or ``import sovtui.cli``, never pays for them.
SourceFactory = Callable[[SiteConfig, Clock], list[Source]]


def _prometheus(site: SiteConfig, clock: Clock) -> list[Source]:
    if not site.prometheus_url:
        return []
    from .prometheus import PrometheusSource

    return [PrometheusSource(site, clock=clock)]


def _alertmanager(site: SiteConfig, clock: Clock) -> list[Source]:
    if not site.alertmanager_url:
        return []
    from .alertmanager import AlertmanagerSource

    return [AlertmanagerSource(site)]


def _ssh(site: SiteConfig, clock: Clock) -> list[Source]:
    if not site.ssh.hosts and not site.ssh.discover:
        return []
    from .hosts import HostsSource

    return [HostsSource(site, clock=clock)]


def _kubernetes(site: SiteConfig, clock: Clock) -> list[Source]:
    if not site.kube_context:
        return []
    from .kubernetes import KubernetesSource

    return [KubernetesSource(site, clock=clock)]


def _openstack(site: SiteConfig, clock: Clock) -> list[Source]:
    if not site.openstack_cloud:
        return []
    from .openstack import OpenStackSource

    return [OpenStackSource(site, clock=clock)]


def _slurm(site: SiteConfig, clock: Clock) -> list[Source]:
    if not site.slurm.host:
        return []
    from .slurm import SlurmSource

    return [SlurmSource(site, clock=clock)]


#: kind → factory, in the order the sources are listed. Later issues add entries here:
#: "ssh" (site.ssh.hosts), "kubernetes" (site.kube_context), "openstack" (site.openstack_cloud),
#: "slurm" and "ceph"; each factory returns ``[]`` when the site does not configure its backend.
FACTORIES: dict[str, SourceFactory] = {
    "prometheus": _prometheus,
    "alertmanager": _alertmanager,
    "ssh": _ssh,
    "kubernetes": _kubernetes,
    "openstack": _openstack,
    "slurm": _slurm,
}


def build_sources(site: SiteConfig, *, clock: Clock = time.time) -> list[Source]:
    """Every source the site configures, in :data:`FACTORIES` order."""
    sources: list[Source] = []
    for factory in FACTORIES.values():
        sources.extend(factory(site, clock))
    return sources


def site_info(site: SiteConfig, *, read_only: bool = False) -> SiteInfo:
    """What the UI needs to know about a configured site; ``read_only`` forces read-only."""
    return SiteInfo(name=site.name, production=site.production, read_only=site.read_only or read_only)
