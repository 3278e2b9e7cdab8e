"""Provides tests of the ``sovtui`` command: version, help, snapshot, doctor, the TUI launch, logging and import cost."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import sovtui
import sovtui.sources.registry as registry
from sovtui.cli import format_checks, main
from sovtui.demo.setup import demo_clock
from sovtui.model.types import DoctorCheck, PartStatus, SiteInfo
from sovtui.sources.base import Source
from tests.fakes import FakeSource

ROOT = Path(__file__).resolve().parent.parent
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


HAVE_DEMO = _importable("sovtui.demo.sources") and _importable("sovtui.demo.cluster")
HAVE_PROMETHEUS = _importable("sovtui.sources.prometheus")
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


class FakeApp:
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


# ---------------------------------------------------------------------------------------------
# snapshot


def test_snapshot_exit_codes_with_fake_sources(env, capsys, fake_sources, site_config):
    fake_sources.append(FakeSource("good"))
    assert main(["snapshot"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["site"] == "lab" and doc["sources"]["good"]["ok"] is True and doc["alerts"] == []
    fake_sources.append(FakeSource("bad", ok=False))
    assert main(["snapshot"]) == 1
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert doc["sources"]["bad"] == doc["sources"]["bad"] | {"ok": False, "error": "unreachable: connection refused"}
    assert err == ""


def test_snapshot_exits_1_and_names_each_part_that_did_not_answer(env, capsys, fake_sources, site_config):
    fake_sources.append(FakeSource("good", parts=(PartStatus("nova", True),)))
    assert main(["snapshot"]) == 0
    good = json.loads(capsys.readouterr().out)["sources"]["good"]
    assert good["complete"] is True and good["failing"] == {}
    fake_sources.append(
        FakeSource("os", parts=(PartStatus("nova", True), PartStatus("neutron", False, "unreachable: refused", None)))
    )
    assert main(["snapshot"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["sources"]["os"]["ok"] is True and doc["sources"]["os"]["complete"] is False
    assert doc["sources"]["os"]["failing"] == {"neutron": {"error": "unreachable: refused", "data_age_s": None}}


def test_snapshot_site_without_sources(env, capsys, fake_sources, site_config):
    assert main(["snapshot"]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["sources"] == {}
    assert "no sources" in err and err.count("\n") == 1


@needs_demo
def test_snapshot_demo_is_reproducible(env):
    first = run("snapshot", "--demo", "--seed", "11")
    assert first.returncode == 0, first.stderr
    assert first.stderr == ""
    doc = json.loads(first.stdout)
    for key in ("site", "taken_at", "sources", "gpus", "ceph", "fabric", "queues", "alerts"):
        assert key in doc, key
    assert doc["site"] == "demo" and doc["demo"] is True
    assert RFC3339.match(doc["taken_at"])
    assert doc["sources"], "the demo has sources"
    for name, status in doc["sources"].items():
        assert {"ok", "error", "latency_s"} <= set(status), name
        assert status["ok"] is True and status["error"] is None, name
    assert doc["gpus"] and doc["ceph"] and doc["fabric"] and doc["queues"] and doc["alerts"]
    second = run("snapshot", "--seed", "11", "--demo")
    assert second.returncode == 0
    assert second.stdout == first.stdout, "same seed, same snapshot"
    other = run("--demo", "--seed", "12", "snapshot")
    assert other.returncode == 0 and other.stdout != first.stdout


@needs_demo
def test_snapshot_demo_default_seed(env, capsys):
    from sovtui.demo.cluster import DEMO_EPOCH
    from sovtui.model.export import rfc3339

    assert main(["snapshot", "--demo"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["taken_at"] == rfc3339(DEMO_EPOCH), "the demo snapshot uses the frozen clock"


@needs_prometheus
def test_snapshot_unreachable_prometheus(env):
    port = closed_port()
    config = write_config(env / "c.toml", f'[sites.lab]\nprometheus_url = "http://127.0.0.1:{port}"\ntimeout_s = 3\n')
    proc = run("snapshot", "--config", str(config), "--log-level", "info")
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)
    (name,) = doc["sources"]
    status = doc["sources"][name]
    assert status["ok"] is False
    assert "unreachable" in status["error"].lower(), status["error"]
    log_file = env / "state" / "sovtui" / "sovtui.log"
    assert log_file.is_file()
    assert name in log_file.read_text(encoding="utf-8")


# ---------------------------------------------------------------------------------------------
# doctor


def test_doctor_all_ok(env, capsys, fake_sources, site_config):
    fake_sources.append(FakeSource("prometheus"))
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "prometheus" in out and "OK" in out and "FAIL" not in out
    assert "1 of 1 checks passed" in out


def test_doctor_failure_exit_1_with_hint(env, capsys, fake_sources, site_config):
    fake_sources += [FakeSource("prometheus"), FakeSource("alertmanager", ok=False)]
    assert main(["doctor"]) == 1
    out, err = capsys.readouterr()
    line = next(row for row in out.splitlines() if row.startswith("alertmanager"))
    assert "FAIL" in line and "connection refused" in line and "is it running?" in line
    assert err == ""


def test_doctor_check_level_failure(env, capsys, fake_sources, site_config):
    checks = [
        DoctorCheck("p", "reachable", True, "v2"),
        DoctorCheck("p", "dcgm metrics", False, "no DCGM_FI_DEV_GPU_UTIL", "deploy dcgm-exporter"),
    ]
    fake_sources.append(FakeSource("p", checks=checks))
    assert main(["doctor"]) == 1
    assert "1 of 2 checks passed" in capsys.readouterr().out


def test_doctor_no_sources(env, capsys, fake_sources, site_config):
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "no sources configured" in out and "prometheus_url" in out


@needs_demo
def test_doctor_demo(env):
    proc = run("doctor", "--demo")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "" and "OK" in proc.stdout and "FAIL" not in proc.stdout


@needs_prometheus
def test_doctor_unreachable(env):
    config = write_config(
        env / "c.toml", f'[sites.lab]\nprometheus_url = "http://127.0.0.1:{closed_port()}"\ntimeout_s = 2\n'
    )
    proc = run("doctor", "--config", str(config))
    assert proc.returncode == 1
    assert "FAIL" in proc.stdout and proc.stderr == ""


def test_format_checks_aligned():
    text = format_checks(
        [
            DoctorCheck("prometheus", "reachable", True, "v2.53.0"),
            DoctorCheck("am", "api", False, "connection\nrefused", "start it"),
        ]
    )
    lines = text.splitlines()
    assert len(lines) == 3
    assert lines[0].split() == ["SOURCE", "CHECK", "STATUS", "DETAIL", "HINT"]
    # every column starts at the same offset in every row
    for word in ("CHECK", "STATUS", "DETAIL"):
        col = lines[0].index(word)
        assert all(line[col - 2 : col] == "  " for line in lines)
    assert lines[2].endswith("connection refused  start it")
    assert all(line == line.rstrip() for line in lines)


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
    if _importable("sovtui.sources.alertmanager"):
        assert kinds == ["PrometheusSource", "AlertmanagerSource"]
    only_prom = registry.build_sources(SiteConfig(name="lab", prometheus_url="http://127.0.0.1:9"))
    assert [type(s).__name__ for s in only_prom] == ["PrometheusSource"]


def test_site_info():
    from sovtui.config import SiteConfig

    assert registry.site_info(SiteConfig(name="p", production=True)) == SiteInfo("p", production=True)
    assert registry.site_info(SiteConfig(name="p"), read_only=True).read_only is True
    assert registry.site_info(SiteConfig(name="p", read_only=True)).read_only is True


def test_snapshot_exits_even_when_a_backend_call_never_returns(tmp_path):
    """keystoneauth waits for ever on its own lock when Keystone answers 401 to version discovery: the snapshot
    still prints, names the source, and exits (the stuck thread does not hold the process)."""
    from tests.lab.stubs import Answer, StubHttpServer

    with StubHttpServer({"*": Answer(401, {"error": {"code": 401, "message": "no"}})}) as stub:
        (tmp_path / "clouds.yaml").write_text(
            "clouds:\n  x:\n    region_name: RegionOne\n    auth:\n"
            f"      auth_url: {stub.url}/v3\n      username: u\n      password: not-a-real-secret\n"
            "      project_name: p\n      user_domain_name: Default\n      project_domain_name: Default\n"
        )
        (tmp_path / "c.toml").write_text('[sites.x]\nopenstack_cloud = "x"\ntimeout_s = 2\n')
        env = dict(
            os.environ,
            OS_CLIENT_CONFIG_FILE=str(tmp_path / "clouds.yaml"),
            SOVTUI_CONFIG=str(tmp_path / "c.toml"),
            XDG_STATE_HOME=str(tmp_path / "state"),
        )
        done = subprocess.run(
            [sys.executable, "-m", "sovtui", "snapshot"], env=env, capture_output=True, text=True, timeout=60
        )
    assert done.returncode == 1, done.stderr
    openstack = json.loads(done.stdout)["sources"]["openstack"]
    assert openstack["ok"] is False and "keystone" in openstack["error"]
    assert "not-a-real-secret" not in done.stdout + done.stderr
