"""Rules for discovery.k8s.io/v1 EndpointSlice: address type, addresses that fit it,
ports, and an immutable addressType."""

from __future__ import annotations

import ipaddress

from kybern.api import errors
from kybern.api.validation import common, containers, names

ADDRESS_TYPES = ("FQDN", "IPv4", "IPv6")
MAX_ADDRESSES = 100
MAX_ENDPOINTS = 1000


def endpoint_slice_create(obj: common.Obj) -> common.Causes:
    address_type = obj.get("addressType") or ""
    out = common.enum(obj, "addressType", "", ADDRESS_TYPES, required_=True)
    endpoints = common.as_list(obj.get("endpoints"))
    if len(endpoints) > MAX_ENDPOINTS:
        out.append(_too_many("endpoints", len(endpoints), MAX_ENDPOINTS))
    for i, endpoint in common.dicts(endpoints):
        out += _endpoint(endpoint, f"endpoints[{i}]", address_type)
    seen: set[str] = set()
    for i, port in common.dicts(obj.get("ports")):
        path = f"ports[{i}]"
        name = port.get("name") or ""
        if name:
            out += common.messages(f"{path}.name", name, names.is_dns1123_label(name))
        if name in seen:
            out.append(errors.duplicate(f"{path}.name", name))
        seen.add(name)
        out += common.port_number(port.get("port"), f"{path}.port")
        out += common.enum(port, "protocol", path, containers.PROTOCOLS)
    return out


def _too_many(field: str, count: int, limit: int) -> errors.Cause:
    message = f"{field}: Too many: {count}: must have at most {limit} items"
    return errors.Cause("FieldValueTooMany", message, field)


def _endpoint(endpoint: common.Obj, path: str, address_type: str) -> common.Causes:
    addresses = common.as_list(endpoint.get("addresses"))
    out: common.Causes = []
    if not addresses:
        out.append(common.required(f"{path}.addresses", "must contain at least 1 address"))
    elif len(addresses) > MAX_ADDRESSES:
        out.append(_too_many(f"{path}.addresses", len(addresses), MAX_ADDRESSES))
    for i, address in enumerate(addresses):
        out += _address(str(address), f"{path}.addresses[{i}]", address_type)
    hostname = endpoint.get("hostname")
    if hostname:
        out += common.messages(f"{path}.hostname", hostname, names.is_dns1123_label(hostname))
    return out


def _address(address: str, path: str, address_type: str) -> common.Causes:
    if address_type == "FQDN":
        return common.messages(path, address, names.is_dns1123_subdomain(address))
    version = {"IPv4": 4, "IPv6": 6}.get(address_type)
    try:
        ok = ipaddress.ip_address(address).version == version
    except ValueError:
        ok = False
    if version and not ok:
        return [common.invalid(path, address, f"must be a valid {address_type} address")]
    return []


def endpoint_slice_update(new: common.Obj, old: common.Obj) -> common.Causes:
    return common.immutable(new.get("addressType"), old.get("addressType"), "addressType")


RULES: dict[str, common.KindRules] = {
    "io.k8s.api.discovery.v1.EndpointSlice": common.KindRules(
        create=endpoint_slice_create, update=endpoint_slice_update
    ),
}
