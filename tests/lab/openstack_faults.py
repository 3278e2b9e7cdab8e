"""Provides OpenStack clouds that lie for tests: a FaultProxy in front of each lab service, and a region whose catalog points at them.

``service_proxies(lab)`` puts one :class:`~tests.lab.faultproxy.FaultProxy` in front of each real service
(keystone, nova, placement, neutron, glance). ``write_clouds_yaml`` writes a cloud that reaches them: through
``*_endpoint_override`` (and ``auth_url`` for keystone) in the lab's region, or, with ``region=``, through the
catalog itself. ``catalog_region(lab, name, urls)`` registers that region in the lab's Keystone (additive: the
lab's ``RegionOne`` is untouched) and removes it afterwards.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from .faultproxy import FaultProxy
from .openstack.settings import ADMIN_PASSWORD, REGION

#: part -> (service type in the catalog, the path under the endpoint's root the lab registers)
SERVICES = {
    "keystone": ("identity", "/v3"),
    "nova": ("compute", "/v2.1"),
    "placement": ("placement", ""),
    "neutron": ("network", ""),
    "glance": ("image", ""),
}


def _real_url(lab, part: str) -> str:
    return {
        "keystone": lab.keystone_url,
        "nova": lab.compute_url,
        "placement": lab.placement_url,
        "neutron": lab.network_url,
        "glance": lab.image_url,
    }[part]


@contextmanager
def service_proxies(lab) -> Iterator[dict[str, FaultProxy]]:
    """part -> a FaultProxy in front of the lab's real service."""
    with ExitStack() as stack:
        out = {}
        for part in SERVICES:
            url = urlsplit(_real_url(lab, part))
            out[part] = stack.enter_context(FaultProxy(url.hostname or "127.0.0.1", url.port or 80))
        yield out


def proxy_url(proxies: dict[str, FaultProxy], part: str) -> str:
    return f"http://{proxies[part].url_host}{SERVICES[part][1]}"


def write_clouds_yaml(
    path: Path, lab, proxies: dict[str, FaultProxy], *, cloud: str = "faults", region: str | None = None
) -> Path:
    """A cloud whose every service goes through ``proxies``: by override in the lab's region, or by ``region``'s catalog."""
    lines = ""
    if region is None:
        lines = "".join(
            f"    {SERVICES[p][0]}_endpoint_override: {proxy_url(proxies, p)}\n" for p in SERVICES if p != "keystone"
        )
    path.write_text(
        textwrap.dedent(f"""
        clouds:
          {cloud}:
            auth:
              auth_url: {proxy_url(proxies, "keystone")}
              username: admin
              password: {ADMIN_PASSWORD}
              project_name: admin
              user_domain_name: Default
              project_domain_name: Default
            region_name: {region or REGION}
            interface: public
            identity_api_version: 3
        """)
        + lines
    )
    return path


@contextmanager
def catalog_region(lab, name: str, urls: dict[str, str]) -> Iterator[str]:
    """A region ``name`` in the lab's Keystone whose public endpoints (part -> URL) are ``urls``; removed after."""
    conn = lab.connect()
    created = []
    region = None
    try:
        region = conn.identity.find_region(name) or conn.identity.create_region(id=name, description="test catalog")
        services = {s.type: s for s in conn.identity.services()}
        for part, url in urls.items():
            service = services[SERVICES[part][0]]
            created.append(
                conn.identity.create_endpoint(service_id=service.id, interface="public", url=url, region_id=name)
            )
        yield name
    finally:
        for endpoint in created:
            conn.identity.delete_endpoint(endpoint, ignore_missing=True)
        if region is not None:
            conn.identity.delete_region(region, ignore_missing=True)
        conn.close()
