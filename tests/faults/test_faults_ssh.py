"""Provides the fault matrix's SSH cells: four GPU hosts behind real sshd processes, each behind a fault proxy, polled by the real app."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from sovtui.app import SovtuiApp
from sovtui.model.types import Health, SiteInfo
from sovtui.sources.hosts import HostsSource
from tests.faults.harness import check_fault, status_of
from tests.lab.faultproxy import FaultProxy
from tests.lab.fleet import Fleet, answer, gpu_json

pytestmark = [pytest.mark.ssh, pytest.mark.ui]

TIMEOUT_S = 1.5
HOSTS = ("gpu01", "gpu02", "gpu03", "gpu04")
#: the bound on one probe answer in these cells (the source's default is 4 MB)
ANSWER_LIMIT = 128 * 1024


class FaultFleet:
    """The lab fleet with a :class:`FaultProxy` in front of every sshd, and its own ssh config and known_hosts."""

    def __init__(self, fleet: Fleet, root: Path) -> None:
        self.fleet = fleet
        self.proxies = {name: FaultProxy("127.0.0.1", fleet.hosts[name].port) for name in HOSTS}
        self.ssh_config = root / "ssh_config.faults"
        self.known_hosts = root / "known_hosts.faults"
        self.bad_key = root / "id_ed25519_not_authorized"
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.bad_key)],
            check=True,
            capture_output=True,
            timeout=30,
        )
        self.write_config()
        lines = [f"[127.0.0.1]:{self.proxies[n].port} {fleet.hosts[n].host_public_key}" for n in HOSTS]
        self.known_hosts.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def write_config(self, *, bad_key_for: tuple[str, ...] = ()) -> None:
        blocks = []
        lab = self.fleet.lab
        for name in HOSTS:
            key = self.bad_key if name in bad_key_for else lab.client_key
            blocks.append(
                f"Host {name}\n  HostName 127.0.0.1\n  Port {self.proxies[name].port}\n  User {lab.user}\n"
                f"  IdentityFile {key}\n  IdentitiesOnly yes\n"
            )
        tmp = self.ssh_config.with_suffix(".tmp")
        tmp.write_text("\n".join(blocks), encoding="utf-8")
        tmp.replace(self.ssh_config)

    def cut(self, name: str) -> None:
        """Drop the host's open connections (reset), leaving its proxy passing new ones."""
        self.proxies[name].set("reset")
        self.proxies[name].heal()

    def new_host_key(self, name: str) -> None:
        """Restart the host's sshd with a new host key (known_hosts keeps the old one)."""
        host = self.fleet.hosts[name]
        key = host.workdir / "ssh_host_ed25519_key"
        saved = host.workdir / "ssh_host_ed25519_key.orig"
        if not saved.exists():
            shutil.copy2(key, saved)
        key.unlink()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True, capture_output=True, timeout=30
        )
        self.fleet.stop(name)
        self.fleet.start(name)

    def old_host_key(self, name: str) -> None:
        host = self.fleet.hosts[name]
        saved = host.workdir / "ssh_host_ed25519_key.orig"
        shutil.copy2(saved, host.workdir / "ssh_host_ed25519_key")
        self.fleet.stop(name)
        self.fleet.start(name)

    def good_answer(self, name: str) -> None:
        self.fleet.set_answer(name, answer(name, [gpu_json(i) for i in range(4)]))

    def source(self) -> HostsSource:
        """The real SSH source over the proxies, with the stand-in probe, a short timeout and a quick backoff."""
        return HostsSource(
            self.fleet.site(timeout_s=TIMEOUT_S, known_hosts=str(self.known_hosts)),
            hosts=list(HOSTS),
            ssh_config=str(self.ssh_config),
            probe_cmd=self.fleet.standin_cmd,
            backoff_base_s=0.2,
            backoff_cap_s=1.0,
            answer_limit=ANSWER_LIMIT,
        )

    def close(self) -> None:
        for proxy in self.proxies.values():
            proxy.close()


@pytest.fixture(scope="module")
def faults(lab_sshd, lab_dir):
    from tests.lab.fakenvml import healthy

    root = lab_dir / "ssh-faults"
    shutil.rmtree(root, ignore_errors=True)
    fleet = Fleet(lab_sshd, root)
    ff = None
    try:
        for name in HOSTS:
            fleet.add_sshd(name, healthy())
        fleet.write_files()
        ff = FaultFleet(fleet, root)
        yield ff
    finally:
        if ff is not None:
            ff.close()
        fleet.close()


def _app(ff: FaultFleet) -> SovtuiApp:
    return SovtuiApp(SiteInfo("lab"), [ff.source()], watch_tty=False)


def _shown(*hosts: str):
    """The data kept on screen: the GPUs of ``hosts`` (those the fault leaves alone)."""

    def kept(app) -> bool:
        seen = {row.gpu.host for row in app.view.gpus or ()}
        return set(hosts) <= seen

    return kept


def _others_update(app, hosts: tuple[str, ...]) -> None:
    """While one host fails, the others answer every poll: their readings are at most a few polls old."""
    now = app.clock()
    by_name = {h.name: h for h in app.view.gpu_hosts or ()}
    for name in hosts:
        host = by_name[name]
        assert not host.error, host
        assert host.observed_at is not None and now - host.observed_at < 4 * TIMEOUT_S, (name, now - host.observed_at)


_HUGE = "RAW:" + '{"v": 1, "gpus": [' + "0" * (3 * ANSWER_LIMIT)
_CELLS = {
    # fault: (hosts hit, inject, heal, says)
    "down": (
        ("gpu03",),
        lambda ff: ff.proxies["gpu03"].set("refuse"),
        lambda ff: ff.proxies["gpu03"].heal(),
        ("ssh partial", "gpu03", "refused"),
    ),
    "slow": (
        ("gpu03",),
        lambda ff: ff.proxies["gpu03"].set("slow", delay_s=10 * TIMEOUT_S),
        lambda ff: ff.proxies["gpu03"].heal(),
        ("ssh partial", "gpu03", "no SSH answer", "1.5s"),
    ),
    "401": (
        ("gpu03",),
        lambda ff: (ff.write_config(bad_key_for=("gpu03",)), ff.cut("gpu03")),
        lambda ff: ff.write_config(),
        ("ssh partial", "gpu03", "permission denied"),
    ),
    "garbage": (
        ("gpu03",),
        lambda ff: ff.fleet.set_answer("gpu03", "RAW:<html>502 Bad Gateway \x01</html>"),
        lambda ff: ff.good_answer("gpu03"),
        ("ssh partial", "gpu03", "not JSON"),
    ),
    "truncated": (
        ("gpu03",),
        lambda ff: ff.fleet.set_answer("gpu03", 'RAW:{"v": 1, "host": "gpu03", "gpus": [{"ind'),
        lambda ff: ff.good_answer("gpu03"),
        ("ssh partial", "gpu03", "not JSON"),
    ),
    "reset": (
        ("gpu03",),
        lambda ff: ff.proxies["gpu03"].set("reset"),
        lambda ff: ff.proxies["gpu03"].heal(),
        ("ssh partial", "gpu03", "no SSH answer"),
    ),
    "oversized": (
        ("gpu03",),
        lambda ff: ff.fleet.set_answer("gpu03", _HUGE),
        lambda ff: ff.good_answer("gpu03"),
        ("ssh partial", "gpu03", "longer than 128 kB"),
    ),
    "half-fleet": (
        ("gpu03", "gpu04"),
        lambda ff: (ff.proxies["gpu03"].set("refuse"), ff.proxies["gpu04"].set("refuse")),
        lambda ff: (ff.proxies["gpu03"].heal(), ff.proxies["gpu04"].heal()),
        ("ssh partial", "gpu03", "gpu04", "refused"),
    ),
    "host-key": (
        ("gpu03",),
        lambda ff: ff.new_host_key("gpu03"),
        lambda ff: ff.old_host_key("gpu03"),
        ("ssh partial", "gpu03", "host key CHANGED"),
    ),
}


@pytest.mark.parametrize("fault", [pytest.param(f, marks=pytest.mark.fault("ssh", f), id=f) for f in _CELLS])
async def test_ssh_fault(faults, fault):
    hit, inject, heal, says = _CELLS[fault]
    others = tuple(h for h in HOSTS if h not in hit)
    app = _app(faults)

    healed = []

    def healing():
        _others_update(app, others)  # the fault lasted: the hosts it left alone kept answering on time
        status = status_of(app, "ssh")
        assert {p.name for p in status.failing_parts} == set(hit), status.failing_parts
        # the failing hosts' GPUs stay on screen with their last readings, unknown rather than ok or gone
        stale = [row for row in app.view.gpus if row.gpu.host in hit]
        assert stale and all(
            row.verdict.level is Health.UNKNOWN and "no reading since" in row.gpu.error for row in stale
        ), [(r.gpu.host, r.verdict) for r in stale]
        heal(faults)
        healed.append(True)

    started = time.monotonic()
    try:
        async with app.run_test(size=(160, 30)) as pilot:
            seen = await check_fault(
                pilot,
                "ssh",
                inject=lambda: inject(faults),
                heal=healing,
                says=says,
                kept=_shown(*(others if fault == "half-fleet" else HOSTS)),
                state="partial",
                first_s=20,
                fault_s=20,
                recover_s=30,
            )
            # and the fleet is whole again: every host answers
            assert {row.gpu.host for row in app.view.gpus} == set(HOSTS)
    finally:
        if not healed:
            heal(faults)
    print(f"ssh x {fault}: {time.monotonic() - started:.1f}s; header: {seen['header'].splitlines()[-1]}")
