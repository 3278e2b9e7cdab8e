"""Provides the lab cloud's configuration: RabbitMQ's environment, every service's config files, and clouds.yaml."""

from __future__ import annotations

import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from .settings import ADMIN_PASSWORD, AGENT_DOWN_TIME_S, REGION, REPORT_INTERVAL_S


@dataclass(frozen=True)
class Configs:
    """The lab's directories and venv, and for each service the options and environment that point it at its config."""

    venv: Path
    etc: Path
    data: Path
    logs: Path
    keystone: list[str]
    keystone_env: dict
    placement_dir: Path
    placement_env: dict
    nova_dir: Path
    nova: list[str]
    nova_env: dict
    glance_dir: Path
    glance_env: dict
    neutron_dir: Path
    neutron: list[str]
    neutron_env: dict


def rabbitmq_env(workdir: Path, logs: Path, data: Path, etc: Path, amqp: int, dist: int, epmd: int) -> dict[str, str]:
    """RabbitMQ's environment (its own ports, dirs and home) and its two config files."""
    lab_home = workdir / "home"
    lab_home.mkdir(exist_ok=True)
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
    return rabbit_env


def write_configs(venv: Path, etc: Path, data: Path, logs: Path, keystone: str, transport: str) -> Configs:
    """Every service's config: Keystone (fernet tokens), Placement, Nova (fake driver), Glance (file store), Neutron."""
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
    kenv = {"OS_KEYSTONE_CONFIG_DIR": str(kdir)}
    pdir = etc / "placement"
    pdir.mkdir(exist_ok=True)
    (pdir / "placement.conf").write_text(
        textwrap.dedent(f"""
        [placement_database]
        connection = sqlite:///{data}/placement.db?timeout=60
        [api]
        auth_strategy = keystone
        """)
        + authtoken(keystone)
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
        + service_auth(keystone)
        + "[neutron]\n"
        + service_auth(keystone)
        + authtoken(keystone)
    )
    (data / "nova" / "locks").mkdir(parents=True, exist_ok=True)
    nconf = ["--config-file", str(ndir / "nova.conf")]
    nenv = {"OS_NOVA_CONFIG_DIR": str(ndir), "LAB_PRELOAD": "lab_sqlite_immediate"}
    gdir, genv = glance_config(venv, etc, data, keystone)
    qdir, qenv = neutron_config(venv, etc, data, keystone, transport)
    qconf = ["--config-file", str(qdir / "neutron.conf"), "--config-file", str(qdir / "ml2_conf.ini")]
    return Configs(
        venv=venv,
        etc=etc,
        data=data,
        logs=logs,
        keystone=kconf,
        keystone_env=kenv,
        placement_dir=pdir,
        placement_env=penv,
        nova_dir=ndir,
        nova=nconf,
        nova_env=nenv,
        glance_dir=gdir,
        glance_env=genv,
        neutron_dir=qdir,
        neutron=qconf,
        neutron_env=qenv,
    )


def authtoken(keystone: str) -> str:
    return (
        f"\n[keystone_authtoken]\nwww_authenticate_uri = {keystone}"
        + service_auth(keystone)
        + "token_cache_time = -1\n"
    )


def service_auth(keystone: str) -> str:
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


def glance_config(venv: Path, etc: Path, data: Path, keystone: str) -> tuple[Path, dict]:
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
        + authtoken(keystone)
    )
    return gdir, {"OS_GLANCE_CONFIG_DIR": str(gdir)}


def neutron_config(venv: Path, etc: Path, data: Path, keystone: str, transport: str) -> tuple[Path, dict]:
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
        + authtoken(keystone)
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


def metadata_agent_config(qdir: Path, data: Path, host: str, transport: str) -> Path:
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


def write_clouds_yaml(path: Path, keystone: str) -> None:
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
