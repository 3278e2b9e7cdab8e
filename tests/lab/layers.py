"""Provides in-memory stand-ins for the layers operations act on (Kubernetes, Nova, Slurm), for tests of sovtui.ops.

They keep the contract of the real sources (the same method names, errors and timing shapes) without a
server, so that plan and run logic can be tested in many cases quickly; the real sources are tested
against the lab's components in their own test files.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

from sovtui.model.types import KubeNode, NovaHost, SlurmNode, SourceData, SourceResult, SourceStatus
from sovtui.model.workload import PodRef, SlurmJobRef, VmRef
from sovtui.sources.base import AuthError, BadAnswer, Source
from sovtui.sources.kubernetes import EvictionBlocked, KubeForbidden


class _Polled(Source):
    """What the hub needs to poll a stand-in: its data, at once."""

    interval_s = 0.2
    timeout_s = 2.0

    async def fetch(self, executor=None) -> SourceData:
        return self.data()


class FakeKube(_Polled):
    name = kind = "kubernetes"

    def __init__(self, nodes: dict[str, list[PodRef]], *, terminate_s: float = 0.05) -> None:
        self.nodes = {n: {p.key: p for p in pods} for n, pods in nodes.items()}
        self.cordoned: dict[str, str | None] = {}
        self.terminate_s = terminate_s
        self.blocked: dict[str, int] = {}  # pod key -> 429s left before it may go
        self.forbidden: set[str] = set()
        self.evictions: list[str] = []
        self.stuck: set[str] = set()  # evicted but never go
        self._changed = asyncio.Event()
        self.in_flight = 0
        self.max_in_flight = 0

    def data(self) -> SourceData:
        return SourceData(kube_nodes=tuple(KubeNode(n, True, n in self.cordoned) for n in self.nodes))

    def pods_on(self, node):
        pods = self.nodes.get(node)
        return None if pods is None else tuple(pods.values())

    def node_unschedulable(self, node):
        return node in self.cordoned if node in self.nodes else None

    async def cordon(self, node, *, unschedulable=True, reason=None, dry_run=False):
        if node == "denied":
            raise KubeForbidden("patch", "nodes")
        if unschedulable:
            self.cordoned[node] = reason
        else:
            self.cordoned.pop(node, None)

    def _find(self, namespace, name):
        for node, pods in self.nodes.items():
            pod = pods.get(f"{namespace}/{name}")
            if pod is not None:
                return node, pod
        return None, None

    async def evict(self, namespace, pod, *, grace_period_s=None, dry_run=False):
        key = f"{namespace}/{pod}"
        if key in self.forbidden:
            raise KubeForbidden("create", "pods/eviction", message=f"user cannot create pods/eviction for {key}")
        if self.blocked.get(key, 0) > 0:
            self.blocked[key] -= 1
            raise EvictionBlocked(namespace, pod, "Cannot evict pod as it would violate the pod's disruption budget.")
        node, rec = self._find(namespace, pod)
        if rec is None:
            raise BadAnswer("gone")
        self.evictions.append(key)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.nodes[node][key] = replace(rec, deleting=True)
        if key not in self.stuck:
            asyncio.get_running_loop().call_later(self.terminate_s, self._remove, node, key)

    def _remove(self, node, key):
        self.nodes[node].pop(key, None)
        self.in_flight -= 1
        self._changed.set()
        self._changed = asyncio.Event()

    def pod_uid(self, namespace, name):
        _, rec = self._find(namespace, name)
        return rec.uid if rec is not None else None

    async def pods_changed(self, timeout_s):
        try:
            await asyncio.wait_for(self._changed.wait(), timeout_s)
            return True
        except TimeoutError:
            return False

    def identity(self):
        return "user admin in context lab (https://127.0.0.1:6443)"


class FakeNova(_Polled):
    name = kind = "openstack"

    def __init__(self, hosts: dict[str, list[VmRef]], *, version: str = "2.96", moves_after: int = 1) -> None:
        self.hosts = {
            h: NovaHost(
                h,
                service_state="up",
                service_status="enabled",
                vcpus=64,
                vcpus_used=0,
                memory_mb=512000,
                memory_mb_used=0,
            )
            for h in hosts
        }
        self.servers = {vm.id: replace(vm, host=h) for h, vms in hosts.items() for vm in vms}
        self.version = version
        self.moves_after = moves_after
        self.polls: dict[str, int] = {}
        self.refuse: dict[str, str] = {}
        self.calls: list[tuple] = []

    def data(self) -> SourceData:
        hosts = []
        for h, rec in self.hosts.items():
            vms = [v for v in self.servers.values() if v.host == h]
            hosts.append(replace(rec, running_vms=len(vms), servers=tuple(sorted(v.name for v in vms))))
        return SourceData(nova_hosts=tuple(hosts))

    def servers_on(self, host):
        return tuple(v for v in self.servers.values() if v.host == host)

    def compute_version(self):
        return self.version

    def disable_compute(self, host, reason):
        self.calls.append(("disable", host, reason))
        self.hosts[host] = replace(self.hosts[host], service_status="disabled", disabled_reason=reason)

    def enable_compute(self, host):
        self.calls.append(("enable", host))
        self.hosts[host] = replace(self.hosts[host], service_status="enabled", disabled_reason="")

    def _other(self, host):
        return next(h for h, rec in self.hosts.items() if h != host and rec.service_status == "enabled")

    def live_migrate(self, server_id, *, target_host=None):
        if server_id in self.refuse:
            raise BadAnswer(self.refuse[server_id])
        self.calls.append(("live", server_id))
        vm = self.servers[server_id]
        self.servers[server_id] = replace(vm, task_state="migrating", status="MIGRATING")
        self.polls[server_id] = 0

    def cold_migrate(self, server_id, *, target_host=None):
        self.calls.append(("cold", server_id))
        vm = self.servers[server_id]
        self.servers[server_id] = replace(vm, task_state="resize_migrating", status="RESIZE")
        self.polls[server_id] = 0

    def confirm_resize(self, server_id):
        self.calls.append(("confirm", server_id))
        vm = self.servers[server_id]
        self.servers[server_id] = replace(vm, status="ACTIVE", task_state="")

    def server(self, server_id):
        vm = self.servers.get(server_id)
        if vm is None:
            return None
        if server_id in self.polls:
            self.polls[server_id] += 1
            if self.polls[server_id] >= self.moves_after:
                del self.polls[server_id]
                status = "VERIFY_RESIZE" if vm.status == "RESIZE" else "ACTIVE"
                vm = self.servers[server_id] = replace(vm, host=self._other(vm.host), task_state="", status=status)
        return vm

    def identity(self):
        return "user admin in project admin (cloud lab)"


class FakeSlurm(_Polled):
    name = kind = "slurm"

    def __init__(self, nodes: dict[str, list[SlurmJobRef]]) -> None:
        self.state = {n: "mixed" if jobs else "idle" for n, jobs in nodes.items()}
        self.jobs = {n: list(jobs) for n, jobs in nodes.items()}
        self.reasons: dict[str, str] = {}
        self.requeued: list[str] = []

    def _node(self, name):
        return SlurmNode(
            name, self.state[name], self.reasons.get(name, ""), ("gpu",), 4, 0, tuple(j.id for j in self.jobs[name])
        )

    def data(self) -> SourceData:
        return SourceData(slurm_nodes=tuple(self._node(n) for n in self.state))

    def node(self, name):
        return self._node(name) if name in self.state else None

    def jobs_on(self, name):
        return tuple(self.jobs.get(name, ()))

    async def read_node(self, name):
        node = self._node(name)
        if self.state[name].startswith("drain"):
            self.state[name] = "draining" if self.jobs[name] else "drained"
        return node

    async def drain(self, name, reason):
        if name == "denied":
            raise AuthError("scontrol: Access/permission denied")
        self.reasons[name] = reason
        self.state[name] = "draining" if self.jobs[name] else "drained"

    async def undrain(self, name):
        self.reasons.pop(name, None)
        if not self.state[name].startswith("down"):
            self.state[name] = "mixed" if self.jobs[name] else "idle"

    async def requeue(self, job_id):
        self.requeued.append(job_id)
        for jobs in self.jobs.values():
            jobs[:] = [j for j in jobs if j.id != job_id]

    def end_job(self, job_id):
        for jobs in self.jobs.values():
            jobs[:] = [j for j in jobs if j.id != job_id]

    def identity(self):
        return "slurm@login1"


def results_of(*layers) -> dict[str, SourceResult]:
    """Hub-style results for fake layers: every one ok with its current data."""
    return {
        layer.name: SourceResult(SourceStatus(name=layer.name, kind=layer.kind, ok=True), layer.data())
        for layer in layers
    }
