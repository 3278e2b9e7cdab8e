"""Provides the plans of drain, cordon and uncordon across Kubernetes, Nova and Slurm.

The Kubernetes part follows ``kubectl drain`` (``k8s.io/kubectl/pkg/drain``): its pod filters run in the
same order — DaemonSet-managed (skipped), mirror pods (skipped), emptyDir data (needs "delete emptyDir
data"), no controller (needs force) — and a PodDisruptionBudget that allows no disruption now does not
stop the plan: the run retries the eviction, as kubectl does on a 429.

Nova: the compute service is disabled with the reason; each server is live-migrated, cold-migrated or
left, as the VM policy and what Nova supports for its flavor (vGPU, PCI passthrough) allow; the free
capacity of the other enabled hosts is checked. Slurm: the node is drained with the reason; its jobs
finish (or are requeued when asked); uncordon clears only the drain flag.

Planning reads the sources' caches; the one round trip is Nova's list of servers on each host.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from ..model.types import NovaHost, SiteInfo, SlurmNode
from ..model.workload import PodRef, SlurmJobRef, VmRef
from .layers import Layers
from .plan import LAYER_TITLE, Blocker, OpsError, Options, Plan, ReadOnly, Step

PDB_RETRY_S = 5.0  # kubectl drain retries a 429 every 5 seconds


# ============================================================================ Kubernetes
def plan_kube(
    host: str,
    node: str,
    pods: Sequence[PodRef] | None,
    unschedulable: bool | None,
    action: str,
    opts: Options,
    pods_unknown: str = "",
) -> tuple[list[Step], list[Blocker]]:
    """Steps and blockers for one Kubernetes node; ``pods`` is every pod bound to it (None: unknown, and
    ``pods_unknown`` says why: ``forbidden``, ``not served``, ``not listed yet``)."""
    steps: list[Step] = []
    blockers: list[Blocker] = []
    if action == "uncordon":
        if unschedulable is False:
            steps.append(Step(host, "kubernetes", "node", node, "skip", "not cordoned", ref=node))
        else:
            steps.append(Step(host, "kubernetes", "node", node, "uncordon", "", ref=node))
        return steps, blockers
    steps.append(
        Step(host, "kubernetes", "node", node, "cordon", "already cordoned" if unschedulable else "", ref=node)
    )
    if pods is None or pods_unknown:
        why = pods_unknown or "the pod cache is not loaded"
        blockers.append(
            Blocker(
                host,
                "kubernetes",
                node,
                f"the pods on this node are not known ({why}): draining it could evict nothing or anything",
                "retry when the Kubernetes source lists pods again (check RBAC: "
                "list and watch pods), or leave Kubernetes out (layers)",
            )
        )
        return steps, blockers
    for pod in sorted(pods, key=lambda p: p.key):
        if action == "cordon":
            steps.append(
                Step(
                    host,
                    "kubernetes",
                    "pod",
                    pod.key,
                    "stay",
                    "keeps running (cordon moves nothing)",
                    ref=pod.uid,
                    gpus=pod.gpus,
                )
            )
            continue
        step, blocker = _pod_step(host, pod, opts)
        steps.append(step)
        if blocker is not None:
            blockers.append(blocker)
    return steps, blockers


def _pod_step(host: str, pod: PodRef, opts: Options) -> tuple[Step, Blocker | None]:
    """kubectl drain's filters, in its order, for one pod."""

    def step(action: str, detail: str = "") -> Step:
        return Step(
            host, "kubernetes", "pod", pod.key, action, detail, ref=pod.uid, gpus=pod.gpus if action == "evict" else 0
        )

    if pod.deleting:
        return step("wait", "already terminating: waited for"), None
    if pod.daemonset:
        return step("skip", f"DaemonSet {pod.owner_name}: stays, as with --ignore-daemonsets"), None
    if pod.mirror:
        return step("skip", "mirror of a static pod: the kubelet owns it"), None
    if pod.terminated:
        return step("evict", f"{pod.phase.lower()}: removed"), None
    if pod.emptydir and not opts.delete_emptydir_data:
        return step("evict", "has emptyDir data"), Blocker(
            host,
            "kubernetes",
            pod.key,
            "has emptyDir data, which eviction deletes",
            "allow it with delete emptyDir data (--delete-emptydir-data)",
        )
    if not pod.owner_kind and not opts.force:
        return step("evict", "no controller"), Blocker(
            host,
            "kubernetes",
            pod.key,
            "declares no controller: nothing recreates it once evicted",
            "allow it with force (--force); the pod is then gone for good",
        )
    details = []
    if pod.gpus:
        details.append(f"frees {pod.gpus} GPU{'s' if pod.gpus != 1 else ''}")
    if not pod.owner_kind:
        details.append("no controller: not recreated (force)")
    elif pod.emptydir:
        details.append("emptyDir data deleted")
    held = [b for b in pod.budgets if b.disruptions_allowed <= 0]
    blocker = None
    if held:
        budget = held[0]
        details.append(f"held by PodDisruptionBudget {budget.name} (allows 0 now)")
        blocker = Blocker(
            host,
            "kubernetes",
            pod.key,
            budget.describe(),
            f"the run retries every {PDB_RETRY_S:g} s until the budget allows a disruption "
            "(a replica ready elsewhere), or change the budget",
            fatal=False,
        )
    return step("evict", "; ".join(details)), blocker


# ============================================================================ Nova
def plan_nova(
    host: str,
    nova: NovaHost,
    vms: Sequence[VmRef] | None,
    action: str,
    opts: Options,
    *,
    microversion: str = "",
    others: Iterable[NovaHost] = (),
) -> tuple[list[Step], list[Blocker], list[str]]:
    """Steps, blockers and notes for one compute host."""
    steps: list[Step] = []
    blockers: list[Blocker] = []
    notes: list[str] = []
    disabled = nova.service_status == "disabled"
    if action == "uncordon":
        if disabled:
            detail = f"disabled: {nova.disabled_reason}" if nova.disabled_reason else "disabled"
            steps.append(Step(host, "nova", "service", nova.name, "enable", detail, ref=nova.name))
        else:
            steps.append(Step(host, "nova", "service", nova.name, "skip", "already enabled", ref=nova.name))
        return steps, blockers, notes
    already = (
        f"already disabled: {nova.disabled_reason}"
        if disabled and nova.disabled_reason
        else ("already disabled" if disabled else "")
    )
    steps.append(Step(host, "nova", "service", nova.name, "disable", already, ref=nova.name))
    if vms is None:
        blockers.append(
            Blocker(
                host,
                "nova",
                nova.name,
                "the servers on this host could not be listed",
                "retry when Nova answers, or leave Nova out (layers)",
            )
        )
        return steps, blockers, notes
    moving: list[VmRef] = []
    for vm in sorted(vms, key=lambda v: (v.name, v.id)):
        label = vm.name or vm.id
        if action == "cordon":
            steps.append(Step(host, "nova", "server", label, "stay", "keeps running (cordon moves nothing)", ref=vm.id))
            continue
        step = _vm_step(host, vm, opts, microversion)
        steps.append(step)
        if step.action in ("live-migrate", "cold-migrate"):
            moving.append(vm)
        elif vm.status.upper() == "ERROR":
            blockers.append(
                Blocker(
                    host,
                    "nova",
                    label,
                    "in ERROR: Nova will not migrate it",
                    "reset or delete the server; the drain leaves it here",
                    fatal=False,
                )
            )
    if moving:
        shortfall = _capacity_shortfall(moving, [o for o in others if o.name != nova.name])
        if shortfall:
            blockers.append(
                Blocker(
                    host,
                    "nova",
                    nova.name,
                    shortfall,
                    "enable another compute host, free room, or keep the VMs (VM policy leave)",
                    fatal=False,
                )
            )
    return steps, blockers, notes


def _vm_step(host: str, vm: VmRef, opts: Options, microversion: str) -> Step:
    label = vm.name or vm.id
    status = vm.status.upper()
    gpu = {"vgpu": "vGPU", "pci": "PCI passthrough"}.get(vm.gpu, "")
    flavor = f"{vm.flavor}{f', {gpu}' if gpu else ''}" if vm.flavor else gpu

    def step(action: str, detail: str) -> Step:
        return Step(host, "nova", "server", label, action, "; ".join(x for x in (flavor, detail) if x), ref=vm.id)

    if opts.vm_policy == "leave":
        return step("leave", "stays on the host (VM policy leave)")
    if status == "ERROR":
        return step("leave", "in ERROR")
    if status in ("SHUTOFF", "SHELVED", "SUSPENDED"):
        return step("cold-migrate", f"{status.lower()}: moved cold")
    if opts.vm_policy == "cold":
        return step("cold-migrate", "VM policy cold: it restarts on the new host")
    from ..model.nova import live_migration_support

    ok, why = live_migration_support(vm, microversion)
    if ok:
        return step("live-migrate", "")
    return step("cold-migrate", f"cannot live-migrate ({why}): cold migration, it restarts on the new host")


def _capacity_shortfall(vms: Sequence[VmRef], others: Iterable[NovaHost]) -> str:
    """Why the other enabled, up hosts cannot take ``vms``, or "" when they can or it is unknown.

    Each server needs its vCPUs, RAM and GPUs on one host: placed first-fit, biggest first, as a
    scheduler packing them would; a host whose capacity is unknown gives no verdict (unknown is not zero).
    """
    open_hosts = [h for h in others if h.service_status == "enabled" and h.service_state == "up" and not h.forced_down]
    if not open_hosts:
        return "no other enabled compute host is up to take its servers"
    free: list[tuple[list[int], dict[str, int]]] = []  # per open host: [free vCPUs, free MB], free GPUs per class
    for h in open_hosts:
        if h.vcpus is None or h.vcpus_used is None or h.memory_mb is None or h.memory_mb_used is None:
            return ""
        gpus = {rc: total - used for rc, total, used in h.gpu_inventory}
        free.append(([h.vcpus - h.vcpus_used, h.memory_mb - h.memory_mb_used], gpus))
    unplaced = []
    for vm in sorted(vms, key=lambda v: (v.gpus, v.vcpus, v.ram_mb), reverse=True):
        rc = {"vgpu": "VGPU", "pci": "PGPU"}.get(vm.gpu, "")
        need_gpus = max(1, vm.gpus) if rc else 0
        for room, room_gpus in free:
            if room[0] >= vm.vcpus and room[1] >= vm.ram_mb and (not rc or room_gpus.get(rc, 0) >= need_gpus):
                room[0] -= vm.vcpus
                room[1] -= vm.ram_mb
                if rc:
                    room_gpus[rc] -= need_gpus
                break
        else:
            unplaced.append(
                f"{vm.name or vm.id} ({vm.vcpus} vCPU, {vm.ram_mb} MB" + (f", {need_gpus} {rc}" if rc else "") + ")"
            )
    return "no room on the other hosts for " + ", ".join(unplaced) if unplaced else ""


# ============================================================================ Slurm
def plan_slurm(
    host: str, node: SlurmNode, jobs: Sequence[SlurmJobRef], action: str, opts: Options
) -> tuple[list[Step], list[Blocker], list[str]]:
    steps: list[Step] = []
    notes: list[str] = []
    flags = {f.upper() for f in getattr(node, "flags", ()) or ()}
    drain_flag = "DRAIN" in flags or node.state.startswith("drain")
    if action == "uncordon":
        if drain_flag:
            detail = "stays DOWN: undrain clears only the drain flag" if node.down else ""
            steps.append(Step(host, "slurm", "node", node.name, "undrain", detail, ref=node.name))
        else:
            steps.append(
                Step(
                    host,
                    "slurm",
                    "node",
                    node.name,
                    "skip",
                    f"not drained ({node.state or 'state unknown'})",
                    ref=node.name,
                )
            )
        return steps, [], notes
    detail = f"already {node.state}" if drain_flag else (f"{node.state}: stays so" if node.down else "")
    steps.append(Step(host, "slurm", "node", node.name, "drain", detail, ref=node.name))
    for job in sorted(jobs, key=lambda j: j.id):
        who = " ".join(x for x in (job.name, f"({job.user})" if job.user else "") if x)
        gpus = f"{job.gpus} GPUs" if job.gpus else ""
        if action == "cordon":
            steps.append(
                Step(
                    host,
                    "slurm",
                    "job",
                    job.id,
                    "stay",
                    ", ".join(x for x in (who, gpus, "keeps running") if x),
                    ref=job.id,
                )
            )
        elif opts.requeue_jobs:
            steps.append(
                Step(
                    host,
                    "slurm",
                    "job",
                    job.id,
                    "requeue",
                    ", ".join(x for x in (who, gpus, "requeued") if x),
                    ref=job.id,
                )
            )
        else:
            steps.append(
                Step(
                    host,
                    "slurm",
                    "job",
                    job.id,
                    "wait",
                    ", ".join(x for x in (who, gpus, "runs to its end (the node is DRAINING until then)") if x),
                    ref=job.id,
                )
            )
    return steps, [], notes


# ============================================================================ the whole plan
async def make_plan(
    action: str, hosts: Sequence[str], options: Options, layers: Layers, site: SiteInfo, *, timeout_s: float = 30.0
) -> Plan:
    """The plan of ``action`` on ``hosts``; ReadOnly, UnknownHost or OpsError when there can be none."""
    if site.read_only:
        raise ReadOnly(
            f"read-only: {action} would change the cluster, and site {site.name!r} is read-only "
            "(--read-only or read_only = true); nothing was planned"
        )
    opts = options.check(action)
    hosts = tuple(dict.fromkeys(h.strip() for h in hosts if h.strip()))
    if not hosts:
        raise OpsError(f"{action}: name at least one host")
    names = layers.resolve(hosts, opts.layers)
    steps: list[Step] = []
    blockers: list[Blocker] = []
    notes: list[str] = []
    for layer in opts.layers:
        if layer not in layers.sources:
            notes.append(f"{LAYER_TITLE[layer]}: not configured for site {site.name}")
        elif layer in layers.errors:
            notes.append(f"{LAYER_TITLE[layer]}: {layers.errors[layer]}")
    microversion = ""
    if any("nova" in n for n in names.values()):
        microversion = await _nova_version(layers.get("nova"), timeout_s, notes)
    for host in hosts:
        per = names[host]
        for layer in opts.layers:
            if layer in layers.sources and layer not in per:
                if layer in layers.errors and action != "uncordon":
                    # unknown is not "nothing there": the host may well run work in a layer that is not answering
                    blockers.append(
                        Blocker(
                            host,
                            layer,
                            host,
                            f"{LAYER_TITLE[layer]} is not answering "
                            f"({layers.errors[layer]}): whether {host} runs work there is unknown",
                            f"retry when {LAYER_TITLE[layer]} answers, or leave it out with "
                            f"--layers {','.join(x for x in opts.layers if x != layer) or 'none'}",
                        )
                    )
                else:
                    notes.append(f"{host}: not known to {LAYER_TITLE[layer]}")
        if "kubernetes" in per:
            kube = layers.source("kubernetes")
            node = per["kubernetes"]
            why = getattr(kube, "pods_unknown_reason", lambda: "")()
            s, b = plan_kube(host, node, kube.pods_on(node), kube.node_unschedulable(node), action, opts, why)
            steps += s
            blockers += b
        if "nova" in per:
            record = next(h for h in layers.nova_hosts if h.name == per["nova"])
            vms = (
                None
                if action == "uncordon"
                else await _servers_on(layers.source("nova"), record.name, timeout_s, notes)
            )
            s, b, n = plan_nova(host, record, vms, action, opts, microversion=microversion, others=layers.nova_hosts)
            steps += s
            blockers += b
            notes += n
        if "slurm" in per:
            slurm = layers.source("slurm")
            node_record = slurm.node(per["slurm"]) or next(n for n in layers.slurm_nodes if n.name == per["slurm"])
            s, b, n = plan_slurm(host, node_record, slurm.jobs_on(node_record.name), action, opts)
            steps += s
            blockers += b
            notes += n
    return Plan(
        action=action,
        site=site.name,
        hosts=hosts,
        options=opts,
        steps=tuple(steps),
        blockers=tuple(blockers),
        notes=tuple(dict.fromkeys(notes)),
        identities=layers.identities(),
        production=site.production,
        names=tuple((h, tuple(sorted(per.items()))) for h, per in names.items()),
    )


async def _nova_version(nova: Any, timeout_s: float, notes: list[str]) -> str:
    try:
        return str(await asyncio.wait_for(asyncio.to_thread(nova.compute_version), timeout_s))
    except Exception as exc:  # noqa: BLE001 - without it, GPU VMs are judged by the flavor alone
        notes.append(f"Nova: compute API version unknown ({_reason(exc)}): GPU VMs are not live-migrated")
        return ""


async def _servers_on(nova: Any, host: str, timeout_s: float, notes: list[str]) -> tuple[VmRef, ...] | None:
    try:
        return tuple(await asyncio.wait_for(asyncio.to_thread(nova.servers_on, host), timeout_s))
    except Exception as exc:  # noqa: BLE001 - the plan says it, as a blocker
        notes.append(f"Nova: servers on {host}: {_reason(exc)}")
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__
