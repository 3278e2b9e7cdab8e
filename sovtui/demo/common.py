"""Provides the demo's constants, its typed errors and the seeded helpers every part of the simulation uses."""

from __future__ import annotations

import hashlib
import uuid as uuidlib

#: t0 of the demo at its default start: 2026-09-21 14:13:20 UTC. Fixed so that snapshots of the demo
#: (``DemoCluster()`` polled with a clock returning ``DEMO_EPOCH``) are identical on every machine and every
#: day. A live demo passes ``start=time.time()`` (see :meth:`DemoCluster.live`) so that ages shown on screen
#: ("firing for 3 min") are measured against the wall clock.
DEMO_EPOCH = 1_790_000_000.0

#: the simulation step, seconds
TICK_S = 5.0
#: how long before ``start`` the simulated cluster is born
WARMUP_S = 600.0

SITE_NAME = "demo"
DRIVER_VERSION = "550.54.15"
CUDA_VERSION = "12.4"
GPUS_PER_HOST = 8

PIB = float(2**50)
MIB = float(2**20)


# ---------------------------------------------------------------------------------------------
# errors


class DemoOperationError(Exception):
    """An operation the simulated cluster refused; ``str()`` reads like the real backend's message."""


class NotFound(DemoOperationError):
    """No such node, pod, Slurm node or Nova compute service."""


class DisruptionBudgetViolation(DemoOperationError):
    """Evicting the pod would take its PodDisruptionBudget below ``minAvailable`` (HTTP 429 in Kubernetes)."""

    def __init__(self, namespace: str, pod: str, budget: str, min_available: int, healthy: int) -> None:
        self.namespace = namespace
        self.pod = pod
        self.budget = budget
        self.min_available = min_available
        self.healthy = healthy
        super().__init__(
            "Cannot evict pod as it would violate the pod's disruption budget. "
            f"The disruption budget {budget} needs {min_available} healthy pods and has {healthy} currently"
        )


# ---------------------------------------------------------------------------------------------
# helpers


def digest(*parts: object) -> bytes:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()


_K8S_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def k8s_suffix(*parts: object, n: int = 5) -> str:
    return "".join(_K8S_ALPHABET[b % len(_K8S_ALPHABET)] for b in digest(*parts)[:n])


def gpu_uuid(seed: int, host: str, index: int) -> str:
    """The stable ``GPU-xxxxxxxx-xxxx-...`` UUID of a demo GPU."""
    return "GPU-" + str(uuidlib.UUID(bytes=digest("gpu", seed, host, index)[:16]))


def clamp(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value


def ramp(x: float, x0: float, x1: float, y0: float, y1: float) -> float:
    """Linear from (x0, y0) to (x1, y1)."""
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)


XID_MEANING = {
    13: "graphics engine exception",
    31: "GPU memory page fault",
    43: "GPU stopped processing",
    63: "row remapping event",
    79: "GPU has fallen off the bus",
    94: "contained ECC error",
}
