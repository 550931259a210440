"""Rules for scheduling.k8s.io/v1 PriorityClass: user values up to one billion, the
``system-`` prefix reserved for the two built-in classes, value immutable."""

from __future__ import annotations

from kybern.api import errors
from kybern.api.validation import common

HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
SYSTEM_PREFIX = "system-"
SYSTEM_CLASSES = {"system-node-critical": 2_000_001_000, "system-cluster-critical": 2_000_000_000}
PREEMPTION_POLICIES = ("Never", "PreemptLowerPriority")


def priority_class_create(obj: common.Obj) -> common.Causes:
    name = common.as_dict(obj.get("metadata")).get("name") or ""
    value = obj.get("value")
    out = common.enum(obj, "preemptionPolicy", "", PREEMPTION_POLICIES)
    if name.startswith(SYSTEM_PREFIX):
        if SYSTEM_CLASSES.get(name) != value:
            detail = (
                f"priority class names with '{SYSTEM_PREFIX}' prefix are reserved for system "
                f"use only. error: {name} is not a known system priority class"
            )
            out.append(errors.forbidden("metadata.name", detail))
    elif isinstance(value, int) and value > HIGHEST_USER_DEFINABLE_PRIORITY:
        detail = (
            f"maximum allowed value of a user defined priority is {HIGHEST_USER_DEFINABLE_PRIORITY}"
        )
        out.append(errors.forbidden("value", detail))
    return out


def priority_class_update(new: common.Obj, old: common.Obj) -> common.Causes:
    out: common.Causes = []
    if new.get("value") != old.get("value"):
        out.append(errors.forbidden("value", "may not be changed in an update."))
    return out + common.immutable(
        new.get("preemptionPolicy"), old.get("preemptionPolicy"), "preemptionPolicy"
    )


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.scheduling.v1.PriorityClass": common.KindRules(
        create=priority_class_create, update=priority_class_update
    ),
}
