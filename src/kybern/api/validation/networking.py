"""Rules for networking.k8s.io/v1: Ingress, IngressClass, NetworkPolicy."""

from __future__ import annotations

import ipaddress
from typing import Any

from kybern.api import errors
from kybern.api.validation import common, containers, names

PATH_TYPES = ("Exact", "ImplementationSpecific", "Prefix")
POLICY_TYPES = ("Egress", "Ingress")
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")


def _host(host: str, path: str) -> common.Causes:
    if _is_ip(host):
        return [common.invalid(path, host, "must be a DNS name, not an IP address")]
    if host.startswith("*."):
        msgs = names.is_dns1123_subdomain(host[2:])
        if msgs:
            detail = (
                "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
                "subdomain, which must consist of lower case alphanumeric characters, '-' or "
                "'.' and end with an alphanumeric character (e.g. '*.example.com', regex used "
                "for validation is '\\*\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
                "[a-z0-9])?)*')"
            )
            return [common.invalid(path, host, detail)]
        return []
    return common.messages(path, host, names.is_dns1123_subdomain(host))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def ingress_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    rules, default = common.as_list(spec.get("rules")), spec.get("defaultBackend")
    out: common.Causes = []
    if not rules and default is None:
        detail = "either `defaultBackend` or `rules` must be specified"
        out.append(common.invalid("spec.rules", rules, detail))
    if default is not None:
        out += _backend(common.as_dict(default), "spec.defaultBackend")
    class_name = spec.get("ingressClassName")
    if class_name:
        out += common.messages(
            "spec.ingressClassName", class_name, names.is_dns1123_subdomain(class_name)
        )
    for i, rule in common.dicts(rules):
        out += _rule(rule, f"spec.rules[{i}]")
    for i, tls in common.dicts(spec.get("tls")):
        for j, host in enumerate(common.as_list(tls.get("hosts"))):
            out += _host(str(host), f"spec.tls[{i}].hosts[{j}]")
    return out


def _rule(rule: common.Obj, path: str) -> common.Causes:
    out = _host(rule["host"], f"{path}.host") if rule.get("host") else []
    http = rule.get("http")
    if http is None:
        return out
    paths = common.as_list(common.as_dict(http).get("paths"))
    if not paths:
        return [*out, common.required(f"{path}.http.paths")]
    for i, item in common.dicts(paths):
        out += _http_path(item, f"{path}.http.paths[{i}]")
    return out


def _http_path(item: common.Obj, path: str) -> common.Causes:
    path_type, value = item.get("pathType"), item.get("path") or ""
    out: common.Causes = []
    if not path_type:
        out.append(common.required(f"{path}.pathType", "pathType must be specified"))
    elif path_type not in PATH_TYPES:
        out.append(errors.not_supported(f"{path}.pathType", path_type, list(PATH_TYPES)))
    elif path_type in ("Exact", "Prefix") or value:
        out += _path_value(value, f"{path}.path")
    return out + _backend(common.as_dict(item.get("backend")), f"{path}.backend")


def _path_value(value: str, path: str) -> common.Causes:
    if not value.startswith("/"):
        return [common.invalid(path, value, "must be an absolute path")]
    for sequence in _INVALID_PATH_SEQUENCES:
        if sequence in value:
            return [common.invalid(path, value, f"must not contain '{sequence}'")]
    for suffix in _INVALID_PATH_SUFFIXES:
        if value.endswith(suffix):
            return [common.invalid(path, value, f"cannot end with '{suffix}'")]
    return []


def _backend(backend: common.Obj, path: str) -> common.Causes:
    service, resource = backend.get("service"), backend.get("resource")
    if service is not None and resource is not None:
        return [common.invalid(path, "", "cannot set both resource and service backends")]
    if service is None and resource is None:
        return [common.invalid(path, "", "resource or service backend is required")]
    if resource is not None:
        return common.required_str(common.as_dict(resource), "kind", f"{path}.resource")
    return _service_backend(common.as_dict(service), f"{path}.service")


def _service_backend(service: common.Obj, path: str) -> common.Causes:
    name = service.get("name") or ""
    out = common.messages(f"{path}.name", name, names.is_dns1035_label(name)) if name else []
    if not name:
        out.append(common.required(f"{path}.name"))
    port = common.as_dict(service.get("port"))
    port_name, number = port.get("name") or "", port.get("number")
    if port_name and number:
        out.append(common.invalid(f"{path}.port", port, "cannot set both port name & port number"))
    elif port_name:
        out += common.messages(f"{path}.port.name", port_name, names.is_port_name(port_name))
    elif number:
        out += common.port_number(number, f"{path}.port.number")
    else:
        out.append(common.invalid(f"{path}.port", port, "port name or number is required"))
    return out


def ingress_class_create(obj: common.Obj) -> common.Causes:
    controller = common.as_dict(obj.get("spec")).get("controller") or ""
    if not controller:
        return [common.required("spec.controller")]
    prefix, slash, rest = controller.partition("/")
    if not slash or not rest or names.is_dns1123_subdomain(prefix):
        detail = 'must be a domain-prefixed path (such as "acme.io/foo")'
        return [common.invalid("spec.controller", controller, detail)]
    return []


def network_policy_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    out = common.label_selector(spec.get("podSelector"), "spec.podSelector")
    types = common.as_list(spec.get("policyTypes"))
    for i, policy_type in enumerate(types):
        if policy_type not in POLICY_TYPES:
            out.append(
                errors.not_supported(f"spec.policyTypes[{i}]", policy_type, list(POLICY_TYPES))
            )
    if len(types) > 2:
        out.append(
            common.invalid("spec.policyTypes", types, "may not specify more than two policyTypes")
        )
    for direction, peers in (("ingress", "from"), ("egress", "to")):
        for i, rule in common.dicts(spec.get(direction)):
            out += _policy_rule(rule, f"spec.{direction}[{i}]", peers)
    return out


def _policy_rule(rule: common.Obj, path: str, peers_field: str) -> common.Causes:
    out: common.Causes = []
    for i, port in common.dicts(rule.get("ports")):
        out += _policy_port(port, f"{path}.ports[{i}]")
    for i, peer in common.dicts(rule.get(peers_field)):
        out += _peer(peer, f"{path}.{peers_field}[{i}]")
    return out


def _policy_port(port: common.Obj, path: str) -> common.Causes:
    out = common.enum(port, "protocol", path, containers.PROTOCOLS)
    value, end = port.get("port"), port.get("endPort")
    if value is not None:
        out += common.port_num_or_name(value, f"{path}.port")
    if end is not None:
        if not isinstance(value, int):
            detail = "may not be specified when `port` is non-numeric"
            out.append(errors.forbidden(f"{path}.endPort", detail))
        elif isinstance(end, int) and end < value:
            out.append(
                common.invalid(f"{path}.endPort", end, "must be greater than or equal to `port`")
            )
    return out


def _peer(peer: common.Obj, path: str) -> common.Causes:
    present = [
        k for k in ("podSelector", "namespaceSelector", "ipBlock") if peer.get(k) is not None
    ]
    if not present:
        return [common.required(path, "must specify a peer")]
    if "ipBlock" in present and len(present) > 1:
        return [errors.forbidden(path, "may not specify both ipBlock and another peer")]
    out: common.Causes = []
    for field in ("podSelector", "namespaceSelector"):
        if peer.get(field) is not None:
            out += common.label_selector(peer[field], f"{path}.{field}")
    if peer.get("ipBlock") is not None:
        out += _ip_block(common.as_dict(peer["ipBlock"]), f"{path}.ipBlock")
    return out


def _ip_block(block: common.Obj, path: str) -> common.Causes:
    cidr = block.get("cidr") or ""
    if not cidr:
        return [common.required(f"{path}.cidr")]
    network = _network(cidr)
    if network is None:
        return [common.invalid(f"{path}.cidr", cidr, "must be a valid CIDR value")]
    out: common.Causes = []
    for i, text in enumerate(common.as_list(block.get("except"))):
        excluded = _network(str(text))
        if excluded is None:
            out.append(common.invalid(f"{path}.except[{i}]", text, "must be a valid CIDR value"))
        elif excluded.version != network.version or not excluded.subnet_of(network):
            out.append(
                common.invalid(f"{path}.except[{i}]", text, "must be a strict subset of `cidr`")
            )
    return out


def _network(text: str) -> Any:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.networking.v1.Ingress": common.KindRules(create=ingress_create),
    "io.k8s.api.networking.v1.IngressClass": common.KindRules(
        create=ingress_class_create, update=common.spec_immutable("controller")
    ),
    "io.k8s.api.networking.v1.NetworkPolicy": common.KindRules(create=network_policy_create),
}
