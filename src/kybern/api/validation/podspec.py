"""PodSpec and PodTemplateSpec rules, shared by Pods and every workload's template, plus
the Pod spec update rule (only images, activeDeadlineSeconds, tolerations additions,
terminationGracePeriodSeconds and schedulingGates removals may change).
"""

from __future__ import annotations

import functools
from typing import Any

from kybern.api import errors, schema
from kybern.api.validation import common, containers, metadata, names

RESTART_POLICIES = ("Always", "OnFailure", "Never")
DNS_POLICIES = ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None")
TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
MAX_INT32 = 2**31 - 1

UPDATABLE_FIELDS = ",".join(
    (
        "`spec.containers[*].image`",
        "`spec.initContainers[*].image`",
        "`spec.activeDeadlineSeconds`",
        "`spec.tolerations` (only additions to existing tolerations)",
        "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously "
        "negative)",
    )
)


@functools.cache
def volume_sources() -> frozenset[str]:
    """The volume source fields of core/v1 Volume (everything but ``name``)."""
    props = schema.definition("io.k8s.api.core.v1.Volume")["properties"]
    return frozenset(k for k in props if k != "name")


def validate_template(value: Any, path: str, *, required_: bool = True) -> common.Causes:
    """A PodTemplateSpec at ``path`` (``spec.template``)."""
    if not isinstance(value, dict):
        return [common.required(path)] if required_ else []
    meta = common.as_dict(value.get("metadata"))
    meta_path = common.child(path, "metadata")
    return [
        *common.labels(meta.get("labels"), common.child(meta_path, "labels")),
        *metadata.validate_annotations(
            meta.get("annotations"), common.child(meta_path, "annotations")
        ),
        *validate_spec(value.get("spec"), common.child(path, "spec"), template=True),
    ]


def validate_spec(value: Any, path: str, *, template: bool = False) -> common.Causes:
    spec = common.as_dict(value)
    volumes, out = _volumes(spec.get("volumes"), common.child(path, "volumes"))
    out += _all_containers(spec, path, volumes, template=template)
    out += common.enum(spec, "restartPolicy", path, RESTART_POLICIES)
    out += _dns(spec, path)
    out += _active_deadline(spec.get("activeDeadlineSeconds"), path)
    out += common.labels(spec.get("nodeSelector"), common.child(path, "nodeSelector"))
    out += _dns_names(spec, path)
    out += _tolerations(spec.get("tolerations"), common.child(path, "tolerations"))
    out += _host_network_ports(spec, path)
    return out


def _all_containers(
    spec: common.Obj, path: str, volumes: set[str], *, template: bool
) -> common.Causes:
    out: common.Causes = []
    if not common.as_list(spec.get("containers")):
        out.append(common.required(common.child(path, "containers")))
    seen: set[str] = set()
    for field in ("initContainers", "containers"):
        for i, container in common.dicts(spec.get(field)):
            item_path = common.index(common.child(path, field), i)
            out += containers.validate(container, item_path, volumes, template=template)
            name = container.get("name") or ""
            if name and name in seen:
                out.append(errors.duplicate(common.child(item_path, "name"), name))
            seen.add(name)
    return out


def _volumes(value: Any, path: str) -> tuple[set[str], common.Causes]:
    seen: set[str] = set()
    out: common.Causes = []
    for i, volume in common.dicts(value):
        item_path = common.index(path, i)
        name = volume.get("name") or ""
        if not name:
            out.append(common.required(common.child(item_path, "name")))
        elif name in seen:
            out.append(errors.duplicate(common.child(item_path, "name"), name))
        else:
            out += common.messages(
                common.child(item_path, "name"), name, names.is_dns1123_label(name)
            )
        seen.add(name)
        out += _volume_source(volume, item_path)
    return seen, out


def _volume_source(volume: common.Obj, path: str) -> common.Causes:
    present = [k for k in volume if k in volume_sources() and volume[k] is not None]
    if not present:
        return [common.required(path, "must specify a volume type")]
    if len(present) > 1:
        return [
            errors.forbidden(
                common.child(path, present[1]), "may not specify more than 1 volume type"
            )
        ]
    return []


def _dns(spec: common.Obj, path: str) -> common.Causes:
    out = common.enum(spec, "dnsPolicy", path, DNS_POLICIES)
    if spec.get("dnsPolicy") == "None" and spec.get("dnsConfig") is None:
        detail = "must provide `dnsConfig` when `dnsPolicy` is None"
        out.append(common.required(common.child(path, "dnsConfig"), detail))
    return out


def _active_deadline(value: Any, path: str) -> common.Causes:
    if isinstance(value, int) and not 1 <= value <= MAX_INT32:
        detail = f"must be between 1 and {MAX_INT32}, inclusive"
        return [common.invalid(common.child(path, "activeDeadlineSeconds"), value, detail)]
    return []


def _dns_names(spec: common.Obj, path: str) -> common.Causes:
    out: common.Causes = []
    for field in ("hostname", "subdomain"):
        value = spec.get(field) or ""
        if value:
            out += common.messages(common.child(path, field), value, names.is_dns1123_label(value))
    account = spec.get("serviceAccountName") or ""
    if account:
        field = common.child(path, "serviceAccountName")
        out += common.messages(field, account, names.is_dns1123_subdomain(account))
    return out


def _tolerations(value: Any, path: str) -> common.Causes:
    out: common.Causes = []
    for i, toleration in common.dicts(value):
        out += toleration_rules(toleration, common.index(path, i))
    return out


def toleration_rules(toleration: common.Obj, path: str) -> common.Causes:
    key, operator = toleration.get("key") or "", toleration.get("operator") or "Equal"
    out: common.Causes = []
    if key:
        out += common.messages(common.child(path, "key"), key, names.is_qualified_name(key))
    elif operator != "Exists":
        detail = (
            "operator must be Exists when `key` is empty, which means "
            '"match all values and all keys"'
        )
        out.append(common.invalid(common.child(path, "operator"), operator, detail))
    if operator == "Exists" and toleration.get("value"):
        detail = "value must be empty when `operator` is 'Exists'"
        out.append(common.invalid(common.child(path, "operator"), toleration.get("value"), detail))
    out += common.enum(toleration, "operator", path, TOLERATION_OPERATORS)
    return out + common.enum(toleration, "effect", path, TAINT_EFFECTS)


def _host_network_ports(spec: common.Obj, path: str) -> common.Causes:
    if spec.get("hostNetwork") is not True:
        return []
    out: common.Causes = []
    for i, container in common.dicts(spec.get("containers")):
        for j, port in common.dicts(container.get("ports")):
            host_port = port.get("hostPort")
            if host_port and host_port != port.get("containerPort"):
                field = f"{path}.containers[{i}].ports[{j}].hostPort"
                detail = "must match `containerPort` when `hostNetwork` is true"
                out.append(common.invalid(field, host_port, detail))
    return out


# -- update --------------------------------------------------------------------------------


def validate_pod_spec_update(new: Any, old: Any, path: str = "spec") -> common.Causes:
    """Pod specs are immutable but for the fields in UPDATABLE_FIELDS."""
    new_spec, old_spec = common.as_dict(new), common.as_dict(old)
    out = _active_deadline_update(new_spec, old_spec, path)
    munged = _munge(new_spec, old_spec)
    if munged != old_spec:
        changed = sorted(k for k in set(munged) | set(old_spec) if munged.get(k) != old_spec.get(k))
        detail = f"pod updates may not change fields other than {UPDATABLE_FIELDS}\n" + ", ".join(
            f"{path}.{k}" for k in changed
        )
        out.append(errors.forbidden(path, detail))
    return out


def _munge(new: common.Obj, old: common.Obj) -> common.Obj:
    """``new`` with every allowed change reverted to ``old``."""
    munged = dict(new)
    for field in ("containers", "initContainers"):
        munged[field] = _with_old_images(new.get(field), old.get(field))
    _restore(munged, old, "activeDeadlineSeconds")
    grace_old, grace_new = (
        old.get("terminationGracePeriodSeconds"),
        new.get("terminationGracePeriodSeconds"),
    )
    if isinstance(grace_old, int) and grace_old < 0 and grace_new == 1:
        munged["terminationGracePeriodSeconds"] = grace_old
    if _only_additions(new.get("tolerations"), old.get("tolerations")):
        _restore(munged, old, "tolerations")
    if _only_additions(old.get("schedulingGates"), new.get("schedulingGates")):
        _restore(munged, old, "schedulingGates")
    for field in ("containers", "initContainers"):
        if field not in new and field not in old:
            munged.pop(field, None)
    return munged


def _restore(munged: common.Obj, old: common.Obj, field: str) -> None:
    if field in old:
        munged[field] = old[field]
    else:
        munged.pop(field, None)


def _with_old_images(new: Any, old: Any) -> Any:
    new_list, old_list = common.as_list(new), common.as_list(old)
    if len(new_list) != len(old_list):
        return new
    out = []
    for new_c, old_c in zip(new_list, old_list, strict=True):
        if isinstance(new_c, dict) and isinstance(old_c, dict):
            new_c = {**new_c, "image": old_c.get("image")}
            if "image" not in old_c:
                new_c.pop("image")
        out.append(new_c)
    return out


def _only_additions(larger: Any, smaller: Any) -> bool:
    """Every item of ``smaller`` is still in ``larger``."""
    items = common.as_list(larger)
    return all(item in items for item in common.as_list(smaller))


def _active_deadline_update(new: common.Obj, old: common.Obj, path: str) -> common.Causes:
    new_value, old_value = new.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds")
    field = common.child(path, "activeDeadlineSeconds")
    if old_value is None or new_value == old_value:
        return []
    if new_value is None:
        return [common.invalid(field, None, "must not update from a positive integer to nil value")]
    if isinstance(new_value, int) and isinstance(old_value, int) and new_value > old_value:
        return [common.invalid(field, new_value, "must be less than or equal to previous value")]
    return []
