"""Provides the plain frozen dataclasses that sources produce and screens read, one module per domain."""

from .alerts import Alert
from .ceph import CephPool, CephState
from .events import NodeEvent
from .fabric import FabricLink, FabricState
from .gpu import Gpu, GpuHost, GpuProcess, MigInstance, XidEvent
from .health import Health, Verdict
from .kube import KubeNode
from .openstack import NeutronAgent, NovaHost, OpenStackFlavor, OpenStackImage, OpenStackNetwork
from .queues import QueueState
from .slurm import SlurmNode
from .source import DoctorCheck, PartStatus, SiteInfo, SourceData, SourceResult, SourceStatus

__all__ = [
    "Alert",
    "CephPool",
    "CephState",
    "DoctorCheck",
    "FabricLink",
    "FabricState",
    "Gpu",
    "GpuHost",
    "GpuProcess",
    "Health",
    "KubeNode",
    "MigInstance",
    "NeutronAgent",
    "NodeEvent",
    "NovaHost",
    "OpenStackFlavor",
    "OpenStackImage",
    "OpenStackNetwork",
    "PartStatus",
    "QueueState",
    "SiteInfo",
    "SlurmNode",
    "SourceData",
    "SourceResult",
    "SourceStatus",
    "Verdict",
    "XidEvent",
]
