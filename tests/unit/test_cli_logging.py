"""Provides tests of the ``sovtui`` command's logging (to the state dir, not stderr), its import cost and the registry."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import sovtui
import sovtui.sources.registry as registry
from sovtui.cli import main
from sovtui.model.types import SiteInfo
from tests.fakes import FakeSource
from tests.plugins.cli import ROOT, importable, needs_prometheus

# fixtures env, fake_sources and site_config: tests/plugins/cli.py

# ---------------------------------------------------------------------------------------------
# logging


def test_logs_go_to_the_state_dir_not_stderr(env, capsys, fake_sources, site_config):
    fake_sources.append(FakeSource("bad", ok=False))
    assert main(["snapshot", "--log-level", "debug"]) == 1
    _, err = capsys.readouterr()
    assert err == ""
    log_file = env / "state" / "sovtui" / "sovtui.log"
    text = log_file.read_text(encoding="utf-8")
    assert "source bad failed" in text
    assert f"INFO sovtui.cli: sovtui {sovtui.__version__}: snapshot --log-level debug" in text
    root = logging.getLogger()
    assert root.level == logging.DEBUG
    assert not [
        h for h in root.handlers if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is sys.stderr
    ]


def test_log_level_from_env(env, capsys, fake_sources, site_config, monkeypatch):
    monkeypatch.setenv("SOVTUI_LOG_LEVEL", "error")
    fake_sources.append(FakeSource("bad", ok=False))
    assert main(["snapshot"]) == 1
    assert logging.getLogger().level == logging.ERROR
    log_file = env / "state" / "sovtui" / "sovtui.log"
    assert "source bad failed" not in (log_file.read_text(encoding="utf-8") if log_file.exists() else "")
    # the flag beats the environment
    assert main(["snapshot", "--log-level", "WARNING"]) == 1
    assert logging.getLogger().level == logging.WARNING


def test_stderr_handler_removed(env, capsys, fake_sources, site_config):
    stray = logging.StreamHandler(sys.stderr)
    logging.getLogger().addHandler(stray)
    fake_sources.append(FakeSource("good"))
    assert main(["snapshot"]) == 0
    assert stray not in logging.getLogger().handlers
    logging.getLogger("sovtui.test").error("this goes to the file only")
    assert capsys.readouterr().err == ""
    assert "this goes to the file only" in (env / "state" / "sovtui" / "sovtui.log").read_text(encoding="utf-8")


def test_unwritable_state_dir_still_runs(env, capsys, fake_sources, site_config, monkeypatch):
    blocker = env / "blocked"
    blocker.write_text("a file, not a dir")
    monkeypatch.setenv("XDG_STATE_HOME", str(blocker))
    fake_sources.append(FakeSource("good"))
    assert main(["snapshot"]) == 0
    assert capsys.readouterr().err == ""


def test_unexpected_error_is_one_line(env, capsys, monkeypatch, site_config):
    def explode(site, clock):
        raise RuntimeError("factory broke")

    monkeypatch.setattr(registry, "FACTORIES", {"x": explode})
    assert main(["snapshot"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sovtui: RuntimeError: factory broke (details in ") and err.count("\n") == 1
    assert "Traceback" in (env / "state" / "sovtui" / "sovtui.log").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# import cost and registry


def test_import_cli_stays_light():
    code = (
        "import sovtui.cli, sys\n"
        "heavy = [m for m in ('textual', 'kubernetes', 'prometheus_api_client', 'requests', 'openstack', 'asyncssh')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr


def test_snapshot_does_not_import_textual(env, fake_sources, site_config):
    code = (
        "import sys, sovtui.cli, sovtui.sources.registry as r\n"
        "r.FACTORIES = {}\n"
        "rc = sovtui.cli.main(['snapshot'])\n"
        "assert 'textual' not in sys.modules, 'textual imported'\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ)
    )
    assert proc.returncode == 1, proc.stderr  # a site without sources
    assert "textual imported" not in proc.stderr


def test_build_sources_by_config(monkeypatch):
    from sovtui.config import SiteConfig

    assert registry.build_sources(SiteConfig(name="empty")) == []
    assert list(registry.FACTORIES)[:2] == ["prometheus", "alertmanager"]


@needs_prometheus
def test_build_sources_prometheus_and_alertmanager():
    from sovtui.config import SiteConfig

    site = SiteConfig(name="lab", prometheus_url="http://127.0.0.1:9", alertmanager_url="http://127.0.0.1:9")
    kinds = [type(s).__name__ for s in registry.build_sources(site)]
    assert kinds[0] == "PrometheusSource"
    if importable("sovtui.sources.alertmanager"):
        assert kinds == ["PrometheusSource", "AlertmanagerSource"]
    only_prom = registry.build_sources(SiteConfig(name="lab", prometheus_url="http://127.0.0.1:9"))
    assert [type(s).__name__ for s in only_prom] == ["PrometheusSource"]


def test_site_info():
    from sovtui.config import SiteConfig

    assert registry.site_info(SiteConfig(name="p", production=True)) == SiteInfo("p", production=True)
    assert registry.site_info(SiteConfig(name="p"), read_only=True).read_only is True
    assert registry.site_info(SiteConfig(name="p", read_only=True)).read_only is True
