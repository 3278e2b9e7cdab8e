"""Provides the demo cluster's side of operations: evictions that take time, budgets, live and cold migrations, drains, requeues.

:class:`DemoOps` holds what an operation leaves in flight on a :class:`~sovtui.demo.cluster.DemoCluster` (pods
terminating, servers migrating, cordon reasons) and moves it on at the start of each simulation tick, so that the
state at a time stays a function of the seed and of the operations applied. Without an operation nothing here
changes the simulation. The demo sources call it under :attr:`DemoOps.lock`, after advancing the cluster to their
clock; errors are the typed errors the real sources raise.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid as uuidlib
import weakref
from dataclasses import dataclass

from ..model.types import KubeNode
from ..model.types import SlurmNode as SlurmNodeView
from ..model.workload import BudgetRef, PodRef, SlurmJobRef, VmRef
from ..sources.base import BadAnswer
from ..sources.kubernetes import EvictionBlocked, PodGone
from .cluster import DemoCluster
from .common import DemoOperationError, digest
from .entities import NovaServer, Pod
from .nova import FLAVOR_GPU, FLAVORS

#: how long an evicted pod takes to stop (its containers exit on SIGTERM), at most its grace period, seconds
TERMINATE_S = 2.0
#: spec.terminationGracePeriodSeconds of the demo's pods: training Jobs checkpoint before they stop
GRACE_S = {"Job": 120}
DEFAULT_GRACE_S = 30
#: how long Nova takes to move a server, seconds
LIVE_MIGRATION_S = 15.0
COLD_MIGRATION_S = 20.0
#: how soon the node health check drains again a Slurm node undrained with a GPU still lost, seconds
NHC_INTERVAL_S = 60.0
HOST_VCPUS = 224  # as DemoCluster.nova_hosts reports each hypervisor
HOST_RAM_MB = 2048 * 1024

_OPS: weakref.WeakKeyDictionary[DemoCluster, DemoOps] = weakref.WeakKeyDictionary()
_OPS_LOCK = threading.Lock()


def ops_for(cluster: DemoCluster) -> DemoOps:
    """The operations state of ``cluster``, made (and hooked into its ticks) on first use."""
    with _OPS_LOCK:
        ops = _OPS.get(cluster)
        if ops is None:
            ops = _OPS[cluster] = DemoOps(cluster)
        return ops


@dataclass(eq=False, slots=True)
class _Ghost:
    """An evicted pod while it terminates: out of the cluster's pods (its controller replaces it), GPUs still held."""

    pod: Pod
    uid: str
    gone_at: float


@dataclass(eq=False, slots=True)
class _Migration:
    """A server on its way to ``target``; it holds GPUs on both hosts until it lands (cold: until confirmed)."""

    server: NovaServer
    live: bool
    source: str
    target: str
    source_gpus: tuple[int, ...]
    target_gpus: tuple[int, ...]
    prior_status: str
    done_at: float
    landed: bool = False


class DemoOps:
    """Operations on one demo cluster; callers hold :attr:`lock` and have advanced the cluster to their clock."""

    def __init__(self, cluster: DemoCluster) -> None:
        self.cluster = cluster
        self.lock = threading.RLock()  # the OpenStack methods run in worker threads, the rest in the event loop
        self.cordon_reasons: dict[str, str] = {}
        self._ghosts: dict[tuple[str, str], _Ghost] = {}
        self._migrations: dict[str, _Migration] = {}
        self._nhc: dict[
            str, float
        ] = {}  # Slurm node undrained with a lost GPU -> when the health check drains it again
        cluster.step_hooks.append(self._tick)

    # -- time ------------------------------------------------------------------------------
    def _tick(self, now: float) -> None:
        """Finish what is due by ``now``: terminated pods release their GPUs, migrated servers land."""
        c = self.cluster
        for key, ghost in list(self._ghosts.items()):
            if ghost.gone_at <= now:
                c.release_pod(ghost.pod)
                del self._ghosts[key]
        for server_id, mig in list(self._migrations.items()):
            if mig.landed or mig.done_at > now:
                continue
            server = mig.server
            if server.status == "ERROR":  # a GPU fell off the bus on the way: Nova leaves it in ERROR where it was
                self._release(mig.target, mig.target_gpus, server)
                del self._migrations[server_id]
                continue
            server.host, server.gpu_indices = mig.target, mig.target_gpus
            if mig.live:
                self._release(mig.source, mig.source_gpus, server)
                server.status = mig.prior_status
                del self._migrations[server_id]
            else:
                server.status = "VERIFY_RESIZE"
                mig.landed = True
        for name, at in list(self._nhc.items()):
            node = c.live_slurm_node(name)
            lost = [g.index for g in c.live_host(name).gpus if g.lost]
            if node.drain or not lost:
                del self._nhc[name]
            elif at <= now:
                node.drain, node.reason, node.reason_at = True, f"NHC: GPU {lost[0]} lost (XID 79)", now
                del self._nhc[name]

    # -- Kubernetes ------------------------------------------------------------------------
    def pod_uid(self, namespace: str, name: str) -> str | None:
        ghost = self._ghosts.get((namespace, name))
        if ghost is not None:
            return ghost.uid
        return _uid(self.cluster, namespace, name) if self.cluster.live_pod(namespace, name) is not None else None

    def budgets(self) -> dict[tuple[str, str], BudgetRef]:
        """(namespace, Deployment) -> its budget as the disruption controller would write it now."""
        c = self.cluster
        out = {}
        for dep in c.live_deployments():
            if dep.pdb_min_available is None:
                continue
            healthy = sum(
                1
                for p in c.live_pods()
                if p.namespace == dep.namespace
                and p.owner_kind == "ReplicaSet"
                and p.owner_name == dep.name
                and p.ready
                and not p.terminal
            )
            out[(dep.namespace, dep.name)] = BudgetRef(
                dep.namespace,
                dep.name,
                max(0, healthy - dep.pdb_min_available),
                healthy,
                dep.pdb_min_available,
                dep.replicas,
            )
        return out

    def _pod_ref(self, pod: Pod, uid: str, budgets: dict[tuple[str, str], BudgetRef], deleting: bool = False) -> PodRef:
        owner_name = pod.owner_name
        budget: tuple[BudgetRef, ...] = ()
        if pod.owner_kind == "ReplicaSet":
            dep = next(
                (
                    d
                    for d in self.cluster.live_deployments()
                    if d.namespace == pod.namespace and d.name == pod.owner_name
                ),
                None,
            )
            if dep is not None:
                owner_name = f"{dep.name}-{dep.template_hash}"
            found = budgets.get((pod.namespace, pod.owner_name))
            budget = (found,) if found is not None else ()
        return PodRef(
            namespace=pod.namespace,
            name=pod.name,
            uid=uid,
            phase=pod.phase,
            owner_kind=pod.owner_kind,
            owner_name=owner_name,
            mirror=pod.owner_kind == "Node",
            emptydir=pod.name.startswith("vllm-"),  # vLLM's /dev/shm is an emptyDir
            deleting=deleting,
            gpus=pod.gpus,
            grace_period_s=GRACE_S.get(pod.owner_kind, DEFAULT_GRACE_S),
            budgets=budget,
        )

    def pods_on(self, node: str) -> tuple[PodRef, ...] | None:
        c = self.cluster
        if c.live_k8s_node(node) is None:
            return None
        budgets = self.budgets()
        refs = [
            self._pod_ref(p, _uid(c, p.namespace, p.name), budgets)
            for p in c.live_pods()
            if p.node == node and not p.terminal
        ]
        refs += [
            self._pod_ref(g.pod, g.uid, budgets, deleting=True) for g in self._ghosts.values() if g.pod.node == node
        ]
        return tuple(sorted(refs, key=lambda r: r.key))

    def pods_state(self) -> tuple:
        """What a watch of pods would report a change of: which pods there are, where, in which phase, ready or not."""
        live = [(p.namespace, p.name, p.phase, p.node, p.ready, False) for p in self.cluster.live_pods()]
        return tuple(
            sorted(
                live
                + [(g.pod.namespace, g.pod.name, g.pod.phase, g.pod.node, False, True) for g in self._ghosts.values()],
                key=lambda row: (row[0], row[1], row[5]),
            )
        )

    def cordon(self, node: str, unschedulable: bool, reason: str | None, dry_run: bool) -> KubeNode:
        c = self.cluster
        rec = c.live_k8s_node(node)
        if rec is None:
            raise BadAnswer(f'cordoning {node}: nodes "{node}" not found')
        if not dry_run:
            rec.unschedulable = unschedulable
            if unschedulable and reason:
                self.cordon_reasons[node] = reason
            elif not unschedulable:
                self.cordon_reasons.pop(node, None)
        view = next(n for n in c.kube_nodes() if n.name == node)
        if dry_run and view.unschedulable != unschedulable:
            taint = "node.kubernetes.io/unschedulable:NoSchedule"
            taints = tuple(t for t in view.taints if t != taint) + ((taint,) if unschedulable else ())
            view = dataclasses.replace(view, unschedulable=unschedulable, taints=taints)
        return view

    def evict(self, namespace: str, name: str, grace_period_s: int | None, dry_run: bool) -> None:
        """The Eviction API: 404 PodGone, 429 EvictionBlocked by the budget; else the pod terminates and is replaced."""
        c = self.cluster
        if (namespace, name) in self._ghosts:
            return  # already terminating: the API answers as for a successful eviction
        pod = c.live_pod(namespace, name)
        if pod is None:
            raise PodGone(namespace, name, f'pods "{name}" not found')
        if pod.owner_kind == "Node":
            raise BadAnswer(
                f"evicting {namespace}/{name}: a static pod is recreated by its kubelet; it cannot be evicted"
            )
        budget = self.budgets().get((namespace, pod.owner_name)) if pod.owner_kind == "ReplicaSet" else None
        if budget is not None and pod.ready and not pod.terminal and budget.disruptions_allowed <= 0:
            raise EvictionBlocked(
                namespace,
                name,
                "Cannot evict pod as it would violate the pod's disruption budget.",
                (
                    f"The disruption budget {budget.name} needs {budget.desired_healthy} healthy pods "
                    f"and has {budget.current_healthy} currently",
                ),
                10.0,
            )
        if dry_run:
            return
        uid = _uid(c, namespace, name)
        c.remove_pod(namespace, name)  # its controller sees one pod short at the next tick and creates another
        grace = GRACE_S.get(pod.owner_kind, DEFAULT_GRACE_S) if grace_period_s is None else grace_period_s
        stop_s = min(TERMINATE_S, float(grace))
        if pod.terminal or pod.node is None or stop_s <= 0:
            c.release_pod(pod)
            return
        pod.ready = False
        self._ghosts[(namespace, name)] = _Ghost(pod, uid, c.now + stop_s)

    # -- OpenStack -------------------------------------------------------------------------
    def _server(self, server_id: str) -> NovaServer:
        server = next((s for s in self.cluster.live_nova_servers() if s.id == server_id), None)
        if server is None:
            raise BadAnswer(f"Instance {server_id} could not be found.")
        return server

    def vm_ref(self, server: NovaServer) -> VmRef:
        vcpus, ram, gpus = FLAVORS.get(server.flavor, (0, 0, 0))
        mig = self._migrations.get(server.id)
        task = ""
        if mig is not None and not mig.landed:
            task = "migrating" if mig.live else "resize_migrating"
        return VmRef(
            id=server.id,
            name=server.name,
            status=server.status,
            host=server.host,
            task_state=task,
            project=server.project,
            flavor=server.flavor,
            vcpus=vcpus,
            ram_mb=ram,
            gpu="pci" if gpus else "",
            gpus=gpus,
        )

    def servers_on(self, host: str) -> tuple[VmRef, ...]:
        return tuple(
            self.vm_ref(s) for s in sorted(self.cluster.live_nova_servers(), key=lambda s: s.name) if s.host == host
        )

    def server(self, server_id: str) -> VmRef | None:
        server = next((s for s in self.cluster.live_nova_servers() if s.id == server_id), None)
        return self.vm_ref(server) if server is not None else None

    def set_compute(self, host: str, enabled: bool, reason: str = "") -> None:
        try:
            if enabled:
                self.cluster.enable_nova(host)
            else:
                self.cluster.disable_nova(host, reason)
        except DemoOperationError as exc:
            raise BadAnswer(str(exc)) from None

    def migrate(self, server_id: str, live: bool, target_host: str | None) -> None:
        """Start a live or a cold migration to ``target_host`` or to the host Nova's scheduler would pick."""
        c = self.cluster
        server = self._server(server_id)
        verb = "os-migrateLive" if live else "migrate"
        allowed = ("ACTIVE", "PAUSED") if live else ("ACTIVE", "PAUSED", "SHUTOFF")
        if server.id in self._migrations or server.status not in allowed:
            state = "migrating" if server.id in self._migrations else server.status.lower()
            raise BadAnswer(
                f"Cannot '{verb}' instance {server.id} while it is in {'task_state' if state == 'migrating' else 'vm_state'} {state}"
            )
        target = self._pick_host(server, target_host)
        free = c.live_host(target).free_gpus()[: server.gpus]
        for i in free:
            c.live_host(target).gpus[i].owner = server
        self._migrations[server.id] = _Migration(
            server,
            live,
            server.host,
            target,
            server.gpu_indices,
            tuple(free),
            server.status,
            c.now + (LIVE_MIGRATION_S if live else COLD_MIGRATION_S),
        )
        server.status = "MIGRATING" if live else "RESIZE"

    def _pick_host(self, server: NovaServer, wanted: str | None) -> str:
        """The enabled, up host (not the server's) with the GPUs (same model), vCPUs and RAM its flavor needs."""
        c = self.cluster
        vcpus, ram, gpus = FLAVORS.get(server.flavor, (0, 0, 0))
        model = FLAVOR_GPU.get(server.flavor, "")
        fits = []
        for svc in sorted(c.live_nova_services(), key=lambda s: s.host):
            if (
                svc.host == server.host
                or svc.status != "enabled"
                or svc.state != "up"
                or (wanted and svc.host != wanted)
            ):
                continue
            host = c.live_host(svc.host)
            if gpus and (len(host.free_gpus()) < gpus or model not in host.model.name.lower()):
                continue
            here = [s for s in c.live_nova_servers() if s.host == svc.host] + [
                m.server for m in self._migrations.values() if m.target == svc.host
            ]
            sizes = [FLAVORS.get(s.flavor, (0, 0, 0)) for s in here]
            if sum(v for v, _, _ in sizes) + vcpus > HOST_VCPUS or sum(m for _, m, _ in sizes) + ram > HOST_RAM_MB:
                continue
            fits.append((-len(host.free_gpus()), svc.host))
        if not fits:
            where = (
                f"host {wanted} (enabled, up, with room)" if wanted else "no other enabled, up compute host with room"
            )
            raise BadAnswer(f"No valid host was found for {server.name} (flavor {server.flavor}): {where}")
        return min(fits)[1]

    def confirm_resize(self, server_id: str) -> None:
        server = self._server(server_id)
        mig = self._migrations.get(server.id)
        if mig is None or not mig.landed:
            raise BadAnswer(
                f"Cannot 'confirmResize' instance {server.id} while it is in vm_state {server.status.lower()}"
            )
        self._release(mig.source, mig.source_gpus, server)
        server.status = mig.prior_status
        del self._migrations[server.id]

    def _release(self, host: str, indices: tuple[int, ...], owner: object) -> None:
        gpus = self.cluster.live_host(host).gpus
        for i in indices:
            if gpus[i].owner is owner:
                gpus[i].owner = None

    # -- Slurm -----------------------------------------------------------------------------
    def slurm_node(self, name: str) -> SlurmNodeView | None:
        return next((n for n in self.cluster.slurm_node_views() if n.name == name), None)

    def jobs_on(self, name: str) -> tuple[SlurmJobRef, ...]:
        out = []
        for job in self.cluster.live_slurm_jobs():
            nodes = tuple(node for node, _ in job.alloc)
            if job.state == "RUNNING" and name in nodes:
                out.append(
                    SlurmJobRef(job.id_str, job.name, job.user, job.state, job.partition, nodes, job.gpus, job.start_at)
                )
        return tuple(out)

    def set_drain(self, name: str, drain: bool, reason: str = "") -> None:
        try:
            if drain:
                self.cluster.drain_slurm(name, reason)
            else:
                self.cluster.resume_slurm(name)  # the demo's nodes are never DOWN: clearing the drain is all there is
        except DemoOperationError as exc:
            raise BadAnswer(f"scontrol update nodename={name}: {exc}") from None
        if not drain and any(g.lost for g in self.cluster.live_host(name).gpus):
            self._nhc[name] = self.cluster.now + NHC_INTERVAL_S  # the GPU is still gone: the health check will see it

    def requeue(self, job_id: str) -> None:
        """``scontrol requeue``: the job gives its nodes back and waits in the queue again (from the start)."""
        c = self.cluster
        job = next((j for j in c.live_slurm_jobs() if j.id_str == job_id), None)
        if job is None:
            raise BadAnswer(f"scontrol requeue {job_id}: Invalid job id specified")
        if job.state != "RUNNING":
            raise BadAnswer(
                f"scontrol requeue {job_id}: Job is {job.state.lower()}, only a running job can be requeued"
            )
        c.release_slurm_job(job)
        job.state, job.reason = "PENDING", "BeginTime"
        job.requeues += 1
        job.start_at = job.end_at = None


def _uid(cluster: DemoCluster, namespace: str, name: str) -> str:
    """A pod's metadata.uid: fixed by its name (a replacement has a new name, hence a new UID)."""
    return str(uuidlib.UUID(bytes=digest("pod-uid", cluster.seed, namespace, name)[:16]))
