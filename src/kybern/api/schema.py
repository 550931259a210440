"""Kubernetes v1.32 field schemas, as shipped by the kubernetes-validate package.

The file (``kubernetes-json-schema/v1.32.0-local/_definitions.json``) holds the OpenAPI-derived
JSON schemas of every built-in type under ``$defs``; references look like
``#/$defs/io.k8s.api.apps.v1.Deployment``. It is read once, lazily, on first use; this is the
only I/O in kybern.api.

Quirks of the data that users of this module rely on:

- optional fields are typed ``["string", "null"]``; a plain ``"string"`` marks a required one
  (it is then also in the definition's ``required`` list);
- IntOrString and Quantity are ``oneOf`` string/integer and string/number;
- Time and MicroTime are strings with ``format: date-time``; ``format: byte`` is base64;
- ``{}`` (apiextensions JSON, JSONSchemaPropsOr*) and objects without properties (FieldsV1,
  RawExtension) accept anything;
- ``x-kubernetes-patch-merge-key`` / ``-patch-strategy`` / ``-list-type`` / ``-list-map-keys``
  sit beside a ``$ref`` or on the property itself.
"""

from __future__ import annotations

import functools
import pathlib
from collections.abc import Iterable
from typing import Any, cast

import kubernetes_validate
import orjson

VERSION_DIR = "v1.32.0-local"
REF_PREFIX = "#/$defs/"
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"

Schema = dict[str, Any]


def definitions_path() -> pathlib.Path:
    package_dir = pathlib.Path(kubernetes_validate.__file__).parent
    return package_dir / "kubernetes-json-schema" / VERSION_DIR / "_definitions.json"


@functools.cache
def definitions() -> dict[str, Schema]:
    """All definitions by name (loaded once). Treat the result as read-only."""
    document = orjson.loads(definitions_path().read_bytes())
    return cast(dict[str, Schema], document["$defs"])


def definition(name: str) -> Schema:
    """The definition called ``name``; KeyError when there is none."""
    return definitions()[name]


def ref_name(fragment: Schema) -> str | None:
    """The definition name a fragment refers to, or None when it has no ``$ref``."""
    ref = fragment.get("$ref")
    return ref[len(REF_PREFIX) :] if isinstance(ref, str) else None


def resolve(fragment: Schema) -> Schema:
    """Follow ``$ref``: the referenced definition, with the fragment's own keys (description,
    patch strategy, ...) laid over it. Fragments without a ``$ref`` come back unchanged."""
    name = ref_name(fragment)
    if name is None:
        return fragment
    target = definition(name)
    if len(fragment) == 1:
        return target
    merged = dict(target)
    merged.update((k, v) for k, v in fragment.items() if k != "$ref")
    return merged


def types(fragment: Schema) -> frozenset[str]:
    """JSON types a (resolved) fragment allows, without ``null``; empty means any."""
    declared = fragment.get("type")
    if declared is None:
        options = fragment.get("oneOf", ())
        return frozenset(t for option in options for t in types(option))
    names = [declared] if isinstance(declared, str) else declared
    return frozenset(t for t in names if t != "null")


def nullable(fragment: Schema) -> bool:
    declared = fragment.get("type")
    return not isinstance(declared, str)


def properties(fragment: Schema) -> dict[str, Schema]:
    return cast(dict[str, Schema], resolve(fragment).get("properties", {}))


def required(fragment: Schema) -> tuple[str, ...]:
    return tuple(resolve(fragment).get("required", ()))


def _split(path: str | Iterable[str]) -> list[str]:
    if isinstance(path, str):
        return [p for p in path.split(".") if p]
    return list(path)


def field_schema(def_name: str, path: str | Iterable[str]) -> Schema | None:
    """The schema of the field at ``path`` (``"spec.template.spec.containers"`` or a list of
    segments) in definition ``def_name``, resolved, or None when there is no such field.

    Arrays are stepped through implicitly (``spec.containers.ports`` is the ports list of a
    container); a map (``additionalProperties``) accepts any segment as its key."""
    current: Schema | None = definition(def_name)
    for segment in _split(path):
        current = _step(current, segment) if current is not None else None
    return resolve(current) if current is not None else None


def _step(fragment: Schema, segment: str) -> Schema | None:
    fragment = resolve(fragment)
    if "items" in fragment and "properties" not in fragment:
        fragment = resolve(fragment["items"])
    props = fragment.get("properties")
    if props is not None:
        child = props.get(segment)
        return cast(Schema, child) if child is not None else None
    extra = fragment.get("additionalProperties")
    return cast(Schema, extra) if isinstance(extra, dict) else None


def items(fragment: Schema) -> Schema | None:
    """The resolved item schema of an array fragment (None for non-arrays)."""
    inner = resolve(fragment).get("items")
    return resolve(inner) if isinstance(inner, dict) else None


# -- strategic merge / apply metadata ----------------------------------------------------


def patch_strategy(fragment: Schema) -> tuple[str, ...]:
    """``x-kubernetes-patch-strategy`` split on commas: ``("merge", "retainKeys")``."""
    value = fragment.get("x-kubernetes-patch-strategy") or resolve(fragment).get(
        "x-kubernetes-patch-strategy", ""
    )
    return tuple(s for s in str(value).split(",") if s)


def patch_merge_key(fragment: Schema) -> str | None:
    value = fragment.get("x-kubernetes-patch-merge-key")
    if value is None:
        value = resolve(fragment).get("x-kubernetes-patch-merge-key")
    return str(value) if value is not None else None


def list_type(fragment: Schema) -> str | None:
    """``atomic``, ``set`` or ``map`` for lists that declare one."""
    value = resolve(fragment).get("x-kubernetes-list-type")
    return str(value) if value is not None else None


def list_map_keys(fragment: Schema) -> tuple[str, ...]:
    return tuple(resolve(fragment).get("x-kubernetes-list-map-keys", ()))


def map_type(fragment: Schema) -> str | None:
    value = resolve(fragment).get("x-kubernetes-map-type")
    return str(value) if value is not None else None


# -- group-version-kind ---------------------------------------------------------------------


def group_version_kinds(def_name: str) -> list[dict[str, str]]:
    """``x-kubernetes-group-version-kind`` of a top-level definition ([] for inner types)."""
    return list(definition(def_name).get("x-kubernetes-group-version-kind", ()))


@functools.cache
def _by_gvk() -> dict[tuple[str, str, str], str]:
    out: dict[tuple[str, str, str], str] = {}
    for name, body in definitions().items():
        for gvk in body.get("x-kubernetes-group-version-kind", ()):
            out[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return out


def for_gvk(group: str, version: str, kind: str) -> str | None:
    """The definition name for a group/version/kind, e.g. ("apps", "v1", "Deployment")."""
    return _by_gvk().get((group, version, kind))
