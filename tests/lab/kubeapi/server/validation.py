"""Provides the API server's validation of what clients write: nodes' taints, pods, workloads, budgets, events."""

from __future__ import annotations

import json

from .. import kueue_objects
from ..controllers.objects import GPU
from ..selectors import labels_match, selector_from_label_selector
from ..store import ResourceType
from .answers import invalid

TAINT_EFFECTS = ("NoExecute", "NoSchedule", "PreferNoSchedule")


def validate(rtype: ResourceType, obj: dict) -> None:
    name = obj["metadata"].get("name", "")
    causes: list[tuple[str, str, str]] = []
    spec = obj.get("spec") or {}
    if rtype.plural == "nodes":
        if "unschedulable" in spec and not isinstance(spec["unschedulable"], bool):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.unschedulable",
                    f"Invalid value: {json.dumps(spec['unschedulable'])}: must be a boolean",
                )
            )
        seen = set()
        for i, taint in enumerate(spec.get("taints") or ()):
            if not isinstance(taint, dict) or not taint.get("key"):
                causes.append(("FieldValueRequired", f"spec.taints[{i}].key", "Required value"))
                continue
            effect = taint.get("effect", "")
            if effect not in TAINT_EFFECTS:
                supported = ", ".join(f'"{e}"' for e in TAINT_EFFECTS)
                word = (
                    "Required value" if not effect else f'Unsupported value: "{effect}": supported values: {supported}'
                )
                causes.append(
                    (
                        "FieldValueRequired" if not effect else "FieldValueNotSupported",
                        f"spec.taints[{i}].effect",
                        word,
                    )
                )
            if (taint["key"], effect) in seen:
                causes.append(
                    ("FieldValueDuplicate", f"spec.taints[{i}]", f'Duplicate value: "{taint["key"]}:{effect}"')
                )
            seen.add((taint["key"], effect))
    elif rtype.plural == "pods":
        containers = spec.get("containers") or []
        if not containers:
            causes.append(("FieldValueRequired", "spec.containers", "Required value"))
        for i, c in enumerate(containers):
            if not c.get("name"):
                causes.append(("FieldValueRequired", f"spec.containers[{i}].name", "Required value"))
            if not c.get("image"):
                causes.append(("FieldValueRequired", f"spec.containers[{i}].image", "Required value"))
            res = c.get("resources") or {}
            req, lim = (res.get("requests") or {}).get(GPU), (res.get("limits") or {}).get(GPU)
            if req is not None and lim is not None and str(req) != str(lim):
                causes.append(
                    (
                        "FieldValueInvalid",
                        f"spec.containers[{i}].resources.requests",
                        f'Invalid value: "{req}": must be equal to {GPU} limit of {lim}',
                    )
                )
    elif rtype.plural in ("deployments", "replicasets", "daemonsets", "statefulsets"):
        sel = spec.get("selector")
        if not sel:
            causes.append(("FieldValueRequired", "spec.selector", "Required value"))
        else:
            reqs = selector_from_label_selector(sel)
            tlabels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
            if reqs is not None and not labels_match(reqs, tlabels):
                causes.append(
                    (
                        "FieldValueInvalid",
                        "spec.template.metadata.labels",
                        f"Invalid value: {json.dumps(tlabels, separators=(',', ':'))}: `selector` does not match template `labels`",
                    )
                )
        if isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.replicas",
                    f"Invalid value: {spec['replicas']}: must be greater than or equal to 0",
                )
            )
    elif rtype.plural == "poddisruptionbudgets":
        if "minAvailable" in spec and "maxUnavailable" in spec:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec",
                    "Invalid value: policy.PodDisruptionBudgetSpec: minAvailable and maxUnavailable cannot be both set",
                )
            )
    elif rtype.plural == "events":
        causes += event_causes(obj)
    elif rtype.crd:
        causes += kueue_objects.invalid_fields(rtype.plural, obj)
    if causes:
        raise invalid(rtype, name, causes)


def event_causes(event: dict) -> list[tuple[str, str, str]]:
    """core/v1 Event validation as the apiserver applies it to v1 writes (legacyValidateEvent): an old-style event
    (no eventTime) must sit in its object's namespace ("default" or none for cluster-scoped objects); a new-style one
    must name its reporting component, instance, action and reason."""
    ns = event["metadata"].get("namespace", "")
    inv = event.get("involvedObject") or {}
    inv_ns = inv.get("namespace") or ""
    causes: list[tuple[str, str, str]] = []
    mismatch = (
        "FieldValueInvalid",
        "involvedObject.namespace",
        f"Invalid value: {json.dumps(inv_ns)}: does not match event.namespace",
    )
    if not event.get("eventTime"):
        if (not inv_ns and ns not in ("", "default")) or (inv_ns and ns != inv_ns):
            causes.append(mismatch)
    else:
        if not inv_ns and ns not in ("default", "kube-system"):
            causes.append(mismatch)
        for fld in ("reportingComponent", "reportingInstance", "action", "reason"):
            if not event.get(fld):
                causes.append(("FieldValueRequired", fld, "Required value"))
    return causes
