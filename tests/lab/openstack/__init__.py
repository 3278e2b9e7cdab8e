"""Provides the lab's real OpenStack: Keystone, Placement, Nova (fake virt driver), Glance and Neutron on loopback.

The OpenStack services run from a venv of their own (never the project's), built on first use with
pip and reused between runs on the same machine: ``$SOVTUI_OPENSTACK_VENV``, else
``$XDG_CACHE_HOME/sovtui-lab/openstack-venv``, else ``/var/tmp/sovtui-openstack-venv``.
RabbitMQ comes from the Debian package and is started by hand with its own ports and dirs.
Every database is sqlite.

Each WSGI app (Keystone, Placement, the Nova API, the Glance API, the Neutron API) is served by
gunicorn through a tiny launcher that clears ``sys.argv`` first (oslo.config parses it). Nova runs
conductor, scheduler and one ``nova-compute`` per fake hypervisor, each with its own ``host =``, on
the fake virt driver; servers boot ACTIVE on them with ``networks="none"`` from the tiny raw image
the lab uploads to Glance (file store). The computes reach each other over RabbitMQ: servers live- and
cold-migrate between them (the fake driver moves nothing). Placement and Nova's conductor, scheduler
and API begin every sqlite transaction ``IMMEDIATE`` (a writer waits for the lock instead of failing).
Neutron is ML2 (openvswitch mechanism driver, flat / VLAN /
VXLAN type drivers: networks live in its database only) with ``neutron-rpc-server`` and one
``neutron-metadata-agent`` per network host: real agents that report their state over RabbitMQ
every ``REPORT_INTERVAL_S`` (dead after ``AGENT_DOWN_TIME_S``) and touch neither interfaces nor iptables. Neutron's
tables come from its models (its migrations do not run on sqlite), then ``stamp heads``.

Nova calls Glance and Neutron with its own token as a service token: the admin user (every
service's user here) holds the ``service`` role. Every sqlite file is in WAL mode, and Neutron (two
processes writing one file) retries a locked database as a deadlock.

Measured on this 2-core machine while other work ran on it (load 2-4): a warm start takes 60-80 s
(databases ~35 s, services up and seeded ~30 s); building the venv adds ~95 s with pip's cache warm
and ~125 s from PyPI with no cache (cold total ~190 s); stopping takes ~11 s. The lab holds ~2.0 GB RSS.
"""

from .cloud import OpenStackLab
from .fixtures import booted_server
from .settings import (
    ADMIN_PASSWORD,
    AGENT_DOWN_TIME_S,
    IMAGE_NAME,
    NETWORK_NAME,
    REGION,
    REPORT_INTERVAL_S,
    REQUIREMENTS,
    VGPU_TOTAL,
)
from .start import start_openstack

__all__ = [
    "ADMIN_PASSWORD",
    "AGENT_DOWN_TIME_S",
    "IMAGE_NAME",
    "NETWORK_NAME",
    "REGION",
    "REPORT_INTERVAL_S",
    "REQUIREMENTS",
    "VGPU_TOTAL",
    "OpenStackLab",
    "booted_server",
    "start_openstack",
]
