"""Provides tests of the ``[sites.X.slurm]`` config table: its values, its defaults and its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from sovtui.config import ConfigError, SlurmConfig, load_config, parse_config


@pytest.fixture(autouse=True)
def no_env_config(monkeypatch):
    monkeypatch.delenv("SOVTUI_CONFIG", raising=False)  # it would win over the file given


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_slurm_table_round_trip(tmp_path):
    path = write(tmp_path / "c.toml", '[sites.lab.slurm]\nhost = "login1"\nsudo = true\ntimeout_s = 4.5\n')
    site = load_config(path).site("lab")
    assert site.slurm == SlurmConfig(host="login1", sudo=True, timeout_s=4.5)


def test_slurm_defaults_when_absent():
    site = parse_config({"sites": {"a": {}}}).site("a")
    assert site.slurm == SlurmConfig() and site.slurm.host is None
    assert (site.slurm.sudo, site.slurm.timeout_s) == (False, 10.0)


ERRORS = [
    ("not-table", "[sites.a]\nslurm = 3\n", "sites.a.slurm", ["expected a table"]),
    ("unknown-key", '[sites.a.slurm]\nhost = "l"\nlogin = "x"\n', "sites.a.slurm.login", ["unknown key", "host"]),
    ("host-type", "[sites.a.slurm]\nhost = 1\n", "sites.a.slurm.host", ["expected a string", "got a number"]),
    ("host-empty", '[sites.a.slurm]\nhost = ""\n', "sites.a.slurm.host", ["ssh host name or alias"]),
    ("host-space", '[sites.a.slurm]\nhost = "login 1"\n', "sites.a.slurm.host", ["ssh host name or alias"]),
    ("host-option", '[sites.a.slurm]\nhost = "-oProxyCommand=x"\n', "sites.a.slurm.host", ["ssh host name"]),
    ("sudo-type", '[sites.a.slurm]\nhost = "l"\nsudo = "yes"\n', "sites.a.slurm.sudo", ["expected true or false"]),
    (
        "timeout-zero",
        '[sites.a.slurm]\nhost = "l"\ntimeout_s = 0\n',
        "sites.a.slurm.timeout_s",
        ["positive number of seconds"],
    ),
    (
        "timeout-bool",
        '[sites.a.slurm]\nhost = "l"\ntimeout_s = true\n',
        "sites.a.slurm.timeout_s",
        ["expected a number", "got a boolean"],
    ),
    ("no-host", "[sites.a.slurm]\nsudo = true\n", "sites.a.slurm.host", ["missing", "login host"]),
]


@pytest.mark.parametrize(("text", "key", "words"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_slurm_errors_name_file_key_and_expectation(tmp_path, text, key, words):
    path = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    exc = err.value
    assert (exc.path, exc.key) == (str(path), key)
    for word in words:
        assert word in exc.message, (word, exc.message)
    assert str(exc).startswith(f"{path}: {key}: ") and "\n" not in str(exc)
