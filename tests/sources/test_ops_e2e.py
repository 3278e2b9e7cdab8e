"""Provides the end-to-end test of ``sovtui drain`` across all three layers on the lab: the Kubernetes API, a real
OpenStack and a real Slurm, one host in each; a SIGKILL mid-drain, then ``sovtui runs --resume``; then uncordon.

The host is the first Nova compute host of the OpenStack lab, which is also a Slurm node of the Slurm lab and a node
of a Kubernetes API server of this test's own. The CLI runs as a user would run it, in a subprocess, from a config file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.lab.kubeapi.lab import start_cluster
from tests.lab.kubeapi.seed import bare_gpu_pod
from tests.lab.kubeapi.seed import node as node_obj
from tests.lab.openstack import booted_server

pytestmark = [pytest.mark.kubernetes, pytest.mark.openstack, pytest.mark.slurm, pytest.mark.ssh, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def host(lab_openstack, slurm_lab):
    name = lab_openstack.hosts[0]
    if name not in slurm_lab.nodes:
        pytest.fail(
            f"the OpenStack lab's host {name} is not a Slurm node of the Slurm lab ({', '.join(slurm_lab.nodes)})"
        )
    return name


@pytest.fixture(scope="module")
def kube(lab_dir, lab_kube, host, lab_openstack):
    from kubernetes import client, config

    cluster = start_cluster(lab_dir / "ops-e2e-kube", "ops-e2e", {"kind": "gpu"})
    api = config.new_client_from_config(config_file=str(cluster.kubeconfig), context="lab")
    core = client.CoreV1Api(api)
    now = time.time()
    for i, name in enumerate(lab_openstack.hosts):
        core.create_node(node_obj(name, now, index=300 + i)[1])
    core.create_namespace({"metadata": {"name": "e2e"}})
    for i in range(3):
        core.create_namespaced_pod("e2e", bare_gpu_pod(f"trainer-{i}", host, 1, namespace="e2e"))
    yield cluster, core
    api.close()
    cluster.close()


def sovtui(args, env, *, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "sovtui", *args], capture_output=True, text=True, env=env, timeout=timeout, cwd=ROOT
    )


@pytest.fixture
def env(tmp_path, kube, lab_openstack, slurm_lab):
    cluster, _ = kube
    config = tmp_path / "config.toml"
    config.write_text(
        f'default_site = "lab"\n[sites.lab]\nkube_context = "lab"\nopenstack_cloud = "{lab_openstack.cloud}"\n'
        f'timeout_s = 30\nrefresh_s = 2\n[sites.lab.slurm]\nhost = "{slurm_lab.alias}"\n',
        encoding="utf-8",
    )
    return dict(
        os.environ,
        KUBECONFIG=str(cluster.kubeconfig),
        OS_CLIENT_CONFIG_FILE=str(lab_openstack.clouds_yaml),
        SOVTUI_SSH_CONFIG=str(slurm_lab.ssh_config),
        SOVTUI_CONFIG=str(config),
        XDG_STATE_HOME=str(tmp_path / "state"),
    )


@pytest.fixture
def server(lab_openstack, host):
    conn = lab_openstack.connect()
    with booted_server(conn, lab_openstack, "lab.small", host=host, prefix="e2e") as vm:
        yield conn, vm
    conn.close()


def compute_service(conn, host):
    return next(s for s in conn.compute.services() if s.binary == "nova-compute" and s.host == host)


def test_drain_killed_mid_way_resumes_and_uncordon_reopens(env, kube, server, slurm_lab, host):
    _, core = kube
    conn, vm = server
    job = slurm_lab.submit("sleep 600", nodes=host, name="e2e-train")
    slurm_lab.wait_job(job, "RUNNING")
    reason = "XID 79 on GPU 2; ticket #4711; don't 'reboot'"

    dry = sovtui(["drain", host, "--reason", reason, "--force", "--dry-run", "--json"], env)
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    actions = {(s["layer"], s["name"]): s["action"] for s in plan["steps"]}
    assert ("kubernetes", host) in actions, dry.stdout
    assert actions[("kubernetes", host)] == "cordon" and actions[("kubernetes", "e2e/trainer-0")] == "evict"
    assert actions[("nova", host)] == "disable" and actions[("nova", vm.name)] == "live-migrate"
    assert actions[("slurm", host)] == "drain" and actions[("slurm", job)] == "wait"
    assert set(plan["identities"]) == {"kubernetes", "nova", "slurm"}
    assert not core.read_node(host).spec.unschedulable  # a dry run changes nothing

    proc = subprocess.Popen(
        [sys.executable, "-m", "sovtui", "drain", host, "--reason", reason, "--force", "--yes"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        for line in proc.stdout:  # the drain now waits for the Slurm job: kill it there, as a crash would
            if f"job {job}: waiting" in line:
                break
        else:
            pytest.fail(f"the drain ended before waiting for the job: {proc.wait()} {proc.stderr.read()}")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert core.read_node(host).spec.unschedulable

    listed = sovtui(["runs", "--json"], env)
    [run] = json.loads(listed.stdout)
    assert run["action"] == "drain" and run["hosts"] == [host]

    slurm_lab.cancel(job)  # the job ends while nobody watches
    resumed = sovtui(["runs", "--resume", run["id"], "--yes"], env, timeout=300)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert json.loads(sovtui(["runs", "--json"], env).stdout) == []

    node = core.read_node(host)
    assert node.spec.unschedulable and node.metadata.annotations["sovtui.io/cordon-reason"] == reason
    assert not [p for p in core.list_namespaced_pod("e2e").items if p.spec.node_name == host]
    svc = compute_service(conn, host)
    assert svc.status == "disabled" and svc.disabled_reason == reason
    moved = conn.compute.get_server(vm.id)
    assert moved.compute_host != host and moved.status == "ACTIVE"
    [state] = [n for n in slurm_lab.sinfo_json()["nodes"] if n["name"] == host]
    assert "DRAIN" in json.dumps(state).upper() and state.get("reason") == reason

    lines = [json.loads(x) for x in sovtui(["audit", "--json"], env).stdout.splitlines()]
    assert [r["outcome"] for r in lines] == ["ok"] and lines[0]["resumed_from"] == run["id"]
    assert lines[0]["identities"]["slurm"].endswith(f"@{slurm_lab.alias}")
    text = (Path(env["XDG_STATE_HOME"]) / "sovtui" / "audit.jsonl").read_text()
    assert "password" not in text.lower() and "token" not in text.lower()

    back = sovtui(["uncordon", host, "--yes"], env)
    assert back.returncode == 0, back.stdout + back.stderr
    assert not core.read_node(host).spec.unschedulable
    assert compute_service(conn, host).status == "enabled"
    deadline = time.monotonic() + 30
    while True:
        [state] = [n for n in slurm_lab.sinfo_json()["nodes"] if n["name"] == host]
        if "DRAIN" not in json.dumps(state.get("state")).upper():
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.2)


def test_read_only_refuses_every_action_by_exit_code(env, host):
    for args in (["drain", host, "--reason", "x"], ["cordon", host, "--reason", "x"], ["uncordon", host]):
        proc = sovtui([*args, "--yes", "--read-only"], env)
        assert proc.returncode == 2 and "read-only" in proc.stderr, proc.stderr
    assert sovtui(["audit", "--json"], env).stdout == ""


def test_unknown_host_and_no_confirmation_are_usage_errors(env, host):
    proc = sovtui(["drain", "no-such-host", "--reason", "x", "--yes"], env)
    assert proc.returncode == 2 and "unknown host no-such-host" in proc.stderr
    proc = sovtui(["cordon", host, "--reason", "x"], env)  # no terminal, no --yes
    assert proc.returncode == 2 and "refusing without confirmation" in proc.stderr
