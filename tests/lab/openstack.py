"""Provides the lab's real OpenStack: Keystone, Placement and Nova (fake virt driver) on loopback, sqlite, RabbitMQ.

The OpenStack services run from a venv of their own (never the project's), built on first use with
pip and reused between runs on the same machine: ``$SOVTUI_OPENSTACK_VENV``, else
``$XDG_CACHE_HOME/sovtui-lab/openstack-venv``, else ``/var/tmp/sovtui-openstack-venv``.
RabbitMQ comes from the Debian package and is started by hand with its own ports and dirs.

Each WSGI app (Keystone, Placement, the Nova API) is served by gunicorn through a tiny launcher
that clears ``sys.argv`` first (oslo.config parses it). Nova runs conductor, scheduler and one
``nova-compute`` per fake hypervisor, each with its own ``host =``, on the fake virt driver.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
import shutil
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .procs import Daemon, LabError, free_port, require_binary, start_daemon, wait_http, wait_port, wait_until

COMPONENT = "openstack"
REQUIREMENTS = ("keystone==30.0.0", "openstack-placement==16.0.0", "nova==34.0.0", "gunicorn")
ADMIN_PASSWORD = "lab-admin-secret"
REGION = "RegionOne"
#: the fake hypervisors: one nova-compute process (``host =``) each
COMPUTE_HOSTS = ("lab-gpu-1", "lab-gpu-2")
#: flavors the lab creates: name -> (vcpus, ram MiB, extra specs)
FLAVORS = {
    "lab.small": (1, 512, {}),
    "lab.gpu.a100": (8, 16384, {"pci_passthrough:alias": "a100:1"}),
    "lab.vgpu": (4, 8192, {"resources:VGPU": "1"}),
}
#: the vGPU inventory the lab puts under the first compute node (a child resource provider)
VGPU_TOTAL = 4

LAUNCHER = textwrap.dedent(
    '''
    """Serves one WSGI app with gunicorn after clearing argv (oslo.config parses sys.argv)."""
    import importlib
    import os
    import sys

    from gunicorn.app.base import BaseApplication

    target = os.environ["LAB_WSGI_APP"]
    bind = os.environ["LAB_WSGI_BIND"]
    sys.argv = sys.argv[:1]


    class App(BaseApplication):
        def load_config(self):
            self.cfg.set("bind", bind)
            self.cfg.set("workers", 1)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", 4)
            self.cfg.set("timeout", 120)
            self.cfg.set("accesslog", "-")

        def load(self):
            module, _, attr = target.partition(":")
            return getattr(importlib.import_module(module), attr or "application")


    App().run()
    '''
)


def venv_dir() -> Path:
    if os.environ.get("SOVTUI_OPENSTACK_VENV"):
        return Path(os.environ["SOVTUI_OPENSTACK_VENV"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "sovtui-lab" / "openstack-venv"
    return Path("/var/tmp/sovtui-openstack-venv")


def ensure_venv(log_dir: Path) -> Path:
    """The OpenStack venv, built with pip when missing or incomplete (serialised by a file lock)."""
    venv = venv_dir()
    stamp = venv / ".sovtui-lab-requirements"
    want = "\n".join(REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.is_file() and stamp.read_text() == want and (venv / "bin" / "nova-compute").exists():
            return venv
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / "pip.log"
        shutil.rmtree(venv, ignore_errors=True)
        with open(log, "wb") as out:
            steps = (
                [getattr(sys, "_base_executable", None) or sys.executable, "-m", "venv", str(venv)],
                [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *REQUIREMENTS],
            )
            for argv in steps:
                rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=900).returncode
                if rc != 0:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    raise LabError(f"building the OpenStack venv failed: {' '.join(argv[:3])} exited {rc}\n{tail}")
        stamp.write_text(want)
        return venv


@dataclass
class OpenStackLab:
    """The running lab cloud: its clouds.yaml (cloud ``lab``), endpoints, hosts and daemons."""

    root: Path
    venv: Path
    clouds_yaml: Path
    cloud: str
    keystone_url: str
    compute_url: str
    placement_url: str
    hosts: tuple[str, ...]
    flavors: dict
    vgpu_provider: str = ""
    daemons: dict[str, Daemon] = field(default_factory=dict)
    epmd_port: int = 0
    started_in_s: float = 0.0
    _keystone_env: dict = field(default_factory=dict, repr=False)

    def connect(self, **kwargs):
        """An admin openstacksdk connection to the lab cloud."""
        from openstack import config, connection

        loader = config.OpenStackConfig(config_files=[str(self.clouds_yaml)], load_envvars=False)
        return connection.Connection(config=loader.get_one(cloud=self.cloud, api_timeout=20, **kwargs))

    def start_extra_keystone(self, name: str) -> tuple[Daemon, str]:
        """Another Keystone on the same database (for tests that stop it); returns it and its /v3 URL."""
        port = free_port()
        daemon = _serve(self, f"keystone-{name}", "keystone.wsgi.api:application", port, self._keystone_env)
        url = f"http://127.0.0.1:{port}/v3"
        wait_http(url, daemon=daemon, timeout_s=60)
        self.daemons[daemon.name] = daemon
        return daemon, url

    def rss_mb(self) -> float:
        """Resident memory of every lab process (and its children), in MiB."""
        total = 0
        for daemon in self.daemons.values():
            if daemon.alive():
                total += _tree_rss_kb(daemon.pid)
        return total / 1024

    def close(self) -> None:
        order = [n for n in self.daemons if n.startswith("nova-compute")] + [
            n for n in self.daemons if not n.startswith("nova-compute") and n != "rabbitmq"]
        for name in order:
            self.daemons[name].stop()
        if "rabbitmq" in self.daemons:
            self.daemons["rabbitmq"].stop(grace_s=15)
        if self.epmd_port:
            epmd = shutil.which("epmd") or "/usr/lib/erlang/bin/epmd"
            subprocess.run([epmd, "-port", str(self.epmd_port), "-kill"], capture_output=True, timeout=10,
                           env={**os.environ, "ERL_EPMD_PORT": str(self.epmd_port)})


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


def _serve(lab: OpenStackLab, name: str, app: str, port: int, env: dict) -> Daemon:
    return start_daemon(
        name,
        [str(lab.venv / "bin" / "python"), str(lab.root / "launcher.py")],
        lab.root / "logs",
        env={**env, "LAB_WSGI_APP": app, "LAB_WSGI_BIND": f"127.0.0.1:{port}"},
    )


def _run(venv: Path, argv: list[str], log_dir: Path, what: str, env: dict | None = None, timeout: float = 300) -> None:
    log = log_dir / "manage.log"
    with open(log, "ab") as out:
        out.write(f"\n=== {what}: {' '.join(argv)}\n".encode())
        out.flush()
        exe = argv[0] if os.path.isabs(argv[0]) else str(venv / "bin" / argv[0])
        rc = subprocess.run([exe, *argv[1:]], stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                            env={**os.environ, **(env or {})}).returncode
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise LabError(f"openstack lab: {what} failed (exit {rc})\n--- {log} (tail) ---\n{tail}")


def _authtoken(keystone: str) -> str:
    return textwrap.dedent(f"""
        [keystone_authtoken]
        www_authenticate_uri = {keystone}
        auth_url = {keystone}
        auth_type = password
        username = admin
        password = {ADMIN_PASSWORD}
        project_name = admin
        user_domain_name = Default
        project_domain_name = Default
        region_name = {REGION}
        token_cache_time = -1
        """)


def start_openstack(workdir: Path) -> OpenStackLab:
    """Build (or reuse) the venv, then start RabbitMQ, Keystone, Placement and Nova; ~45 s warm."""
    t0 = time.monotonic()
    rabbit_bin = require_binary("rabbitmq-server", COMPONENT, candidates=("/usr/lib/rabbitmq/bin/rabbitmq-server",))
    rabbit_bin = "/usr/lib/rabbitmq/bin/rabbitmq-server" if os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server") else rabbit_bin
    workdir = Path(workdir)
    logs, data, etc = workdir / "logs", workdir / "data", workdir / "etc"
    for d in (logs, data, etc):
        d.mkdir(parents=True, exist_ok=True)

    # RabbitMQ starts while pip (if needed) builds the venv
    lab_home = workdir / "home"
    lab_home.mkdir(exist_ok=True)
    amqp, dist, epmd = free_port(), free_port(), free_port()
    rabbit_env = {
        "HOME": str(lab_home),
        "RABBITMQ_NODENAME": "sovtui-lab@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(amqp),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_MNESIA_BASE": str(data / "rabbitmq-mnesia"),
        "RABBITMQ_LOG_BASE": str(logs / "rabbitmq"),
        "RABBITMQ_CONFIG_FILE": str(etc / "rabbitmq"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(etc / "rabbitmq-enabled-plugins"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_PID_FILE": str(data / "rabbitmq.pid"),
    }
    (etc / "rabbitmq.conf").write_text("loopback_users = none\n")
    (etc / "rabbitmq-enabled-plugins").write_text("[].\n")
    daemons: dict[str, Daemon] = {}
    lab: OpenStackLab | None = None
    try:
        daemons["rabbitmq"] = start_daemon("rabbitmq", [rabbit_bin], logs, env=rabbit_env)
        venv = ensure_venv(logs)  # RabbitMQ starts meanwhile
        wait_port("127.0.0.1", amqp, daemon=daemons["rabbitmq"], timeout_s=60)

        (workdir / "launcher.py").write_text(LAUNCHER)
        k_port, p_port, n_port = free_port(), free_port(), free_port()
        keystone = f"http://127.0.0.1:{k_port}/v3"
        placement = f"http://127.0.0.1:{p_port}"
        compute = f"http://127.0.0.1:{n_port}/v2.1"
        transport = f"rabbit://guest:guest@127.0.0.1:{amqp}/"
        user, group = pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name

        # ---- Keystone
        kdir = etc / "keystone"
        kdir.mkdir(exist_ok=True)
        (kdir / "keystone.conf").write_text(textwrap.dedent(f"""
            [database]
            connection = sqlite:///{data}/keystone.db
            [token]
            provider = fernet
            expiration = 3600
            [fernet_tokens]
            key_repository = {data}/fernet-keys
            [fernet_receipts]
            key_repository = {data}/fernet-keys
            [credential]
            key_repository = {data}/credential-keys
            """))
        kconf = ["--config-file", str(kdir / "keystone.conf")]
        kenv = {"OS_KEYSTONE_CONFIG_DIR": str(kdir)}
        _run(venv, ["keystone-manage", *kconf, "db_sync"], logs, "keystone db_sync")
        _run(venv, ["keystone-manage", *kconf, "fernet_setup", "--keystone-user", user, "--keystone-group", group], logs, "fernet_setup")
        _run(venv, ["keystone-manage", *kconf, "credential_setup", "--keystone-user", user, "--keystone-group", group], logs, "credential_setup")
        _run(venv, ["keystone-manage", *kconf, "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
                    "--bootstrap-admin-url", keystone, "--bootstrap-public-url", keystone,
                    "--bootstrap-internal-url", keystone, "--bootstrap-region-id", REGION], logs, "keystone bootstrap")

        # ---- Placement / Nova config and DBs (while Keystone starts)
        lab = OpenStackLab(root=workdir, venv=venv, clouds_yaml=etc / "clouds.yaml", cloud="lab",
                           keystone_url=keystone, compute_url=compute, placement_url=placement,
                           hosts=COMPUTE_HOSTS, flavors=FLAVORS, daemons=daemons, epmd_port=epmd, _keystone_env=kenv)
        daemons["keystone"] = _serve(lab, "keystone", "keystone.wsgi.api:application", k_port, kenv)

        pdir = etc / "placement"
        pdir.mkdir(exist_ok=True)
        (pdir / "placement.conf").write_text(textwrap.dedent(f"""
            [placement_database]
            connection = sqlite:///{data}/placement.db
            [api]
            auth_strategy = keystone
            """) + _authtoken(keystone))
        penv = {"OS_PLACEMENT_CONFIG_DIR": str(pdir)}
        ndir = etc / "nova"
        ndir.mkdir(exist_ok=True)
        shutil.copy(venv / "etc" / "nova" / "api-paste.ini", ndir / "api-paste.ini")
        service_auth = textwrap.dedent(f"""
            auth_type = password
            auth_url = {keystone}
            username = admin
            password = {ADMIN_PASSWORD}
            project_name = admin
            user_domain_name = Default
            project_domain_name = Default
            region_name = {REGION}
            """)
        (ndir / "nova.conf").write_text(textwrap.dedent(f"""
            [DEFAULT]
            transport_url = {transport}
            compute_driver = fake.FakeDriverWithoutFakeNodes
            state_path = {data}/nova
            my_ip = 127.0.0.1
            rpc_response_timeout = 20
            [api]
            auth_strategy = keystone
            [api_database]
            connection = sqlite:///{data}/nova_api.db
            [database]
            connection = sqlite:///{data}/nova.db
            [wsgi]
            api_paste_config = {ndir}/api-paste.ini
            [conductor]
            workers = 1
            [scheduler]
            workers = 1
            discover_hosts_in_cells_interval = -1
            [oslo_concurrency]
            lock_path = {data}/nova/locks
            [oslo_messaging_notifications]
            driver = noop
            [notifications]
            notification_format = unversioned
            [placement]
            """) + service_auth + _authtoken(keystone))
        (data / "nova" / "locks").mkdir(parents=True, exist_ok=True)
        nconf = ["--config-file", str(ndir / "nova.conf")]
        nenv = {"OS_NOVA_CONFIG_DIR": str(ndir)}

        with ThreadPoolExecutor(2) as pool:
            f_place = pool.submit(_run, venv, ["placement-manage", "--config-dir", str(pdir), "db", "sync"], logs, "placement db sync", penv)

            def nova_dbs() -> None:
                _run(venv, ["nova-manage", *nconf, "api_db", "sync"], logs, "nova api_db sync")
                _run(venv, ["nova-manage", *nconf, "cell_v2", "map_cell0", "--database_connection",
                            f"sqlite:///{data}/nova_cell0.db"], logs, "nova map_cell0")
                _run(venv, ["nova-manage", *nconf, "cell_v2", "create_cell", "--name", "cell1", "--verbose"], logs, "nova create_cell")
                _run(venv, ["nova-manage", *nconf, "db", "sync"], logs, "nova db sync")

            f_nova = pool.submit(nova_dbs)
            wait_http(keystone, daemon=daemons["keystone"], timeout_s=60)
            _write_clouds_yaml(lab.clouds_yaml, keystone)
            _register_catalog(lab)
            f_place.result()
            daemons["placement"] = _serve(lab, "placement", "placement.wsgi.api:application", p_port, penv)
            f_nova.result()

        daemons["nova-conductor"] = start_daemon("nova-conductor", [str(venv / "bin" / "nova-conductor"), *nconf], logs, env=nenv)
        daemons["nova-scheduler"] = start_daemon("nova-scheduler", [str(venv / "bin" / "nova-scheduler"), *nconf], logs, env=nenv)
        daemons["nova-api"] = _serve(lab, "nova-api", "nova.wsgi.osapi_compute:application", n_port, nenv)
        wait_http(placement, daemon=daemons["placement"], timeout_s=60)
        for host in COMPUTE_HOSTS:
            conf = ndir / f"compute-{host}.conf"
            state = data / f"nova-{host}"
            (state / "instances").mkdir(parents=True, exist_ok=True)
            conf.write_text(f"[DEFAULT]\nhost = {host}\nstate_path = {state}\ninstances_path = {state}/instances\n")
            daemons[f"nova-compute-{host}"] = start_daemon(
                f"nova-compute-{host}", [str(venv / "bin" / "nova-compute"), *nconf, "--config-file", str(conf)], logs, env=nenv)
        wait_http(f"http://127.0.0.1:{n_port}/", daemon=daemons["nova-api"], timeout_s=90)

        conn = lab.connect()
        try:
            dead: list[Daemon] = []

            def computes_up() -> bool:
                dead.extend(d for d in daemons.values() if not d.alive())
                if dead:
                    return True
                up = {s.host for s in conn.compute.services(binary="nova-compute") if s.state == "up"}
                return up >= set(COMPUTE_HOSTS)

            wait_until(computes_up, timeout_s=120, interval_s=0.5, what="nova-compute services up")
            if dead:
                raise dead[0].fail("exited while Nova started")
            _run(venv, ["nova-manage", *nconf, "cell_v2", "discover_hosts", "--verbose"], logs, "nova discover_hosts")

            def hypervisors_listed() -> bool:
                return {h.name for h in conn.compute.hypervisors()} >= set(COMPUTE_HOSTS)

            wait_until(hypervisors_listed, timeout_s=60, interval_s=0.5, what="hypervisors listed")
            _seed(lab, conn)
        finally:
            conn.close()
        lab.started_in_s = time.monotonic() - t0
        return lab
    except BaseException:
        if lab is not None:
            lab.close()
        else:
            for d in daemons.values():
                d.stop()
        raise


def _write_clouds_yaml(path: Path, keystone: str) -> None:
    path.write_text(textwrap.dedent(f"""
        clouds:
          lab:
            auth:
              auth_url: {keystone}
              username: admin
              password: {ADMIN_PASSWORD}
              project_name: admin
              user_domain_name: Default
              project_domain_name: Default
            region_name: {REGION}
            interface: public
            identity_api_version: 3
        """))


def _register_catalog(lab: OpenStackLab) -> None:
    conn = lab.connect()
    try:
        for name, kind, url in (("placement", "placement", lab.placement_url), ("nova", "compute", lab.compute_url)):
            service = conn.identity.create_service(name=name, type=kind)
            for interface in ("public", "internal", "admin"):
                conn.identity.create_endpoint(service_id=service.id, interface=interface, url=url, region_id=REGION)
    finally:
        conn.close()


def _seed(lab: OpenStackLab, conn) -> None:
    """Flavors with GPU extra specs, and a vGPU child resource provider under the first compute node."""
    for name, (vcpus, ram, specs) in FLAVORS.items():
        flavor = conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=1)
        if specs:
            conn.compute.create_flavor_extra_specs(flavor, specs)
    root = next(rp for rp in conn.placement.resource_providers() if rp.name == COMPUTE_HOSTS[0])
    child = conn.placement.create_resource_provider(name=f"{COMPUTE_HOSTS[0]}_pci_0000_81_00_0",
                                                    parent_provider_id=root.id)
    conn.placement.create_resource_provider_inventory(child, resource_class="VGPU", total=VGPU_TOTAL)
    lab.vgpu_provider = child.id
