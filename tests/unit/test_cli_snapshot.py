"""Provides tests of ``sovtui snapshot`` and ``sovtui doctor``: exit codes, JSON, parts that did not answer, hints."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from sovtui.cli import format_checks, main
from sovtui.model.types import DoctorCheck, PartStatus
from tests.fakes import FakeSource
from tests.plugins.cli import RFC3339, closed_port, needs_demo, needs_prometheus, run, write_config

# fixtures env, fake_sources and site_config: tests/plugins/cli.py

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
