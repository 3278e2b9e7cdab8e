"""Provides a faithful fake Kubernetes API server for the lab (REST paths, list/watch, RBAC, eviction, controllers)."""

from .lab import KubeCluster, KubeLab, start_kubeapi

__all__ = ["KubeCluster", "KubeLab", "start_kubeapi"]
