"""Provides the resource kinds the Kubernetes source reads: core and batch kinds (:data:`KINDS`), Kueue's at a served version.

Kueue's custom resources (ClusterQueues, LocalQueues, Workloads) are read when the cluster serves their API group,
as discovery (``/apis``) tells: :func:`served_version` picks the version, :func:`kueue_kinds` makes their kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .projections import (
    project_cluster_queue,
    project_deployment,
    project_event,
    project_job,
    project_local_queue,
    project_node,
    project_pdb,
    project_pod,
    project_workload,
)

#: terminal pods hold no GPUs: the server leaves them out (and sends DELETED when a pod finishes)
POD_FIELD_SELECTOR = "status.phase!=Succeeded,status.phase!=Failed"
KUEUE_GROUP = "kueue.x-k8s.io"
#: Kueue API versions whose ClusterQueue/LocalQueue/Workload fields this source reads (the same in both)
KUEUE_VERSIONS = ("v1beta2", "v1beta1")


@dataclass(frozen=True)
class ResourceKind:
    """One resource the source keeps an informer for."""

    resource: str  # plural, as RBAC and errors name it
    group: str
    api: str  # kubernetes.aio.client class
    method: str  # its list-for-all-namespaces method
    project: Callable[[dict], Any]
    field_selector: str | None = None
    required: bool = True  # without it the poll fails; any other kind is a part of the source, failing alone
    args: tuple[str, ...] = ()  # positional arguments of the list method (a custom resource's group, version, plural)

    @property
    def qualified(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


KINDS: tuple[ResourceKind, ...] = (
    ResourceKind("nodes", "", "CoreV1Api", "list_node", project_node),
    ResourceKind(
        "pods", "", "CoreV1Api", "list_pod_for_all_namespaces", project_pod, POD_FIELD_SELECTOR, required=False
    ),
    ResourceKind(
        "poddisruptionbudgets",
        "policy",
        "PolicyV1Api",
        "list_pod_disruption_budget_for_all_namespaces",
        project_pdb,
        required=False,
    ),
    ResourceKind("jobs", "batch", "BatchV1Api", "list_job_for_all_namespaces", project_job, required=False),
    ResourceKind(
        "deployments", "apps", "AppsV1Api", "list_deployment_for_all_namespaces", project_deployment, required=False
    ),
    ResourceKind(
        "events", "", "CoreV1Api", "list_event_for_all_namespaces", project_event, "type=Warning", required=False
    ),
)


def kueue_kinds(version: str) -> tuple[ResourceKind, ...]:
    """Informers for Kueue's ClusterQueues, LocalQueues and Workloads at one served API version."""
    return (
        ResourceKind(
            "clusterqueues",
            KUEUE_GROUP,
            "CustomObjectsApi",
            "list_cluster_custom_object",
            project_cluster_queue,
            required=False,
            args=(KUEUE_GROUP, version, "clusterqueues"),
        ),
        ResourceKind(
            "localqueues",
            KUEUE_GROUP,
            "CustomObjectsApi",
            "list_custom_object_for_all_namespaces",
            project_local_queue,
            required=False,
            args=(KUEUE_GROUP, version, "localqueues"),
        ),
        ResourceKind(
            "workloads",
            KUEUE_GROUP,
            "CustomObjectsApi",
            "list_custom_object_for_all_namespaces",
            project_workload,
            required=False,
            args=(KUEUE_GROUP, version, "workloads"),
        ),
    )


def served_version(doc: dict, group: str, known: Iterable[str]) -> str:
    """From an APIGroupList (``/apis``): the version of ``group`` to read, among ``known`` (its preferred one when
    known, else the first known one served), or "" when the group is not served at all."""
    known = tuple(known)
    for g in doc.get("groups") or ():
        if g.get("name") != group:
            continue
        served = [v.get("version") for v in g.get("versions") or ()]
        preferred = (g.get("preferredVersion") or {}).get("version")
        if preferred in known:
            return preferred
        return next((v for v in known if v in served), "")
    return ""
