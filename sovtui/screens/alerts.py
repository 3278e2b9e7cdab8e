"""Provides the Alerts screen: firing and pending alerts from Prometheus and Alertmanager."""

from __future__ import annotations

from rich.text import Text

from ..model.export import rfc3339
from ..model.health import SEVERITY_ORDER, alert_level
from ..model.types import Alert
from ..model.view import ClusterView
from ..widgets.fmt import LEVEL_STYLE, fmt_age
from .base import Row, TableScreen
from .dialogs import DetailScreen


def alert_key(alert: Alert) -> str:
    return alert.name + "{" + ",".join(f"{k}={v}" for k, v in alert.labels if k != "alertname") + "}"


class AlertsScreen(TableScreen):
    """One row per alert, firing first, worst severity first; ``enter`` shows labels and annotations."""

    NAME = "alerts"
    TITLE_TEXT = "Alerts"
    HELP = "alerts from Prometheus /api/v1/alerts and Alertmanager /api/v2/alerts"
    EMPTY = "no alert source: set prometheus_url or alertmanager_url for this site"
    COLUMNS = (
        ("severity", "Severity", 10),
        ("state", "State", 9),
        ("name", "Alert", 22),
        ("since", "Since", 6),
        ("summary", "Summary", 40),
        ("labels", "Labels", None),
    )

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        if view.alerts is None:
            return None
        rows = []
        for alert in view.alerts:
            level = alert_level(alert) if alert.state == "firing" else None
            style = LEVEL_STYLE[level] if level is not None else "dim"
            glyph = level.glyph if level is not None else "·"
            labels = " ".join(f"{k}={v}" for k, v in alert.labels if k not in ("alertname", "severity"))
            age = view.now - alert.active_since if alert.active_since else None
            state = alert.state + ("/am" if alert.source == "alertmanager" else "")
            cells = (
                Text(f"{glyph} {alert.severity}", style=style),
                Text(state, style="" if alert.state == "firing" else "dim"),
                alert.name,
                fmt_age(age) if age is not None else "—",
                alert.summary,
                labels,
            )
            search = " ".join(
                [alert.name, alert.severity, alert.state, alert.summary, alert.description, labels]
            ).lower()
            sort = (
                SEVERITY_ORDER.get(alert.severity.lower(), 4),
                alert.state,
                alert.name,
                -(age or 0),
                alert.summary,
                labels,
            )
            rows.append(Row(alert_key(alert), cells, search, sort))
        return rows

    def copy_text(self, row: Row) -> str:
        return row.key

    def open_row(self, row: Row) -> None:
        alert = next((a for a in (self.view.alerts or ()) if alert_key(a) == row.key), None) if self.view else None
        if alert is None:
            return
        fields = [
            ("alert", alert.name),
            ("severity", alert.severity),
            ("state", alert.state),
            ("source", alert.source),
            ("active since", rfc3339(alert.active_since) or "—"),
            ("summary", alert.summary or "—"),
            ("description", alert.description or "—"),
        ]
        fields += [(f"label {k}", v) for k, v in alert.labels]
        self.app.push_screen(DetailScreen(f"Alert {alert.name}", fields, copy=row.key))
