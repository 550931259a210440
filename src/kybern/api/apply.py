"""Server-side apply (``application/apply-patch+yaml``): merge an applied configuration into
the live object and move field ownership, as structured-merge-diff does.

- The configuration merges into the live object: granular maps and structs key by key,
  associative lists item by item (by their list-map keys), set lists value by value, atomic
  lists and maps and scalars are replaced.
- The applier owns exactly the fields its configuration sets. Fields it owned by its previous
  apply and no longer sends are removed, unless another manager owns them too.
- A change to a field another manager owns is a conflict (409) unless ``force``, which takes
  the field over. Setting a field to the value it already has shares ownership instead.
- An object without managedFields (created before tracking) is first attributed to
  ``before-first-apply``, so its fields are protected like any manager's.

Pure: the caller passes the current time and turns :class:`Conflict` into a Status.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from kybern.api import errors
from kybern.api import fieldpath as fp
from kybern.api import managedfields as mf


@dataclass(frozen=True, slots=True)
class ConflictItem:
    manager: str  # as printed: "kubectl-client-side-apply" using apps/v1
    field: str  # .spec.replicas


class Conflict(errors.APIError):
    """Apply would change fields other managers own (409 Conflict with causes)."""

    code = 409
    reason = "Conflict"

    def __init__(self, items: list[ConflictItem]) -> None:
        self.items = items
        super().__init__(conflict_message(items))

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {i.manager}",
                "field": i.field,
            }
            for i in self.items
        ]


def conflict_message(items: list[ConflictItem]) -> str:
    if len(items) == 1:
        only = items[0]
        return f"Apply failed with 1 conflict: conflict with {only.manager}: {only.field}"
    lines: list[str] = []
    for manager in sorted({i.manager for i in items}):
        lines.append(f"conflicts with {manager}:")
        lines.extend(f"- {i.field}" for i in items if i.manager == manager)
    return f"Apply failed with {len(items)} conflicts: " + "\n".join(lines)


def check_config(config: Any) -> dict[str, Any]:
    """The applied configuration must be one object naming its apiVersion, kind and name."""
    if not isinstance(config, dict):
        raise errors.BadRequest("error decoding YAML: the apply patch must be a single object")
    meta = config.get("metadata")
    if not config.get("apiVersion") or not config.get("kind"):
        raise errors.BadRequest("apiVersion and kind must be set in the applied configuration")
    if not isinstance(meta, dict) or not meta.get("name"):
        raise errors.BadRequest("metadata.name must be set in the applied configuration")
    if meta.get("managedFields") is not None:
        raise errors.BadRequest("metadata.managedFields must be nil")
    return config


def _check_declared(config: dict[str, Any], fragment: fp.Fragment) -> None:
    unknown = fp.undeclared(config, fragment)
    if not unknown:
        return
    meta = config["metadata"]
    group_version = (
        config["apiVersion"] if "/" in config["apiVersion"] else "/" + config["apiVersion"]
    )
    object_id = (
        f"{meta.get('namespace') or ''}/{meta['name']}; {group_version}, Kind={config['kind']}"
    )
    problems = [f"{path}: field not declared in schema" for path in unknown]
    detail = problems[0] if len(problems) == 1 else "errors:\n  " + "\n  ".join(problems)
    raise errors.BadRequest(f"failed to create typed patch object ({object_id}): {detail}")


def apply(
    live: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    manager: str,
    force: bool,
    now: str,
    subresource: str = "",
) -> dict[str, Any]:
    """The object after ``manager`` applies ``config`` to ``live`` (None: create), with its
    managedFields; raises :class:`Conflict`."""
    check_config(config)
    fragment = fp.definition_for(config)
    _check_declared(config, fragment)
    ignored = mf.ignored_paths(config, subresource)
    applied = mf.strip(fp.fields_of(config, fragment), ignored)
    entries = _live_entries(live, fragment, now, subresource)
    me = mf.Entry(manager, mf.APPLY, str(config["apiVersion"]), now, applied, subresource)
    previous = [e for e in entries if e.identity() == me.identity()]
    others = [e for e in entries if e.identity() != me.identity()]
    merged: dict[str, Any] = merge(copy.deepcopy(live) if live else {}, config, fragment)
    owned = frozenset().union(*(e.fields for e in others)) | applied
    for entry in previous:
        _prune(merged, entry.fields - owned, owned, fragment)
    result = fp.compare(live or {}, merged, fragment)
    changed = mf.strip(result.changed, ignored)
    removed = mf.strip(result.removed, ignored)
    conflicts = [mf_item for entry in others for mf_item in _conflicts(entry, changed)]
    if conflicts and not force:
        raise Conflict(sorted(conflicts, key=lambda c: (c.manager, c.field)))
    for entry in others:
        entry.fields = fp.without(entry.fields - changed, removed)
    if (
        not changed
        and not removed
        and [(e.fields, e.api_version) for e in previous] == [(me.fields, me.api_version)]
    ):
        me.time = previous[0].time  # a no-op apply changes nothing, not even the time
    mf.store(merged, [*others, me])
    return merged


def _conflicts(entry: mf.Entry, changed: fp.FieldSet) -> list[ConflictItem]:
    clash = entry.fields & changed
    return [ConflictItem(entry.describe(), fp.path_string(p)) for p in sorted(clash)]


def _live_entries(
    live: dict[str, Any] | None, fragment: fp.Fragment, now: str, subresource: str
) -> list[mf.Entry]:
    if not live:
        return []
    entries = mf.entries_of(live)
    if entries:
        return entries
    fields = mf.owned_fields(live, fragment, mf.ignored_paths(live, subresource))
    version = str(live.get("apiVersion") or "")
    return [mf.Entry(mf.BEFORE_FIRST_APPLY, mf.UPDATE, version, now, fields)]


# -- merging ----------------------------------------------------------------------------------


def merge(live: Any, config: Any, fragment: fp.Fragment) -> Any:
    """``config`` merged over ``live`` (``live`` may be changed in place)."""
    if isinstance(live, dict) and isinstance(config, dict) and not fp.atomic_map(fragment):
        for key, value in config.items():
            if value is None:
                live.pop(key, None)
            elif key in live:
                live[key] = merge(live[key], value, fp.child(fragment, key))
            else:
                live[key] = _without_nulls(copy.deepcopy(value))
        return live
    if isinstance(live, list) and isinstance(config, list):
        kind, keys = fp.list_keys(fragment)
        if kind != "atomic":
            return _merge_list(live, config, kind, keys, fp.item_schema(fragment))
    return _without_nulls(copy.deepcopy(config))


def _merge_list(
    live: list[Any], config: list[Any], kind: str, keys: tuple[str, ...], inner: fp.Fragment
) -> list[Any]:
    live_steps = [fp.item_step(i, kind, keys, n, strict=False) for n, i in enumerate(live)]
    config_steps = [fp.item_step(i, kind, keys, n, strict=True) for n, i in enumerate(config)]
    live_items = dict(zip(live_steps, live, strict=True))
    config_items = dict(zip(config_steps, config, strict=True))

    def merged(step: str) -> Any:
        if kind == "map" and step in live_items:
            return merge(live_items[step], config_items[step], inner)
        return _without_nulls(copy.deepcopy(config_items[step]))

    out: list[Any] = []
    emitted: set[str] = set()
    cursor = 0
    for step, item in zip(live_steps, live, strict=True):
        if step not in config_items:
            out.append(item)
            continue
        if step in emitted:
            continue
        # Shared items follow the configuration's order; its new items come before them.
        while cursor < len(config_steps):
            next_step = config_steps[cursor]
            cursor += 1
            if next_step in emitted:
                continue
            out.append(merged(next_step))
            emitted.add(next_step)
            if next_step == step:
                break
    for step in config_steps:
        if step not in emitted:
            out.append(merged(step))
            emitted.add(step)
    return out


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


# -- pruning ----------------------------------------------------------------------------------


def _prune(
    obj: dict[str, Any], candidates: fp.FieldSet, owned: fp.FieldSet, fragment: fp.Fragment
) -> None:
    """Remove what the applier no longer applies and nobody else owns."""
    for path in sorted(candidates, key=len):  # parents first: children go with them
        if any(len(q) > len(path) and q[: len(path)] == path for q in owned):
            continue  # someone still owns a field inside it
        if _remove(obj, path, fragment):
            _drop_empty_parents(obj, path[:-1], owned, fragment)


def _locate(obj: Any, path: fp.Path, fragment: fp.Fragment) -> tuple[Any, fp.Fragment] | None:
    node, frag = obj, fragment
    for step in path:
        found = _child(node, step, frag)
        if found is None:
            return None
        node, frag = found
    return node, frag


def _child(node: Any, step: str, frag: fp.Fragment) -> tuple[Any, fp.Fragment] | None:
    if step.startswith("f:"):
        if isinstance(node, dict) and step[2:] in node:
            return node[step[2:]], fp.child(frag, step[2:])
        return None
    if isinstance(node, list):
        index = _index(node, step, frag)
        if index is not None:
            return node[index], fp.item_schema(frag)
    return None


def _index(items: list[Any], step: str, frag: fp.Fragment) -> int | None:
    kind, keys = fp.list_keys(frag)
    for n, item in enumerate(items):
        if fp.item_step(item, kind, keys, n, strict=False) == step:
            return n
    return None


def _remove(obj: dict[str, Any], path: fp.Path, fragment: fp.Fragment) -> bool:
    if not path or (path[0] in ("f:metadata", "f:apiVersion", "f:kind") and len(path) == 1):
        return False
    found = _locate(obj, path[:-1], fragment)
    if found is None:
        return False
    parent, frag = found
    step = path[-1]
    if step.startswith("f:") and isinstance(parent, dict) and step[2:] in parent:
        del parent[step[2:]]
        return True
    if isinstance(parent, list):
        index = _index(parent, step, frag)
        if index is not None:
            del parent[index]
            return True
    return False


def _drop_empty_parents(
    obj: dict[str, Any], path: fp.Path, owned: fp.FieldSet, fragment: fp.Fragment
) -> None:
    while len(path) > 1 or (path and path[0] not in ("f:metadata",)):
        found = _locate(obj, path, fragment)
        if found is None or not isinstance(found[0], dict | list) or found[0] or path in owned:
            return
        _remove(obj, path, fragment)
        path = path[:-1]
