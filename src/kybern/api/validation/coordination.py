"""Rules for coordination.k8s.io/v1 Lease."""

from __future__ import annotations

from kybern.api.validation import common


def lease_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    out = common.positive(spec, "leaseDurationSeconds", "spec")
    return out + common.non_negative(spec, "leaseTransitions", "spec")


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.coordination.v1.Lease": common.KindRules(create=lease_create),
}
