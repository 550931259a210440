"""Service, Endpoints, EndpointSlice, Ingress, IngressClass and NetworkPolicy printers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.api.test_printers_helpers import cells, headers, obj


def service(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return obj("v1", "Service", "web", 86400 * 3, spec=spec, status=status or {})


def test_service_headers() -> None:
    assert headers("", "Service") == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert headers("", "Service", wide=True)[6:] == ["SELECTOR"]


def test_cluster_ip_service_golden_row() -> None:
    spec = {
        "type": "ClusterIP",
        "clusterIP": "10.96.0.10",
        "clusterIPs": ["10.96.0.10"],
        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 9153, "protocol": "TCP"}],
        "selector": {"k8s-app": "kube-dns"},
    }
    assert cells("", "Service", service(spec)) == [
        "web",
        "ClusterIP",
        "10.96.0.10",
        "<none>",
        "53/UDP,9153/TCP",
        "3d",
        "k8s-app=kube-dns",
    ]


@pytest.mark.parametrize(
    ("spec", "status", "external"),
    [
        ({"type": "NodePort", "externalIPs": ["1.2.3.4"]}, {}, "1.2.3.4"),
        ({"type": "LoadBalancer"}, {}, "<pending>"),
        (
            {"type": "LoadBalancer"},
            {"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}, {"hostname": "lb.example.com"}]}},
            "5.6.7.8,lb.example.com",
        ),
        ({"type": "ExternalName", "externalName": "db.example.com"}, {}, "db.example.com"),
    ],
)
def test_external_ip(spec: dict[str, Any], status: dict[str, Any], external: str) -> None:
    assert cells("", "Service", service(spec, status))[3] == external


def test_node_port_and_headless() -> None:
    spec = {
        "type": "NodePort",
        "clusterIPs": ["None"],
        "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}],
    }
    row = cells("", "Service", service(spec))
    assert row[2] == "None"
    assert row[4] == "80:30080/TCP"
    assert row[6] == "<none>"
    assert cells("", "Service", service({"type": "ClusterIP"}))[2:5] == [
        "<none>",
        "<none>",
        "<none>",
    ]


def test_endpoints() -> None:
    assert headers("", "Endpoints") == ["NAME", "ENDPOINTS", "AGE"]
    subsets = [
        {
            "addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}],
            "ports": [{"port": 80}, {"port": 443}],
        }
    ]
    item = obj("v1", "Endpoints", "web", 30, subsets=subsets)
    assert cells("", "Endpoints", item) == [
        "web",
        "10.0.0.1:80,10.0.0.2:80,10.0.0.1:443 + 1 more...",
        "30s",
    ]
    assert cells("", "Endpoints", obj("v1", "Endpoints", "none", 30))[1] == "<none>"
    v6 = obj(
        "v1",
        "Endpoints",
        "v6",
        30,
        subsets=[{"addresses": [{"ip": "fd00::1"}], "ports": [{"port": 80}]}],
    )
    assert cells("", "Endpoints", v6)[1] == "[fd00::1]:80"


def test_endpoint_slice() -> None:
    assert headers("discovery.k8s.io", "EndpointSlice") == [
        "NAME",
        "ADDRESSTYPE",
        "PORTS",
        "ENDPOINTS",
        "AGE",
    ]
    item = obj(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "web-abc",
        30,
        addressType="IPv4",
        ports=[{"port": 80}, {"name": "metrics"}, {}],
        endpoints=[
            {"addresses": ["10.0.0.1"]},
            {"addresses": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]},
        ],
    )
    assert cells("discovery.k8s.io", "EndpointSlice", item) == [
        "web-abc",
        "IPv4",
        "80,metrics,*",
        "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...",
        "30s",
    ]
    empty = obj("discovery.k8s.io/v1", "EndpointSlice", "e", 30, addressType="IPv4", endpoints=[])
    assert cells("discovery.k8s.io", "EndpointSlice", empty)[2:4] == ["<unset>", "<unset>"]


def test_ingress() -> None:
    assert headers("networking.k8s.io", "Ingress") == [
        "NAME",
        "CLASS",
        "HOSTS",
        "ADDRESS",
        "PORTS",
        "AGE",
    ]
    spec = {
        "ingressClassName": "nginx",
        "rules": [{"host": "a.example.com"}, {}, {"host": "b.example.com"}],
        "tls": [{"hosts": ["a.example.com"]}],
    }
    status = {"loadBalancer": {"ingress": [{"ip": "9.9.9.9"}]}}
    item = obj("networking.k8s.io/v1", "Ingress", "web", 60, spec=spec, status=status)
    assert cells("networking.k8s.io", "Ingress", item) == [
        "web",
        "nginx",
        "a.example.com,b.example.com",
        "9.9.9.9",
        "80, 443",
        "60s",
    ]
    bare = obj("networking.k8s.io/v1", "Ingress", "bare", 60, spec={"defaultBackend": {}})
    assert cells("networking.k8s.io", "Ingress", bare)[1:5] == ["<none>", "*", "", "80"]
    many = obj(
        "networking.k8s.io/v1",
        "Ingress",
        "m",
        60,
        spec={"rules": [{"host": f"h{i}"} for i in range(5)]},
    )
    assert cells("networking.k8s.io", "Ingress", many)[2] == "h0,h1,h2 + 2 more..."


def test_ingress_class_and_network_policy() -> None:
    params = {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}
    item = obj(
        "networking.k8s.io/v1",
        "IngressClass",
        "nginx",
        60,
        spec={"controller": "k8s.io/ingress-nginx", "parameters": params},
    )
    assert headers("networking.k8s.io", "IngressClass") == [
        "NAME",
        "CONTROLLER",
        "PARAMETERS",
        "AGE",
    ]
    assert cells("networking.k8s.io", "IngressClass", item) == [
        "nginx",
        "k8s.io/ingress-nginx",
        "IngressParameters.k8s.example.com/external-lb",
        "60s",
    ]
    assert headers("networking.k8s.io", "NetworkPolicy") == ["NAME", "POD-SELECTOR", "AGE"]
    deny = obj("networking.k8s.io/v1", "NetworkPolicy", "deny", 60, spec={"podSelector": {}})
    assert cells("networking.k8s.io", "NetworkPolicy", deny) == ["deny", "<none>", "60s"]
    web = obj(
        "networking.k8s.io/v1",
        "NetworkPolicy",
        "web",
        60,
        spec={"podSelector": {"matchLabels": {"app": "web"}}},
    )
    assert cells("networking.k8s.io", "NetworkPolicy", web)[1] == "app=web"
