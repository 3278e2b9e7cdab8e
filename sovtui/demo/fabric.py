"""Provides the fabric simulation of the demo: traffic on leaf and spine ports and the flapping uplink."""

from __future__ import annotations

from .common import (
    clamp,
    ramp,
)
from .entities import FLAP_PERIOD_S


class FabricSimMixin:
    """Port counters over time; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    def _flap_phase(self, now: float) -> tuple[bool, float]:
        """(oper up, errors/s) of the flapping uplink at ``now``."""
        u = (now - self._story.flap_from) % FLAP_PERIOD_S
        if u < 90:
            return True, ramp(u, 0, 90, 2.0, 40.0)
        if u < 120:
            return False, 0.0
        if u < 170:
            return True, 60.0
        if u < 215:
            return False, 0.0
        if u < 400:
            return True, ramp(u, 215, 400, 30.0, 0.0)
        return True, 0.0

    def _fabric_tick(self, now: float) -> None:
        r = self._fabric_rng
        noise = [r.gauss(0, 1) for _ in range(len(self._ports))]
        flap_link = f"{self._story.flap_link[0]}:{self._story.flap_link[1]}"
        flap_up, flap_err = self._flap_phase(now)
        for port in self._ports_by_link[flap_link]:
            port.oper_up = flap_up
            port.errors_per_s = flap_err
        leaf_load: dict[str, float] = {}
        for i, port in enumerate(self._ports):
            if port.host:
                host = self._hosts[port.host]
                share = (0.55 if host.heavy else 0.12) * host.util_mean / 100.0
                bps = port.speed_mbps * 1e6 * clamp(share * (1.0 + 0.08 * noise[i]), 0.0005, 0.95)
                port.in_bps = bps
                port.out_bps = bps * 0.97
                leaf_load[port.device] = leaf_load.get(port.device, 0.0) + bps
        up_count: dict[str, int] = {}
        for port in self._ports:
            if port.link and port.oper_up and port.device.startswith("leaf"):
                up_count[port.device] = up_count.get(port.device, 0) + 1
        for i, port in enumerate(self._ports):
            if not port.link:
                if not port.host:
                    port.in_bps = port.out_bps = 0.0
                continue
            leaf = port.link.split(":")[0]
            up_links = up_count.get(leaf, 0)
            if not port.oper_up or up_links == 0:
                port.in_bps = port.out_bps = 0.0
                continue
            per_link = 0.6 * leaf_load.get(leaf, 0.0) / up_links
            bps = min(port.speed_mbps * 1e6 * 0.98, per_link * (1.0 + 0.05 * noise[i]))
            port.in_bps = bps
            port.out_bps = bps * 1.02
