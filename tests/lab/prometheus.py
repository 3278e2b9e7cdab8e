"""Provides the Prometheus lab: backfilled exporter data with its truth, a live exporter, Prometheus and Alertmanager."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sovtui.config import SiteConfig
from sovtui.model.types import Gpu

from .procs import Daemon, LabError, free_port, require_binary, start_daemon, wait_http, wait_until
from .prometheus_data import HOT_GPU, HOT_TEMP, XID_CODE, XID_GPU, LabTruth, M, build_lab_data, write_openmetrics


# --------------------------------------------------------------------------- live exporter (for rules)
def _live_metrics(truth: LabTruth) -> str:
    xid = truth.gpu(*XID_GPU)
    hot = truth.gpu(*HOT_GPU)

    def lab(g: Gpu) -> str:
        return (
            f'{M.gpu_label_host}="{g.host}",{M.gpu_label_index}="{g.index}",'
            f'{M.gpu_label_uuid}="{g.uuid}",{M.gpu_label_model}="{g.name}"'
        )

    return (
        f"# TYPE {M.gpu_xid} gauge\n{M.gpu_xid}{{{lab(xid)}}} {XID_CODE}\n"
        f"# TYPE {M.gpu_temp} gauge\n{M.gpu_temp}{{{lab(hot)}}} {HOT_TEMP:g}\n"
        "# TYPE lab_noise gauge\nlab_noise 1\n"
    )


class LiveExporter:
    """A stdlib HTTP server thread serving a few DCGM-style metrics in real time, for alert rules."""

    def __init__(self, body: str) -> None:
        payload = body.encode()

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, args=(0.05,), name="lab-live-exporter", daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


RULES = """\
groups:
  - name: lab
    interval: 1s
    rules:
      - alert: LabGpuXidError
        expr: {xid}{{job="lab-live"}} > 0
        for: 0s
        labels: {{severity: critical}}
        annotations:
          summary: 'GPU {{{{ $labels.{host} }}}}/{{{{ $labels.{index} }}}} reported XID {{{{ $value }}}}'
          description: 'XID {{{{ $value }}}}: the GPU needs a reset; drain the node.'
      - alert: LabGpuDegraded
        expr: {xid}{{job="lab-live"}} > 0
        for: 0s
        labels: {{severity: warning}}
        annotations:
          summary: 'GPU {{{{ $labels.{host} }}}}/{{{{ $labels.{index} }}}} is degraded'
      - alert: LabGpuHot
        expr: {temp}{{job="lab-live"}} > 85
        for: 1h
        labels: {{severity: warning}}
        annotations:
          summary: 'GPU {{{{ $labels.{host} }}}}/{{{{ $labels.{index} }}}} runs at {{{{ $value }}}} C'
      - alert: LabNoise
        expr: lab_noise{{job="lab-live"}} > 0
        for: 0s
        labels: {{severity: info}}
        annotations:
          summary: 'a silenced alert'
"""

ALERTMANAGER_CONFIG = """\
route:
  receiver: blackhole
  group_by: [alertname]
  group_wait: 1s
receivers:
  - name: blackhole
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [{host}, {index}]
"""


def _get_json(url: str, timeout_s: float = 2.0):
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def _post_json(url: str, body: dict, timeout_s: float = 2.0):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout_s) as resp:
        return json.loads(resp.read() or b"null")


def binary_version(binary: str) -> str:
    """``2.42.0+ds`` from ``prometheus --version`` (the same string the server reports)."""
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    first = (out.stdout or out.stderr).splitlines()[0]  # "prometheus, version 2.42.0+ds (branch: ...)"
    return first.split("version", 1)[1].split()[0]


# --------------------------------------------------------------------------- servers
class PrometheusServer:
    """One Prometheus process with its own data dir and port; can be stopped and started again."""

    def __init__(self, binary: str, workdir: Path, config_text: str, *, name: str = "prometheus") -> None:
        self.binary = binary
        self.name = name
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(config_text, encoding="utf-8")
        self.port = free_port()
        self.daemon: Daemon | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> PrometheusServer:
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            "--storage.tsdb.retention.time=100y",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
            "--rules.alert.resend-delay=1s",
        ]
        self.daemon = start_daemon(self.name, argv, self.workdir)
        wait_http(f"{self.url}/-/ready", daemon=self.daemon, timeout_s=timeout_s)
        return self

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()

    @property
    def running(self) -> bool:
        return self.daemon is not None and self.daemon.alive()


class AlertmanagerServer:
    """One Alertmanager process (clustering off) with its own storage dir and port."""

    def __init__(self, binary: str, workdir: Path, config_text: str) -> None:
        self.binary = binary
        self.workdir = workdir
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        self.config_path = workdir / "alertmanager.yml"
        self.config_path.write_text(config_text, encoding="utf-8")
        self.port = free_port()
        self.daemon: Daemon | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 20.0) -> AlertmanagerServer:
        argv = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--cluster.listen-address=",
        ]
        self.daemon = start_daemon("alertmanager", argv, self.workdir)
        wait_http(f"{self.url}/-/ready", daemon=self.daemon, timeout_s=timeout_s)
        return self

    def silence(self, alertname: str, hours: float = 24.0) -> str:
        now = time.time()
        iso = lambda t: datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")  # noqa: E731
        answer = _post_json(
            f"{self.url}/api/v2/silences",
            {
                "matchers": [{"name": "alertname", "value": alertname, "isRegex": False, "isEqual": True}],
                "startsAt": iso(now - 60),
                "endsAt": iso(now + hours * 3600),
                "createdBy": "sovtui-lab",
                "comment": "lab: silenced on purpose",
            },
        )
        return answer["silenceID"]

    def stop(self) -> None:
        if self.daemon is not None:
            self.daemon.stop()


def _prometheus_config(alertmanager_port: int | None, exporter_port: int | None, rules: Path | None) -> str:
    lines = ["global:", "  scrape_interval: 1s", "  evaluation_interval: 1s"]
    if rules is not None:
        lines += ["rule_files:", f"  - {rules}"]
    if alertmanager_port is not None:
        lines += [
            "alerting:",
            "  alertmanagers:",
            "    - api_version: v2",
            "      static_configs:",
            f"        - targets: ['127.0.0.1:{alertmanager_port}']",
        ]
    lines += ["scrape_configs:"]
    if exporter_port is not None:
        lines += ["  - job_name: lab-live", "    static_configs:", f"      - targets: ['127.0.0.1:{exporter_port}']"]
    else:
        lines[-1] = "scrape_configs: []"
    return "\n".join(lines) + "\n"


@dataclass
class PrometheusLab:
    """The running lab: Prometheus (backfilled) + Alertmanager + the live exporter + the truth."""

    workdir: Path
    truth: LabTruth
    prometheus: PrometheusServer
    alertmanager: AlertmanagerServer
    exporter: LiveExporter
    blocks_dir: Path
    prometheus_binary: str
    prometheus_version: str
    alertmanager_version: str
    timings: dict[str, float] = field(default_factory=dict)
    extra: list[PrometheusServer] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.prometheus.url

    @property
    def alertmanager_url(self) -> str:
        return self.alertmanager.url

    def site(self, **overrides) -> SiteConfig:
        """A site pointing at this lab (override e.g. ``prometheus_url`` or ``timeout_s``)."""
        values = {
            "name": "lab",
            "prometheus_url": self.url,
            "alertmanager_url": self.alertmanager_url,
            "timeout_s": 5.0,
            "refresh_s": 10.0,
        }
        values.update(overrides)
        return SiteConfig(**values)

    def clock(self) -> float:
        """The instant the backfilled data describes; pass as a source's ``clock``."""
        return self.truth.data_end

    def new_prometheus(self, name: str) -> PrometheusServer:
        """Another Prometheus on its own port with a copy of the backfilled data, started (stop it at will)."""
        workdir = self.workdir / name
        server = PrometheusServer(self.prometheus_binary, workdir, _prometheus_config(None, None, None), name=name)
        shutil.copytree(self.blocks_dir, server.data_dir, dirs_exist_ok=True)
        self.extra.append(server)
        return server.start()

    def close(self) -> None:
        for server in [*self.extra, self.prometheus]:
            server.stop()
        self.alertmanager.stop()
        self.exporter.close()


def start_prometheus_lab(workdir: Path, *, alert_timeout_s: float = 30.0) -> PrometheusLab:
    """Backfill ~2 h of exporter data, start Alertmanager and Prometheus, wait until the alerts are live."""
    prometheus = require_binary("prometheus", "prometheus")
    promtool = require_binary("promtool", "prometheus")
    alertmanager = require_binary("prometheus-alertmanager", "prometheus", candidates=("alertmanager",))
    workdir.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    data_end = float(int(time.time()) // 60 * 60)
    series, truth = build_lab_data(data_end)
    om_path = workdir / "backfill.om"
    samples = write_openmetrics(om_path, series, data_end)
    truth = replace(truth, samples=samples)
    timings["generate_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    blocks_dir = workdir / "blocks"
    out = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "-q", str(om_path), str(blocks_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise LabError(f"promtool backfill failed ({out.returncode}): {(out.stderr or out.stdout)[-2000:]}")
    om_path.unlink()
    timings["backfill_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    am = AlertmanagerServer(
        alertmanager,
        workdir / "alertmanager",
        ALERTMANAGER_CONFIG.format(host=M.gpu_label_host, index=M.gpu_label_index),
    )
    exporter = LiveExporter(_live_metrics(truth))
    rules = workdir / "rules.yml"
    rules.write_text(
        RULES.format(xid=M.gpu_xid, temp=M.gpu_temp, host=M.gpu_label_host, index=M.gpu_label_index), encoding="utf-8"
    )
    server = PrometheusServer(prometheus, workdir / "prometheus", _prometheus_config(am.port, exporter.port, rules))
    shutil.copytree(blocks_dir, server.data_dir, dirs_exist_ok=True)
    lab = PrometheusLab(
        workdir,
        truth,
        server,
        am,
        exporter,
        blocks_dir,
        prometheus,
        binary_version(prometheus),
        binary_version(alertmanager),
        timings,
    )
    try:
        am.start()
        am.silence("LabNoise")
        server.start()
        timings["start_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        wait_for_alerts(lab, timeout_s=alert_timeout_s)
        timings["alerts_s"] = time.perf_counter() - t0
    except BaseException:
        lab.close()
        raise
    return lab


def wait_for_alerts(lab: PrometheusLab, *, timeout_s: float) -> None:
    """Block until Prometheus shows every expected alert in its state and Alertmanager has them too."""
    want_prom = {(a.name, a.prometheus_state) for a in lab.truth.alerts}
    want_am = {
        (a.name, "active" if a.alertmanager_state == "firing" else a.alertmanager_state)
        for a in lab.truth.alerts
        if a.alertmanager_state
    }

    def prom_ready() -> bool:
        data = _get_json(f"{lab.url}/api/v1/alerts")["data"]["alerts"]
        return {(a["labels"]["alertname"], a["state"]) for a in data} >= want_prom

    def am_ready() -> bool:
        data = _get_json(f"{lab.alertmanager_url}/api/v2/alerts")
        return {(a["labels"]["alertname"], a["status"]["state"]) for a in data} >= want_am

    wait_until(
        prom_ready, daemon=lab.prometheus.daemon, timeout_s=timeout_s, interval_s=0.1, what="firing the lab alerts"
    )
    wait_until(
        am_ready, daemon=lab.alertmanager.daemon, timeout_s=timeout_s, interval_s=0.1, what="holding the lab alerts"
    )
