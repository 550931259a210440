"""Service ClusterIP and NodePort allocation through the API, as Kubernetes' Service REST."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from typing import Any

import pytest

from kybern.apiserver import server
from kybern.apiserver.services import bitmap
from tests.integration.conftest import Client, start_server

pytestmark = pytest.mark.timeout(30)

SERVICES = "/api/v1/namespaces/default/services"


def service(name: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("ports", [{"port": 80}])
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def create(client: Client, name: str, **spec: Any) -> dict[str, Any]:
    code, body = await client.post(SERVICES, service(name, **spec))
    assert code == 201, body
    return body  # type: ignore[no-any-return]


async def replace(client: Client, current: dict[str, Any], **spec: Any) -> tuple[int, Any]:
    body = dict(current, spec={**current["spec"], **spec})
    return await client.put(f"{SERVICES}/{current['metadata']['name']}", body)


def message(body: dict[str, Any]) -> str:
    return str(body["message"])


# -- the kubernetes Service --------------------------------------------------------------


async def test_the_kubernetes_service_points_at_the_api_server(
    client: Client, apiserver: server.APIServer
) -> None:
    code, svc = await client.get(f"{SERVICES}/kubernetes")
    assert code == 200
    assert svc["spec"]["clusterIP"] == "10.43.0.1"
    assert svc["spec"]["ports"] == [
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": apiserver.port}
    ]
    assert svc["metadata"]["labels"] == {"component": "apiserver", "provider": "kubernetes"}
    assert "selector" not in svc["spec"]
    _, eps = await client.get("/api/v1/namespaces/default/endpoints/kubernetes")
    assert eps["subsets"] == [
        {
            "addresses": [{"ip": "127.0.0.1"}],
            "ports": [{"name": "https", "port": apiserver.port, "protocol": "TCP"}],
        }
    ]
    _, eps_slice = await client.get(
        "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes"
    )
    assert eps_slice["endpoints"][0]["addresses"] == ["127.0.0.1"]
    assert eps_slice["metadata"]["labels"]["kubernetes.io/service-name"] == "kubernetes"


async def test_a_deleted_kubernetes_service_comes_back(
    client: Client, apiserver: server.APIServer
) -> None:
    code, _ = await client.delete(f"{SERVICES}/kubernetes")
    assert code == 200
    assert apiserver.services is not None
    assert apiserver.services.kubernetes is not None
    await apiserver.services.kubernetes.sync_once()
    _, svc = await client.get(f"{SERVICES}/kubernetes")
    assert svc["spec"]["clusterIP"] == "10.43.0.1"


# -- ClusterIPs --------------------------------------------------------------------------


async def test_concurrent_creates_get_distinct_ips(client: Client) -> None:
    bodies = await asyncio.gather(*(create(client, f"s{i}") for i in range(200)))
    ips = {b["spec"]["clusterIP"] for b in bodies}
    assert len(ips) == 200
    network = ipaddress.ip_network("10.43.0.0/16")
    assert all(ipaddress.ip_address(ip) in network for ip in ips)
    assert "10.43.0.1" not in ips
    assert all(b["spec"]["clusterIPs"] == [b["spec"]["clusterIP"]] for b in bodies)
    assert {tuple(b["spec"]["ipFamilies"]) for b in bodies} == {("IPv4",)}
    assert {b["spec"]["ipFamilyPolicy"] for b in bodies} == {"SingleStack"}


async def test_a_chosen_ip_that_is_taken_is_refused(client: Client) -> None:
    await create(client, "dns", clusterIP="10.43.0.10")
    code, body = await client.post(SERVICES, service("other", clusterIP="10.43.0.10"))
    assert code == 422
    assert body["reason"] == "Invalid"
    assert message(body) == (
        'Service "other" is invalid: spec.clusterIPs: Invalid value: []string{"10.43.0.10"}: '
        "failed to allocate IP 10.43.0.10: provided IP is already allocated"
    )
    assert body["details"]["causes"][0]["field"] == "spec.clusterIPs"


async def test_a_chosen_ip_outside_the_range_is_refused(client: Client) -> None:
    code, body = await client.post(SERVICES, service("out", clusterIP="10.44.0.5"))
    assert code == 422
    assert message(body).endswith(
        "failed to allocate IP 10.44.0.5: the provided IP (10.44.0.5) is not in the valid "
        "range. The range of valid IPs is 10.43.0.0/16"
    )


async def test_headless_and_external_name_get_no_ip(client: Client) -> None:
    headless = await create(client, "headless", clusterIP="None", selector={"app": "x"})
    assert headless["spec"]["clusterIPs"] == ["None"]
    external = await create(client, "ext", type="ExternalName", externalName="example.com")
    assert "clusterIP" not in external["spec"]
    assert "ipFamilies" not in external["spec"]


async def test_an_ip_is_released_only_once_the_service_is_gone(client: Client) -> None:
    first = service("held", clusterIP="10.43.0.20")
    first["metadata"]["finalizers"] = ["example.com/hold"]
    code, _ = await client.post(SERVICES, first)
    assert code == 201
    await client.delete(f"{SERVICES}/held")
    code, _ = await client.post(SERVICES, service("again", clusterIP="10.43.0.20"))
    assert code == 422  # still held while the finalizer waits
    code, _ = await client.patch(f"{SERVICES}/held", {"metadata": {"finalizers": None}})
    assert code == 200
    await create(client, "again", clusterIP="10.43.0.20")


async def test_a_failed_create_gives_its_ip_back(client: Client) -> None:
    code, _ = await client.post(
        "/api/v1/namespaces/missing/services", service("x", clusterIP="10.43.0.30")
    )
    assert code == 404  # NamespaceLifecycle refuses after allocation
    await create(client, "x", clusterIP="10.43.0.30")


async def test_dry_run_allocates_nothing(client: Client) -> None:
    code, body = await client.post(SERVICES, service("dry", clusterIP="10.43.0.40"), dryRun="All")
    assert code == 201
    assert body["spec"]["clusterIP"] == "10.43.0.40"
    await create(client, "real", clusterIP="10.43.0.40")


async def test_dual_stack_is_refused_on_a_single_stack_cluster(client: Client) -> None:
    code, body = await client.post(SERVICES, service("dual", ipFamilyPolicy="RequireDualStack"))
    assert code == 422
    assert message(body) == (
        'Service "dual" is invalid: spec.ipFamilyPolicy: Invalid value: "RequireDualStack": '
        "this cluster is not configured for dual-stack services"
    )
    code, body = await client.post(SERVICES, service("six", clusterIP="fd00::10"))
    assert code == 422
    assert message(body) == (
        'Service "six" is invalid: spec.clusterIPs[0]: Invalid value: []string{"fd00::10"}: '
        "IPv6 is not configured on this cluster"
    )
    # Headless without a selector may name both families, as Kubernetes allows.
    headless = await create(client, "both", clusterIP="None")
    assert headless["spec"]["ipFamilies"] == ["IPv4", "IPv6"]
    assert headless["spec"]["ipFamilyPolicy"] == "RequireDualStack"


# -- type changes ------------------------------------------------------------------------


async def test_type_changes_allocate_and_release(client: Client) -> None:
    svc = await create(client, "web", ports=[{"name": "http", "port": 80}])
    ip = svc["spec"]["clusterIP"]
    code, svc = await replace(client, svc, type="NodePort")
    assert code == 200, svc
    node_port = svc["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    assert svc["spec"]["clusterIP"] == ip
    code, svc = await replace(client, svc, type="ClusterIP")
    assert code == 200, svc
    assert "nodePort" not in svc["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in svc["spec"]
    # The NodePort is free again.
    await create(client, "np", type="NodePort", ports=[{"port": 80, "nodePort": node_port}])
    code, svc = await replace(client, svc, type="ExternalName", externalName="example.com")
    assert code == 200, svc
    assert "clusterIP" not in svc["spec"]
    await create(client, "reuse", clusterIP=ip)
    code, svc = await replace(client, svc, type="ClusterIP", externalName=None)
    assert code == 200, svc
    assert svc["spec"]["clusterIP"] not in (ip, "", None)
    assert svc["spec"]["ipFamilies"] == ["IPv4"]


async def test_a_replace_without_allocated_values_keeps_them(client: Client) -> None:
    svc = await create(client, "keep", type="NodePort")
    bare = service("keep", type="NodePort")
    bare["metadata"]["resourceVersion"] = svc["metadata"]["resourceVersion"]
    code, body = await client.put(f"{SERVICES}/keep", bare)
    assert code == 200, body
    assert body["spec"]["clusterIP"] == svc["spec"]["clusterIP"]
    assert body["spec"]["ports"][0]["nodePort"] == svc["spec"]["ports"][0]["nodePort"]


async def test_a_cluster_ip_cannot_change(client: Client) -> None:
    svc = await create(client, "fixed")
    code, body = await replace(client, svc, clusterIP="10.43.0.50", clusterIPs=["10.43.0.50"])
    assert code == 422
    assert "may not change once set" in message(body)


# -- NodePorts ---------------------------------------------------------------------------


async def test_a_chosen_node_port_that_is_taken_is_refused(client: Client) -> None:
    await create(client, "a", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    code, body = await client.post(
        SERVICES, service("b", type="NodePort", ports=[{"port": 80, "nodePort": 30080}])
    )
    assert code == 422
    assert message(body) == (
        'Service "b" is invalid: spec.ports[0].nodePort: Invalid value: 30080: '
        "provided port is already allocated"
    )
    code, body = await client.post(
        SERVICES, service("c", type="NodePort", ports=[{"port": 80, "nodePort": 8080}])
    )
    assert code == 422
    assert message(body).endswith(
        "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid "
        "range. The range of valid ports is 30000-32767"
    )


async def test_one_port_number_with_two_protocols_shares_a_node_port(client: Client) -> None:
    ports = [
        {"name": "dns", "port": 53, "protocol": "UDP"},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP"},
    ]
    svc = await create(client, "dns", type="NodePort", ports=ports)
    first, second = svc["spec"]["ports"]
    assert first["nodePort"] == second["nodePort"]


async def test_removing_a_port_releases_its_node_port(client: Client) -> None:
    ports = [{"name": "a", "port": 80, "nodePort": 30100}, {"name": "b", "port": 81}]
    svc = await create(client, "two", type="NodePort", ports=ports)
    code, svc = await replace(client, svc, ports=[svc["spec"]["ports"][1]])
    assert code == 200, svc
    await create(client, "takes", type="NodePort", ports=[{"port": 80, "nodePort": 30100}])


async def test_load_balancer_ports(client: Client) -> None:
    svc = await create(client, "lb", type="LoadBalancer")
    assert svc["spec"]["ports"][0]["nodePort"] >= 30000
    assert svc["spec"]["allocateLoadBalancerNodePorts"] is True
    assert "healthCheckNodePort" not in svc["spec"]
    assert svc["status"] == {"loadBalancer": {}}
    none = await create(client, "lb2", type="LoadBalancer", allocateLoadBalancerNodePorts=False)
    assert "nodePort" not in none["spec"]["ports"][0]
    local = await create(client, "lb3", type="LoadBalancer", externalTrafficPolicy="Local")
    assert 30000 <= local["spec"]["healthCheckNodePort"] <= 32767
    code, body = await client.post(
        SERVICES,
        service(
            "lb4",
            type="LoadBalancer",
            externalTrafficPolicy="Local",
            healthCheckNodePort=local["spec"]["healthCheckNodePort"],
        ),
    )
    assert code == 500  # Kubernetes answers an InternalError here
    hc_port = local["spec"]["healthCheckNodePort"]
    assert message(body) == (
        f"Internal error occurred: failed to allocate requested HealthCheck NodePort "
        f"{hc_port}: provided port is already allocated"
    )
    code, local = await replace(client, local, externalTrafficPolicy="Cluster")
    assert code == 200, local
    assert "healthCheckNodePort" not in local["spec"]


async def test_session_affinity_defaults(client: Client) -> None:
    svc = await create(client, "sticky", sessionAffinity="ClientIP")
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert svc["spec"]["internalTrafficPolicy"] == "Cluster"


# -- restarts and repair -----------------------------------------------------------------


async def test_allocations_survive_a_restart(tmp_path: Path) -> None:
    first = await start_server(tmp_path)
    await first.services.ips.allocate("10.43.0.60")  # type: ignore[union-attr]
    await first.stop()
    second = await start_server(tmp_path)
    try:
        # The repair at start releases nothing at once (a leak needs several passes).
        with pytest.raises(bitmap.Allocated):
            await second.services.ips.allocate("10.43.0.60")  # type: ignore[union-attr]
    finally:
        await second.stop()


async def test_repair_releases_leaks_and_restores_lost_bits(
    client: Client, apiserver: server.APIServer
) -> None:
    services = apiserver.services
    assert services is not None
    await services.ips.allocate("10.43.0.70")  # a create that crashed before its write
    await services.ports.allocate(30500)
    svc = await create(client, "kept", type="NodePort")
    for _ in range(3):
        await services.repair.run_once()
    await services.ips.allocate("10.43.0.70")  # released: free again
    await services.ports.allocate(30500)
    # A lost bitmap: the repair marks what Services hold again.
    snap = await services.ips.bitmap.snapshot()
    assert await services.ips.bitmap.replace(snap, bitmap.Bits(services.ips.size))
    await services.repair.run_once()
    with pytest.raises(bitmap.Allocated):
        await services.ips.allocate(svc["spec"]["clusterIP"])
    with pytest.raises(bitmap.Allocated):
        await services.ips.allocate("10.43.0.1")  # the kubernetes Service's
