"""Provides the API server's discovery documents: its version, the API groups it serves and their resources."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..store import RESOURCES, ResourceType

VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T11:36:29Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def groups(served: Callable[[ResourceType], bool]) -> dict[str, list[str]]:
    """Served API groups → their versions (built-in groups, and those of installed CRDs)."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        if r.group and served(r) and r.version not in out.setdefault(r.group, []):
            out[r.group].append(r.version)
    return out


def group_doc(group: str, versions: list[str]) -> dict:
    docs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": docs, "preferredVersion": docs[0]}


def resource_list(group: str, version: str, served: Callable[[ResourceType], bool]) -> dict:
    """The APIResourceList of one served group version, subresources included."""
    resources = []
    for r in RESOURCES:
        if r.group != group or r.version != version or not served(r):
            continue
        doc: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            doc["shortNames"] = list(r.short_names)
        resources.append(doc)
        for sub in r.subresources:
            if sub == "eviction":
                resources.append(
                    {
                        "name": f"{r.plural}/eviction",
                        "singularName": "",
                        "namespaced": True,
                        "group": "policy",
                        "version": "v1",
                        "kind": "Eviction",
                        "verbs": ["create"],
                    }
                )
            else:
                resources.append(
                    {
                        "name": f"{r.plural}/{sub}",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
