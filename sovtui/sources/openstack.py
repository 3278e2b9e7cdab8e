"""Provides the OpenStack source: Nova compute services, hypervisors, servers per host, GPU flavors, Placement and Neutron.

Each service is read on its own: Keystone (the token) and Nova's services, hypervisors and servers are what the
source means, and their failure fails the poll; Placement, Neutron, Glance and Nova's flavors each fail alone
(the source is then partial: the part keeps its last good data, or ``None`` if it never answered, and is named in
``SourceData.parts``). The reads of one poll run side by side and the poll ends by its deadline (just inside
``timeout_s``): a read still running then is reported as timed out and lands in the part's book when it ends.

openstacksdk is imported lazily. The cloud comes from ``clouds.yaml`` (``site.openstack_cloud``) or the
``OS_*`` environment, as the ``openstack`` CLI reads them. Every request is bounded by ``api_timeout``;
the keystoneauth session behind the connection re-authenticates by itself when its token expires or
is revoked (a 401 makes it fetch a new token and retry once).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ..config import SiteConfig
from ..model.types import DoctorCheck, PartStatus, SourceData
from .base import AuthError, BadAnswer, DaemonPool, Source, SourceError, Timeout, Unreachable, close_quietly, short
from .http import bounded_adapter
from .nova_ops import NovaOps
from .openstack_parts import (
    GPU_EXTRA_SPECS,
    GPU_RESOURCE_CLASSES,
    MAX_ANSWER_BYTES,
    PLACEMENT_MICROVERSION,
    PartBook,
    nova_hosts,
    read_flavors,
    read_images,
    read_neutron,
    read_placement,
)

Clock = Callable[[], float]

__all__ = ["GPU_EXTRA_SPECS", "GPU_RESOURCE_CLASSES", "PLACEMENT_MICROVERSION", "OpenStackSource"]

#: part -> the service type of its catalog entry (the parts a poll may leave partial)
PART_SERVICES = {"placement": "placement", "neutron": "network", "glance": "image"}


class OpenStackSource(NovaOps, Source):
    """One OpenStack cloud, seen by an admin: where capacity is, what is down or disabled, and why.

    The drain operations (servers on a host, disable/enable a compute service, live and cold migration)
    come from :class:`~.nova_ops.NovaOps`.
    """

    name = "openstack"
    kind = "openstack"
    interval_s = 10.0
    #: Placement (two calls per resource provider), flavors, Neutron and Glance change slowly and cost the
    #: most on a big cloud: each is read again at most this often after it answered (at the next poll after it
    #: failed); services, hypervisors and servers (what says a host is up, disabled, or full of VMs) at every poll
    slow_every_s = 60.0

    def __init__(
        self,
        site: SiteConfig,
        *,
        cloud: str | None = None,
        clouds_yaml: str | Path | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.site = site
        self.cloud = cloud or site.openstack_cloud
        self.clouds_yaml = str(clouds_yaml) if clouds_yaml else None
        self.clock = clock
        self.timeout_s = float(getattr(site, "timeout_s", None) or self.timeout_s)
        self.interval_s = float(getattr(site, "refresh_s", None) or self.interval_s)
        self._book = PartBook(clock)
        self._pool = DaemonPool(12, "openstack")
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
                    raise BadAnswer(
                        f"cloud {self.cloud or '(OS_* env)'}: {exc}",
                        hint="check clouds.yaml (or OS_CLOUD / OS_* variables)",
                    ) from None
                conn = connection.Connection(config=region, connect_retries=0)
                # every answer read to a size bound and a total time (2x the per-call timeout: a paged list)
                bounded = bounded_adapter(MAX_ANSWER_BYTES, total_s=self.timeout_s * 2)
                for prefix in ("http://", "https://"):
                    conn.session.session.mount(prefix, bounded)
                self._conn = conn
            return self._conn

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            close_quietly("the OpenStack connection", conn.close)

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
        if "larger than" in str(exc):
            return BadAnswer(f"{where}: {short(exc).rsplit(': ', 1)[-1]}", hint="the endpoint answered without end")
        if isinstance(exc, ksa.ConnectTimeout) or timed_out:
            return Timeout(f"{where} timed out after {self.timeout_s:g}s")
        text = str(exc)
        if any(
            w in text for w in ("IncompleteRead", "Connection broken", "ChunkedEncodingError", "RemoteDisconnected")
        ):
            return BadAnswer(f"{where}: answer cut off ({short(exc)[-80:]})")
        if "reset by peer" in text or "Connection aborted" in text:
            return Unreachable(f"{where}: connection reset", hint="check the endpoint and anything between (proxies)")
        if isinstance(exc, ValueError) and "json" in f"{type(exc).__name__} {text}".lower() or _not_json(exc):
            return BadAnswer(f"{where}: the answer is not JSON", hint="check that the catalog's endpoint is the API")
        if isinstance(exc, KeyError | TypeError | AttributeError | ksa.InvalidResponse):
            return BadAnswer(f"{where}: an answer of an unexpected shape ({type(exc).__name__}: {short(exc)[:80]})")
        if isinstance(exc, ksa.ConnectionError | ksa.SSLError):
            return Unreachable(f"{where} unreachable", hint="check auth_url / the endpoint and that the service runs")
        if isinstance(exc, ksa.EndpointNotFound):
            return BadAnswer(
                f"no {service} endpoint in the catalog", hint="check region_name and interface in clouds.yaml"
            )
        if isinstance(exc, ksa.Unauthorized | ksa.Forbidden):
            return AuthError(f"{where}: {short(exc)}")
        status = getattr(exc, "status_code", None) or getattr(exc, "http_status", None)
        if status in (401, 403):
            return AuthError(f"{where}: HTTP {status} {short(exc)}")
        if isinstance(exc, sdk.HttpException | ksa.HttpError):
            return BadAnswer(f"{service}: HTTP {status} {short(exc)}")
        if isinstance(exc, ksa.ClientException | sdk.SDKException):
            return BadAnswer(f"{service}: {short(exc)}")
        return BadAnswer(f"{service}: {type(exc).__name__}: {short(exc)}")

    def _authenticating(self, exc: Exception) -> bool:
        """True when the failure happened while getting a token (no valid token yet)."""
        conn = self._conn
        try:
            auth = conn.session.auth if conn is not None else None
            if (
                auth is not None
                and getattr(auth, "auth_ref", None) is not None
                and not auth.auth_ref.will_expire_soon(1)
            ):
                return False
        except Exception:  # noqa: BLE001
            pass
        text = str(exc)
        if "/auth/tokens" in text or "auth_url" in text.lower():
            return True
        return conn is None or getattr(getattr(conn.session, "auth", None), "auth_ref", None) is None

    # ------------------------------------------------------------------ fetch
    @property
    def budget_s(self) -> float:
        """How long one poll waits for its reads: just inside ``timeout_s`` (the hub's bound for the whole poll)."""
        return max(0.3, self.timeout_s - 0.2)

    def _submit(self, label: str, fn: Callable[[], Any]) -> Future:
        return self._pool.submit(self._call, label, fn)

    def _wait(self, label: str, future: Future, deadline: float) -> Any:
        """The result of a read of a part the source cannot do without: its failure fails the poll."""
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            raise Timeout(f"{label} timed out after {self.timeout_s:g}s") from None

    @staticmethod
    def _settle(future: Future | None, deadline: float) -> None:
        if future is not None:
            try:
                future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - the book has the error
                pass

    def fetch_sync(self) -> SourceData:
        deadline = time.monotonic() + self.budget_s
        conn = self._call("keystone", self.connection)
        self._wait("keystone", self._submit("keystone", conn.session.get_token), deadline)
        token_at = self.clock()
        catalog = [part for part, service in PART_SERVICES.items() if self._has(conn, service)]
        readers = {"flavors": read_flavors, "placement": read_placement, "neutron": read_neutron, "glance": read_images}
        # the services first, alone: a token the cloud refuses (revoked) is renewed by this one call, not by
        # several side by side (keystoneauth renews it once per call, and calls racing would drop each other's)
        services = self._wait("nova", self._submit("nova", lambda: list(conn.compute.services())), deadline)
        started: dict[str, Future | None] = {}
        for part in ["flavors", *catalog]:
            reader = readers[part]
            label = "nova" if part == "flavors" else part
            started[part] = self._book.start(
                part,
                self._pool,
                lambda r=reader, a=label: self._call(a, lambda: r(conn, self._call)),
                self.slow_every_s,
            )
        nova = [
            self._submit("nova", fn)
            for fn in (
                lambda: list(conn.compute.hypervisors(details=True)),
                lambda: list(conn.compute.servers(details=True, all_projects=True)),
            )
        ]
        hypervisors, servers = (self._wait("nova", f, deadline) for f in nova)
        nova_at = self.clock()
        for future in started.values():
            self._settle(future, deadline)
        status = {part: self._book.status(part, started[part], self.timeout_s) for part in started}
        flavors = status.pop("flavors")
        parts = [
            PartStatus("keystone", True, "", token_at),
            PartStatus(
                "nova",
                flavors.ok,
                f"flavors: {_bare(flavors.error, 'nova')}" if not flavors.ok else "",
                nova_at if flavors.ok else flavors.last_ok_at,
            ),
        ]
        parts += [PartStatus(p, st.ok, _bare(st.error, p), st.last_ok_at) for p, st in status.items()]
        book = self._book.value
        neutron = book("neutron") if "neutron" in catalog else None
        notes = []
        providers = book("placement") if "placement" in catalog else None
        if providers is None:
            notes.append(
                "GPU inventory unknown: Placement "
                + ("never answered" if "placement" in catalog else "is not in the catalog")
            )
        return SourceData(
            nova_hosts=nova_hosts(services, hypervisors, servers, providers),
            openstack_flavors=book("flavors"),
            neutron_agents=neutron[0] if neutron is not None else None,
            openstack_networks=neutron[1] if neutron is not None else None,
            openstack_images=book("glance") if "glance" in catalog else None,
            parts=tuple(parts),
            notes=tuple(notes),
        )

    @staticmethod
    def _has(conn: Any, service: str) -> bool:
        """Whether the catalog has an endpoint for ``service`` (network, image); doubt counts as yes."""
        from keystoneauth1 import exceptions as ksa

        try:
            conn.session.get_endpoint(
                service_type=service,
                interface=conn.config.get_interface(service),
                region_name=conn.config.get_region_name(service),
            )
        except ksa.EndpointNotFound:
            return False
        except Exception:  # noqa: BLE001 - judged by the calls that follow
            pass
        return True

    # ------------------------------------------------------------------ doctor
    def doctor_sync(self) -> list[DoctorCheck]:
        """One check per service of the catalog (keystone, compute, placement, network, image), each on its own."""
        name = self.name
        started = time.perf_counter()
        deadline = time.monotonic() + self.timeout_s * 2.5  # the hub bounds doctor at three timeouts
        try:
            conn = self._call("keystone", self.connection)
            self._wait("keystone", self._submit("keystone", conn.session.get_token), deadline)
        except SourceError as exc:
            return [DoctorCheck(name, "keystone", False, str(exc), exc.hint or "check auth_url and the credentials")]
        ms = (time.perf_counter() - started) * 1000
        checks = [DoctorCheck(name, "keystone", True, f"token for cloud {self.cloud or '(env)'} ({ms:.0f} ms)")]
        reads = {
            "compute": ("nova", lambda: list(conn.compute.services())),
            "placement": ("placement", lambda: read_placement(conn, self._call)),
            "network": ("neutron", lambda: read_neutron(conn, self._call)),
            "image": ("glance", lambda: read_images(conn, self._call)),
        }
        futures = {
            svc: self._submit(label, fn)
            for svc, (label, fn) in reads.items()
            if svc == "compute" or self._has(conn, svc)
        }
        for service in reads:
            if service not in futures:
                checks.append(DoctorCheck(name, service, True, f"no {service} endpoint in the catalog"))
                continue
            try:
                value = self._wait(reads[service][0], futures[service], deadline)
            except SourceError as exc:
                checks.append(
                    DoctorCheck(
                        name,
                        service,
                        False,
                        str(exc),
                        exc.hint
                        or (
                            f"check the {service} endpoint (openstack endpoint list --service {service}) and that it answers"
                        ),
                    )
                )
                continue
            checks.append(_doctor_check(name, service, value))
        return checks


def _doctor_check(name: str, service: str, value: Any) -> DoctorCheck:
    """What one service's read says, as a line of ``sovtui doctor``."""
    if service == "compute":
        hosts = [s for s in value if s.binary == "nova-compute"]
        down = sorted(s.host for s in hosts if s.state != "up")
        detail = f"{len(hosts)} compute hosts" + (f"; down: {', '.join(down)}" if down else "")
        return DoctorCheck(name, service, not down, detail, "check nova-compute on those hosts" if down else "")
    if service == "placement":
        gpus = {}
        for res in value.values():
            for rc in GPU_RESOURCE_CLASSES:
                if rc in res["inventory"]:
                    gpus[rc] = gpus.get(rc, 0) + res["inventory"][rc]
        detail = f"{len(value)} root resource providers" + (
            "; " + ", ".join(f"{rc} {n}" for rc, n in sorted(gpus.items())) if gpus else "; no GPU inventory"
        )
        return DoctorCheck(name, service, True, detail)
    if service == "network":
        agents, networks = value
        dead = [f"{a.binary or a.agent_type}@{a.host}" for a in agents if not a.alive]
        detail = f"{len(agents)} agents, {len(networks)} networks" + (f"; dead: {', '.join(dead)}" if dead else "")
        return DoctorCheck(
            name, service, not dead, detail, "restart those agents (neutron agent-list shows them XXX)" if dead else ""
        )
    active = sum(1 for i in value if i.status == "active")
    return DoctorCheck(name, service, True, f"{active} active images of {len(value)}")


def _bare(error: str, part: str) -> str:
    """A part's error without the part's own name in front (the status line names the part already)."""
    for prefix in (f"{part}: ", f"{part} "):
        if error.startswith(prefix):
            return error[len(prefix) :]
    return error


def _not_json(exc: Exception) -> bool:
    """Keystone's token answer was not JSON at all (keystoneauth says only "invalid response")."""
    from keystoneauth1 import exceptions as ksa

    if not isinstance(exc, ksa.InvalidResponse) or getattr(exc, "response", None) is None:
        return False
    try:
        exc.response.json()
    except ValueError:
        return True
    return False
