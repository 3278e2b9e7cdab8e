"""Provides the Kubernetes source (:class:`KubernetesSource`) and what its callers use: its kinds, records and errors.

The official ``kubernetes`` client is imported lazily, when the source first starts: importing this package does not
load it. The modules: :mod:`.source` (the source), :mod:`.informer` (list + watch caches), :mod:`.accounting` (GPU,
queue and Kueue counts), :mod:`.drain` (pods by node, cordon, eviction), :mod:`.parts` (parts and doctor),
:mod:`.errors`, :mod:`.kinds`, :mod:`.records`, :mod:`.projections`, :mod:`.selectors` and :mod:`.wire` (bounded
requests and decoding).
"""

from __future__ import annotations

from .drain import CORDON_REASON_ANNOTATION
from .errors import EvictionBlocked, KubeForbidden, PodGone
from .informer import InformerStats
from .kinds import KINDS, ResourceKind, kueue_kinds
from .records import (
    ClusterQueueRec,
    DeploymentRec,
    EventRec,
    JobRec,
    KubeWorkloads,
    LocalQueueRec,
    NodeRec,
    PdbRec,
    PodRec,
    WorkloadRec,
)
from .source import KubernetesSource

__all__ = [
    "CORDON_REASON_ANNOTATION",
    "KINDS",
    "ClusterQueueRec",
    "DeploymentRec",
    "EventRec",
    "EvictionBlocked",
    "InformerStats",
    "JobRec",
    "KubeForbidden",
    "KubeWorkloads",
    "KubernetesSource",
    "LocalQueueRec",
    "NodeRec",
    "PdbRec",
    "PodGone",
    "PodRec",
    "ResourceKind",
    "WorkloadRec",
    "kueue_kinds",
]
