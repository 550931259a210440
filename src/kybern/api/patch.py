"""JSON patch (RFC 6902) and JSON merge patch (RFC 7386) on plain JSON-compatible values.

Both functions are pure: they return a new document and never mutate their inputs.

How the API server answers failures (Kubernetes v1.32, ``handlers/patch.go``):

- a JSON patch body that is not an array of objects: **400 BadRequest** with Go's decode
  message (``json: cannot unmarshal object into Go value of type jsonpatch.Patch``);
  raised here as :class:`kybern.api.errors.BadRequest`;
- more than :data:`MAX_JSON_PATCH_OPERATIONS` operations: **413**
  (:class:`PatchTooLarge`);
- a patch that does not apply (failed ``test``, missing path, unknown ``op``, bad index):
  **422 Invalid** whose message is always ``the server rejected our request due to an
  error in our request`` with empty ``details.causes`` (kubectl prints "The request is
  invalid: ..."); raised as :class:`PatchApplyError`, whose ``str()`` keeps the detail
  for logs. (Before ~v1.16 this was a 500.)
- a merge patch that is not a JSON object or array: **400** ``Invalid JSON Patch``.

Merge patch follows evanphx/json-patch (what Kubernetes uses): ``null`` deletes, objects
merge recursively, anything else replaces; values added where nothing was are stripped of
their ``null`` members; an array patch replaces the whole document.

Deliberate deviations from Kubernetes' json-patch library, towards RFC 6902: negative array
indices are rejected, and ``test`` on a missing location fails even against ``null``.

Strategic merge patch and server-side apply live in their own modules; they register in
:data:`APPLIERS` under their media type, and :func:`apply` dispatches by media type.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kybern.api import errors, strategic

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
MAX_JSON_PATCH_OPERATIONS = 10000


class PatchApplyError(errors.APIError):
    """A JSON patch that does not apply; the apiserver answers 422 Invalid."""

    code = 422
    reason = "Invalid"
    status_message = "the server rejected our request due to an error in our request"


class PatchTooLarge(errors.APIError):
    """Too many JSON patch operations; the apiserver answers 413 RequestEntityTooLarge."""

    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedPatchType(errors.APIError):
    """A PATCH with a media type kybern cannot apply; the apiserver answers 415."""

    code = 415
    reason = "UnsupportedMediaType"


# --- JSON pointer (RFC 6901) --------------------------------------------------------------


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of a JSON pointer (``""`` is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchApplyError(f"invalid JSON pointer {pointer!r}: must start with '/'")
    return [_unescape_token(token, pointer) for token in pointer[1:].split("/")]


def _unescape_token(token: str, pointer: str) -> str:
    index = token.find("~")
    while index != -1:
        if token[index + 1 : index + 2] not in ("0", "1"):
            raise PatchApplyError(f"invalid JSON pointer {pointer!r}: bad escape in {token!r}")
        index = token.find("~", index + 2)
    return token.replace("~1", "/").replace("~0", "~")


def _array_index(token: str, size: int, *, allow_end: bool, pointer: str) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        raise PatchApplyError(f"unable to access invalid index: {token} (in {pointer})")
    index = int(token)
    if index > size or (index == size and not allow_end):
        raise PatchApplyError(f"unable to access invalid index: {index} (in {pointer})")
    return index


def _parent(doc: Any, tokens: list[str], pointer: str, op: str) -> Any:
    """The container holding the last token of ``tokens``."""
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list):
            current = current[_array_index(token, len(current), allow_end=False, pointer=pointer)]
        else:
            raise PatchApplyError(f"{op} operation does not apply: doc is missing path: {pointer}")
    return current


def _get(doc: Any, pointer: str, op: str) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return doc
    container, last = _parent(doc, tokens, pointer, op), tokens[-1]
    if isinstance(container, dict) and last in container:
        return container[last]
    if isinstance(container, list):
        return container[_array_index(last, len(container), allow_end=False, pointer=pointer)]
    raise PatchApplyError(f"{op} operation does not apply: doc is missing key: {pointer}")


# --- RFC 6902 operations (each returns the new document root) -----------------------------


def _add(doc: Any, pointer: str, value: Any, op: str = "add") -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    container, last = _parent(doc, tokens, pointer, op), tokens[-1]
    if isinstance(container, dict):
        container[last] = value
    elif isinstance(container, list):
        container.insert(_array_index(last, len(container), allow_end=True, pointer=pointer), value)
    else:
        raise PatchApplyError(f"{op} operation does not apply: doc is missing path: {pointer}")
    return doc


def _remove(doc: Any, pointer: str, op: str = "remove") -> tuple[Any, Any]:
    """Remove the value at ``pointer``; returns (new root, removed value)."""
    tokens = parse_pointer(pointer)
    if not tokens:
        return None, doc
    container, last = _parent(doc, tokens, pointer, op), tokens[-1]
    if isinstance(container, dict) and last in container:
        return doc, container.pop(last)
    if isinstance(container, list):
        index = _array_index(last, len(container), allow_end=False, pointer=pointer)
        return doc, container.pop(index)
    raise PatchApplyError(f"{op} operation does not apply: doc is missing key: {pointer}")


def _replace(doc: Any, pointer: str, value: Any) -> Any:
    tokens = parse_pointer(pointer)
    if not tokens:
        return value
    container, last = _parent(doc, tokens, pointer, "replace"), tokens[-1]
    if isinstance(container, dict) and last in container:
        container[last] = value
    elif isinstance(container, list):
        container[_array_index(last, len(container), allow_end=False, pointer=pointer)] = value
    else:
        raise PatchApplyError(f"replace operation does not apply: doc is missing key: {pointer}")
    return doc


def _move(doc: Any, source: str, pointer: str) -> Any:
    if pointer != source and pointer.startswith(source + "/"):
        raise PatchApplyError(f"move operation does not apply: {source} is a prefix of {pointer}")
    doc, value = _remove(doc, source, "move")
    return _add(doc, pointer, value, "move")


def _test(doc: Any, pointer: str, value: Any) -> None:
    try:
        current = _get(doc, pointer, "test")
    except PatchApplyError:
        raise PatchApplyError(f"testing value {pointer} failed") from None
    if not json_equal(current, value):
        raise PatchApplyError(f"testing value {pointer} failed")


def json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, but booleans are not numbers."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(json_equal, left, right))
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    return type(left) is type(right) and bool(left == right)


def _field(operation: dict[str, Any], name: str) -> Any:
    if name not in operation:
        kind = operation.get("op")
        raise PatchApplyError(f"{kind} operation is missing {name!r}")
    return operation[name]


def _pointer_field(operation: dict[str, Any], name: str) -> str:
    value = _field(operation, name)
    if not isinstance(value, str):
        raise PatchApplyError(f"{operation.get('op')} operation has a non-string {name!r}")
    return value


def _apply_operation(doc: Any, operation: dict[str, Any]) -> Any:
    kind = operation.get("op")
    if kind == "test":
        _test(doc, _pointer_field(operation, "path"), _field(operation, "value"))
        return doc
    if kind == "add":
        value = copy.deepcopy(_field(operation, "value"))
        return _add(doc, _pointer_field(operation, "path"), value)
    if kind == "remove":
        return _remove(doc, _pointer_field(operation, "path"))[0]
    if kind == "replace":
        value = copy.deepcopy(_field(operation, "value"))
        return _replace(doc, _pointer_field(operation, "path"), value)
    if kind == "move":
        return _move(doc, _pointer_field(operation, "from"), _pointer_field(operation, "path"))
    if kind == "copy":
        value = copy.deepcopy(_get(doc, _pointer_field(operation, "from"), "copy"))
        return _add(doc, _pointer_field(operation, "path"), value, "copy")
    raise PatchApplyError(f"Unexpected kind: {kind}")


def _go_json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "string" if isinstance(value, str) else "null"


def check_json_patch(ops: Any) -> list[dict[str, Any]]:
    """Validate the shape of a decoded JSON patch body (BadRequest / PatchTooLarge)."""
    if not isinstance(ops, list):
        found = _go_json_type(ops)
        raise errors.BadRequest(
            f"json: cannot unmarshal {found} into Go value of type jsonpatch.Patch"
        )
    for operation in ops:
        if not isinstance(operation, dict):
            found = _go_json_type(operation)
            raise errors.BadRequest(
                f"json: cannot unmarshal {found} into Go value of type jsonpatch.Operation"
            )
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchTooLarge(
            f"The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, "
            f"got {len(ops)}"
        )
    return ops


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 patch (a decoded JSON array) to ``doc``; returns a new document."""
    result = copy.deepcopy(doc)
    for operation in check_json_patch(ops):
        result = _apply_operation(result, operation)
    return result


# --- RFC 7386 merge patch ----------------------------------------------------------------


def _pruned(value: Any) -> Any:
    """A copy of ``value`` without null object members (evanphx's pruneNulls)."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _merge_into(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif target.get(key) is None:
            target[key] = _pruned(value)
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge_into(target[key], value)
        elif isinstance(target[key], dict):
            target[key] = copy.deepcopy(value)
        else:
            target[key] = _pruned(value)


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch; returns a new document."""
    if isinstance(patch, list):
        return _pruned(patch)
    if not isinstance(patch, dict):
        raise errors.BadRequest("Invalid JSON Patch")
    if not isinstance(doc, dict):
        return _pruned(patch)
    result = copy.deepcopy(doc)
    _merge_into(result, patch)
    return result


# --- dispatch by media type --------------------------------------------------------------

Applier = Callable[[Any, Any], Any]

# Strategic merge and apply patches register themselves here when they exist.
APPLIERS: dict[str, Applier] = {
    JSON_PATCH: apply_json_patch,
    MERGE_PATCH: apply_merge_patch,
    STRATEGIC_MERGE_PATCH: strategic.apply_strategic_merge_patch,
}


def apply(media_type: str, doc: Any, patch: Any) -> Any:
    """Apply a decoded patch body of the given media type (parameters ignored)."""
    applier = APPLIERS.get(media_type.split(";", 1)[0].strip().lower())
    if applier is None:
        accepted = ", ".join(APPLIERS)
        raise UnsupportedPatchType(
            "the body of the request was in an unknown format - "
            f"accepted media types include: {accepted}"
        )
    return applier(doc, patch)
