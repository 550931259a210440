"""Rules for storage.k8s.io/v1 StorageClass: a provisioner, known policies, and the fields
Kubernetes freezes after create (provisioner, parameters, reclaimPolicy, volumeBindingMode).
"""

from __future__ import annotations

from kybern.api import errors
from kybern.api.validation import common, names

RECLAIM_POLICIES = ("Delete", "Retain")
BINDING_MODES = ("Immediate", "WaitForFirstConsumer")
PROVISIONER_MAX = 63


def storage_class_create(obj: common.Obj) -> common.Causes:
    provisioner = obj.get("provisioner") or ""
    out: common.Causes = []
    if not provisioner:
        out.append(common.required("provisioner"))
    elif len(provisioner) > PROVISIONER_MAX:
        out.append(errors.too_long("provisioner", provisioner, PROVISIONER_MAX))
    else:
        out += common.messages(
            "provisioner", provisioner, names.is_qualified_name(provisioner.lower())
        )
    out += common.enum(obj, "reclaimPolicy", "", RECLAIM_POLICIES)
    return out + common.enum(obj, "volumeBindingMode", "", BINDING_MODES)


def storage_class_update(new: common.Obj, old: common.Obj) -> common.Causes:
    out: common.Causes = []
    for field in ("parameters", "provisioner", "reclaimPolicy"):
        if new.get(field) != old.get(field):
            out.append(errors.forbidden(field, f"updates to {field} are forbidden."))
    return out + common.immutable(
        new.get("volumeBindingMode"), old.get("volumeBindingMode"), "volumeBindingMode"
    )


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.storage.v1.StorageClass": common.KindRules(
        create=storage_class_create, update=storage_class_update
    ),
}
