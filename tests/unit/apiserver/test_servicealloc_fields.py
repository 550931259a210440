"""Service update fix-ups: kept allocations, synced clusterIPs, fields a type change drops."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from kybern.apiserver.services import fields

pytestmark = pytest.mark.timeout(10)


def svc(**spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "default"}, "spec": spec, "status": {}}


NODE_PORT = svc(
    type="NodePort",
    clusterIP="10.43.1.2",
    clusterIPs=["10.43.1.2"],
    ipFamilies=["IPv4"],
    ipFamilyPolicy="SingleStack",
    externalTrafficPolicy="Cluster",
    ports=[{"name": "http", "port": 80, "nodePort": 30080}],
)


def updated(old: dict[str, Any], **changes: Any) -> dict[str, Any]:
    new = copy.deepcopy(old)
    new["spec"].update(changes)
    fields.prepare_update(new, old)
    return new


def test_a_replace_without_allocated_values_keeps_them() -> None:
    new = updated(NODE_PORT, clusterIP=None, clusterIPs=None, ports=[{"name": "http", "port": 80}])
    assert new["spec"]["clusterIP"] == "10.43.1.2"
    assert new["spec"]["clusterIPs"] == ["10.43.1.2"]
    assert new["spec"]["ports"][0]["nodePort"] == 30080


def test_node_port_to_cluster_ip_drops_node_ports_and_traffic_policy() -> None:
    new = updated(NODE_PORT, type="ClusterIP")
    assert "nodePort" not in new["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in new["spec"]
    assert new["spec"]["clusterIP"] == "10.43.1.2"


def test_to_external_name_drops_cluster_ips_and_families() -> None:
    new = updated(NODE_PORT, type="ExternalName", externalName="example.com")
    for name in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert name not in new["spec"]


def test_from_external_name_gets_single_stack_defaults() -> None:
    old = svc(type="ExternalName", externalName="example.com")
    new = updated(old, type="ClusterIP", ports=[{"port": 80}])
    assert new["spec"]["ipFamilies"] == ["IPv4"]
    assert new["spec"]["ipFamilyPolicy"] == "SingleStack"


def test_leaving_load_balancer_clears_its_fields_and_status() -> None:
    old = svc(
        type="LoadBalancer",
        clusterIP="10.43.1.2",
        allocateLoadBalancerNodePorts=True,
        loadBalancerClass="x",
        externalTrafficPolicy="Local",
        healthCheckNodePort=31000,
        ports=[{"port": 80, "nodePort": 30080}],
    )
    old["status"] = {"loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}}
    new = updated(old, type="NodePort")
    spec = new["spec"]
    assert "allocateLoadBalancerNodePorts" not in spec
    assert "loadBalancerClass" not in spec
    assert "healthCheckNodePort" not in spec
    assert spec["ports"][0]["nodePort"] == 30080  # NodePort still needs it
    assert new["status"]["loadBalancer"] == {}


def test_a_changed_cluster_ip_is_left_for_validation() -> None:
    new = updated(NODE_PORT, clusterIP="10.43.9.9")
    assert new["spec"]["clusterIPs"] == ["10.43.9.9"]  # validation refuses the change


@pytest.mark.parametrize(
    ("spec", "needs"),
    [
        ({"type": "ClusterIP"}, (True, False, False)),
        ({"type": "ExternalName"}, (False, False, False)),
        ({"type": "NodePort"}, (True, True, False)),
        ({"type": "LoadBalancer", "externalTrafficPolicy": "Local"}, (True, True, True)),
    ],
)
def test_needs(spec: dict[str, Any], needs: tuple[bool, bool, bool]) -> None:
    service = svc(**spec)
    assert (
        fields.needs_cluster_ip(service),
        fields.needs_node_ports(service),
        fields.needs_health_check_port(service),
    ) == needs


def test_allocate_load_balancer_node_ports_false() -> None:
    service = svc(type="LoadBalancer", allocateLoadBalancerNodePorts=False)
    assert fields.needs_node_ports(service)
    assert not fields.should_allocate_node_ports(service)
