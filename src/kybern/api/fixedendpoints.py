"""A Service without a selector whose Endpoints and EndpointSlice point at one fixed address.

Two such Services are kept by kybern itself: ``default/kubernetes`` (the API server, kept by
the API server through its registry) and ``kube-system/kube-dns`` (the in-process DNS server,
kept through the client). Both write the same objects and correct them the same way; only who
writes differs, so the objects and the comparison live here.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

Obj = dict[str, Any]
Port = tuple[str, int, str]  # (name, port, protocol)

SKIP_MIRROR = "endpointslice.kubernetes.io/skip-mirror"
SERVICE_NAME_LABEL = "kubernetes.io/service-name"


def endpoints(
    name: str, namespace: str, address: str, ports: Sequence[Port], labels: Mapping[str, str]
) -> Obj:
    """The Endpoints (marked so the EndpointSlice mirroring controller leaves it alone)."""
    return {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, SKIP_MIRROR: "true"},
        },
        "subsets": [{"addresses": [{"ip": address}], "ports": _ports(ports)}],
    }


def endpoint_slice(
    name: str, namespace: str, address: str, ports: Sequence[Port], labels: Mapping[str, str]
) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**labels, SERVICE_NAME_LABEL: name},
        },
        "addressType": "IPv6" if ":" in address else "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": _ports(ports),
    }


def _ports(ports: Sequence[Port]) -> list[Obj]:
    return [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]


def corrected(current: Obj, wanted: Obj, compared: Sequence[str]) -> Obj | None:
    """A copy of ``current`` with ``wanted``'s ``compared`` fields and labels, or None when
    it already has them (other labels and fields someone added are kept)."""
    labels = (current.get("metadata") or {}).get("labels") or {}
    labels_kept = all(labels.get(k) == v for k, v in wanted["metadata"]["labels"].items())
    if labels_kept and all(current.get(k) == wanted[k] for k in compared):
        return None
    updated = copy.deepcopy(current)
    updated.update({k: copy.deepcopy(wanted[k]) for k in compared})
    updated.setdefault("metadata", {}).setdefault("labels", {}).update(wanted["metadata"]["labels"])
    return updated


def ports_match(current: Any, wanted: Sequence[Obj]) -> bool:
    """Whether a Service's ports carry every field of ``wanted``'s, in order."""
    if not isinstance(current, list) or len(current) != len(wanted):
        return False
    return all(
        isinstance(c, dict) and {k: c.get(k) for k in w} == w
        for c, w in zip(current, wanted, strict=True)
    )
