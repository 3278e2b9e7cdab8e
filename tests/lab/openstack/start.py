"""Provides the lab cloud's start: RabbitMQ, then each service as soon as its database is ready, then the seed."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ..procs import Daemon, free_port, require_binary, start_daemon, wait_http, wait_port, wait_until
from .cloud import OpenStackLab, serve
from .configs import metadata_agent_config, rabbitmq_env, write_clouds_yaml, write_configs
from .databases import glance_db, keystone_db, neutron_db, nova_api_db, nova_cell_dbs, placement_db, run_manage
from .fixtures import register_catalog, seed
from .scripts import LAUNCHER, MAIN_LAUNCHER, SQLITE_IMMEDIATE, SQLITE_RETRY
from .settings import COMPONENT, COMPUTE_HOSTS, FLAVORS, NETWORK_HOSTS
from .venv import ensure_venv


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
    amqp, dist, epmd = free_port(), free_port(), free_port()
    rabbit_env = rabbitmq_env(workdir, logs, data, etc, amqp, dist, epmd)
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
        cfg = write_configs(venv, etc, data, logs, keystone, transport)
        nconf, nenv, ndir = cfg.nova, cfg.nova_env, cfg.nova_dir
        qconf, qenv, qdir = cfg.neutron, cfg.neutron_env, cfg.neutron_dir
        lab.keystone_env = cfg.keystone_env

        # ---- each service starts as soon as its databases are ready (none needs Keystone to start)
        def rabbitmq_up() -> None:
            wait_port("127.0.0.1", amqp, daemon=daemons["rabbitmq"], timeout_s=60)

        def start_keystone() -> None:
            daemons["keystone"] = serve(lab, "keystone", "keystone.wsgi.api:application", k_port, cfg.keystone_env)

        registered: list[bool] = []

        def catalog_registered() -> None:
            if not registered:
                wait_http(keystone, daemon=daemons["keystone"], timeout_s=60)
                write_clouds_yaml(lab.clouds_yaml, keystone)
                register_catalog(lab)
                registered.append(True)

        def start_placement() -> None:
            daemons["placement"] = serve(lab, "placement", "placement.wsgi.api:application", p_port, cfg.placement_env)

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
            daemons["nova-api"] = serve(lab, "nova-api", "nova.wsgi.osapi_compute:application", n_port, nenv)

        def start_glance() -> None:
            daemons["glance-api"] = serve(lab, "glance-api", "glance.wsgi.api:application", g_port, cfg.glance_env)

        def start_neutron() -> None:
            # the RPC server first; an agent's state report sent before its queue exists is lost, and retried
            rabbitmq_up()
            daemons["neutron-rpc-server"] = start_daemon(
                "neutron-rpc-server",
                [str(venv / "bin" / "python"), str(workdir / "lab_main.py"), "neutron.cmd.server:main_rpc", *qconf],
                logs,
                env=qenv,
            )
            daemons["neutron-api"] = serve(lab, "neutron-api", "neutron.wsgi.api:application", q_port, qenv)
            for host in NETWORK_HOSTS:
                conf = metadata_agent_config(qdir, data, host, transport)
                daemons[f"neutron-metadata-agent-{host}"] = start_daemon(
                    f"neutron-metadata-agent-{host}",
                    [str(venv / "bin" / "neutron-metadata-agent"), "--config-file", str(conf)],
                    logs,
                    env=qenv,
                )

        with ThreadPoolExecutor(6) as pool:
            f_keystone, f_placement, f_nova_api, f_nova_cells, f_glance, f_neutron = (
                pool.submit(keystone_db, cfg, keystone),
                pool.submit(placement_db, cfg),
                pool.submit(nova_api_db, cfg),
                pool.submit(nova_cell_dbs, cfg),
                pool.submit(glance_db, cfg),
                pool.submit(neutron_db, cfg),
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
            run_manage(
                venv, ["nova-manage", *nconf, "cell_v2", "discover_hosts", "--verbose"], logs, "nova discover_hosts"
            )

            def hypervisors_listed() -> bool:
                return {h.name for h in conn.compute.hypervisors()} >= set(COMPUTE_HOSTS)

            wait_until(hypervisors_listed, timeout_s=60, interval_s=0.5, what="hypervisors listed")
            seed(lab, conn)

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
