"""Provides label selectors as the API matches them: parsed from a ``metav1.LabelSelector``, matched against a pod's labels.

Matched as ``metav1.LabelSelectorAsSelector`` does: matchLabels, and matchExpressions with In, NotIn, Exists,
DoesNotExist; a null selector selects nothing, an empty one every pod of its namespace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


class Selector(NamedTuple):
    """A ``metav1.LabelSelector``: matchLabels as sorted (key, value) pairs, matchExpressions as (key, operator, values)."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, frozenset[str]], ...] = ()


def parse_selector(sel: Any) -> Selector | None:
    """A LabelSelector from its JSON; ``None`` for a null or unusable one (it selects nothing, as the API treats it)."""
    if not isinstance(sel, Mapping):
        return None
    match = sel.get("matchLabels") or {}
    exprs = sel.get("matchExpressions") or ()
    if not isinstance(match, Mapping) or not isinstance(exprs, (list, tuple)):
        return None
    out = []
    for expr in exprs:
        if (
            not isinstance(expr, Mapping)
            or expr.get("operator") not in OPERATORS
            or not isinstance(expr.get("key"), str)
        ):
            return None
        values = expr.get("values") or ()
        out.append((expr["key"], expr["operator"], frozenset(str(v) for v in values)))
    return Selector(tuple(sorted((str(k), str(v)) for k, v in match.items())), tuple(out))


def selector_matches(sel: Selector | None, labels: Mapping[str, str]) -> bool:
    """Whether a pod with ``labels`` is selected: every matchLabels pair and every expression must hold."""
    if sel is None:
        return False
    for key, value in sel.labels:
        if labels.get(key) != value:
            return False
    for key, op, values in sel.expressions:
        have = labels.get(key)
        if op == "In":
            if have is None or have not in values:
                return False
        elif op == "NotIn":
            if have is not None and have in values:
                return False
        elif op == "Exists":
            if have is None:
                return False
        elif have is not None:  # DoesNotExist
            return False
    return True
