"""Provides the fake API server's per-kind fault toggles: forbid a kind (403), un-serve a kind or a group (404), reject every token (401).

Switched at run time through the lab's own ``/_lab/faults`` knob (:meth:`tests.lab.kubeapi.lab.KubeCluster.faults`);
each answer is the real apiserver's: a forbidden kind gets the ``Status`` RBAC gives (reason Forbidden, the
``User "x" cannot list resource "pods" in API group "" at the cluster scope`` wording), an un-served kind or group
a 404 ``NotFound`` and no place in discovery (``/apis``, ``/apis/<group>/<version>``, ``/api/v1``). A switch cuts the
open watches of the kinds it touches, so a client holding one meets the fault at once (as after an apiserver restart).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Faults:
    """What the server is told to get wrong now; kinds are named as RBAC and errors name them (``pods``, ``jobs.batch``)."""

    forbidden: set[str] = field(default_factory=set)  # group_resource: every verb on it is denied to every user
    unserved: set[str] = field(default_factory=set)  # group_resource: 404, and left out of discovery
    unserved_groups: set[str] = field(default_factory=set)  # API groups: 404 on every path under them, not in /apis
    reject_tokens: bool = False  # every request 401 Unauthorized (a rotated signing key, an expired token)

    def as_dict(self) -> dict[str, Any]:
        return {
            "forbidden": sorted(self.forbidden),
            "unserved": sorted(self.unserved),
            "unserved_groups": sorted(self.unserved_groups),
            "reject_tokens": self.reject_tokens,
        }

    def update(self, doc: dict[str, Any]) -> None:
        """Set the toggles given in ``doc`` (the others stay); ``{"clear": true}`` first clears every one."""
        if doc.get("clear"):
            self.forbidden, self.unserved, self.unserved_groups, self.reject_tokens = set(), set(), set(), False
        for key in ("forbidden", "unserved", "unserved_groups"):
            if key in doc:
                setattr(self, key, {str(v) for v in doc[key] or ()})
        if "reject_tokens" in doc:
            self.reject_tokens = bool(doc["reject_tokens"])

    def serves(self, rtype: Any) -> bool:
        return rtype.group not in self.unserved_groups and rtype.group_resource not in self.unserved

    def serves_group(self, group: str) -> bool:
        return group not in self.unserved_groups

    def forbids(self, rtype: Any) -> bool:
        return rtype.group_resource in self.forbidden

    def touched(self, before: dict[str, Any], rtype: Any) -> bool:
        """Whether a switch from ``before`` changed anything for ``rtype`` (its open watches are then cut)."""
        after = self.as_dict()
        if before["reject_tokens"] != after["reject_tokens"]:
            return True
        name = rtype.group_resource
        return any((name in before[k]) != (name in after[k]) for k in ("forbidden", "unserved")) or (
            (rtype.group in before["unserved_groups"]) != (rtype.group in after["unserved_groups"])
        )
