"""Provides the check that no credential reaches the log file, the snapshot, doctor's output, the audit log or the screen."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.lab.procs import free_port

KUBE_TOKEN = "kube-SECRET-token-4f1c9a7e2b"
OS_PASSWORD = "os-SECRET-password-8d2e6b1f"
SSH_PASSPHRASE = "ssh-SECRET-passphrase-3a9c"


class _Deny(http.server.BaseHTTPRequestHandler):
    """Answers every request with 401, after reading it whole (so the client sends its credentials)."""

    def _deny(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"error": {"code": 401, "message": "The request you have made requires authentication."}}'
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _deny

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def deny():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Deny)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _key_body(path: Path) -> list[str]:
    """The base64 lines of a private key file (what must never be shown)."""
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("-----")]


@pytest.mark.ssh
def test_no_credential_in_log_snapshot_doctor_or_state(lab_sshd, deny, tmp_path):
    # an ssh config naming the lab's key (unencrypted) for one host and an encrypted key for another
    locked = tmp_path / "id_locked"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", SSH_PASSPHRASE, "-f", str(locked)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    ssh_config = tmp_path / "ssh_config"
    ssh_config.write_text(
        f"Host good\n  HostName 127.0.0.1\n  Port {lab_sshd.port}\n  User {lab_sshd.user}\n"
        f"  IdentityFile {lab_sshd.client_key}\n  IdentitiesOnly yes\n"
        f"Host locked\n  HostName 127.0.0.1\n  Port {lab_sshd.port}\n  User {lab_sshd.user}\n"
        f"  IdentityFile {locked}\n  IdentitiesOnly yes\n",
        encoding="utf-8",
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: lab\n"
        f"clusters:\n- name: lab\n  cluster:\n    server: {deny}\n"
        f"users:\n- name: lab\n  user:\n    token: {KUBE_TOKEN}\n"
        "contexts:\n- name: lab\n  context:\n    cluster: lab\n    user: lab\n",
        encoding="utf-8",
    )
    # Keystone at a closed port: a Keystone that answers its version discovery with 401 keeps the OpenStack source's
    # thread from ending (the snapshot then never exits), a separate fault of the OpenStack source
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        "clouds:\n  lab:\n    auth:\n"
        f"      auth_url: http://127.0.0.1:{free_port()}/v3\n      username: admin\n      password: {OS_PASSWORD}\n"
        "      project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n"
        "    region_name: RegionOne\n    identity_api_version: 3\n",
        encoding="utf-8",
    )
    config = tmp_path / "config.toml"
    config.write_text(
        'default_site = "lab"\n[sites.lab]\ntimeout_s = 5\nkube_context = "lab"\nopenstack_cloud = "lab"\n'
        f'[sites.lab.ssh]\nhosts = ["good", "locked"]\nknown_hosts = "{lab_sshd.known_hosts}"\ntimeout_s = 5\n',
        encoding="utf-8",
    )
    state = tmp_path / "state"
    env = dict(
        os.environ,
        SOVTUI_CONFIG=str(config),
        SOVTUI_SSH_CONFIG=str(ssh_config),
        KUBECONFIG=str(kubeconfig),
        OS_CLIENT_CONFIG_FILE=str(clouds),
        XDG_STATE_HOME=str(state),
        SOVTUI_LOG_LEVEL="DEBUG",
        SSH_AUTH_SOCK="",
    )
    outputs = {}
    for command in ("snapshot", "doctor"):
        done = subprocess.run(
            [sys.executable, "-m", "sovtui", command], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, (command, done.stdout[-2000:], done.stderr[-2000:])
        outputs[f"{command} stdout"] = done.stdout
        outputs[f"{command} stderr"] = done.stderr
    for path in state.rglob("*"):
        if path.is_file():
            outputs[str(path)] = path.read_text(encoding="utf-8", errors="replace")
    assert any(name.endswith(".log") for name in outputs), "the log file was written"
    secrets = [KUBE_TOKEN, OS_PASSWORD, SSH_PASSPHRASE, *_key_body(lab_sshd.client_key), *_key_body(locked)]
    for where, text in outputs.items():
        for secret in secrets:
            assert secret not in text, f"a credential ({secret[:12]}…) is in {where}"
        assert "PRIVATE KEY-----" not in text, where
    # and doctor says which credential, never its value
    doctor = outputs["doctor stdout"]
    assert f"key {locked}" in doctor and f"key {lab_sshd.client_key}" in doctor, doctor
