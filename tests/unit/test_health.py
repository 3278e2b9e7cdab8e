"""Provides tests of the health rules: the GPU rule table row by row, Ceph, fabric, queues and alerts."""

from __future__ import annotations

import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sovtui.model.health as health
from sovtui.model.health import (
    BAD_THROTTLE,
    XID_RULES,
    alert_level,
    alert_sort_key,
    ceph_verdict,
    fabric_verdict,
    gpu_verdict,
    queue_verdict,
    xid_reason,
)
from sovtui.model.types import (
    Alert,
    CephPool,
    CephState,
    FabricLink,
    FabricState,
    Gpu,
    Health,
    QueueState,
    Verdict,
    XidEvent,
)

CRIT, WARN, OK, UNKNOWN = Health.CRIT, Health.WARN, Health.OK, Health.UNKNOWN


def gpu(**kw) -> Gpu:
    kw.setdefault("host", "gpu-01")
    kw.setdefault("index", 0)
    return Gpu(**kw)


def xids(*codes: int) -> tuple[XidEvent, ...]:
    return tuple(XidEvent(code, at=1000.0 + i) for i, code in enumerate(codes))


# ---------------------------------------------------------------------------------------------
# Health basics


def test_health_order_and_glyphs():
    assert Health.worst([OK, WARN, UNKNOWN]) is WARN
    assert Health.worst([OK, UNKNOWN]) is UNKNOWN
    assert Health.worst([CRIT, WARN]) is CRIT
    assert Health.worst([]) is OK
    assert len({h.glyph for h in Health}) == 4


def test_healthy_gpu_is_ok():
    v = gpu_verdict(
        gpu(
            util_pct=99,
            temp_c=60,
            temp_slowdown_c=90,
            temp_shutdown_c=95,
            power_w=300,
            ecc_uncorrected_volatile=0,
            ecc_corrected_volatile=12,
            row_remap_pending=False,
            row_remap_failure=False,
            nvlink_down=0,
            throttle_reasons=("gpu_idle", "sw_power_cap", "applications_clocks_setting"),
        )
    )
    assert v == Verdict(OK, ())
    assert gpu_verdict(gpu()) == Verdict(OK, ())


# ---------------------------------------------------------------------------------------------
# the GPU rule table, row by row (see the module docstring of sovtui.model.health)


def test_row_lost_gpu_is_missing():
    v = gpu_verdict(gpu(lost=True))
    assert v.level is CRIT and v.reasons == ("GPU missing: not enumerated by the driver",)


def test_row_lost_gpu_with_xid79_fell_off_the_bus():
    v = gpu_verdict(gpu(lost=True, xids=xids(79)))
    assert v.level is CRIT
    assert v.reasons == ("fell off the bus (XID 79)",), "XID 79 is not repeated as its own reason"


@pytest.mark.parametrize("code", [79, 48, 95, 119, 120])
def test_row_critical_xids(code):
    v = gpu_verdict(gpu(xids=xids(code)))
    assert v.level is CRIT
    meaning = XID_RULES[code][1]
    assert v.reasons == (f"XID {code}: {meaning} ({XID_RULES[code][2]})",)


def test_row_uncorrected_ecc():
    v = gpu_verdict(gpu(ecc_uncorrected_volatile=3))
    assert v == Verdict(CRIT, ("3 uncorrected ECC errors",))
    assert gpu_verdict(gpu(ecc_uncorrected_volatile=0)).level is OK
    assert gpu_verdict(gpu(ecc_uncorrected_volatile=-1)).level is OK, "a nonsense negative count is no error"
    # aggregate (lifetime) errors alone do not fire this volatile rule
    assert gpu_verdict(gpu(ecc_uncorrected_aggregate=5)).level is OK
    # corrected errors are normal
    assert gpu_verdict(gpu(ecc_corrected_volatile=10_000)).level is OK


def test_row_remap_failed():
    assert gpu_verdict(gpu(row_remap_failure=True)) == Verdict(CRIT, ("row remap failed: replace GPU",))
    assert gpu_verdict(gpu(row_remap_failure=False)).level is OK


def test_row_temperature_near_shutdown():
    v = gpu_verdict(gpu(temp_c=93, temp_shutdown_c=95, temp_slowdown_c=90))
    assert v == Verdict(CRIT, ("temp 93 °C near shutdown (95 °C)",)), "near shutdown replaces the slowdown warning"
    assert gpu_verdict(gpu(temp_c=96, temp_shutdown_c=95)).level is CRIT
    assert gpu_verdict(gpu(temp_c=92.9, temp_shutdown_c=95, temp_slowdown_c=100)).level is WARN  # only >= 85 °C


@pytest.mark.parametrize("code", [63, 64, 92, 94, 74])
def test_row_warning_xids(code):
    v = gpu_verdict(gpu(xids=xids(code)))
    assert v.level is WARN and v.reasons == (xid_reason(code)[1],)
    assert v.reasons[0].startswith(f"XID {code}: ")


@pytest.mark.parametrize("code", [13, 31, 43, 45])
def test_row_workload_xids(code):
    v = gpu_verdict(gpu(xids=xids(code)))
    assert v.level is WARN
    assert v.reasons[0].startswith(f"XID {code}: ") and v.reasons[0].endswith("(usually the workload)")


def test_unlisted_xid_is_a_warning():
    v = gpu_verdict(gpu(xids=xids(999)))
    assert v.level is WARN and v.reasons == ("XID 999: unlisted XID (check the kernel log)",)


def test_row_remap_or_page_retirement_pending():
    assert gpu_verdict(gpu(row_remap_pending=True)) == Verdict(
        WARN, ("row remap pending: drain and reset recommended",)
    )
    v = gpu_verdict(gpu(retired_pages_pending=True))
    assert v.level is WARN and "pending" in v.reasons[0] and "drain and reset" in v.reasons[0]


@pytest.mark.parametrize("reason", BAD_THROTTLE)
def test_row_thermal_or_power_brake_throttle(reason):
    v = gpu_verdict(gpu(throttle_reasons=("gpu_idle", reason)))
    assert v == Verdict(WARN, (f"throttled: {reason.replace('_', ' ')}",))


def test_benign_throttle_reasons_are_ok():
    assert gpu_verdict(gpu(throttle_reasons=("gpu_idle", "sw_power_cap", "applications_clocks_setting"))).level is OK


def test_throttle_reasons_joined():
    v = gpu_verdict(gpu(throttle_reasons=("hw_slowdown", "hw_power_brake")))
    assert v.reasons == ("throttled: hw slowdown, hw power brake",)


def test_row_temperature_near_slowdown():
    assert gpu_verdict(gpu(temp_c=85, temp_slowdown_c=90)) == Verdict(WARN, ("temp 85 °C near slowdown (90 °C)",))
    assert gpu_verdict(gpu(temp_c=84.5, temp_slowdown_c=90)).level is OK
    # unknown slowdown: the default threshold applies
    assert gpu_verdict(gpu(temp_c=health.DEFAULT_SLOWDOWN_C - 5)).level is WARN
    assert gpu_verdict(gpu(temp_c=health.DEFAULT_SLOWDOWN_C - 5.5)).level is OK
    # "... or >= 85 °C": a GPU with a high slowdown threshold still warns at 85 °C
    assert gpu_verdict(gpu(temp_c=86, temp_slowdown_c=100, temp_shutdown_c=105)).level is WARN
    assert gpu_verdict(gpu(temp_c=84, temp_slowdown_c=100, temp_shutdown_c=105)).level is OK
    assert gpu_verdict(gpu(temp_c=None, temp_slowdown_c=90)).level is OK


def test_row_nvlink_down():
    assert gpu_verdict(gpu(nvlink_down=2)) == Verdict(WARN, ("2 NVLink links down",))
    assert gpu_verdict(gpu(nvlink_down=1)) == Verdict(WARN, ("1 NVLink link down",))
    assert gpu_verdict(gpu(nvlink_down=0)).level is OK
    assert gpu_verdict(gpu(nvlink_down=-3)).level is OK


def test_every_matching_rule_adds_a_reason_crit_first():
    g = gpu(
        xids=xids(13, 79, 13),
        nvlink_down=1,
        ecc_uncorrected_volatile=2,
        row_remap_pending=True,
        temp_c=86,
        temp_slowdown_c=90,
    )
    v = gpu_verdict(g)
    assert v.level is CRIT
    assert v.reasons == (
        "XID 79: fell off the bus (drain and reset host)",
        "2 uncorrected ECC errors",
        "XID 13: graphics engine exception (usually the workload)",
        "row remap pending: drain and reset recommended",
        "temp 86 °C near slowdown (90 °C)",
        "1 NVLink link down",
    )
    assert v.first_reason == v.reasons[0]


def test_xids_newest_first_and_deduplicated():
    v = gpu_verdict(gpu(xids=xids(31, 43, 31, 13)))
    assert [r.split(":")[0] for r in v.reasons] == ["XID 13", "XID 43", "XID 31"]


def test_rule_table_docstring_matches_xid_rules():
    """Every XID the docstring lists has that row's level in XID_RULES, and vice versa."""
    doc_levels: dict[int, Health] = {}
    for line in health.__doc__.splitlines():
        m = re.match(r"\|\s*XID ([\d, ]+) seen\s*\|\s*(\w+)\s*\|", line)
        if m:
            for code in m.group(1).split(","):
                doc_levels[int(code)] = Health(m.group(2))
    assert doc_levels == {code: level for code, (level, _, _) in XID_RULES.items()}


# ---------------------------------------------------------------------------------------------
# property: gpu_verdict never raises and its level is the worst matching rule's


def expected_levels(g: Gpu) -> list[Health]:
    """An independent reading of the rule table: one level per matching rule."""
    levels = []
    if g.lost:
        levels.append(CRIT)
    codes = list(dict.fromkeys(x.code for x in g.xids))
    for code in codes:
        if g.lost and code == 79:
            continue
        levels.append(XID_RULES.get(code, (WARN,))[0])
    if g.ecc_uncorrected_volatile is not None and g.ecc_uncorrected_volatile > 0:
        levels.append(CRIT)
    if g.row_remap_failure:
        levels.append(CRIT)
    if g.row_remap_pending:
        levels.append(WARN)
    if g.retired_pages_pending:
        levels.append(WARN)
    if any(r in BAD_THROTTLE for r in g.throttle_reasons):
        levels.append(WARN)
    if g.temp_c is not None:
        if g.temp_shutdown_c is not None and g.temp_c >= g.temp_shutdown_c - 2:
            levels.append(CRIT)
        else:
            slowdown = g.temp_slowdown_c if g.temp_slowdown_c is not None else health.DEFAULT_SLOWDOWN_C
            if g.temp_c >= slowdown - 5 or g.temp_c >= 85:
                levels.append(WARN)
    if g.nvlink_down is not None and g.nvlink_down > 0:
        levels.append(WARN)
    return levels


any_float = st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.floats(min_value=20, max_value=110)
any_int = st.none() | st.integers(min_value=-(2**40), max_value=2**40)
any_bool = st.none() | st.booleans()
xid_codes = st.sampled_from(sorted(XID_RULES)) | st.integers(min_value=0, max_value=200)
xid_events = st.builds(XidEvent, code=xid_codes, at=st.none() | st.floats(0, 2e9), message=st.text(max_size=5))
throttle = st.sampled_from([*BAD_THROTTLE, "gpu_idle", "sw_power_cap", "applications_clocks_setting", "x"])

gpus = st.builds(
    Gpu,
    host=st.text(max_size=8),
    index=st.integers(0, 15),
    uuid=st.text(max_size=8),
    name=st.text(max_size=8),
    util_pct=any_float,
    mem_used_mib=any_float,
    mem_total_mib=any_float,
    temp_c=any_float,
    temp_slowdown_c=any_float,
    temp_shutdown_c=any_float,
    power_w=any_float,
    ecc_corrected_volatile=any_int,
    ecc_uncorrected_volatile=any_int,
    ecc_uncorrected_aggregate=any_int,
    row_remap_pending=any_bool,
    row_remap_failure=any_bool,
    retired_pages_pending=any_bool,
    throttle_reasons=st.lists(throttle, max_size=4).map(tuple),
    nvlink_down=any_int,
    xids=st.lists(xid_events, max_size=5).map(tuple),
    lost=st.booleans(),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gpus)
def test_gpu_verdict_level_is_worst_rule(g):
    v = gpu_verdict(g)
    levels = expected_levels(g)
    assert v.level is Health.worst(levels)
    assert len(v.reasons) == len(levels)
    assert all(isinstance(r, str) and r for r in v.reasons)
    # each reason reads as its rule's level, and crit reasons come first
    read = [reason_level(r) for r in v.reasons]
    assert sorted(read, key=lambda h: h.rank) == sorted(levels, key=lambda h: h.rank)
    assert [h.rank for h in read] == sorted((h.rank for h in read), reverse=True)
    assert (v.level is OK) == (not v.reasons)


def reason_level(reason: str) -> Health:
    m = re.match(r"XID (\d+): ", reason)
    if m:
        return XID_RULES.get(int(m.group(1)), (WARN,))[0]
    crit = ("fell off the bus", "GPU missing", "uncorrected ECC", "row remap failed", "near shutdown")
    return CRIT if any(word in reason for word in crit) else WARN


@settings(max_examples=200, deadline=None)
@given(gpus)
def test_gpu_properties_never_raise(g):
    pct = g.mem_pct
    assert pct is None or isinstance(pct, float)
    assert g.key
    assert g.last_xid == (g.xids[-1].code if g.xids else None)


# ---------------------------------------------------------------------------------------------
# Ceph

TB = 1e12


def ceph(**kw) -> CephState:
    base = dict(health="HEALTH_OK", total_bytes=100 * TB, used_bytes=50 * TB, osds_total=12, osds_up=12, osds_in=12)
    return CephState(**(base | kw))


def test_ceph_ok():
    assert ceph_verdict(ceph()) == Verdict(OK, ())


def test_ceph_unknown_without_data():
    assert ceph_verdict(CephState()).level is UNKNOWN


def test_ceph_nearfull_and_full():
    v = ceph_verdict(ceph(used_bytes=86 * TB, health="HEALTH_WARN", checks=("OSD_NEARFULL",)))
    assert v.level is WARN
    assert v.reasons == ("raw used 86% ≥ nearfull 85%", "HEALTH_WARN: OSD_NEARFULL")
    v = ceph_verdict(ceph(used_bytes=96 * TB))
    assert v.level is CRIT and v.reasons == ("raw used 96% ≥ full 95%",)
    assert ceph_verdict(ceph(used_bytes=84 * TB)).level is OK
    # ratios come from the cluster
    assert ceph_verdict(ceph(used_bytes=80 * TB, nearfull_ratio=0.75, full_ratio=0.9)).level is WARN


def test_ceph_pools():
    pools = (
        CephPool("rbd", stored_bytes=9, max_avail_bytes=1),
        CephPool("cephfs", stored_bytes=96, max_avail_bytes=4),
        CephPool("empty"),
    )
    v = ceph_verdict(ceph(pools=pools))
    assert v.level is CRIT
    assert v.reasons == ("pool cephfs 96% full", "pool rbd 90% nearfull")
    assert CephPool("empty").used_pct == 0.0


def test_ceph_osds_down_and_health_err():
    v = ceph_verdict(ceph(osds_up=10))
    assert v == Verdict(WARN, ("2 OSDs down",))
    assert ceph_verdict(ceph(osds_up=11)).reasons == ("1 OSD down",)
    v = ceph_verdict(ceph(health="HEALTH_ERR", checks=("PG_DAMAGED", "OSD_FULL"), osds_up=11))
    assert v.level is CRIT and v.reasons == ("HEALTH_ERR: PG_DAMAGED, OSD_FULL", "1 OSD down")
    assert ceph_verdict(ceph(health="HEALTH_ERR")).reasons == ("HEALTH_ERR",)


# ---------------------------------------------------------------------------------------------
# fabric

LINKS = (
    FabricLink("leaf1", "Ethernet1", oper_up=True, peer="spine1:Ethernet1"),
    FabricLink("leaf1", "Ethernet9", oper_up=True, peer="gpu-01"),
    FabricLink("spine1", "Ethernet1", oper_up=True, peer="leaf1:Ethernet1"),
    FabricLink("leaf1", "Ethernet30", oper_up=False, admin_up=False),  # shut on purpose
)


def test_fabric_ok_and_admin_down_ignored():
    assert fabric_verdict(FabricState(LINKS)) == Verdict(OK, ())
    assert fabric_verdict(FabricState()) == Verdict(OK, ())


def test_fabric_host_port_down_is_warn():
    links = (*LINKS[:1], FabricLink("leaf1", "Ethernet9", oper_up=False, peer="gpu-01"), *LINKS[2:])
    assert fabric_verdict(FabricState(links)) == Verdict(WARN, ("leaf1 Ethernet9 down (to gpu-01)",))
    bare = FabricState((FabricLink("leaf1", "Ethernet7", oper_up=False),))
    assert fabric_verdict(bare) == Verdict(WARN, ("leaf1 Ethernet7 down",))


def test_fabric_uplink_down_is_crit():
    links = (FabricLink("leaf1", "Ethernet1", oper_up=False, peer="spine1:Ethernet1"), *LINKS[1:])
    v = fabric_verdict(FabricState(links))
    assert v == Verdict(CRIT, ("leaf1 Ethernet1 down (to spine1:Ethernet1)",))
    assert FabricState(links).devices == ("leaf1", "spine1")


# ---------------------------------------------------------------------------------------------
# queues


def test_queue_verdict():
    queues = [
        QueueState("gpu", "slurm", pending_jobs=3, pending_gpus=16, oldest_pending_s=7200),
        QueueState("cpu", "slurm", pending_jobs=50, pending_gpus=0, oldest_pending_s=99999),
        QueueState("team-a", "kueue", pending_jobs=1, pending_gpus=8, oldest_pending_s=60),
        QueueState("pending-pods", "kubernetes", pending_gpus=4, oldest_pending_s=None),
    ]
    v = queue_verdict(queues)
    assert v == Verdict(WARN, ("slurm gpu: 16 GPUs pending for 2.0 h",))
    assert queue_verdict([]) == Verdict(OK, ())
    assert queue_verdict(queues[2:3], oldest_warn_s=30).level is WARN
    assert queue_verdict(queues[:1], pending_gpus_warn=32).level is OK


# ---------------------------------------------------------------------------------------------
# alerts


@pytest.mark.parametrize(
    ("severity", "state", "level"),
    [
        ("critical", "firing", CRIT),
        ("CRITICAL", "firing", CRIT),
        ("page", "firing", CRIT),
        ("error", "firing", CRIT),
        ("warning", "firing", WARN),
        ("warn", "firing", WARN),
        ("info", "firing", OK),
        ("none", "firing", OK),
        ("critical", "pending", OK),
        ("critical", "suppressed", OK),
    ],
)
def test_alert_level(severity, state, level):
    assert alert_level(Alert("X", severity=severity, state=state)) is level


def test_alert_sort_order():
    alerts = [
        Alert("Info", "info", active_since=5),
        Alert("PendingCrit", "critical", state="pending", active_since=9),
        Alert("OldWarn", "warning", active_since=1),
        Alert("NewWarn", "warning", active_since=3),
        Alert("Crit", "critical", active_since=2),
        Alert("Silenced", "critical", state="suppressed"),
    ]
    ordered = [a.name for a in sorted(alerts, key=alert_sort_key)]
    assert ordered == ["Crit", "NewWarn", "OldWarn", "Info", "PendingCrit", "Silenced"]


def test_alert_identity_ignores_alertname_label_and_label_order():
    a = Alert("HighTemp", labels=(("alertname", "HighTemp"), ("instance", "gpu-01"), ("gpu", "0")))
    b = Alert("HighTemp", labels=(("gpu", "0"), ("instance", "gpu-01")), source="alertmanager")
    c = Alert("HighTemp", labels=(("gpu", "1"), ("instance", "gpu-01")))
    assert a.identity == b.identity
    assert a.identity != c.identity
    assert a.label_dict["instance"] == "gpu-01"


def test_nan_temperatures_do_not_judge():
    assert gpu_verdict(gpu(temp_c=math.nan, temp_slowdown_c=90)).level is OK
    assert gpu_verdict(gpu(temp_c=90, temp_shutdown_c=math.nan, temp_slowdown_c=math.nan)).level is WARN  # >= 85 °C
