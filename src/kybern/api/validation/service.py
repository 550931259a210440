"""Rules for core/v1 Service and Endpoints.

Kubernetes' Service REST layer fills ``clusterIP``/``clusterIPs`` before validation (keeps
allocated values on update, syncs the two fields); these rules therefore check the two only
when both are set, and treat an update that leaves them empty as keeping the old values.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from kybern.api import errors
from kybern.api.validation import common, containers, names

SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
SESSION_AFFINITIES = ("ClientIP", "None")
TRAFFIC_POLICIES = ("Cluster", "Local")
IP_FAMILIES = ("IPv4", "IPv6")
IP_FAMILY_POLICIES = ("PreferDualStack", "RequireDualStack", "SingleStack")
INVALID_IP = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


def service_create(obj: common.Obj) -> common.Causes:
    spec = common.as_dict(obj.get("spec"))
    service_type = spec.get("type") or "ClusterIP"
    out = common.enum(spec, "type", "spec", SERVICE_TYPES)
    out += _ports(spec, service_type)
    out += common.labels(spec.get("selector"), "spec.selector")
    out += common.enum(spec, "sessionAffinity", "spec", SESSION_AFFINITIES)
    out += common.enum(spec, "externalTrafficPolicy", "spec", TRAFFIC_POLICIES)
    out += common.enum(spec, "internalTrafficPolicy", "spec", TRAFFIC_POLICIES)
    out += common.enum(spec, "ipFamilyPolicy", "spec", IP_FAMILY_POLICIES)
    out += _external_traffic_policy(spec, service_type)
    if service_type == "ExternalName":
        return out + _external_name(spec)
    return out + _cluster_ips(spec, service_type) + _ip_lists(spec)


def _headless(spec: common.Obj) -> bool:
    return spec.get("clusterIP") == "None" or common.as_list(spec.get("clusterIPs"))[:1] == ["None"]


def _ports(spec: common.Obj, service_type: str) -> common.Causes:
    ports = common.as_list(spec.get("ports"))
    if not ports and not _headless(spec) and service_type != "ExternalName":
        return [common.required("spec.ports")]
    out: common.Causes = []
    seen_names: set[str] = set()
    seen_ports: set[tuple[Any, Any]] = set()
    for i, port in common.dicts(ports):
        path = f"spec.ports[{i}]"
        out += _port(port, path, require_name=len(ports) > 1, service_type=service_type)
        name = port.get("name") or ""
        if name and name in seen_names:
            out.append(errors.duplicate(f"{path}.name", name))
        seen_names.add(name)
        marker = (port.get("port"), port.get("protocol") or "TCP")
        if marker in seen_ports:
            shown = {"port": marker[0], "protocol": marker[1]}
            out.append(common.duplicate(path, shown))
        seen_ports.add(marker)
    return out


def _port(port: common.Obj, path: str, *, require_name: bool, service_type: str) -> common.Causes:
    name = port.get("name") or ""
    out: common.Causes = []
    if require_name and not name:
        out.append(common.required(f"{path}.name"))
    elif name:
        out += common.messages(f"{path}.name", name, names.is_dns1123_label(name))
    out += common.port_number(port.get("port"), f"{path}.port")
    out += common.enum(port, "protocol", path, containers.PROTOCOLS)
    target = port.get("targetPort")
    if target is not None and target != 0:
        out += common.port_num_or_name(target, f"{path}.targetPort")
    node_port = port.get("nodePort")
    if node_port:
        if service_type == "ClusterIP":
            detail = "may not be used when `type` is 'ClusterIP'"
            out.append(errors.forbidden(f"{path}.nodePort", detail))
        out += common.port_number(node_port, f"{path}.nodePort")
    return out


def _external_traffic_policy(spec: common.Obj, service_type: str) -> common.Causes:
    if spec.get("externalTrafficPolicy") and service_type not in ("NodePort", "LoadBalancer"):
        detail = "may only be set when `type` is 'NodePort' or 'LoadBalancer'"
        return [common.invalid("spec.externalTrafficPolicy", spec["externalTrafficPolicy"], detail)]
    return []


def _external_name(spec: common.Obj) -> common.Causes:
    out: common.Causes = []
    external = (spec.get("externalName") or "").removesuffix(".")
    if not external:
        out.append(common.required("spec.externalName"))
    else:
        msgs = names.is_dns1123_subdomain(external)
        out += common.messages("spec.externalName", spec.get("externalName"), msgs)
    if spec.get("clusterIP") or common.as_list(spec.get("clusterIPs")):
        out.append(errors.forbidden("spec.clusterIPs", "may not be set for ExternalName services"))
    return out


def _cluster_ips(spec: common.Obj, service_type: str) -> common.Causes:
    cluster_ip = spec.get("clusterIP") or ""
    ips = [ip for ip in common.as_list(spec.get("clusterIPs")) if isinstance(ip, str)]
    out: common.Causes = []
    if cluster_ip and ips and ips[0] != cluster_ip:
        out.append(common.invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    candidates = ips or ([cluster_ip] if cluster_ip else [])
    for i, ip in enumerate(candidates):
        if i == 0 and ip == "None":
            if len(candidates) > 1:
                detail = "'None' must be the first and only value"
                out.append(common.invalid("spec.clusterIPs", candidates, detail))
            continue
        if not _is_ip(ip):
            out.append(common.invalid(f"spec.clusterIPs[{i}]", ip, INVALID_IP))
    if len(candidates) > 2:
        out.append(common.invalid("spec.clusterIPs", candidates, "may only hold up to 2 values"))
    if _headless(spec) and service_type in ("NodePort", "LoadBalancer"):
        detail = f"may not be set to 'None' for {service_type} services"
        out.append(common.invalid("spec.clusterIPs[0]", "None", detail))
    return out


def _ip_lists(spec: common.Obj) -> common.Causes:
    out: common.Causes = []
    seen: set[str] = set()
    for i, family in enumerate(common.as_list(spec.get("ipFamilies"))):
        if family not in IP_FAMILIES:
            out.append(errors.not_supported(f"spec.ipFamilies[{i}]", family, list(IP_FAMILIES)))
        elif family in seen:
            out.append(errors.duplicate(f"spec.ipFamilies[{i}]", family))
        seen.add(str(family))
    for i, ip in enumerate(common.as_list(spec.get("externalIPs"))):
        if not _is_ip(ip):
            out.append(common.invalid(f"spec.externalIPs[{i}]", ip, INVALID_IP))
    return out


def service_update(new: common.Obj, old: common.Obj) -> common.Causes:
    new_spec, old_spec = common.as_dict(new.get("spec")), common.as_dict(old.get("spec"))
    if "ExternalName" in (new_spec.get("type"), old_spec.get("type")):
        return []
    new_ips = common.as_list(new_spec.get("clusterIPs")) or _single(new_spec.get("clusterIP"))
    old_ips = common.as_list(old_spec.get("clusterIPs")) or _single(old_spec.get("clusterIP"))
    if not new_ips or not old_ips:
        return []
    if new_ips[0] != old_ips[0]:
        return [common.invalid("spec.clusterIPs[0]", new_ips, "may not change once set")]
    return []


def _single(value: Any) -> list[Any]:
    return [value] if value else []


def endpoints_create(obj: common.Obj) -> common.Causes:
    out: common.Causes = []
    for i, subset in common.dicts(obj.get("subsets")):
        path = f"subsets[{i}]"
        for field in ("addresses", "notReadyAddresses"):
            for j, address in common.dicts(subset.get(field)):
                ip = address.get("ip") or ""
                if not _is_ip(ip):
                    out.append(common.invalid(f"{path}.{field}[{j}].ip", ip, INVALID_IP))
        for j, port in common.dicts(subset.get("ports")):
            out += common.port_number(port.get("port"), f"{path}.ports[{j}].port")
            out += common.enum(port, "protocol", f"{path}.ports[{j}]", containers.PROTOCOLS)
    return out


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.core.v1.Service": common.KindRules(create=service_create, update=service_update),
    "io.k8s.api.core.v1.Endpoints": common.KindRules(create=endpoints_create),
}
