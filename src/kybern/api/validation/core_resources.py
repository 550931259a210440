"""Rules for core/v1 storage and quota kinds: PersistentVolume, PersistentVolumeClaim,
LimitRange, ResourceQuota."""

from __future__ import annotations

from typing import Any

from kybern.api import errors, quantity, schema
from kybern.api.validation import common, names

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
RECLAIM_POLICIES = ("Delete", "Recycle", "Retain")
VOLUME_MODES = ("Block", "Filesystem")
QUOTA_SCOPES = (
    "BestEffort",
    "CrossNamespacePodAffinity",
    "NotBestEffort",
    "NotTerminating",
    "PriorityClass",
    "Terminating",
)
_PV_NOT_SOURCES = frozenset(
    {
        "accessModes",
        "capacity",
        "claimRef",
        "mountOptions",
        "nodeAffinity",
        "persistentVolumeReclaimPolicy",
        "storageClassName",
        "volumeAttributesClassName",
        "volumeMode",
    }
)
PVC_UPDATE_DETAIL = (
    "spec is immutable after creation except resources.requests and volumeAttributesClassName "
    "for bound claims"
)


def _access_modes(spec: common.Obj, detail: str = "") -> common.Causes:
    modes = common.as_list(spec.get("accessModes"))
    if not modes:
        return [common.required("spec.accessModes", detail)]
    return [
        errors.not_supported(f"spec.accessModes[{i}]", m, ACCESS_MODES)
        for i, m in enumerate(modes)
        if m not in ACCESS_MODES
    ]


def pv_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    capacity = common.as_dict(spec.get("capacity"))
    out: common.Causes = []
    if not capacity:
        out.append(common.required("spec.capacity"))
    elif set(capacity) != {"storage"}:
        out.append(errors.not_supported("spec.capacity", capacity, ["storage"]))
    out += common.non_negative_quantities(capacity, "spec.capacity")
    out += _access_modes(spec)
    out += common.enum(spec, "persistentVolumeReclaimPolicy", "spec", RECLAIM_POLICIES)
    out += common.enum(spec, "volumeMode", "spec", VOLUME_MODES)
    sources = [k for k in _pv_sources() if spec.get(k) is not None]
    if not sources:
        out.append(common.required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        out.append(
            errors.forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type")
        )
    return out


def _pv_sources() -> list[str]:
    props = schema.definition("io.k8s.api.core.v1.PersistentVolumeSpec")["properties"]
    return [k for k in props if k not in _PV_NOT_SOURCES]


def pvc_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    out = _access_modes(spec, "at least 1 access mode is required")
    requests = common.as_dict(common.as_dict(spec.get("resources")).get("requests"))
    storage = requests.get("storage")
    if storage is None:
        out.append(common.required("spec.resources[storage]"))
    elif quantity.is_valid(storage) and quantity.parse(storage) <= 0:
        out.append(common.invalid("spec.resources[storage]", storage, "must be greater than zero"))
    out += common.enum(spec, "volumeMode", "spec", VOLUME_MODES)
    return out


def pvc_update(new: common.Obj, old: common.Obj) -> common.Causes:
    new_spec, old_spec = (
        dict(common.as_dict(new.get("spec"))),
        dict(common.as_dict(old.get("spec"))),
    )
    for spec in (new_spec, old_spec):
        spec.pop("resources", None)
        spec.pop("volumeAttributesClassName", None)
    if not old_spec.get("volumeName"):
        new_spec.pop("volumeName", None)
        old_spec.pop("volumeName", None)
    return [] if new_spec == old_spec else [errors.forbidden("spec", PVC_UPDATE_DETAIL)]


def limit_range_create(obj: common.Obj) -> common.Causes:
    out: common.Causes = []
    limits = common.as_dict(obj.get("spec")).get("limits")
    for i, item in common.dicts(limits):
        out += _limit_item(item, f"spec.limits[{i}]")
    return out


def _limit_item(item: common.Obj, path: str) -> common.Causes:
    out = [] if item.get("type") else [common.required(f"{path}.type")]
    values = {k: common.as_dict(item.get(k)) for k in ("min", "max", "default", "defaultRequest")}
    for field, value in values.items():
        out += common.non_negative_quantities(value, f"{path}.{field}")
    if item.get("type") == "Pod":
        for field in ("default", "defaultRequest"):
            if values[field]:
                detail = "may not be specified when `type` is 'Pod'"
                out.append(errors.forbidden(f"{path}.{field}", detail))
    checks = (
        ("min", "max", "min value {a} is greater than max value {b}"),
        ("default", "max", "default value {a} is greater than max value {b}"),
        ("min", "default", "min value {a} is greater than default value {b}"),
        (
            "defaultRequest",
            "default",
            "default request value {a} is greater than default limit value {b}",
        ),
    )
    for low, high, template in checks:
        out += _ordered(values[low], values[high], f"{path}.{low}", template)
    return out


def _ordered(low: common.Obj, high: common.Obj, path: str, template: str) -> common.Causes:
    out: common.Causes = []
    for name, low_value in low.items():
        high_value = high.get(name)
        if high_value is None or not (
            quantity.is_valid(low_value) and quantity.is_valid(high_value)
        ):
            continue
        if quantity.parse(low_value) > quantity.parse(high_value):
            detail = template.format(a=low_value, b=high_value)
            out.append(common.invalid(common.key(path, name), low_value, detail))
    return out


def resource_quota_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    out = _quota_values(spec.get("hard"), "spec.hard")
    for i, scope in enumerate(common.as_list(spec.get("scopes"))):
        if scope not in QUOTA_SCOPES:
            out.append(errors.not_supported(f"spec.scopes[{i}]", scope, list(QUOTA_SCOPES)))
    return out


def _quota_values(value: Any, path: str) -> common.Causes:
    out: common.Causes = []
    for name in common.as_dict(value):
        out += common.messages(common.key(path, name), name, names.is_qualified_name(name))
    return out + common.non_negative_quantities(value, path)


def resource_quota_status(new: common.Obj, old: common.Obj) -> common.Causes:
    status = common.as_dict(new.get("status"))
    return _quota_values(status.get("hard"), "status.hard") + _quota_values(
        status.get("used"), "status.used"
    )


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.core.v1.PersistentVolume": common.KindRules(create=pv_create),
    "io.k8s.api.core.v1.PersistentVolumeClaim": common.KindRules(
        create=pvc_create, update=pvc_update
    ),
    "io.k8s.api.core.v1.LimitRange": common.KindRules(create=limit_range_create),
    "io.k8s.api.core.v1.ResourceQuota": common.KindRules(
        create=resource_quota_create, status=resource_quota_status
    ),
}
