"""Provides the API server's users: bearer-token identities, their RBAC rules, and the 403 they get."""

from __future__ import annotations

from dataclasses import dataclass

from ..store import ResourceType
from .answers import ApiError, details


@dataclass
class User:
    """An authenticated user with the RBAC rules bound to it (ClusterRoles, or Roles with ``namespaces``)."""

    name: str
    groups: tuple[str, ...] = ()
    rules: tuple[dict, ...] = ()

    def allowed(self, verb: str, group: str, resource: str, namespace: str, name: str = "") -> bool:
        if "system:masters" in self.groups:
            return True
        for rule in self.rules:
            if (
                not _any(rule.get("verbs"), verb)
                or not _any(rule.get("apiGroups"), group)
                or not _any(rule.get("resources"), resource)
            ):
                continue
            if rule.get("resourceNames") and name not in rule["resourceNames"]:
                continue
            scopes = rule.get("namespaces")
            if scopes is not None and namespace not in scopes:
                continue
            return True
        return False


def _any(allowed: list | None, value: str) -> bool:
    return bool(allowed) and ("*" in allowed or value in allowed)


def forbidden(user: User, verb: str, rtype: ResourceType, namespace: str, name: str = "", sub: str = "") -> ApiError:
    """403 as the apiserver words it (responsewriters.forbiddenMessage + errors.NewForbidden)."""
    resource = f"{rtype.plural}/{sub}" if sub else rtype.plural
    scope = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user.name}" cannot {verb} resource "{resource}" in API group "{rtype.group}" {scope}'
    subject = f'{rtype.group_resource} "{name}"' if name else rtype.group_resource
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details(rtype, name))
