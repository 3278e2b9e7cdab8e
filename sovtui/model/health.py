"""Provides the health rules: GPU, Ceph, fabric, queue and alert verdicts with human reasons.

GPU rule table (worst first wins the level; every matching rule adds a reason):

| condition                                              | level | reason                                          |
| ------------------------------------------------------ | ----- | ----------------------------------------------- |
| GPU expected but not enumerated / lost                 | crit  | fell off the bus (XID 79) / GPU missing         |
| XID 79, 48, 95, 119, 120 seen                          | crit  | XID n: <meaning>                                |
| uncorrected (double-bit) ECC errors, volatile > 0      | crit  | n uncorrected ECC errors                        |
| row remapping failed                                   | crit  | row remap failed: replace GPU                   |
| temperature within 2 °C of shutdown                    | crit  | temp n °C near shutdown (m °C)                  |
| XID 63, 64, 92, 94, 74 seen                            | warn  | XID n: <meaning>; drain recommended where so    |
| XID 13, 31, 43, 45 seen                                | warn  | XID n: <meaning> (usually the workload)         |
| row remap pending / retired pages pending              | warn  | row remap pending: drain and reset recommended  |
| thermal or power-brake throttling                      | warn  | throttled: <reasons>                            |
| temperature within 5 °C of slowdown (or >= 85 °C)      | warn  | temp n °C near slowdown (m °C)                  |
| NVLink links down                                      | warn  | n NVLink links down                             |
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .types import Alert, CephState, FabricState, Gpu, Health, QueueState, Verdict

#: XID code → (level, meaning, advice)
XID_RULES: dict[int, tuple[Health, str, str]] = {
    13: (Health.WARN, "graphics engine exception", "usually the workload"),
    31: (Health.WARN, "GPU memory page fault", "usually the workload"),
    43: (Health.WARN, "GPU stopped processing", "usually the workload"),
    45: (Health.WARN, "preemptive cleanup", "usually the workload"),
    48: (Health.CRIT, "double-bit ECC error", "drain and reset"),
    63: (Health.WARN, "row remap event", "drain recommended"),
    64: (Health.WARN, "row remap failure pending", "drain recommended"),
    74: (Health.WARN, "NVLink error", "check NVLink"),
    79: (Health.CRIT, "fell off the bus", "drain and reset host"),
    92: (Health.WARN, "high single-bit ECC rate", "watch"),
    94: (Health.WARN, "contained ECC error", "drain recommended"),
    95: (Health.CRIT, "uncontained ECC error", "drain and reset"),
    119: (Health.CRIT, "GSP RPC timeout", "drain and reset"),
    120: (Health.CRIT, "GSP error", "drain and reset"),
}

#: throttle reasons that mean the hardware protects itself (not just idle or app clocks)
BAD_THROTTLE = ("hw_slowdown", "hw_thermal", "sw_thermal", "hw_power_brake")

DEFAULT_SLOWDOWN_C = 87.0
#: warn at this temperature even when the GPU's own slowdown threshold is higher
HOT_C = 85.0


def xid_reason(code: int) -> tuple[Health, str]:
    level, meaning, advice = XID_RULES.get(code, (Health.WARN, "unlisted XID", "check the kernel log"))
    return level, f"XID {code}: {meaning} ({advice})"


def gpu_verdict(gpu: Gpu) -> Verdict:
    """Apply the rule table to one GPU."""
    found: list[tuple[Health, str]] = []
    if gpu.lost:
        code79 = any(x.code == 79 for x in gpu.xids)
        found.append(
            (Health.CRIT, "fell off the bus (XID 79)" if code79 else "GPU missing: not enumerated by the driver")
        )
    seen_codes: list[int] = []
    for xid in gpu.xids:
        if xid.code not in seen_codes:
            seen_codes.append(xid.code)
    for code in reversed(seen_codes):  # newest first
        if gpu.lost and code == 79:
            continue
        found.append(xid_reason(code))
    if gpu.ecc_uncorrected_volatile is not None and gpu.ecc_uncorrected_volatile > 0:
        found.append((Health.CRIT, f"{gpu.ecc_uncorrected_volatile} uncorrected ECC errors"))
    if gpu.row_remap_failure:
        found.append((Health.CRIT, "row remap failed: replace GPU"))
    if gpu.row_remap_pending:
        found.append((Health.WARN, "row remap pending: drain and reset recommended"))
    if gpu.retired_pages_pending:
        found.append((Health.WARN, "page retirement pending: drain and reset recommended"))
    bad = [r for r in gpu.throttle_reasons if r in BAD_THROTTLE]
    if bad:
        found.append((Health.WARN, "throttled: " + ", ".join(r.replace("_", " ") for r in bad)))
    if gpu.temp_c is not None:
        if gpu.temp_shutdown_c is not None and gpu.temp_c >= gpu.temp_shutdown_c - 2:
            found.append((Health.CRIT, f"temp {gpu.temp_c:.0f} °C near shutdown ({gpu.temp_shutdown_c:.0f} °C)"))
        else:
            slowdown = gpu.temp_slowdown_c if gpu.temp_slowdown_c is not None else DEFAULT_SLOWDOWN_C
            if gpu.temp_c >= slowdown - 5 or gpu.temp_c >= HOT_C:
                found.append((Health.WARN, f"temp {gpu.temp_c:.0f} °C near slowdown ({slowdown:.0f} °C)"))
    if gpu.nvlink_down is not None and gpu.nvlink_down > 0:
        found.append((Health.WARN, f"{gpu.nvlink_down} NVLink link{'s' if gpu.nvlink_down != 1 else ''} down"))
    if gpu.error and not gpu.lost:
        found.append((Health.UNKNOWN, gpu.error))  # not read now: what it showed last is not known to hold
    if not found:
        return Verdict(Health.OK, ())
    # stable sort: crit reasons first, then warn, keeping rule order within a level
    found.sort(key=lambda item: -item[0].rank)
    return Verdict(found[0][0], tuple(reason for _, reason in found))


def ceph_verdict(ceph: CephState) -> Verdict:
    """Capacity against the nearfull/full ratios, plus Ceph's own health."""
    found: list[tuple[Health, str]] = []
    used = ceph.used_pct
    if ceph.total_bytes > 0:
        if used >= ceph.full_ratio * 100:
            found.append((Health.CRIT, f"raw used {used:.0f}% ≥ full {ceph.full_ratio:.0%}"))
        elif used >= ceph.nearfull_ratio * 100:
            found.append((Health.WARN, f"raw used {used:.0f}% ≥ nearfull {ceph.nearfull_ratio:.0%}"))
    for pool in ceph.pools:
        if pool.used_pct >= ceph.full_ratio * 100:
            found.append((Health.CRIT, f"pool {pool.name} {pool.used_pct:.0f}% full"))
        elif pool.used_pct >= ceph.nearfull_ratio * 100:
            found.append((Health.WARN, f"pool {pool.name} {pool.used_pct:.0f}% nearfull"))
    if ceph.osds_total and ceph.osds_up < ceph.osds_total:
        down = ceph.osds_total - ceph.osds_up
        found.append((Health.WARN, f"{down} OSD{'s' if down != 1 else ''} down"))
    if ceph.health == "HEALTH_ERR":
        found.append((Health.CRIT, "HEALTH_ERR" + (": " + ", ".join(ceph.checks) if ceph.checks else "")))
    elif ceph.health == "HEALTH_WARN":
        found.append((Health.WARN, "HEALTH_WARN" + (": " + ", ".join(ceph.checks) if ceph.checks else "")))
    if not found:
        return Verdict(Health.OK if ceph.health == "HEALTH_OK" else Health.UNKNOWN, ())
    found.sort(key=lambda item: -item[0].rank)
    return Verdict(found[0][0], tuple(reason for _, reason in found))


def fabric_verdict(fabric: FabricState) -> Verdict:
    """Links down (admin up, oper down) are crit between switches, warn towards hosts."""
    down = fabric.links_down
    if not down:
        return Verdict(Health.OK, ())
    devices = set(fabric.devices)
    reasons = []
    level = Health.WARN
    for link in down:
        uplink = link.peer.split(":")[0] in devices if link.peer else False
        if uplink:
            level = Health.CRIT
        reasons.append(f"{link.device} {link.ifname} down" + (f" (to {link.peer})" if link.peer else ""))
    return Verdict(level, tuple(reasons))


def queue_verdict(queues: Iterable[QueueState], *, pending_gpus_warn: int = 1, oldest_warn_s: float = 3600) -> Verdict:
    """Pending GPU work is a warning when it has waited long."""
    reasons = []
    level = Health.OK
    for q in queues:
        if (
            q.pending_gpus >= pending_gpus_warn
            and q.oldest_pending_s is not None
            and q.oldest_pending_s >= oldest_warn_s
        ):
            level = Health.WARN
            reasons.append(f"{q.system} {q.name}: {q.pending_gpus} GPUs pending for {q.oldest_pending_s / 3600:.1f} h")
    return Verdict(level, tuple(reasons))


SEVERITY_LEVEL = {
    "critical": Health.CRIT,
    "crit": Health.CRIT,
    "page": Health.CRIT,
    "error": Health.CRIT,
    "warning": Health.WARN,
    "warn": Health.WARN,
}

SEVERITY_ORDER = {"critical": 0, "page": 0, "crit": 0, "error": 1, "warning": 2, "warn": 2, "info": 3}


def alert_level(alert: Alert) -> Health:
    if alert.state != "firing":
        return Health.OK
    return SEVERITY_LEVEL.get(alert.severity.lower(), Health.OK)


def alert_sort_key(alert: Alert) -> tuple[Any, ...]:
    state_rank = {"firing": 0, "pending": 1}.get(alert.state, 2)
    return (state_rank, SEVERITY_ORDER.get(alert.severity.lower(), 4), -(alert.active_since or 0), alert.name)


def drain_recommendation(rows: Iterable[Any], host: str) -> str:
    """Why ``host`` should be drained, from its GPUs' verdicts ("" when none recommends it).

    A GPU whose verdict says "drain" (a failing GPU, an XID that calls for it, a pending row remap)
    recommends it; the worst such GPU's first reason is the reason offered to the operator.
    """
    from .nodes import host_key

    key = host_key(host)
    best = None
    for row in rows:
        if host_key(row.gpu.host) != key or row.verdict.level is Health.OK:
            continue
        if not any("drain" in r for r in row.verdict.reasons) and row.verdict.level is not Health.CRIT:
            continue
        if best is None or row.verdict.level.rank > best.verdict.level.rank:
            best = row
    if best is None:
        return ""
    return f"GPU {best.gpu.index}: {best.verdict.first_reason}"
