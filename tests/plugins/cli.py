"""Provides the ``sovtui`` command's test set-up: a private environment, sources faked through the registry, a site
config and a stand-in for the Textual app; and ``run`` for the command in a subprocess."""

from __future__ import annotations

import importlib.util
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import sovtui.sources.registry as registry
from sovtui.sources.base import Source

ROOT = Path(__file__).resolve().parents[2]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


HAVE_DEMO = importable("sovtui.demo.sources") and importable("sovtui.demo.cluster")
HAVE_PROMETHEUS = importable("sovtui.sources.prometheus")
needs_demo = pytest.mark.skipif(not HAVE_DEMO, reason="sovtui.demo is not written yet")
needs_prometheus = pytest.mark.skipif(not HAVE_PROMETHEUS, reason="sovtui.sources.prometheus is not written yet")


@pytest.fixture
def env(monkeypatch, tmp_path):
    """XDG dirs under tmp_path, no SOVTUI_* variables; root logging restored afterwards."""
    for var in ("SOVTUI_CONFIG", "SOVTUI_LOG_LEVEL", "NO_COLOR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    root = logging.getLogger()
    handlers, level, last_resort = list(root.handlers), root.level, logging.lastResort
    yield tmp_path
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    logging.lastResort = last_resort
    logging.captureWarnings(False)


def run(*args: str, env_extra: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python -m sovtui ARGS`` in a subprocess with the current (monkeypatched) environment."""
    return subprocess.run(
        [sys.executable, "-m", "sovtui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **(env_extra or {})},
    )


def closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# fake sources injected through the registry


@pytest.fixture
def fake_sources(monkeypatch):
    """Replace the registry's factories; returns the list the test fills."""
    sources: list[Source] = []
    monkeypatch.setattr(registry, "FACTORIES", {"fake": lambda site, clock: list(sources)})
    return sources


@pytest.fixture
def site_config(env):
    return write_config(env / "config" / "sovtui" / "config.toml", "[sites.lab]\nproduction = true\n")


# ---------------------------------------------------------------------------------------------
# the TUI launch (with a stand-in for the Textual app)


class FakeApp:
    """Stands in for the Textual app: keeps what it was built with, and whether it ran."""

    instances: list[FakeApp] = []
    return_code_to_give = 0

    def __init__(self, site, sources, *, clock):
        self.site, self.sources, self.clock = site, sources, clock
        self.ran = False
        self.return_code = None
        FakeApp.instances.append(self)

    def run(self):
        self.ran = True
        self.return_code = FakeApp.return_code_to_give
        return None


@pytest.fixture
def fake_app(monkeypatch):
    import sovtui.app

    FakeApp.instances = []
    FakeApp.return_code_to_give = 0
    monkeypatch.setattr(sovtui.app, "SovtuiApp", FakeApp)
    return FakeApp
