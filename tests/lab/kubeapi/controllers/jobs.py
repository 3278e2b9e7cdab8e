"""Provides the fake cluster's Job controller: up to parallelism pods until completions succeed, then Complete."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store import rfc3339
from .objects import deleting, owner_ref, ready, set_condition, shape_pod, suffix, terminal

if TYPE_CHECKING:
    from .manager import Controllers


def reconcile(ctl: Controllers, key: str) -> None:
    entry = ctl.store.objects["jobs"].get(key)
    if entry is None:
        return
    job = entry.obj()
    meta, spec = job["metadata"], job["spec"]
    status = dict(job.get("status") or {})
    pods = ctl.owned(meta["uid"], entry.namespace)
    succeeded = sum(1 for p in pods if p["status"].get("phase") == "Succeeded")
    failed = sum(1 for p in pods if p["status"].get("phase") == "Failed")
    active = [p for p in pods if not terminal(p) and not deleting(p)]
    completions = spec.get("completions", 1)
    done = any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in status.get("conditions") or ())
    want = 0 if done or spec.get("suspend") else min(spec.get("parallelism", 1), completions - succeeded)
    if len(active) < want:
        ref = owner_ref("Job", "batch/v1", job)
        labels = {
            "batch.kubernetes.io/controller-uid": meta["uid"],
            "batch.kubernetes.io/job-name": meta["name"],
            "controller-uid": meta["uid"],
            "job-name": meta["name"],
        }
        for _ in range(want - len(active)):
            pod = shape_pod(spec["template"], entry.namespace, f"{meta['name']}-{suffix()}", ref, labels)
            pod["spec"]["restartPolicy"] = spec["template"]["spec"].get("restartPolicy", "Never")
            ctl.store.create("pods", pod)
            ctl.record(
                job,
                "Job",
                "Normal",
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                "job-controller",
            )
        active = [p for p in ctl.owned(meta["uid"], entry.namespace) if not terminal(p) and not deleting(p)]
    new = dict(status)
    new["active"] = len(active)
    new["succeeded"] = succeeded
    new["failed"] = failed
    new["ready"] = sum(1 for p in active if ready(p))
    new = {k: v for k, v in new.items() if v or k in ("conditions", "startTime", "ready")}
    if succeeded >= completions and not done:
        now = rfc3339(ctl.now())
        new["completionTime"] = now
        new["conditions"] = set_condition(new.get("conditions") or [], "Complete", "True", now=now)
    if new != status:
        job["status"] = new
        ctl.store.replace("jobs", job)
