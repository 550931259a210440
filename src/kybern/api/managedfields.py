"""Field ownership: ``metadata.managedFields``.

Each entry names a manager, its operation (``Apply`` or ``Update``), the API version it
used, when it last changed the object, the subresource it wrote through, and the fields it
owns as a FieldsV1 field set (kybern.api.fieldpath).

:func:`update` is the registry's hook on every create, update and patch: the request's field
manager (``fieldManager``, else the User-Agent's product, as Kubernetes does) takes the fields
the write added or changed, every manager loses the fields the write removed. Server-side
apply (kybern.api.apply) uses the same entries.
"""

from __future__ import annotations

import datetime
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

from kybern.api import errors
from kybern.api import fieldpath as fp

Path = fp.Path
FieldSet = fp.FieldSet
Fragment = fp.Fragment

MAX_MANAGER_LENGTH = 128
FIELDS_TYPE = "FieldsV1"
APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT_CHANGES = "ancient-changes"
MAX_UPDATE_MANAGERS = 10
# The server's own bookkeeping: never owned by a manager (Kubernetes' stripMeta set).
STRIPPED: FieldSet = frozenset(
    {
        ("f:apiVersion",),
        ("f:kind",),
        ("f:metadata",),
        ("f:metadata", "f:name"),
        ("f:metadata", "f:namespace"),
        ("f:metadata", "f:creationTimestamp"),
        ("f:metadata", "f:selfLink"),
        ("f:metadata", "f:uid"),
        ("f:metadata", "f:generation"),
        ("f:metadata", "f:managedFields"),
        ("f:metadata", "f:resourceVersion"),
        ("f:metadata", "f:deletionTimestamp"),
        ("f:metadata", "f:deletionGracePeriodSeconds"),
    }
)
# -- manager names --------------------------------------------------------------------------


def manager_name(field_manager: str | None, user_agent: str | None) -> str:
    """The request's manager: ``fieldManager`` when given, else the User-Agent up to its first
    ``/`` with unprintable characters dropped, at most 128 bytes (Kubernetes' rule)."""
    if field_manager:
        if len(field_manager.encode()) > MAX_MANAGER_LENGTH:
            raise errors.BadRequest(
                f"fieldManager: Too long: may not be more than {MAX_MANAGER_LENGTH} bytes"
            )
        if not all(_printable(c) for c in field_manager):
            raise errors.BadRequest(
                f"fieldManager: Invalid value: {field_manager!r}: must only contain printable characters"
            )
        return field_manager
    out = ""
    for char in (user_agent or "").split("/", 1)[0]:
        if not _printable(char):
            continue
        if len((out + char).encode()) > MAX_MANAGER_LENGTH:
            break
        out += char
    return out


def _printable(char: str) -> bool:
    return char == " " or unicodedata.category(char)[0] not in ("C", "Z")


# -- managedFields entries --------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str | None
    fields: FieldSet
    subresource: str = ""

    def identity(self) -> tuple[str, str, str, str]:
        version = "" if self.operation == APPLY else self.api_version
        return (self.manager, self.operation, version, self.subresource)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
        }
        if self.time:
            out["time"] = self.time
        out["fieldsType"] = FIELDS_TYPE
        out["fieldsV1"] = fp.encode(self.fields)
        if self.subresource:
            out["subresource"] = self.subresource
        return out

    def describe(self) -> str:
        """How a conflict names the manager (Kubernetes' printManager)."""
        text = f'"{self.manager}"'
        if self.subresource:
            text += f' with subresource "{self.subresource}"'
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


def parse_entries(raw: Any) -> list[Entry]:
    """Decode metadata.managedFields; BadRequest when any entry is malformed."""
    if not isinstance(raw, list):
        raise errors.BadRequest("metadata.managedFields must be a list")
    entries: list[Entry] = []
    seen: set[tuple[str, str, str, str]] = set()
    for item in raw:
        entry = _parse_entry(item)
        if entry.identity() in seen:
            raise errors.BadRequest(
                f"metadata.managedFields: duplicate entry for {entry.manager!r}"
            )
        seen.add(entry.identity())
        entries.append(entry)
    return entries


def _parse_entry(item: Any) -> Entry:
    if not isinstance(item, dict):
        raise errors.BadRequest("metadata.managedFields: each entry must be an object")
    operation = item.get("operation")
    if operation not in (APPLY, UPDATE):
        raise errors.BadRequest(f"metadata.managedFields: invalid operation {operation!r}")
    if item.get("fieldsType", FIELDS_TYPE) != FIELDS_TYPE:
        raise errors.BadRequest(
            f"metadata.managedFields: invalid fieldsType {item.get('fieldsType')!r}"
        )
    for name in ("manager", "apiVersion", "time", "subresource"):
        if item.get(name) is not None and not isinstance(item[name], str):
            raise errors.BadRequest(f"metadata.managedFields: {name} must be a string")
    return Entry(
        manager=item.get("manager") or "",
        operation=operation,
        api_version=item.get("apiVersion") or "",
        time=_rfc3339(item["time"]) if item.get("time") else None,
        fields=_decoded(item.get("fieldsV1") or {}),
        subresource=item.get("subresource") or "",
    )


# Every write parses the object's entries again, and a few field sets (one per manager and
# kind, mostly) recur across thousands of objects: decoded sets are kept by their JSON text.
# FieldSets are frozen, so sharing one between entries is safe.
_DECODED: dict[bytes, FieldSet] = {}
_DECODED_MAX = 4096


def _decoded(tree: Any) -> FieldSet:
    try:
        text = orjson.dumps(tree)
    except TypeError:
        return fp.decode(tree)  # not JSON: decode reports it
    fields = _DECODED.get(text)
    if fields is None:
        fields = fp.decode(tree)
        if len(_DECODED) >= _DECODED_MAX:
            _DECODED.clear()
        _DECODED[text] = fields
    return fields


def _rfc3339(value: str) -> str:
    """A client's timestamp as Kubernetes writes it (clients re-serialise it, e.g. the Python
    client sends "+00:00" for "Z")."""
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entries_of(obj: dict[str, Any]) -> list[Entry]:
    """The live object's entries (an unreadable stored value counts as none)."""
    raw = (obj.get("metadata") or {}).get("managedFields")
    if not raw:
        return []
    try:
        return parse_entries(raw)
    except errors.BadRequest:
        return []


def store(obj: dict[str, Any], entries: list[Entry]) -> None:
    meta = obj.setdefault("metadata", {})
    kept = sorted((e for e in entries if e.fields), key=_order)
    if kept:
        meta["managedFields"] = [e.to_json() for e in kept]
    else:
        meta.pop("managedFields", None)


def _order(entry: Entry) -> tuple[str, str, str, str, str]:
    """Kubernetes' order: operation, time, manager, apiVersion, subresource."""
    time = entry.time or ""
    return (entry.operation, time, entry.manager, entry.api_version, entry.subresource)


def ignored_paths(obj: dict[str, Any], subresource: str) -> FieldSet:
    """Paths a write through this endpoint never owns: server bookkeeping, and status on the
    main resource (or everything but status on /status)."""
    if subresource == "status":
        return STRIPPED | frozenset(("f:" + k,) for k in obj if k != "status")
    return STRIPPED | {("f:status",)}


def strip(fields: FieldSet, ignored: FieldSet) -> FieldSet:
    """``fields`` without the ignored paths and what lies below them (below ``metadata``
    only the ignored metadata fields themselves)."""
    return fp.without(fields, ignored - {("f:metadata",)}) - ignored


def owned_fields(obj: dict[str, Any], fragment: Fragment, ignored: FieldSet) -> FieldSet:
    return strip(fp.fields_of(obj, fragment, empty_maps=True), ignored)


# -- the registry's hook ---------------------------------------------------------------------


def update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    *,
    manager: str | None,
    now: str,
    subresource: str = "",
) -> None:
    """Record a create/update/patch by ``manager`` in ``new``'s managedFields (in place).

    The entries come from ``new`` when the client sent valid ones (``[{}]`` resets them),
    else from ``old``. ``manager`` None (a write the server makes itself) only carries the
    entries over."""
    entries = _incoming_entries(old, new, subresource)
    if manager is None:
        store(new, entries)
        return
    fragment = fp.definition_for(new)
    ignored = ignored_paths(new, subresource)
    result = fp.compare(old or {}, new, fragment)
    changed = strip(result.changed, ignored)
    removed = strip(result.removed, ignored)
    for entry in entries:
        entry.fields = fp.without(entry.fields, removed)
        if (
            entry.manager != manager
            or entry.operation != UPDATE
            or entry.subresource != subresource
        ):
            entry.fields = fp.without(entry.fields, changed)
    if changed:
        api_version = str(new.get("apiVersion") or "")
        mine = Entry(manager, UPDATE, api_version, now, changed, subresource)
        for previous in [e for e in entries if e.identity() == mine.identity()]:
            mine.fields = mine.fields | previous.fields
            entries.remove(previous)
        entries.append(mine)
    store(new, _capped(entries))


def _capped(entries: list[Entry]) -> list[Entry]:
    """At most MAX_UPDATE_MANAGERS Update entries: the oldest are merged into one
    ``ancient-changes`` entry, as Kubernetes does, so the list cannot grow without bound."""
    updates = sorted(
        (e for e in entries if e.operation == UPDATE and e.manager != ANCIENT_CHANGES),
        key=lambda e: e.time or "",
    )
    bucket = next((e for e in entries if e.identity()[:2] == (ANCIENT_CHANGES, UPDATE)), None)
    excess = len(updates) + (bucket is not None) - MAX_UPDATE_MANAGERS
    if excess <= 0:
        return entries
    if bucket is None:
        excess += 1
        bucket = Entry(
            ANCIENT_CHANGES, UPDATE, updates[0].api_version, updates[0].time, frozenset()
        )
        entries = [*entries, bucket]
    for oldest in updates[:excess]:
        bucket.fields = bucket.fields | oldest.fields
        bucket.time = max(bucket.time or "", oldest.time or "") or None
        entries = [e for e in entries if e is not oldest]
    return entries


def _incoming_entries(
    old: dict[str, Any] | None, new: dict[str, Any], subresource: str
) -> list[Entry]:
    raw = (new.get("metadata") or {}).get("managedFields")
    if raw == [{}]:
        return []
    if raw and not subresource:
        try:
            return parse_entries(raw)
        except errors.BadRequest:
            pass
    return entries_of(old) if old else []
