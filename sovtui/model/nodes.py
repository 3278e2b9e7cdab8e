"""Provides the per-host fusion of every layer (GPUs, Kubernetes, Nova, Slurm) and the combined node status rule.

A host is matched across layers by its short name, lower case (``gpu01.dc1.example`` in Kubernetes,
``gpu01`` over SSH and ``GPU01`` in Nova are one host). Its combined status, first match wins:

| status    | level | when                                                                              |
| --------- | ----- | --------------------------------------------------------------------------------- |
| down      | crit  | NotReady / Ready unknown in K8s, nova-compute down or forced down, Slurm down      |
| mismatch  | warn  | one layer takes no new work (cordoned, disabled, drained) while another still does |
|           | crit  | ... and a GPU of it fails                                                         |
| draining  | warn  | every layer closed, but GPU pods, VMs or Slurm jobs still run there (or the pods   |
|           |       | on it are unknown: denied, not listed — never taken for "nothing left")           |
| cordoned  | warn  | every layer closed and nothing left running                                       |
| serving   | ok    | every layer takes work; crit when a GPU of it fails (work still lands on it)        |
| (blank)   | GPU's | no scheduling layer knows the host: only its GPU health counts                    |

A host whose GPU probe fails (SSH) while it serves is a warning: its GPUs are not watched.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .types import GpuHost, Health, KubeNode, NodeEvent, NovaHost, SlurmNode

#: layer names, in column order
LAYERS = ("kubernetes", "nova", "slurm", "gpu")
LAYER_SHORT = {"kubernetes": "K8s", "nova": "Nova", "slurm": "Slurm", "gpu": "GPU probe"}

SERVING, CORDONED, DRAINING, DOWN, MISMATCH = "serving", "cordoned", "draining", "down", "mismatch"


def host_key(name: str) -> str:
    """The name a host is matched by across layers: short, lower case; an IP address stays whole."""
    name = name.strip().lower()
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name.split(".", 1)[0]
    return name


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """The combined status of a host: a word, its level and the human reason."""

    status: str
    level: Health
    reason: str = ""


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One host with what each layer says of it, and the combined status."""

    name: str
    status: NodeStatus
    kube: KubeNode | None = None
    nova: NovaHost | None = None
    slurm: SlurmNode | None = None
    gpu_host: GpuHost | None = None
    gpus_total: int = 0
    gpus_bad: int = 0
    gpu_level: Health = Health.OK
    gpu_reason: str = ""
    events: tuple[NodeEvent, ...] = ()  # newest first

    @property
    def key(self) -> str:
        return host_key(self.name)


def _closed(kube: KubeNode | None, nova: NovaHost | None, slurm: SlurmNode | None) -> tuple[list[str], list[str]]:
    """(what says the host takes no new work, what says it does), one phrase per layer."""
    closed: list[str] = []
    open_: list[str] = []
    if kube is not None:
        (closed if kube.unschedulable else open_).append(
            "cordoned in K8s" if kube.unschedulable else "schedulable in K8s"
        )
    if nova is not None and nova.service_status:
        if nova.service_status == "disabled":
            closed.append("disabled in Nova" + (f" ({nova.disabled_reason})" if nova.disabled_reason else ""))
        else:
            open_.append("enabled in Nova")
    if slurm is not None and slurm.state:
        if slurm.closed:
            closed.append(f"{slurm.state} in Slurm" + (f" ({slurm.reason})" if slurm.reason else ""))
        else:
            open_.append(f"{slurm.state} in Slurm")
    return closed, open_


def _down(kube: KubeNode | None, nova: NovaHost | None, slurm: SlurmNode | None) -> list[str]:
    why = []
    if kube is not None:
        if kube.ready is False:
            why.append("NotReady in K8s")
        elif kube.ready is None:
            why.append("K8s Ready unknown (kubelet not reporting)")
    if nova is not None:
        if nova.forced_down:
            why.append("nova-compute forced down")
        elif nova.service_state == "down":
            why.append("nova-compute down")
    if slurm is not None and slurm.down:
        why.append(f"{slurm.state} in Slurm" + (f" ({slurm.reason})" if slurm.reason else ""))
    return why


def _still_running(kube: KubeNode | None, nova: NovaHost | None, slurm: SlurmNode | None) -> list[str]:
    left = []
    if kube is not None and kube.pods_unknown:
        left.append(f"K8s pods unknown ({kube.pods_unknown})")
    elif kube is not None and kube.pods_with_gpus:
        n = len(kube.pods_with_gpus)
        left.append(f"{n} GPU pod{'s' if n != 1 else ''}")
    if nova is not None and nova.running_vms:
        left.append(f"{nova.running_vms} VM{'s' if nova.running_vms != 1 else ''}")
    if slurm is not None and (slurm.jobs or slurm.gpus_allocated or slurm.state.startswith("draining")):
        n = len(slurm.jobs)
        left.append(f"{n} Slurm job{'s' if n != 1 else ''}" if n else "Slurm jobs")
    return left


def node_status(
    kube: KubeNode | None = None,
    nova: NovaHost | None = None,
    slurm: SlurmNode | None = None,
    *,
    gpu_level: Health = Health.OK,
    gpu_reason: str = "",
    probe_error: str = "",
) -> NodeStatus:
    """The combined status of one host from its layers (see the table in this module's docstring)."""
    down = _down(kube, nova, slurm)
    if down:
        return NodeStatus(DOWN, Health.CRIT, "; ".join(down))
    closed, open_ = _closed(kube, nova, slurm)
    if closed and open_:
        why = f"{closed[0]} but {open_[0]}"
        if gpu_level is Health.CRIT:  # and work may still land on it
            return NodeStatus(MISMATCH, Health.CRIT, f"{why}; {gpu_reason or 'a GPU fails'}")
        return NodeStatus(MISMATCH, Health.WARN, why)
    if closed:
        left = _still_running(kube, nova, slurm)
        if left:
            return NodeStatus(DRAINING, Health.WARN, f"{'; '.join(closed)}; still running: {', '.join(left)}")
        return NodeStatus(CORDONED, Health.WARN, "; ".join(closed))
    if not open_:
        if probe_error:
            return NodeStatus("", Health.worst([gpu_level, Health.WARN]), f"GPU probe: {probe_error}")
        return NodeStatus("", gpu_level, gpu_reason)
    if gpu_level is Health.CRIT:
        return NodeStatus(
            SERVING,
            Health.CRIT,
            f"takes work with a failing GPU: {gpu_reason}" if gpu_reason else "takes work with a failing GPU",
        )
    if probe_error:
        return NodeStatus(SERVING, Health.WARN, f"GPUs not watched: {probe_error}")
    return NodeStatus(SERVING, Health.OK, "")


def _by_key(items: Iterable[Any]) -> dict[str, Any]:
    return {host_key(item.name): item for item in items}


def fuse_nodes(
    kube_nodes: Iterable[KubeNode] = (),
    nova_hosts: Iterable[NovaHost] = (),
    slurm_nodes: Iterable[SlurmNode] = (),
    gpu_hosts: Iterable[GpuHost] = (),
    gpu_rows: Iterable[Any] = (),
    events: Iterable[NodeEvent] = (),
) -> tuple[NodeRow, ...]:
    """One row per host known to any layer, by name. ``gpu_rows`` are the view's GpuRows (gpu, verdict)."""
    return NodeFusion().fuse(kube_nodes, nova_hosts, slurm_nodes, gpu_hosts, gpu_rows, events)


class NodeFusion:
    """:func:`fuse_nodes` that remembers its last answer: a host whose inputs are the same objects as
    last time keeps its NodeRow (so screens can skip it), and the same inputs give the same tuple back.

    Sources hand over the same tuples and records while nothing changes (the Kubernetes informers
    do), so an idle refresh of a 1,000-node site costs a few identity checks.
    """

    def __init__(self) -> None:
        self._last_inputs: tuple[Iterable[Any], ...] = ()
        self._last: tuple[NodeRow, ...] = ()
        self._hosts: dict[str, tuple[tuple[Any, ...], NodeRow]] = {}

    def fuse(
        self,
        kube_nodes: Iterable[KubeNode] = (),
        nova_hosts: Iterable[NovaHost] = (),
        slurm_nodes: Iterable[SlurmNode] = (),
        gpu_hosts: Iterable[GpuHost] = (),
        gpu_rows: Iterable[Any] = (),
        events: Iterable[NodeEvent] = (),
    ) -> tuple[NodeRow, ...]:
        inputs: tuple[Iterable[Any], ...] = (kube_nodes, nova_hosts, slurm_nodes, gpu_hosts, gpu_rows, events)
        if len(inputs) == len(self._last_inputs) and all(map(_same, inputs, self._last_inputs)):
            return self._last
        names: dict[str, str] = {}  # key -> name shown: the GPU host's, else Kubernetes', else Nova's, else Slurm's
        kube, nova, slurm, probed = (_by_key(items) for items in (kube_nodes, nova_hosts, slurm_nodes, gpu_hosts))
        per_host: dict[str, list[Any]] = {}
        for row in gpu_rows:
            per_host.setdefault(host_key(row.gpu.host), []).append(row)
        for layer in (slurm, nova, kube):
            for key, item in layer.items():
                names[key] = item.name
        for key in per_host:
            names[key] = per_host[key][0].gpu.host
        for key, gh in probed.items():
            names[key] = gh.name
        by_host_events: dict[str, list[NodeEvent]] = {}
        for event in events:
            by_host_events.setdefault(host_key(event.node), []).append(event)

        kept = self._hosts
        fresh: dict[str, tuple[tuple[Any, ...], NodeRow]] = {}
        out = []
        for key, name in names.items():
            rows = per_host.get(key, ())
            evs = by_host_events.get(key, [])
            evs.sort(key=lambda e: e.last_seen or 0.0, reverse=True)
            ident = (
                name,
                kube.get(key),
                nova.get(key),
                slurm.get(key),
                probed.get(key),
                tuple((r.gpu, r.verdict) for r in rows),
                tuple(evs),
            )
            before = kept.get(key)
            if before is not None and _same_host(before[0], ident):
                node = before[1]
            else:
                node = _host_row(*ident)
            fresh[key] = (ident, node)
            out.append(node)
        out.sort(key=lambda r: r.key)
        self._hosts = fresh
        self._last_inputs, self._last = inputs, tuple(out)
        return self._last


def _same(a: object, b: object) -> bool:
    return a is b or (not a and not b and type(a) is type(b))


def _same_host(old: tuple[Any, ...], new: tuple[Any, ...]) -> bool:
    """Same name, the same layer records (identity), the same GPUs and verdicts, equal events."""
    if old[0] != new[0] or any(o is not n for o, n in zip(old[1:5], new[1:5], strict=True)):
        return False
    og, ng = old[5], new[5]
    if len(og) != len(ng) or any(a[0] is not b[0] or a[1] != b[1] for a, b in zip(og, ng, strict=True)):
        return False
    return bool(old[6] == new[6])


def _host_row(
    name: str,
    k: KubeNode | None,
    n: NovaHost | None,
    s: SlurmNode | None,
    gh: GpuHost | None,
    gpus: tuple[Any, ...],
    events: tuple[NodeEvent, ...],
) -> NodeRow:
    verdicts = [v for _, v in gpus]
    worst_i = max(range(len(gpus)), key=lambda i: verdicts[i].level.rank, default=None)
    gpu_level = verdicts[worst_i].level if worst_i is not None else Health.OK
    gpu_reason = ""
    if worst_i is not None and gpu_level is not Health.OK:
        first = verdicts[worst_i].first_reason
        gpu_reason = f"GPU {gpus[worst_i][0].index}: {first}" if first else ""
    status = node_status(
        k, n, s, gpu_level=gpu_level, gpu_reason=gpu_reason, probe_error=gh.error if gh is not None else ""
    )
    return NodeRow(
        name=name,
        status=status,
        kube=k,
        nova=n,
        slurm=s,
        gpu_host=gh,
        gpus_total=len(gpus),
        gpus_bad=sum(1 for v in verdicts if v.level is not Health.OK),
        gpu_level=gpu_level,
        gpu_reason=gpu_reason,
        events=events,
    )


#: the fusion the views use: one per process is enough (it keeps the last site's answer)
SHARED_FUSION = NodeFusion()
