"""Provides the Prometheus source: GPUs (dcgm-exporter), Ceph, fabric (IF-MIB), queues and alerts in a few queries."""

from __future__ import annotations

import concurrent.futures
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from ..config import MetricMap, SiteConfig
from ..model.types import (
    Alert,
    CephPool,
    CephState,
    DoctorCheck,
    FabricLink,
    FabricState,
    Gpu,
    PartStatus,
    QueueState,
    SourceData,
    XidEvent,
)
from .alerts import labels as _labels
from .alerts import make_alert, sort_alerts
from .base import BadAnswer, Source, SourceError, Timeout
from .http import HttpJson, api_error, short

if TYPE_CHECKING:  # pragma: no cover
    import requests

Clock = Callable[[], float]

#: label that tags the rate() branches of the fabric query so that in/out/errors stay apart
RATE_LABEL = "sovtui_series"

_CEPH_HEALTH = {0: "HEALTH_OK", 1: "HEALTH_WARN", 2: "HEALTH_ERR"}


# ================================================================================== parsing
class Sample(NamedTuple):
    """One element of an instant vector: its labels (``__name__`` included when kept), value and time."""

    labels: Mapping[str, str]
    value: float
    at: float

    @property
    def name(self) -> str:
        return self.labels.get("__name__", "")


@dataclass(frozen=True, slots=True)
class RangeSeries:
    """One series of a range query: its labels and its ``(unix seconds, value)`` points."""

    labels: tuple[tuple[str, str], ...]
    points: tuple[tuple[float, float], ...]

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


def _point(raw: Any) -> tuple[float, float]:
    """``[1700000000.123, "42"]`` → ``(1700000000.123, 42.0)``; NaN/±Inf are kept as floats."""
    if not isinstance(raw, (list, tuple)) or len(raw) != 2:
        raise BadAnswer("Prometheus answered a sample that is not a [time, value] pair")
    ts, value = raw
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        raise BadAnswer("Prometheus answered a sample with a bad timestamp")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise BadAnswer("Prometheus answered a sample value that is not a number")
    try:
        number = float(value.strip()) if isinstance(value, str) else float(value)
    except (ValueError, OverflowError):
        raise BadAnswer(f"Prometheus answered a sample value that is not a number: {short(value, 40)!r}") from None
    return float(ts), number


def parse_vector(result: Any) -> list[Sample]:
    """The ``data.result`` of an instant query (vector) as samples; anything malformed → :class:`BadAnswer`."""
    if not isinstance(result, list):
        raise BadAnswer("Prometheus answered a result that is not a list (expected an instant vector)")
    samples = []
    for item in result:
        if not isinstance(item, dict) or "value" not in item:
            raise BadAnswer("Prometheus answered a result that is not an instant vector")
        at, value = _point(item["value"])
        samples.append(Sample(_labels(item.get("metric", {})), value, at))
    return samples


def parse_matrix(result: Any) -> list[RangeSeries]:
    """The ``data.result`` of a range query (matrix); anything malformed → :class:`BadAnswer`."""
    if not isinstance(result, list):
        raise BadAnswer("Prometheus answered a result that is not a list (expected a range matrix)")
    series = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("values"), list):
            raise BadAnswer("Prometheus answered a result that is not a range matrix")
        labels = _labels(item.get("metric", {}))
        points = tuple(_point(p) for p in item["values"])
        series.append(RangeSeries(tuple(sorted(labels.items())), points))
    return series


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _as_int(value: float | None) -> int | None:
    value = _finite(value)
    return int(value) if value is not None else None


def _as_bool(value: float | None) -> bool | None:
    value = _finite(value)
    return None if value is None else value != 0


def parse_prometheus_alerts(payload: Any) -> tuple[Alert, ...]:
    """The JSON of ``GET /api/v1/alerts`` (firing and pending) as alerts; malformed → :class:`BadAnswer`."""
    data = _success_data(payload, "alerts")
    raw = data.get("alerts") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise BadAnswer("Prometheus answered /api/v1/alerts without an alert list")
    alerts = []
    for item in raw:
        if not isinstance(item, dict):
            raise BadAnswer("Prometheus answered an alert that is not an object")
        state = item.get("state")
        if state not in ("firing", "pending"):
            continue
        alerts.append(make_alert(item.get("labels"), item.get("annotations"), state, item.get("activeAt"), "prometheus"))
    return sort_alerts(alerts)


def _success_data(payload: Any, what: str) -> Any:
    if not isinstance(payload, dict):
        raise BadAnswer(f"Prometheus answered {what} with something that is not a JSON object")
    if payload.get("status") != "success":
        raise BadAnswer(api_error(payload) or f"Prometheus answered {what} without status success")
    return payload.get("data")


# ================================================================================== model building
def _host_of(labels: Mapping[str, str], host_label: str) -> str:
    host = labels.get(host_label, "")
    if host:
        return host
    instance = labels.get("instance", "")
    if instance.startswith("["):  # [::1]:9400
        return instance[1:].split("]", 1)[0]
    return instance.rsplit(":", 1)[0] if instance.count(":") == 1 else instance


def gpus_from_samples(samples: Iterable[Sample], m: MetricMap) -> tuple[tuple[Gpu, ...], int]:
    """Join dcgm-exporter series by (host, gpu index) into GPUs; also how many series had no usable index."""
    fields: dict[str, list[str]] = {}
    for metric, attr in (
        (m.gpu_util, "util"), (m.gpu_mem_copy_util, "mem_util"), (m.gpu_fb_used, "fb_used"),
        (m.gpu_fb_free, "fb_free"), (m.gpu_temp, "temp"), (m.gpu_power, "power"),
        (m.gpu_power_limit, "power_limit"), (m.gpu_xid, "xid"), (m.gpu_ecc_dbe_vol, "dbe"),
        (m.gpu_ecc_sbe_vol, "sbe"), (m.gpu_row_remap_failure, "remap_failure"),
        (m.gpu_row_remap_pending, "remap_pending"),
    ):
        fields.setdefault(metric, []).append(attr)
    records: dict[tuple[str, int], dict[str, Any]] = {}
    unplaced = 0
    for sample in samples:
        attrs = fields.get(sample.name)
        if not attrs:
            continue
        labels = sample.labels
        raw_index = labels.get(m.gpu_label_index, "")
        if not (raw_index.isascii() and raw_index.isdigit()):
            unplaced += 1
            continue
        key = (_host_of(labels, m.gpu_label_host), int(raw_index))
        rec = records.setdefault(key, {"workloads": set(), "at": sample.at, "uuid": "", "name": ""})
        rec["uuid"] = rec["uuid"] or labels.get(m.gpu_label_uuid, "")
        rec["name"] = rec["name"] or labels.get(m.gpu_label_model, "")
        rec["at"] = max(rec["at"], sample.at)
        pod = labels.get(m.gpu_label_pod, "")
        if pod:
            namespace = labels.get(m.gpu_label_namespace, "")
            rec["workloads"].add(f"{namespace}/{pod}" if namespace else pod)
        for attr in attrs:
            rec[attr] = sample.value
    gpus = []
    for (host, index), rec in sorted(records.items()):
        used, free = _finite(rec.get("fb_used")), _finite(rec.get("fb_free"))
        xid = _as_int(rec.get("xid"))
        gpus.append(
            Gpu(
                host=host,
                index=index,
                uuid=rec["uuid"],
                name=rec["name"],
                util_pct=_finite(rec.get("util")),
                mem_util_pct=_finite(rec.get("mem_util")),
                mem_used_mib=used,
                mem_total_mib=used + free if used is not None and free is not None else None,
                temp_c=_finite(rec.get("temp")),
                power_w=_finite(rec.get("power")),
                power_limit_w=_finite(rec.get("power_limit")),
                ecc_corrected_volatile=_as_int(rec.get("sbe")),
                ecc_uncorrected_volatile=_as_int(rec.get("dbe")),
                row_remap_failure=_as_bool(rec.get("remap_failure")),
                row_remap_pending=_as_bool(rec.get("remap_pending")),
                xids=(XidEvent(xid),) if xid else (),
                workload=", ".join(sorted(rec["workloads"])),
                sources=("dcgm",),
                observed_at=rec["at"],
            )
        )
    return tuple(gpus), unplaced


def ceph_from_samples(samples: Iterable[Sample], m: MetricMap) -> CephState | None:
    """ceph-mgr prometheus module series → the cluster's state; ``None`` when there are none."""
    health: list[int] = []
    totals: list[float] = []
    used: list[float] = []
    pools: dict[str, dict[str, Any]] = {}
    up: dict[str, bool] = {}
    in_: dict[str, bool] = {}
    checks: set[str] = set()
    seen = False
    for s in samples:
        name, labels, value = s.name, s.labels, s.value
        if name == m.ceph_health:
            seen = True
            if math.isfinite(value):
                health.append(int(value))
        elif name == m.ceph_health_detail:
            seen = True
            if value >= 1 and labels.get("name"):
                checks.add(labels["name"])
        elif name == m.ceph_total_bytes:
            seen = True
            totals.append(value)
        elif name == m.ceph_used_bytes:
            seen = True
            used.append(value)
        elif name in (m.ceph_pool_stored, m.ceph_pool_max_avail, m.ceph_pool_objects, m.ceph_pool_metadata):
            seen = True
            pool = pools.setdefault(labels.get("pool_id", ""), {})
            if name == m.ceph_pool_metadata:
                pool["name"] = labels.get("name", "")
            else:
                pool[name] = value
        elif name in (m.ceph_osd_up, m.ceph_osd_in):
            seen = True
            daemon = labels.get("ceph_daemon") or labels.get("osd", "")
            (up if name == m.ceph_osd_up else in_)[daemon] = value >= 1
    if not seen:
        return None
    known = [h for h in health if h in _CEPH_HEALTH]
    worst = max(known) if known else None
    pool_list = []
    for pool_id, p in pools.items():
        if not any(k in p for k in (m.ceph_pool_stored, m.ceph_pool_max_avail)):
            continue  # metadata only
        pool_list.append(
            CephPool(
                name=p.get("name") or f"pool {pool_id}",
                stored_bytes=_finite(p.get(m.ceph_pool_stored)) or 0.0,
                max_avail_bytes=_finite(p.get(m.ceph_pool_max_avail)) or 0.0,
                objects=_as_int(p.get(m.ceph_pool_objects)),
            )
        )
    finite_totals = [t for t in totals if math.isfinite(t)]
    finite_used = [u for u in used if math.isfinite(u)]
    return CephState(
        health=_CEPH_HEALTH[worst] if worst is not None else "HEALTH_UNKNOWN",
        total_bytes=max(finite_totals, default=0.0),
        used_bytes=max(finite_used, default=0.0),
        osds_total=len(set(up) | set(in_)),
        osds_up=sum(up.values()),
        osds_in=sum(in_.values()),
        pools=tuple(sorted(pool_list, key=lambda p: p.name)),
        checks=tuple(sorted(checks)),
    )


def fabric_from_samples(samples: Iterable[Sample], m: MetricMap) -> FabricState | None:
    """IF-MIB series (plus the tagged rate() branches) → switch ports; ``None`` when there are none."""
    ports: dict[tuple[str, str], dict[str, Any]] = {}
    plain = {m.if_oper_status: "oper", m.if_admin_status: "admin", m.if_speed: "speed"}
    for s in samples:
        labels = s.labels
        attr = plain.get(s.name) or labels.get(RATE_LABEL)
        if attr not in ("oper", "admin", "speed", "in", "out", "errors"):
            continue
        ifname = labels.get(m.if_label_name) or labels.get("ifDescr") or labels.get("ifIndex", "")
        port = ports.setdefault((labels.get(m.if_label_device, ""), ifname), {})
        port[attr] = s.value
        if labels.get(m.if_label_alias):
            port["peer"] = labels[m.if_label_alias]
    if not ports:
        return None
    links = []
    for (device, ifname), p in sorted(ports.items()):
        if "oper" not in p:
            continue  # a counter without a status: not a port we can judge
        in_rate, out_rate = _finite(p.get("in")), _finite(p.get("out"))
        links.append(
            FabricLink(
                device=device,
                ifname=ifname,
                oper_up=p["oper"] == 1,
                admin_up=p.get("admin", 1) == 1,
                speed_mbps=_finite(p.get("speed")),
                in_bps=in_rate * 8 if in_rate is not None else None,
                out_bps=out_rate * 8 if out_rate is not None else None,
                errors_per_s=_finite(p.get("errors")),
                peer=p.get("peer", ""),
            )
        )
    return FabricState(tuple(links))


def queues_from_samples(samples: Iterable[Sample], m: MetricMap) -> tuple[QueueState, ...] | None:
    """Slurm partition and Kueue ClusterQueue series → queues; ``None`` when there are none."""
    slurm: dict[str, dict[str, float]] = {}
    kueue: dict[str, dict[str, float]] = {}
    seen = False
    for s in samples:
        value = _finite(s.value) or 0.0
        if s.name in (m.slurm_pending, m.slurm_running, m.slurm_pending_gpus):
            seen = True
            q = slurm.setdefault(s.labels.get(m.slurm_label_partition, ""), {})
            q[s.name] = q.get(s.name, 0.0) + value
        elif s.name in (m.kueue_pending, m.kueue_admitted):
            seen = True
            q = kueue.setdefault(s.labels.get(m.kueue_label_queue, ""), {})
            q[s.name] = q.get(s.name, 0.0) + value  # pending is split by status: sum it
    if not seen:
        return None
    queues = [
        QueueState(name, "slurm", pending_jobs=round(q.get(m.slurm_pending, 0)),
                   running_jobs=round(q.get(m.slurm_running, 0)), pending_gpus=round(q.get(m.slurm_pending_gpus, 0)))
        for name, q in slurm.items()
    ]
    queues += [
        QueueState(name, "kueue", pending_jobs=round(q.get(m.kueue_pending, 0)), running_jobs=round(q.get(m.kueue_admitted, 0)))
        for name, q in kueue.items()
    ]
    return tuple(sorted(queues, key=lambda q: (q.system, q.name)))


# ================================================================================== queries
def _names_selector(names: Iterable[str]) -> str:
    unique = sorted(set(names))
    return "{__name__=~" + _promql_string("|".join(_regex_quote(n) for n in unique)) + "}"


def _regex_quote(name: str) -> str:
    return "".join("\\" + ch if ch in ".^$*+?()[]{}|\\" else ch for ch in name)


def _promql_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def families(m: MetricMap) -> dict[str, tuple[str, ...]]:
    """Exporter family → the metric names this source reads from it."""
    return {
        "dcgm": (m.gpu_util, m.gpu_mem_copy_util, m.gpu_fb_used, m.gpu_fb_free, m.gpu_temp, m.gpu_power,
                 m.gpu_power_limit, m.gpu_xid, m.gpu_ecc_dbe_vol, m.gpu_ecc_sbe_vol, m.gpu_row_remap_failure,
                 m.gpu_row_remap_pending),
        "ceph": (m.ceph_health, m.ceph_health_detail, m.ceph_total_bytes, m.ceph_used_bytes, m.ceph_pool_stored,
                 m.ceph_pool_max_avail, m.ceph_pool_objects, m.ceph_pool_metadata, m.ceph_osd_up, m.ceph_osd_in),
        "snmp": (m.if_oper_status, m.if_admin_status, m.if_speed, m.if_in_octets, m.if_out_octets, m.if_in_errors),
        "queues": (m.slurm_pending, m.slurm_running, m.slurm_pending_gpus, m.kueue_pending, m.kueue_admitted),
    }


def build_queries(m: MetricMap) -> dict[str, str]:
    """One PromQL query per exporter family (never per GPU or per port)."""
    fam = families(m)
    window = m.rate_window

    def rate(metric: str, tag: str) -> str:
        return f'label_replace(rate({metric}[{window}]), "{RATE_LABEL}", "{tag}", "", "")'

    fabric = " or ".join([
        _names_selector((m.if_oper_status, m.if_admin_status, m.if_speed)),
        rate(m.if_in_octets, "in"),
        rate(m.if_out_octets, "out"),
        rate(m.if_in_errors, "errors"),
    ])
    return {
        "gpus": _names_selector(fam["dcgm"]),
        "ceph": _names_selector(fam["ceph"]),
        "fabric": fabric,
        "queues": _names_selector(fam["queues"]),
    }


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
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
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

    def query_sync(self, query: str, *, at: float | None = None, deadline: float | None = None,
                   what: str = "") -> list[Sample]:
        """One instant query at ``at`` (default: the clock); the samples of its vector."""
        when = self.clock() if at is None else at
        timeout = self.http.remaining(deadline)
        client = self.client
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
        mem = [100.0 * u / (u + f) if u is not None and f is not None and u + f > 0 else None for u, f in zip(used, free, strict=True)]
        return {"util_pct": column(m.gpu_util), "mem_pct": mem, "temp_c": column(m.gpu_temp), "power_w": column(m.gpu_power)}

    def version_sync(self, deadline: float | None = None) -> str:
        payload = self.http.get("/api/v1/status/buildinfo", deadline=deadline, what="build info")
        data = _success_data(payload, "build info")
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

    def _part_budget(self) -> float:
        """How long one query may take: a little less than the source's timeout, so that a slow query costs its
        part only and the poll still returns the others before the hub gives up on the source."""
        return max(0.5, self.timeout_s - min(1.0, 0.2 * self.timeout_s))

    def _fetch(self) -> SourceData:
        started = time.monotonic()
        deadline = started + self._part_budget()
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
                errors[key] = Timeout(f"Prometheus did not answer within {self._part_budget():.3g}s (the {key} query)")
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
            PartStatus(key, key not in errors, str(errors[key]) if key in errors else "",
                       self._kept[key][1] if key in self._kept else None)
            for key in reads
        )
        if not self._version:
            try:
                self._version = self.version_sync(started + self.timeout_s)
            except SourceError as exc:
                notes.append(f"version: {exc}")
        return SourceData(gpus=facets["gpus"], ceph=facets["ceph"], fabric=facets["fabric"], queues=facets["queues"],
                          alerts=facets["alerts"], version=self._version, notes=tuple(notes), parts=parts)

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

    def _pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The source's own few threads: the query families are read side by side, each bounded on its own."""
        with self._client_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=len(self.queries) + 1, thread_name_prefix=f"{self.name}-query")
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
        samples = self.query_sync(f"count by (__name__) ({_names_selector(names)})", deadline=self.http.deadline(),
                                  what="the series count")
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
