"""Helpers shared by the per-kind rules: causes with details, Go-like value rendering,
field paths, and the small checks many kinds repeat (non-negative ints, enums, label maps,
label selectors, int-or-percent, immutability).

Rules run after typecheck, so every field has its schema's JSON type or is None/absent; they
still read with ``.get`` and ``or`` so that a missing default never crashes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kybern.api import errors, quantity
from kybern.api.validation import names

Obj = dict[str, Any]
Causes = list[errors.Cause]

IMMUTABLE = "field is immutable"
NON_NEGATIVE = "must be greater than or equal to 0"
POSITIVE = "must be greater than 0"


def show(value: object) -> str:
    """Render a value the way Kubernetes messages do (strings quoted, maps as Go maps)."""
    if isinstance(value, dict):
        if all(isinstance(v, str) for v in value.values()):
            body = ", ".join(f'"{k}":"{v}"' for k, v in value.items())
            return f"map[string]string{{{body}}}"
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, list):
        if all(isinstance(v, str) for v in value):
            return "[]string{" + ", ".join(f'"{v}"' for v in value) + "}"
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def invalid(field: str, value: object, detail: str) -> errors.Cause:
    """FieldValueInvalid with Go-like rendering of maps and lists."""
    return errors.Cause(
        "FieldValueInvalid", f"{field}: Invalid value: {show(value)}: {detail}", field
    )


def required(field: str, detail: str = "") -> errors.Cause:
    message = f"{field}: Required value" + (f": {detail}" if detail else "")
    return errors.Cause("FieldValueRequired", message, field)


def duplicate(field: str, value: object) -> errors.Cause:
    return errors.Cause("FieldValueDuplicate", f"{field}: Duplicate value: {show(value)}", field)


def not_found(field: str, value: object) -> errors.Cause:
    return errors.Cause("FieldValueNotFound", f"{field}: Not found: {show(value)}", field)


def child(path: str, *names_: str) -> str:
    out = path
    for name in names_:
        out = f"{out}.{name}" if out else name
    return out


def index(path: str, i: int) -> str:
    return f"{path}[{i}]"


def key(path: str, k: str) -> str:
    return f"{path}[{k}]"


def as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def dicts(value: Any) -> Iterable[tuple[int, Obj]]:
    """(index, item) for the dict items of a list (None items skipped)."""
    return ((i, item) for i, item in enumerate(as_list(value)) if isinstance(item, dict))


def messages(field: str, value: object, msgs: Iterable[str]) -> Causes:
    return [invalid(field, value, m) for m in msgs]


def non_negative(obj: Obj, name: str, path: str) -> Causes:
    value = obj.get(name)
    if isinstance(value, int) and value < 0:
        return [invalid(child(path, name), value, NON_NEGATIVE)]
    return []


def positive(obj: Obj, name: str, path: str) -> Causes:
    value = obj.get(name)
    if isinstance(value, int) and value <= 0:
        return [invalid(child(path, name), value, POSITIVE)]
    return []


def enum(
    obj: Obj, name: str, path: str, allowed: Iterable[str], *, required_: bool = False
) -> Causes:
    """``allowed`` in Kubernetes' order; an empty value is Required only when asked."""
    value = obj.get(name)
    if value in (None, ""):
        return [required(child(path, name))] if required_ else []
    options = list(allowed)
    if value not in options:
        return [errors.not_supported(child(path, name), value, options)]
    return []


def required_str(obj: Obj, name: str, path: str, detail: str = "") -> Causes:
    return [] if obj.get(name) else [required(child(path, name), detail)]


def immutable(new: object, old: object, field: str) -> Causes:
    return [] if new == old else [invalid(field, new, IMMUTABLE)]


def labels(value: Any, path: str) -> Causes:
    """ValidateLabels: keys are qualified names, values label values; the path is the map's."""
    out: Causes = []
    for k, v in as_dict(value).items():
        out += messages(path, k, names.is_qualified_name(k))
        if isinstance(v, str):
            out += messages(path, v, names.is_label_value(v))
    return out


SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def label_selector(value: Any, path: str) -> Causes:
    """A metav1.LabelSelector: matchLabels and matchExpressions."""
    selector = as_dict(value)
    out = labels(selector.get("matchLabels"), child(path, "matchLabels"))
    for i, expr in dicts(selector.get("matchExpressions")):
        out += _selector_requirement(expr, index(child(path, "matchExpressions"), i))
    return out


def _selector_requirement(expr: Obj, path: str) -> Causes:
    operator, values = expr.get("operator"), as_list(expr.get("values"))
    out: Causes = []
    if operator in ("In", "NotIn") and not values:
        out.append(
            required(child(path, "values"), "must be specified when `operator` is 'In' or 'NotIn'")
        )
    elif operator in ("Exists", "DoesNotExist") and values:
        out.append(
            errors.forbidden(
                child(path, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )
        )
    elif operator not in SELECTOR_OPERATORS:
        out.append(
            errors.not_supported(child(path, "operator"), operator, list(SELECTOR_OPERATORS))
        )
    out += messages(
        child(path, "key"), expr.get("key", ""), names.is_qualified_name(expr.get("key") or "")
    )
    return out


def selector_matches(selector: Any, labels_: Mapping[str, Any]) -> bool:
    """Does a LabelSelector select these labels (the check behind "selector does not match")."""
    sel = as_dict(selector)
    for k, v in as_dict(sel.get("matchLabels")).items():
        if labels_.get(k) != v:
            return False
    return all(_requirement_matches(e, labels_) for _, e in dicts(sel.get("matchExpressions")))


def _requirement_matches(expr: Obj, labels_: Mapping[str, Any]) -> bool:
    k, operator = str(expr.get("key") or ""), expr.get("operator")
    values = as_list(expr.get("values"))
    if operator == "In":
        return k in labels_ and labels_[k] in values
    if operator == "NotIn":
        return k not in labels_ or labels_[k] not in values
    if operator == "Exists":
        return k in labels_
    if operator == "DoesNotExist":
        return k not in labels_
    return False


def selector_empty(selector: Any) -> bool:
    sel = as_dict(selector)
    return not sel.get("matchLabels") and not sel.get("matchExpressions")


def int_or_percent(value: Any, path: str) -> Causes:
    """ValidatePositiveIntOrPercent: a non-negative int or an 'N%' string."""
    if isinstance(value, str):
        return messages(path, value, names.is_percent(value))
    if isinstance(value, int) and value < 0:
        return [invalid(path, value, NON_NEGATIVE)]
    return []


def percent_at_most_100(value: Any, path: str) -> Causes:
    if isinstance(value, str) and names.is_percent(value) == [] and int(value[:-1]) > 100:
        return [invalid(path, value, "must not be greater than 100%")]
    return []


def non_negative_quantities(value: Any, path: str) -> Causes:
    """Each quantity of a resource list is >= 0 (parse errors were caught by typecheck)."""
    out: Causes = []
    for name, q in as_dict(value).items():
        if quantity.is_valid(q) and quantity.parse(q) < 0:
            out.append(invalid(key(path, name), q, NON_NEGATIVE))
    return out


def port_number(value: Any, path: str) -> Causes:
    if isinstance(value, int):
        return messages(path, value, names.is_port_number(value))
    return []


def port_num_or_name(value: Any, path: str) -> Causes:
    if isinstance(value, str):
        return messages(path, value, names.is_port_name(value))
    return port_number(value, path)


def dedupe(causes: Iterable[errors.Cause]) -> Causes:
    """Drop repeats (Required is reported once per field however many rules find it)."""
    seen: set[tuple[str, str, str]] = set()
    out: Causes = []
    for cause in causes:
        marker = (
            cause.reason,
            cause.field,
            "" if cause.reason == "FieldValueRequired" else cause.message,
        )
        if marker not in seen:
            seen.add(marker)
            out.append(cause)
    return out


# -- per-kind rule sets --------------------------------------------------------------------

CreateRule = Callable[[Obj], Causes]
UpdateRule = Callable[[Obj, Obj], Causes]


def no_causes(*_: Obj) -> Causes:
    return []


@dataclass(frozen=True, slots=True)
class KindRules:
    """A kind's semantic rules. ``create`` also runs on the new object of every update;
    ``update`` adds the update-only rules (immutability); ``status`` runs on /status writes."""

    create: CreateRule = no_causes
    update: UpdateRule = no_causes
    status: UpdateRule = no_causes


def spec_immutable(*fields: str) -> UpdateRule:
    """An update rule making ``spec.<field>`` immutable for each field given."""

    def rule(new: Obj, old: Obj) -> Causes:
        new_spec, old_spec = as_dict(new.get("spec")), as_dict(old.get("spec"))
        out: Causes = []
        for field in fields:
            out += immutable(new_spec.get(field), old_spec.get(field), f"spec.{field}")
        return out

    return rule
