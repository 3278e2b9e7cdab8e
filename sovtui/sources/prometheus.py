"""Provides the Prometheus source: GPUs (dcgm-exporter), Ceph, fabric (IF-MIB), queues and alerts in a few queries."""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..config import SiteConfig
from ..model.types import (
    Alert,
    DoctorCheck,
    PartStatus,
    SourceData,
)
from .base import BadAnswer, DaemonPool, Source, SourceError, Timeout, short
from .http import HttpJson, api_error
from .prometheus_map import (
    build_queries,
    ceph_from_samples,
    fabric_from_samples,
    families,
    gpus_from_samples,
    names_selector,
    queues_from_samples,
)
from .prometheus_parse import RangeSeries, Sample, parse_matrix, parse_prometheus_alerts, parse_vector, success_data

if TYPE_CHECKING:  # pragma: no cover
    import requests

Clock = Callable[[], float]


# ================================================================================== the source
class PrometheusSource(Source):
    """Reads a site's Prometheus: one query per exporter family, plus its alerts and build info."""

    name = "prometheus"
    kind = "prometheus"

    def __init__(
        self,
        site: SiteConfig,
        *,
        clock: Clock = time.time,
        session: requests.Session | None = None,
        name: str = "prometheus",
    ) -> None:
        if not site.prometheus_url:
            raise ValueError(f"site {site.name!r} has no prometheus_url")
        self.name = name
        self.site = site
        self.url = site.prometheus_url.rstrip("/")
        self.timeout_s = float(site.timeout_s)
        self.interval_s = float(site.refresh_s)
        self.metrics = site.metrics
        self.clock = clock
        self.queries = build_queries(site.metrics)
        self.http = HttpJson("Prometheus", self.url, self.timeout_s, session)
        self._client = None
        self._client_lock = threading.Lock()
        self._version = ""
        self._executor: DaemonPool | None = None
        #: part -> (its last good facet, when it answered): what a failing part keeps showing
        self._kept: dict[str, tuple[Any, float]] = {}

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def client(self):
        """The ``prometheus_api_client.PrometheusConnect`` on our session (made on first use)."""
        with self._client_lock:
            if self._client is None:
                from prometheus_api_client.prometheus_connect import PrometheusConnect
                from urllib3.util.retry import Retry

                # no hidden retries: a down server must fail fast, the hub owns retrying
                self._client = PrometheusConnect(
                    url=self.url,
                    session=self.http.session,
                    timeout=self.timeout_s,
                    retry=Retry(total=0, raise_on_status=False),
                )
                self.http.bound(self.url)  # its own adapter on our URL replaced the bounded one
            return self._client

    def _api_call(self, fn: Callable[[], Any], what: str) -> Any:
        from prometheus_api_client.exceptions import PrometheusApiClientException

        try:
            return self.http.call(fn, what)
        except PrometheusApiClientException:
            failed = True  # a non-200 answer; judged below, outside this handler (no chained traceback)
        except (KeyError, TypeError, IndexError):
            failed = False  # 200, but not {"data": {"result": ...}}
        response = self.http.last_response
        if failed:
            if response is not None:
                self.http.check_status(response, what)
            raise BadAnswer(f"Prometheus answered {what} with an error")
        detail = ""
        if response is not None:
            try:
                detail = api_error(response.json())
            except ValueError:
                pass
        raise BadAnswer(detail or f"Prometheus answered {what} without data.result")

    def query_sync(
        self, query: str, *, at: float | None = None, deadline: float | None = None, what: str = ""
    ) -> list[Sample]:
        """One instant query at ``at`` (default: the clock); the samples of its vector."""
        when = self.clock() if at is None else at
        client = self.client  # made (and its library imported) before the clock of this query starts
        timeout = self.http.remaining(deadline)
        result = self._api_call(
            lambda: client.custom_query(query, params={"time": f"{when:.3f}"}, timeout=timeout), what or "a query"
        )
        return parse_vector(result)

    def range_sync(self, query: str, start: float, end: float, step: float | str) -> list[RangeSeries]:
        """A range query (e.g. for sparklines): per series, its ``(t, value)`` points."""
        client = self.client
        timeout = self.timeout_s
        result = self._api_call(
            lambda: client.custom_query_range(
                query,
                start_time=datetime.fromtimestamp(start, UTC),
                end_time=datetime.fromtimestamp(end, UTC),
                step=f"{step:g}" if isinstance(step, (int, float)) else str(step),
                timeout=timeout,
            ),
            "a range query",
        )
        return parse_matrix(result)

    def gpu_history_sync(self, uuid: str, *, span_s: float = 3600.0, points: int = 60) -> dict[str, list[float | None]]:
        """The last ``span_s`` of one GPU's util/memory/temperature/power, in one range query.

        Keys are the ``Gpu`` field names the history rings use: util_pct, mem_pct, temp_c, power_w.
        """
        m = self.metrics
        names = [m.gpu_util, m.gpu_fb_used, m.gpu_fb_free, m.gpu_temp, m.gpu_power]
        selector = '{__name__=~"' + "|".join(names) + '",' + m.gpu_label_uuid + '="' + uuid.replace('"', "") + '"}'
        end = self.clock()
        step = max(1.0, span_s / points)
        times = [end - span_s + step * (i + 1) for i in range(points)]
        by_name: dict[str, dict[float, float]] = {}
        for series in self.range_sync(selector, times[0], end, step):
            name = series.label_dict.get("__name__", "")
            by_name.setdefault(name, {}).update({round(t, 3): v for t, v in series.points})

        def column(name: str) -> list[float | None]:
            values = by_name.get(name, {})
            return [values.get(round(t, 3)) for t in times]

        used, free = column(m.gpu_fb_used), column(m.gpu_fb_free)
        mem = [
            100.0 * u / (u + f) if u is not None and f is not None and u + f > 0 else None
            for u, f in zip(used, free, strict=True)
        ]
        return {
            "util_pct": column(m.gpu_util),
            "mem_pct": mem,
            "temp_c": column(m.gpu_temp),
            "power_w": column(m.gpu_power),
        }

    def version_sync(self, deadline: float | None = None) -> str:
        payload = self.http.get("/api/v1/status/buildinfo", deadline=deadline, what="build info")
        data = success_data(payload, "build info")
        version = data.get("version") if isinstance(data, dict) else None
        if not isinstance(version, str):
            raise BadAnswer("Prometheus answered build info without a version")
        return version

    def alerts_sync(self, deadline: float | None = None) -> tuple[Alert, ...]:
        return parse_prometheus_alerts(self.http.get("/api/v1/alerts", deadline=deadline, what="alerts"))

    # -- the poll ---------------------------------------------------------------------------
    def fetch_sync(self) -> SourceData:
        try:
            return self._fetch()
        except SourceError:
            self._version = ""  # it may come back as another build
            raise

    def _fetch(self) -> SourceData:
        started = time.monotonic()
        deadline = started + self.http.poll_budget_s
        at = self.clock()  # one instant for every query of this poll
        reads: dict[str, Callable[[], Any]] = {
            key: (lambda q=query, k=key: self.query_sync(q, at=at, deadline=deadline, what=f"the {k} query"))
            for key, query in self.queries.items()
        }
        reads["alerts"] = lambda: self.alerts_sync(deadline)
        futures = {key: self._pool().submit(fn) for key, fn in reads.items()}
        concurrent.futures.wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()) + 0.2)
        answers: dict[str, Any] = {}
        errors: dict[str, SourceError] = {}
        for key, future in futures.items():
            if not future.done():
                errors[key] = Timeout(
                    f"Prometheus did not answer within {self.http.poll_budget_s:.3g}s (the {key} query)"
                )
                continue
            try:
                answers[key] = future.result()
            except SourceError as exc:
                errors[key] = exc
        if not answers:
            # nothing answered: the server itself is down, refusing, or not a Prometheus (say the most telling why)
            raise next((e for e in errors.values() if not isinstance(e, BadAnswer)), next(iter(errors.values())))
        notes: list[str] = []
        now = self.clock()
        facets: dict[str, Any] = {}
        for key in reads:
            if key in answers:
                try:
                    value = self._model(key, answers[key], notes)
                except SourceError as exc:
                    errors[key] = exc
                else:
                    self._kept[key] = (value, now)
            kept = self._kept.get(key)
            facets[key] = kept[0] if kept is not None else None  # a failing part keeps its last good data
        parts = tuple(
            PartStatus(
                key,
                key not in errors,
                str(errors[key]) if key in errors else "",
                self._kept[key][1] if key in self._kept else None,
            )
            for key in reads
        )
        if not self._version:
            try:
                self._version = self.version_sync(started + self.timeout_s)
            except SourceError as exc:
                notes.append(f"version: {exc}")
        return SourceData(
            gpus=facets["gpus"],
            ceph=facets["ceph"],
            fabric=facets["fabric"],
            queues=facets["queues"],
            alerts=facets["alerts"],
            version=self._version,
            notes=tuple(notes),
            parts=parts,
        )

    def _model(self, key: str, answer: Any, notes: list[str]) -> Any:
        """One part's answer as its facet of :class:`SourceData` (``None``: the site has no such series)."""
        m = self.metrics
        if key == "gpus":
            found, unplaced = gpus_from_samples(answer, m)
            if unplaced:
                notes.append(f"gpus: {unplaced} series without a {m.gpu_label_index!r} label were ignored")
            return found or None  # no dcgm-exporter series: this source does not know the GPUs
        if key == "ceph":
            return ceph_from_samples(answer, m)
        if key == "fabric":
            return fabric_from_samples(answer, m)
        if key == "queues":
            return queues_from_samples(answer, m)
        return answer  # alerts

    def _pool(self) -> DaemonPool:
        """The source's own few threads: the query families are read side by side, each bounded on its own."""
        with self._client_lock:
            if self._executor is None:
                self._executor = DaemonPool(len(self.queries) + 1, f"{self.name}-query")
            return self._executor

    # -- doctor -----------------------------------------------------------------------------
    def doctor_sync(self) -> list[DoctorCheck]:
        name, url = self.name, self.url
        started = time.perf_counter()
        try:
            version = self.version_sync(self.http.deadline())
        except SourceError as exc:
            return [DoctorCheck(name, "reachable", False, str(exc), exc.hint)]
        self._version = version
        ms = (time.perf_counter() - started) * 1000
        checks = [DoctorCheck(name, "reachable", True, f"Prometheus {version} at {url} ({ms:.0f} ms)")]
        checks.append(self._check("ready", self._ready))
        try:
            counts = self._series_counts()
        except SourceError as exc:
            checks.append(DoctorCheck(name, "exporters", False, str(exc), exc.hint))
        else:
            hint = f"metric names can be mapped under [sites.{self.site.name}.metrics]"
            for family, names in families(self.metrics).items():
                found = {n: counts.get(n, 0) for n in names}
                total = sum(found.values())
                missing = sorted(n for n, c in found.items() if not c)
                if not total:
                    checks.append(DoctorCheck(name, family, False, "no series", f"is its exporter scraped? {hint}"))
                    continue
                detail = f"found {total} series ({len(names) - len(missing)}/{len(names)} metrics)"
                if missing:
                    detail += f"; missing {', '.join(missing)}"
                checks.append(DoctorCheck(name, family, True, detail, hint if missing else ""))
        checks.append(self._check("alerts", self._alerts_summary))
        return checks

    def _check(self, check: str, fn: Callable[[], str]) -> DoctorCheck:
        try:
            return DoctorCheck(self.name, check, True, fn())
        except SourceError as exc:
            return DoctorCheck(self.name, check, False, str(exc), exc.hint)

    def _ready(self) -> str:
        response = self.http.get("/-/ready", deadline=self.http.deadline(), what="/-/ready", want_json=False)
        if response.status_code != 200:
            raise BadAnswer(f"not ready: HTTP {response.status_code} {short(response.text, 80)}".rstrip())
        return short(response.text, 80) or "ready"

    def _series_counts(self) -> dict[str, int]:
        names = [n for group in families(self.metrics).values() for n in group]
        samples = self.query_sync(
            f"count by (__name__) ({names_selector(names)})", deadline=self.http.deadline(), what="the series count"
        )
        return {s.name: int(s.value) for s in samples if math.isfinite(s.value)}

    def _alerts_summary(self) -> str:
        alerts = self.alerts_sync(self.http.deadline())
        firing = sum(a.state == "firing" for a in alerts)
        return f"{firing} firing, {len(alerts) - firing} pending"

    def close(self) -> None:
        with self._client_lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
        self.http.close()
