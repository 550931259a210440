"""The pods behind a Service (shared by the Endpoints and EndpointSlice controllers)."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import servicepods
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]


def service(ports: list[Obj], **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc"},
        "spec": {"selector": {"app": "web"}, "ports": ports, **spec},
    }


def pod(name: str, ip: str, *, ports: list[Obj] | None = None, **status: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "ns", "uid": name, "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "c", "ports": ports or []}]},
        "status": {"podIP": ip, "phase": "Running", **status},
    }


def number_only(service_port: Obj, number: int) -> Obj:
    return {"name": service_port.get("name") or "", "port": number}


def test_named_target_ports_resolve_per_pod_and_group_by_port_set() -> None:
    svc = service([{"name": "http", "port": 80, "targetPort": "web"}])
    a = pod("a", "10.0.0.1", ports=[{"name": "web", "containerPort": 8080}])
    b = pod("b", "10.0.0.2", ports=[{"name": "web", "containerPort": 9090}])
    c = pod("c", "10.0.0.3", ports=[{"name": "web", "containerPort": 8080, "protocol": "UDP"}])
    groups = servicepods.port_groups(svc, [a, b, c], number_only)
    assert groups == [
        ([{"name": "http", "port": 8080}], [a]),
        ([{"name": "http", "port": 9090}], [b]),
    ]  # c has the name only for UDP: left out


def test_a_headless_service_without_ports_keeps_its_pods_portless() -> None:
    svc = service([], clusterIP="None")
    a = pod("a", "10.0.0.1")
    assert servicepods.port_groups(svc, [a], number_only) == [([], [a])]
    assert servicepods.port_groups(service([]), [a], number_only) == []


def test_members_follow_the_selector_readiness_rules_and_address_family() -> None:
    cluster = fakeclient.FakeCluster()
    terminating = pod("t", "10.0.0.2")
    terminating["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    other = pod("o", "10.0.0.3")
    other["metadata"]["labels"] = {"app": "db"}
    cluster.add(pod("a", "10.0.0.1"), terminating, other, pod("v6", "fd00::1"), pod("no-ip", ""))
    controller = servicepods.ServicePodsController(
        client=cluster.client, informers=cluster.informers
    )
    svc = service([])
    names = [
        p["metadata"]["name"] for p in controller.members(svc, include_terminating=False) or []
    ]
    assert names == ["a", "v6"]
    ipv4 = controller.members(svc, include_terminating=True, ipv4_only=True) or []
    assert [p["metadata"]["name"] for p in ipv4] == ["a", "t"]
    selectorless = service([])
    selectorless["spec"].pop("selector")
    assert controller.members(selectorless, include_terminating=True) is None
    assert controller.pod_keys(pod("x", "10.0.0.9")) == []  # no Service in the cache
