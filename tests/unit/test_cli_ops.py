"""Provides tests of the operation commands on the demo cluster: dry runs, exit codes, global options anywhere, audit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config"))


def sovtui(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "sovtui", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
    )


def test_dry_run_prints_the_plan_as_json_and_changes_nothing(env):
    proc = sovtui("drain", "--demo", "gpu09", "--reason", "XID 79", "--dry-run", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert plan["action"] == "drain" and plan["hosts"] == ["gpu09"] and plan["runnable"]
    layers = {s["layer"] for s in plan["steps"]}
    assert layers == {"kubernetes", "slurm"} and "gpu09: not known to Nova" in plan["notes"]
    assert plan["options"]["reason"] == "XID 79" and plan["options"]["timeout_s"] == 600
    assert sovtui("audit", "--json", env=env).stdout == ""


@pytest.mark.parametrize("where", ["before", "after"])
def test_read_only_refuses_before_or_after_the_command(env, where):
    for cmd in (["drain", "gpu09", "--reason", "x"], ["cordon", "gpu09", "--reason", "x"], ["uncordon", "gpu09"]):
        args = (
            ["--read-only", *cmd, "--demo", "--yes"] if where == "before" else [*cmd, "--demo", "--yes", "--read-only"]
        )
        proc = sovtui(*args, env=env)
        assert proc.returncode == 2 and "read-only" in proc.stderr, (args, proc.stderr)


def test_exit_codes(env):
    assert sovtui("drain", "--demo", "gpu99", "--reason", "x", "--yes", env=env).returncode == 2  # unknown host
    assert sovtui("drain", "--demo", "gpu09", "--yes", env=env).returncode == 2  # no reason
    assert sovtui("drain", "--demo", "gpu09", "--reason", "x", "--timeout", "soon", env=env).returncode == 2
    proc = sovtui("cordon", "--demo", "gpu09", "--reason", "x", env=env)  # no terminal to confirm on
    assert proc.returncode == 2 and "refusing without confirmation" in proc.stderr
    blocked = sovtui("drain", "--demo", "gpu06", "--reason", "x", "--yes", env=env)  # pods with emptyDir data
    assert blocked.returncode == 1 and "BLOCKED" in blocked.stdout and "delete-emptydir-data" in blocked.stdout


def test_cordon_then_uncordon_on_the_demo_are_audited(env):
    proc = sovtui("cordon", "gpu09", "--reason", "rack 4 power work", "--yes", "--json", "--demo", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()[1:] if line.startswith('{"at"')]
    assert {e["state"] for e in events} >= {"cordoned", "drained", "done"}
    assert sovtui("uncordon", "gpu09", "--yes", "--demo", env=env).returncode == 0
    records = [json.loads(x) for x in sovtui("audit", "--json", "--since", "1h", env=env).stdout.splitlines()]
    assert [(r["action"], r["outcome"]) for r in records] == [("cordon", "ok"), ("uncordon", "ok")]
    assert records[0]["options"]["reason"] == "rack 4 power work" and records[0]["user"]
    assert set(records[0]["identities"]) == {"kubernetes", "slurm", "nova"}
    text = sovtui("audit", env=env).stdout
    assert "cordon" in text and "gpu09" in text and "rack 4 power work" in text
