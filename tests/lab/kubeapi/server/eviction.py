"""Provides the API server's eviction subresource: a pod deleted only as far as its disruption budget allows."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..controllers.objects import ready, terminal
from ..selectors import labels_match, selector_from_label_selector
from ..store import STORED, dumps, rfc3339
from .answers import ApiError, bad_request
from .writes import grace_period

if TYPE_CHECKING:
    from .app import ApiServer


def evict(server: ApiServer, namespace: str, name: str, body: Any, dry_run: bool) -> web.Response:
    pods = STORED["pods"]
    if not isinstance(body, dict) or body.get("kind") not in (None, "Eviction"):
        raise bad_request("not a Eviction object")
    if (body.get("metadata") or {}).get("name") != name:
        raise bad_request("name in URL does not match name in Eviction object")
    opts = body.get("deleteOptions") or {}
    dry_run = dry_run or "All" in (opts.get("dryRun") or ())
    grace = grace_period({}, opts)
    entry = server.entry(pods, namespace, name)
    pod = entry.obj()
    success = web.Response(
        status=201,
        body=dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        content_type="application/json",
    )
    phase = (pod.get("status") or {}).get("phase")
    if terminal(pod) or phase == "Pending" or pod["metadata"].get("deletionTimestamp"):
        server.controllers.delete_pod(namespace, name, evicted=True, dry_run=dry_run, grace_s=grace)
        return success
    pdbs = []
    for pdb_entry in server.store.iter("poddisruptionbudgets"):
        if pdb_entry.namespace != namespace:
            continue
        pdb = pdb_entry.obj()
        sel = selector_from_label_selector(pdb["spec"].get("selector"))
        if sel is not None and labels_match(sel, pod["metadata"].get("labels") or {}):
            pdbs.append(pdb)
    if len(pdbs) > 1:
        raise ApiError(
            500,
            "InternalError",
            "Internal error occurred: This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
            {
                "causes": [
                    {
                        "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support."
                    }
                ]
            },
        )
    if pdbs:
        pdb = pdbs[0]
        status = pdb.get("status") or {}
        healthy_enough = (
            status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) and status.get("desiredHealthy", 0) > 0
        )
        if not ready(pod) and (pdb["spec"].get("unhealthyPodEvictionPolicy") == "AlwaysAllow" or healthy_enough):
            server.controllers.delete_pod(namespace, name, evicted=True, dry_run=dry_run, grace_s=grace)
            return success
        if status.get("observedGeneration", 0) < pdb["metadata"].get("generation", 1):
            raise ApiError(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
                {
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": f"The disruption budget {pdb['metadata']['name']} is still being processed by the server.",
                        }
                    ],
                    "retryAfterSeconds": 10,
                },
                headers={"Retry-After": "10"},
            )
        if status.get("disruptionsAllowed", 0) == 0:
            message = f"The disruption budget {pdb['metadata']['name']} needs {status.get('desiredHealthy', 0)} healthy pods and has {status.get('currentHealthy', 0)} currently"
            raise ApiError(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
                {"causes": [{"reason": "DisruptionBudget", "message": message}]},
            )
        if not dry_run:
            status = dict(status)
            status["disruptionsAllowed"] = status["disruptionsAllowed"] - 1
            status.setdefault("disruptedPods", {})[name] = rfc3339(server.store.clock())
            pdb["status"] = status
            server.store.replace("poddisruptionbudgets", pdb)
    server.controllers.delete_pod(namespace, name, evicted=True, dry_run=dry_run, grace_s=grace)
    return success
