"""Provides the site's actionable layers for operations: which source acts on Kubernetes, Nova and Slurm, and host names per layer.

Operations never talk to a backend themselves: the sources (real or demo) hold the I/O and the caches
(:mod:`sovtui.model.workload` records); this module finds them among the hub's sources by kind and
matches a host name to the name each layer knows it by (short, lower case, as the Nodes screen does).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..model.nodes import host_key
from ..model.types import KubeNode, NovaHost, SlurmNode, SourceResult
from .plan import LAYER_TITLE, LAYERS, UnknownHost

log = logging.getLogger(__name__)

#: layer -> the kind of source that acts on it
SOURCE_KIND = {"kubernetes": "kubernetes", "nova": "openstack", "slurm": "slurm"}


@dataclass
class Layers:
    """The sources that act on each layer, and what they last reported."""

    sources: dict[str, Any] = field(default_factory=dict)  # layer -> source object
    kube_nodes: tuple[KubeNode, ...] = ()
    nova_hosts: tuple[NovaHost, ...] = ()
    slurm_nodes: tuple[SlurmNode, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)  # layer -> why its source has no data now

    @classmethod
    def from_sources(cls, sources: Iterable[Any], results: Mapping[str, SourceResult]) -> Layers:
        """The layers among ``sources`` (the hub's), with their last good data from ``results``."""
        layers = cls()
        for source in sources:
            for layer, kind in SOURCE_KIND.items():
                if getattr(source, "kind", "") != kind or layer in layers.sources:
                    continue
                layers.sources[layer] = source
                result = results.get(source.name)
                data = result.data if result is not None else None
                if result is not None and not result.status.ok:
                    layers.errors[layer] = result.status.error or "not answering"
                if data is None:
                    layers.errors.setdefault(layer, "no answer yet")
                    continue
                if layer == "kubernetes":
                    layers.kube_nodes = data.kube_nodes or ()
                elif layer == "nova":
                    layers.nova_hosts = data.nova_hosts or ()
                else:
                    layers.slurm_nodes = data.slurm_nodes or ()
        return layers

    def get(self, layer: str) -> Any | None:
        return self.sources.get(layer)

    def source(self, layer: str) -> Any:
        """The source acting on ``layer``, which the caller knows the site has (a plan step of that layer exists)."""
        try:
            return self.sources[layer]
        except KeyError:
            raise LookupError(f"the site has no {layer} source") from None

    def records(self, layer: str) -> tuple[KubeNode, ...] | tuple[NovaHost, ...] | tuple[SlurmNode, ...]:
        if layer == "kubernetes":
            return self.kube_nodes
        if layer == "nova":
            return self.nova_hosts
        if layer == "slurm":
            return self.slurm_nodes
        raise KeyError(layer)

    def names(self, host: str, wanted: Iterable[str] = LAYERS) -> dict[str, str]:
        """The name of ``host`` in each wanted layer that knows it."""
        key = host_key(host)
        out: dict[str, str] = {}
        for layer in wanted:
            if layer not in self.sources:
                continue
            for rec in self.records(layer):
                if host_key(rec.name) == key:
                    out[layer] = rec.name
                    break
        return out

    def resolve(self, hosts: Iterable[str], wanted: Iterable[str] = LAYERS) -> dict[str, dict[str, str]]:
        """host -> layer -> name; UnknownHost naming every host that no wanted layer knows."""
        wanted = tuple(wanted)
        out: dict[str, dict[str, str]] = {}
        unknown = []
        for host in hosts:
            names = self.names(host, wanted)
            if not names:
                unknown.append(host)
            out[host] = names
        if unknown:
            have = [LAYER_TITLE[layer] for layer in wanted if layer in self.sources]
            failing = [f"{LAYER_TITLE[layer]}: {why}" for layer, why in self.errors.items() if layer in wanted]
            where = ", ".join(have) if have else "no layer (the site configures none of Kubernetes, OpenStack, Slurm)"
            extra = f"; not answering: {'; '.join(failing)}" if failing else ""
            raise UnknownHost(
                f"unknown host{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: not known to {where}{extra}"
            )
        return out

    def identities(self) -> tuple[tuple[str, str], ...]:
        """Who acts in each layer (never a secret: the sources say only user, project, context)."""
        out = []
        for layer, source in self.sources.items():
            try:
                out.append((layer, str(source.identity())))
            except Exception as exc:  # noqa: BLE001 - an identity is informative; its failure is said
                log.debug("identity of %s: %s", layer, exc)
                out.append((layer, f"unknown ({type(exc).__name__})"))
        return tuple(out)
