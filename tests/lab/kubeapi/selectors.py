"""Provides the fake API server's label and field selectors, parsed and matched as kube-apiserver does."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass


class SelectorError(ValueError):
    """A selector the real server would refuse with 400 BadRequest; ``str()`` is its message."""


# ------------------------------------------------------------------------------- labels
_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    """One requirement of a label selector: ``key op values``."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if op in ("gt", "lt"):
            if self.key not in labels:
                return False
            try:
                have, want = int(labels[self.key]), int(self.values[0])
            except ValueError:
                return False
            return have > want if op == "gt" else have < want
        return False  # pragma: no cover


def _tokens(text: str) -> list[str]:
    """Split a label selector into tokens: identifiers, operators, parentheses and commas."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            out.append(ch)
            i += 1
        elif text.startswith(("==", "!="), i):
            out.append(text[i : i + 2])
            i += 2
        elif ch in "=!<>":
            out.append(ch)
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "(),=!<>":
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _check_key(key: str) -> str:
    if not key or not _KEY.match(key) or len(key.split("/")[-1]) > 63:
        raise SelectorError(
            f"unable to parse requirement: invalid label key \"{key}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
        )
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(
            f"unable to parse requirement: invalid label value: \"{value}\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"
        )
    return value


def parse_label_selector(text: str | None) -> tuple[Requirement, ...]:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3``; empty means everything."""
    if not text or not text.strip():
        return ()
    toks = _tokens(text)
    reqs: list[Requirement] = []
    pos = 0

    def peek(offset: int = 0) -> str | None:
        return toks[pos + offset] if pos + offset < len(toks) else None

    while pos < len(toks):
        tok = toks[pos]
        if tok == "!":
            key = _check_key(peek(1) or "")
            reqs.append(Requirement(key, "!"))
            pos += 2
        else:
            key = _check_key(tok)
            pos += 1
            op = peek()
            if op is None or op == ",":
                reqs.append(Requirement(key, "exists"))
            elif op in ("=", "==", "!="):
                value = peek(1)
                if value is None or value in (",", "(", ")"):
                    value = ""
                    pos += 1
                else:
                    pos += 2
                reqs.append(Requirement(key, "!=" if op == "!=" else "=", (_check_value(value),)))
            elif op in ("in", "notin"):
                if peek(1) != "(":
                    raise SelectorError(f"unable to parse requirement: found '{peek(1)}', expected: '('")
                pos += 2
                values: list[str] = []
                while True:
                    tok = peek()
                    if tok is None:
                        raise SelectorError("unable to parse requirement: found '', expected: ')'")
                    if tok == ")":
                        pos += 1
                        break
                    if tok == ",":
                        pos += 1
                        continue
                    values.append(_check_value(tok))
                    pos += 1
                reqs.append(Requirement(key, op, tuple(values)))
            elif op in ("<", ">"):
                value = peek(1) or ""
                if not value.lstrip("-").isdigit():
                    raise SelectorError(
                        "unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer"
                    )
                reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                pos += 2
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{op}', expected: ',', '=', '!=', 'in', 'notin'"
                )
        if pos < len(toks):
            if toks[pos] != ",":
                raise SelectorError(f"found '{toks[pos]}', expected: ',' or 'end of string'")
            pos += 1
    return tuple(reqs)


def labels_match(reqs: tuple[Requirement, ...], labels: Mapping[str, str]) -> bool:
    return all(r.matches(labels) for r in reqs)


def selector_from_label_selector(sel: Mapping | None) -> tuple[Requirement, ...] | None:
    """A ``metav1.LabelSelector`` (matchLabels + matchExpressions) as requirements; ``None`` selects nothing."""
    if sel is None:
        return None
    reqs = [Requirement(k, "=", (v,)) for k, v in (sel.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in sel.get("matchExpressions") or ():
        reqs.append(Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ())))
    return tuple(reqs)


# ------------------------------------------------------------------------------- fields
@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector: ``field=value`` or ``field!=value``."""

    field: str
    value: str
    negate: bool = False


def parse_field_selector(
    text: str | None, supported: frozenset[str], kind_for_error: str
) -> tuple[FieldRequirement, ...]:
    """Parse ``a=b,c!=d`` (``==`` too) and refuse fields the resource does not index, like the real server."""
    if not text or not text.strip():
        return ()
    out: list[FieldRequirement] = []
    for term in _split_unescaped(text):
        term = term.strip()
        if not term:
            continue
        op = next((o for o in ("!=", "==", "=") if o in term), "")
        if not op:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, _, value = term.partition(op)
        negate = op == "!="
        field = field.strip()
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        out.append(FieldRequirement(field, _unescape(value.strip()), negate))
    return tuple(out)


def _split_unescaped(text: str) -> list[str]:
    parts, buf, escaped = [], [], False
    for ch in text:
        if escaped:
            buf.append("\\" + ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def fields_match(reqs: tuple[FieldRequirement, ...], fields: Mapping[str, str]) -> bool:
    for r in reqs:
        have = fields.get(r.field, "")
        if (have == r.value) == r.negate:
            return False
    return True


#: field → function of the object; what each resource lets you select on (as in the real registry)
FieldGetter = Callable[[dict], str]


def _get(obj: dict, *path: str) -> str:
    cur = obj
    for part in path:
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if cur is None:
        return ""
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


META_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": lambda o: _get(o, "metadata", "name"),
    "metadata.namespace": lambda o: _get(o, "metadata", "namespace"),
}
POD_FIELDS: dict[str, FieldGetter] = {
    **META_FIELDS,
    "spec.nodeName": lambda o: _get(o, "spec", "nodeName"),
    "spec.restartPolicy": lambda o: _get(o, "spec", "restartPolicy"),
    "spec.schedulerName": lambda o: _get(o, "spec", "schedulerName"),
    "spec.serviceAccountName": lambda o: _get(o, "spec", "serviceAccountName"),
    "spec.hostNetwork": lambda o: _get(o, "spec", "hostNetwork") or "false",
    "status.phase": lambda o: _get(o, "status", "phase"),
    "status.podIP": lambda o: _get(o, "status", "podIP"),
    "status.nominatedNodeName": lambda o: _get(o, "status", "nominatedNodeName"),
}
NODE_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": META_FIELDS["metadata.name"],
    "spec.unschedulable": lambda o: _get(o, "spec", "unschedulable") or "false",
}
EVENT_FIELDS: dict[str, FieldGetter] = {
    **META_FIELDS,
    "involvedObject.kind": lambda o: _get(o, "involvedObject", "kind"),
    "involvedObject.namespace": lambda o: _get(o, "involvedObject", "namespace"),
    "involvedObject.name": lambda o: _get(o, "involvedObject", "name"),
    "involvedObject.uid": lambda o: _get(o, "involvedObject", "uid"),
    "involvedObject.apiVersion": lambda o: _get(o, "involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": lambda o: _get(o, "involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": lambda o: _get(o, "involvedObject", "fieldPath"),
    "reason": lambda o: _get(o, "reason"),
    "reportingComponent": lambda o: _get(o, "reportingComponent"),
    "source": lambda o: _get(o, "source", "component"),
    "type": lambda o: _get(o, "type"),
}
#: events.k8s.io/v1 names the same indexed fields after its own schema
EVENT_V1_FIELD_ALIASES = {
    "regarding.kind": "involvedObject.kind",
    "regarding.namespace": "involvedObject.namespace",
    "regarding.name": "involvedObject.name",
    "regarding.uid": "involvedObject.uid",
    "regarding.apiVersion": "involvedObject.apiVersion",
    "regarding.resourceVersion": "involvedObject.resourceVersion",
    "regarding.fieldPath": "involvedObject.fieldPath",
    "reportingController": "reportingComponent",
}
