"""The built-in service load balancer: ingress from ready nodes' InternalIPs."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import manager, servicelb
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)


def node(name: str, ip: str, *, ready: bool = True) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name},
        "status": {
            "addresses": [
                {"type": "Hostname", "address": name},
                {"type": "InternalIP", "address": ip},
            ],
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
        },
    }


def service(
    kind: str = "LoadBalancer", *, ingress: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    status: dict[str, Any] = {"loadBalancer": {"ingress": ingress} if ingress else {}}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default", "resourceVersion": "5"},
        "spec": {"type": kind, "ports": [{"port": 80}], **spec},
        "status": status,
    }


def make(*objs: dict[str, Any]) -> tuple[fakeclient.FakeCluster, servicelb.ServiceLBController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = servicelb.ServiceLBController(client=cluster.client, informers=cluster.informers)
    return cluster, controller


async def test_ingress_lists_ready_nodes_in_address_order() -> None:
    cluster, controller = make(
        service(),
        node("b", "192.0.2.10"),
        node("a", "192.0.2.9"),
        node("down", "192.0.2.1", ready=False),
    )
    await controller.reconcile("default/web")
    [action] = cluster.writes()
    assert (action.verb, action.subresource) == ("update", "status")
    assert action.body["status"]["loadBalancer"] == {
        "ingress": [{"ip": "192.0.2.9", "ipMode": "VIP"}, {"ip": "192.0.2.10", "ipMode": "VIP"}]
    }


async def test_an_up_to_date_ingress_is_left_alone() -> None:
    current = service(ingress=[{"ip": "192.0.2.9", "ipMode": "VIP"}])
    cluster, controller = make(current, node("a", "192.0.2.9"))
    await controller.reconcile("default/web")
    assert cluster.writes() == []


async def test_a_service_that_is_no_longer_a_load_balancer_is_cleared() -> None:
    stale = service("NodePort", ingress=[{"ip": "192.0.2.9", "ipMode": "VIP"}])
    cluster, controller = make(stale, node("a", "192.0.2.9"))
    await controller.reconcile("default/web")
    [action] = cluster.writes()
    assert action.body["status"]["loadBalancer"] == {}


async def test_another_load_balancer_class_is_ignored() -> None:
    cluster, controller = make(service(loadBalancerClass="example.com/lb"), node("a", "192.0.2.9"))
    await controller.reconcile("default/web")
    assert cluster.writes() == []


async def test_no_ready_node_leaves_it_pending() -> None:
    cluster, controller = make(service(), node("a", "192.0.2.9", ready=False))
    await controller.reconcile("default/web")
    assert cluster.writes() == []


async def test_a_node_change_requeues_every_load_balancer() -> None:
    other = service("ClusterIP")
    other["metadata"]["name"] = "plain"
    _, controller = make(service(), other)
    assert list(controller._load_balancer_keys(node("a", "192.0.2.9"))) == ["default/web"]


async def test_a_missing_service_is_nothing_to_do() -> None:
    cluster, controller = make(node("a", "192.0.2.9"))
    await controller.reconcile("default/gone")
    assert cluster.writes() == []


def test_registered_in_the_manager() -> None:
    assert manager.CONTROLLERS["service-lb-controller"] is servicelb.ServiceLBController
