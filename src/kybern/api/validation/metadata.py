"""ObjectMeta validation (apimachinery's ValidateObjectMetaAccessor / ...Update).

On create: name or generateName (each under the kind's name rule), namespace present iff the
kind is namespaced, labels, annotations (keys and the 256 KiB total), ownerReferences,
finalizers, generation. On update: name, namespace, uid, creationTimestamp, deletionTimestamp
and deletionGracePeriodSeconds are immutable ("field is immutable"), generation may not go
down, no finalizer may be added once deletion started.

Like Kubernetes' rest.BeforeUpdate, an empty uid or creationTimestamp in the new object counts
as "unchanged" (Kubernetes copies them from the old object before validating); the
resourceVersion precondition is the API server's business, not checked here.
"""

from __future__ import annotations

from typing import Any

from kybern.api import errors, kinds
from kybern.api.validation import common, names

TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024
_PATH = "metadata"


def validate(info: kinds.ResourceInfo, obj: common.Obj) -> common.Causes:
    """Every ObjectMeta rule that applies to a create (and to the new object of an update)."""
    meta = common.as_dict(obj.get("metadata"))
    return [
        *validate_name(info.kind, meta),
        *_namespace(info, meta),
        *common.non_negative(meta, "generation", _PATH),
        *common.labels(meta.get("labels"), "metadata.labels"),
        *validate_annotations(meta.get("annotations"), "metadata.annotations"),
        *owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"),
        *finalizers(meta.get("finalizers"), "metadata.finalizers"),
    ]


def validate_name(kind: str, meta: common.Obj, path: str = _PATH) -> common.Causes:
    name, generate_name = meta.get("name") or "", meta.get("generateName") or ""
    out: common.Causes = []
    if generate_name:
        msgs = names.validate_name(kind, generate_name, prefix=True)
        out += common.messages(f"{path}.generateName", generate_name, msgs)
    if not name:
        if not generate_name:
            out.append(common.required(f"{path}.name", "name or generateName is required"))
        return out
    return out + common.messages(f"{path}.name", name, names.validate_name(kind, name))


def _namespace(info: kinds.ResourceInfo, meta: common.Obj) -> common.Causes:
    namespace = meta.get("namespace") or ""
    field = f"{_PATH}.namespace"
    if not info.namespaced:
        return [errors.forbidden(field, "not allowed on this type")] if namespace else []
    if not namespace:
        return [common.required(field)]
    return common.messages(field, namespace, names.is_dns1123_label(namespace))


def validate_annotations(value: Any, path: str) -> common.Causes:
    out: common.Causes = []
    total = 0
    for k, v in common.as_dict(value).items():
        out += common.messages(path, k, names.is_qualified_name(k.lower()))
        total += len(k.encode()) + len(str(v or "").encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        out.append(errors.too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return out


def owner_references(value: Any, path: str) -> common.Causes:
    out: common.Causes = []
    controllers = []
    for i, ref in common.dicts(value):
        ref_path = common.index(path, i)
        out += _owner_reference(ref, ref_path)
        if ref.get("controller") is True:
            controllers.append(ref)
    if len(controllers) > 1:
        owners = ", ".join(f"{r.get('kind')}/{r.get('name')}" for r in controllers)
        detail = (
            "Only one reference can have Controller set to true. "
            f'Found "true" in references for {owners}'
        )
        out.append(common.invalid(path, value, detail))
    return out


def _owner_reference(ref: common.Obj, path: str) -> common.Causes:
    out: common.Causes = []
    api_version = ref.get("apiVersion") or ""
    if not api_version.rpartition("/")[2]:
        out.append(common.invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
    for field in ("kind", "name", "uid"):
        if not ref.get(field):
            detail = f"{field} must not be empty"
            out.append(common.invalid(f"{path}.{field}", ref.get(field) or "", detail))
    return out


def finalizers(value: Any, path: str) -> common.Causes:
    items = [f for f in common.as_list(value) if isinstance(f, str)]
    out: common.Causes = []
    for finalizer in items:
        out += common.messages(path, finalizer, names.is_qualified_name(finalizer))
    if "orphan" in items and "foregroundDeletion" in items:
        detail = "finalizer orphan and foregroundDeletion cannot be both set"
        out.append(common.invalid(path, items, detail))
    return out


def validate_update(new: common.Obj, old: common.Obj) -> common.Causes:
    """The update-only rules: immutable identity fields, generation, finalizers in deletion."""
    new_meta = common.as_dict(new.get("metadata"))
    old_meta = common.as_dict(old.get("metadata"))
    out: common.Causes = []
    for field in ("name", "namespace"):
        out += _immutable(new_meta, old_meta, field)
    for field in ("uid", "creationTimestamp"):
        if new_meta.get(field):
            out += _immutable(new_meta, old_meta, field)
    if old_meta.get("deletionTimestamp") is not None:
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if new_meta.get(field) is not None:
                out += _immutable(new_meta, old_meta, field)
        out += _no_new_finalizers(new_meta, old_meta)
    new_gen, old_gen = new_meta.get("generation"), old_meta.get("generation")
    if isinstance(new_gen, int) and isinstance(old_gen, int) and new_gen < old_gen:
        out.append(common.invalid(f"{_PATH}.generation", new_gen, "must not be decremented"))
    return out


def _immutable(new_meta: common.Obj, old_meta: common.Obj, field: str) -> common.Causes:
    new_value, old_value = new_meta.get(field) or "", old_meta.get(field) or ""
    return common.immutable(new_value, old_value, f"{_PATH}.{field}")


def _no_new_finalizers(new_meta: common.Obj, old_meta: common.Obj) -> common.Causes:
    old = set(common.as_list(old_meta.get("finalizers")))
    extra = [f for f in common.as_list(new_meta.get("finalizers")) if f not in old]
    if not extra:
        return []
    shown = "[]string{" + ", ".join(f'"{f}"' for f in sorted(extra)) + "}"
    detail = (
        "no new finalizers can be added if the object is being deleted, "
        f"found new finalizers {shown}"
    )
    return [errors.forbidden(f"{_PATH}.finalizers", detail)]
