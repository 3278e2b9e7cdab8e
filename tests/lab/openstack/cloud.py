"""Provides the running lab cloud: its endpoints, hosts, seeded objects and daemons, and how one WSGI app is served."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..procs import Daemon, free_port, start_daemon, wait_http
from .settings import NETWORK_HOSTS


@dataclass
class OpenStackLab:
    """The running lab cloud: its clouds.yaml (cloud ``lab``), endpoints, hosts, seeded objects and daemons."""

    root: Path
    venv: Path
    clouds_yaml: Path
    cloud: str
    keystone_url: str
    compute_url: str
    placement_url: str
    hosts: tuple[str, ...]
    flavors: dict
    image_url: str = ""
    network_url: str = ""
    network_hosts: tuple[str, ...] = NETWORK_HOSTS
    vgpu_provider: str = ""
    image_id: str = ""
    network_id: str = ""
    daemons: dict[str, Daemon] = field(default_factory=dict)
    epmd_port: int = 0
    started_in_s: float = 0.0
    #: the environment that points a Keystone at the lab's config (for another one on the same database)
    keystone_env: dict = field(default_factory=dict, repr=False)

    def connect(self, **kwargs):
        """An admin openstacksdk connection to the lab cloud."""
        from openstack import config, connection

        loader = config.OpenStackConfig(config_files=[str(self.clouds_yaml)], load_envvars=False)
        return connection.Connection(config=loader.get_one(cloud=self.cloud, api_timeout=20, **kwargs))

    def start_extra_keystone(self, name: str) -> tuple[Daemon, str]:
        """Another Keystone on the same database (for tests that stop it); returns it and its /v3 URL."""
        port = free_port()
        daemon = serve(self, f"keystone-{name}", "keystone.wsgi.api:application", port, self.keystone_env)
        url = f"http://127.0.0.1:{port}/v3"
        wait_http(url, daemon=daemon, timeout_s=60)
        self.daemons[daemon.name] = daemon
        return daemon, url

    def agent_daemon(self, host: str) -> Daemon:
        """The neutron-metadata-agent process of network host ``host`` (tests stop and restart it)."""
        return self.daemons[f"neutron-metadata-agent-{host}"]

    def rss_mb(self) -> float:
        """Resident memory of every lab process (and its children), in MiB."""
        total = 0
        for daemon in self.daemons.values():
            if daemon.alive():
                total += _tree_rss_kb(daemon.pid)
        return total / 1024

    def close(self) -> None:
        """Stop the agents and computes, then the services, then RabbitMQ; each group's members side by side."""
        first = ("nova-compute", "neutron-metadata-agent")
        groups = (
            [d for n, d in self.daemons.items() if n.startswith(first)],
            [d for n, d in self.daemons.items() if not n.startswith(first) and n != "rabbitmq"],
        )
        with ThreadPoolExecutor(8) as pool:
            for group in groups:
                list(pool.map(lambda d: d.stop(), group))
        if "rabbitmq" in self.daemons:
            self.daemons["rabbitmq"].stop(grace_s=15)
        if self.epmd_port:
            epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            subprocess.run(
                [epmd, "-port", str(self.epmd_port), "-kill"],
                capture_output=True,
                timeout=10,
                env={**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)},
            )


def _tree_rss_kb(pid: int) -> int:
    total = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return total
    return total + sum(_tree_rss_kb(int(c)) for c in children)


def serve(lab: OpenStackLab, name: str, app: str, port: int, env: dict) -> Daemon:
    return start_daemon(
        name,
        [str(lab.venv / "bin" / "python"), str(lab.root / "launcher.py")],
        lab.root / "logs",
        env={**env, "LAB_WSGI_APP": app, "LAB_WSGI_BIND": f"127.0.0.1:{port}"},
    )
