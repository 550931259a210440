"""Rules for policy/v1 PodDisruptionBudget."""

from __future__ import annotations

from kybern.api.validation import common

EVICTION_POLICIES = ("AlwaysAllow", "IfHealthyBudget")


def pdb_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    min_available, max_unavailable = spec.get("minAvailable"), spec.get("maxUnavailable")
    out: common.Causes = []
    if min_available is not None and max_unavailable is not None:
        detail = "minAvailable and maxUnavailable cannot be both set"
        out.append(common.invalid("spec.minAvailable", min_available, detail))
    for field, value in (("minAvailable", min_available), ("maxUnavailable", max_unavailable)):
        if value is not None:
            out += common.int_or_percent(value, f"spec.{field}")
            out += common.percent_at_most_100(value, f"spec.{field}")
    if spec.get("selector") is not None:
        out += common.label_selector(spec["selector"], "spec.selector")
    return out + common.enum(spec, "unhealthyPodEvictionPolicy", "spec", EVICTION_POLICIES)


def pdb_status(new: common.Obj, old: common.Obj) -> common.Causes:
    status = common.as_dict(new.get("status"))
    out: common.Causes = []
    for field in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        out += common.non_negative(status, field, "status")
    return out


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.policy.v1.PodDisruptionBudget": common.KindRules(
        create=pdb_create, status=pdb_status
    ),
}
