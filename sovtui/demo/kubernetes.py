"""Provides the Kubernetes simulation of the demo: controllers, the scheduler, pod lifecycles, GPU queues, cordon and eviction."""

from __future__ import annotations

from ..model.jobs import JobsState, KubeJob, PendingPod
from ..model.types import QueueState
from .common import (
    TICK_S,
    DemoOperationError,
    DisruptionBudgetViolation,
    NotFound,
    k8s_suffix,
)
from .entities import (
    Job,
    K8sNode,
    Pod,
    SimHost,
)


class KubeSimMixin:
    """Nodes, pods and their controllers; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    def _job_of(self, pod: Pod) -> Job | None:
        if pod.owner_kind != "Job":
            return None
        return next((j for j in self._jobs if j.namespace == pod.namespace and j.name == pod.owner_name), None)

    def _new_pod_name(self, prefix: str) -> str:
        self._serial += 1
        return f"{prefix}-{k8s_suffix('pod', self.seed, prefix, self._serial)}"

    def _add_pod(self, pod: Pod) -> Pod:
        self._pods[(pod.namespace, pod.name)] = pod
        return pod

    def _k8s_controllers(self, now: float) -> None:
        live: dict[tuple[str, str, str], int] = {}
        on_node: dict[tuple[str, str], bool] = {}
        for pod in self._pods.values():
            if not pod.terminal:
                key = (pod.owner_kind, pod.namespace, pod.owner_name)
                live[key] = live.get(key, 0) + 1
                if pod.owner_kind == "DaemonSet":
                    on_node[(pod.owner_name, pod.node_hint)] = True
        for job in self._jobs:
            if job.completed_at is not None:
                continue
            if job.succeeded >= job.parallelism:
                job.completed_at = now
                continue
            active = live.get(("Job", job.namespace, job.name), 0)
            for _ in range(job.parallelism - job.succeeded - active):
                index = job.next_index % job.parallelism
                job.next_index += 1
                name = self._new_pod_name(f"{job.name}-{index}")
                self._add_pod(
                    Pod(
                        job.namespace,
                        name,
                        "Job",
                        job.name,
                        job.gpus,
                        job.gpu_kind,
                        created_at=now,
                        startup_s=job.startup_s,
                        labels={"job-name": job.name},
                    )
                )
        for dep in self._deployments:
            for _ in range(dep.replicas - live.get(("ReplicaSet", dep.namespace, dep.name), 0)):
                name = self._new_pod_name(f"{dep.name}-{dep.template_hash}")
                self._add_pod(
                    Pod(
                        dep.namespace,
                        name,
                        "ReplicaSet",
                        dep.name,
                        dep.gpus,
                        dep.gpu_kind,
                        pool=dep.pool,
                        created_at=now,
                        startup_s=dep.startup_s,
                        labels={"app": dep.name},
                    )
                )
        for ds in self._daemonsets:
            for node in self._k8s_nodes.values():
                if ds.pool == "gpu-nodes" and node.gpu_capacity == 0:
                    continue
                if not on_node.get((ds.name, node.name)):
                    name = self._new_pod_name(ds.name)
                    self._add_pod(
                        Pod(
                            ds.namespace,
                            name,
                            "DaemonSet",
                            ds.name,
                            pool="node",
                            node_hint=node.name,
                            created_at=now,
                            labels={"app": ds.name},
                        )
                    )

    def _k8s_schedule(self, now: float) -> None:
        gpu_nodes = [
            (node, self._hosts[node.name])
            for node in self._k8s_nodes.values()
            if node.gpu_capacity
            and node.ready
            and not node.unschedulable
            and self._hosts[node.name].role == "kubernetes"
        ]
        reasons: dict[int, str] = {}
        for pod in self._pods.values():
            if pod.phase != "Pending":
                continue
            if pod.pool == "node":
                node = self._k8s_nodes.get(pod.node_hint)
                if node is not None and node.ready:
                    self._pod_start(pod, node.name, (), now)
                continue
            if pod.pool == "control-plane":
                cps = [
                    n for n in self._k8s_nodes.values() if n.role == "control-plane" and n.ready and not n.unschedulable
                ]
                if cps:
                    counts = {n.name: 0 for n in cps}
                    for other in self._pods.values():
                        if other.node in counts and other.pool == "control-plane" and not other.terminal:
                            counts[other.node] += 1
                    best = min(cps, key=lambda n: (counts[n.name], n.name))
                    self._pod_start(pod, best.name, (), now)
                else:
                    pod.reason = "0/19 nodes are available: no schedulable control-plane node"
                continue
            best_host: SimHost | None = None
            best_free: list[int] = []
            for _node, host in gpu_nodes:
                free = host.free_gpus()
                if len(free) >= pod.gpus and (best_host is None or len(free) > len(best_free)):
                    best_host, best_free = host, free
            if best_host is None:
                if pod.gpus not in reasons:
                    reasons[pod.gpus] = self._unschedulable_reason(pod)
                pod.reason = reasons[pod.gpus]
                continue
            indices = tuple(best_free[: pod.gpus])
            for i in indices:
                best_host.gpus[i].owner = pod
            self._pod_start(pod, best_host.name, indices, now)

    def _unschedulable_reason(self, pod: Pod) -> str:
        total = len(self._k8s_nodes)
        insufficient = unschedulable = tainted = 0
        for node in self._k8s_nodes.values():
            if node.unschedulable:
                unschedulable += 1
            elif node.taints:
                tainted += 1
            elif len(self._hosts[node.name].free_gpus()) < pod.gpus:
                insufficient += 1
        parts = []
        if insufficient:
            parts.append(f"{insufficient} Insufficient nvidia.com/gpu")
        if unschedulable:
            parts.append(f"{unschedulable} node(s) were unschedulable")
        if tainted:
            parts.append(f"{tainted} node(s) had untolerated taint")
        return f"Unschedulable: 0/{total} nodes are available: " + ", ".join(parts) + "."

    def _pod_start(self, pod: Pod, node: str, indices: tuple[int, ...], now: float) -> None:
        pod.node = node
        pod.gpu_indices = indices
        pod.phase = "Running"
        pod.reason = ""
        pod.started_at = now
        pod.ready_at = now + pod.startup_s
        job = self._job_of(pod)
        if job is not None:
            pod.end_at = now + pod.startup_s + job.duration_s

    def _pod_release(self, pod: Pod) -> None:
        if pod.node and pod.node in self._hosts:
            host = self._hosts[pod.node]
            for i in pod.gpu_indices:
                if host.gpus[i].owner is pod:
                    host.gpus[i].owner = None

    def _pod_fail(self, pod: Pod, now: float, reason: str) -> None:
        self._pod_release(pod)
        pod.phase = "Failed"
        pod.ready = False
        pod.reason = reason
        pod.finished_at = now
        job = self._job_of(pod)
        if job is not None:
            job.failed += 1

    def _k8s_tick(self, now: float) -> None:
        for key, pod in list(self._pods.items()):
            if pod.phase == "Running" and pod.end_at is not None and now >= pod.end_at:
                self._pod_release(pod)
                pod.phase = "Succeeded"
                pod.ready = False
                pod.finished_at = now
                job = self._job_of(pod)
                if job is not None:
                    job.succeeded += 1
            elif pod.terminal and pod.finished_at is not None and now - pod.finished_at > 300.0:
                del self._pods[key]
        self._jobs = [j for j in self._jobs if j.completed_at is None or now - j.completed_at < 600.0]
        # new research jobs now and then
        w = self._world
        u, pick, dur = w.random(), w.random(), w.random()
        if u < TICK_S / 1500.0:
            templates = (
                ("eval-gsm8k", 1, 8),
                ("dpo-sweep-b", 2, 8),
                ("lora-ablation", 1, 4),
                ("tokenizer-bench", 1, 2),
            )
            base, parallelism, gpus = templates[int(pick * len(templates))]
            name = f"{base}-{k8s_suffix('job', self.seed, now, n=4)}"
            self._jobs.append(Job("research", name, parallelism, gpus, 600.0 + 1800.0 * dur, now))
        self._k8s_controllers(now)
        self._k8s_schedule(now)
        for pod in self._pods.values():
            if pod.phase == "Running" and not pod.ready and pod.ready_at is not None and now >= pod.ready_at:
                pod.ready = True

    def _k8s_queues(self, now: float) -> list[QueueState]:
        by_ns: dict[str, list[Pod]] = {}
        for pod in self._pods.values():
            if pod.gpus and not pod.terminal:
                by_ns.setdefault(pod.namespace, []).append(pod)
        out = []
        for ns in sorted(by_ns):
            pods = by_ns[ns]
            pending = [p for p in pods if p.phase == "Pending"]
            running = [p for p in pods if p.phase == "Running"]
            oldest = now - min(p.created_at for p in pending) if pending else None
            out.append(QueueState(ns, "kubernetes", len(pending), len(running), sum(p.gpus for p in pending), oldest))
        return out

    def k8s_queues(self) -> tuple[QueueState, ...]:
        """GPU pods per namespace: pending ones are those no node has room for."""
        return tuple(self._k8s_queues(self.now))

    def k8s_work(self) -> JobsState:
        """Jobs with their pods' counts and GPU pods waiting for a node, with the scheduler's reason."""
        live: dict[tuple[str, str], int] = {}
        for pod in self._pods.values():
            if pod.owner_kind == "Job" and not pod.terminal:
                live[(pod.namespace, pod.owner_name)] = live.get((pod.namespace, pod.owner_name), 0) + 1
        jobs = tuple(
            KubeJob(
                namespace=job.namespace,
                name=job.name,
                active=live.get((job.namespace, job.name), 0),
                succeeded=job.succeeded,
                failed=job.failed,
                completions=job.parallelism,
                gpus=job.gpus * job.parallelism,
                state="complete" if job.completed_at is not None else "running",
                created=job.created_at,
            )
            for job in self._jobs
        )
        pending = tuple(
            PendingPod(
                namespace=pod.namespace,
                name=pod.name,
                gpus=pod.gpus,
                reason=pod.reason,
                since=pod.created_at,
                wants=pod.pool,
                owner=f"{pod.owner_kind}/{pod.owner_name}",
            )
            for pod in sorted(self._pods.values(), key=lambda p: (p.created_at, p.namespace, p.name))
            if pod.gpus and pod.phase == "Pending" and not pod.node
        )
        return JobsState(kube_jobs=jobs, pending_pods=pending)

    def _node(self, host: str) -> K8sNode:
        node = self._k8s_nodes.get(host)
        if node is None:
            raise NotFound(f'nodes "{host}" not found')
        return node

    def cordon(self, host: str) -> None:
        """Mark a Kubernetes node unschedulable; running pods stay."""
        self._node(host).unschedulable = True

    def uncordon(self, host: str) -> None:
        self._node(host).unschedulable = False

    def evict_pod(self, namespace: str, name: str) -> None:
        """Evict a pod through the eviction API: refused with :class:`DisruptionBudgetViolation` when its PDB would break.

        The owner (ReplicaSet, Job, DaemonSet) recreates the pod at the next tick, as Pending.
        """
        pod = self._pods.get((namespace, name))
        if pod is None:
            raise NotFound(f'pods "{name}" not found in namespace "{namespace}"')
        if pod.owner_kind == "Node":
            raise DemoOperationError(
                f"cannot evict {namespace}/{name}: Pods declared by kubelet (static pods) are recreated by it"
            )
        if pod.owner_kind == "ReplicaSet" and pod.ready and not pod.terminal:
            dep = next((d for d in self._deployments if d.namespace == namespace and d.name == pod.owner_name), None)
            if dep is not None and dep.pdb_min_available is not None:
                healthy = sum(
                    1
                    for p in self._pods.values()
                    if p.namespace == namespace and p.owner_name == dep.name and p.ready and not p.terminal
                )
                if healthy - 1 < dep.pdb_min_available:
                    raise DisruptionBudgetViolation(namespace, name, dep.name, dep.pdb_min_available, healthy)
        self._pod_release(pod)
        del self._pods[(namespace, name)]
