"""Field paths and field sets of objects, with the shape of each field from the schemas.

A field set is the set of paths an object sets (or a manager owns). Each step of a path is
``f:<field>`` (a struct field or map key), ``k:{"name":"c"}`` (an item of an associative
list, identified by its list-map keys), ``v:"x"`` (an item of a set list) or ``i:<n>`` (a
list item without identity). In memory a set is a ``frozenset`` of paths, a path a tuple of
steps; on the wire it is Kubernetes' FieldsV1 JSON, a tree where ``.`` marks a node that is
in the set itself and also has members below it.

The shape of each field (atomic or granular map, associative/set/atomic list) comes from the
v1.32 schemas, as structured-merge-diff derives it: ``x-kubernetes-list-type`` and
``-map-type`` first, then a ``merge`` patch strategy (keyed by the merge key), else atomic.
:func:`compare` is what a write changed; kybern.api.managedfields and kybern.api.apply build
ownership on these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from kybern.api import errors, schema

Path = tuple[str, ...]
FieldSet = frozenset[Path]
Fragment = schema.Schema | None

# Defaults of list-map key fields (the schemas carry none): an applied port without a
# protocol is the live port with protocol TCP.
KEY_DEFAULTS = {"protocol": "TCP"}


class KeyError_(errors.BadRequest):
    """An associative list item without its key fields."""


# -- shapes ---------------------------------------------------------------------------------


def definition_for(obj: Any) -> Fragment:
    if not isinstance(obj, dict):
        return None
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group, _, version = api_version.rpartition("/")
    name = schema.for_gvk(group, version, kind)
    return schema.definition(name) if name else None


# Schema lookups run for every field of every write: memoised per schema fragment. The key
# is the fragment's id, checked against the fragment kept in the entry (an id is only reused
# after its object is gone, and the cache keeps the fragments it answered with alive).
@dataclass(frozen=True, slots=True)
class Shape:
    atomic_map: bool
    struct: bool
    list_kind: str  # "map", "set" or "atomic"
    list_keys: tuple[str, ...]
    items: Fragment
    required: frozenset[str]


_CHILDREN: dict[tuple[int, str], tuple[Fragment, Fragment]] = {}
_SHAPES: dict[int, tuple[Fragment, Shape]] = {}
_MEMO_LIMIT = 100_000


def child(fragment: Fragment, key: str) -> Fragment:
    if fragment is None:
        return None
    hit = _CHILDREN.get((id(fragment), key))
    if hit is not None and hit[0] is fragment:
        return hit[1]
    found = _child(fragment, key)
    if len(_CHILDREN) < _MEMO_LIMIT:
        _CHILDREN[(id(fragment), key)] = (fragment, found)
    return found


def shape(fragment: schema.Schema) -> Shape:
    hit = _SHAPES.get(id(fragment))
    if hit is not None and hit[0] is fragment:
        return hit[1]
    resolved = schema.resolve(fragment)
    kind, keys = _list_keys(fragment)
    found = Shape(
        atomic_map=schema.map_type(fragment) == "atomic",
        struct="properties" in resolved,
        list_kind=kind,
        list_keys=keys,
        items=schema.items(fragment),
        required=frozenset(resolved.get("required", ())),
    )
    if len(_SHAPES) < _MEMO_LIMIT:
        _SHAPES[id(fragment)] = (fragment, found)
    return found


def _child(fragment: schema.Schema, key: str) -> Fragment:
    resolved = schema.resolve(fragment)
    props = resolved.get("properties")
    if isinstance(props, dict):
        found = props.get(key)
        return found if isinstance(found, dict) else None
    extra = resolved.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def item_schema(fragment: Fragment) -> Fragment:
    return shape(fragment).items if fragment is not None else None


def atomic_map(fragment: Fragment) -> bool:
    return fragment is not None and shape(fragment).atomic_map


def list_keys(fragment: Fragment) -> tuple[str, tuple[str, ...]]:
    """("map", keys) for associative lists, ("set", ()) for sets, ("atomic", ()) otherwise."""
    if fragment is None:
        return "atomic", ()
    found = shape(fragment)
    return found.list_kind, found.list_keys


def _list_keys(fragment: schema.Schema) -> tuple[str, tuple[str, ...]]:
    declared = schema.list_type(fragment)
    if declared == "map":
        return "map", schema.list_map_keys(fragment)
    if declared in ("set", "atomic"):
        return declared, ()
    if "merge" in schema.patch_strategy(fragment):
        key = schema.patch_merge_key(fragment)
        return ("map", (key,)) if key else ("set", ())
    return "atomic", ()


def item_step(item: Any, kind: str, keys: tuple[str, ...], index: int, *, strict: bool) -> str:
    """The path step naming one list item (``k:``, ``v:`` or, without identity, ``i:``)."""
    if kind == "set" and not isinstance(item, dict | list):
        return "v:" + _json(item)
    if kind == "map" and isinstance(item, dict):
        ident: dict[str, Any] = {}
        for key in keys:
            if key in item:
                ident[key] = item[key]
            elif key in KEY_DEFAULTS:
                ident[key] = KEY_DEFAULTS[key]
            elif strict:
                raise KeyError_(
                    f"associative list with keys has an element that omits key field {key!r} "
                    "(and doesn't have default value)"
                )
        if ident:
            return "k:" + _json(ident)
    return f"i:{index}"


def _json(value: Any) -> str:
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except TypeError:  # e.g. an integer beyond 64 bits from a YAML body
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


# -- field sets of objects -------------------------------------------------------------------


def fields_of(value: Any, fragment: Fragment, *, empty_maps: bool = False) -> FieldSet:
    """The paths ``value`` sets (structured-merge-diff's ToFieldSet). ``empty_maps`` counts an
    empty map as set (what a diff sees), apply configurations do not."""
    out: set[Path] = set()
    _collect(value, fragment, (), out, empty_maps, strict=not empty_maps)
    return frozenset(out)


def _collect(
    value: Any,
    fragment: Fragment,
    path: Path,
    out: set[Path],
    empty_maps: bool,
    *,
    strict: bool,
    mark: bool = True,
) -> None:
    """``mark``: in a diff, a new map or list is itself set too, unless its field is required
    (Kubernetes compares with the kind's zero value, where required fields already exist)."""
    if isinstance(value, dict) and not atomic_map(fragment):
        if empty_maps and path and (not value or (mark and not _is_struct(fragment))):
            out.add(path)
        required = shape(fragment).required if fragment is not None else frozenset()
        for key, sub in value.items():
            if sub is None and not empty_maps:
                continue
            sub_path = (*path, "f:" + key)
            _collect(
                sub,
                child(fragment, key),
                sub_path,
                out,
                empty_maps,
                strict=strict,
                mark=key not in required,
            )
        return
    if isinstance(value, list):
        kind, keys = list_keys(fragment)
        if kind == "atomic":
            out.add(path)
            return
        inner = item_schema(fragment)
        if empty_maps and path and mark:
            out.add(path)
        for index, item in enumerate(value):
            step = item_step(item, kind, keys, index, strict=strict)
            item_path = (*path, step)
            out.add(item_path)
            if kind == "map":
                _collect(item, inner, item_path, out, empty_maps, strict=strict)
        return
    if path:
        out.add(path)


def _is_struct(fragment: Fragment) -> bool:
    return fragment is not None and shape(fragment).struct


@dataclass(frozen=True, slots=True)
class Comparison:
    changed: FieldSet  # added or modified
    removed: FieldSet


def compare(old: Any, new: Any, fragment: Fragment) -> Comparison:
    """What a write changed, path by path (structured-merge-diff's Compare)."""
    changed: set[Path] = set()
    removed: set[Path] = set()
    _compare(old, new, fragment, (), changed, removed)
    return Comparison(frozenset(changed), frozenset(removed))


def _compare(
    old: Any, new: Any, fragment: Fragment, path: Path, changed: set[Path], removed: set[Path]
) -> None:
    if type(old) is type(new) and old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict) and not atomic_map(fragment):
        if not new and old and path:
            changed.add(path)
        required = shape(fragment).required if fragment is not None else frozenset()
        for key in old.keys() | new.keys():
            sub_path = (*path, "f:" + key)
            if key not in new:
                removed.add(sub_path)
                removed.update(_prefixed(sub_path, old[key], child(fragment, key)))
            elif key not in old:
                sub = child(fragment, key)
                changed.update(_prefixed(sub_path, new[key], sub, mark=key not in required))
            else:
                _compare(old[key], new[key], child(fragment, key), sub_path, changed, removed)
        return
    if isinstance(old, list) and isinstance(new, list) and list_keys(fragment)[0] != "atomic":
        _compare_lists(old, new, fragment, path, changed, removed)
        return
    if old != new or type(old) is not type(new):
        changed.update(_prefixed(path, new, fragment))
        if isinstance(old, dict | list):
            removed.update(p for p in _prefixed(path, old, fragment) if p != path)


def _compare_lists(
    old: list[Any],
    new: list[Any],
    fragment: Fragment,
    path: Path,
    changed: set[Path],
    removed: set[Path],
) -> None:
    kind, keys = list_keys(fragment)
    inner = item_schema(fragment)
    old_items = {item_step(i, kind, keys, n, strict=False): i for n, i in enumerate(old)}
    new_items = {item_step(i, kind, keys, n, strict=False): i for n, i in enumerate(new)}
    for step, item in new_items.items():
        item_path = (*path, step)
        if step not in old_items:
            changed.update(_prefixed(item_path, item, inner, item_node=True))
        elif kind == "map":
            _compare(old_items[step], item, inner, item_path, changed, removed)
        elif old_items[step] != item:
            changed.add(item_path)
    for step, item in old_items.items():
        if step not in new_items:
            item_path = (*path, step)
            removed.add(item_path)
            removed.update(_prefixed(item_path, item, inner, item_node=True))


def _prefixed(
    path: Path, value: Any, fragment: Fragment, *, item_node: bool = False, mark: bool = True
) -> set[Path]:
    """Every path ``value`` sets, below ``path`` (and ``path`` itself when nothing is below)."""
    inner: set[Path] = set()
    _collect(value, fragment, path, inner, True, strict=False, mark=mark)
    if item_node or not inner:
        inner.add(path)
    return inner


# -- set operations ---------------------------------------------------------------------------


def without(fields: FieldSet, removed: Iterable[Path]) -> FieldSet:
    """``fields`` minus every path at or below a removed path."""
    gone = set(removed)
    if not gone:
        return fields
    lengths = sorted({len(g) for g in gone})
    return frozenset(p for p in fields if not any(p[:n] in gone for n in lengths if n <= len(p)))


def path_string(path: Path) -> str:
    """A path as Kubernetes prints it in conflicts: ``.spec.containers[name="c"].image``."""
    out = ""
    for step in path:
        prefix, body = step[:2], step[2:]
        if prefix == "f:":
            out += "." + body
        elif prefix == "k:":
            ident = orjson.loads(body)
            out += "[" + ",".join(f"{k}={_json(v)}" for k, v in ident.items()) + "]"
        elif prefix == "v:":
            out += "[=" + body + "]"
        else:
            out += "[" + body + "]"
    return out


# -- FieldsV1 encoding ------------------------------------------------------------------------


def encode(fields: FieldSet) -> dict[str, Any]:
    """A field set as FieldsV1 JSON (a tree; ``.`` marks owned nodes that have children).

    Keys come out sorted, as Kubernetes writes them, without a sorting pass: paths are
    visited in sorted order (a node before its children, siblings in order), and an owned
    node gets its ``.`` first, which is also where sorting would put it ("." < letters); an
    owned node that ends up without children drops its ``.``."""
    tree: dict[str, Any] = {}
    owned = []
    for path in sorted(fields):
        node = tree
        for step in path:
            node = node.setdefault(step, {})
        node["."] = {}
        owned.append(node)
    for node in owned:
        if len(node) == 1:
            node.clear()
    return tree


def decode(tree: Any) -> FieldSet:
    """FieldsV1 JSON -> a field set; BadRequest when it is not one."""
    out: set[Path] = set()
    _decode(tree, (), out)
    return frozenset(out)


def _decode(node: Any, path: Path, out: set[Path]) -> None:
    if not isinstance(node, dict):
        raise errors.BadRequest("metadata.managedFields: fieldsV1 must be a JSON object")
    if not node and path:
        out.add(path)
    for step, sub in node.items():
        if step == ".":
            out.add(path)
            continue
        if not isinstance(step, str) or step[:2] not in ("f:", "k:", "v:", "i:"):
            raise errors.BadRequest(f"metadata.managedFields: unknown field set step {step!r}")
        _decode(sub, (*path, step), out)


# -- fields the schema does not declare -------------------------------------------------------


def undeclared(value: Any, fragment: Fragment) -> list[str]:
    """Paths (as conflicts print them) of fields the schema does not declare; server-side
    apply refuses them whatever the field validation mode, as structured-merge-diff does."""
    out: list[str] = []
    _undeclared(value, fragment, (), out)
    return out


def _undeclared(value: Any, fragment: Fragment, path: Path, out: list[str]) -> None:
    if fragment is None:
        return
    if isinstance(value, dict) and not atomic_map(fragment):
        declared = shape(fragment).struct
        for key, sub in value.items():
            found = child(fragment, key)
            if found is None and declared:
                out.append(path_string((*path, "f:" + key)))
            else:
                _undeclared(sub, found, (*path, "f:" + key), out)
    elif isinstance(value, list):
        kind, keys = list_keys(fragment)
        inner = item_schema(fragment)
        for index, item in enumerate(value):
            step = (
                item_step(item, kind, keys, index, strict=False) if kind == "map" else f"i:{index}"
            )
            _undeclared(item, inner, (*path, step), out)
