"""Provides the lab's Kueue: quota accounting, the flavor assigner's verdicts, admission and queue status."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from .store import rfc3339

GROUP = "kueue.x-k8s.io"
VERSION = "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
JOB_UID_LABEL = "kueue.x-k8s.io/job-uid"
FINALIZER = "kueue.x-k8s.io/resource-in-use"
GPU = "nvidia.com/gpu"
#: what the lab's Kueue keeps objects of, in the order it reconciles them
PLURALS = ("resourceflavors", "clusterqueues", "localqueues", "workloads")
_BINARY = ("memory", "ephemeral-storage")

Obj = tuple[str, dict]


# ------------------------------------------------------------------------------ quantities
_FACTORS: dict[str, Fraction] = {
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 1000),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
}


def milli(value: Any) -> int:
    """A resource quantity ("500m", "32", "512Gi") in thousandths of its unit, rounded up as resource.Quantity does."""
    if value is None:
        return 0
    text = str(value).strip()
    factor = Fraction(1)
    for suffix in ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"):
        if text.endswith(suffix):
            text, factor = text[: -len(suffix)], _FACTORS[suffix]
            break
    try:
        return math.ceil(Fraction(text) * factor * 1000)
    except (ValueError, ZeroDivisionError):
        return 0


def fmt(resource: str, value_milli: int) -> str:
    """A quantity as the API prints it: millis when fractional, binary suffixes for memory, else a plain integer."""
    if value_milli % 1000:
        return f"{value_milli}m"
    n = value_milli // 1000
    if resource in _BINARY and n:
        for suffix, factor in (
            ("Ei", 2**60),
            ("Pi", 2**50),
            ("Ti", 2**40),
            ("Gi", 2**30),
            ("Mi", 2**20),
            ("Ki", 2**10),
        ):
            if n % factor == 0:
                return f"{n // factor}{suffix}"
    return str(n)


def _container_requests(container: dict) -> dict[str, int]:
    res = container.get("resources") or {}
    wanted = dict(res.get("limits") or {})  # a request defaults to its limit
    wanted.update(res.get("requests") or {})
    return {name: milli(q) for name, q in wanted.items()}


def pod_requests(pod_spec: dict) -> dict[str, int]:
    """One pod's effective requests per resource (milli): max(containers + sidecars, any init container), plus overhead."""
    total: dict[str, int] = {}
    init = pod_spec.get("initContainers") or ()
    for c in [*(pod_spec.get("containers") or ()), *(c for c in init if c.get("restartPolicy") == "Always")]:
        for name, q in _container_requests(c).items():
            total[name] = total.get(name, 0) + q
    for c in init:
        if c.get("restartPolicy") != "Always":
            for name, q in _container_requests(c).items():
                total[name] = max(total.get(name, 0), q)
    for name, q in (pod_spec.get("overhead") or {}).items():
        total[name] = total.get(name, 0) + milli(q)
    return {name: q for name, q in total.items() if q}


def podset_requests(podset: dict) -> dict[str, int]:
    count = int(podset.get("count", 1))
    return {name: q * count for name, q in pod_requests((podset.get("template") or {}).get("spec") or {}).items()}


def workload_gpus(wl: dict) -> int:
    """GPUs a Workload asks for: over its pod sets, count x the per-pod request."""
    return sum(podset_requests(ps).get(GPU, 0) for ps in (wl.get("spec") or {}).get("podSets") or ()) // 1000


# ------------------------------------------------------------------------------ conditions and states
def set_condition(
    conditions: list, ctype: str, status: str, reason: str, message: str, stamp: str, generation: int
) -> list:
    """metav1 SetStatusCondition: the transition time only moves when the status does."""
    out = [dict(c) for c in conditions]
    for cond in out:
        if cond.get("type") == ctype:
            if cond.get("status") != status:
                cond["lastTransitionTime"] = stamp
            cond.update(status=status, reason=reason, message=message, observedGeneration=generation)
            return out
    out.append(
        {
            "type": ctype,
            "status": status,
            "observedGeneration": generation,
            "lastTransitionTime": stamp,
            "reason": reason,
            "message": message,
        }
    )
    return out


def _true(obj: dict, ctype: str) -> bool:
    return any(
        c.get("type") == ctype and c.get("status") == "True" for c in (obj.get("status") or {}).get("conditions") or ()
    )


def state(wl: dict) -> str:
    """ "finished", "admitted", "reserved" (quota, admission checks pending), "inactive" or "pending", as Kueue reads it."""
    if _true(wl, "Finished"):
        return "finished"
    if _true(wl, "Admitted"):
        return "admitted"
    if _true(wl, "QuotaReserved"):
        return "reserved"
    if (wl.get("spec") or {}).get("active") is False:
        return "inactive"
    return "pending"


def _generation(obj: dict) -> int:
    return int(obj["metadata"].get("generation", 1))


# ------------------------------------------------------------------------------ the flavor assigner
def _groups(cq: dict) -> list[dict]:
    return (cq.get("spec") or {}).get("resourceGroups") or []


def assign(
    cq: dict, flavors: dict[str, dict], used: dict[tuple[str, str], int], wl: dict
) -> tuple[list[dict] | None, str]:
    """Kueue's flavor assignment of every pod set within nominal quota (no borrowing, no preemption): the
    podSetAssignments, or ``None`` and the scheduler's words ("couldn't assign flavors to pod set main: ...")."""
    assumed = dict(used)
    groups = _groups(cq)
    assignments, failures = [], []
    for ps in (wl.get("spec") or {}).get("podSets") or ():
        name = ps.get("name", "main")
        total = podset_requests(ps)
        selector = ((ps.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
        chosen: dict[str, str] = {}
        reasons = [
            f"resource {r} unavailable in ClusterQueue"
            for r in total
            if not any(r in g.get("coveredResources", ()) for g in groups)
        ]
        if not reasons:
            for group in groups:
                wanted = [r for r in group.get("coveredResources", ()) if r in total]
                if not wanted:
                    continue
                pick, tried = None, []
                for flavor in group.get("flavors") or ():
                    fname = flavor["name"]
                    labels = ((flavors.get(fname) or {}).get("spec") or {}).get("nodeLabels") or {}
                    if any(k in labels and labels[k] != v for k, v in selector.items()):
                        tried.append(f"flavor {fname} doesn't match node affinity")
                        continue
                    quota = {r["name"]: milli(r.get("nominalQuota")) for r in flavor.get("resources") or ()}
                    short = [(r, assumed.get((fname, r), 0) + total[r] - quota.get(r, 0)) for r in wanted]
                    short = [(r, n) for r, n in short if n > 0]
                    if not short:
                        pick = fname
                        break
                    tried += [
                        f"insufficient unused quota for {r} in flavor {fname}, {fmt(r, n)} more needed"
                        for r, n in short
                    ]
                if pick is None:
                    reasons += tried
                else:
                    chosen.update(dict.fromkeys(wanted, pick))
        if reasons:
            failures.append(f"couldn't assign flavors to pod set {name}: {', '.join(sorted(reasons))}")
            continue
        for r, fname in chosen.items():
            assumed[(fname, r)] = assumed.get((fname, r), 0) + total[r]
        assignments.append(
            {
                "name": name,
                "flavors": chosen,
                "resourceUsage": {r: fmt(r, total[r]) for r in chosen},
                "count": int(ps.get("count", 1)),
            }
        )
    if failures:
        return None, "; ".join(failures)
    return assignments, ""


def admit(wl: dict, cluster_queue: str, assignments: list[dict], stamp: str) -> None:
    """What the scheduler writes when it admits (no admission checks): the admission, QuotaReserved and Admitted."""
    status = wl.setdefault("status", {})
    gen = _generation(wl)
    status["admission"] = {"clusterQueue": cluster_queue, "podSetAssignments": assignments}
    conds = set_condition(
        status.get("conditions") or [],
        "QuotaReserved",
        "True",
        "QuotaReserved",
        f"Quota reserved in ClusterQueue {cluster_queue}",
        stamp,
        gen,
    )
    status["conditions"] = set_condition(conds, "Admitted", "True", "Admitted", "The workload is admitted", stamp, gen)


def finish(wl: dict, stamp: str, *, succeeded: bool = True) -> None:
    status = wl.setdefault("status", {})
    reason, message = ("Succeeded", "Job finished successfully") if succeeded else ("Failed", "Job failed")
    status["conditions"] = set_condition(
        status.get("conditions") or [], "Finished", "True", reason, message, stamp, _generation(wl)
    )


# ------------------------------------------------------------------------------ the controller's pass
def _usage_list(cq: dict, amounts: dict[tuple[str, str], int], *, borrowed: bool) -> list[dict]:
    out = []
    for group in _groups(cq):
        for flavor in group.get("flavors") or ():
            resources = []
            for r in group.get("coveredResources", ()):
                entry = {"name": r, "total": fmt(r, amounts.get((flavor["name"], r), 0))}
                if borrowed:
                    entry["borrowed"] = "0"
                resources.append(entry)
            out.append({"name": flavor["name"], "resources": resources})
    return out


def reconcile(
    flavors: dict[str, dict], cqs: dict[str, dict], lqs: dict[str, dict], wls: dict[str, dict], now: float
) -> list[Obj]:
    """One pass of the lab's Kueue over (copies of) every object: admit what fits (BestEffortFIFO, nominal quota only),
    say why the rest waits, and count both into ClusterQueue and LocalQueue status. Returns the objects it changed."""
    stamp = rfc3339(now)
    changed: list[Obj] = []
    inactive: dict[str, str] = {}
    for name, cq in cqs.items():
        missing = sorted({f["name"] for g in _groups(cq) for f in g.get("flavors") or () if f["name"] not in flavors})
        if missing:
            inactive[name] = f"Can't admit new workloads: references missing ResourceFlavor(s): {missing}."
        elif (cq.get("spec") or {}).get("stopPolicy", "None") != "None":
            inactive[name] = "Can't admit new workloads: is stopped."
    # quota held: (reserving, admitted) amounts per ClusterQueue and (flavor, resource)
    reserved: dict[str, dict[tuple[str, str], int]] = {name: {} for name in cqs}
    admitted_use: dict[str, dict[tuple[str, str], int]] = {name: {} for name in cqs}
    lq_reserved: dict[str, dict[tuple[str, str], int]] = {key: {} for key in lqs}
    lq_admitted: dict[str, dict[tuple[str, str], int]] = {key: {} for key in lqs}
    counts = {name: [0, 0, 0] for name in cqs}  # pending, reserving, admitted
    lq_counts = {key: [0, 0, 0] for key in lqs}
    pending: list[tuple[str, dict]] = []

    def hold(key: str, wl: dict, cq_name: str, is_admitted: bool) -> None:
        lq_key = f"{wl['metadata']['namespace']}/{(wl.get('spec') or {}).get('queueName', '')}"
        for psa in ((wl.get("status") or {}).get("admission") or {}).get("podSetAssignments") or ():
            for r, fname in (psa.get("flavors") or {}).items():
                q = milli((psa.get("resourceUsage") or {}).get(r))
                for table, owner in ((reserved, cq_name), (lq_reserved, lq_key)) + (
                    ((admitted_use, cq_name), (lq_admitted, lq_key)) if is_admitted else ()
                ):
                    if owner in table:
                        table[owner][(fname, r)] = table[owner].get((fname, r), 0) + q
        for table, owner in ((counts, cq_name), (lq_counts, lq_key)):
            if owner in table:
                table[owner][1] += 1
                table[owner][2] += int(is_admitted)

    for key, wl in wls.items():
        st = state(wl)
        if st in ("admitted", "reserved"):
            hold(key, wl, ((wl.get("status") or {}).get("admission") or {}).get("clusterQueue", ""), st == "admitted")
        elif st == "pending" and (wl.get("spec") or {}).get("queueName"):
            pending.append((key, wl))

    def queued_at(wl: dict) -> str:
        requeued = next(
            (c for c in (wl.get("status") or {}).get("conditions") or () if c.get("type") == "Requeued"), None
        )
        return (requeued or {}).get("lastTransitionTime") or wl["metadata"].get("creationTimestamp", "")

    pending.sort(key=lambda kv: (-int((kv[1].get("spec") or {}).get("priority") or 0), queued_at(kv[1]), kv[0]))
    for key, wl in pending:
        before = json_copy(wl.get("status") or {})
        spec, ns = wl.get("spec") or {}, wl["metadata"]["namespace"]
        lq_key = f"{ns}/{spec['queueName']}"
        lq = lqs.get(lq_key)
        cq_name = ((lq or {}).get("spec") or {}).get("clusterQueue", "")
        status = wl.setdefault("status", {})
        if lq is None:
            reason, message = "Inadmissible", f"LocalQueue {spec['queueName']} doesn't exist"
        elif cq_name not in cqs:
            reason, message = "Inadmissible", f"ClusterQueue {cq_name} doesn't exist"
        elif cq_name in inactive:
            reason, message = "Inadmissible", f"ClusterQueue {cq_name} is inactive"
        else:
            assignments, message = assign(cqs[cq_name], flavors, reserved[cq_name], wl)
            if assignments is not None:
                admit(wl, cq_name, assignments, stamp)
                hold(key, wl, cq_name, True)
                changed.append(("workloads", wl))
                continue
            reason = "Pending"
        if lq is not None:
            lq_counts[lq_key][0] += 1
            if cq_name in counts:
                counts[cq_name][0] += 1
        status["conditions"] = set_condition(
            status.get("conditions") or [], "QuotaReserved", "False", reason, message, stamp, _generation(wl)
        )
        if status != before:
            changed.append(("workloads", wl))

    for name, cq in cqs.items():
        active = name not in inactive
        new = dict(cq.get("status") or {})
        new["conditions"] = set_condition(
            new.get("conditions") or [],
            "Active",
            "True" if active else "False",
            "Ready" if active else "FlavorNotFound" if "ResourceFlavor" in inactive.get(name, "") else "Stopped",
            "Can admit new workloads" if active else inactive[name],
            stamp,
            _generation(cq),
        )
        new["flavorsReservation"] = _usage_list(cq, reserved[name], borrowed=True)
        new["flavorsUsage"] = _usage_list(cq, admitted_use[name], borrowed=True)
        new["pendingWorkloads"], new["reservingWorkloads"], new["admittedWorkloads"] = counts[name]
        if new != cq.get("status"):
            cq["status"] = new
            changed.append(("clusterqueues", cq))
    for key, lq in lqs.items():
        cq_name = (lq.get("spec") or {}).get("clusterQueue", "")
        cq = cqs.get(cq_name)
        new = dict(lq.get("status") or {})
        ok = cq is not None and cq_name not in inactive
        new["conditions"] = set_condition(
            new.get("conditions") or [],
            "Active",
            "True" if ok else "False",
            "Ready" if ok else "ClusterQueueIsInactive" if cq is not None else "ClusterQueueDoesNotExist",
            "Can submit new workloads to localQueue" if ok else "Can't submit new workloads to clusterQueue",
            stamp,
            _generation(lq),
        )
        new["flavorsReservation"] = _usage_list(cq, lq_reserved[key], borrowed=False) if cq is not None else []
        new["flavorUsage"] = _usage_list(cq, lq_admitted[key], borrowed=False) if cq is not None else []
        new["pendingWorkloads"], new["reservingWorkloads"], new["admittedWorkloads"] = lq_counts[key]
        if new != lq.get("status"):
            lq["status"] = new
            changed.append(("localqueues", lq))
    return changed


def json_copy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: json_copy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_copy(v) for v in obj]
    return obj
