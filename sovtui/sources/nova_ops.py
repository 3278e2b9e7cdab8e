"""Provides the Nova operations a host drain needs: servers on a host, service disable/enable, live and cold migration.

:class:`NovaOps` is mixed into :class:`~.openstack.OpenStackSource`: every method is sync (the openstacksdk
client is), runs through the source's ``_call`` (typed errors, ``api_timeout`` on every request) and is
meant to be run in a thread by the operations layer. When Nova refuses an operation (409 conflict, 400
bad request: "not live-migratable", "No valid host was found"), :class:`NovaRefused` carries Nova's own
message, shortened.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from ..model.nova import gpu_count, gpu_kind, parse_microversion
from ..model.workload import VmRef
from .base import BadAnswer, SourceError

#: at most this many servers are read for one host (a size bound; no host runs more)
MAX_SERVERS_PER_HOST = 5000
#: Nova's limit for a service's disabled reason (services.disabled_reason is a String(255))
MAX_REASON = 255
#: how much of Nova's refusal is kept
MAX_REFUSAL = 300
#: a server's newest actions looked through for the one asked about
ACTIONS_SCANNED = 10


class NovaRefused(SourceError):
    """Nova answered and refused the operation (HTTP 400 or 409); ``str()`` is Nova's own message."""

    hint = "Nova's own reason; see `openstack server event list` for the server"

    def __init__(self, message: str, *, status: int | None = None, hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status


class NovaOps:
    """The drain operations of the OpenStack source (mixed into it: uses its ``connection`` and ``_call``)."""

    connection: Callable[[], Any]
    _call: Callable[[str, Callable[[], Any]], Any]
    cloud: str | None

    # ------------------------------------------------------------------ reads
    def servers_on(self, host: str) -> tuple[VmRef, ...]:
        """Every server (all projects) whose compute host is ``host``, flavor and GPU kind included.

        One request (for up to Nova's page size, 1000 by default): from microversion 2.47 each server
        embeds its flavor with its extra specs. Before 2.47 each distinct flavor is read once more.
        """
        conn = self._connected()

        def listing() -> list[Any]:
            # ``compute_host`` is the SDK's name for Nova's ``host`` filter (``host=`` is dropped silently).
            # No ``limit``: with one the SDK always asks for a further page; without, Nova pages at its
            # ``[api] max_limit`` (1000) and links the next page only when there is one.
            found = conn.compute.servers(details=True, all_projects=True, compute_host=host)
            return list(itertools.islice(found, MAX_SERVERS_PER_HOST + 1))

        servers = self._refusing("compute", listing)
        if len(servers) > MAX_SERVERS_PER_HOST:
            raise BadAnswer(f"compute: more than {MAX_SERVERS_PER_HOST} servers on {host}")
        flavors: dict[str, dict] = {}
        refs = [self._vm_ref(conn, s, flavors) for s in servers]
        return tuple(sorted(refs, key=lambda v: (v.name, v.id)))

    def server(self, server_id: str) -> VmRef | None:
        """The server's current state, or None once it is deleted."""
        from openstack import exceptions as sdk

        conn = self._connected()

        def get() -> Any:
            try:
                return conn.compute.get_server(server_id)
            except sdk.NotFoundException:
                return None

        found = self._refusing("compute", get)
        return None if found is None else self._vm_ref(conn, found, {})

    def compute_version(self) -> str:
        """The compute API's maximum microversion ("2.96"), from its version document (``GET /v2.1/``)."""
        conn = self._connected()

        def version_document() -> dict:
            return conn.compute.get("/", raise_exc=True).json()

        doc = self._call("compute", version_document)
        version = doc.get("version") if isinstance(doc, dict) else None
        text = str((version or {}).get("version") or "") if isinstance(version, dict) else ""
        if not text:
            raise BadAnswer("compute: the version document names no microversion")
        return text

    def identity(self) -> str:
        """ "user U in project P (cloud C)": the names the cloud's config gives (no secret, no request)."""
        cloud = self.cloud or "OS_* environment"
        try:
            conn = self.connection()
            auth = dict(conn.config.config.get("auth") or {})
        except SourceError:
            return f"user ? in project ? (cloud {cloud})"
        user = auth.get("username") or auth.get("user_id") or "?"
        project = auth.get("project_name") or auth.get("project_id") or "?"
        if auth.get("user_domain_name") not in (None, "", "Default"):
            user = f"{auth['user_domain_name']}/{user}"
        return f"user {user} in project {project} (cloud {cloud})"

    # ------------------------------------------------------------------ service
    def disable_compute(self, host: str, reason: str) -> None:
        """Disable the ``nova-compute`` service of ``host`` with ``reason`` (2.53+: by its id)."""
        conn = self._connected()
        service = self._compute_service(conn, host)
        text = " ".join(reason.split())[:MAX_REASON]
        self._refusing(
            "compute",
            lambda: conn.compute.disable_service(
                service, host=host, binary="nova-compute", disabled_reason=text or None
            ),
        )

    def enable_compute(self, host: str) -> None:
        """Enable the ``nova-compute`` service of ``host`` again (its disabled reason is cleared)."""
        conn = self._connected()
        service = self._compute_service(conn, host)
        self._refusing("compute", lambda: conn.compute.enable_service(service, host=host, binary="nova-compute"))

    # ------------------------------------------------------------------ moves
    def live_migrate(self, server_id: str, *, target_host: str | None = None) -> None:
        """Ask Nova to live-migrate the server (block migration "auto"; the scheduler checks ``target_host``)."""
        conn = self._connected()
        self._need_microversion(conn, "2.25", 'live migration with block_migration "auto"')
        self._refusing(
            "compute",
            lambda: conn.compute.live_migrate_server(server_id, host=target_host, force=False, block_migration="auto"),
        )

    def cold_migrate(self, server_id: str, *, target_host: str | None = None) -> None:
        """Ask Nova to cold-migrate the server; it ends in VERIFY_RESIZE, for :meth:`confirm_resize`."""
        conn = self._connected()
        if target_host:
            self._need_microversion(conn, "2.56", "cold migration to a chosen host")
        self._refusing("compute", lambda: conn.compute.migrate_server(server_id, host=target_host))

    def confirm_resize(self, server_id: str) -> None:
        """Confirm a cold migration (VERIFY_RESIZE -> ACTIVE on the new host; the old host is cleaned up)."""
        conn = self._connected()
        self._refusing("compute", lambda: conn.compute.confirm_server_resize(server_id))

    def last_action_error(self, server_id: str, action: str | None = None) -> str | None:
        """Nova's words for why the server's newest action failed (or the newest ``action``: "migrate",
        "live-migration"), None when it did not fail or is still running.

        A migration Nova accepted (202) can still fail in the conductor or on a compute host: the server
        goes back to ACTIVE where it was, and only its action's events say why ("No valid host was found.
        No valid host found for cold migrate"; event details need microversion 2.84, else the event name).
        """
        conn = self._connected()

        def newest() -> Any:
            for item in itertools.islice(conn.compute.server_actions(server_id), ACTIONS_SCANNED):
                if action is None or item.action == action:
                    return item
            return None

        found = self._refusing("compute", newest)
        if found is None or not found.message:
            return None
        detail = self._refusing("compute", lambda: conn.compute.get_server_action(found.request_id, server_id))
        for event in getattr(detail, "events", None) or ():
            event = _as_dict(event)
            if str(event.get("result") or "").lower() == "error":
                words = event.get("details") or f"{event.get('event') or found.action}: {event.get('result')}"
                return _bounded(str(words))
        return _bounded(f"{found.action}: {found.message}")

    # ------------------------------------------------------------------ helpers
    def _connected(self) -> Any:
        conn = self._call("keystone", self.connection)
        return conn

    def _need_microversion(self, conn: Any, version: str, what: str) -> None:
        """Raise unless the compute API serves ``version``; a failed version discovery is said as such.

        The SDK discovers the microversions once per connection and, when that fails, silently falls back
        to the oldest request forms (and then refuses "auto" itself): the version document is read here
        instead, so that a silent or unreachable endpoint is a Timeout or Unreachable.
        """
        from openstack import utils

        if self._call("compute", lambda: utils.supports_microversion(conn.compute, version)):
            return
        have = self.compute_version()
        if (parse_microversion(have) or (0, 0)) >= (parse_microversion(version) or (0, 0)):
            raise BadAnswer(
                f"compute: the microversion discovery failed (the API now says {have})",
                hint="a passing failure of the compute endpoint: try again",
            )
        raise BadAnswer(
            f"compute: {what} needs microversion {version}; this cloud serves up to {have}",
            hint="an older Nova: move the server by hand",
        )

    def _compute_service(self, conn: Any, host: str) -> Any:
        services = self._refusing(
            "compute", lambda: list(itertools.islice(conn.compute.services(binary="nova-compute", host=host), 10))
        )
        services = [s for s in services if s.host == host and s.binary == "nova-compute"]
        if not services:
            raise SourceError(
                f"compute: no nova-compute service on host {host}",
                hint="`openstack compute service list` names the hosts",
            )
        return services[0]

    def _refusing(self, service: str, fn: Callable[[], Any]) -> Any:
        """``_call``, except that Nova's 400/409 answers become :class:`NovaRefused` with Nova's message."""
        from openstack import exceptions as sdk

        def call() -> Any:
            try:
                return fn()
            except (sdk.BadRequestException, sdk.ConflictException) as exc:
                raise NovaRefused(_nova_message(exc), status=getattr(exc, "status_code", None)) from exc

        return self._call(service, call)

    def _vm_ref(self, conn: Any, server: Any, flavors: dict[str, dict]) -> VmRef:
        flavor = _as_dict(getattr(server, "flavor", None))
        if not flavor.get("original_name") and flavor.get("id"):
            # before microversion 2.47 a server names only its flavor's id
            if flavor["id"] not in flavors:
                fl = self._call("compute", lambda: conn.compute.get_flavor(flavor["id"], get_extra_specs=True))
                flavors[flavor["id"]] = {
                    "original_name": fl.name,
                    "vcpus": fl.vcpus,
                    "ram": fl.ram,
                    "extra_specs": dict(fl.extra_specs or {}),
                }
            flavor = flavors[flavor["id"]]
        return VmRef(
            id=server.id,
            name=server.name or server.id,
            status=server.status or "",
            host=getattr(server, "compute_host", None) or "",
            task_state=getattr(server, "task_state", None) or "",
            project=getattr(server, "project_id", None) or "",
            flavor=str(flavor.get("original_name") or flavor.get("name") or ""),
            vcpus=_int(flavor.get("vcpus")),
            ram_mb=_int(flavor.get("ram")),
            gpu=gpu_kind(flavor.get("extra_specs") or {}),
            gpus=gpu_count(flavor.get("extra_specs") or {}),
        )


def _nova_message(exc: Exception) -> str:
    """Nova's own words from an SDK HTTP error (its body's ``message``), on one line, bounded."""
    text = getattr(exc, "details", None) or ""
    if not text:
        text = str(exc).rsplit(", ", 1)[-1] if ", " in str(exc) else str(exc)
    return _bounded(str(text))


def _bounded(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REFUSAL else text[: MAX_REFUSAL - 1] + "…"


def _as_dict(value: Any) -> dict:
    if value is None:
        return {}
    if isinstance(value, dict):
        return value
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return dict(to_dict(computed=False))
        except TypeError:
            return dict(to_dict())
    return {}


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
