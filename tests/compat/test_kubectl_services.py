"""The real kubectl with Services: `create service`, `expose`, `get svc` columns as Kubernetes
prints them (CLUSTER-IP, EXTERNAL-IP, PORT(S)), allocation refusals on stderr, the `kubernetes`
Service, and the built-in load balancer filling EXTERNAL-IP from the nodes."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest

from tests.support import cluster
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(120)

SERVICE_CIDR = ipaddress.ip_network("10.43.0.0/16")


def row(kubectl: kubectl_.Kubectl, ns: str, name: str) -> list[str]:
    """NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE of `kubectl get svc`."""
    return kubectl("-n", ns, "get", "svc", name, "--no-headers").out.split()


def test_create_service_kinds_print_as_kubernetes(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "service", "clusterip", "web", "--tcp=80:8080")
    name, kind, cluster_ip, external, ports, _ = row(kubectl, ns, "web")
    assert (name, kind, external, ports) == ("web", "ClusterIP", "<none>", "80/TCP")
    assert ipaddress.ip_address(cluster_ip) in SERVICE_CIDR

    kubectl("-n", ns, "create", "service", "nodeport", "np", "--tcp=80:8080")
    _, kind, _, external, ports, _ = row(kubectl, ns, "np")
    number, node_port = ports.removesuffix("/TCP").split(":")
    assert (kind, external, number) == ("NodePort", "<none>", "80")
    assert 30000 <= int(node_port) <= 32767

    kubectl("-n", ns, "create", "service", "loadbalancer", "lb", "--tcp=443:8443")
    _, kind, _, external, ports, _ = row(kubectl, ns, "lb")
    assert (kind, external) == ("LoadBalancer", "<pending>")  # no load balancer runs here
    assert ports.startswith("443:")

    kubectl("-n", ns, "create", "service", "externalname", "ext", "--external-name=example.com")
    assert row(kubectl, ns, "ext")[1:5] == ["ExternalName", "<none>", "example.com", "<none>"]

    kubectl("-n", ns, "create", "service", "clusterip", "headless", "--clusterip=None")
    assert row(kubectl, ns, "headless")[1:5] == ["ClusterIP", "None", "<none>", "<none>"]


def test_expose_deployment(kubectl: kubectl_.Kubectl, ns: str) -> None:
    kubectl("-n", ns, "create", "deployment", "app", "--image=busybox", "--port=8080")
    kubectl("-n", ns, "expose", "deployment", "app", "--port=80", "--target-port=8080")
    wide = kubectl("-n", ns, "get", "svc", "app", "-o", "wide", "--no-headers").out.split()
    assert wide[1] == "ClusterIP"
    assert ipaddress.ip_address(wide[2]) in SERVICE_CIDR
    assert wide[4] == "80/TCP"
    assert wide[6] == "app=app"
    target = kubectl("-n", ns, "get", "svc", "app", "-o", "jsonpath={.spec.ports[0].targetPort}")
    assert target.out == "8080"


def test_taken_values_are_refused_with_kubernetes_messages(
    kubectl: kubectl_.Kubectl, ns: str
) -> None:
    kubectl("-n", ns, "create", "service", "nodeport", "first", "--tcp=80")
    cluster_ip = row(kubectl, ns, "first")[2]
    node_port = row(kubectl, ns, "first")[4].removesuffix("/TCP").split(":")[1]

    args = ("create", "service", "clusterip", "second", "--tcp=80", f"--clusterip={cluster_ip}")
    refused = kubectl("-n", ns, *args, check=False)
    assert refused.code != 0
    assert (
        # `create service` wraps the server's message in its own ("failed to create ...").
        f'Service "second" is invalid: spec.clusterIPs: Invalid value: '
        f'[]string{{"{cluster_ip}"}}: failed to allocate IP {cluster_ip}: provided IP is '
        "already allocated"
    ) in refused.err

    args = ("create", "service", "nodeport", "third", "--tcp=80", f"--node-port={node_port}")
    refused = kubectl("-n", ns, *args, check=False)
    assert refused.code != 0
    assert (
        f'Service "third" is invalid: spec.ports[0].nodePort: Invalid value: {node_port}: '
        "provided port is already allocated"
    ) in refused.err

    manifest = json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "fourth"},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 80}]},
        }
    )
    refused = kubectl("-n", ns, "create", "-f", "-", check=False, stdin=manifest)
    assert refused.code != 0
    assert (
        'The Service "fourth" is invalid: spec.ports[0].nodePort: Invalid value: 80: provided '
        "port is not in the valid range. The range of valid ports is 30000-32767"
    ) in refused.err


def test_the_kubernetes_service(kubectl: kubectl_.Kubectl) -> None:
    assert row(kubectl, "default", "kubernetes")[1:5] == [
        "ClusterIP",
        "10.43.0.1",
        "<none>",
        "443/TCP",
    ]
    endpoints = kubectl("-n", "default", "get", "endpoints", "kubernetes", "--no-headers").out
    assert endpoints.split()[1].startswith("127.0.0.1:")


def test_the_service_load_balancer_fills_external_ip(tmp_path: Path) -> None:
    """With the controllers and two simulated nodes, EXTERNAL-IP lists the nodes' addresses,
    and a change of type clears it."""
    args = ("--disable-scheduler", "--simulated-nodes", "2")
    proc = cluster.start_server(tmp_path, *args, api_only=False)
    try:
        full = kubectl_.Kubectl(proc.kubeconfig)
        full("create", "service", "loadbalancer", "lb", "--tcp=80")
        addresses = full(
            "get", "nodes", "-o", "jsonpath={.items[*].status.addresses[0].address}"
        ).out.split()
        expected = ",".join(sorted(addresses))

        def external() -> str:
            return str(full("get", "svc", "lb", "--no-headers").out.split()[3])

        cluster.wait_until(lambda: external() == expected, what="load balancer ingress")
        patch = '{"spec":{"type":"NodePort"}}'
        full("patch", "svc", "lb", "-p", patch)
        assert external() == "<none>"
        ingress = full("get", "svc", "lb", "-o", "jsonpath={.status.loadBalancer}").out
        assert ingress in ("", "{}")
    finally:
        proc.stop()
    assert "Traceback" not in proc.logs(), proc.logs()
