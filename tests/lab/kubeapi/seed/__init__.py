"""Provides the fake cluster's contents: a small GPU cluster with known faults, a big generated one, and their truth."""

from .big import big_cluster
from .gpu import gpu_cluster
from .nodes import node
from .pods import bare_gpu_pod
from .truth import Truth, truth_of

__all__ = ["Truth", "bare_gpu_pod", "big_cluster", "gpu_cluster", "node", "truth_of"]
