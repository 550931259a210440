"""The Endpoints controller on the fake API."""

from __future__ import annotations

from typing import Any

import pytest

from kybern.controllers import endpoints, servicepods
from kybern.testing import fakeclient

pytestmark = pytest.mark.timeout(10)
KEY = "ns/web"
Obj = dict[str, Any]


def service(**spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"a": "b"}},
        "spec": {
            "selector": {"app": "web"},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            **spec,
        },
    }


def pod(
    name: str,
    ip: str,
    *,
    ready: bool = True,
    node: str = "n1",
    ports: list[Obj] | None = None,
    labels: dict[str, str] | None = None,
    deleting: bool = False,
    **spec: Any,
) -> Obj:
    meta: Obj = {
        "name": name,
        "namespace": "ns",
        "uid": f"uid-{name}",
        "labels": {"app": "web"} if labels is None else labels,
    }
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    status: Obj = {
        "phase": "Running",
        "podIP": ip,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    container = {
        "name": "app",
        "image": "nginx",
        "ports": [{"name": "http", "containerPort": 8080}] if ports is None else ports,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {"nodeName": node, "containers": [container], **spec},
        "status": status,
    }


def make(*objs: Obj) -> tuple[fakeclient.FakeCluster, endpoints.EndpointsController]:
    cluster = fakeclient.FakeCluster()
    cluster.add(*objs)
    controller = endpoints.EndpointsController(client=cluster.client, informers=cluster.informers)
    return cluster, controller


def address(name: str, ip: str, node: str = "n1") -> Obj:
    return {
        "ip": ip,
        "nodeName": node,
        "targetRef": {"kind": "Pod", "namespace": "ns", "name": name, "uid": f"uid-{name}"},
    }


HTTP = {"name": "http", "port": 8080, "protocol": "TCP"}


async def test_creates_endpoints_with_ready_and_not_ready_addresses() -> None:
    cluster, controller = make(
        service(),
        pod("b", "10.0.0.2"),
        pod("a", "10.0.0.1"),
        pod("c", "10.0.0.3", ready=False),
        pod("other", "10.0.0.9", labels={"app": "db"}),
        pod("noip", ""),
        pod("gone", "10.0.0.4", deleting=True),
    )
    await controller.reconcile(KEY)
    [write] = cluster.writes()
    assert write.verb == "create"
    assert write.resource == "endpoints"
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"] == [
        {
            "addresses": [address("a", "10.0.0.1"), address("b", "10.0.0.2")],
            "notReadyAddresses": [address("c", "10.0.0.3")],
            "ports": [HTTP],
        }
    ]
    assert ep["metadata"]["labels"] == {"a": "b"}  # the service's; no managed-by on Endpoints
    assert endpoints.LAST_CHANGE_TRIGGER_TIME in ep["metadata"]["annotations"]


async def test_subsets_grouped_by_resolved_ports() -> None:
    cluster, controller = make(
        service(),
        pod("a", "10.0.0.1"),
        pod("b", "10.0.0.2", ports=[{"name": "http", "containerPort": 9090}]),
        pod("c", "10.0.0.3", ports=[]),  # lacks the named port: left out
    )
    await controller.reconcile(KEY)
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"] == [
        {"addresses": [address("a", "10.0.0.1")], "ports": [HTTP]},
        {"addresses": [address("b", "10.0.0.2")], "ports": [{**HTTP, "port": 9090}]},
    ]


async def test_numeric_target_port_and_udp_named_port_protocol() -> None:
    svc = service(
        ports=[
            {"name": "dns", "port": 53, "targetPort": "dns", "protocol": "UDP"},
            {"name": "web", "port": 80, "targetPort": 8000},
        ]
    )
    p = pod("a", "10.0.0.1", ports=[{"name": "dns", "containerPort": 5353, "protocol": "UDP"}])
    cluster, controller = make(svc, p)
    await controller.reconcile(KEY)
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"][0]["ports"] == [
        {"name": "dns", "port": 5353, "protocol": "UDP"},
        {"name": "web", "port": 8000, "protocol": "TCP"},
    ]


async def test_publish_not_ready_addresses_includes_unready_and_terminating() -> None:
    cluster, controller = make(
        service(publishNotReadyAddresses=True),
        pod("a", "10.0.0.1", ready=False),
        pod("b", "10.0.0.2", deleting=True),
    )
    await controller.reconcile(KEY)
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"] == [
        {"addresses": [address("a", "10.0.0.1"), address("b", "10.0.0.2")], "ports": [HTTP]}
    ]


async def test_hostname_when_subdomain_matches_and_headless_without_ports() -> None:
    cluster, controller = make(
        service(clusterIP="None", ports=[]),
        pod("a", "10.0.0.1", hostname="a-host", subdomain="web"),
        pod("b", "10.0.0.2", hostname="b-host", subdomain="other"),
    )
    await controller.reconcile(KEY)
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"] == [
        {
            "addresses": [
                {**address("a", "10.0.0.1"), "hostname": "a-host"},
                address("b", "10.0.0.2"),
            ]
        }
    ]
    assert ep["metadata"]["labels"] == {"a": "b", endpoints.HEADLESS_LABEL: ""}


async def test_no_pods_gives_empty_endpoints_and_unchanged_is_a_no_op() -> None:
    cluster, controller = make(service())
    await controller.reconcile(KEY)
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"] == []
    cluster.preload(ep)
    cluster.clear()
    await controller.reconcile(KEY)
    assert cluster.writes() == []


async def test_updates_when_pods_change() -> None:
    existing = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "ns", "labels": {"a": "b"}},
        "subsets": [{"addresses": [address("old", "10.0.0.7")], "ports": [HTTP]}],
    }
    cluster, controller = make(service(), existing, pod("a", "10.0.0.1"))
    await controller.reconcile(KEY)
    [write] = cluster.writes()
    assert write.verb == "update"
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"] == [{"addresses": [address("a", "10.0.0.1")], "ports": [HTTP]}]


async def test_create_conflict_with_stale_cache_updates() -> None:
    existing = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "ns"},
        "subsets": [],
    }
    cluster, controller = make(service(), pod("a", "10.0.0.1"))
    cluster.add(existing, cache=False)
    await controller.reconcile(KEY)
    assert [a.verb for a in cluster.writes()] == ["create", "update"]
    ep = cluster.get("v1", "Endpoints", "web", "ns")
    assert ep is not None
    assert ep["subsets"][0]["addresses"] == [address("a", "10.0.0.1")]


async def test_service_without_selector_is_left_alone() -> None:
    svc = service()
    del svc["spec"]["selector"]
    cluster, controller = make(svc, pod("a", "10.0.0.1"))
    await controller.reconcile(KEY)
    assert cluster.writes() == []


async def test_deleted_service_deletes_endpoints() -> None:
    existing = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": "web", "namespace": "ns"},
        "subsets": [],
    }
    cluster, controller = make(existing)
    await controller.reconcile(KEY)
    assert [(a.verb, a.resource, a.name) for a in cluster.writes()] == [
        ("delete", "endpoints", "web")
    ]
    assert cluster.get("v1", "Endpoints", "web", "ns") is None
    cluster.clear()
    await controller.reconcile(KEY)  # already gone: fine
    assert cluster.get("v1", "Endpoints", "web", "ns") is None


async def test_pod_keys_map_pods_to_selecting_services() -> None:
    other = service()
    other["metadata"] = {"name": "all", "namespace": "ns"}
    other["spec"]["selector"] = {"tier": "x"}
    _, controller = make(service(), other)
    assert list(controller.pod_keys(pod("a", "1.1.1.1"))) == [KEY]
    assert list(controller.pod_keys(pod("a", "1.1.1.1", labels={"app": "db"}))) == []


def test_should_be_in_endpoints_respects_restart_policy() -> None:
    done = pod("a", "10.0.0.1", restartPolicy="Never")
    done["status"]["phase"] = "Succeeded"
    assert not servicepods.should_be_in_endpoints(done, False)
    failed = pod("a", "10.0.0.1", restartPolicy="OnFailure")
    failed["status"]["phase"] = "Failed"
    assert servicepods.should_be_in_endpoints(failed, False)
