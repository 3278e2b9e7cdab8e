"""Provides the OpenStack source's per-service readers and the book of each part's last good answer.

Each reader takes an openstacksdk connection and a ``call(label, fn)`` that maps the SDK's exceptions to the
typed errors of :mod:`.base`; it returns model objects. :class:`PartBook` keeps, per part, the last good value,
when it last answered, and the read in flight (a read that outlives one poll's deadline lands in the book when
it ends, and is not started twice).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any

from ..model.types import NeutronAgent, NovaHost, OpenStackFlavor, OpenStackImage, OpenStackNetwork, PartStatus
from .base import DaemonPool

Call = Callable[[str, Callable[[], Any]], Any]

#: resource classes that are GPUs in Placement
GPU_RESOURCE_CLASSES = ("VGPU", "PGPU")
#: flavor extra specs that ask for a GPU
GPU_EXTRA_SPECS = ("pci_passthrough:alias", "resources:VGPU", "resources:PGPU")
PLACEMENT_MICROVERSION = "1.14"  # parent/root provider uuids
#: Placement calls in flight at once (two per resource provider)
PLACEMENT_CONCURRENCY = 4
#: the largest answer read from any OpenStack API (a cloud of thousands of servers answers in a few MiB)
MAX_ANSWER_BYTES = 32 * 1024 * 1024


# ---------------------------------------------------------------------------------------------- the book
@dataclass
class _Entry:
    value: Any = None
    ok_at: float | None = None  # wall clock of the last good answer
    ok_mono: float | None = None
    error: str = ""
    failed: bool = False
    future: Future | None = None


class PartBook:
    """Per part: the last good value, when it answered, why its last read failed, and the read in flight."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def entry(self, part: str) -> _Entry:
        with self._lock:
            return self._entries.setdefault(part, _Entry())

    def value(self, part: str) -> Any:
        return self.entry(part).value

    def start(self, part: str, pool: Executor, read: Callable[[], Any], every_s: float) -> Future | None:
        """Start a read of ``part`` unless one is in flight or the last good one is younger than ``every_s``."""
        entry = self.entry(part)
        with self._lock:
            if entry.future is not None and not entry.future.done():
                return entry.future
            fresh = entry.ok_mono is not None and not entry.failed and time.monotonic() - entry.ok_mono < every_s
            if fresh:
                return None

            def run() -> Any:
                try:
                    value = read()
                except Exception as exc:
                    with self._lock:
                        entry.failed, entry.error = True, str(exc)
                    raise
                with self._lock:
                    entry.value, entry.ok_at, entry.ok_mono = value, self.clock(), time.monotonic()
                    entry.failed, entry.error = False, ""
                return value

            entry.future = pool.submit(run)
            return entry.future

    def status(self, part: str, waited: Future | None, timeout_s: float) -> PartStatus:
        """The part's status after a poll waited (until its deadline) for ``waited``."""
        entry = self.entry(part)
        with self._lock:
            if waited is not None and not waited.done():
                return PartStatus(part, False, f"timed out after {timeout_s:g}s", entry.ok_at)
            if entry.failed:
                return PartStatus(part, False, entry.error or "no answer", entry.ok_at)
            return PartStatus(part, True, "", entry.ok_at)

    def forget(self) -> None:
        with self._lock:
            self._entries.clear()


# ---------------------------------------------------------------------------------------------- readers
def read_flavors(conn: Any, call: Call) -> tuple[OpenStackFlavor, ...]:
    flavors = call("nova", lambda: list(conn.compute.flavors(details=True, get_extra_specs=True)))
    out = []
    for fl in flavors:
        specs = dict(getattr(fl, "extra_specs", None) or {})
        gpu = {k: str(v) for k, v in specs.items() if k in GPU_EXTRA_SPECS}
        out.append(
            OpenStackFlavor(
                name=fl.name,
                vcpus=fl.vcpus or 0,
                ram_mb=fl.ram or 0,
                gpu_specs=tuple(sorted(gpu.items())),
                public=bool(getattr(fl, "is_public", True)),
            )
        )
    return tuple(sorted(out, key=lambda f: f.name))


def read_placement(conn: Any, call: Call) -> dict[str, dict[str, dict[str, int]]]:
    """Root provider name -> {"inventory": rc -> total, "usage": rc -> used}, summed over its tree."""

    def get(url: str) -> dict:
        body = conn.placement.get(url, microversion=PLACEMENT_MICROVERSION, raise_exc=True).json()
        if not isinstance(body, dict):
            raise ValueError(f"placement answered {url} with a {type(body).__name__}, not an object")
        return body

    rps = call("placement", lambda: get("/resource_providers")["resource_providers"])
    if not isinstance(rps, list):
        raise ValueError("placement: resource_providers is not a list")
    names = {rp["uuid"]: rp["name"] for rp in rps}
    out: dict[str, dict[str, dict[str, int]]] = {}
    # two calls per provider, side by side (a few at a time): one after the other they take seconds on a big cloud
    with DaemonPool(PLACEMENT_CONCURRENCY, "placement") as pool:
        answers = [
            (
                rp,
                pool.submit(
                    call, "placement", lambda rp=rp: get(f"/resource_providers/{rp['uuid']}/inventories")["inventories"]
                ),
                pool.submit(call, "placement", lambda rp=rp: get(f"/resource_providers/{rp['uuid']}/usages")["usages"]),
            )
            for rp in rps
        ]
        results = [(rp, inv.result(), use.result()) for rp, inv, use in answers]
    for rp, inv, use in results:
        root = names.get(rp.get("root_provider_uuid") or rp["uuid"], rp["name"])
        entry = out.setdefault(root, {"inventory": {}, "usage": {}})
        for rc, item in inv.items():
            entry["inventory"][rc] = (
                entry["inventory"].get(rc, 0) + int(item.get("total", 0)) - int(item.get("reserved", 0))
            )
        for rc, used in use.items():
            entry["usage"][rc] = entry["usage"].get(rc, 0) + int(used)
    return out


def read_neutron(conn: Any, call: Call) -> tuple[tuple[NeutronAgent, ...], tuple[OpenStackNetwork, ...]]:
    """Neutron's agents and networks (read together: one part)."""
    agents = call("neutron", lambda: list(conn.network.agents()))
    nets = call("neutron", lambda: list(conn.network.networks()))
    return (
        tuple(
            sorted(
                (
                    NeutronAgent(
                        host=a.host or "",
                        agent_type=a.agent_type or "",
                        binary=a.binary or "",
                        alive=bool(a.is_alive),
                        admin_state_up=bool(a.is_admin_state_up),
                    )
                    for a in agents
                ),
                key=lambda a: (a.host, a.agent_type),
            )
        ),
        tuple(
            sorted(
                (
                    OpenStackNetwork(
                        name=n.name or n.id,
                        id=n.id,
                        status=n.status or "",
                        admin_state_up=bool(n.is_admin_state_up),
                        shared=bool(n.is_shared),
                        external=bool(n.is_router_external),
                        network_type=n.provider_network_type or "",
                        subnets=len(n.subnet_ids or ()),
                    )
                    for n in nets
                ),
                key=lambda n: n.name,
            )
        ),
    )


def read_images(conn: Any, call: Call) -> tuple[OpenStackImage, ...]:
    images = call("glance", lambda: list(conn.image.images()))
    return tuple(
        sorted(
            (
                OpenStackImage(
                    name=i.name or i.id,
                    id=i.id,
                    status=i.status or "",
                    visibility=i.visibility or "",
                    size_bytes=i.size,
                    disk_format=i.disk_format or "",
                )
                for i in images
            ),
            key=lambda i: i.name,
        )
    )


def nova_hosts(
    services: list, hypervisors: list, servers: list, providers: dict[str, dict[str, dict[str, int]]] | None
) -> tuple[NovaHost, ...]:
    """One NovaHost per nova-compute service; ``providers`` None: Placement never answered (GPUs unknown)."""
    by_host: dict[str, list[str]] = {}
    for server in servers:
        host = getattr(server, "compute_host", None) or ""
        if host:
            by_host.setdefault(host, []).append(server.name or server.id)
    hyper_by_host: dict[str, Any] = {}
    for hv in hypervisors:
        details = getattr(hv, "service_details", None) or {}
        hyper_by_host[details.get("host") or hv.name] = hv
    hosts: list[NovaHost] = []
    for svc in services:
        if svc.binary != "nova-compute":
            continue
        hv = hyper_by_host.get(svc.host)
        node = (getattr(hv, "name", None) or svc.host) if hv is not None else svc.host
        res = (providers or {}).get(node, {})
        inv, use = res.get("inventory", {}), res.get("usage", {})
        hosts.append(
            NovaHost(
                name=svc.host,
                zone=svc.availability_zone or "",
                service_state=svc.state or "",
                service_status=svc.status or "",
                disabled_reason=svc.disabled_reason or "",
                forced_down=bool(svc.is_forced_down),
                hypervisor_state=(getattr(hv, "state", "") or "") if hv is not None else "",
                vcpus_used=_num(use.get("VCPU"), getattr(hv, "vcpus_used", None)),
                vcpus=_num(inv.get("VCPU"), getattr(hv, "vcpus", None)),
                memory_mb_used=_num(use.get("MEMORY_MB"), getattr(hv, "memory_used", None)),
                memory_mb=_num(inv.get("MEMORY_MB"), getattr(hv, "memory_size", None)),
                running_vms=len(by_host.get(svc.host, ())),
                servers=tuple(sorted(by_host.get(svc.host, ()))),
                gpu_inventory=tuple(
                    sorted(
                        (rc, int(inv.get(rc, 0)), int(use.get(rc, 0)))
                        for rc in set(inv) | set(use)
                        if rc in GPU_RESOURCE_CLASSES
                    )
                ),
                gpu_inventory_known=providers is not None,
            )
        )
    return tuple(sorted(hosts, key=lambda h: h.name))


def _num(placement: Any, hypervisor: Any) -> int | None:
    for value in (placement, hypervisor):
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                continue
    return None
