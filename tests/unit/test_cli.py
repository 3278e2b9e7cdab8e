"""Provides tests of the ``sovtui`` command's surface: version, help, usage errors and the TUI launch."""

from __future__ import annotations

import pytest

import sovtui
from sovtui.cli import main
from sovtui.demo.setup import demo_clock
from sovtui.model.types import SiteInfo
from tests.fakes import FakeSource
from tests.plugins.cli import needs_demo, run, write_config

# fixtures env, fake_sources, site_config and fake_app: tests/plugins/cli.py

# ---------------------------------------------------------------------------------------------
# --version, --help, usage


def test_version(env, capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"sovtui {sovtui.__version__}\n"


def test_version_subprocess(env):
    proc = run("--version")
    assert proc.returncode == 0 and proc.stdout == f"sovtui {sovtui.__version__}\n" and proc.stderr == ""


@pytest.mark.parametrize("args", [["--help"], ["snapshot", "--help"], ["doctor", "--help"]])
def test_help(env, capsys, args):
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sovtui")
    for word in ("--site", "--demo", "--config", "--log-level"):
        assert word in out
    if args == ["--help"]:
        assert "snapshot" in out and "doctor" in out and "--read-only" in out and "--version" in out


@pytest.mark.parametrize(
    "args",
    [["--bogus"], ["snapshot", "--site", "a", "--demo"], ["--log-level", "loud"], ["nosuchcommand"], ["--seed", "x"]],
)
def test_usage_errors_exit_2(env, capsys, args):
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_seed_without_demo_is_a_usage_error(env, capsys, site_config, fake_sources):
    assert main(["snapshot", "--seed", "3"]) == 2
    assert capsys.readouterr().err == "sovtui: --seed only applies together with --demo\n"


def test_site_and_demo_across_levels(env, capsys, site_config):
    assert main(["--site", "lab", "snapshot", "--demo"]) == 2
    assert "exclude" in capsys.readouterr().err


def test_bad_log_level_env(env, capsys, monkeypatch):
    monkeypatch.setenv("SOVTUI_LOG_LEVEL", "chatty")
    assert main(["snapshot", "--demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sovtui: SOVTUI_LOG_LEVEL: ") and err.count("\n") == 1


# ---------------------------------------------------------------------------------------------
# the TUI launch (with a stand-in for the Textual app)


def test_tui_for_configured_site(env, fake_app, fake_sources, site_config):
    fake_sources.append(FakeSource("prometheus"))
    assert main([]) == 0
    (app,) = fake_app.instances
    assert app.ran
    assert app.site == SiteInfo(name="lab", production=True, read_only=False, demo=False)
    assert [s.name for s in app.sources] == ["prometheus"]
    assert abs(app.clock() - __import__("time").time()) < 5


def test_tui_read_only_flag_and_config(env, fake_app, fake_sources):
    path = write_config(env / "c.toml", "[sites.a]\n[sites.b]\nread_only = true\n")
    assert main(["--config", str(path), "--site", "a", "--read-only"]) == 0
    assert main(["--config", str(path), "--site", "b"]) == 0
    assert main(["--config", str(path), "--site", "a"]) == 0
    assert [app.site.read_only for app in fake_app.instances] == [True, True, False]


def test_tui_return_code_propagates(env, fake_app, fake_sources, site_config):
    fake_app.return_code_to_give = 3
    assert main([]) == 3


@needs_demo
def test_tui_demo(env, fake_app):
    import time

    assert main(["--demo", "--seed", "3", "--read-only"]) == 0
    (app,) = fake_app.instances
    assert app.site.name == "demo" and app.site.demo is True and app.site.read_only is True
    assert app.sources, "the demo has sources"
    t0 = app.clock()
    assert abs(t0 - time.time()) < 60, "the live demo runs on wall time"


def test_demo_clock():
    frozen = demo_clock(1000.0, frozen=True)
    assert frozen() == frozen() == 1000.0
    live = demo_clock(1000.0)
    a = live()
    assert 1000.0 <= a < 1001.0 and live() >= a
