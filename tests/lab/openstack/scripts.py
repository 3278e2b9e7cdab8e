"""Provides the scripts the lab writes next to the services: WSGI and console launchers, sqlite shims, Neutron's tables."""

import textwrap

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


NEUTRON_TABLES = textwrap.dedent(
    """
    import sys

    import sqlalchemy
    from neutron.db.migration.models import head

    head.get_metadata().create_all(sqlalchemy.create_engine(sys.argv[1]))
    """
)
