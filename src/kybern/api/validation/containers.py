"""Container rules of a pod spec (containers and initContainers): name, image, ports, env,
volume mounts, resources, probes, enums. Used by podspec.py for pods and every pod template.

Defaulted enums (imagePullPolicy, terminationMessagePolicy, port protocol) are checked when
present; their absence is not an error here because defaulting fills them first.
"""

from __future__ import annotations

from typing import Any

from kybern.api import errors, quantity
from kybern.api.validation import common, names

PULL_POLICIES = ("Always", "IfNotPresent", "Never")
TERMINATION_MESSAGE_POLICIES = ("File", "FallbackToLogsOnError")
PROTOCOLS = ("SCTP", "TCP", "UDP")
STANDARD_CONTAINER_RESOURCES = frozenset({"cpu", "memory", "ephemeral-storage"})
ENV_SOURCES = ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")


def validate(
    container: common.Obj, path: str, volumes: set[str], *, template: bool
) -> common.Causes:
    """All rules of one container at ``path`` (``spec.containers[0]``)."""
    return [
        *_name(container, path),
        *_image(container, path, template=template),
        *common.enum(container, "imagePullPolicy", path, PULL_POLICIES),
        *common.enum(container, "terminationMessagePolicy", path, TERMINATION_MESSAGE_POLICIES),
        *ports(container.get("ports"), common.child(path, "ports")),
        *_env(container.get("env"), common.child(path, "env")),
        *_volume_mounts(container.get("volumeMounts"), common.child(path, "volumeMounts"), volumes),
        *resources(container.get("resources"), common.child(path, "resources")),
        *_probe(container.get("livenessProbe"), common.child(path, "livenessProbe"), True),
        *_probe(container.get("readinessProbe"), common.child(path, "readinessProbe"), False),
        *_probe(container.get("startupProbe"), common.child(path, "startupProbe"), True),
    ]


def _name(container: common.Obj, path: str) -> common.Causes:
    name = container.get("name") or ""
    field = common.child(path, "name")
    if not name:
        return [common.required(field)]
    return common.messages(field, name, names.is_dns1123_label(name))


def _image(container: common.Obj, path: str, *, template: bool) -> common.Causes:
    image = container.get("image") or ""
    field = common.child(path, "image")
    if not image:
        return [common.required(field)]
    if not template and image != image.strip():
        return [common.invalid(field, image, "must not have leading or trailing whitespace")]
    return []


def ports(value: Any, path: str) -> common.Causes:
    out: common.Causes = []
    seen: set[str] = set()
    for i, port in common.dicts(value):
        port_path = common.index(path, i)
        out += _port(port, port_path)
        name = port.get("name") or ""
        if name and name in seen:
            out.append(errors.duplicate(common.child(port_path, "name"), name))
        seen.add(name)
    return out


def _port(port: common.Obj, path: str) -> common.Causes:
    out: common.Causes = []
    name = port.get("name") or ""
    if name:
        out += common.messages(common.child(path, "name"), name, names.is_port_name(name))
    container_port = port.get("containerPort")
    if not container_port:
        out.append(common.required(common.child(path, "containerPort")))
    else:
        out += common.port_number(container_port, common.child(path, "containerPort"))
    if port.get("hostPort"):
        out += common.port_number(port["hostPort"], common.child(path, "hostPort"))
    return out + common.enum(port, "protocol", path, PROTOCOLS)


def _env(value: Any, path: str) -> common.Causes:
    out: common.Causes = []
    for i, var in common.dicts(value):
        var_path = common.index(path, i)
        name = var.get("name") or ""
        if not name:
            out.append(common.required(common.child(var_path, "name")))
        elif "=" in name or not name.isprintable() or not name.isascii():
            detail = (
                "a valid environment variable name must consist only of printable ASCII "
                "characters other than '='"
            )
            out.append(common.invalid(common.child(var_path, "name"), name, detail))
        out += _env_source(var, var_path)
    return out


def _env_source(var: common.Obj, path: str) -> common.Causes:
    source = var.get("valueFrom")
    if source is None:
        return []
    source_path = common.child(path, "valueFrom")
    if var.get("value"):
        detail = "may not be specified when `value` is not empty"
        return [common.invalid(source_path, "", detail)]
    count = sum(1 for k in ENV_SOURCES if common.as_dict(source).get(k) is not None)
    if count == 0:
        detail = (
            "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
            "`secretKeyRef`"
        )
        return [common.invalid(source_path, "", detail)]
    if count > 1:
        detail = "may not have more than one field specified at a time"
        return [common.invalid(source_path, "", detail)]
    return []


def _volume_mounts(value: Any, path: str, volumes: set[str]) -> common.Causes:
    out: common.Causes = []
    mount_paths: set[str] = set()
    for i, mount in common.dicts(value):
        mount_path = common.index(path, i)
        name, target = mount.get("name") or "", mount.get("mountPath") or ""
        if not name:
            out.append(common.required(common.child(mount_path, "name")))
        elif name not in volumes:
            out.append(common.not_found(common.child(mount_path, "name"), name))
        if not target:
            out.append(common.required(common.child(mount_path, "mountPath")))
        elif target in mount_paths:
            out.append(
                common.invalid(common.child(mount_path, "mountPath"), target, "must be unique")
            )
        mount_paths.add(target)
        out += _sub_path(mount.get("subPath") or "", common.child(mount_path, "subPath"))
    return out


def _sub_path(sub_path: str, path: str) -> common.Causes:
    if sub_path.startswith("/"):
        return [common.invalid(path, sub_path, "must be a relative path")]
    if ".." in sub_path.split("/"):
        return [common.invalid(path, sub_path, "must not contain '..'")]
    return []


def resources(value: Any, path: str) -> common.Causes:
    """ResourceRequirements: names, non-negative quantities, requests <= limits."""
    res = common.as_dict(value)
    limits, requests = common.as_dict(res.get("limits")), common.as_dict(res.get("requests"))
    limits_path, requests_path = common.child(path, "limits"), common.child(path, "requests")
    out = _resource_names(limits, limits_path) + _resource_names(requests, requests_path)
    out += common.non_negative_quantities(limits, limits_path)
    out += common.non_negative_quantities(requests, requests_path)
    for name, request in requests.items():
        out += _request_vs_limit(name, request, limits, requests_path, limits_path)
    return out


def _resource_names(values: common.Obj, path: str) -> common.Causes:
    out: common.Causes = []
    for name in values:
        if name in STANDARD_CONTAINER_RESOURCES or name.startswith("hugepages-"):
            continue
        if "/" in name:  # an extended resource: any qualified name
            msgs = names.is_qualified_name(name)
        else:
            msgs = ["must be a standard resource for containers"]
        out += common.messages(common.key(path, name), name, msgs)
    return out


def _overcommit_allowed(name: str) -> bool:
    native = "/" not in name or "kubernetes.io/" in name
    return native and not name.startswith("hugepages-")


def _request_vs_limit(
    name: str, request: Any, limits: common.Obj, requests_path: str, limits_path: str
) -> common.Causes:
    if not quantity.is_valid(request):
        return []
    if name not in limits:
        if _overcommit_allowed(name):
            return []
        detail = "Limit must be set for non overcommitable resources"
        return [common.required(common.key(limits_path, name), detail)]
    limit = limits[name]
    if not quantity.is_valid(limit):
        return []
    req_value, lim_value = quantity.parse(request), quantity.parse(limit)
    if not _overcommit_allowed(name) and req_value != lim_value:
        detail = f"must be equal to {name} limit of {quantity.canonical(limit)}"
    elif req_value > lim_value:
        detail = f"must be less than or equal to {name} limit of {quantity.canonical(limit)}"
    else:
        return []
    return [common.invalid(requests_path, quantity.canonical(request), detail)]


def _probe(value: Any, path: str, success_must_be_one: bool) -> common.Causes:
    if not isinstance(value, dict):
        return []
    out = handler(value, path)
    for field in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds"):
        out += common.non_negative(value, field, path)
    for field in ("successThreshold", "failureThreshold"):
        out += common.non_negative(value, field, path)
    success = value.get("successThreshold")
    if success_must_be_one and isinstance(success, int) and success != 1:
        out.append(common.invalid(common.child(path, "successThreshold"), success, "must be 1"))
    out += common.positive(value, "terminationGracePeriodSeconds", path)
    return out


def handler(value: common.Obj, path: str) -> common.Causes:
    """Probe / lifecycle handler: exactly one of exec, httpGet, tcpSocket, grpc."""
    present = [h for h in HANDLERS if value.get(h) is not None]
    if not present:
        return [common.required(path, "must specify a handler type")]
    if len(present) > 1:
        return [
            errors.forbidden(
                common.child(path, present[1]), "may not specify more than 1 handler type"
            )
        ]
    kind = present[0]
    body = common.as_dict(value[kind])
    if kind in ("httpGet", "tcpSocket"):
        return common.port_num_or_name(body.get("port"), common.child(path, kind, "port"))
    if kind == "grpc":
        return common.port_number(body.get("port"), common.child(path, kind, "port"))
    return []
