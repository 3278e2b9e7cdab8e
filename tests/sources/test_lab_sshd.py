"""Provides tests that the SSH lab is a real OpenSSH server that asyncssh reaches with key auth and host key checks."""

from __future__ import annotations

import asyncssh
import pytest

pytestmark = pytest.mark.ssh


async def test_asyncssh_key_auth_with_known_hosts(lab_sshd):
    async with asyncssh.connect(
        lab_sshd.host,
        port=lab_sshd.port,
        username=lab_sshd.user,
        client_keys=[str(lab_sshd.client_key)],
        known_hosts=str(lab_sshd.known_hosts),
        agent_path=None,
        config=None,
        connect_timeout=10,
    ) as conn:
        result = await conn.run("echo ok", check=True, timeout=10)
    assert result.stdout == "ok\n"
    assert conn.get_extra_info("username") == lab_sshd.user


async def test_host_key_is_really_verified(lab_sshd, tmp_path):
    other = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    wrong = tmp_path / "known_hosts"
    wrong.write_text(f"[{lab_sshd.host}]:{lab_sshd.port} {other}\n")
    with pytest.raises(asyncssh.HostKeyNotVerifiable):
        await asyncssh.connect(
            lab_sshd.host,
            port=lab_sshd.port,
            username=lab_sshd.user,
            client_keys=[str(lab_sshd.client_key)],
            known_hosts=str(wrong),
            agent_path=None,
            config=None,
            connect_timeout=10,
        )


async def test_only_the_lab_key_gets_in(lab_sshd):
    stranger = asyncssh.generate_private_key("ssh-ed25519")
    with pytest.raises(asyncssh.PermissionDenied):
        await asyncssh.connect(
            lab_sshd.host,
            port=lab_sshd.port,
            username=lab_sshd.user,
            client_keys=[stranger],
            known_hosts=str(lab_sshd.known_hosts),
            agent_path=None,
            config=None,
            connect_timeout=10,
        )
