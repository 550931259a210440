"""Schema-driven structural check of a whole object against its kind's definition.

One walk over the object finds three things:

- JSON type mismatches (a string where an int32 is expected, an int32 out of range, a bad
  quantity, time or base64 value). Kubernetes rejects these while decoding the body, with a
  400 BadRequest such as ``Deployment in version "v1" cannot be handled as a Deployment: json:
  cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32``;
  ``check`` raises errors.BadRequest with that message (the first mismatch only, like Go).
- required fields that are missing or null (the definition's ``required`` list): returned as
  FieldValueRequired causes with Kubernetes field paths (``spec.template.spec.containers[0].name``).
- fields the schema does not know (``spec.bogus``, ``spec.containers[0].bogus``), collected only
  when asked, for ``fieldValidation=Strict``/``Warn``.

Speed: each definition is compiled once into nested closures (``_compile``) and cached; the walk
iterates over the keys the object has, not over the schema's properties. Null values are
skipped everywhere, as Go's decoder does.
"""

from __future__ import annotations

import binascii
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kybern.api import errors, quantity, schema

# Definitions that accept any JSON value or any object.
_FREE = frozenset(
    {
        "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
        "io.k8s.apimachinery.pkg.runtime.RawExtension",
        "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
    }
)
_TIMES = frozenset(
    {
        "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
        "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
    }
)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}


@dataclass(slots=True)
class Report:
    """What one walk found: required-field causes and unknown field paths."""

    causes: list[errors.Cause] = field(default_factory=list)
    unknown: list[str] | None = None
    prune: bool = False


class _Mismatch(Exception):
    """A decode error on the way up to the nearest struct, which names the field."""

    def __init__(self, value_word: str, go_type: str, message: str = "") -> None:
        super().__init__(value_word)
        self.value_word = value_word
        self.go_type = go_type
        self.message = message  # set for errors with their own text (quantity, time, base64)
        self.located = False


# A compiled checker: (value, path segments, report) -> None; raises _Mismatch.
Checker = Callable[[Any, list[str], Report], None]


def check(
    schema_name: str,
    obj: Any,
    *,
    kind: str,
    version: str,
    find_unknown: bool = False,
    prune: bool = False,
) -> Report:
    """Walk ``obj`` against definition ``schema_name``.

    Raises errors.BadRequest on a type mismatch; returns required-field causes and, when
    ``find_unknown`` or ``prune``, the paths of unknown fields. ``prune`` also removes them
    from ``obj``, as Kubernetes' decoder drops fields its types do not have."""
    report = Report(unknown=[] if find_unknown or prune else None, prune=prune)
    try:
        _checker(schema_name)(obj, [], report)
    except _Mismatch as mismatch:
        detail = mismatch.message or _go_message(mismatch, kind)
        raise errors.BadRequest(
            f'{kind} in version "{version}" cannot be handled as a {kind}: {detail}'
        ) from None
    return report


def unknown_fields(schema_name: str, obj: Any, *, kind: str, version: str) -> list[str]:
    """Paths of fields ``obj`` has that the schema does not (``["spec.bogus"]``)."""
    report = check(schema_name, obj, kind=kind, version=version, find_unknown=True)
    return report.unknown or []


def _go_message(mismatch: _Mismatch, kind: str) -> str:
    if not mismatch.located:
        return f"json: cannot unmarshal {mismatch.value_word} into Go value of type {kind}"
    return f"json: cannot unmarshal {mismatch.value_word} into Go struct field {mismatch.go_type}"


def render_path(path: list[str]) -> str:
    """Kubernetes field path from walk segments: fields joined by dots, ``[i]``/``[key]``
    appended as they are."""
    out = ""
    for segment in path:
        if segment.startswith("["):
            out += segment
        else:
            out = f"{out}.{segment}" if out else segment
    return out


def _go_path(path: list[str]) -> str:
    return ".".join(s for s in path if not s.startswith("["))


def _word(value: Any, numeric_target: bool) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, int | float):
        return f"number {value!r}" if numeric_target else "number"
    if isinstance(value, list):
        return "array"
    return "object"


# -- compilation ---------------------------------------------------------------------------


@functools.cache
def _checker(def_name: str) -> Checker:
    """The compiled checker of a named definition; recursion-safe through a late-bound cell."""
    cell: list[Checker] = []

    def deferred(value: Any, path: list[str], report: Report) -> None:
        cell[0](value, path, report)

    _IN_PROGRESS[def_name] = deferred
    try:
        cell.append(_compile_definition(def_name))
    finally:
        del _IN_PROGRESS[def_name]
    return cell[0]


_IN_PROGRESS: dict[str, Checker] = {}


def _ref_checker(def_name: str) -> Checker:
    return _IN_PROGRESS.get(def_name) or _checker(def_name)


def _compile_definition(def_name: str) -> Checker:
    body = schema.definition(def_name)
    if def_name == schema.QUANTITY:
        return _check_quantity
    if def_name == schema.INT_OR_STRING:
        return _check_int_or_string
    if def_name in _TIMES:
        return _check_time
    if def_name in _FREE or not body:
        return _check_any
    if "properties" in body or schema.types(body) == {"object"}:
        return _compile_struct(def_name, body)
    return _compile(body)


def _compile(fragment: schema.Schema) -> Checker:
    """Checker for an anonymous fragment (a property's schema)."""
    name = schema.ref_name(fragment)
    if name is not None:
        return _ref_checker(name)
    kinds = schema.types(fragment)
    if kinds == {"array"}:
        return _compile_array(fragment)
    if kinds == {"object"} and isinstance(fragment.get("additionalProperties"), dict):
        return _compile_map(fragment["additionalProperties"])
    if kinds == {"object"}:
        return _check_object_any
    return _compile_scalar(fragment, kinds)


def _compile_scalar(fragment: schema.Schema, kinds: frozenset[str]) -> Checker:
    if kinds == {"string"}:
        return _check_bytes if fragment.get("format") == "byte" else _check_string
    if kinds == {"boolean"}:
        return _check_bool
    if kinds == {"number"}:
        return _check_number
    if kinds == {"integer"}:
        return _int_checker(str(fragment.get("format", "int64")))
    return _check_any


def _compile_struct(def_name: str, body: schema.Schema) -> Checker:
    struct = def_name.rsplit(".", 1)[-1]
    props = body.get("properties", {})
    children = {key: _compile(fragment) for key, fragment in props.items()}
    required = tuple(body.get("required", ()))
    go_name = _go_named(def_name)

    def check_struct(value: Any, path: list[str], report: Report) -> None:
        if type(value) is not dict:
            raise _Mismatch(_word(value, False), go_name)
        depth = len(path)
        dropped: list[str] = []
        for key, item in value.items():
            child = children.get(key)
            if child is None:
                if report.unknown is not None:
                    report.unknown.append(render_path([*path, key]))
                    dropped.append(key)
                continue
            if item is None:
                continue
            path.append(key)
            try:
                child(item, path, report)
            except _Mismatch as mismatch:
                _locate(mismatch, struct, path[: depth + 1])
                raise
            del path[depth:]
        if report.prune:
            for key in dropped:
                del value[key]
        for key in required:
            if value.get(key) is None:
                report.causes.append(errors.required(render_path([*path, key])))

    return check_struct


def _locate(mismatch: _Mismatch, struct: str, path: list[str]) -> None:
    """Name the innermost struct field, as Go's decoder does (indices and map keys left out)."""
    if not mismatch.located:
        mismatch.located = True
        mismatch.go_type = f"{struct}.{_go_path(path)} of type {mismatch.go_type}"


def _compile_array(fragment: schema.Schema) -> Checker:
    item_fragment = fragment.get("items") or {}
    item_check = _compile(item_fragment)
    array_type = go_type(fragment)

    def check_array(value: Any, path: list[str], report: Report) -> None:
        if type(value) is not list:
            raise _Mismatch(_word(value, False), array_type)
        depth = len(path)
        for index, item in enumerate(value):
            if item is None:
                continue
            path.append(f"[{index}]")
            item_check(item, path, report)
            del path[depth:]

    return check_array


def _compile_map(value_fragment: schema.Schema) -> Checker:
    value_check = _compile(value_fragment)
    map_type = "map[string]" + go_type(value_fragment)

    def check_map(value: Any, path: list[str], report: Report) -> None:
        if type(value) is not dict:
            raise _Mismatch(_word(value, False), map_type)
        if value_check is _check_string:  # the common case: labels, annotations, data
            for item in value.values():
                if type(item) is not str and item is not None:
                    raise _Mismatch(_word(item, False), "string")
            return
        depth = len(path)
        for key, item in value.items():
            if item is None:
                continue
            path.append(f"[{key}]")
            value_check(item, path, report)
            del path[depth:]

    return check_map


# -- scalars -------------------------------------------------------------------------------


def _check_any(value: Any, path: list[str], report: Report) -> None:
    return None


def _check_object_any(value: Any, path: list[str], report: Report) -> None:
    if type(value) is not dict:
        raise _Mismatch(_word(value, False), "map[string]interface {}")


def _check_string(value: Any, path: list[str], report: Report) -> None:
    if type(value) is not str:
        raise _Mismatch(_word(value, False), "string")


def _check_bool(value: Any, path: list[str], report: Report) -> None:
    if type(value) is not bool:
        raise _Mismatch(_word(value, False), "bool")


def _check_number(value: Any, path: list[str], report: Report) -> None:
    if type(value) is not float and type(value) is not int:
        raise _Mismatch(_word(value, False), "float64")


def _int_checker(fmt: str) -> Checker:
    low, high = _INT_RANGES.get(fmt, _INT_RANGES["int64"])
    type_name = fmt if fmt in _INT_RANGES else "int64"

    def check_int(value: Any, path: list[str], report: Report) -> None:
        if type(value) is not int or not low <= value <= high:
            raise _Mismatch(_word(value, True), type_name)

    return check_int


_check_int32 = _int_checker("int32")


def _check_int_or_string(value: Any, path: list[str], report: Report) -> None:
    if type(value) is not str:
        _check_int32(value, path, report)


def _check_quantity(value: Any, path: list[str], report: Report) -> None:
    if type(value) is bool or not isinstance(value, str | int | float):
        raise _Mismatch("", "", quantity.FORMAT_WRONG)
    try:
        quantity.parse(value)
    except quantity.QuantityError as error:
        raise _Mismatch("", "", str(error)) from None


def _check_time(value: Any, path: list[str], report: Report) -> None:
    if type(value) is not str:
        raise _Mismatch(_word(value, False), "string")
    if not _RFC3339.fullmatch(value):
        raise _Mismatch(
            "", "", f'parsing time "{value}" as "2006-01-02T15:04:05Z07:00": cannot parse'
        )


def _check_bytes(value: Any, path: list[str], report: Report) -> None:
    if type(value) is not str:
        raise _Mismatch(_word(value, False), "[]uint8")
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        raise _Mismatch("", "", _base64_error(value)) from None


_B64_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _base64_error(value: str) -> str:
    """Go's message for corrupt standard base64 (the offset of the first bad byte)."""
    for index, char in enumerate(value):
        if char not in _B64_ALPHABET:
            if char == "=" and index >= len(value) - 2 and len(value) % 4 == 0:
                continue
            return f"illegal base64 data at input byte {index}"
    return f"illegal base64 data at input byte {len(value) - len(value) % 4}"


# -- Go type names for messages ------------------------------------------------------------


def go_type(fragment: schema.Schema) -> str:
    """The Go type Kubernetes would name for a field (``int32``, ``[]v1.Container``)."""
    name = schema.ref_name(fragment)
    if name is not None:
        return _go_named(name)
    kinds = schema.types(fragment)
    if kinds == {"array"}:
        return "[]" + go_type(fragment.get("items") or {})
    if kinds == {"object"} and isinstance(fragment.get("additionalProperties"), dict):
        return "map[string]" + go_type(fragment["additionalProperties"])
    if kinds == {"string"}:
        return "[]uint8" if fragment.get("format") == "byte" else "string"
    if kinds == {"integer"}:
        return str(fragment.get("format", "int64"))
    return {"boolean": "bool", "number": "float64"}.get(next(iter(kinds), ""), "interface {}")


def _go_named(def_name: str) -> str:
    parts = def_name.rsplit(".", 2)
    if def_name == schema.QUANTITY:
        return "resource.Quantity"
    if def_name == schema.INT_OR_STRING:
        return "intstr.IntOrString"
    return f"{parts[-2]}.{parts[-1]}" if len(parts) == 3 else def_name
