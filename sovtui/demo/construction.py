"""Provides the construction of a seeded demo cluster: hosts, fabric, Ceph, Kubernetes, Slurm, Nova, the storylines."""

from __future__ import annotations

import random
import uuid as uuidlib

from .common import (
    GPUS_PER_HOST,
    MIB,
    PIB,
    digest,
    gpu_uuid,
    k8s_suffix,
)
from .entities import (
    A100,
    H100,
    DaemonSet,
    Deployment,
    Job,
    K8sNode,
    NovaServer,
    NovaService,
    Osd,
    Pod,
    Pool,
    Port,
    SimGpu,
    SimHost,
    SlurmJob,
    SlurmNode,
    Storyline,
)


class BuildMixin:
    """Builds the cluster's state at its birth; mixed into :class:`~sovtui.demo.cluster.DemoCluster`."""

    def _build_hosts(self) -> None:
        self._hosts: dict[str, SimHost] = {}
        for n in range(1, 17):
            name = f"gpu{n:02d}"
            model = A100 if n >= 15 else H100
            role = "kubernetes" if n <= 8 else "slurm" if n <= 13 else "nova"
            leaf = f"leaf{(n - 1) // 4 + 1}"
            host = SimHost(name, model, role, leaf, f"swp{(n - 1) % 4 + 1}")
            for i in range(GPUS_PER_HOST):
                d = digest("gpu-static", self.seed, name, i)
                host.gpus.append(
                    SimGpu(
                        host=name,
                        index=i,
                        uuid=gpu_uuid(self.seed, name, i),
                        model=model,
                        bias_c=-2.0 + 6.0 * d[0] / 255.0,
                        sbe_rate=(0.004 if d[1] < 20 else 0.0),
                        ecc_corrected=(d[2] % 7 if d[1] < 20 else 0),
                    )
                )
            self._hosts[name] = host

    def _build_fabric(self) -> None:
        self._ports: list[Port] = []
        spines = ("spine1", "spine2")
        for leaf_n in range(1, 5):
            leaf = f"leaf{leaf_n}"
            for host in self._hosts.values():
                if host.leaf == leaf:
                    self._ports.append(Port(leaf, host.leaf_port, 400_000.0, f"{host.name}:ens1f0np0", host=host.name))
            self._ports.append(Port(leaf, "swp8", 100_000.0, "", admin_up=False, oper_up=False))  # spare, shut
            for s, spine in enumerate(spines):
                for k in range(2):
                    leaf_if = f"swp{49 + 2 * s + k}"
                    spine_if = f"swp{2 * (leaf_n - 1) + k + 1}"
                    link = f"{leaf}:{leaf_if}"
                    self._ports.append(Port(leaf, leaf_if, 400_000.0, f"{spine}:{spine_if}", link=link))
                    self._ports.append(Port(spine, spine_if, 400_000.0, f"{leaf}:{leaf_if}", link=link))
        self._ports.sort(key=lambda p: (p.device, int(p.ifname[3:])))
        self._ports_by_link: dict[str, list[Port]] = {}
        for port in self._ports:
            if port.link:
                self._ports_by_link.setdefault(port.link, []).append(port)

    def _build_ceph(self, plan: random.Random) -> None:
        self._ceph_raw = 1.2 * PIB
        self._osds = [Osd(i, f"ceph{i // 3 + 1:02d}", plan.uniform(-0.035, 0.035)) for i in range(12)]
        self._osds[plan.randrange(12)].skew = 0.035  # the fullest OSD
        self._pools = [
            Pool("rbd-vms", 3.0, 0.024 * self._ceph_raw, 4 * MIB),
            Pool("cephfs-data", 3.0, 0.015 * self._ceph_raw, 1.5 * MIB),
            Pool("datasets", 1.5, 0.0, 8 * MIB),  # erasure coded 4+2
        ]

    def _build_kubernetes(self) -> None:
        self._k8s_nodes: dict[str, K8sNode] = {}
        for n in range(1, 4):
            name = f"k8s-cp{n}"
            self._k8s_nodes[name] = K8sNode(
                name,
                "control-plane",
                taints=("node-role.kubernetes.io/control-plane:NoSchedule",),
                labels={"node-role.kubernetes.io/control-plane": ""},
            )
        for host in self._hosts.values():
            taints: tuple[str, ...] = ()
            if host.role != "kubernetes":
                taints = (f"sovtui.io/dedicated={host.role}:NoSchedule",)
            self._k8s_nodes[host.name] = K8sNode(
                host.name,
                "worker",
                GPUS_PER_HOST,
                taints=taints,
                labels={"nvidia.com/gpu.product": host.model.name.replace("NVIDIA ", "NVIDIA-").replace(" ", "-")},
            )
        self._pods: dict[tuple[str, str], Pod] = {}
        self._deployments = [
            Deployment("inference", "vllm-llama-3-70b", 4, 4, "infer", 100.0, pdb_min_available=3),
            Deployment("inference", "vllm-mixtral-8x7b", 2, 2, "infer", 80.0, pdb_min_available=1),
            Deployment("inference", "tei-bge-m3", 2, 1, "embed", 30.0),
            Deployment("kube-system", "coredns", 2, 0, "", 5.0, pool="control-plane"),
            Deployment("monitoring", "prometheus-k8s", 1, 0, "", 20.0, pool="control-plane"),
        ]
        for dep in self._deployments:
            dep.template_hash = k8s_suffix("rs", self.seed, dep.name, n=9).replace("b", "5")
        self._daemonsets = [
            DaemonSet("gpu-operator", "nvidia-device-plugin-daemonset"),
            DaemonSet("gpu-operator", "nvidia-dcgm-exporter"),
            DaemonSet("monitoring", "node-exporter", pool="all"),
        ]
        self._jobs: list[Job] = [
            Job("training", "llm-pretrain-70b", 2, 8, 40 * 3600.0, self.born - 20 * 3600.0),
            Job("training", "llama-ft-run42", 2, 8, 3600.0, self.born - 2 * 3600.0),
        ]
        for cp in ("k8s-cp1", "k8s-cp2", "k8s-cp3"):
            for component in ("kube-apiserver", "etcd", "kube-scheduler"):
                pod = Pod(
                    "kube-system",
                    f"{component}-{cp}",
                    "Node",
                    cp,
                    pool="node",
                    node_hint=cp,
                    created_at=self.born - 86400 * 30,
                )
                self._pods[(pod.namespace, pod.name)] = pod
        self._k8s_controllers(self.born)

    def _build_slurm(self, plan: random.Random) -> None:
        self._slurm_nodes: dict[str, SlurmNode] = {}
        for host in self._hosts.values():
            if host.role == "slurm":
                parts = ("gpu", "debug") if host.name in ("gpu12", "gpu13") else ("gpu",)
                self._slurm_nodes[host.name] = SlurmNode(host.name, parts)
        b = self.born
        u = plan.uniform
        specs = [
            # id, name, user, partition, nodes, gpn, submitted, started, runs until (relative to start)
            (48190, "llama3-70b-sft", "anna", "gpu", 2, 8, b - 4 * 3600, b - 3 * 3600, u(900, 1400)),
            (48201, "vit-h-pretrain", "jkim", "gpu", 1, 8, b - 3 * 3600, b - 2 * 3600, u(420, 800)),
            (48207, "rlhf-reward", "pmartin", "gpu", 1, 4, b - 5000, b - 4000, u(200, 500)),
            (48209, "bert-distill", "osman", "gpu", 1, 4, b - 4000, b - 3600, u(300, 700)),
            (48211, "nccl-allreduce", "ops", "debug", 1, 2, b - 400, b - 300, u(60, 300)),
            (48212, "eval-long-ctx", "jkim", "gpu", 1, 4, b - 2000, b - 1800, u(600, 1200)),
            (48188, "mixtral-pretrain", "anna", "gpu", 2, 8, b - 5400, None, 2400),
            (48214, "diffusion-ft", "rsato", "gpu", 1, 8, b - 1200, None, 1500),
            (48215, "llm-eval-harness", "pmartin", "gpu", 1, 4, b - 300, None, 900),
            (48216, "protein-fold", "mgarcia", "gpu", 1, 4, b - 60, None, 1200),
        ]
        self._slurm_jobs: list[SlurmJob] = []
        for job_id, name, user, part, nodes, gpn, submit, started, until in specs:
            if started is None:
                job = SlurmJob(job_id, name, user, part, nodes, gpn, float(until), float(submit))
            else:
                end = self.start + until
                job = SlurmJob(job_id, name, user, part, nodes, gpn, end - started, float(submit))
                job.start_at = float(started)
                job.end_at = end
            self._slurm_jobs.append(job)
        # place the running ones by hand so the picture is the intended one
        layout = {
            48190: ["gpu09", "gpu10"],
            48201: ["gpu11"],
            48207: ["gpu12"],
            48209: ["gpu12"],
            48211: ["gpu13"],
            48212: ["gpu13"],
        }
        for job in self._slurm_jobs:
            if job.job_id in layout:
                self._slurm_allocate(job, layout[job.job_id])
                job.state = "RUNNING"
        self._slurm_jobs.sort(key=lambda j: j.job_id)

    def _build_nova(self) -> None:
        self._nova_services = {h.name: NovaService(h.name) for h in self._hosts.values() if h.role == "nova"}
        specs = [
            ("train-vm-tenant-a", "gpu14", "g1.h100x8", "tenant-a", 8, "ACTIVE"),
            ("ws-research-01", "gpu15", "g1.a100x4", "research", 4, "ACTIVE"),
            ("ws-research-02", "gpu15", "g1.a100x2", "research", 2, "ACTIVE"),
            ("llm-finance-01", "gpu16", "g1.a100x4", "finance", 4, "ACTIVE"),
            ("build-runner-03", "gpu16", "m1.large", "ci", 0, "SHUTOFF"),
        ]
        self._nova_servers: list[NovaServer] = []
        for name, host_name, flavor, project, gpus, status in specs:
            server = NovaServer(
                str(uuidlib.UUID(bytes=digest("vm", self.seed, name)[:16])),
                name,
                host_name,
                flavor,
                project,
                gpus,
                status,
            )
            host = self._hosts[host_name]
            free = host.free_gpus()[:gpus]
            for i in free:
                host.gpus[i].owner = server
            server.gpu_indices = tuple(free)
            self._nova_servers.append(server)

    def _backdate_initial_workloads(self) -> None:
        """Pods scheduled at birth have been running for a while already."""
        for pod in self._pods.values():
            if pod.phase == "Running":
                job = self._job_of(pod)
                began = job.created_at + 30.0 if job else self.born - 6 * 3600.0
                pod.started_at = began
                pod.ready_at = began + pod.startup_s
                pod.ready = True
                pod.created_at = min(pod.created_at, began - 5.0)
                if job is not None and job.name == "llama-ft-run42":
                    pod.end_at = self.start + 900.0 + 600.0 * (digest("ft", self.seed)[0] / 255.0)
                elif job is not None:
                    pod.end_at = began + job.duration_s
        # Jobs waiting for whole free nodes: pending GPU pods from the start
        for name, parallelism, duration in (("dpo-sweep-a", 2, 2400.0), ("eval-mmlu-pro", 1, 900.0)):
            self._jobs.append(Job("research", name, parallelism, 8, duration, self.born))
        self._k8s_controllers(self.born)
        self._k8s_schedule(self.born)

    def _plan_storylines(self, plan: random.Random) -> Storyline:
        t0 = self.start
        vllm_gpus = [
            (g.host, g.index)
            for host in self._hosts.values()
            for g in host.gpus
            if isinstance(g.owner, Pod) and g.owner.name.startswith("vllm-llama")
        ]
        ecc_gpu = vllm_gpus[plan.randrange(len(vllm_gpus))]
        pretrain = [
            (g.host, g.index)
            for host in self._hosts.values()
            for g in host.gpus
            if isinstance(g.owner, Pod) and g.owner.name.startswith("llm-pretrain")
        ]
        hot_gpu = pretrain[plan.randrange(len(pretrain))]
        xid_gpu = (plan.choice(["gpu09", "gpu10", "gpu11"]), plan.randrange(GPUS_PER_HOST))
        x13 = t0 + plan.uniform(20, 50)
        x31 = x13 + plan.uniform(15, 40)
        x43 = x31 + plan.uniform(15, 40)
        x79 = x43 + plan.uniform(60, 120)
        leaf = f"leaf{plan.randrange(1, 5)}"
        return Storyline(
            ecc_gpu=ecc_gpu,
            ecc_at=t0 - plan.uniform(130, 400),
            ecc_again_at=t0 + plan.uniform(240, 600),
            hot_gpu=hot_gpu,
            hot_from=t0 - plan.uniform(420, 540),
            xid_gpu=xid_gpu,
            xid_times=((13, x13), (31, x31), (43, x43), (79, x79)),
            flap_link=(leaf, f"swp{plan.randrange(49, 53)}"),
            flap_from=t0 + plan.uniform(10, 90),
            osd_down=plan.randrange(12),
            osd_down_from=t0 + plan.uniform(60, 200),
            osd_down_for=plan.uniform(120, 220),
            pool_nearfull_at=t0 + plan.uniform(60, 240),
            sweep_at=t0 + plan.uniform(60, 150),
        )

    def _settle_metrics(self) -> None:
        """Start every GPU near its steady state so the warm-up does not show a cold start."""
        for host in self._hosts.values():
            for g in host.gpus:
                kind = g.kind
                g.util = {"train": 95.0, "infer": 55.0, "embed": 30.0, "vm": 70.0}.get(kind, 0.0)
                g.load = g.util or 50.0
                g.mem_used = {"train": 0.86, "infer": 0.92, "embed": 0.22, "vm": 0.55}.get(kind, 0.0) * g.model.mem_mib
                g.temp = 31.0 + g.bias_c + 0.42 * g.util
                g.power = g.model.idle_w + (g.model.power_limit_w * 0.93 - g.model.idle_w) * g.util / 100.0
