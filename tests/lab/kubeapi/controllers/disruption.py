"""Provides the fake cluster's disruption controller: each PodDisruptionBudget's status from the pods it selects."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..selectors import labels_match, selector_from_label_selector
from ..store import rfc3339
from .objects import deleting, ready, scaled, terminal

if TYPE_CHECKING:
    from .manager import Controllers


def reconcile(ctl: Controllers, namespace: str) -> None:
    pods = [e.obj() for e in ctl.store.iter("pods") if e.namespace == namespace]
    for entry in ctl.store.iter("poddisruptionbudgets"):
        if entry.namespace != namespace:
            continue
        pdb = entry.obj()
        status = pdb_status(pdb, pods, ctl.now())
        if status != pdb.get("status"):
            pdb["status"] = status
            ctl.store.replace("poddisruptionbudgets", pdb)


def pdb_status(pdb: dict, pods: list[dict], now: float) -> dict:
    """A PodDisruptionBudget's status as the disruption controller computes it from the pods it selects."""
    sel = selector_from_label_selector(pdb["spec"].get("selector"))
    matching = [
        p for p in pods if sel is not None and labels_match(sel, p["metadata"].get("labels") or {}) and not terminal(p)
    ]
    live = [p for p in matching if not deleting(p)]
    old = pdb.get("status") or {}
    disrupted = {
        name: at
        for name, at in (old.get("disruptedPods") or {}).items()
        if any(p["metadata"]["name"] == name and not deleting(p) for p in matching)
    }
    expected = len(live)
    healthy = sum(1 for p in live if ready(p) and p["metadata"]["name"] not in disrupted)
    spec = pdb["spec"]
    if "minAvailable" in spec:
        desired = scaled(spec["minAvailable"], expected, up=True)
    elif "maxUnavailable" in spec:
        desired = max(0, expected - scaled(spec["maxUnavailable"], expected, up=True))
    else:
        desired = expected
    allowed = max(0, healthy - desired)
    stamp = rfc3339(now)
    previous = next((c for c in old.get("conditions") or () if c["type"] == "DisruptionAllowed"), None)
    status_word = "True" if allowed > 0 else "False"
    cond = {
        "type": "DisruptionAllowed",
        "status": status_word,
        "reason": "SufficientPods" if allowed > 0 else "InsufficientPods",
        "message": "",
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "lastTransitionTime": previous["lastTransitionTime"]
        if previous and previous["status"] == status_word
        else stamp,
    }
    out = {
        "observedGeneration": pdb["metadata"].get("generation", 1),
        "disruptionsAllowed": allowed,
        "currentHealthy": healthy,
        "desiredHealthy": desired,
        "expectedPods": expected,
        "conditions": [cond],
    }
    if disrupted:
        out["disruptedPods"] = disrupted
    return out
