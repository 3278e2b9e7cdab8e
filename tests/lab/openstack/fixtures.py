"""Provides the lab cloud's contents: the service catalog, flavors, a vGPU provider, the image, a network, and servers."""

from __future__ import annotations

from contextlib import contextmanager

from .cloud import OpenStackLab
from .settings import COMPUTE_HOSTS, FLAVORS, IMAGE_DATA, IMAGE_NAME, NETWORK_NAME, REGION, VGPU_TOTAL


def register_catalog(lab: OpenStackLab) -> None:
    """The services' endpoints, and the ``service`` role for admin (the services' own user).

    Nova calls Neutron and Glance with the user's token plus its own as a service token, which
    keystonemiddleware accepts only from a user with the ``service`` role.
    """
    conn = lab.connect()
    try:
        role = conn.identity.find_role("service") or conn.identity.create_role(name="service")
        admin = conn.identity.find_user("admin", ignore_missing=False)
        project = conn.identity.find_project("admin", ignore_missing=False)
        conn.identity.assign_project_role_to_user(project, admin, role)
        for name, kind, url in (
            ("placement", "placement", lab.placement_url),
            ("nova", "compute", lab.compute_url),
            ("glance", "image", lab.image_url),
            ("neutron", "network", lab.network_url),
        ):
            service = conn.identity.create_service(name=name, type=kind)
            for interface in ("public", "internal", "admin"):
                conn.identity.create_endpoint(service_id=service.id, interface=interface, url=url, region_id=REGION)
    finally:
        conn.close()


def seed(lab: OpenStackLab, conn) -> None:
    """Flavors with GPU extra specs, a vGPU child resource provider under the first compute node, the image, a network."""
    for name, (vcpus, ram, specs) in FLAVORS.items():
        flavor = conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=1)
        if specs:
            conn.compute.create_flavor_extra_specs(flavor, specs)
    root = next(rp for rp in conn.placement.resource_providers() if rp.name == COMPUTE_HOSTS[0])
    child = conn.placement.create_resource_provider(
        name=f"{COMPUTE_HOSTS[0]}_pci_0000_81_00_0", parent_provider_id=root.id
    )
    conn.placement.create_resource_provider_inventory(child, resource_class="VGPU", total=VGPU_TOTAL)
    lab.vgpu_provider = child.id
    image = conn.image.create_image(
        name=IMAGE_NAME,
        data=IMAGE_DATA,
        disk_format="raw",
        container_format="bare",
        allow_duplicates=True,
        wait=True,
        timeout=60,
    )
    lab.image_id = image.id
    net = conn.network.create_network(
        name=NETWORK_NAME, provider_network_type="flat", provider_physical_network="physnet1"
    )
    lab.network_id = net.id


@contextmanager
def booted_server(admin, lab, flavor: str, *, host: str | None = None, prefix: str = "lab"):
    """A server booted ACTIVE from the lab's image (no network), on ``host`` if given; deleted (and gone) after."""
    import uuid

    name = f"{prefix}-{flavor.replace('.', '-')}-{uuid.uuid4().hex[:6]}"
    server = admin.compute.create_server(
        name=name,
        image_id=lab.image_id,
        flavor_id=admin.compute.find_flavor(flavor, ignore_missing=False).id,
        networks="none",
        **({"availability_zone": f"nova:{host}"} if host else {}),
    )
    try:
        server = admin.compute.wait_for_server(server, status="ACTIVE", wait=120, interval=0.5)
        yield server
    finally:
        admin.compute.delete_server(server, ignore_missing=True)
        admin.compute.wait_for_delete(server, wait=120, interval=0.5)
