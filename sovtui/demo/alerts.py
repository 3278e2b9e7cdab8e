"""Provides the demo's alert rules: what fires or is pending, and since when, evaluated each tick."""

from __future__ import annotations

from ..model.types import Alert
from .common import XID_MEANING
from .entities import SLURM_BACKLOG_GPUS


class AlertRulesMixin:
    """The sim's Prometheus rules; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    def _evaluate_alerts(self, now: float) -> None:
        specs: list[tuple[tuple, str, str, float, tuple, str, str]] = []

        def add(
            name: str, severity: str, for_s: float, labels: dict[str, str], summary: str, description: str = ""
        ) -> None:
            lab = tuple(sorted({"alertname": name, "severity": severity, **labels}.items()))
            specs.append(((name, lab), name, severity, for_s, lab, summary, description))

        add(
            "Watchdog",
            "none",
            0.0,
            {},
            "An alert that should always be firing to certify that Alertmanager is working properly.",
        )
        for host in self._hosts.values():
            for g in host.gpus:
                if not (g.xids or g.ecc_uncorrected_volatile or g.throttle):
                    continue
                gl = {"Hostname": g.host, "gpu": str(g.index), "UUID": g.uuid, "modelName": g.model.name}
                if g.xids and (g.lost or now - (g.xids[-1].at or now) <= 600.0):
                    code = g.xids[-1].code
                    add(
                        "GpuXidErrors",
                        "critical",
                        0.0,
                        gl,
                        f"GPU {g.host}/{g.index} reported XID {code} ({XID_MEANING.get(code, 'see NVIDIA XID catalog')})",
                        "DCGM_FI_DEV_XID_ERRORS is non-zero: the driver logged an XID error for this GPU.",
                    )
                if g.ecc_uncorrected_volatile:
                    add(
                        "GpuEccUncorrectable",
                        "critical",
                        0.0,
                        gl,
                        f"GPU {g.host}/{g.index} has {g.ecc_uncorrected_volatile} uncorrectable ECC error(s)",
                        "Drain the node and reset the GPU to apply pending row remaps.",
                    )
                if not g.lost and ("sw_thermal" in g.throttle or "hw_thermal" in g.throttle):
                    add(
                        "GpuThermalThrottling",
                        "warning",
                        60.0,
                        gl,
                        f"GPU {g.host}/{g.index} is thermally throttling at {g.temp:.0f} °C",
                        "Check fans and airflow of the host.",
                    )
        nearfull = 85.0
        for pool in self._ceph_pools():
            if pool.used_pct >= nearfull:
                add(
                    "CephPoolNearFull",
                    "warning",
                    60.0,
                    {"name": pool.name},
                    f"Ceph pool {pool.name} is {pool.used_pct:.1f}% full (nearfull at {nearfull:.0f}%)",
                )
        for osd in self._osds:
            if not osd.up:
                add(
                    "CephOSDDown",
                    "warning",
                    30.0,
                    {"ceph_daemon": f"osd.{osd.id}", "hostname": osd.host},
                    f"osd.{osd.id} on {osd.host} is down",
                )
        for port in self._ports:
            labels = {"instance": port.device, "ifName": port.ifname}
            if port.admin_up and not port.oper_up:
                add(
                    "FabricLinkDown",
                    "critical",
                    10.0,
                    labels,
                    f"{port.device} {port.ifname} is down" + (f" (to {port.peer})" if port.peer else ""),
                )
            if port.errors_per_s >= 1.0:
                add(
                    "FabricLinkErrors",
                    "warning",
                    60.0,
                    labels,
                    f"{port.device} {port.ifname} has {port.errors_per_s:.0f} input errors/s"
                    + (f" (to {port.peer})" if port.peer else ""),
                )
        for queue in self._slurm_queues(now):
            if queue.pending_gpus >= SLURM_BACKLOG_GPUS:
                add(
                    "SlurmQueueBacklog",
                    "warning",
                    120.0,
                    {"partition": queue.name},
                    f"Slurm partition {queue.name} has {queue.pending_gpus} GPUs pending in {queue.pending_jobs} jobs",
                )
        for queue in self._k8s_queues(now):
            if queue.pending_jobs:
                add(
                    "KubeGpuPodPending",
                    "warning",
                    300.0,
                    {"namespace": queue.name},
                    f"{queue.pending_jobs} GPU pod(s) pending in namespace {queue.name} ({queue.pending_gpus} GPUs)",
                )
        keys = {key for key, *_ in specs}
        for key in [k for k in self._alert_since if k not in keys]:
            del self._alert_since[key]
        for key, *_ in specs:
            self._alert_since.setdefault(key, now)
        self._alert_specs = specs

    def alerts(self) -> tuple[Alert, ...]:
        """Alerts from the sim's rules, as Prometheus' /api/v1/alerts would list them."""
        now = self.now
        out = []
        for key, name, severity, for_s, labels, summary, description in self._alert_specs:
            since = self._alert_since[key]
            state = "firing" if now - since >= for_s else "pending"
            out.append(Alert(name, severity, state, labels, summary, description, since, "prometheus"))
        return tuple(out)
