"""A CNI ADD result read into what the runtime needs: the pod's addresses and interfaces.

Results of CNI 0.3.x, 0.4.0 and 1.0.0 share the shape used here: ``interfaces`` (name, mac,
``sandbox`` = the netns path for interfaces inside the pod) and ``ips`` (``address`` as a CIDR,
``gateway``, ``interface`` = index into ``interfaces``). The first IPv4 address on an interface
inside the sandbox is the pod IP (``status.podIP``); all of them are ``podIPs``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
Address = ipaddress.IPv4Interface | ipaddress.IPv6Interface


class ResultError(ValueError):
    """The result does not say what the pod's address is."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """A pod attached to the network."""

    ip: str  # the pod IP
    prefix_length: int
    gateway: str
    interface: str  # inside the pod, e.g. eth0
    mac: str = ""
    host_interface: str = ""  # the veth's host end
    ips: tuple[str, ...] = ()  # every pod IP (dual stack: IPv4 first)
    result: Obj = field(default_factory=dict, compare=False)  # the raw final result


def parse(result: Obj, *, ifname: str) -> Attachment:
    """The attachment in ``result`` (ResultError if it has no usable address)."""
    interfaces = [i for i in result.get("interfaces") or [] if isinstance(i, dict)]
    entries = [_address(entry, interfaces, ifname) for entry in result.get("ips") or []]
    usable = [e for e in entries if e is not None]
    if not usable:
        raise ResultError(f"CNI result has no IP address for {ifname}: {result}")
    usable.sort(key=lambda e: e[0].version)  # IPv4 first, as the kubelet reports
    address, gateway, iface = usable[0]
    # The host end of the pod's link: the bridge plugin lists the bridge, then the veth.
    host = next((i for i in reversed(interfaces) if not i.get("sandbox") and i.get("name")), {})
    return Attachment(
        ip=str(address.ip),
        prefix_length=address.network.prefixlen,
        gateway=gateway,
        interface=str(iface.get("name") or ifname),
        mac=str(iface.get("mac") or ""),
        host_interface=str(host.get("name") or ""),
        ips=tuple(str(e[0].ip) for e in usable),
        result=result,
    )


def _address(entry: Any, interfaces: list[Obj], ifname: str) -> tuple[Address, str, Obj] | None:
    """One ``ips`` entry as (address, gateway, interface) if it is on the pod's interface."""
    if not isinstance(entry, dict) or not entry.get("address"):
        return None
    try:
        address = ipaddress.ip_interface(str(entry["address"]))
    except ValueError as exc:
        raise ResultError(f"CNI result has a bad address {entry['address']!r}") from exc
    index = entry.get("interface")
    iface: Obj = {"name": ifname}
    if isinstance(index, int) and 0 <= index < len(interfaces):
        iface = interfaces[index]
        if not iface.get("sandbox") and any(i.get("sandbox") for i in interfaces):
            return None  # an address on a host-side interface
    return address, str(entry.get("gateway") or ""), iface
