"""Provides the fake cluster's control loops: scheduler, kubelet, ReplicaSet/Deployment/Job/DaemonSet/StatefulSet, PDB, node controllers, Kueue."""

from .manager import Controllers

__all__ = ["Controllers"]
