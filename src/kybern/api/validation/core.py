"""Rules for core/v1 workload and config kinds: Pod, PodTemplate, ReplicationController,
ConfigMap, Secret, Namespace, Node, ServiceAccount. Services and Endpoints live in service.py,
storage and quota kinds in core_resources.py, events in events.py.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
from typing import Any

from kybern.api import errors
from kybern.api.validation import common, names, podspec

MAX_SECRET_SIZE = 1024 * 1024
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})
_UNIQUE_TAINTS = "taints must be unique by key and effect pair"


# -- Pod, PodTemplate, ReplicationController -----------------------------------------------


def pod_create(obj: common.Obj) -> common.Causes:
    return podspec.validate_spec(obj.get("spec"), "spec")


def pod_update(new: common.Obj, old: common.Obj) -> common.Causes:
    return podspec.validate_pod_spec_update(new.get("spec"), old.get("spec"))


def pod_template_create(obj: common.Obj) -> common.Causes:
    return podspec.validate_template(obj.get("template"), "template")


def rc_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    selector = common.as_dict(spec.get("selector"))
    template = spec.get("template")
    out = common.non_negative(spec, "replicas", "spec")
    out += common.non_negative(spec, "minReadySeconds", "spec")
    if not selector:
        out.append(common.required("spec.selector"))
    out += common.labels(selector, "spec.selector")
    out += podspec.validate_template(template, "spec.template")
    if isinstance(template, dict):
        out += _template_matches(selector, template, "spec.template")
        out += restart_policy_always(template, "spec.template")
    return out


def _template_matches(selector: common.Obj, template: common.Obj, path: str) -> common.Causes:
    template_labels = common.as_dict(common.as_dict(template.get("metadata")).get("labels"))
    if all(template_labels.get(k) == v for k, v in selector.items()):
        return []
    field = f"{path}.metadata.labels"
    return [common.invalid(field, template_labels, "`selector` does not match template `labels`")]


def restart_policy_always(template: common.Obj, path: str) -> common.Causes:
    """Templates of controllers that keep pods running must use restartPolicy Always."""
    spec = common.as_dict(template.get("spec"))
    policy = spec.get("restartPolicy")
    if policy is not None and policy != "Always":
        field = f"{path}.spec.restartPolicy"
        return [errors.not_supported(field, policy, ["Always"])]
    if spec.get("activeDeadlineSeconds") is not None:
        field = f"{path}.spec.activeDeadlineSeconds"
        return [errors.forbidden(field, "activeDeadlineSeconds in ReplicaSet is not Supported")]
    return []


# -- ConfigMap, Secret ----------------------------------------------------------------------


def _data_keys(value: Any, path: str) -> common.Causes:
    out: common.Causes = []
    for k in common.as_dict(value):
        out += common.messages(common.key(path, k), k, names.is_config_map_key(k))
    return out


def config_map_create(obj: common.Obj) -> common.Causes:
    data, binary = common.as_dict(obj.get("data")), common.as_dict(obj.get("binaryData"))
    out = _data_keys(data, "data") + _data_keys(binary, "binaryData")
    for k in data:
        if k in binary:
            detail = "duplicate of key present in binaryData"
            out.append(common.invalid(common.key("data", k), k, detail))
    size = sum(len(str(v or "")) for v in data.values())
    size += sum(len(str(v or "")) * 3 // 4 for v in binary.values())
    if size > MAX_SECRET_SIZE:
        out.append(errors.too_long("data", "", MAX_SECRET_SIZE))
    return out


def _immutable_data(new: common.Obj, old: common.Obj, fields: tuple[str, ...]) -> common.Causes:
    if old.get("immutable") is not True:
        return []
    out = [errors.forbidden(f, IMMUTABLE_WHEN_SET) for f in fields if new.get(f) != old.get(f)]
    if new.get("immutable") is not True:
        out.append(errors.forbidden("immutable", IMMUTABLE_WHEN_SET))
    return out


def config_map_update(new: common.Obj, old: common.Obj) -> common.Causes:
    return _immutable_data(new, old, ("data", "binaryData"))


def secret_create(obj: common.Obj) -> common.Causes:
    data, string_data = common.as_dict(obj.get("data")), common.as_dict(obj.get("stringData"))
    out = _data_keys(data, "data") + _data_keys(string_data, "stringData")
    size = sum(len(str(v or "")) * 3 // 4 for v in data.values())
    size += sum(len(str(v or "").encode()) for v in string_data.values())
    if size > MAX_SECRET_SIZE:
        out.append(errors.too_long("data", "", MAX_SECRET_SIZE))
    return out + _secret_type_rules(obj, {**data, **string_data})


def _secret_type_rules(obj: common.Obj, data: common.Obj) -> common.Causes:
    """Keys each well-known Secret type must carry (stringData counts: it becomes data)."""
    secret_type = obj.get("type") or "Opaque"
    if secret_type == "kubernetes.io/service-account-token":
        annotations = common.as_dict(common.as_dict(obj.get("metadata")).get("annotations"))
        key = "kubernetes.io/service-account.name"
        return [] if annotations.get(key) else [common.required(f"metadata.annotations[{key}]")]
    if secret_type in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if secret_type.endswith("dockercfg") else ".dockerconfigjson"
        return _docker_config(data, key, key in common.as_dict(obj.get("stringData")))
    if secret_type == "kubernetes.io/basic-auth" and not ({"username", "password"} & set(data)):
        return [common.required("data[username]"), common.required("data[password]")]
    if secret_type == "kubernetes.io/ssh-auth" and not data.get("ssh-privatekey"):
        return [common.required("data[ssh-privatekey]")]
    if secret_type == "kubernetes.io/tls":
        return [common.required(f"data[{k}]") for k in ("tls.crt", "tls.key") if k not in data]
    return []


def _docker_config(data: common.Obj, key: str, plain: bool) -> common.Causes:
    if key not in data:
        return [common.required(f"data[{key}]")]
    raw = data[key] or ""
    try:
        text = raw if plain else base64.b64decode(raw).decode()
        json.loads(text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as error:
        return [common.invalid(f"data[{key}]", "<secret contents redacted>", str(error))]
    return []


def secret_update(new: common.Obj, old: common.Obj) -> common.Causes:
    out = common.immutable(new.get("type") or "Opaque", old.get("type") or "Opaque", "type")
    return out + _immutable_data(new, old, ("data",))


# -- Namespace, Node, ServiceAccount --------------------------------------------------------


def namespace_create(obj: common.Obj) -> common.Causes:
    out: common.Causes = []
    finalizers = common.as_list(common.as_dict(obj.get("spec")).get("finalizers"))
    for finalizer in finalizers:
        if not isinstance(finalizer, str):
            continue
        out += common.messages("spec.finalizers", finalizer, names.is_qualified_name(finalizer))
        if "/" not in finalizer and finalizer not in STANDARD_FINALIZERS:
            detail = "name is neither a standard finalizer name nor is it fully qualified"
            out.append(common.invalid("spec.finalizers", finalizer, detail))
    return out


def namespace_status(new: common.Obj, old: common.Obj) -> common.Causes:
    status = common.as_dict(new.get("status"))
    return common.enum(status, "phase", "status", ("Active", "Terminating"))


def node_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    out: common.Causes = []
    seen: set[tuple[str, str]] = set()
    for i, taint in common.dicts(spec.get("taints")):
        path = f"spec.taints[{i}]"
        key = taint.get("key") or ""
        if not key:
            out.append(common.required(f"{path}.key"))
        out += common.messages(f"{path}.key", key, names.is_qualified_name(key) if key else [])
        out += common.enum(taint, "effect", path, podspec.TAINT_EFFECTS, required_=True)
        marker = (key, str(taint.get("effect")))
        if marker in seen:
            message = f"{path}: Duplicate value: {common.show(taint)}: {_UNIQUE_TAINTS}"
            out.append(errors.Cause("FieldValueDuplicate", message, path))
        seen.add(marker)
    for field in ("podCIDR",):
        out += _cidr(spec.get(field), f"spec.{field}")
    for i, cidr in enumerate(common.as_list(spec.get("podCIDRs"))):
        out += _cidr(cidr, f"spec.podCIDRs[{i}]")
    return out


def _cidr(value: Any, path: str) -> common.Causes:
    if not value:
        return []
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        detail = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"
        return [common.invalid(path, value, detail)]
    return []


def node_update(new: common.Obj, old: common.Obj) -> common.Causes:
    new_spec, old_spec = common.as_dict(new.get("spec")), common.as_dict(old.get("spec"))
    out: common.Causes = []
    for field in ("podCIDR", "providerID"):
        if old_spec.get(field) and new_spec.get(field) != old_spec.get(field):
            out.append(errors.forbidden(f"spec.{field}", f"{field} may not change once set"))
    return out


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.core.v1.Pod": common.KindRules(create=pod_create, update=pod_update),
    "io.k8s.api.core.v1.PodTemplate": common.KindRules(create=pod_template_create),
    "io.k8s.api.core.v1.ReplicationController": common.KindRules(create=rc_create),
    "io.k8s.api.core.v1.ConfigMap": common.KindRules(
        create=config_map_create, update=config_map_update
    ),
    "io.k8s.api.core.v1.Secret": common.KindRules(create=secret_create, update=secret_update),
    "io.k8s.api.core.v1.Namespace": common.KindRules(
        create=namespace_create, status=namespace_status
    ),
    "io.k8s.api.core.v1.Node": common.KindRules(create=node_create, update=node_update),
    "io.k8s.api.core.v1.ServiceAccount": common.KindRules(),
}
