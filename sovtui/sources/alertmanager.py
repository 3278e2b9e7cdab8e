"""Provides the Alertmanager source: active, silenced and inhibited alerts from the v2 API."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ..config import SiteConfig
from ..model.types import Alert, DoctorCheck, SourceData
from .alerts import make_alert, sort_alerts
from .base import BadAnswer, Source, SourceError
from .http import HttpJson

if TYPE_CHECKING:  # pragma: no cover
    import requests

#: Alertmanager's ``status.state`` → :attr:`Alert.state`
_STATES = {"active": "firing", "unprocessed": "firing", "suppressed": "suppressed"}
_ALL = {"active": "true", "silenced": "true", "inhibited": "true", "unprocessed": "true"}


def parse_alertmanager_alerts(payload: Any) -> tuple[Alert, ...]:
    """The JSON of ``GET /api/v2/alerts`` as alerts (silenced or inhibited → ``suppressed``)."""
    if not isinstance(payload, list):
        raise BadAnswer("Alertmanager answered /api/v2/alerts with something that is not a list")
    alerts = []
    for item in payload:
        if not isinstance(item, dict):
            raise BadAnswer("Alertmanager answered an alert that is not an object")
        status = item.get("status") if isinstance(item.get("status"), dict) else {}
        raw_state = status.get("state", "active")
        state = _STATES.get(raw_state) if isinstance(raw_state, str) else None
        if state is None:
            continue
        if status.get("silencedBy") or status.get("inhibitedBy"):
            state = "suppressed"
        alerts.append(
            make_alert(item.get("labels"), item.get("annotations"), state, item.get("startsAt"), "alertmanager")
        )
    return sort_alerts(alerts)


class AlertmanagerSource(Source):
    """Reads a site's Alertmanager: every alert it holds, including silenced and inhibited ones."""

    name = "alertmanager"
    kind = "alertmanager"

    def __init__(
        self, site: SiteConfig, *, session: requests.Session | None = None, name: str = "alertmanager"
    ) -> None:
        if not site.alertmanager_url:
            raise ValueError(f"site {site.name!r} has no alertmanager_url")
        self.name = name
        self.site = site
        self.url = site.alertmanager_url.rstrip("/")
        self.timeout_s = float(site.timeout_s)
        self.interval_s = float(site.refresh_s)
        self.http = HttpJson("Alertmanager", self.url, self.timeout_s, session)
        self._version = ""

    def alerts_sync(self, deadline: float | None = None) -> tuple[Alert, ...]:
        return parse_alertmanager_alerts(self.http.get("/api/v2/alerts", params=_ALL, deadline=deadline, what="alerts"))

    def status_sync(self, deadline: float | None = None) -> dict:
        payload = self.http.get("/api/v2/status", deadline=deadline, what="status")
        if not isinstance(payload, dict):
            raise BadAnswer("Alertmanager answered /api/v2/status with something that is not an object")
        return payload

    def version_sync(self, deadline: float | None = None) -> str:
        info = self.status_sync(deadline).get("versionInfo")
        version = info.get("version") if isinstance(info, dict) else None
        if not isinstance(version, str):
            raise BadAnswer("Alertmanager answered /api/v2/status without versionInfo.version")
        return version

    def fetch_sync(self) -> SourceData:
        deadline = time.monotonic() + self.http.poll_budget_s
        try:
            alerts = self.alerts_sync(deadline)
        except SourceError:
            self._version = ""
            raise
        notes: tuple[str, ...] = ()
        if not self._version:
            try:
                self._version = self.version_sync(deadline)
            except BadAnswer as exc:
                notes = (f"version: {exc}",)
        return SourceData(alerts=alerts, version=self._version, notes=notes)

    def doctor_sync(self) -> list[DoctorCheck]:
        started = time.perf_counter()
        try:
            status = self.status_sync(self.http.deadline())
        except SourceError as exc:
            return [DoctorCheck(self.name, "reachable", False, str(exc), exc.hint)]
        info = status.get("versionInfo") if isinstance(status.get("versionInfo"), dict) else {}
        self._version = str(info.get("version", ""))
        ms = (time.perf_counter() - started) * 1000
        checks = [
            DoctorCheck(
                self.name, "reachable", True, f"Alertmanager {self._version or '?'} at {self.url} ({ms:.0f} ms)"
            )
        ]
        cluster = status.get("cluster") if isinstance(status.get("cluster"), dict) else {}
        cluster_state = str(cluster.get("status", "unknown"))
        peers = cluster.get("peers") if isinstance(cluster.get("peers"), list) else []
        checks.append(
            DoctorCheck(
                self.name,
                "cluster",
                cluster_state in ("ready", "disabled"),
                f"{cluster_state}" + (f", {len(peers)} peers" if cluster_state != "disabled" else ""),
                ""
                if cluster_state in ("ready", "disabled")
                else "the Alertmanager cluster has not settled; check its peers",
            )
        )
        try:
            alerts = self.alerts_sync(self.http.deadline())
        except SourceError as exc:
            checks.append(DoctorCheck(self.name, "alerts", False, str(exc), exc.hint))
        else:
            firing = sum(a.state == "firing" for a in alerts)
            checks.append(DoctorCheck(self.name, "alerts", True, f"{firing} firing, {len(alerts) - firing} suppressed"))
        return checks

    def close(self) -> None:
        self.http.close()
