"""Provides tests of the Alertmanager source against the lab's real Alertmanager and against broken servers."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sovtui.config import SiteConfig
from sovtui.sources.alertmanager import AlertmanagerSource, parse_alertmanager_alerts
from sovtui.sources.base import AuthError, BadAnswer, Timeout, Unreachable
from sovtui.sources.prometheus import PrometheusSource
from tests.lab.stubs import Answer, SilentServer, StubHttpServer, closed_port_url

lab = pytest.mark.prometheus


@lab
def test_alerts_arrive_with_silenced_and_inhibited_ones_suppressed(lab_prometheus):
    source = AlertmanagerSource(lab_prometheus.site())
    data = source.fetch_sync()
    want = {a.name: a for a in lab_prometheus.truth.alerts if a.alertmanager_state}
    got = {a.name: a for a in data.alerts}
    assert set(got) == set(want)
    for name, expected in want.items():
        alert = got[name]
        assert (alert.state, alert.severity, alert.summary) == (
            expected.alertmanager_state,
            expected.severity,
            expected.summary,
        )
        assert expected.labels.items() <= alert.label_dict.items()
        assert alert.source == "alertmanager"
        assert lab_prometheus.truth.data_end - 120 < alert.active_since <= time.time()
    assert data.alerts[0].name == "LabGpuXidError"  # worst first
    assert data.version == lab_prometheus.alertmanager_version
    assert data.gpus is None and data.ceph is None  # it only knows alerts


@lab
def test_same_alert_from_both_sources_has_the_same_identity(lab_prometheus):
    from_am = {a.identity for a in AlertmanagerSource(lab_prometheus.site()).fetch_sync().alerts}
    from_prom = {
        a.identity for a in PrometheusSource(lab_prometheus.site(), clock=lab_prometheus.clock).fetch_sync().alerts
    }
    assert from_am and from_am <= from_prom


@lab
def test_doctor(lab_prometheus):
    checks = {c.check: c for c in AlertmanagerSource(lab_prometheus.site()).doctor_sync()}
    assert checks["reachable"].ok and lab_prometheus.alertmanager_version in checks["reachable"].detail
    assert checks["cluster"].ok and checks["cluster"].detail == "disabled"
    assert checks["alerts"].ok and checks["alerts"].detail == "1 firing, 2 suppressed"


def _site(url: str, timeout_s: float = 2.0) -> SiteConfig:
    return SiteConfig(name="lab", alertmanager_url=url, timeout_s=timeout_s)


def test_unreachable():
    url = closed_port_url()
    with pytest.raises(Unreachable, match=r"^Alertmanager unreachable at .*: connection refused$"):
        AlertmanagerSource(_site(url)).fetch_sync()
    checks = AlertmanagerSource(_site(url + "/")).doctor_sync()
    assert [(c.check, c.ok) for c in checks] == [("reachable", False)]


def test_timeout():
    with SilentServer() as silent:
        started = time.monotonic()
        with pytest.raises(Timeout):
            AlertmanagerSource(_site(silent.url, timeout_s=0.4)).fetch_sync()
        assert time.monotonic() - started < 1.4


@pytest.mark.parametrize(
    ("answer", "error", "words"),
    [
        (Answer(401, "unauthorized", "text/plain"), AuthError, "HTTP 401"),
        (Answer(200, "<html/>", "text/html"), BadAnswer, "not JSON"),
        (Answer(200, {"alerts": []}), BadAnswer, "not a list"),
        (Answer(500, "oops", "text/plain"), BadAnswer, "HTTP 500: oops"),
    ],
)
def test_broken_answers(answer, error, words):
    with StubHttpServer({"*": answer}) as stub:
        with pytest.raises(error) as info:
            AlertmanagerSource(_site(stub.url)).fetch_sync()
    assert words in str(info.value) and "\n" not in str(info.value)


def test_fetch_asks_for_silenced_and_inhibited_alerts_too():
    with StubHttpServer(
        {"/api/v2/alerts": Answer(200, []), "/api/v2/status": Answer(200, {"versionInfo": {"version": "0.27.0"}})}
    ) as stub:
        data = AlertmanagerSource(_site(stub.url)).fetch_sync()
    assert data.alerts == () and data.version == "0.27.0"
    assert all(flag in stub.requests[0] for flag in ("active=true", "silenced=true", "inhibited=true"))


json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_any = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


@given(json_any)
def test_parse_never_raises_anything_but_bad_answer(payload):
    for candidate in (payload, [payload]):
        try:
            parse_alertmanager_alerts(candidate)
        except BadAnswer:
            pass


alert_shaped = st.fixed_dictionaries(
    {},
    optional={
        "labels": json_any | st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=4),
        "annotations": json_any | st.dictionaries(st.sampled_from(["summary", "description", "x"]), json_leaf),
        "startsAt": json_leaf | st.sampled_from(["2024-05-01T12:00:00.123Z", "0001-01-01T00:00:00Z", "9999-99-99"]),
        "status": json_any
        | st.fixed_dictionaries(
            {},
            optional={
                "state": json_any | st.sampled_from(["active", "suppressed", "unprocessed", "weird"]),
                "silencedBy": json_any,
                "inhibitedBy": json_any,
            },
        ),
    },
)


@given(st.lists(alert_shaped, max_size=5))
def test_parse_alert_shaped_answers_never_raise_anything_but_bad_answer(payload):
    try:
        alerts = parse_alertmanager_alerts(payload)
    except BadAnswer:
        return
    assert all(a.state in ("firing", "suppressed") for a in alerts)
