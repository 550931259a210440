"""Strategic merge patch (``application/strategic-merge-patch+json``) on plain JSON values.

A JSON merge patch where lists know how to merge: each field's behaviour comes from the
Kubernetes v1.32 schema of the kind (``x-kubernetes-patch-strategy`` and
``x-kubernetes-patch-merge-key``), walked alongside the document. Rules (Kubernetes'
``strategicpatch`` package, as documented in kubernetes/community
``contributors/devel/sig-api-machinery/strategic-merge-patch.md``):

- maps merge recursively; ``null`` deletes a key;
- a list whose strategy is ``merge`` merges by its merge key (maps) or as a set (primitives);
  every other list is replaced;
- directives: ``$patch: replace|delete|merge`` on a map or as a list element,
  ``$setElementOrder/<list>`` (the order of the merged list), ``$retainKeys`` (clear the keys
  a union no longer uses), ``$deleteFromPrimitiveList/<list>`` (remove values from a set).

kubectl's client-side apply, ``edit``, ``set``, ``label`` and ``scale`` all send these
patches. Fields the schema does not know (custom resources, free-form maps) merge like a JSON
merge patch. A malformed directive is a :class:`kybern.api.errors.BadRequest` with the
message Kubernetes gives.
"""

from __future__ import annotations

import copy
from typing import Any

from kybern.api import errors, schema

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER_PREFIX = "$setElementOrder/"
DELETE_PRIMITIVE_PREFIX = "$deleteFromPrimitiveList/"

Fragment = schema.Schema | None


class PatchError(errors.BadRequest):
    """A strategic merge patch that cannot be applied (400 BadRequest)."""


def definition_for(doc: Any) -> Fragment:
    """The schema of the kind an object (apiVersion + kind) belongs to, None when unknown."""
    if not isinstance(doc, dict):
        return None
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    group, _, version = api_version.rpartition("/")
    name = schema.for_gvk(group, version, kind)
    return schema.definition(name) if name else None


def apply_strategic_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply a decoded strategic merge patch to ``doc`` (the kind taken from the document);
    returns a new document."""
    if not isinstance(patch, dict):
        raise PatchError("invalid JSON document")
    original = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    return merge(original, patch, definition_for(doc))


def merge(original: dict[str, Any], patch: dict[str, Any], fragment: Fragment) -> dict[str, Any]:
    """Merge ``patch`` into ``original`` (changed in place and returned) under ``fragment``."""
    merged = _merge_map(original, patch, _resolved(fragment))
    return merged if isinstance(merged, dict) else {}


# -- schema walking -------------------------------------------------------------------------


def _resolved(fragment: Fragment) -> Fragment:
    return schema.resolve(fragment) if fragment is not None else None


def _field(fragment: Fragment, key: str) -> Fragment:
    """The (unresolved) schema of ``key`` inside an object fragment; None when unknown."""
    if fragment is None:
        return None
    props = fragment.get("properties")
    if isinstance(props, dict):
        child = props.get(key)
        return child if isinstance(child, dict) else None
    extra = fragment.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def _items(fragment: Fragment) -> Fragment:
    return schema.items(fragment) if fragment is not None else None


def _strategy(fragment: Fragment) -> tuple[str, ...]:
    return schema.patch_strategy(fragment) if fragment is not None else ()


def _merge_key(fragment: Fragment) -> str | None:
    return schema.patch_merge_key(fragment) if fragment is not None else None


# -- maps -----------------------------------------------------------------------------------


def _merge_map(original: dict[str, Any], patch: dict[str, Any], fragment: Fragment) -> Any:
    directive = patch.get(DIRECTIVE)
    if directive is not None:
        if directive == "replace":
            return _clean({k: v for k, v in patch.items() if k != DIRECTIVE}, fragment)
        if directive == "delete":
            return {}
        if directive != "merge":
            raise PatchError(f"unknown patch type: {directive} in map: {_go_map(patch)}")
    if RETAIN_KEYS in patch:
        _retain_keys(original, patch)
    for key, value in patch.items():
        if key.startswith(DELETE_PRIMITIVE_PREFIX):
            _delete_from_primitive_list(original, key[len(DELETE_PRIMITIVE_PREFIX) :], value)
    for key, value in patch.items():
        if key in (DIRECTIVE, RETAIN_KEYS) or key.startswith(
            (DELETE_PRIMITIVE_PREFIX, SET_ORDER_PREFIX)
        ):
            continue
        _merge_key_into(original, key, value, _field(fragment, key))
    for key, value in patch.items():
        if key.startswith(SET_ORDER_PREFIX):
            name = key[len(SET_ORDER_PREFIX) :]
            _set_element_order(original, name, value, _field(fragment, name))
    return original


def _merge_key_into(original: dict[str, Any], key: str, value: Any, child: Fragment) -> None:
    if value is None:
        original.pop(key, None)
        return
    current = original.get(key)
    resolved = _resolved(child)
    if isinstance(value, dict):
        if isinstance(value.get(DIRECTIVE), str) and value[DIRECTIVE] == "delete":
            _check_directive_map(value)
            original.pop(key, None)
            return
        base = current if isinstance(current, dict) else {}
        original[key] = _merge_map(base, value, resolved)
    elif isinstance(value, list):
        base_list = current if isinstance(current, list) else []
        merged = _merge_list(base_list, value, child)
        if merged or not value or not base_list:
            original[key] = merged
        else:  # every item deleted: gone, as Kubernetes' typed round trip drops empty lists
            original.pop(key, None)
    else:
        original[key] = value


def _check_directive_map(value: dict[str, Any]) -> None:
    if value[DIRECTIVE] not in ("replace", "delete", "merge"):
        raise PatchError(f"unknown patch type: {value[DIRECTIVE]} in map: {_go_map(value)}")


def _retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    keep = patch[RETAIN_KEYS]
    if not isinstance(keep, list) or not all(isinstance(k, str) for k in keep):
        raise PatchError("invalid patch format of retainKeys")
    for key in patch:
        if key.startswith("$") or patch[key] is None:
            continue
        if key not in keep:
            raise PatchError("patch content doesn't match retainKeys list")
    for key in list(original):
        if key not in keep:
            del original[key]


def _delete_from_primitive_list(original: dict[str, Any], name: str, values: Any) -> None:
    if not isinstance(values, list):
        raise PatchError("invalid patch format of primitive list")
    current = original.get(name)
    if not isinstance(current, list):
        return
    remaining = [item for item in current if not _contains(values, item)]
    if remaining:
        original[name] = remaining
    else:
        original.pop(name, None)


# -- lists ----------------------------------------------------------------------------------


def _merge_list(original: list[Any], patch: list[Any], fragment: Fragment) -> list[Any]:
    item_schema = _items(fragment)
    if "merge" not in _strategy(fragment):
        return [_clean_item(item, item_schema) for item in patch]
    if _replace_marker(patch):
        return [_clean_item(i, item_schema) for i in patch if not _is_directive_only(i, "replace")]
    key = _merge_key(fragment)
    if key is None or not any(isinstance(i, dict) for i in [*original, *patch]):
        return _merge_primitives(original, patch)
    return _merge_by_key(original, patch, key, item_schema)


def _replace_marker(patch: list[Any]) -> bool:
    return any(_is_directive_only(item, "replace") for item in patch)


def _is_directive_only(item: Any, directive: str) -> bool:
    return isinstance(item, dict) and item.get(DIRECTIVE) == directive and len(item) == 1


def _merge_primitives(original: list[Any], patch: list[Any]) -> list[Any]:
    merged = _deduplicated(original)
    for item in patch:
        if isinstance(item, dict | list):
            raise PatchError("invalid patch format of primitive list")
        if not _contains(merged, item):
            merged.append(item)
    return merged


def _merge_by_key(
    original: list[Any], patch: list[Any], key: str, item_schema: Fragment
) -> list[Any]:
    merged = list(original)
    for item in patch:
        if item is None:
            continue
        if not isinstance(item, dict):
            raise PatchError(f"expected a map, but received a {_go_kind(item)}")
        directive = item.get(DIRECTIVE)
        if key not in item:
            if directive in ("replace", "merge") and len(item) == 1:
                continue
            raise PatchError(f"map: {_go_map(item)} does not contain declared merge key: {key}")
        if directive == "delete":
            merged = [m for m in merged if not (isinstance(m, dict) and m.get(key) == item[key])]
            continue
        if directive is not None and directive not in ("replace", "merge"):
            raise PatchError(f"unknown patch type: {directive} in map: {_go_map(item)}")
        index = _find(merged, key, item[key])
        if index is None:
            merged.append(_merge_map({}, item, item_schema))
        else:
            merged[index] = _merge_map(copy.deepcopy(merged[index]), item, item_schema)
    return merged


def _find(items: list[Any], key: str, value: Any) -> int | None:
    for index, item in enumerate(items):
        if isinstance(item, dict) and key in item and item[key] == value:
            return index
    return None


# -- $setElementOrder -----------------------------------------------------------------------


def _set_element_order(original: dict[str, Any], name: str, order: Any, fragment: Fragment) -> None:
    """Order the merged list ``name`` as the patch lists it; items only the server has keep
    their place relative to the server's own order."""
    if not isinstance(order, list):
        raise PatchError("invalid patch format of setElementOrder list")
    current = original.get(name)
    if not isinstance(current, list):
        return
    key = _merge_key(fragment)
    order_ids = [_identity(item, key) for item in order]
    if key is not None and any(i is _MISSING for i in order_ids):
        raise PatchError("invalid patch format of setElementOrder list")
    original[name] = _ordered(current, order_ids, key)


_MISSING = object()


def _identity(item: Any, key: str | None) -> Any:
    if key is None or not isinstance(item, dict):
        return item if key is None else _MISSING
    return item.get(key, _MISSING)


def _ordered(items: list[Any], order_ids: list[Any], key: str | None) -> list[Any]:
    def position(ident: Any) -> int | None:
        for index, wanted in enumerate(order_ids):
            if wanted == ident:
                return index
        return None

    listed = [(position(_identity(i, key)), n, i) for n, i in enumerate(items)]
    patch_items = sorted((p, n, i) for p, n, i in listed if p is not None)
    server_items = [(n, i) for p, n, i in listed if p is None]
    result: list[Any] = []
    p = s = 0
    while p < len(patch_items) or s < len(server_items):
        if s < len(server_items) and (
            p >= len(patch_items) or server_items[s][0] < patch_items[p][1]
        ):
            result.append(server_items[s][1])
            s += 1
        else:
            result.append(patch_items[p][2])
            p += 1
    return result


# -- cleaning a value that has no original --------------------------------------------------


def _clean(value: dict[str, Any], fragment: Fragment) -> dict[str, Any]:
    """A patch map merged into nothing: directives applied, nulls dropped."""
    return {
        k: v
        for k, v in _merge_map({}, value, fragment).items()
        if v is not None and not k.startswith("$")
    }


def _clean_item(item: Any, item_schema: Fragment) -> Any:
    if isinstance(item, dict):
        return _merge_map({}, {k: v for k, v in item.items() if k != DIRECTIVE}, item_schema)
    return item


# -- small helpers --------------------------------------------------------------------------


def _contains(items: list[Any], value: Any) -> bool:
    return any(type(i) is type(value) and i == value for i in items)


def _deduplicated(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if not _contains(out, item):
            out.append(item)
    return out


def _go_kind(value: Any) -> str:
    if isinstance(value, list):
        return "slice"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    return "float64" if isinstance(value, int | float) else "map"


def _go_map(value: dict[str, Any]) -> str:
    """A map as Go's %v prints it: map[key:value ...], keys sorted."""
    inner = " ".join(f"{k}:{_go_value(value[k])}" for k in sorted(value))
    return f"map[{inner}]"


def _go_value(value: Any) -> str:
    if isinstance(value, dict):
        return _go_map(value)
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
