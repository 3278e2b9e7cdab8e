"""Provides the fault matrix as data: for each source (or part of one) and each fault, what the user must see, or why it does not apply.

Every cell that applies must have a test marked ``@pytest.mark.fault(source, fault)`` (``test_matrix.py`` fails on a
cell without one), and every such test checks the same four things through :func:`tests.faults.harness.check_fault`:
the UI stays up and answers keys, the header names what failed and why, the last good data stays on screen marked
with its age, and the source recovers by itself once the fault ends. A run of the whole directory writes the
outcome to ``docs/faults.md``.
"""

from __future__ import annotations

#: fault -> how it is made
FAULTS: dict[str, str] = {
    "down": "connection refused",
    "slow": "answers 10x slower than the source's timeout",
    "401": "credentials rejected (HTTP 401; for SSH, the key refused)",
    "403": "not allowed (HTTP 403, RBAC)",
    "404": "not served (HTTP 404: the API, group or kind is missing)",
    "garbage": "an answer that is not the protocol (HTML, bytes)",
    "truncated": "the answer cut off mid-body",
    "wrong-types": "valid JSON of the wrong shape and types",
    "reset": "the connection reset mid-answer",
    "oversized": "an endless answer",
    "catalog-dead": "an endpoint in the catalog that does not answer",
    "half-fleet": "half of the SSH hosts unreachable",
    "host-key": "a host key that changed",
    "daemon-down": "the service behind a reachable endpoint is down (slurmctld behind the login host)",
}

_CONN = ("down", "slow", "garbage", "truncated", "wrong-types", "reset", "oversized")
_HTTP = _CONN + ("401", "403")


def _row(applies: dict[str, str], na: str, **reasons: str) -> dict[str, str]:
    """A full row: the faults that apply (with what is expected), every other one n/a with a reason."""
    row = {}
    for fault in FAULTS:
        if fault in applies:
            row[fault] = applies[fault]
        else:
            row[fault] = "n/a: " + reasons.get(fault.replace("-", "_"), na)
    return row


def _all(faults: tuple[str, ...], expected: str) -> dict[str, str]:
    return dict.fromkeys(faults, expected)


#: source (or "source:part") -> fault -> expected (or "n/a: why")
MATRIX: dict[str, dict[str, str]] = {
    # ------------------------------------------------------------------ Prometheus and Alertmanager
    "prometheus": _row(
        _all(_HTTP, "header: prometheus ✗ and why; GPU, Ceph, fabric tiles keep their last values, marked with their age")
        | {"404": "one query family not answered (a bad mapping): the others stay, the family is named as failing"},
        "Prometheus is one HTTP endpoint with no catalog, no SSH"),
    "alertmanager": _row(
        _all(_HTTP, "header: alertmanager ✗ and why; the alert list keeps its last alerts, marked with their age"),
        "Alertmanager is one HTTP endpoint with no catalog, no SSH", _404="Alertmanager has one API (v2) path only"),
    # ------------------------------------------------------------------ Kubernetes: the API, then per resource kind
    "kubernetes": _row(
        _all(_CONN + ("401",), "header: kubernetes ✗ and why; nodes stay with their last state, marked with their age")
        | {"403": "nodes forbidden: kubernetes ✗ names the kind and the user; last nodes stay"},
        "the API server has no catalog and is not reached over SSH",
        _404="a kind that is not served is a per-kind cell (kubernetes:pods and the others)"),
    **{f"kubernetes:{kind}": _row(
        {"403": f"{kind} forbidden: nodes still show; kubernetes ◐ partial names {kind}; what needs {kind} says unknown, never 0",
         "404": f"{kind} not served: the other kinds stay; kubernetes ◐ partial names {kind}"},
        "a fault of the connection hits every kind at once: see the kubernetes row")
       for kind in ("pods", "events", "poddisruptionbudgets", "jobs", "deployments", "kueue")},
    # ------------------------------------------------------------------ OpenStack, per service
    "openstack:keystone": _row(
        _all(_HTTP, "no token (when the source renews its token): openstack ✗ names keystone and why; "
                    "Nova hosts stay with their last state, marked with their age"),
        "Keystone is the catalog itself", _404="Keystone's token API has one path",
        catalog_dead="Keystone is the catalog itself"),
    **{f"openstack:{service}": _row(
        _all(_HTTP + ("catalog-dead",), (
            f"openstack ✗ names {service} and why; Nova hosts, disabled reasons and servers keep their last state"
            if service == "nova" else
            f"openstack ◐ partial names {service} and why; every Nova host, its reasons and VMs still show")),
        "an OpenStack service is an HTTP API in the catalog, not reached over SSH",
        _404=f"a 404 of {service} is an API error of one call, seen as an HTTP error like 403")
       for service in ("nova", "placement", "neutron", "glance")},
    # ------------------------------------------------------------------ SSH hosts and Slurm over SSH
    "ssh": _row(
        {"down": "host down: that host ✗ with why; the other hosts update; snapshot exits 1 naming it",
         "slow": "a host that answers slowly times out alone; the others update on time",
         "401": "key refused: that host ✗ says authentication; the others stay",
         "garbage": "a probe answer that is not the protocol: that host ✗ says unreadable; the others stay",
         "truncated": "a probe answer cut off: that host ✗; its last GPUs stay, marked with their age",
         "reset": "the connection reset mid-answer: that host ✗, reconnects by itself",
         "oversized": "an endless probe answer is cut at the size bound: that host ✗",
         "half-fleet": "half the hosts unreachable: the other half update on time; hosts ◐ partial names each",
         "host-key": "a changed host key is refused, never accepted: that host ✗ says host key changed"},
        "SSH has no HTTP status, catalog or wrong-typed JSON", wrong_types="the probe's answer is checked as garbage is"),
    "slurm": _row(
        {"down": "login host down: slurm ✗ and why; the Slurm column keeps its last state, marked with its age",
         "slow": "login host slow: slurm ✗ timed out; the other sources update on time",
         "401": "login key refused: slurm ✗ says authentication",
         "garbage": "sinfo/squeue print no JSON: slurm ✗ says the output is not understood, never empty",
         "wrong-types": "JSON of an unknown shape: slurm ✗ names the format it could not read",
         "daemon-down": "slurmctld down (sinfo cannot reach the controller): slurm ✗ says so in Slurm's words"},
        "Slurm is reached by SSH on one login host: see the ssh row for the connection's faults"),
}


def cells() -> list[tuple[str, str]]:
    """Every cell that applies (and so needs a test)."""
    return [(source, fault) for source, row in MATRIX.items() for fault, expected in row.items()
            if not expected.startswith("n/a")]
