"""Provides tests of the SSH hosts as parts: each failing host named with its reason and age, the snapshot exits 1 naming them, hostile names never reach ssh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from sovtui.app import SovtuiApp
from sovtui.model.types import Gpu, GpuHost, SiteInfo, SourceData, SourceStatus
from sovtui.screens import gpus as gpus_screen
from sovtui.sources.base import Source
from sovtui.widgets.fmt import parts_line
from tests.lab.fleet import Fleet
from tests.lab.waits import eventually


@pytest.fixture(scope="module")
def four(lab_sshd, lab_dir):
    """gpu31 and gpu32 answer; gpu33's host key changed; gpu34 is down."""
    from tests.lab.fakenvml import healthy

    root = lab_dir / "ssh-parts"
    shutil.rmtree(root, ignore_errors=True)
    fleet = Fleet(lab_sshd, root)
    try:
        for name in ("gpu31", "gpu32", "gpu33"):
            fleet.add_sshd(name, healthy(n=2))
        fleet.add_closed("gpu34")
        fleet.write_files(changed=("gpu33",), bulk_target="gpu31")
        yield fleet
    finally:
        fleet.close()


@pytest.mark.ssh
@pytest.mark.nvml
async def test_each_failing_host_is_a_part_with_its_reason(four):
    source = four.source(["gpu31", "gpu32", "gpu33", "gpu34"], timeout_s=3.0)
    try:
        data = await source.fetch()
    finally:
        await source.aclose()
    parts = {p.name: p for p in data.parts}
    assert list(parts) == ["gpu31", "gpu32", "gpu33", "gpu34"]
    assert parts["gpu31"].ok and parts["gpu32"].ok and parts["gpu31"].last_ok_at is not None
    assert not parts["gpu33"].ok and "host key CHANGED" in parts["gpu33"].error and parts["gpu33"].last_ok_at is None
    assert not parts["gpu34"].ok and parts["gpu34"].error.startswith("connection refused")
    status = SourceStatus("ssh", ok=True, last_ok_at=time.time(), parts=data.parts)
    assert status.state(time.time()) == "partial"
    line = parts_line(status, time.time())
    assert "gpu33: host key CHANGED" in line and "(unknown)" in line and "gpu34: connection refused" in line


@pytest.mark.ssh
@pytest.mark.nvml
def test_snapshot_with_two_of_four_hosts_failing_exits_1_naming_them(four, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(
        'default_site = "lab"\n[sites.lab]\ntimeout_s = 10\n[sites.lab.ssh]\n'
        f'hosts = ["gpu31", "gpu32", "gpu33", "gpu34"]\nknown_hosts = "{four.known_hosts}"\ntimeout_s = 5\n'
    )
    env = dict(
        os.environ,
        SOVTUI_CONFIG=str(config),
        SOVTUI_SSH_CONFIG=str(four.ssh_config),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "sovtui", "snapshot"], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 1, done.stderr
    ssh = json.loads(done.stdout)["sources"]["ssh"]
    assert ssh["ok"] and not ssh["complete"]
    assert set(ssh["failing"]) == {"gpu33", "gpu34"}
    assert "CHANGED" in ssh["failing"]["gpu33"]["error"] and "refused" in ssh["failing"]["gpu34"]["error"]
    assert ssh["failing"]["gpu34"]["data_age_s"] is None  # it never answered: unknown, not 0


@pytest.mark.ssh
@pytest.mark.nvml
async def test_every_host_down_is_partial_with_every_host_named(four):
    """The whole fleet failing: still one part per host (each its own why and age), never a healthy-looking source."""
    from sovtui.hub import Hub

    source = four.source(["gpu33", "gpu34"], timeout_s=3.0)
    hub = Hub([source])
    try:
        results = await hub.poll_all()
    finally:
        await hub.stop()
    status = results["ssh"].status
    assert status.state(time.time()) == "partial" and not status.complete
    assert [p.name for p in status.failing_parts] == ["gpu33", "gpu34"]
    assert all(h.error for h in results["ssh"].data.gpu_hosts) and results["ssh"].data.gpus == ()


# ---------------------------------------------------------------------------------- the s key
class _Hosts(Source):
    """GPU hosts as another layer might name them (a DCGM Hostname label, a Kubernetes node): unchecked."""

    name = "prometheus"
    kind = "prometheus"

    def __init__(self, host: str) -> None:
        self.host = host

    async def fetch(self, executor=None) -> SourceData:
        return SourceData(gpus=(Gpu(host=self.host, index=0, uuid="GPU-x"),), gpu_hosts=(GpuHost(self.host),))


@pytest.mark.ui
async def test_the_s_key_refuses_a_hostile_host_name(monkeypatch, tmp_path):
    marker = tmp_path / f"pwned-{uuid.uuid4().hex[:6]}"
    hostile = f"-oProxyCommand=touch {marker}"
    ran = []
    monkeypatch.setattr(gpus_screen.subprocess, "run", lambda *a, **k: ran.append(a))
    monkeypatch.setattr(gpus_screen.shutil, "which", lambda name: "/usr/bin/ssh")
    app = SovtuiApp(SiteInfo("lab"), [_Hosts(hostile)], watch_tty=False)
    async with app.run_test(size=(140, 30)) as pilot:
        await eventually(lambda: app.view.gpus, 10, "the GPU shows", pilot=pilot)
        await pilot.press("2")
        await eventually(
            lambda: app.active_site_screen.selected_host() == hostile, 5, "the host is selected", pilot=pilot
        )
        await pilot.press("s")
        await eventually(
            lambda: any("refused host name" in str(n.message) for n in app._notifications),
            5,
            "the refusal is said",
            pilot=pilot,
        )
    assert ran == [] and not marker.exists()


@pytest.mark.ssh
def test_real_ssh_with_an_option_as_host_name_creates_nothing(lab_sshd, tmp_path):
    """Even past the check, ``--`` keeps a name an argument: the real ssh treats it as a (bad) host name."""
    from sovtui.sources.names import BadName, ssh_argv

    marker = tmp_path / "x"
    hostile = f"-oProxyCommand=touch {marker}"
    with pytest.raises(BadName):
        ssh_argv(hostile)
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host *\n  HostName 127.0.0.1\n  Port {lab_sshd.port}\n  User {lab_sshd.user}\n"
        f"  IdentityFile {lab_sshd.client_key}\n  UserKnownHostsFile {lab_sshd.known_hosts}\n"
        "  BatchMode yes\n  ConnectTimeout 5\n",
        encoding="utf-8",
    )
    ssh = shutil.which("ssh")
    assert ssh
    argv = [ssh, "-F", str(config), "--", hostile, "true"]  # what ssh_argv builds, without the check
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert not marker.exists(), done
    # the same ssh with the name at the front of a real login would have run the command: the lab answers
    ok = subprocess.run([ssh, "-F", str(config), "--", "gpu01", "true"], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
