"""Provides the OpenStack source: Nova compute services, hypervisors, servers per host, GPU flavors, Placement and Neutron.

openstacksdk is imported lazily. The cloud comes from ``clouds.yaml`` (``site.openstack_cloud``) or the
``OS_*`` environment, as the ``openstack`` CLI reads them. Every request is bounded by ``api_timeout``;
the keystoneauth session behind the connection re-authenticates by itself when its token expires or
is revoked (a 401 makes it fetch a new token and retry once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import SiteConfig
from ..model.types import (
    DoctorCheck,
    NeutronAgent,
    NovaHost,
    OpenStackFlavor,
    OpenStackImage,
    OpenStackNetwork,
    SourceData,
)
from .base import AuthError, BadAnswer, Source, SourceError, Timeout, Unreachable
from .nova_ops import NovaOps

Clock = Callable[[], float]

#: resource classes that are GPUs in Placement
GPU_RESOURCE_CLASSES = ("VGPU", "PGPU")
#: flavor extra specs that ask for a GPU
GPU_EXTRA_SPECS = ("pci_passthrough:alias", "resources:VGPU", "resources:PGPU")
PLACEMENT_MICROVERSION = "1.14"  # parent/root provider uuids


class OpenStackSource(NovaOps, Source):
    """One OpenStack cloud, seen by an admin: where capacity is, what is down or disabled, and why.

    The drain operations (servers on a host, disable/enable a compute service, live and cold migration)
    come from :class:`~.nova_ops.NovaOps`.
    """

    name = "openstack"
    kind = "openstack"
    interval_s = 10.0
    #: Placement (two calls per resource provider), flavors and Neutron agents change slowly and cost the
    #: most on a big cloud: they are read again at most this often; services, hypervisors and servers
    #: (what says a host is up, disabled, or full of VMs) at every poll
    slow_every_s = 60.0

    def __init__(self, site: SiteConfig, *, cloud: str | None = None, clouds_yaml: str | Path | None = None,
                 clock: Clock = time.time) -> None:
        self.site = site
        self.cloud = cloud or site.openstack_cloud
        self.clouds_yaml = str(clouds_yaml) if clouds_yaml else None
        self.clock = clock
        self.timeout_s = float(getattr(site, "timeout_s", None) or self.timeout_s)
        self.interval_s = float(getattr(site, "refresh_s", None) or self.interval_s)
        self._slow: tuple[float, Any, Any, Any] | None = None  # (when, flavors, providers, agents)
        self._conn: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ connection
    def connection(self) -> Any:
        """The openstacksdk connection (built once; its session keeps and renews the token)."""
        with self._lock:
            if self._conn is None:
                try:
                    from openstack import config, connection
                except ImportError as exc:  # pragma: no cover - openstacksdk is a dependency
                    raise BadAnswer(f"openstacksdk is not installed: {exc}") from None
                try:
                    loader = config.OpenStackConfig(config_files=[self.clouds_yaml] if self.clouds_yaml else None)
                    region = loader.get_one(cloud=self.cloud, api_timeout=self.timeout_s)
                except Exception as exc:  # noqa: BLE001 - openstack.exceptions.ConfigException and friends
                    raise BadAnswer(f"cloud {self.cloud or '(OS_* env)'}: {exc}",
                                    hint="check clouds.yaml (or OS_CLOUD / OS_* variables)") from None
                self._conn = connection.Connection(config=region, connect_retries=0)
            return self._conn

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def _call(self, service: str, fn: Callable[[], Any]) -> Any:
        """Run one SDK call, turning its exceptions into the typed :mod:`.base` errors."""
        try:
            return fn()
        except SourceError:
            raise
        except Exception as exc:  # mapped below
            raise self._map_error(service, exc) from exc

    def _map_error(self, service: str, exc: Exception) -> SourceError:
        from keystoneauth1 import exceptions as ksa
        from openstack import exceptions as sdk

        auth_step = self._authenticating(exc)
        where = "keystone" if auth_step else service
        timed_out = isinstance(exc, ksa.ConnectionError) and "timed out" in str(exc).lower()
        if isinstance(exc, ksa.ConnectTimeout) or timed_out:
            return Timeout(f"{where} timed out after {self.timeout_s:g}s")
        if isinstance(exc, ksa.ConnectionError | ksa.SSLError):
            return Unreachable(f"{where} unreachable", hint="check auth_url / the endpoint and that the service runs")
        if isinstance(exc, ksa.EndpointNotFound):
            return BadAnswer(f"no {service} endpoint in the catalog", hint="check region_name and interface in clouds.yaml")
        if isinstance(exc, ksa.Unauthorized | ksa.Forbidden):
            return AuthError(f"{where}: {_short(exc)}")
        status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
        if status in (401, 403):
            return AuthError(f"{where}: HTTP {status} {_short(exc)}")
        if isinstance(exc, sdk.HttpException | ksa.HttpError):
            return BadAnswer(f"{service}: HTTP {status} {_short(exc)}")
        if isinstance(exc, ksa.ClientException | sdk.SDKException):
            return BadAnswer(f"{service}: {_short(exc)}")
        return BadAnswer(f"{service}: {type(exc).__name__}: {_short(exc)}")

    def _authenticating(self, exc: Exception) -> bool:
        """True when the failure happened while getting a token (no valid token yet)."""
        conn = self._conn
        try:
            auth = conn.session.auth if conn is not None else None
            if auth is not None and getattr(auth, "auth_ref", None) is not None and not auth.auth_ref.will_expire_soon(1):
                return False
        except Exception:  # noqa: BLE001
            pass
        text = str(exc)
        if "/auth/tokens" in text or "auth_url" in text.lower():
            return True
        return conn is None or getattr(getattr(conn.session, "auth", None), "auth_ref", None) is None

    # ------------------------------------------------------------------ fetch
    def fetch_sync(self) -> SourceData:
        conn = self._call("keystone", self.connection)
        self._call("keystone", lambda: conn.session.get_token())
        services = self._call("compute", lambda: list(conn.compute.services()))
        hypervisors = self._call("compute", lambda: list(conn.compute.hypervisors(details=True)))
        servers = self._call("compute", lambda: list(conn.compute.servers(details=True, all_projects=True)))
        slow = self._slow
        if slow is None or time.monotonic() - slow[0] >= self.slow_every_s:
            flavors = self._call("compute", lambda: list(conn.compute.flavors(details=True, get_extra_specs=True)))
            network = self._has(conn, "network")
            slow = self._slow = (
                time.monotonic(), flavors, self._placement(conn),
                self._neutron_agents(conn) if network else None,
                self._networks(conn) if network else None,
                self._images(conn) if self._has(conn, "image") else None,
            )
        _, flavors, providers, agents, networks, images = slow

        by_host: dict[str, list[str]] = {}
        for server in servers:
            host = getattr(server, "compute_host", None) or ""
            if host:
                by_host.setdefault(host, []).append(server.name or server.id)
        hyper_by_host: dict[str, Any] = {}
        for hv in hypervisors:
            host = getattr(hv, "service_details", None) or {}
            hyper_by_host[host.get("host") or hv.name] = hv
        hosts: list[NovaHost] = []
        for svc in services:
            if svc.binary != "nova-compute":
                continue
            hv = hyper_by_host.get(svc.host)
            node = (getattr(hv, "name", None) or svc.host) if hv is not None else svc.host
            res = providers.get(node, {})
            inv, use = res.get("inventory", {}), res.get("usage", {})
            hosts.append(NovaHost(
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
                gpu_inventory=tuple(sorted(
                    (rc, int(inv.get(rc, 0)), int(use.get(rc, 0))) for rc in set(inv) | set(use) if rc in GPU_RESOURCE_CLASSES
                )),
            ))
        hosts.sort(key=lambda h: h.name)
        gpu_flavors = []
        for fl in flavors:
            specs = dict(getattr(fl, "extra_specs", None) or {})
            gpu = {k: str(v) for k, v in specs.items() if k in GPU_EXTRA_SPECS}
            gpu_flavors.append(OpenStackFlavor(
                name=fl.name, vcpus=fl.vcpus or 0, ram_mb=fl.ram or 0,
                gpu_specs=tuple(sorted(gpu.items())), public=bool(getattr(fl, "is_public", True)),
            ))
        gpu_flavors.sort(key=lambda f: f.name)
        return SourceData(nova_hosts=tuple(hosts), openstack_flavors=tuple(gpu_flavors),
                          neutron_agents=agents, openstack_networks=networks, openstack_images=images)

    def _placement(self, conn: Any) -> dict[str, dict[str, dict[str, int]]]:
        """Root provider name -> {"inventory": rc -> total, "usage": rc -> used}, summed over its tree."""
        def get(url: str) -> dict:
            resp = conn.placement.get(url, microversion=PLACEMENT_MICROVERSION, raise_exc=True)
            return resp.json()

        rps = self._call("placement", lambda: get("/resource_providers"))["resource_providers"]
        names = {rp["uuid"]: rp["name"] for rp in rps}
        out: dict[str, dict[str, dict[str, int]]] = {}
        for rp in rps:
            root = names.get(rp.get("root_provider_uuid") or rp["uuid"], rp["name"])
            entry = out.setdefault(root, {"inventory": {}, "usage": {}})
            inv = self._call("placement", lambda rp=rp: get(f"/resource_providers/{rp['uuid']}/inventories"))
            use = self._call("placement", lambda rp=rp: get(f"/resource_providers/{rp['uuid']}/usages"))
            for rc, item in inv.get("inventories", {}).items():
                entry["inventory"][rc] = entry["inventory"].get(rc, 0) + int(item.get("total", 0)) - int(item.get("reserved", 0))
            for rc, used in use.get("usages", {}).items():
                entry["usage"][rc] = entry["usage"].get(rc, 0) + int(used)
        return out

    @staticmethod
    def _has(conn: Any, service: str) -> bool:
        """Whether the catalog has an endpoint for ``service`` (network, image); doubt counts as yes."""
        from keystoneauth1 import exceptions as ksa

        try:
            conn.session.get_endpoint(service_type=service, interface=conn.config.get_interface(service),
                                      region_name=conn.config.get_region_name(service))
        except ksa.EndpointNotFound:
            return False
        except Exception:  # noqa: BLE001 - judged by the calls that follow
            pass
        return True

    def _networks(self, conn: Any) -> tuple[OpenStackNetwork, ...]:
        nets = self._call("network", lambda: list(conn.network.networks()))
        return tuple(sorted((OpenStackNetwork(
            name=n.name or n.id, id=n.id, status=n.status or "", admin_state_up=bool(n.is_admin_state_up),
            shared=bool(n.is_shared), external=bool(n.is_router_external),
            network_type=n.provider_network_type or "", subnets=len(n.subnet_ids or ()),
        ) for n in nets), key=lambda n: n.name))

    def _images(self, conn: Any) -> tuple[OpenStackImage, ...]:
        images = self._call("image", lambda: list(conn.image.images()))
        return tuple(sorted((OpenStackImage(
            name=i.name or i.id, id=i.id, status=i.status or "", visibility=i.visibility or "",
            size_bytes=i.size, disk_format=i.disk_format or "",
        ) for i in images), key=lambda i: i.name))

    def _neutron_agents(self, conn: Any) -> tuple[NeutronAgent, ...]:
        """Neutron's agents (the caller checked that the cloud has a network endpoint)."""
        agents = self._call("network", lambda: list(conn.network.agents()))
        return tuple(sorted((NeutronAgent(
            host=a.host or "", agent_type=a.agent_type or "", binary=a.binary or "",
            alive=bool(a.is_alive), admin_state_up=bool(a.is_admin_state_up),
        ) for a in agents), key=lambda a: (a.host, a.agent_type)))

    # ------------------------------------------------------------------ doctor
    def doctor_sync(self) -> list[DoctorCheck]:
        name = self.name
        started = time.perf_counter()
        try:
            conn = self._call("keystone", self.connection)
            self._call("keystone", lambda: conn.session.get_token())
        except SourceError as exc:
            return [DoctorCheck(name, "keystone", False, str(exc), exc.hint)]
        ms = (time.perf_counter() - started) * 1000
        checks = [DoctorCheck(name, "keystone", True, f"token for cloud {self.cloud or '(env)'} ({ms:.0f} ms)")]
        try:
            data = self.fetch_sync()
        except SourceError as exc:
            checks.append(DoctorCheck(name, "compute", False, str(exc), exc.hint))
            return checks
        hosts = data.nova_hosts or ()
        down = [h.name for h in hosts if h.service_state != "up"]
        detail = f"{len(hosts)} compute hosts" + (f"; down: {', '.join(down)}" if down else "")
        checks.append(DoctorCheck(name, "compute", not down, detail, "check nova-compute on those hosts" if down else ""))
        agents = data.neutron_agents
        if agents is None:
            checks.append(DoctorCheck(name, "network", True, "no network endpoint"))
        else:
            dead = [f"{a.binary or a.agent_type}@{a.host}" for a in agents if not a.alive]
            detail = f"{len(agents)} agents, {len(data.openstack_networks or ())} networks" + (
                f"; dead: {', '.join(dead)}" if dead else "")
            checks.append(DoctorCheck(name, "network", not dead, detail,
                                      "restart those agents (neutron agent-list shows them XXX)" if dead else ""))
        if data.openstack_images is not None:
            active = sum(1 for i in data.openstack_images if i.status == "active")
            checks.append(DoctorCheck(name, "image", True, f"{active} active images of {len(data.openstack_images)}"))
        return checks


def _num(placement: Any, hypervisor: Any) -> int | None:
    for value in (placement, hypervisor):
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                continue
    return None


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200]
