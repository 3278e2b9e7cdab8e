"""Provides tests of the TOML config: parsing, precedence and one-line errors (also via the CLI)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sovtui.cli import main
from sovtui.config import Config, ConfigError, MetricMap, SshConfig, config_path, load_config, parse_config, xdg_dir

VALID = """
default_site = "lab"

[sites.lab]
prometheus_url = "http://127.0.0.1:9090"
alertmanager_url = "https://am.example:9093/"
kube_context = "lab-admin"
openstack_cloud = "lab"
production = true
read_only = true
refresh_s = 15
timeout_s = 2.5

[sites.lab.ssh]
hosts = ["gpu-01", "gpu-02"]
user = "ops"
port = 2222
known_hosts = "~/.ssh/known_hosts_lab"
concurrency = 8
timeout_s = 4
discover = ["kubernetes", "nova"]

[sites.lab.metrics]
gpu_util = "my_gpu_util"
gpu_label_host = "node"

[sites.other]
prometheus_url = "http://other:9090"
"""


@pytest.fixture
def env(monkeypatch, tmp_path):
    """A clean environment: XDG dirs under tmp_path, no SOVTUI_CONFIG; logging restored afterwards."""
    monkeypatch.delenv("SOVTUI_CONFIG", raising=False)
    monkeypatch.delenv("SOVTUI_LOG_LEVEL", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
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


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# valid files


def test_valid_file_round_trip(env):
    path = write(env / "c.toml", VALID)
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.path == path
    assert config.default_site == "lab"
    assert set(config.sites) == {"lab", "other"}
    lab = config.site(None)
    assert lab.name == "lab"
    assert lab.prometheus_url == "http://127.0.0.1:9090"
    assert lab.alertmanager_url == "https://am.example:9093/"
    assert lab.kube_context == "lab-admin"
    assert lab.openstack_cloud == "lab"
    assert lab.production is True and lab.read_only is True
    assert lab.refresh_s == 15 and lab.timeout_s == 2.5
    assert lab.ssh == SshConfig(
        hosts=("gpu-01", "gpu-02"),
        user="ops",
        port=2222,
        known_hosts="~/.ssh/known_hosts_lab",
        concurrency=8,
        timeout_s=4,
        discover=("kubernetes", "nova"),
    )
    assert lab.metrics.gpu_util == "my_gpu_util"
    assert lab.metrics.gpu_label_host == "node"
    assert lab.metrics.gpu_temp == MetricMap().gpu_temp  # untouched defaults stay
    other = config.site("other")
    assert other.prometheus_url == "http://other:9090"
    assert other.alertmanager_url is None and other.production is False and other.read_only is False
    assert other.ssh == SshConfig() and other.metrics == MetricMap()


def test_single_site_needs_no_default(env):
    config = load_config(write(env / "c.toml", '[sites.only]\nprometheus_url = "http://p:9090"\n'))
    assert config.site(None).name == "only"


def test_two_sites_without_default_asks_for_site(env):
    config = load_config(write(env / "c.toml", "[sites.a]\n[sites.b]\n"))
    with pytest.raises(ConfigError) as err:
        config.site(None)
    assert err.value.key == "default_site" and "--site" in err.value.message
    assert config.site("b").name == "b"


def test_unknown_site_name(env):
    config = load_config(write(env / "c.toml", VALID))
    with pytest.raises(ConfigError) as err:
        config.site("nope")
    assert err.value.key == "--site" and "'nope'" in err.value.message and "lab" in err.value.message


def test_missing_default_file_is_empty_config(env):
    config = load_config()
    assert config.sites == {} and config.path is None
    with pytest.raises(ConfigError) as err:
        config.site(None)
    assert err.value.key == "sites"


# ---------------------------------------------------------------------------------------------
# precedence


def test_precedence_env_then_flag_then_xdg(env, monkeypatch):
    xdg = write(xdg_dir("config") / "config.toml", '[sites.xdg]\nprometheus_url = "http://xdg:9090"\n')
    flag = write(env / "flag.toml", '[sites.flag]\nprometheus_url = "http://flag:9090"\n')
    envfile = write(env / "env.toml", '[sites.envsite]\nprometheus_url = "http://env:9090"\n')

    assert xdg == env / "xdg-config" / "sovtui" / "config.toml"
    assert config_path() == xdg
    assert set(load_config().sites) == {"xdg"}
    assert config_path(flag) == flag
    assert set(load_config(flag).sites) == {"flag"}
    monkeypatch.setenv("SOVTUI_CONFIG", str(envfile))
    assert config_path() == envfile
    assert config_path(flag) == envfile
    assert set(load_config(flag).sites) == {"envsite"}


def test_xdg_default_when_env_unset(monkeypatch, tmp_path):
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("SOVTUI_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert config_path() == tmp_path / ".config" / "sovtui" / "config.toml"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))
    assert xdg_dir("state") == tmp_path / "st" / "sovtui"


# ---------------------------------------------------------------------------------------------
# error paths: each names the file, the key and what was expected

ERRORS = [
    # (id, file text, expected key, words the message must contain)
    ("unknown-top-key", 'colour = "red"\n', "colour", ["unknown key", "default_site", "sites"]),
    (
        "unknown-site-key",
        '[sites.a]\nprometheus = "http://p"\n',
        "sites.a.prometheus",
        ["unknown key", "prometheus_url"],
    ),
    ("unknown-ssh-key", "[sites.a.ssh]\nhost = 'x'\n", "sites.a.ssh.host", ["unknown key", "hosts"]),
    (
        "unknown-metric-key",
        "[sites.a.metrics]\ngpu_utilisation = 'x'\n",
        "sites.a.metrics.gpu_utilisation",
        ["unknown key"],
    ),
    (
        "url-wrong-type",
        "[sites.a]\nprometheus_url = 9090\n",
        "sites.a.prometheus_url",
        ["expected a string", "got a number"],
    ),
    (
        "bool-wrong-type",
        '[sites.a]\nproduction = "yes"\n',
        "sites.a.production",
        ["expected true or false", "got a string"],
    ),
    ("bool-for-number", "[sites.a]\nrefresh_s = true\n", "sites.a.refresh_s", ["expected a number", "got a boolean"]),
    ("number-for-bool", "[sites.a]\nread_only = 1\n", "sites.a.read_only", ["expected true or false", "got a number"]),
    ("bool-for-port", "[sites.a.ssh]\nport = true\n", "sites.a.ssh.port", ["expected a number", "got a boolean"]),
    ("float-for-port", "[sites.a.ssh]\nport = 22.5\n", "sites.a.ssh.port", ["expected a number", "got a number"]),
    ("port-range", "[sites.a.ssh]\nport = 70000\n", "sites.a.ssh.port", ["1-65535", "70000"]),
    ("hosts-not-list", '[sites.a.ssh]\nhosts = "gpu-01"\n', "sites.a.ssh.hosts", ["list of host names"]),
    ("hosts-empty-name", '[sites.a.ssh]\nhosts = ["gpu-01", ""]\n', "sites.a.ssh.hosts", ["list of host names"]),
    ("concurrency-zero", "[sites.a.ssh]\nconcurrency = 0\n", "sites.a.ssh.concurrency", ["at least 1"]),
    ("discover-unknown", '[sites.a.ssh]\ndiscover = ["slurm"]\n', "sites.a.ssh.discover", ["'kubernetes' and 'nova'"]),
    ("ssh-timeout-zero", "[sites.a.ssh]\ntimeout_s = 0\n", "sites.a.ssh.timeout_s", ["positive number of seconds"]),
    (
        "metric-not-string",
        "[sites.a.metrics]\ngpu_util = 3\n",
        "sites.a.metrics.gpu_util",
        ["metric or label name", "got a number"],
    ),
    (
        "bad-url-scheme",
        '[sites.a]\nprometheus_url = "prom:9090"\n',
        "sites.a.prometheus_url",
        ["http:// or https:// URL", "'prom:9090'"],
    ),
    (
        "bad-url-no-host",
        '[sites.a]\nalertmanager_url = "http://"\n',
        "sites.a.alertmanager_url",
        ["http:// or https:// URL"],
    ),
    (
        "bad-url-ipv6",
        '[sites.a]\nprometheus_url = "http://[::1"\n',
        "sites.a.prometheus_url",
        ["http:// or https:// URL"],
    ),
    ("negative-refresh", "[sites.a]\nrefresh_s = -1\n", "sites.a.refresh_s", ["positive number of seconds", "-1"]),
    ("nan-timeout", "[sites.a]\ntimeout_s = nan\n", "sites.a.timeout_s", ["positive number of seconds"]),
    ("inf-refresh", "[sites.a]\nrefresh_s = inf\n", "sites.a.refresh_s", ["positive number of seconds"]),
    (
        "unknown-default-site",
        'default_site = "prod"\n[sites.lab]\n',
        "default_site",
        ["'prod'", "not under [sites]", "lab"],
    ),
    ("default-site-type", "default_site = 1\n[sites.lab]\n", "default_site", ["expected a string"]),
    ("sites-not-table", 'sites = "lab"\n', "sites", ["table of sites"]),
    ("site-not-table", "[sites]\nlab = 3\n", "sites.lab", ["expected a table"]),
    ("ssh-not-table", "[sites.a]\nssh = 3\n", "sites.a.ssh", ["expected a table"]),
    ("metrics-not-table", "[sites.a]\nmetrics = []\n", "sites.a.metrics", ["expected a table", "got a list"]),
    ("invalid-toml", "[sites.a\nprometheus_url = 1\n", "", ["not valid TOML", "line 1"]),
    ("duplicate-key", "[sites.a]\nread_only = true\nread_only = false\n", "", ["not valid TOML"]),
]


@pytest.mark.parametrize(("text", "key", "words"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_names_file_key_and_expectation(env, text, key, words):
    path = write(env / "bad.toml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    exc = err.value
    assert exc.path == str(path)
    assert exc.key == key
    for word in words:
        assert word in exc.message, (word, exc.message)
    line = str(exc)
    assert line.startswith(f"{path}: " + (f"{key}: " if key else ""))
    assert "\n" not in line


def test_missing_explicit_file(env):
    missing = env / "nope.toml"
    with pytest.raises(ConfigError) as err:
        load_config(missing)
    assert err.value.path == str(missing) and "file not found" in err.value.message


def test_missing_env_file(env, monkeypatch):
    missing = env / "from-env.toml"
    monkeypatch.setenv("SOVTUI_CONFIG", str(missing))
    with pytest.raises(ConfigError) as err:
        load_config()
    assert err.value.path == str(missing) and "file not found" in err.value.message


def test_missing_default_file_required(env):
    with pytest.raises(ConfigError) as err:
        load_config(required=True)
    assert err.value.path == str(xdg_dir("config") / "config.toml")


def test_not_utf8(env):
    path = env / "latin1.toml"
    path.write_bytes(b'default_site = "caf\xe9"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "UTF-8" in err.value.message


def test_directory_instead_of_file(env):
    with pytest.raises(ConfigError) as err:
        load_config(env)
    assert "cannot read" in err.value.message


def test_parse_config_without_path():
    with pytest.raises(ConfigError) as err:
        parse_config({"bogus": 1})
    assert str(err.value).startswith("<config>: bogus: unknown key")


# ---------------------------------------------------------------------------------------------
# via the CLI: exit code 2, one line on stderr, no traceback


CLI_ERRORS = [
    e
    for e in ERRORS
    if e[0] in {"unknown-site-key", "bool-for-number", "bad-url-scheme", "unknown-default-site", "invalid-toml"}
]


@pytest.mark.parametrize(("text", "key"), [e[1:3] for e in CLI_ERRORS], ids=[e[0] for e in CLI_ERRORS])
@pytest.mark.parametrize("command", [[], ["snapshot"], ["doctor"]], ids=["tui", "snapshot", "doctor"])
def test_cli_config_error_in_process(env, capsys, text, key, command):
    path = write(env / "bad.toml", text)
    assert main([*command, "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith(f"sovtui: {path}: " + (f"{key}: " if key else ""))
    assert "Traceback" not in err


def test_cli_missing_config_file(env, capsys):
    missing = env / "nope.toml"
    assert main(["snapshot", "--config", str(missing)]) == 2
    out, err = capsys.readouterr()
    assert err == f"sovtui: {missing}: file not found\n"
    assert out == ""


def test_cli_unknown_site(env, capsys):
    path = write(env / "c.toml", VALID)
    assert main(["doctor", "--config", str(path), "--site", "prod"]) == 2
    _, err = capsys.readouterr()
    assert err.startswith(f"sovtui: {path}: --site: no site named 'prod'") and err.count("\n") == 1


def test_cli_no_site_configured_hint(env, capsys):
    for command in ([], ["snapshot"], ["doctor"], ["snapshot", "--site", "prod"]):
        assert main(command) == 2
        out, err = capsys.readouterr()
        assert out == ""
        assert err.count("\n") == 1
        assert "sovtui --demo" in err
        assert str(xdg_dir("config") / "config.toml") in err


def test_cli_config_error_subprocess(env):
    path = write(env / "bad.toml", "[sites.a]\nrefresh_s = true\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sovtui", "snapshot"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SOVTUI_CONFIG": str(path)},
    )
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr == f"sovtui: {path}: sites.a.refresh_s: expected a number, got a boolean\n"
