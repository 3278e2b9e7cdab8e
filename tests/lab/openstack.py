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

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .procs import Daemon, LabError, free_port, require_binary, start_daemon, wait_http, wait_port, wait_until

COMPONENT = "openstack"
REQUIREMENTS = (
    "keystone==30.0.0",
    "openstack-placement==16.0.0",
    "nova==34.0.0",
    "glance==33.0.0",
    "neutron==29.0.0",
    "gunicorn",
)
#: console scripts whose presence says the venv is complete
VENV_SCRIPTS = ("nova-compute", "glance-manage", "neutron-rpc-server", "neutron-metadata-agent", "gunicorn")
ADMIN_PASSWORD = "lab-admin-secret"
REGION = "RegionOne"
#: the fake hypervisors: one nova-compute process (``host =``) each
COMPUTE_HOSTS = ("gpu01", "gpu02")  # also Slurm lab nodes: one host in every layer
#: flavors the lab creates: name -> (vcpus, ram MiB, extra specs)
FLAVORS = {
    "lab.small": (1, 512, {}),
    "lab.gpu.a100": (8, 16384, {"pci_passthrough:alias": "a100:1"}),
    "lab.vgpu": (4, 8192, {"resources:VGPU": "1"}),
}
#: the vGPU inventory the lab puts under the first compute node (a child resource provider)
VGPU_TOTAL = 4
#: the network hosts: one neutron-metadata-agent (``host =``) each
NETWORK_HOSTS = ("lab-net-1", "lab-net-2")
#: Neutron agents report every REPORT_INTERVAL_S and are dead after AGENT_DOWN_TIME_S without a report
REPORT_INTERVAL_S = 2
AGENT_DOWN_TIME_S = 10
#: the image Glance holds (raw/bare, a few bytes: the fake virt driver never reads it)
IMAGE_NAME = "lab-tiny"
IMAGE_DATA = b"sovtui lab image\n"
#: a provider network the lab creates (in Neutron's database only)
NETWORK_NAME = "lab-provider"

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
    for name in os.environ.get("LAB_PRELOAD", "").split():
        importlib.import_module(name)


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


MAIN_LAUNCHER = textwrap.dedent(
    '''
    """Runs a console script's entry point (argv[1], module:function) after importing $LAB_PRELOAD."""
    import importlib
    import os
    import sys

    for name in os.environ.get("LAB_PRELOAD", "").split():
        importlib.import_module(name)
    module, _, attr = sys.argv[1].partition(":")
    sys.argv = [attr, *sys.argv[2:]]
    sys.exit(getattr(importlib.import_module(module), attr)())
    '''
)

#: Neutron on sqlite: a locked database is a deadlock to retry, as a lock conflict is on MySQL
#: (Neutron retries DBDeadlock; its API and RPC server are separate processes writing one file)
SQLITE_RETRY = textwrap.dedent(
    '''
    """Makes oslo.db report a locked sqlite database as DBDeadlock, which Neutron retries."""
    from oslo_db import exception
    from oslo_db.sqlalchemy import exc_filters
    from sqlalchemy import exc


    @exc_filters.filters("sqlite", exc.OperationalError, r".*database is locked.*")
    def _locked(error, match, engine_name, is_disconnect):
        raise exception.DBDeadlock(error)
    '''
)

#: Placement and Nova on sqlite: every transaction takes the write lock when it begins (``BEGIN IMMEDIATE``),
#: so that it waits for the lock (the busy timeout) rather than failing at once. In WAL mode a transaction
#: that read, then writes after another process committed, gets "database is locked" without waiting: a
#: live migration's first step (the conductor recording the compute's action event) lost that race and
#: left the server MIGRATING for good; Placement, writing two computes' traits at once, answered one with
#: a 500, and the scheduler found no room on that host (its root provider lacked OWNER_NOVA) for a minute.
SQLITE_IMMEDIATE = textwrap.dedent(
    '''
    """Makes every sqlite transaction begin IMMEDIATE (it waits for the write lock instead of failing)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine


    @event.listens_for(Engine, "begin")
    def _begin_immediate(conn):
        # runs before oslo.db's own listener, which then sees the transaction begun and emits no BEGIN
        if conn.dialect.name == "sqlite" and "in_transaction" not in conn.info:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True
    '''
)


def venv_dir() -> Path:
    if os.environ.get("SOVTUI_OPENSTACK_VENV"):
        return Path(os.environ["SOVTUI_OPENSTACK_VENV"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "sovtui-lab" / "openstack-venv"
    return Path("/var/tmp/sovtui-openstack-venv")


def ensure_venv(log_dir: Path) -> Path:
    """The OpenStack venv, built with pip when missing or incomplete (serialised by a file lock).

    A venv whose python runs is completed in place (pip installs what the requirements add), so a
    lab that still runs from it is not pulled from under its feet; a broken one is built anew.
    """
    venv = venv_dir()
    stamp = venv / ".sovtui-lab-requirements"
    want = "\n".join(REQUIREMENTS)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        complete = all((venv / "bin" / script).exists() for script in VENV_SCRIPTS)
        if stamp.is_file() and stamp.read_text() == want and complete:
            return venv
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / "pip.log"
        python = venv / "bin" / "python"
        reuse = (
            python.exists()
            and subprocess.run([str(python), "-c", "import pip"], capture_output=True, timeout=60).returncode == 0
        )
        with open(log, "wb") as out:
            steps = [[str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *REQUIREMENTS]]
            if not reuse:
                shutil.rmtree(venv, ignore_errors=True)
                steps.insert(0, [getattr(sys, "_base_executable", None) or sys.executable, "-m", "venv", str(venv)])
            for argv in steps:
                rc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=900).returncode
                if rc != 0:
                    tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
                    raise LabError(f"building the OpenStack venv failed: {' '.join(argv[:3])} exited {rc}\n{tail}")
        stamp.write_text(want)
        return venv


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
        out.write(f"\n=== {time.strftime('%H:%M:%S')} {what}: {' '.join(argv)}\n".encode())
        out.flush()
        exe = argv[0] if os.path.isabs(argv[0]) else str(venv / "bin" / argv[0])
        started = time.monotonic()
        rc = subprocess.run(
            [exe, *argv[1:]], stdout=out, stderr=subprocess.STDOUT, timeout=timeout, env={**os.environ, **(env or {})}
        ).returncode
        out.write(f"=== {what}: exit {rc} after {time.monotonic() - started:.1f} s\n".encode())
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise LabError(f"openstack lab: {what} failed (exit {rc})\n--- {log} (tail) ---\n{tail}")


def _authtoken(keystone: str) -> str:
    return (
        f"\n[keystone_authtoken]\nwww_authenticate_uri = {keystone}"
        + _service_auth(keystone)
        + "token_cache_time = -1\n"
    )


def start_openstack(workdir: Path) -> OpenStackLab:
    """Build (or reuse) the venv, then start RabbitMQ, Keystone, Placement, Nova, Glance and Neutron; seed them."""
    t0 = time.monotonic()
    rabbit_bin = require_binary("rabbitmq-server", COMPONENT, candidates=("/usr/lib/rabbitmq/bin/rabbitmq-server",))
    rabbit_bin = (
        "/usr/lib/rabbitmq/bin/rabbitmq-server"
        if os.path.exists("/usr/lib/rabbitmq/bin/rabbitmq-server")
        else rabbit_bin
    )
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
        # its own working directory: a crash dump (MnesiaCore.*, erl_crash.dump) lands in the lab, not the checkout
        daemons["rabbitmq"] = start_daemon("rabbitmq", [rabbit_bin], logs, env=rabbit_env, cwd=data)
        venv = ensure_venv(logs)  # RabbitMQ starts meanwhile (and until the first service needs it)

        (workdir / "launcher.py").write_text(LAUNCHER)
        (workdir / "lab_main.py").write_text(MAIN_LAUNCHER)
        (workdir / "lab_sqlite_retry.py").write_text(SQLITE_RETRY)
        (workdir / "lab_sqlite_immediate.py").write_text(SQLITE_IMMEDIATE)
        k_port, p_port, n_port, g_port, q_port = (free_port() for _ in range(5))
        keystone = f"http://127.0.0.1:{k_port}/v3"
        placement = f"http://127.0.0.1:{p_port}"
        compute = f"http://127.0.0.1:{n_port}/v2.1"
        image = f"http://127.0.0.1:{g_port}"
        network = f"http://127.0.0.1:{q_port}"
        transport = f"rabbit://guest:guest@127.0.0.1:{amqp}/"

        # ---- every service's config first: then their databases are set up side by side
        lab = OpenStackLab(
            root=workdir,
            venv=venv,
            clouds_yaml=etc / "clouds.yaml",
            cloud="lab",
            keystone_url=keystone,
            compute_url=compute,
            placement_url=placement,
            hosts=COMPUTE_HOSTS,
            flavors=FLAVORS,
            image_url=image,
            network_url=network,
            daemons=daemons,
            epmd_port=epmd,
        )
        kdir = etc / "keystone"
        kdir.mkdir(exist_ok=True)
        (kdir / "keystone.conf").write_text(
            textwrap.dedent(f"""
            [database]
            connection = sqlite:///{data}/keystone.db?timeout=60
            [token]
            provider = fernet
            expiration = 3600
            [fernet_tokens]
            key_repository = {data}/fernet-keys
            [fernet_receipts]
            key_repository = {data}/fernet-keys
            [credential]
            key_repository = {data}/credential-keys
            """)
        )
        kconf = ["--config-file", str(kdir / "keystone.conf")]
        kenv = lab._keystone_env = {"OS_KEYSTONE_CONFIG_DIR": str(kdir)}
        pdir = etc / "placement"
        pdir.mkdir(exist_ok=True)
        (pdir / "placement.conf").write_text(
            textwrap.dedent(f"""
            [placement_database]
            connection = sqlite:///{data}/placement.db?timeout=60
            [api]
            auth_strategy = keystone
            """)
            + _authtoken(keystone)
        )
        penv = {"OS_PLACEMENT_CONFIG_DIR": str(pdir), "LAB_PRELOAD": "lab_sqlite_immediate"}
        ndir = etc / "nova"
        ndir.mkdir(exist_ok=True)
        shutil.copy(venv / "etc" / "nova" / "api-paste.ini", ndir / "api-paste.ini")
        (ndir / "nova.conf").write_text(
            textwrap.dedent(f"""
            [DEFAULT]
            transport_url = {transport}
            compute_driver = fake.FakeDriverWithoutFakeNodes
            state_path = {data}/nova
            my_ip = 127.0.0.1
            rpc_response_timeout = 20
            [api]
            auth_strategy = keystone
            [api_database]
            connection = sqlite:///{data}/nova_api.db?timeout=60
            [database]
            connection = sqlite:///{data}/nova.db?timeout=60
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
            """)
            + _service_auth(keystone)
            + "[neutron]\n"
            + _service_auth(keystone)
            + _authtoken(keystone)
        )
        (data / "nova" / "locks").mkdir(parents=True, exist_ok=True)
        nconf = ["--config-file", str(ndir / "nova.conf")]
        nenv = {"OS_NOVA_CONFIG_DIR": str(ndir), "LAB_PRELOAD": "lab_sqlite_immediate"}
        gdir, genv = _glance_config(venv, etc, data, keystone)
        qdir, qenv = _neutron_config(venv, etc, data, keystone, transport)
        qconf = ["--config-file", str(qdir / "neutron.conf"), "--config-file", str(qdir / "ml2_conf.ini")]

        def keystone_db() -> None:
            # what ``keystone-manage fernet_setup`` / ``credential_setup`` make, without two more processes
            _fernet_keys(data / "fernet-keys")
            _fernet_keys(data / "credential-keys")
            _run(venv, ["keystone-manage", *kconf, "db_sync"], logs, "keystone db_sync")
            _run(
                venv,
                [
                    "keystone-manage",
                    *kconf,
                    "bootstrap",
                    "--bootstrap-password",
                    ADMIN_PASSWORD,
                    "--bootstrap-admin-url",
                    keystone,
                    "--bootstrap-public-url",
                    keystone,
                    "--bootstrap-internal-url",
                    keystone,
                    "--bootstrap-region-id",
                    REGION,
                ],
                logs,
                "keystone bootstrap",
            )
            _wal(data / "keystone.db")

        def nova_api_db() -> None:
            _run(venv, ["nova-manage", *nconf, "api_db", "sync"], logs, "nova api_db sync")
            _run(
                venv,
                [
                    "nova-manage",
                    *nconf,
                    "cell_v2",
                    "map_cell0",
                    "--database_connection",
                    f"sqlite:///{data}/nova_cell0.db?timeout=60",
                ],
                logs,
                "nova map_cell0",
            )
            _run(
                venv,
                ["nova-manage", *nconf, "cell_v2", "create_cell", "--name", "cell1", "--verbose"],
                logs,
                "nova create_cell",
            )
            _wal(data / "nova_api.db")

        def nova_cell_dbs() -> None:
            _run(venv, ["nova-manage", *nconf, "db", "sync", "--local_cell"], logs, "nova db sync (cell1)")
            _wal(data / "nova.db")
            # cell0 is a cell database like cell1's, both empty: a copy, rather than a sync once cell0 is mapped
            shutil.copy(data / "nova.db", data / "nova_cell0.db")

        def neutron_db() -> None:
            # Neutron's migrations do not run on sqlite: its tables come from the models instead
            _run(
                venv,
                ["python", "-c", NEUTRON_TABLES, f"sqlite:///{data}/neutron.db?timeout=60"],
                logs,
                "neutron tables",
            )
            _run(venv, ["neutron-db-manage", *qconf, "stamp", "heads"], logs, "neutron stamp heads")
            _wal(data / "neutron.db")

        def placement_db() -> None:
            _run(venv, ["placement-manage", "--config-dir", str(pdir), "db", "sync"], logs, "placement db sync", penv)
            _wal(data / "placement.db")

        def glance_db() -> None:
            _run(
                venv,
                ["glance-manage", "--config-file", str(gdir / "glance-api.conf"), "db_sync"],
                logs,
                "glance db_sync",
                genv,
            )
            _wal(data / "glance.db")

        # ---- each service starts as soon as its databases are ready (none needs Keystone to start)
        def rabbitmq_up() -> None:
            wait_port("127.0.0.1", amqp, daemon=daemons["rabbitmq"], timeout_s=60)

        def start_keystone() -> None:
            daemons["keystone"] = _serve(lab, "keystone", "keystone.wsgi.api:application", k_port, kenv)

        registered: list[bool] = []

        def catalog_registered() -> None:
            if not registered:
                wait_http(keystone, daemon=daemons["keystone"], timeout_s=60)
                _write_clouds_yaml(lab.clouds_yaml, keystone)
                _register_catalog(lab)
                registered.append(True)

        def start_placement() -> None:
            daemons["placement"] = _serve(lab, "placement", "placement.wsgi.api:application", p_port, penv)

        def start_nova() -> None:
            # Nova's Placement client reads the catalog once, at start
            catalog_registered()
            rabbitmq_up()
            for name in ("conductor", "scheduler"):
                daemons[f"nova-{name}"] = start_daemon(
                    f"nova-{name}",
                    [str(venv / "bin" / "python"), str(workdir / "lab_main.py"), f"nova.cmd.{name}:main", *nconf],
                    logs,
                    env=nenv,
                )
            daemons["nova-api"] = _serve(lab, "nova-api", "nova.wsgi.osapi_compute:application", n_port, nenv)

        def start_glance() -> None:
            daemons["glance-api"] = _serve(lab, "glance-api", "glance.wsgi.api:application", g_port, genv)

        def start_neutron() -> None:
            # the RPC server first; an agent's state report sent before its queue exists is lost, and retried
            rabbitmq_up()
            daemons["neutron-rpc-server"] = start_daemon(
                "neutron-rpc-server",
                [str(venv / "bin" / "python"), str(workdir / "lab_main.py"), "neutron.cmd.server:main_rpc", *qconf],
                logs,
                env=qenv,
            )
            daemons["neutron-api"] = _serve(lab, "neutron-api", "neutron.wsgi.api:application", q_port, qenv)
            for host in NETWORK_HOSTS:
                conf = _metadata_agent_config(qdir, data, host, transport)
                daemons[f"neutron-metadata-agent-{host}"] = start_daemon(
                    f"neutron-metadata-agent-{host}",
                    [str(venv / "bin" / "neutron-metadata-agent"), "--config-file", str(conf)],
                    logs,
                    env=qenv,
                )

        with ThreadPoolExecutor(6) as pool:
            f_keystone, f_placement, f_nova_api, f_nova_cells, f_glance, f_neutron = (
                pool.submit(keystone_db),
                pool.submit(placement_db),
                pool.submit(nova_api_db),
                pool.submit(nova_cell_dbs),
                pool.submit(glance_db),
                pool.submit(neutron_db),
            )
            waiting = [
                ({f_keystone}, start_keystone),
                ({f_placement}, start_placement),
                ({f_keystone, f_nova_api, f_nova_cells}, start_nova),
                ({f_glance}, start_glance),
                ({f_neutron}, start_neutron),
            ]
            for done in as_completed([f_keystone, f_placement, f_nova_api, f_nova_cells, f_glance, f_neutron]):
                done.result()
                for needs, start in [w for w in waiting if all(f.done() for f in w[0])]:
                    waiting.remove((needs, start))
                    start()

        # nova-compute reports its resources at start (then once a minute): Keystone and Placement first
        wait_http(placement, daemon=daemons["placement"], timeout_s=60)
        for host in COMPUTE_HOSTS:
            conf = ndir / f"compute-{host}.conf"
            state = data / f"nova-{host}"
            (state / "instances").mkdir(parents=True, exist_ok=True)
            conf.write_text(f"[DEFAULT]\nhost = {host}\nstate_path = {state}\ninstances_path = {state}/instances\n")
            daemons[f"nova-compute-{host}"] = start_daemon(
                f"nova-compute-{host}",
                [str(venv / "bin" / "nova-compute"), *nconf, "--config-file", str(conf)],
                logs,
                env=nenv,
            )
        wait_http(f"http://127.0.0.1:{n_port}/", daemon=daemons["nova-api"], timeout_s=90)
        wait_http(f"{image}/healthcheck", daemon=daemons["glance-api"], timeout_s=90)
        wait_http(f"{network}/healthcheck", daemon=daemons["neutron-api"], timeout_s=90)

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

            def agents_alive() -> bool:
                dead.extend(d for d in daemons.values() if not d.alive())
                if dead:
                    return True
                alive = {a.host for a in conn.network.agents(binary="neutron-metadata-agent") if a.is_alive}
                return alive >= set(NETWORK_HOSTS)

            wait_until(agents_alive, timeout_s=90, interval_s=0.5, what="neutron agents alive")
            if dead:
                raise dead[0].fail("exited while Neutron started")
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


NEUTRON_TABLES = textwrap.dedent(
    """
    import sys

    import sqlalchemy
    from neutron.db.migration.models import head

    head.get_metadata().create_all(sqlalchemy.create_engine(sys.argv[1]))
    """
)


def _wal(db: Path) -> None:
    """Put a sqlite database in WAL mode (kept in the file): readers no longer block a committing writer.

    The services' processes share each file; in the default rollback-journal mode a reader that wants to
    write while another process commits fails at once with "database is locked".
    """
    with closing(sqlite3.connect(db)) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise LabError(f"openstack lab: {db} did not switch to WAL (journal_mode={mode})")


def _fernet_keys(repo: Path) -> None:
    """A Fernet key repository as ``keystone-manage fernet_setup`` makes it: a staged key 0 and a primary key 1."""
    repo.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index in ("0", "1"):
        key = repo / index
        key.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
        key.chmod(0o600)


def _service_auth(keystone: str) -> str:
    return textwrap.dedent(f"""
        auth_type = password
        auth_url = {keystone}
        username = admin
        password = {ADMIN_PASSWORD}
        project_name = admin
        user_domain_name = Default
        project_domain_name = Default
        region_name = {REGION}
        """)


def _glance_config(venv: Path, etc: Path, data: Path, keystone: str) -> tuple[Path, dict]:
    """Glance's config dir (file store under ``data``) and the environment that points glance-api at it."""
    gdir = etc / "glance"
    gdir.mkdir(exist_ok=True)
    shutil.copy(venv / "etc" / "glance" / "glance-api-paste.ini", gdir / "glance-api-paste.ini")
    stores = {name: data / "glance" / name for name in ("images", "staging", "tasks", "locks")}
    for path in stores.values():
        path.mkdir(parents=True, exist_ok=True)
    (gdir / "glance-api.conf").write_text(
        textwrap.dedent(f"""
        [DEFAULT]
        enabled_backends = fs:file
        [database]
        connection = sqlite:///{data}/glance.db?timeout=60
        [glance_store]
        default_backend = fs
        [fs]
        filesystem_store_datadir = {stores["images"]}
        [os_glance_staging_store]
        filesystem_store_datadir = {stores["staging"]}
        [os_glance_tasks_store]
        filesystem_store_datadir = {stores["tasks"]}
        [paste_deploy]
        flavor = keystone
        config_file = {gdir}/glance-api-paste.ini
        [oslo_concurrency]
        lock_path = {stores["locks"]}
        [oslo_messaging_notifications]
        driver = noop
        """)
        + _authtoken(keystone)
    )
    return gdir, {"OS_GLANCE_CONFIG_DIR": str(gdir)}


def _neutron_config(venv: Path, etc: Path, data: Path, keystone: str, transport: str) -> tuple[Path, dict]:
    """Neutron's config dir (ML2, sqlite) and the environment that points the API and RPC server at it."""
    qdir = etc / "neutron"
    qdir.mkdir(exist_ok=True)
    shutil.copy(venv / "etc" / "neutron" / "api-paste.ini", qdir / "api-paste.ini")
    (data / "neutron" / "locks").mkdir(parents=True, exist_ok=True)
    (qdir / "neutron.conf").write_text(
        textwrap.dedent(f"""
        [DEFAULT]
        core_plugin = ml2
        service_plugins =
        auth_strategy = keystone
        transport_url = {transport}
        state_path = {data}/neutron
        api_paste_config = {qdir}/api-paste.ini
        host = lab-neutron-server
        rpc_workers = 1
        rpc_state_report_workers = 1
        rpc_response_timeout = 20
        agent_down_time = {AGENT_DOWN_TIME_S}
        notify_nova_on_port_status_changes = false
        notify_nova_on_port_data_changes = false
        [database]
        connection = sqlite:///{data}/neutron.db?timeout=60
        [oslo_concurrency]
        lock_path = {data}/neutron/locks
        [oslo_messaging_notifications]
        driver = noop
        """)
        + _authtoken(keystone)
    )
    (qdir / "ml2_conf.ini").write_text(
        textwrap.dedent("""
        [ml2]
        type_drivers = flat,vlan,vxlan
        tenant_network_types = vxlan
        mechanism_drivers = openvswitch
        extension_drivers = port_security
        [ml2_type_flat]
        flat_networks = physnet1
        [ml2_type_vlan]
        network_vlan_ranges = physnet1:100:199
        [ml2_type_vxlan]
        vni_ranges = 1:1000
        """)
    )
    return qdir, {
        "OS_NEUTRON_CONFIG_DIR": str(qdir),
        "OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini",
        "LAB_PRELOAD": "lab_sqlite_retry",
    }


def _metadata_agent_config(qdir: Path, data: Path, host: str, transport: str) -> Path:
    """The config of network host ``host``'s metadata agent: its own state dir and unix socket, fast reports."""
    state = data / f"neutron-{host}"
    (state / "locks").mkdir(parents=True, exist_ok=True)
    conf = qdir / f"metadata-agent-{host}.ini"
    conf.write_text(
        textwrap.dedent(f"""
        [DEFAULT]
        host = {host}
        transport_url = {transport}
        state_path = {state}
        metadata_proxy_socket = {state}/metadata_proxy
        metadata_proxy_shared_secret = lab-metadata-secret
        nova_metadata_host = 127.0.0.1
        metadata_workers = 1
        # a state report lost before the RPC server listened is retried at the next interval
        rpc_response_timeout = 5
        [agent]
        report_interval = {REPORT_INTERVAL_S}
        [oslo_concurrency]
        lock_path = {state}/locks
        [oslo_messaging_notifications]
        driver = noop
        """)
    )
    return conf


def _write_clouds_yaml(path: Path, keystone: str) -> None:
    path.write_text(
        textwrap.dedent(f"""
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
        """)
    )


def _register_catalog(lab: OpenStackLab) -> None:
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


def _seed(lab: OpenStackLab, conn) -> None:
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
