"""What a Service's type asks of the allocators, and the update-time field fix-ups.

Pure functions over Service dicts. ``needs_*`` say which allocated values a Service holds
(Kubernetes' needsClusterIP / needsNodePort / needsHCNodePort). ``prepare_update`` runs in the
update strategy before validation and does what Kubernetes' Service registry does there:

- patchAllocatedValues: a client that sends a Service without its allocated ClusterIP or
  NodePorts (``kubectl replace`` of a hand-written manifest) keeps them;
- normalizeClusterIPs: ``clusterIP`` and ``clusterIPs`` stay in step;
- dropTypeDependentFields: a type change wipes what no longer applies and the client did not
  change itself (ClusterIPs going to ExternalName, NodePorts going to ClusterIP, the health
  check port, ``allocateLoadBalancerNodePorts``, ``loadBalancerClass``,
  ``externalTrafficPolicy``, and the load-balancer status when the type is no longer
  LoadBalancer); the allocators then release the values.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def spec_of(svc: Obj) -> Obj:
    spec = svc.get("spec")
    return spec if isinstance(spec, dict) else {}


def ports_of(svc: Obj) -> list[Obj]:
    ports = spec_of(svc).get("ports")
    return [p for p in ports if isinstance(p, dict)] if isinstance(ports, list) else []


def type_of(svc: Obj) -> str:
    return str(spec_of(svc).get("type") or "ClusterIP")


def needs_cluster_ip(svc: Obj) -> bool:
    """Holds a value in clusterIP/clusterIPs ("None" included)."""
    return type_of(svc) != "ExternalName"


def is_headless(svc: Obj) -> bool:
    return spec_of(svc).get("clusterIP") == "None"


def needs_node_ports(svc: Obj) -> bool:
    return type_of(svc) in ("NodePort", "LoadBalancer")


def should_allocate_node_ports(svc: Obj) -> bool:
    """NodePorts are allocated (not only honoured when asked for)."""
    kind = type_of(svc)
    if kind == "LoadBalancer":
        return spec_of(svc).get("allocateLoadBalancerNodePorts") is not False
    return kind == "NodePort"


def needs_health_check_port(svc: Obj) -> bool:
    spec = spec_of(svc)
    return type_of(svc) == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"


def cluster_ips(svc: Obj) -> list[str]:
    """The allocated ClusterIPs (not "None")."""
    spec = spec_of(svc)
    ips = spec.get("clusterIPs")
    values = ips if isinstance(ips, list) and ips else [spec.get("clusterIP")]
    return [ip for ip in values if isinstance(ip, str) and ip and ip != "None"]


def node_ports(svc: Obj) -> list[int]:
    return sorted({p["nodePort"] for p in ports_of(svc) if _port_number(p.get("nodePort"))})


def health_check_port(svc: Obj) -> int:
    value: Any = spec_of(svc).get("healthCheckNodePort")
    return int(value) if _port_number(value) else 0


def _port_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


# -- update fix-ups ------------------------------------------------------------------------


def prepare_update(new: Obj, old: Obj) -> None:
    """Kubernetes' update-time fix-ups, in its order (see the module docstring)."""
    new_spec, old_spec = new.get("spec"), old.get("spec")
    if not isinstance(new_spec, dict) or not isinstance(old_spec, dict):
        return
    _patch_allocated_values(new, old)
    _normalize_cluster_ips(new_spec, old_spec)
    _drop_type_dependent_fields(new, old)
    _keep_ip_families(new_spec, old, new)


def _patch_allocated_values(new: Obj, old: Obj) -> None:
    new_spec, old_spec = spec_of(new), spec_of(old)
    if needs_cluster_ip(old) and needs_cluster_ip(new):
        if not new_spec.get("clusterIP") and old_spec.get("clusterIP"):
            new_spec["clusterIP"] = old_spec["clusterIP"]
        if not new_spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            new_spec["clusterIPs"] = list(old_spec["clusterIPs"])
    if needs_node_ports(old) and needs_node_ports(new):
        # Ports whose number the new spec already uses cannot be patched in elsewhere.
        used = set(node_ports(old)) & set(node_ports(new))
        by_name = {p.get("name") or "": p.get("nodePort") for p in ports_of(old)}
        for port in ports_of(new):
            if not port.get("nodePort"):
                known = by_name.get(port.get("name") or "")
                if known and known not in used:
                    port["nodePort"] = known
    both_need_one = needs_health_check_port(old) and needs_health_check_port(new)
    kept = old_spec.get("healthCheckNodePort")
    if both_need_one and kept and not new_spec.get("healthCheckNodePort"):
        new_spec["healthCheckNodePort"] = kept


def _normalize_cluster_ips(new_spec: Obj, old_spec: Obj) -> None:
    old_ip, new_ip = old_spec.get("clusterIP") or "", new_spec.get("clusterIP") or ""
    old_ips, new_ips = old_spec.get("clusterIPs") or [], new_spec.get("clusterIPs") or []
    if old_ips and not new_ips and old_ip == new_ip:
        new_spec["clusterIPs"] = list(old_ips)  # an old client that only knows clusterIP
    if old_ip != new_ip:
        same = (new_spec.get("clusterIPs") or []) == old_ips
        if old_ip and not new_ip and same:
            new_spec.pop("clusterIPs", None)  # clearing clusterIP clears its plural too
        elif same:
            new_spec["clusterIPs"] = [new_ip]


def _drop_type_dependent_fields(new: Obj, old: Obj) -> None:
    new_spec, old_spec = spec_of(new), spec_of(old)
    if needs_cluster_ip(old) and not needs_cluster_ip(new):
        if _same(new_spec, old_spec, "clusterIP") and _same(new_spec, old_spec, "clusterIPs"):
            new_spec.pop("clusterIP", None)
            new_spec.pop("clusterIPs", None)
        for name in ("ipFamilies", "ipFamilyPolicy"):
            if _same(new_spec, old_spec, name):
                new_spec.pop(name, None)
    if needs_node_ports(old) and not needs_node_ports(new) and node_ports(new) == node_ports(old):
        for port in ports_of(new):
            port.pop("nodePort", None)
    if (
        needs_health_check_port(old)
        and not needs_health_check_port(new)
        and _same(new_spec, old_spec, "healthCheckNodePort")
    ):
        new_spec.pop("healthCheckNodePort", None)
    if type_of(new) != "LoadBalancer":
        new_spec.pop("allocateLoadBalancerNodePorts", None)
        new_spec.pop("loadBalancerClass", None)
        status = new.get("status")
        if isinstance(status, dict):
            status["loadBalancer"] = {}
    if not _externally_accessible(new):
        new_spec.pop("externalTrafficPolicy", None)


def _externally_accessible(svc: Obj) -> bool:
    kind = type_of(svc)
    return kind in ("NodePort", "LoadBalancer") or (
        kind == "ClusterIP" and bool(spec_of(svc).get("externalIPs"))
    )


def _keep_ip_families(new_spec: Obj, old: Obj, new: Obj) -> None:
    """A client that leaves out ipFamilies/ipFamilyPolicy keeps the old ones; a Service that
    gains a ClusterIP (ExternalName -> ClusterIP) gets single-stack defaults."""
    if not needs_cluster_ip(new):
        return
    old_spec = spec_of(old)
    for name in ("ipFamilies", "ipFamilyPolicy"):
        if new_spec.get(name) in (None, []) and needs_cluster_ip(old) and old_spec.get(name):
            new_spec[name] = old_spec[name]
    if not new_spec.get("ipFamilyPolicy"):
        headless_selectorless = is_headless(new) and not new_spec.get("selector")
        new_spec["ipFamilyPolicy"] = "RequireDualStack" if headless_selectorless else "SingleStack"
    if not new_spec.get("ipFamilies"):
        ip = new_spec.get("clusterIP") or ""
        new_spec["ipFamilies"] = ["IPv6" if ":" in ip else "IPv4"]


def _same(new_spec: Obj, old_spec: Obj, name: str) -> bool:
    return new_spec.get(name) == old_spec.get(name)
