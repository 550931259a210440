"""Service and EndpointSlice objects for the proxy tests (clusterIPs set by hand: the
allocator is not involved)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


def service(name: str, cluster_ip: str = "10.43.0.10", *, ns: str = "default", **spec: Any) -> Obj:
    ports = spec.pop("ports", [{"name": "http", "port": 80, "protocol": "TCP"}])
    lb_ips = spec.pop("lb_ips", [])
    body: Obj = {"clusterIP": cluster_ip, "ports": ports, **spec}
    if cluster_ip:
        body.setdefault("clusterIPs", [cluster_ip])
    status = {"loadBalancer": {"ingress": [{"ip": ip} for ip in lb_ips]}}
    return {"metadata": {"namespace": ns, "name": name}, "spec": body, "status": status}


def endpoint(
    ip: str,
    *,
    node: str = "n1",
    ready: bool | None = True,
    serving: bool | None = None,
    terminating: bool | None = None,
) -> Obj:
    cond = {
        k: v
        for k, v in (("ready", ready), ("serving", serving), ("terminating", terminating))
        if v is not None
    }
    return {"addresses": [ip], "conditions": cond, "nodeName": node}


def endpoint_slice(
    svc: str,
    endpoints: list[Obj],
    *,
    ns: str = "default",
    ports: list[Obj] | None = None,
    name: str = "",
    address_type: str = "IPv4",
) -> Obj:
    return {
        "metadata": {
            "namespace": ns,
            "name": name or f"{svc}-abc",
            "labels": {"kubernetes.io/service-name": svc},
        },
        "addressType": address_type,
        "ports": ports
        if ports is not None
        else [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": endpoints,
    }
