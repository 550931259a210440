"""Label selectors, parsed and matched exactly as Kubernetes does.

Two sources compile to the same :class:`Selector`:

- the string form of ``?labelSelector=`` (``parse``): ``a=b``, ``a==b``, ``a!=b``,
  ``a in (x,y)``, ``a notin (x)``, ``a``, ``!a``, ``a>1``, ``a<1``, comma-joined (AND),
  whitespace tolerant. Grammar, lexer and error messages follow
  ``k8s.io/apimachinery/pkg/labels/selector.go``; a bad selector raises
  :class:`kybern.api.errors.BadRequest` with Kubernetes' message.
- a ``metav1.LabelSelector`` dict (``from_label_selector``): ``matchLabels`` plus
  ``matchExpressions`` with In/NotIn/Exists/DoesNotExist.

Semantics of workload selectors (``LabelSelectorAsSelector``): ``None`` (no selector)
matches **nothing**; an empty selector ``{}`` matches **everything**. The empty string
selector matches everything too. ``str(selector)`` is Kubernetes' canonical form:
requirements sorted by key, set values sorted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kybern.api import _label_parser, errors

IN, NOT_IN = "in", "notin"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
EXISTS, DOES_NOT_EXIST = "exists", "!"
GREATER_THAN, LESS_THAN = "gt", "lt"
BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_POSITIVE = frozenset({IN, EQUALS, DOUBLE_EQUALS})
_NEGATIVE = frozenset({NOT_IN, NOT_EQUALS})
_INT64 = re.compile(r"[+-]?[0-9]+")

# --- key and value validation (k8s.io/apimachinery/pkg/util/validation) -----------------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME = re.compile(_QUALIFIED_NAME_FMT)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QUALIFIED_NAME_FMT + ")?"
_LABEL_VALUE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, "
    "'-', '_' or '.', and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{example}', " for example in examples)
    prefix = f" (e.g. {shown}" if examples else " ("
    return f"{msg}{prefix}regex used for validation is '{fmt}')"


def validate_key(key: str) -> list[str]:
    """Kubernetes' IsQualifiedName: ``[prefix/]name``; returns error details (empty: ok)."""
    found: list[str] = []
    parts = key.split("/")
    if len(parts) > 2:
        detail = _regex_error(
            "a qualified name " + _QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT,
            "MyName", "my.name", "123-abc",
        )  # fmt: skip
        return [
            detail + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    name = parts[-1]
    if len(parts) == 2:
        found += _validate_prefix(parts[0])
    if not name:
        found.append("name part must be non-empty")
    elif len(name) > 63:
        found.append("name part must be no more than 63 characters")
    if not _QUALIFIED_NAME.fullmatch(name):
        found.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return found


def _validate_prefix(prefix: str) -> list[str]:
    if not prefix:
        return ["prefix part must be non-empty"]
    found = []
    if len(prefix) > 253:
        found.append("prefix part must be no more than 253 characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(prefix):
        msg = _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com")
        found.append("prefix part " + msg)
    return found


def validate_value(value: str) -> list[str]:
    """Kubernetes' IsValidLabelValue; returns error details (empty: ok)."""
    found = []
    if len(value) > 63:
        found.append("must be no more than 63 characters")
    if not _LABEL_VALUE.fullmatch(value):
        found.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return found


def go_quote(value: str) -> str:
    """Go's ``%q`` for the strings that appear in selectors (close enough: JSON escaping)."""
    return json.dumps(value, ensure_ascii=False)


def _invalid(field_path: str, shown: str, detail: str) -> str:
    return f"{field_path}: Invalid value: {shown}: {detail}"


def _go_strings(values: Iterable[str]) -> str:
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}"


# --- requirements and selectors ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Requirement:
    """One ``key op values`` term. Build with :func:`requirement` to get validation."""

    key: str
    operator: str
    values: tuple[str, ...] = ()
    _value_set: frozenset[str] = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_value_set", frozenset(self.values))

    def matches(self, labels: Mapping[str, str]) -> bool:
        operator = self.operator
        if operator in _POSITIVE:
            value = labels.get(self.key)
            return value is not None and value in self._value_set
        if operator in _NEGATIVE:
            value = labels.get(self.key)
            return value is None or value not in self._value_set
        if operator == EXISTS:
            return self.key in labels
        if operator == DOES_NOT_EXIST:
            return self.key not in labels
        return self._compare(labels.get(self.key))

    def _compare(self, value: str | None) -> bool:
        if value is None or not _INT64.fullmatch(value) or len(self.values) != 1:
            return False
        if not _INT64.fullmatch(self.values[0]):
            return False
        have, want = int(value), int(self.values[0])
        return have > want if self.operator == GREATER_THAN else have < want

    def __str__(self) -> str:
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator == EXISTS:
            return self.key
        shown = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            return f"{self.key} {self.operator} ({shown})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{shown}"


def requirement(key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
    """Kubernetes' NewRequirement: validates key, operator arity and values."""
    listed = list(values)
    problems = []
    key_errors = validate_key(key)
    if key_errors:
        problems.append(_invalid("key", go_quote(key), "; ".join(key_errors)))
    problems += _arity_errors(operator, listed)
    for index, value in enumerate(listed):
        value_errors = validate_value(value)
        if value_errors:
            where = f"values[{index}][{key}]"
            problems.append(_invalid(where, go_quote(value), "; ".join(value_errors)))
    if problems:
        raise errors.BadRequest(_aggregate(problems))
    return Requirement(key, operator, tuple(listed))


def _arity_errors(operator: str, values: list[str]) -> list[str]:
    shown = _go_strings(values)
    if operator in (IN, NOT_IN) and not values:
        return [_invalid("values", shown, "for 'in', 'notin' operators, values set can't be empty")]
    if operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        return [_invalid("values", shown, "exact-match compatibility requires one single value")]
    if operator in (EXISTS, DOES_NOT_EXIST) and values:
        return [_invalid("values", shown, "values set must be empty for exists and does not exist")]
    if operator in (GREATER_THAN, LESS_THAN):
        found = []
        if len(values) != 1:
            found.append(
                _invalid("values", shown, "for 'Gt', 'Lt' operators, exactly one value is required")
            )
        for index, value in enumerate(values):
            if not _INT64.fullmatch(value):
                detail = "for 'Gt', 'Lt' operators, the value must be an integer"
                found.append(_invalid(f"values[{index}]", go_quote(value), detail))
        return found
    if operator not in (*BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST):
        allowed = ", ".join(go_quote(op) for op in (*BINARY_OPERATORS, EXISTS, DOES_NOT_EXIST))
        return [f"operator: Unsupported value: {go_quote(operator)}: supported values: {allowed}"]
    return []


def _aggregate(problems: list[str]) -> str:
    return problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"


@dataclass(frozen=True, slots=True)
class Selector:
    """An AND of requirements, sorted by key. ``nothing`` selects no object at all."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)

    def empty(self) -> bool:
        """True when the selector does not restrict anything (Kubernetes' Empty())."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value the selector requires for ``key`` (for index lookups), if any."""
        for req in self.requirements:
            if req.key == key:
                if req.operator in _POSITIVE and len(req.values) == 1:
                    return req.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(req) for req in self.requirements)


_EVERYTHING = Selector()
_NOTHING = Selector(nothing=True)


def everything() -> Selector:
    return _EVERYTHING


def nothing() -> Selector:
    return _NOTHING


def selector(requirements: Iterable[Requirement]) -> Selector:
    """A selector from requirements, sorted by key (stable) like Kubernetes' Add()."""
    return Selector(tuple(sorted(requirements, key=lambda req: req.key)))


def from_set(labels: Mapping[str, str]) -> Selector:
    """SelectorFromSet: equality on every pair (not validated); empty matches everything."""
    return selector(Requirement(key, EQUALS, (value,)) for key, value in labels.items())


_EXPRESSION_OPERATORS = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
}


def from_label_selector(label_selector: Mapping[str, Any] | None) -> Selector:
    """LabelSelectorAsSelector: None matches nothing, ``{}`` matches everything.

    Raises :class:`errors.BadRequest` for an invalid selector (Kubernetes' message).
    """
    if label_selector is None:
        return _NOTHING
    match_labels = label_selector.get("matchLabels") or {}
    expressions = label_selector.get("matchExpressions") or []
    if not isinstance(match_labels, Mapping) or not isinstance(expressions, list):
        raise errors.BadRequest(
            "invalid label selector: matchLabels must be a map, matchExpressions a list"
        )
    if not match_labels and not expressions:
        return _EVERYTHING
    reqs = [requirement(str(k), EQUALS, [_as_str(v)]) for k, v in match_labels.items()]
    reqs += [_expression(expr) for expr in expressions]
    return selector(reqs)


def _expression(expr: Any) -> Requirement:
    if not isinstance(expr, Mapping):
        raise errors.BadRequest("invalid label selector: matchExpressions items must be objects")
    operator = expr.get("operator")
    if operator not in _EXPRESSION_OPERATORS:
        raise errors.BadRequest(f"{go_quote(str(operator))} is not a valid label selector operator")
    values = expr.get("values") or []
    if not isinstance(values, list):
        raise errors.BadRequest("invalid label selector: values must be a list")
    key = _as_str(expr.get("key"))
    return requirement(key, _EXPRESSION_OPERATORS[operator], [_as_str(v) for v in values])


def _as_str(value: Any) -> str:
    return value if isinstance(value, str) else "" if value is None else str(value)


def to_label_selector(sel: Selector) -> dict[str, Any] | None:
    """The metav1.LabelSelector form of a selector (for Scale status and friends)."""
    if sel.nothing:
        return None
    out: dict[str, Any] = {}
    back = {v: k for k, v in _EXPRESSION_OPERATORS.items()}
    for req in sel.requirements:
        if req.operator in (EQUALS, DOUBLE_EQUALS) or (req.operator == IN and len(req.values) == 1):
            out.setdefault("matchLabels", {})[req.key] = req.values[0]
        elif req.operator == NOT_EQUALS:
            expr = {"key": req.key, "operator": "NotIn", "values": list(req.values)}
            out.setdefault("matchExpressions", []).append(expr)
        elif req.operator in back:
            expr = {"key": req.key, "operator": back[req.operator]}
            if req.values:
                expr["values"] = list(req.values)
            out.setdefault("matchExpressions", []).append(expr)
        else:
            raise errors.BadRequest(f"{req.operator} is not a valid label selector operator")
    return out


# --- the string parser ------------------------------------------------------------------


def _key_error(key: str) -> str | None:
    # The parser validates keys with a nil field path, hence Kubernetes' "<nil>" prefix.
    found = validate_key(key)
    return _invalid("<nil>", go_quote(key), "; ".join(found)) if found else None


def parse(text: str) -> Selector:
    """Parse a ``labelSelector=`` string; raises :class:`errors.BadRequest` when invalid."""
    return selector(_label_parser.parse(text, make=requirement, key_error=_key_error))
