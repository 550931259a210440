"""Rules for rbac.authorization.k8s.io/v1: Role, ClusterRole, RoleBinding, ClusterRoleBinding.

User and Group subjects get ``apiGroup: rbac.authorization.k8s.io`` from defaulting in
Kubernetes; an empty apiGroup on them is accepted here for the same reason.
"""

from __future__ import annotations

from kybern.api import errors
from kybern.api.validation import common, names

GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ["ServiceAccount", "User", "Group"]


def _rules(obj: common.Obj, *, namespaced: bool) -> common.Causes:
    out: common.Causes = []
    for i, rule in common.dicts(obj.get("rules")):
        out += policy_rule(rule, f"rules[{i}]", namespaced=namespaced)
    return out


def policy_rule(rule: common.Obj, path: str, *, namespaced: bool) -> common.Causes:
    out: common.Causes = []
    if not common.as_list(rule.get("verbs")):
        out.append(common.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = common.as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            detail = "namespaced rules cannot apply to non-resource URLs"
            out.append(common.invalid(f"{path}.nonResourceURLs", urls, detail))
        if any(common.as_list(rule.get(k)) for k in ("apiGroups", "resources", "resourceNames")):
            detail = "rules cannot apply to both regular resources and non-resource URLs"
            out.append(common.invalid(f"{path}.nonResourceURLs", urls, detail))
        return out
    if not common.as_list(rule.get("apiGroups")):
        detail = "resource rules must supply at least one api group"
        out.append(common.required(f"{path}.apiGroups", detail))
    if not common.as_list(rule.get("resources")):
        detail = "resource rules must supply at least one resource"
        out.append(common.required(f"{path}.resources", detail))
    return out


def role_create(obj: common.Obj) -> common.Causes:
    return _rules(obj, namespaced=True)


def cluster_role_create(obj: common.Obj) -> common.Causes:
    out = _rules(obj, namespaced=False)
    aggregation = obj.get("aggregationRule")
    if aggregation is not None:
        selectors = common.as_list(common.as_dict(aggregation).get("clusterRoleSelectors"))
        if not selectors:
            detail = "at least one clusterRoleSelector required if aggregationRule is non-nil"
            out.append(common.required("aggregationRule.clusterRoleSelectors", detail))
        for i, selector in enumerate(selectors):
            out += common.label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]")
    return out


def _binding(obj: common.Obj, *, namespaced: bool) -> common.Causes:
    ref = common.as_dict(obj.get("roleRef"))
    out: common.Causes = []
    if ref.get("apiGroup") != GROUP:
        out.append(errors.not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        out.append(errors.not_supported("roleRef.kind", ref.get("kind") or "", kinds))
    name = ref.get("name") or ""
    if not name:
        out.append(common.required("roleRef.name"))
    out += common.messages("roleRef.name", name, names.is_path_segment_name(name) if name else [])
    for i, subject in common.dicts(obj.get("subjects")):
        out += _subject(subject, f"subjects[{i}]", namespaced=namespaced)
    return out


def _subject(subject: common.Obj, path: str, *, namespaced: bool) -> common.Causes:
    name, kind, group = subject.get("name") or "", subject.get("kind"), subject.get("apiGroup")
    out = [] if name else [common.required(f"{path}.name")]
    if kind == "ServiceAccount":
        if name:
            out += common.messages(f"{path}.name", name, names.is_dns1123_subdomain(name))
        if group:
            out.append(errors.not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            out.append(common.required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group and group != GROUP:
            out.append(errors.not_supported(f"{path}.apiGroup", group, [GROUP]))
    else:
        out.append(errors.not_supported(f"{path}.kind", kind or "", SUBJECT_KINDS))
    return out


def role_binding_create(obj: common.Obj) -> common.Causes:
    return _binding(obj, namespaced=True)


def cluster_role_binding_create(obj: common.Obj) -> common.Causes:
    return _binding(obj, namespaced=False)


def binding_update(new: common.Obj, old: common.Obj) -> common.Causes:
    if new.get("roleRef") != old.get("roleRef"):
        return [common.invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


_PREFIX = "io.k8s.api.rbac.v1."
RULES: dict[str, common.KindRules] = {
    _PREFIX + "Role": common.KindRules(create=role_create),
    _PREFIX + "ClusterRole": common.KindRules(create=cluster_role_create),
    _PREFIX + "RoleBinding": common.KindRules(create=role_binding_create, update=binding_update),
    _PREFIX + "ClusterRoleBinding": common.KindRules(
        create=cluster_role_binding_create, update=binding_update
    ),
}
