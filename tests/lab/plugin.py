"""Provides the lab's pytest plugin: one session fixture per lab component, opt-outs, early start, clean stop.

A component is a real backend started on loopback for the whole session. To add one (Ceph,
Slurm, OpenStack, the fake Kubernetes API server, ...): write ``tests/lab/<name>.py`` with a
``start_<name>(workdir) -> object-with-close()``, add a :class:`Component` to ``COMPONENTS``,
a fixture below that returns ``LAB.get("<name>")``, and a marker in ``pyproject.toml``.
``SOVTUI_LAB_SKIP=<name>,...`` skips every test marked with, or using, an opted-out component.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .procs import SKIP_ENV, skipped_components


def _start_prometheus(workdir: Path) -> Any:
    from .prometheus import start_prometheus_lab

    return start_prometheus_lab(workdir)


def _start_sshd(workdir: Path) -> Any:
    from .sshd import start_sshd

    return start_sshd(workdir)


def _start_kubeapi(workdir: Path) -> Any:
    from .kubeapi import start_kubeapi

    return start_kubeapi(workdir)


def _start_openstack(workdir: Path) -> Any:
    from .openstack import start_openstack

    return start_openstack(workdir)


def _start_slurm(workdir: Path) -> Any:
    from .slurm import start_slurm

    return start_slurm(workdir)


@dataclass(frozen=True)
class Component:
    """A lab backend: its name (= pytest marker = word in ``$SOVTUI_LAB_SKIP``) and how to start it."""

    name: str
    fixture: str
    start: Callable[[Path], Any]
    #: start in a background thread as soon as collection shows a test needs it (for slow starters)
    early: bool = False


COMPONENTS: dict[str, Component] = {
    c.name: c
    for c in (
        # Prometheus needs ~5 s before its first scrape and alert push (service discovery throttle)
        Component("prometheus", "lab_prometheus", _start_prometheus, early=True),
        Component("ssh", "lab_sshd", _start_sshd),
        Component("kubernetes", "lab_kube", _start_kubeapi, early=True),
        # Keystone, Placement, Nova, Glance, Neutron: ~1 min warm, ~3 min when its venv is built
        Component("openstack", "lab_openstack", _start_openstack, early=True),
        # munged, slurmctld, four slurmd and a login sshd: under a second
        Component("slurm", "slurm_lab", _start_slurm),
    )
}


class Lab:
    """Owns the session's lab dir and every component started in it."""

    def __init__(self) -> None:
        self._root: Path | None = None
        self._lock = threading.Lock()
        self._futures: dict[str, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sovtui-lab")
        self.skipped: set[str] = set()

    @property
    def root(self) -> Path:
        with self._lock:
            return self._root_locked()

    def _root_locked(self) -> Path:
        if self._root is None:
            self._root = Path(tempfile.mkdtemp(prefix="sovtui-lab-"))
            self._root.chmod(0o755)  # test users of later components read files in here
        return self._root

    def _future(self, name: str) -> Future:
        with self._lock:
            if name not in self._futures:
                component = COMPONENTS[name]
                workdir = self._root_locked() / name
                self._futures[name] = self._pool.submit(component.start, workdir)
            return self._futures[name]

    def start_early(self, name: str) -> None:
        self._future(name)

    def get(self, name: str) -> Any:
        """The running component (started now if needed); its start error or skip re-raised here."""
        if name in skipped_components():
            pytest.skip(f"lab component {name!r} opted out ({SKIP_ENV}={os.environ.get(SKIP_ENV)})")
        return self._future(name).result()

    def close(self, *, keep_dir: bool) -> Path | None:
        for name, future in list(self._futures.items()):
            try:
                obj = future.result(timeout=120)
            except BaseException:  # noqa: BLE001 - its failure was reported by the tests that needed it
                continue
            try:
                obj.close()
            except Exception as exc:  # noqa: BLE001
                print(f"lab: stopping {name} failed: {exc}")
        self._futures.clear()
        self._pool.shutdown(wait=False)
        root, self._root = self._root, None
        if root is not None and not keep_dir:
            shutil.rmtree(root, ignore_errors=True)
            return None
        return root


LAB = Lab()


# ---------------------------------------------------------------------------------- hooks
def _needs(item: pytest.Item, component: Component) -> bool:
    return item.get_closest_marker(component.name) is not None or component.fixture in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skipped = skipped_components()
    for component in COMPONENTS.values():
        if component.name not in skipped:
            continue
        marker = pytest.mark.skip(reason=f"lab component {component.name!r} opted out ({SKIP_ENV})")
        for item in items:
            if _needs(item, component):
                item.add_marker(marker)
                LAB.skipped.add(component.name)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    skipped = skipped_components()
    for component in COMPONENTS.values():
        if not component.early or component.name in skipped:
            continue
        if any(_needs(item, component) and item.get_closest_marker("skip") is None for item in session.items):
            LAB.start_early(component.name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    keep = os.environ.get("SOVTUI_LAB_KEEP") == "1" or exitstatus not in (0, 5)
    session.config._sovtui_lab_dir = LAB.close(keep_dir=keep)  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    unknown = skipped_components() - set(COMPONENTS)
    if LAB.skipped or unknown:
        names = ", ".join(sorted(LAB.skipped)) or "nothing"
        terminalreporter.write_line(
            f"lab: {SKIP_ENV} skipped the tests of: {names}"
            + (f" (not lab components: {', '.join(sorted(unknown))})" if unknown else "")
        )
    kept = getattr(config, "_sovtui_lab_dir", None)
    if kept:
        terminalreporter.write_line(f"lab: daemon logs and data kept in {kept}")


# ---------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="session")
def lab_dir() -> Path:
    """The session's lab directory (a fresh temp dir; removed at the end unless the run failed)."""
    return LAB.root


@pytest.fixture(scope="session")
def lab_prometheus():
    """Prometheus (2 h of backfilled exporter data) + Alertmanager + live alerts, with the truth: a PrometheusLab."""
    return LAB.get("prometheus")


@pytest.fixture(scope="session")
def lab_sshd():
    """A real OpenSSH server on loopback with a test user and an ed25519 client key: an SshLab."""
    return LAB.get("ssh")


@pytest.fixture(scope="session")
def lab_kube():
    """The fake Kubernetes API server (HTTPS, RBAC users, seeded GPU cluster) with its kubeconfig and truth: a KubeLab."""
    return LAB.get("kubernetes")


@pytest.fixture(scope="session")
def lab_openstack():
    """A real OpenStack (Keystone, Placement, Nova with two fake hypervisors, Glance, Neutron with two agents): an OpenStackLab."""
    return LAB.get("openstack")


@pytest.fixture(scope="module")
def admin(lab_openstack):
    """An admin openstacksdk connection to the lab OpenStack, one per test module (closed after it)."""
    conn = lab_openstack.connect()
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def slurm_lab():
    """Slurm 22.05 (munged, slurmctld, gpu01-gpu04 with 4 fake H100 each, partitions gpu and debug) and its login
    host behind a real sshd (alias ``login1`` in its ssh config): a SlurmLab."""
    return LAB.get("slurm")
