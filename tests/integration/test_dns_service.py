"""The ``kube-system/kube-dns`` Service kept by kybern.dns.service over an in-process API
server (its ClusterIP allocated like any Service's), and ``kybern server``'s service flags."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kybern.cli import main, services
from kybern.client import errors
from kybern.dns import service as dns_service
from tests.integration.simcluster import sim_cluster

pytestmark = pytest.mark.timeout(30)
Obj = dict[str, Any]


async def _get(client: Any, kind: str, api_version: str = "v1") -> Obj:
    return dict(await client.get(api_version, kind, "kube-dns", namespace="kube-system"))


async def test_creates_and_repairs_the_kube_dns_service(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, None, scheduler=False) as cluster:
        keeper = dns_service.DNSService(
            cluster.client, cluster_ip="10.43.0.10", address="127.0.0.1", port=10053
        )
        await keeper.sync_once()
        svc = await _get(cluster.client, "Service")
        assert svc["spec"]["clusterIP"] == "10.43.0.10"
        assert "selector" not in svc["spec"]
        assert [
            (p["name"], p["protocol"], p["port"], p["targetPort"]) for p in svc["spec"]["ports"]
        ] == [
            ("dns", "UDP", 53, 10053),
            ("dns-tcp", "TCP", 53, 10053),
        ]
        slice_ = await _get(cluster.client, "EndpointSlice", "discovery.k8s.io/v1")
        assert slice_["endpoints"][0]["addresses"] == ["127.0.0.1"]
        assert slice_["metadata"]["labels"]["kubernetes.io/service-name"] == "kube-dns"
        endpoints = await _get(cluster.client, "Endpoints")
        assert endpoints["subsets"][0]["ports"][0]["port"] == 10053

        # deleted objects come back; a moved DNS server moves the endpoints
        await cluster.client.delete("v1", "Endpoints", "kube-dns", namespace="kube-system")
        keeper.port = 20053
        await keeper.sync_once()
        endpoints = await _get(cluster.client, "Endpoints")
        assert {p["port"] for p in endpoints["subsets"][0]["ports"]} == {20053}
        slice_ = await _get(cluster.client, "EndpointSlice", "discovery.k8s.io/v1")
        assert {p["port"] for p in slice_["ports"]} == {20053}
        svc = await _get(cluster.client, "Service")
        assert {p["targetPort"] for p in svc["spec"]["ports"]} == {20053}

        # a kube-dns at another ClusterIP (immutable) is replaced
        keeper.cluster_ip = "10.43.0.11"
        await keeper.sync_once()
        assert (await _get(cluster.client, "Service"))["spec"]["clusterIP"] == "10.43.0.11"


async def test_an_unchanged_service_is_not_written(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, None, scheduler=False) as cluster:
        keeper = dns_service.DNSService(
            cluster.client, cluster_ip="10.43.0.10", address="127.0.0.1", port=53
        )
        await keeper.sync_once()
        before = [
            (await _get(cluster.client, k, v))["metadata"]["resourceVersion"]
            for k, v in (("Service", "v1"), ("Endpoints", "v1"))
        ]
        await keeper.sync_once()
        after = [
            (await _get(cluster.client, k, v))["metadata"]["resourceVersion"]
            for k, v in (("Service", "v1"), ("Endpoints", "v1"))
        ]
        assert before == after
        with pytest.raises(errors.NotFound):
            await cluster.client.get("v1", "Service", "kube-dns", namespace="default")


def _server_options(*argv: str) -> dict[str, object]:
    args = main.build_parser().parse_args(["server", *argv])
    return main._service_options(args)


def test_server_service_flags() -> None:
    options = _server_options("--runtime", "process")
    dns = options["dns"]
    assert isinstance(dns, services.DNSOptions)
    assert dns.cluster_ip == "10.43.0.10"
    assert options["proxy_mode"] == ""
    options = _server_options("--service-cidr", "10.96.0.0/12", "--proxy-mode", "none")
    dns = options["dns"]
    assert isinstance(dns, services.DNSOptions)
    assert dns.cluster_ip == "10.96.0.10"
    assert options["proxy_mode"] == "none"
    assert "dns" not in _server_options("--disable-dns")
    assert "dns" not in _server_options("--simulated-nodes", "2")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--service-cidr", "10.43.0.0/33"), "invalid --service-cidr"),
        (("--service-cidr", "10.43.0.0/30"), "too small"),
        (("--service-node-port-range", "32767-30000"), "invalid --service-node-port-range"),
        (("--service-node-port-range", "abc"), "invalid --service-node-port-range"),
        (("--cluster-dns", "192.168.0.10"), "is not in --service-cidr"),
        (("--dns-port", "70000"), "invalid --dns-port"),
    ],
)
def test_server_service_flags_refused(argv: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _server_options(*argv)


def test_cluster_dns_ip() -> None:
    assert services.cluster_dns_ip("10.43.0.0/16") == "10.43.0.10"
    assert services.cluster_dns_ip("fd00:10:96::/112") == "fd00:10:96::a"
