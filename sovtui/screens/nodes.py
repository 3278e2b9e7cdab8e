"""Provides the Nodes screen: one row per host with what every layer (K8s, Nova, Slurm, GPUs) says of it."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding

from ..model.nodes import LAYER_SHORT, LAYERS, NodeRow
from ..model.types import Health, KubeNode, NovaHost, SlurmNode
from ..model.view import ClusterView
from ..widgets.fmt import LEVEL_STYLE, fmt_age, parts_line
from .base import Row, TableScreen
from .dialogs import DetailScreen
from .ops import HostActions, drain_reason, host_action_bindings

DASH = Text("—", style="dim")
#: sinfo's own short state words (its default STATE column)
SINFO_SHORT = {
    "allocated": "alloc",
    "mixed": "mix",
    "draining": "drng",
    "drained": "drain",
    "completing": "comp",
    "reserved": "resv",
    "maintenance": "maint",
    "not_responding": "down*",
}

#: the kinds of source that tell about hosts
HOST_LAYER_KINDS = frozenset({"kubernetes", "openstack", "slurm", "ssh"})
#: column key -> the layer it needs (a column whose layer no source gives is not shown)
COLUMN_LAYER = {"k8s": "kubernetes", "nova": "nova", "slurm": "slurm", "gpus": "gpu"}


def status_text(row: NodeRow) -> Text:
    status = row.status
    word = status.status or "—"
    return Text(
        f"{status.level.glyph} {word}",
        style=LEVEL_STYLE[status.level] if status.status or status.level is not Health.OK else "dim",
    )


def kube_text(node: KubeNode | None) -> Text:
    """Ready / cordoned / NotReady, and GPUs requested of allocatable."""
    if node is None:
        return DASH
    if node.ready is False:
        word, style = "NotReady", "bold red"
    elif node.ready is None:
        word, style = "Unknown", "bold red"
    elif node.unschedulable:
        word, style = "cordon", "yellow"
    else:
        word, style = "ready", ""
    text = Text(word, style=style)
    if node.pods_unknown:  # unknown is not 0: no count of GPUs requested
        text.append(f" ?/{node.gpu_allocatable}" if node.gpu_allocatable or node.gpu_capacity else " ?", style="yellow")
    elif node.gpu_allocatable or node.gpu_capacity:
        text.append(
            f" {node.gpu_requested}/{node.gpu_allocatable}",
            style="" if node.gpu_allocatable == node.gpu_capacity else "yellow",
        )
    return text


def nova_text(host: NovaHost | None) -> Text:
    """Enabled / disabled / down, and the VMs on it."""
    if host is None:
        return DASH
    if host.forced_down or host.service_state == "down":
        text = Text("down", style="bold red")
    elif host.service_status == "disabled":
        text = Text("disabled", style="yellow")
    else:
        text = Text(host.service_status or "?", style="")
    text.append(f" {host.running_vms}vm", style="dim" if not host.running_vms else "")
    return text


def slurm_text(node: SlurmNode | None) -> Text:
    if node is None:
        return DASH
    style = "bold red" if node.down else "yellow" if node.closed else ""
    return Text(SINFO_SHORT.get(node.state, node.state) or "?", style=style)


def gpus_text(row: NodeRow) -> Text:
    if not row.gpus_total:
        if row.gpu_host is not None and row.gpu_host.error:
            return Text("✗ probe", style="bold red")
        return DASH
    ok = row.gpus_total - row.gpus_bad
    return Text(f"{row.gpu_level.glyph} {ok}/{row.gpus_total}", style=LEVEL_STYLE[row.gpu_level])


class NodesScreen(HostActions, TableScreen):
    """Hosts across layers, worst first; ``enter`` opens the host: pods, VMs, jobs, taints, conditions, events.

    ``space`` marks hosts; ``c``/``D``/``u`` cordon, drain or uncordon the marked hosts (else the highlighted one).
    """

    BINDINGS = [
        Binding("space", "mark", "Mark", id="nodes.mark"),
        *host_action_bindings("nodes"),
    ]

    NAME = "nodes"
    TITLE_TEXT = "Nodes"
    HELP = "one row per host: Kubernetes node, Nova compute, Slurm node and GPU health side by side, with a combined status"
    EMPTY = "no host source: configure kube_context, openstack_cloud, [sites.X.ssh] hosts or DCGM metrics"
    COLUMNS = (
        ("host", "Host", 8),
        ("status", "Status", 10),
        ("k8s", "K8s GPUs", 11),
        ("nova", "Nova", 11),
        ("slurm", "Slurm", 6),
        ("gpus", "GPUs", 6),
        ("why", "Why", None),
    )

    def shown_columns(self) -> list[int]:
        """The base choice by width, without the layers no source of this site gives."""
        view = self.view
        layers = set((view.layer_sources or {}) if view is not None else ())
        return [i for i in super().shown_columns() if COLUMN_LAYER.get(self.COLUMNS[i][0], "") in layers | {""}]

    def render_view(self, view: ClusterView) -> None:
        spec = [self.COLUMNS[i] for i in self.shown_columns()]
        if spec != self.table.column_spec:
            self.table.set_columns(spec)
        super().render_view(view)

    def build_rows(self, view: ClusterView) -> list[Row] | None:
        nodes = view.nodes
        if nodes is None:
            return None
        rows = []
        cache = getattr(self, "_row_cache", {})
        marked = self.marked
        fresh: dict[str, tuple[NodeRow, Row, bool]] = {}
        for node in nodes:
            hit = cache.get(node.name)
            mark = node.name in marked
            if hit is not None and hit[0] is node and hit[2] == mark:  # the fusion kept the host: so does the table
                fresh[node.name] = hit
                rows.append(hit[1])
                continue
            level = node.status.level
            k, n, s = node.kube, node.nova, node.slurm
            cells = (
                Text(f"✓ {node.name}", style="bold reverse") if mark else node.name,
                status_text(node),
                kube_text(k),
                nova_text(n),
                slurm_text(s),
                gpus_text(node),
                node.status.reason or node.gpu_reason,
            )
            search = " ".join(
                [node.name, node.status.status, node.status.reason, node.gpu_reason]
                + [c.plain for c in cells[2:6]]
                + ([k.gpu_product] if k else [])
            ).lower()
            sort = (
                node.key,
                (-level.rank, node.status.status),
                (k.gpu_requested - k.gpu_allocatable, k.name) if k else None,
                (n.service_status, n.running_vms) if n else None,
                s.state if s else None,
                (-node.gpu_level.rank, node.gpus_bad) if node.gpus_total else None,
                node.status.reason or node.gpu_reason,
            )
            row = Row(node.name, cells, search + (" marked" if mark else ""), sort)
            fresh[node.name] = (node, row, mark)
            rows.append(row)
        self._row_cache = fresh
        rows.sort(key=lambda r: (r.sort[1], r.sort[0]))
        return rows

    @property
    def marked(self) -> set[str]:
        if not hasattr(self, "_marked"):
            self._marked: set[str] = set()
        return self._marked

    def action_mark(self) -> None:
        """Mark (or unmark) the highlighted host; actions then apply to every marked host."""
        key = self.table.selected_key()
        if key is None:
            return
        self.marked.symmetric_difference_update({key})
        if self.view is not None:
            self.render_view(self.view)
        self.table.move_cursor(row=min(self.table.cursor_row + 1, self.table.row_count - 1))

    def op_hosts(self) -> list[str]:
        if self.view is not None:
            shown = {n.name for n in self.view.nodes or ()}
            self.marked.intersection_update(shown)
        if self.marked:
            return sorted(self.marked)
        key = self.table.selected_key()
        return [key] if key else []

    def op_reason(self, hosts: list[str]) -> str:
        """The GPU verdict that recommends draining the one host, offered as the reason."""
        return drain_reason(self.view, hosts[0]) if len(hosts) == 1 else ""

    def render_rows(self) -> None:
        super().render_rows()
        if getattr(self, "_missing", False) and self.view is not None:
            trouble = self.trouble(self.view)
            if trouble:
                self.query_one("#table-status").update(
                    Text(f"{self.EMPTY} · {trouble}", style="italic yellow"), layout=False
                )

    @staticmethod
    def trouble(view: ClusterView) -> str:
        """The host-layer sources that fail or are stale, and why: what this screen cannot show right now."""
        out = []
        for status in view.statuses:
            if status.kind not in HOST_LAYER_KINDS:
                continue
            state = status.state(view.now)
            if state in ("failing", "stale"):
                out.append(f"⚠ {status.name} {state}" + (f": {status.error}" if status.error else ""))
            elif state == "partial":
                out.append(f"⚠ {status.name} partial: {parts_line(status, view.now)}")
        return " · ".join(out)

    def count_text(self, rows: list[Row]) -> str:
        view = self.view
        base = super().count_text(rows)
        if self.marked:
            base += f" · {len(self.marked)} marked (c/D/u act on them)"
        if view is None or not view.nodes:
            return base
        trouble = self.trouble(view)
        if trouble:
            base += f" · {trouble}"
        counts: dict[str, int] = {}
        for node in view.nodes:
            if node.status.status and node.status.status != "serving":
                counts[node.status.status] = counts.get(node.status.status, 0) + 1
        extra = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        if self.size.width < self.WIDE:  # the Why column is narrow: say the highlighted host's reason in full
            node = self._highlighted(view)
            why = (node.status.reason or node.gpu_reason) if node is not None else ""
            if why:
                return base + f" · {node.name}: {why}"
        layers = ", ".join(
            f"{LAYER_SHORT[layer]} from {src}"
            for layer, src in sorted((view.layer_sources or {}).items(), key=lambda kv: LAYERS.index(kv[0]))
        )
        return base + (f" · {extra}" if extra else "") + (f" · {layers}" if layers else "")

    def _highlighted(self, view: ClusterView) -> NodeRow | None:
        key = self.table.selected_key() if self._composed else None
        return next((n for n in view.nodes or () if n.name == key), None) if key else None

    def on_data_table_row_highlighted(self, event) -> None:
        if self.view is not None and self.size.width < self.WIDE and not getattr(self, "_missing", False):
            self.query_one("#table-status").update(self.status_line(self.visible_rows()), layout=False)

    def open_row(self, row: Row) -> None:
        name = row.key

        def build(view: ClusterView):
            node = next((n for n in view.nodes or () if n.name == name), None)
            if node is None:
                return [("gone", "no source reports this host any more")]
            return node_fields(node, view)

        self.app.push_screen(DetailScreen(f"Host {name}", build(self.view), copy=name, builder=build))


def _age(view: ClusterView, at: float | None) -> str:
    return f"{fmt_age(view.now - at)} ago" if at is not None else "—"


Fields = list[tuple[str, "str | Text"]]


def _gpu_fields(node: NodeRow) -> Fields:
    fields: Fields = []
    if node.gpus_total:
        fields.append(
            (
                "health",
                Text(
                    f"{node.gpu_level.glyph} {node.gpus_total - node.gpus_bad}/{node.gpus_total} healthy",
                    style=LEVEL_STYLE[node.gpu_level],
                ),
            )
        )
        if node.gpu_reason:
            fields.append(("worst", node.gpu_reason))
    else:
        fields.append(("health", "no GPUs reported"))
    gh = node.gpu_host
    if gh is not None:
        fields.append(
            (
                "probe",
                Text(gh.error, style="bold red")
                if gh.error
                else f"ok ({gh.backend or 'probe'}, driver {gh.driver_version or '?'})",
            )
        )
    return fields


def _kube_fields(k: KubeNode) -> Fields:
    ready = {True: "True", False: "False", None: "Unknown"}[k.ready]
    fields: Fields = [
        ("node", f"{k.name}  Ready={ready}" + ("  SchedulingDisabled (cordoned)" if k.unschedulable else ""))
    ]
    if k.pods_unknown:
        fields.append(
            (
                "GPUs",
                Text(
                    f"? requested of {k.gpu_allocatable} allocatable ({k.gpu_capacity} capacity): "
                    f"pods unknown: {k.pods_unknown}",
                    style="yellow",
                ),
            )
        )
    elif k.gpu_capacity or k.gpu_allocatable:
        fields.append(
            (
                "GPUs",
                f"{k.gpu_requested} requested of {k.gpu_allocatable} allocatable ({k.gpu_capacity} capacity)"
                + (f", {k.gpu_product}" if k.gpu_product else ""),
            )
        )
    if not k.pods_unknown:
        fields += [("  pod", f"{pod}  {gpus} GPU{'s' if gpus != 1 else ''}") for pod, gpus in k.pods_with_gpus]
    fields += [("  taint", taint) for taint in k.taints]
    normal = []
    for ctype, status, reason, message in k.conditions:
        if (ctype == "Ready") == (status == "True"):
            normal.append(f"{ctype}={status}")
        else:
            fields.append(
                (
                    "  condition",
                    Text(
                        f"{ctype}={status}" + (f" {reason}" if reason else "") + (f": {message}" if message else ""),
                        style="bold red",
                    ),
                )
            )
    if normal:
        fields.append(("  conditions", Text(" ".join(normal), style="dim")))
    return fields


def _nova_fields(n: NovaHost) -> Fields:
    svc = f"{n.service_status or '?'}, {n.service_state or '?'}" + (" (forced down)" if n.forced_down else "")
    if n.disabled_reason:
        svc += f" — {n.disabled_reason}"
    fields: Fields = [("nova-compute", svc + (f"  zone {n.zone}" if n.zone else ""))]
    if n.vcpus is not None:
        fields.append(("vCPUs", f"{n.vcpus_used if n.vcpus_used is not None else '?'} of {n.vcpus} used"))
    if n.memory_mb is not None:
        fields.append(("RAM", f"{(n.memory_mb_used or 0) / 1024:.0f} of {n.memory_mb / 1024:.0f} GiB used"))
    if n.gpu_inventory_known:
        fields += [(rc, f"{used} of {total} used") for rc, total, used in n.gpu_inventory]
    else:
        fields.append(("GPUs", Text("unknown: Placement has not answered", style="yellow")))
    fields.append(("VMs", str(n.running_vms)))
    fields += [("  server", server) for server in n.servers]
    return fields


def _slurm_fields(s: SlurmNode) -> Fields:
    return [
        ("state", s.state + (f" — {s.reason}" if s.reason else "")),
        ("partitions", ", ".join(s.partitions) or "—"),
        ("GPUs", f"{s.gpus_allocated} of {s.gpus} allocated"),
        *(("  job", job) for job in s.jobs),
    ]


def node_fields(node: NodeRow, view: ClusterView) -> Fields:
    """The details of one host, layer by layer; a layer the site has but that does not know the host says so."""
    fields: Fields = [
        ("host", node.name),
        (
            "status",
            Text(f"{node.status.level.glyph} {node.status.status or '—'}", style=LEVEL_STYLE[node.status.level]),
        ),
    ]
    if node.status.reason:
        fields.append(("why", node.status.reason))
    layers = view.layer_sources or {}
    sections = (
        ("gpu", "GPUs", node, _gpu_fields, ("", "")),
        ("kubernetes", "Kubernetes", node.kube, _kube_fields, ("node", "not a Kubernetes node")),
        ("nova", "Nova", node.nova, _nova_fields, ("compute", "not a Nova compute host")),
        ("slurm", "Slurm", node.slurm, _slurm_fields, ("node", "not a Slurm node")),
    )
    for layer, title, item, build, absent in sections:
        src = layers.get(layer)
        if src is None:
            continue
        status = view.status(src)
        state = status.state(view.now) if status is not None else "ok"
        note = (
            ""
            if state == "ok"
            else f"{src} {state}"
            + (
                f": {parts_line(status, view.now)}"
                if status is not None and state == "partial"
                else f": {status.error}"
                if status and status.error
                else ""
            )
        )
        fields.append((f"── {title}", note))
        fields += build(item) if item is not None else [(absent[0], Text(absent[1], style="dim"))]
    fields.append(("── events", "" if node.events else "none recent"))
    for event in node.events[:20]:
        text = Text(f"{_age(view, event.last_seen)}  ", style="dim")
        text.append(f"{event.reason}", style="yellow" if event.type == "Warning" else "")
        text.append(
            f" {event.kind} {event.object}: {event.message}" + (f" (×{event.count})" if event.count > 1 else "")
        )
        fields.append((event.source, text))
    return fields
