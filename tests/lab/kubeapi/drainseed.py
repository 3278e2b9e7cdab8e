"""Provides the drain cluster's contents: nodes holding every kind of pod ``kubectl drain`` tells apart, and budgets.

Nodes (all Ready, schedulable): ``drain-a``, ``drain-b``, ``drain-c`` (8-GPU workers) and ``spare-1``, ``spare-2``
(CPU nodes, where the lab's bin-packing scheduler puts every replacement of a CPU pod, being the fullest that fit).
Every node runs a ``kube-proxy`` DaemonSet pod.

``drain-a`` — one of each kind: a static pod's mirror (``node-exporter-drain-a``), a pod with an emptyDir volume
(``scratch-*``, ReplicaSet), a pod with no controller (``debug-shell``), a GPU pod (``infer-*``, ReplicaSet) whose
budget selects it with matchExpressions (and a budget with the same selector in another namespace, which does not).

``drain-b`` — ``web``: a ReplicaSet of 2 whose PodDisruptionBudget (minAvailable 1) allows one disruption; after one
eviction it allows none until the replacement runs Ready elsewhere (its readiness probe passes 1 s after it starts).

``drain-c`` — ``db-0`` of the StatefulSet ``db`` (recreated under the same name, with a new UID), and ``slow``: a
ReplicaSet of 2 whose containers ignore SIGTERM (they go when their 2 s grace period ends).

With ``slow_pods`` N: node ``drain-slow`` with a ReplicaSet ``slow-drain`` of N pods, each taking ``slow_s`` seconds to
terminate (grace period = ``slow_s``, containers that ignore SIGTERM): a drain benchmark's node.
"""

from __future__ import annotations

import math

from .controllers.objects import MIRROR, STOP_AFTER, template_hash
from .seed.nodes import Obj, namespace, node, ref, uid
from .seed.pods import container, pod
from .seed.workloads import daemonset, finish, pdb, pod_template
from .store import rfc3339

NS = "drain-lab"
SPARES = ("spare-1", "spare-2")
WORKERS = ("drain-a", "drain-b", "drain-c")


def replicaset(ns: str, name: str, now: float, *, template: dict, pods: list[tuple[str, str]]) -> list[Obj]:
    """A bare ReplicaSet (no Deployment) with its pods already running: ``pods`` is [(pod name, node)]."""
    rs_uid = uid("rs", ns, name)
    rs = {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": rs_uid,
            "creationTimestamp": rfc3339(now - 86400),
            "generation": 1,
            "labels": dict(template["metadata"]["labels"]),
        },
        "spec": {
            "replicas": len(pods),
            "selector": {"matchLabels": dict(template["metadata"]["labels"])},
            "template": template,
        },
        "status": {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": len(pods),
            "availableReplicas": len(pods),
            "observedGeneration": 1,
        },
    }
    owner = ref("ReplicaSet", "apps/v1", name, rs_uid)
    out: list[Obj] = [("replicasets", rs)]
    tspec = template["spec"]
    for pod_name, where in pods:
        _, p = pod(
            ns,
            pod_name,
            now,
            node_name=where,
            containers=tspec["containers"],
            owner_ref=owner,
            labels=template["metadata"]["labels"],
            annotations=template["metadata"].get("annotations"),
        )
        p["spec"]["terminationGracePeriodSeconds"] = tspec.get("terminationGracePeriodSeconds", 30)
        if tspec.get("volumes"):
            p["spec"]["volumes"] = tspec["volumes"]
        out.append(("pods", p))
    return out


def statefulset(ns: str, name: str, now: float, *, template: dict, nodes: list[str]) -> list[Obj]:
    """A StatefulSet (OrderedReady) with pod ``<name>-<i>`` running on ``nodes[i]``."""
    sts_uid = uid("sts", ns, name)
    revision = f"{name}-{template_hash(template)[:10]}"
    n = len(nodes)
    sts = {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": sts_uid,
            "creationTimestamp": rfc3339(now - 86400),
            "generation": 1,
            "labels": dict(template["metadata"]["labels"]),
        },
        "spec": {
            "replicas": n,
            "selector": {"matchLabels": dict(template["metadata"]["labels"])},
            "serviceName": name,
            "template": template,
            "podManagementPolicy": "OrderedReady",
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
            "revisionHistoryLimit": 10,
        },
        "status": {
            "observedGeneration": 1,
            "replicas": n,
            "readyReplicas": n,
            "currentReplicas": n,
            "updatedReplicas": n,
            "availableReplicas": n,
            "currentRevision": revision,
            "updateRevision": revision,
            "collisionCount": 0,
        },
    }
    owner = ref("StatefulSet", "apps/v1", name, sts_uid)
    out: list[Obj] = [("statefulsets", sts)]
    for i, where in enumerate(nodes):
        labels = {
            **template["metadata"]["labels"],
            "apps.kubernetes.io/pod-index": str(i),
            "controller-revision-hash": revision,
            "statefulset.kubernetes.io/pod-name": f"{name}-{i}",
        }
        _, p = pod(
            ns,
            f"{name}-{i}",
            now,
            node_name=where,
            containers=template["spec"]["containers"],
            owner_ref=owner,
            labels=labels,
        )
        p["metadata"].pop("generateName", None)
        p["spec"].update(
            hostname=f"{name}-{i}",
            subdomain=name,
            terminationGracePeriodSeconds=template["spec"].get("terminationGracePeriodSeconds", 30),
        )
        out.append(("pods", p))
    return out


def slow_template(app: str, seconds: float) -> dict:
    """Pods whose containers ignore SIGTERM: each goes when its grace period (``seconds``, rounded up) ends."""
    grace = max(1, math.ceil(seconds))
    tmpl = pod_template(
        {"app": app},
        [container("worker", "busybox:1.36", cpu="100m", memory="64Mi")],
        terminationGracePeriodSeconds=grace,
    )
    tmpl["metadata"]["annotations"] = {STOP_AFTER: "3600"}
    return tmpl


def drain_cluster(now: float, *, slow_pods: int = 0, slow_s: float = 2.0) -> list[Obj]:
    """The drain cluster (see the module's docstring)."""
    out: list[Obj] = [namespace(ns, now) for ns in ("default", "kube-system", NS, "other-team", "lab-tests")]
    names = [*WORKERS, *SPARES] + (["drain-slow"] if slow_pods else [])
    for i, name in enumerate(names):
        out.append(node(name, now, index=40 + i, gpus=0 if name in SPARES else 8))

    proxy = pod_template(
        {"k8s-app": "kube-proxy"},
        [container("kube-proxy", "registry.k8s.io/kube-proxy:v1.31.4", cpu="100m", memory="64Mi")],
        tolerations=[{"operator": "Exists"}],
    )
    plural, ds = daemonset("kube-system", "kube-proxy", now, template=proxy, nodes=names, ready_nodes=names)
    out.append((plural, ds))
    ds_ref = ref("DaemonSet", "apps/v1", "kube-proxy", ds["metadata"]["uid"])
    for n in names:
        out.append(
            pod(
                "kube-system",
                f"kube-proxy-{uid('dspod', n)[:5]}",
                now,
                node_name=n,
                containers=proxy["spec"]["containers"],
                owner_ref=ds_ref,
                labels={
                    "k8s-app": "kube-proxy",
                    "controller-revision-hash": "6d9f8b7c5d",
                    "pod-template-generation": "1",
                },
                tolerations=[{"operator": "Exists"}],
            )
        )

    # drain-a: one of each kind
    hashed = uid("mirror", "node-exporter", "drain-a")[:32]
    out.append(
        pod(
            "kube-system",
            "node-exporter-drain-a",
            now,
            node_name="drain-a",
            containers=[
                container("node-exporter", "quay.io/prometheus/node-exporter:v1.8.2", cpu="100m", memory="64Mi")
            ],
            owner_ref={
                "apiVersion": "v1",
                "kind": "Node",
                "name": "drain-a",
                "uid": uid("node", "drain-a"),
                "controller": True,
            },
            labels={"app": "node-exporter"},
            annotations={MIRROR: hashed, "kubernetes.io/config.hash": hashed, "kubernetes.io/config.source": "file"},
            tolerations=[{"operator": "Exists", "effect": "NoExecute"}],
        )
    )
    scratch = pod_template(
        {"app": "scratch"},
        [container("cache", "redis:7.4", cpu="500m", memory="1Gi")],
        volumes=[
            {"name": "cache", "emptyDir": {"sizeLimit": "1Gi"}},
            {"name": "config", "configMap": {"name": "scratch"}},
        ],
    )
    out.extend(replicaset(NS, "scratch", now, template=scratch, pods=[("scratch-x7k2p", "drain-a")]))
    out.append(
        pod(
            NS,
            "debug-shell",
            now,
            node_name="drain-a",
            containers=[container("shell", "busybox:1.36", cpu="100m", memory="64Mi")],
            labels={"app": "debug"},
        )
    )
    infer = pod_template(
        {"app": "infer", "tier": "prod"},
        [container("server", "vllm/vllm-openai:v0.6.4", gpus=2, cpu="8", memory="64Gi")],
    )
    out.extend(
        replicaset(NS, "infer", now, template=infer, pods=[("infer-q9w4z", "drain-a"), ("infer-m2b8c", "drain-c")])
    )
    expressions = {
        "matchExpressions": [
            {"key": "app", "operator": "In", "values": ["infer", "infer-canary"]},
            {"key": "tier", "operator": "NotIn", "values": ["canary"]},
            {"key": "app", "operator": "Exists"},
            {"key": "legacy", "operator": "DoesNotExist"},
        ]
    }
    for ns in (NS, "other-team"):
        plural, budget = pdb(ns, "infer", now, selector={}, min_available=1)
        budget["spec"]["selector"] = dict(expressions)
        out.append((plural, budget))

    # drain-b: a budget that lets one pod go, then none until its replacement is Ready elsewhere
    nginx = {
        **container("nginx", "nginx:1.27", cpu="250m", memory="256Mi"),
        "readinessProbe": {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 1, "periodSeconds": 5},
    }
    web = pod_template({"app": "web"}, [nginx], terminationGracePeriodSeconds=1)
    out.extend(replicaset(NS, "web", now, template=web, pods=[("web-5tq8n", "drain-b"), ("web-j4f6r", "drain-b")]))
    out.append(pdb(NS, "web", now, selector={"app": "web"}, min_available=1))

    # drain-c: a StatefulSet's pod and pods that use their whole grace period
    db = pod_template(
        {"app": "db"}, [container("postgres", "postgres:16", cpu="1", memory="2Gi")], terminationGracePeriodSeconds=1
    )
    out.extend(statefulset(NS, "db", now, template=db, nodes=["drain-c"]))
    out.extend(
        replicaset(
            NS,
            "slow",
            now,
            template=slow_template("slow", 2),
            pods=[("slow-7hd4k", "drain-c"), ("slow-p2x9v", "drain-c")],
        )
    )

    if slow_pods:
        out.extend(
            replicaset(
                NS,
                "slow-drain",
                now,
                template=slow_template("slow-drain", slow_s),
                pods=[(f"slow-drain-{i:05d}", "drain-slow") for i in range(slow_pods)],
            )
        )
    return finish(out, now)
