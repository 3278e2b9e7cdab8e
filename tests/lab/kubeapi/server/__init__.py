"""Provides the fake Kubernetes API server: the real REST paths, JSON shapes, status codes, watch stream and RBAC."""

from .app import ApiServer
from .auth import User

__all__ = ["ApiServer", "User"]
