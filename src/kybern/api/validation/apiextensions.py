"""Rules for apiextensions.k8s.io/v1 CustomResourceDefinition: the basic shape (group,
names, scope, versions with exactly one storage version and a schema each, name =
plural.group). The structural-schema rules of Kubernetes are not checked.
"""

from __future__ import annotations

from kybern.api import errors
from kybern.api.validation import common, names

SCOPES = ("Cluster", "Namespaced")


def crd_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    group = spec.get("group") or ""
    crd_names = common.as_dict(spec.get("names"))
    out = _group(group)
    out += _names(crd_names)
    out += common.enum(spec, "scope", "spec", SCOPES, required_=True)
    out += _versions(common.as_list(spec.get("versions")))
    name = common.as_dict(obj.get("metadata")).get("name") or ""
    plural = crd_names.get("plural") or ""
    if name and name != f"{plural}.{group}":
        out.append(
            common.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group')
        )
    return out


def _group(group: str) -> common.Causes:
    if not group:
        return [common.required("spec.group")]
    out = common.messages("spec.group", group, names.is_dns1123_subdomain(group))
    if "." not in group:
        out.append(common.invalid("spec.group", group, "should be a domain with at least one dot"))
    return out


def _names(crd_names: common.Obj) -> common.Causes:
    out: common.Causes = []
    for field in ("plural", "singular"):
        value = crd_names.get(field) or ""
        if field == "plural" and not value:
            out.append(common.required("spec.names.plural"))
        elif value:
            out += common.messages(f"spec.names.{field}", value, names.is_dns1123_label(value))
    for field in ("kind", "listKind"):
        value = crd_names.get(field) or ""
        if field == "kind" and not value:
            out.append(common.required("spec.names.kind"))
        elif value and names.is_dns1035_label(value.lower()):
            msgs = names.is_dns1035_label(value.lower())
            detail = "may have mixed case, but should otherwise match: " + msgs[0]
            out.append(common.invalid(f"spec.names.{field}", value, detail))
    for i, short in enumerate(common.as_list(crd_names.get("shortNames"))):
        out += common.messages(
            f"spec.names.shortNames[{i}]", short, names.is_dns1123_label(str(short))
        )
    return out


def _versions(versions: list[object]) -> common.Causes:
    if not versions:
        return [
            common.invalid(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        ]
    out: common.Causes = []
    seen: set[str] = set()
    storage = 0
    for i, version in common.dicts(versions):
        path = f"spec.versions[{i}]"
        name = version.get("name") or ""
        if not name:
            out.append(common.required(f"{path}.name"))
        elif name in seen:
            out.append(errors.duplicate(f"{path}.name", name))
        else:
            out += common.messages(f"{path}.name", name, names.is_dns1035_label(name))
        seen.add(name)
        storage += 1 if version.get("storage") is True else 0
        schema = common.as_dict(version.get("schema"))
        if schema.get("openAPIV3Schema") is None:
            out.append(common.required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
    if storage != 1:
        detail = "must have exactly one version marked as storage version"
        out.append(
            common.invalid(
                "spec.versions", [v.get("name") for _, v in common.dicts(versions)], detail
            )
        )
    return out


RULES: dict[str, common.KindRules] = {
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition": (
        common.KindRules(create=crd_create, update=common.spec_immutable("group", "scope"))
    ),
}
