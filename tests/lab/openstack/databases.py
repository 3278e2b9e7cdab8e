"""Provides the lab cloud's databases: each service's sqlite schema and bootstrap, WAL mode, and the manage commands."""

from __future__ import annotations

import base64
import os
import shutil
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

from ..procs import LabError
from .configs import Configs
from .scripts import NEUTRON_TABLES
from .settings import ADMIN_PASSWORD, REGION


def run_manage(
    venv: Path, argv: list[str], log_dir: Path, what: str, env: dict | None = None, timeout: float = 300
) -> None:
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


def wal(db: Path) -> None:
    """Put a sqlite database in WAL mode (kept in the file): readers no longer block a committing writer.

    The services' processes share each file; in the default rollback-journal mode a reader that wants to
    write while another process commits fails at once with "database is locked".
    """
    with closing(sqlite3.connect(db)) as conn:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise LabError(f"openstack lab: {db} did not switch to WAL (journal_mode={mode})")


def fernet_keys(repo: Path) -> None:
    """A Fernet key repository as ``keystone-manage fernet_setup`` makes it: a staged key 0 and a primary key 1."""
    repo.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index in ("0", "1"):
        key = repo / index
        key.write_bytes(base64.urlsafe_b64encode(os.urandom(32)))
        key.chmod(0o600)


def keystone_db(cfg: Configs, keystone: str) -> None:
    """Fernet and credential keys, the schema, and the bootstrap: admin, its project, the region, the endpoint."""
    venv, data, logs, kconf = cfg.venv, cfg.data, cfg.logs, cfg.keystone
    # what ``keystone-manage fernet_setup`` / ``credential_setup`` make, without two more processes
    fernet_keys(data / "fernet-keys")
    fernet_keys(data / "credential-keys")
    run_manage(venv, ["keystone-manage", *kconf, "db_sync"], logs, "keystone db_sync")
    run_manage(
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
    wal(data / "keystone.db")


def nova_api_db(cfg: Configs) -> None:
    """The API database, cell0 mapped, cell1 created."""
    venv, data, logs, nconf = cfg.venv, cfg.data, cfg.logs, cfg.nova
    run_manage(venv, ["nova-manage", *nconf, "api_db", "sync"], logs, "nova api_db sync")
    run_manage(
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
    run_manage(
        venv,
        ["nova-manage", *nconf, "cell_v2", "create_cell", "--name", "cell1", "--verbose"],
        logs,
        "nova create_cell",
    )
    wal(data / "nova_api.db")


def nova_cell_dbs(cfg: Configs) -> None:
    """The cell databases: cell1 synced, cell0 its copy."""
    venv, data, logs, nconf = cfg.venv, cfg.data, cfg.logs, cfg.nova
    run_manage(venv, ["nova-manage", *nconf, "db", "sync", "--local_cell"], logs, "nova db sync (cell1)")
    wal(data / "nova.db")
    # cell0 is a cell database like cell1's, both empty: a copy, rather than a sync once cell0 is mapped
    shutil.copy(data / "nova.db", data / "nova_cell0.db")


def neutron_db(cfg: Configs) -> None:
    """Neutron's tables from its models, stamped at the heads of its migrations."""
    venv, data, logs, qconf = cfg.venv, cfg.data, cfg.logs, cfg.neutron
    # Neutron's migrations do not run on sqlite: its tables come from the models instead
    run_manage(
        venv,
        ["python", "-c", NEUTRON_TABLES, f"sqlite:///{data}/neutron.db?timeout=60"],
        logs,
        "neutron tables",
    )
    run_manage(venv, ["neutron-db-manage", *qconf, "stamp", "heads"], logs, "neutron stamp heads")
    wal(data / "neutron.db")


def placement_db(cfg: Configs) -> None:
    venv, data, logs, pdir, penv = cfg.venv, cfg.data, cfg.logs, cfg.placement_dir, cfg.placement_env
    run_manage(venv, ["placement-manage", "--config-dir", str(pdir), "db", "sync"], logs, "placement db sync", penv)
    wal(data / "placement.db")


def glance_db(cfg: Configs) -> None:
    venv, data, logs, gdir, genv = cfg.venv, cfg.data, cfg.logs, cfg.glance_dir, cfg.glance_env
    run_manage(
        venv,
        ["glance-manage", "--config-file", str(gdir / "glance-api.conf"), "db_sync"],
        logs,
        "glance db_sync",
        genv,
    )
    wal(data / "glance.db")
