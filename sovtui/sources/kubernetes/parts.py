"""Provides the Kubernetes source's parts (one per optional resource kind, with why a kind did not answer) and its doctor.

Nodes (and the API itself) carry the whole source; every other kind is a part (:class:`~sovtui.model.types.PartStatus`)
that may fail alone: denied by RBAC (403), not served (404), or not listed yet. A part that failed keeps its last
listed data, marked with when it was last in sync (``last_ok_at``); a part that never answered is unknown.
The doctor (:func:`doctor_checks`) asks, per kind, whether this user may list and watch it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ...model.types import DoctorCheck, PartStatus
from .errors import error_words
from .kinds import KUEUE_GROUP, KUEUE_VERSIONS, ResourceKind, kueue_kinds, served_version
from .wire import bounded, call_raw, read_bounded

#: the part of each kind (Kueue's kinds are one part: its queues need all three)
KUEUE_PART = "kueue"
#: parts in the order they are reported
PART_ORDER = ("pods", "events", "poddisruptionbudgets", "jobs", "deployments", KUEUE_PART)


def part_of(resource: str, group: str) -> str:
    """The part a resource kind belongs to: its plural, or ``kueue`` for Kueue's kinds."""
    return KUEUE_PART if group == KUEUE_GROUP else resource


def kind_parts(
    informers: Iterable[Any], now: float, kueue_error: Any = None, kueue_on: bool = False
) -> tuple[PartStatus, ...]:
    """One PartStatus per part of the optional kinds; a Kueue part only when Kueue is served (or discovery failed).

    A kind is in sync when listed and watching (or between two watches, with no error); then its ``last_ok_at`` moves
    to ``now``. A kind with an error, or never listed, is failing; its data is as old as its ``last_ok_at``.
    """
    worst: dict[str, PartStatus] = {}
    also: dict[str, list[str]] = {}  # part -> the other kinds failing as its first one does
    for inf in informers:
        if inf.kind.required:
            continue
        part = part_of(inf.kind.resource, inf.kind.group)
        failing = inf.error is not None and not (inf.synced and inf.watching)
        if inf.synced and not failing:
            inf.last_ok_at = now
            status = PartStatus(part, True, "", now)
        elif failing:
            status = PartStatus(part, False, error_words(inf.error, inf.kind.qualified), inf.last_ok_at)
        else:
            status = PartStatus(
                part,
                False,
                "not listed yet" if part == inf.kind.resource else f"{inf.kind.resource}: not listed yet",
                inf.last_ok_at,
            )
        before = worst.get(part)
        if before is None:
            worst[part] = status
        elif not status.ok:
            if before.ok:
                worst[part] = status
            else:  # both failing: the data is as old as the older of the two (unknown if one never answered)
                ages = (before.last_ok_at, status.last_ok_at)
                last = None if None in ages else min(ages)  # type: ignore[type-var]
                if unknown_why(before) == unknown_why(status):  # the same fault: said once, naming the other kinds
                    also.setdefault(part, []).append(inf.kind.resource)
                    error = before.error
                else:
                    error = f"{before.error}; {status.error}"
                worst[part] = PartStatus(part, False, error, last)
    for part, names in also.items():
        p = worst[part]
        worst[part] = PartStatus(part, False, f"{p.error} (also {', '.join(names)})", p.last_ok_at)
    if kueue_error is not None and not kueue_on:
        worst[KUEUE_PART] = PartStatus(KUEUE_PART, False, f"discovery of kueue.x-k8s.io failed: {kueue_error}", None)
    return tuple(
        sorted(worst.values(), key=lambda p: PART_ORDER.index(p.name) if p.name in PART_ORDER else len(PART_ORDER))
    )


def unknown_why(part: PartStatus | None) -> str:
    """Why what a part holds is unknown, in one or two words (``forbidden``, ``not served``, ``not listed yet``), or ""."""
    if part is None or part.ok:
        return ""
    low = part.error.lower()
    for word in ("forbidden", "not served", "not listed yet", "unauthorized", "timed out", "no answer"):
        if word in low:
            return word
    return "not answering"


def rbac_hint(verb: str, resource: str, group: str) -> str:
    """What to grant for a denied kind, as a ClusterRole rule reads."""
    return (
        f'grant get, list and watch on {resource} (a ClusterRole rule: apiGroups ["{group}"], resources ["{resource}"], '
        f'verbs ["get", "list", "watch"], bound with a ClusterRoleBinding); {verb} was denied. sovtui does not work around RBAC'
    )


async def doctor_kind(src: Any, kind: Any, call: Any) -> tuple[bool, str, str]:
    """Whether this user may list and watch one kind: (ok, detail, hint). ``call`` is the kind's raw list method."""
    verb = "list"
    try:
        status, raw, _ = await call_raw(call, src.timeout_s, *kind.args, limit=1)
        if status != 200:
            raise src.http_error(status, raw, "list", kind)
        verb = "watch"
        resp = await bounded(
            call(*kind.args, watch=True, timeout_seconds=1, _request_timeout=src.timeout_s), src.timeout_s
        )
        try:
            if resp.status != 200:
                raise src.http_error(
                    resp.status, await read_bounded(resp.content, 65536, f"watch {kind.qualified}"), "watch", kind
                )
        finally:
            resp.close()
    except Exception as exc:  # noqa: BLE001 - every failure is a failed check, in words
        err = src.classify(exc, verb, kind)
        if hasattr(err, "server_message"):
            return False, error_words(err, kind.qualified), rbac_hint(verb, kind.resource, kind.group)
        return False, str(err), err.hint
    return True, "listed and watched", ""


async def doctor_checks(src: Any) -> list[DoctorCheck]:
    """The doctor of a started source: its kubeconfig, Kueue's discovery, then one check per kind it reads."""
    from kubernetes.aio import client

    checks = [DoctorCheck(src.name, "kubeconfig", True, f"context {src.context or 'current'} → {src.server}")]
    kinds = list(src.kinds)
    if src.kueue:
        apis = ResourceKind("apis", "", "", "", dict)
        try:
            status, raw, _ = await call_raw(
                client.ApisApi(src.api).get_api_versions_without_preload_content, src.timeout_s
            )
            if status != 200:
                raise src.http_error(status, raw, "get", apis)
            version = served_version(json.loads(raw), KUEUE_GROUP, KUEUE_VERSIONS)
            checks.append(
                DoctorCheck(
                    src.name,
                    f"discover {KUEUE_GROUP}",
                    True,
                    f"served at {version}" if version else "not installed (no Kueue queues)",
                )
            )
            kinds += kueue_kinds(version) if version else ()
        except Exception as exc:  # noqa: BLE001 - a failed check, in words
            err = src.classify(exc, "get", apis)
            checks.append(DoctorCheck(src.name, f"discover {KUEUE_GROUP}", False, str(err), err.hint))
    for kind in kinds:  # one check per kind: may this user list and watch it, and if not, why
        call = getattr(getattr(client, kind.api)(src.api), f"{kind.method}_without_preload_content")
        ok, detail, hint = await doctor_kind(src, kind, call)
        checks.append(DoctorCheck(src.name, f"list+watch {kind.qualified}", ok, detail, hint))
        if not ok and not ("forbidden" in detail or "not served" in detail):
            break  # the API itself does not answer: the other kinds would say the same
    return checks
