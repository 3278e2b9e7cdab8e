"""Provides the values every operation is made of: its options, its plan (steps, blockers, notes) and its progress events.

A plan is pure and immutable: the TUI's modal and the CLI show the same value, the run executes it,
the journal and the audit log record it. Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

#: the layers a host operation can act on, in the order they are closed
LAYERS = ("kubernetes", "nova", "slurm")
LAYER_TITLE = {"kubernetes": "Kubernetes", "nova": "Nova", "slurm": "Slurm"}
ACTIONS = ("drain", "cordon", "uncordon")
VM_POLICIES = ("live", "cold", "leave")
DEFAULT_TIMEOUT_S = 600.0  # ten minutes, as an operator expects of a drain (not kubectl's "forever", not k9s' 5 s)


class OpsError(Exception):
    """An operation cannot be planned or run; ``str()`` is the one line shown to the user."""


class ReadOnly(OpsError):
    """The site or the session is read-only: no plan for a mutation is made."""


class UnknownHost(OpsError):
    """A host that no layer of the site knows."""


@dataclass(frozen=True)
class Options:
    """What the operator chose for a drain, cordon or uncordon."""

    reason: str = ""
    layers: tuple[str, ...] = LAYERS
    grace_period_s: int | None = None  # None: each pod's own terminationGracePeriodSeconds
    timeout_s: float = DEFAULT_TIMEOUT_S  # for the whole run of one host
    delete_emptydir_data: bool = False
    force: bool = False  # evict pods that no controller will recreate
    vm_policy: str = "live"  # live | cold | leave
    requeue_jobs: bool = False  # Slurm: requeue the running jobs instead of letting them finish
    max_unavailable: int = 1  # hosts drained at once
    stop_on_failure: bool = True

    def check(self, action: str) -> Options:
        """The options, validated for ``action``; OpsError with the reason when they are not usable."""
        if action not in ACTIONS:
            raise OpsError(f"unknown action {action!r}")
        reason = " ".join(self.reason.split())
        if action != "uncordon" and not reason:
            raise OpsError(f"{action} needs a reason (it is recorded in every layer)")
        if len(reason) > 200:
            raise OpsError("the reason is longer than 200 characters")
        bad = [layer for layer in self.layers if layer not in LAYERS]
        if bad or not self.layers:
            raise OpsError(f"layers: expected some of {', '.join(LAYERS)}, got {', '.join(self.layers) or 'none'}")
        if self.vm_policy not in VM_POLICIES:
            raise OpsError(f"vm policy: expected one of {', '.join(VM_POLICIES)}, got {self.vm_policy!r}")
        if self.grace_period_s is not None and self.grace_period_s < 0:
            raise OpsError("the grace period cannot be negative")
        if not self.timeout_s > 0:
            raise OpsError("the timeout must be positive")
        if self.max_unavailable < 1:
            raise OpsError("max unavailable must be at least 1")
        layers = tuple(layer for layer in LAYERS if layer in self.layers)
        return replace(self, reason=reason, layers=layers)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["layers"] = list(self.layers)
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Options:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in doc.items() if k in known}
        if "layers" in values:
            values["layers"] = tuple(values["layers"])
        return cls(**values)


@dataclass(frozen=True)
class Step:
    """One thing the run will do (or knowingly not do) to one item on one host."""

    host: str
    layer: str  # kubernetes | nova | slurm
    kind: str  # node | pod | server | service | job
    name: str  # node name, namespace/pod, server name, job id
    action: str  # cordon, uncordon, evict, wait, skip, stay, disable, enable, live-migrate, cold-migrate, leave, drain, undrain, requeue
    detail: str = ""  # why (a skip's reason), or what it frees ("4 GPUs")
    ref: str = ""  # what the run addresses it by: a pod's uid, a server's id, the layer's own node name
    gpus: int = 0

    @property
    def key(self) -> str:
        return f"{self.host}|{self.layer}|{self.kind}|{self.name}"

    @property
    def acts(self) -> bool:
        """Whether the run does something for this step (a skip or a stay is only said)."""
        return self.action not in ("skip", "stay", "leave")


@dataclass(frozen=True)
class Blocker:
    """Something that stops (``fatal``) or holds up the operation on one host, and how to lift it."""

    host: str
    layer: str
    item: str
    why: str
    lift: str
    fatal: bool = True  # False: the run starts and waits for it (a PodDisruptionBudget that allows 0 now)


@dataclass(frozen=True)
class Plan:
    """Everything an operation will do, shown before it runs."""

    action: str
    site: str
    hosts: tuple[str, ...]
    options: Options
    steps: tuple[Step, ...] = ()
    blockers: tuple[Blocker, ...] = ()
    notes: tuple[str, ...] = ()  # a layer the site lacks, a layer that failed to answer, a host a layer does not know
    identities: tuple[tuple[str, str], ...] = ()  # (layer, who acts there)
    production: bool = False
    #: per host, the name each layer knows it by: ((host, ((layer, name), ...)), ...)
    names: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = ()

    @property
    def runnable(self) -> bool:
        return not any(b.fatal for b in self.blockers)

    def layer_name(self, host: str, layer: str) -> str | None:
        for h, pairs in self.names:
            if h == host:
                return dict(pairs).get(layer)
        return None

    def host_steps(self, host: str) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.host == host)

    def summary(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for step in self.steps:
            counts[step.action] = counts.get(step.action, 0) + 1
        return {
            "hosts": len(self.hosts),
            "steps": counts,
            "gpus_freed": sum(s.gpus for s in self.steps if s.action == "evict"),
            "blockers": sum(1 for b in self.blockers if b.fatal),
            "waits": sum(1 for b in self.blockers if not b.fatal),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "site": self.site,
            "production": self.production,
            "hosts": list(self.hosts),
            "options": self.options.to_json(),
            "runnable": self.runnable,
            "summary": self.summary(),
            "identities": dict(self.identities),
            "names": {h: dict(pairs) for h, pairs in self.names},
            "steps": [asdict(s) for s in self.steps],
            "blockers": [asdict(b) for b in self.blockers],
            "notes": list(self.notes),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Plan:
        return cls(
            action=doc["action"],
            site=doc["site"],
            hosts=tuple(doc["hosts"]),
            options=Options.from_json(doc.get("options") or {}),
            steps=tuple(Step(**s) for s in doc.get("steps") or ()),
            blockers=tuple(Blocker(**b) for b in doc.get("blockers") or ()),
            notes=tuple(doc.get("notes") or ()),
            identities=tuple((doc.get("identities") or {}).items()),
            production=bool(doc.get("production")),
            names=tuple((h, tuple(pairs.items())) for h, pairs in (doc.get("names") or {}).items()),
        )


#: the words of a step's progress, in the order an item normally goes through them
STATES = (
    "pending",
    "cordoned",
    "disabled",
    "drained",
    "evicting",
    "blocked",
    "terminating",
    "gone",
    "migrating",
    "confirming",
    "migrated",
    "waiting",
    "requeued",
    "enabled",
    "uncordoned",
    "done",
    "skipped",
    "failed",
    "timeout",
    "cancelled",
)
#: states an item ends in
FINAL = frozenset(
    {
        "cordoned",
        "disabled",
        "drained",
        "gone",
        "migrated",
        "requeued",
        "enabled",
        "uncordoned",
        "done",
        "skipped",
        "failed",
        "timeout",
        "cancelled",
    }
)
#: final states that mean "as planned"
SUCCESS = frozenset(
    {"cordoned", "disabled", "drained", "gone", "migrated", "requeued", "enabled", "uncordoned", "done", "skipped"}
)


@dataclass(frozen=True)
class Event:
    """Progress of one step (``step`` is its key), or of the run (``step`` empty)."""

    at: float
    step: str
    state: str
    detail: str = ""
    host: str = ""

    @property
    def final(self) -> bool:
        return self.state in FINAL


@dataclass
class Outcome:
    """Where every step of a run ended; filled in as events arrive."""

    states: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    cancelled: bool = False
    error: str = ""  # why the run stopped early (a 403, stop on failure), if it did

    def record(self, event: Event) -> None:
        if event.step:
            self.states[event.step] = event.state
            self.details[event.step] = event.detail

    def failed(self, plan: Plan) -> list[Step]:
        """Steps that acted and did not end as planned (still running counts as not as planned)."""
        return [s for s in plan.steps if s.acts and self.states.get(s.key) not in SUCCESS]

    def verdict(self, plan: Plan) -> str:
        if self.cancelled:
            return "cancelled"
        return "failed" if self.failed(plan) or self.error else "ok"
