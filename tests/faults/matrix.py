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
    "bad-query": "a query the server rejects (a bad metric mapping: Prometheus's HTTP 400 bad_data)",
}

#: why a fault does not apply, when that is the same for every row but one
_NA_EVERYWHERE = {"bad-query": "no query language: only Prometheus takes queries (see the prometheus:family row)"}

_CONN = ("down", "slow", "garbage", "truncated", "wrong-types", "reset", "oversized")
_HTTP = _CONN + ("401", "403")


def _row(applies: dict[str, str], na: str, **reasons: str) -> dict[str, str]:
    """A full row: the faults that apply (with what is expected), every other one n/a with a reason."""
    row = {}
    for fault in FAULTS:
        if fault in applies:
            row[fault] = applies[fault]
        else:
            row[fault] = "n/a: " + reasons.get(fault.replace("-", "_"), _NA_EVERYWHERE.get(fault, na))
    return row


def _all(faults: tuple[str, ...], expected: str) -> dict[str, str]:
    return dict.fromkeys(faults, expected)


#: source (or "source:part") -> fault -> expected (or "n/a: why")
MATRIX: dict[str, dict[str, str]] = {
    # ------------------------------------------------------------------ Prometheus and Alertmanager
    "prometheus": _row(
        _all(
            _HTTP, "header: prometheus ✗ and why; GPU, Ceph, fabric tiles keep their last values, marked with their age"
        )
        | {"404": "a URL that is not Prometheus's API (HTTP 404): prometheus ✗ says HTTP 404; the last values stay"},
        "Prometheus is one HTTP endpoint with no catalog, no SSH",
        bad_query="a query the server rejects costs one family: see the prometheus:family row",
    ),
    "prometheus:family": _row(
        {
            "slow": "one family's query slower than the timeout: prometheus ◐ names it; the other families update on time",
            "oversized": "one family's answer past the size bound: that family is named, the others update",
            "bad-query": "a bad mapping: the family is named with Prometheus's own error (bad_data); the others update",
        },
        "a fault of the connection hits every family at once: see the prometheus row",
    ),
    "alertmanager": _row(
        _all(_HTTP, "header: alertmanager ✗ and why; the alert list keeps its last alerts, marked with their age"),
        "Alertmanager is one HTTP endpoint with no catalog, no SSH",
        _404="Alertmanager has one API (v2) path only",
    ),
    # ------------------------------------------------------------------ Kubernetes: the API, then per resource kind
    "kubernetes": _row(
        _all(_CONN + ("401",), "header: kubernetes ✗ and why; nodes stay with their last state, marked with their age")
        | {
            "slow": "list and watch each bounded by the source's timeout: kubernetes ✗ says no answer within it; last nodes stay",
            "oversized": "an endless answer is cut at the size bound (a list page, a watch event): kubernetes ✗ says cut off",
            "wrong-types": "JSON of the wrong shape is refused, never taken for an empty cluster: kubernetes ✗ says wrong shape",
            "403": "nodes forbidden: kubernetes ✗ names the kind and the user; last nodes stay",
        },
        "the API server has no catalog and is not reached over SSH",
        _404="a kind that is not served is a per-kind cell (kubernetes:pods and the others)",
    ),
    **{
        f"kubernetes:{kind}": _row(
            {
                "403": f"{what} forbidden: nodes still show; kubernetes ◐ partial names {kind} and the user in the API server's words; "
                + (
                    "every node's GPU pods say unknown (?), never 0; no drain plan for it"
                    if kind == "pods"
                    else f"what needs {kind} says unknown, never 0"
                ),
                "404": f"{what} not served (404): the other kinds stay; kubernetes ◐ partial names {kind} as not served"
                + ("; every node's GPU pods say unknown" if kind == "pods" else ""),
            },
            "a fault of the connection hits every kind at once: see the kubernetes row",
        )
        for kind, what in (
            ("pods", "pods"),
            ("events", "events"),
            ("poddisruptionbudgets", "poddisruptionbudgets"),
            ("jobs", "jobs"),
            ("deployments", "deployments"),
            ("kueue", "any Kueue kind"),
        )
    },
    # ------------------------------------------------------------------ OpenStack, per service
    "openstack:keystone": _row(
        _all(
            _HTTP,
            "no token (when the source renews its token): openstack ✗ names keystone and why; "
            "Nova hosts stay with their last state, marked with their age",
        ),
        "Keystone is the catalog itself",
        _404="Keystone's token API has one path",
        catalog_dead="Keystone is the catalog itself",
    ),
    **{
        f"openstack:{service}": _row(
            _all(
                _HTTP + ("catalog-dead",),
                (
                    f"openstack ✗ names {service} and why; Nova hosts, disabled reasons and servers keep their last state"
                    if service == "nova"
                    else f"openstack ◐ partial names {service} and why; every Nova host, its reasons and VMs still show"
                ),
            ),
            "an OpenStack service is an HTTP API in the catalog, not reached over SSH",
            _404=f"a 404 of {service} is an API error of one call, seen as an HTTP error like 403",
        )
        for service in ("nova", "placement", "neutron", "glance")
    },
    # ------------------------------------------------------------------ SSH hosts and Slurm over SSH
    "ssh": _row(
        {
            "down": "host down: ssh ◐ partial names that host, connection refused; the other hosts update; snapshot exits 1 naming it",
            "slow": "a host that answers 10x too slowly times out alone (no SSH answer in the timeout); the others update on time",
            "401": "key refused: ssh ◐ partial names that host, permission denied; the others stay",
            "garbage": "a probe answer that is not the protocol: ssh ◐ partial names that host, not JSON; the others stay",
            "truncated": "a probe answer cut off mid-line: ssh ◐ partial names that host, not JSON; the line protocol stays in step",
            "reset": "connections reset: ssh ◐ partial names that host (no SSH answer while resets go on); it reconnects by itself",
            "oversized": "a probe answer past the size bound is not read further: ssh ◐ partial names that host, longer than; "
            "the probe is restarted",
            "half-fleet": "half the hosts refused: the other half update on time; ssh ◐ partial names each failing host",
            "host-key": "a changed host key is refused, never accepted: ssh ◐ partial names that host, host key CHANGED",
        },
        "SSH has no HTTP status, catalog or wrong-typed JSON",
        wrong_types="the probe's answer is checked as garbage is",
    ),
    "slurm": _row(
        {
            "down": "login host down: slurm ✗ connection refused; the Slurm nodes keep their last state, marked with their age",
            "slow": "login host 10x too slow: slurm ✗ no SSH answer in the timeout; the other sources update on time",
            "401": "login key refused: slurm ✗ permission denied",
            "garbage": "sinfo prints no JSON: slurm ✗ sinfo --json answered no JSON, and what it printed; never empty",
            "wrong-types": "JSON of an unknown shape: slurm ✗ names what it could not read (no 'nodes' list), never 0 nodes",
            "daemon-down": "slurmctld stopped: sinfo is cut at the bound and slurm ✗ says so in Slurm's words (scontrol ping: "
            "Slurmctld(primary) … is DOWN)",
        },
        "Slurm is reached by SSH on one login host: see the ssh row for the connection's faults",
    ),
}


def cells() -> list[tuple[str, str]]:
    """Every cell that applies (and so needs a test)."""
    return [
        (source, fault)
        for source, row in MATRIX.items()
        for fault, expected in row.items()
        if not expected.startswith("n/a")
    ]
