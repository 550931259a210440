"""Cluster DNS over real sockets: the component on 127.0.0.1 over an in-process API server
whose Services, EndpointSlices and Pods are created through the API, queried with dnslib's
client over UDP and TCP. Forwarding goes to a fake upstream this test starts on 127.0.0.2:
nothing leaves the machine."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, SOA, TXT, A, DNSRecord

from kybern.dns import component, forward, records
from kybern.kubelet import simulated
from tests.integration.simcluster import SimCluster, sim_cluster

pytestmark = pytest.mark.timeout(60)
Obj = dict[str, Any]
Address = tuple[str, int]
UPSTREAM_HOST = "127.0.0.2"


class FakeUpstream:
    """A tiny authoritative server for ``example.test`` on UDP and TCP: ``www`` has one A
    record, ``big`` so many TXT records that UDP must truncate; it counts the questions."""

    def __init__(self) -> None:
        self.questions: list[tuple[str, str, str]] = []  # (transport, name, type)
        self.address: Address = (UPSTREAM_HOST, 0)
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    def answer(self, data: bytes, transport: str) -> bytes:
        request = DNSRecord.parse(data)
        name = str(request.q.qname).lower()
        self.questions.append((transport, name, QTYPE[request.q.qtype]))
        reply = request.reply()
        if name == "www.example.test." and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(name, QTYPE.A, ttl=60, rdata=A("192.0.2.80")))
        elif name == "big.example.test.":
            for i in range(60):
                reply.add_answer(
                    RR(name, QTYPE.TXT, ttl=60, rdata=TXT(f"record-{i:03d}-" + "x" * 20))
                )
        elif name != "www.example.test.":
            reply.header.rcode = RCODE.NXDOMAIN
            soa = SOA("ns.example.test.", "admin.example.test.", (1, 60, 60, 60, 30))
            reply.add_auth(RR("example.test.", QTYPE.SOA, ttl=30, rdata=soa))
        packed = bytes(reply.pack())
        if transport == "udp" and len(packed) > 1232:
            reply.rr = []
            reply.header.tc = 1
            packed = bytes(reply.pack())
        return packed

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        upstream = self

        class UDP(asyncio.DatagramProtocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport

            def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
                self.transport.sendto(upstream.answer(data, "udp"), addr)  # type: ignore[attr-defined]

        self._udp, _ = await loop.create_datagram_endpoint(UDP, local_addr=(UPSTREAM_HOST, 0))
        port = self._udp.get_extra_info("sockname")[1]
        self._tcp = await asyncio.start_server(self._serve_tcp, UPSTREAM_HOST, port)
        self.address = (UPSTREAM_HOST, port)

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            size = int.from_bytes(await reader.readexactly(2), "big")
            reply = self.answer(await reader.readexactly(size), "tcp")
            writer.write(len(reply).to_bytes(2, "big") + reply)
            await writer.drain()
        writer.close()

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()


@dataclass
class DNS:
    cluster: SimCluster
    upstream: FakeUpstream
    address: Address
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def ask(self, name: str, qtype: str = "A", *, tcp: bool = False) -> DNSRecord:
        q = DNSRecord.question(name, qtype)
        raw = await asyncio.to_thread(q.send, self.address[0], self.address[1], tcp=tcp, timeout=5)
        reply = DNSRecord.parse(raw)
        assert reply.header.id == q.header.id
        return reply

    async def addresses(self, name: str, qtype: str = "A", *, tcp: bool = False) -> list[str]:
        reply = await self.ask(name, qtype, tcp=tcp)
        return sorted(str(rr.rdata) for rr in reply.rr if rr.rtype == getattr(QTYPE, qtype))

    async def wait_for(self, name: str, want: list[str], qtype: str = "A") -> None:
        """The informers follow the API asynchronously: poll until the answer is ``want``."""

        async def done() -> bool:
            return await self.addresses(name, qtype) == want

        await self.cluster.wait_for(done, what=f"{name} {qtype} -> {want}")

    async def wait_until(self, name: str, qtype: str, check: Callable[[DNSRecord], bool]) -> None:
        async def done() -> bool:
            return check(await self.ask(name, qtype))

        await self.cluster.wait_for(done, what=f"{name} {qtype}")


@pytest.fixture
async def dns(tmp_path: Path) -> AsyncIterator[DNS]:
    upstream = FakeUpstream()
    await upstream.start()
    async with sim_cluster(tmp_path, None, scheduler=False) as cluster:
        bound: asyncio.Future[list[Address]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            component.run(
                cluster.client,
                cluster.informers,
                listen=[("127.0.0.1", 0)],
                upstreams=[upstream.address],
                ready=bound.set_result,
            )
        )
        try:
            address = (await asyncio.wait_for(bound, 10))[0]
            yield DNS(cluster, upstream, address)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    await upstream.stop()


def service(name: str, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def endpoint_slice(service_name: str, endpoints: list[Obj], ports: list[Obj]) -> Obj:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service_name}-x1",
            "namespace": "default",
            "labels": {records.SERVICE_NAME_LABEL: service_name},
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }


async def create_pod(dns: DNS, name: str, ip: str) -> None:
    client = dns.cluster.client
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}]},
    }
    created = await client.create(body, namespace="default")
    created["status"] = {**(created.get("status") or {}), "podIP": ip, "podIPs": [{"ip": ip}]}
    await client.update_status(created)


async def test_service_records_over_udp_and_tcp(dns: DNS) -> None:
    client = dns.cluster.client
    ports = [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]
    await client.create(service("web", clusterIP="10.43.200.20", ports=ports), namespace="default")
    await dns.wait_for("web.default.svc.cluster.local", ["10.43.200.20"])
    assert await dns.addresses("web.default.svc.cluster.local", tcp=True) == ["10.43.200.20"]
    assert await dns.addresses("WEB.default.SVC.cluster.local") == ["10.43.200.20"]
    srv = await dns.ask("_http._tcp.web.default.svc.cluster.local", "SRV", tcp=True)
    assert [(rr.rdata.port, str(rr.rdata.target)) for rr in srv.rr] == [
        (80, "web.default.svc.cluster.local.")
    ]
    ptr = await dns.ask("20.200.43.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in ptr.rr] == ["web.default.svc.cluster.local."]
    nx = await dns.ask("nope.default.svc.cluster.local")
    assert nx.header.rcode == RCODE.NXDOMAIN
    assert nx.header.aa == 1
    assert [rr.rtype for rr in nx.auth] == [QTYPE.SOA]
    nodata = await dns.ask("web.default.svc.cluster.local", "AAAA")
    assert (nodata.header.rcode, nodata.rr, [rr.rtype for rr in nodata.auth]) == (
        RCODE.NOERROR,
        [],
        [QTYPE.SOA],
    )
    await client.delete("v1", "Service", "web", namespace="default")
    await dns.wait_until(
        "web.default.svc.cluster.local", "A", lambda r: r.header.rcode == RCODE.NXDOMAIN
    )
    assert not [q for q in dns.upstream.questions if "cluster.local" in q[1] or "arpa" in q[1]]


async def test_headless_statefulset_style_names(dns: DNS) -> None:
    client = dns.cluster.client
    ports = [{"name": "pg", "port": 5432, "protocol": "TCP"}]
    await client.create(service("db", clusterIP="None", ports=ports), namespace="default")
    endpoints = [
        {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": True}},
        {"addresses": ["10.42.0.6"], "hostname": "db-1", "conditions": {"ready": True}},
        {"addresses": ["10.42.0.7"], "hostname": "db-2", "conditions": {"ready": False}},
    ]
    await client.create(endpoint_slice("db", endpoints, ports), namespace="default")
    await dns.wait_for("db.default.svc.cluster.local", ["10.42.0.5", "10.42.0.6"])
    assert await dns.addresses("db-1.db.default.svc.cluster.local", tcp=True) == ["10.42.0.6"]
    assert (await dns.ask("db-2.db.default.svc.cluster.local")).header.rcode == RCODE.NXDOMAIN
    srv = await dns.ask("_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert sorted(str(rr.rdata.target) for rr in srv.rr) == [
        "db-0.db.default.svc.cluster.local.",
        "db-1.db.default.svc.cluster.local.",
    ]
    assert sorted(str(rr.rdata) for rr in srv.ar) == ["10.42.0.5", "10.42.0.6"]
    await create_pod(dns, "db-0", "10.42.0.5")
    await create_pod(dns, "loner", "10.42.0.9")
    await dns.wait_until("9.0.42.10.in-addr.arpa", "PTR", lambda r: bool(r.rr))
    ptr = await dns.ask("9.0.42.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in ptr.rr] == ["10-42-0-9.default.pod.cluster.local."]
    ptr = await dns.ask("5.0.42.10.in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in ptr.rr] == ["db-0.db.default.svc.cluster.local."]
    assert await dns.addresses("10-42-0-9.default.pod.cluster.local") == ["10.42.0.9"]


async def test_forwarding_with_cache_and_truncation(dns: DNS) -> None:
    assert await dns.addresses("www.example.test") == ["192.0.2.80"]
    assert await dns.addresses("WWW.example.test", tcp=True) == ["192.0.2.80"]
    assert [q for q in dns.upstream.questions if q[1] == "www.example.test."] == [
        ("udp", "www.example.test.", "A")
    ]
    nx = await dns.ask("missing.example.test")
    assert nx.header.rcode == RCODE.NXDOMAIN
    assert nx.header.aa == 0
    # 60 TXT records: the upstream truncates over UDP, the forwarder retries over TCP; our
    # reply to a UDP client without EDNS truncates again, and TCP gets everything.
    small = await dns.ask("big.example.test", "TXT")
    assert small.header.tc == 1
    full = await dns.ask("big.example.test", "TXT", tcp=True)
    assert len(full.rr) == 60
    big_questions = [q[0] for q in dns.upstream.questions if q[1] == "big.example.test."]
    assert big_questions == ["udp", "tcp"]  # and the second ask came from the cache


async def test_external_name(dns: DNS) -> None:
    client = dns.cluster.client
    await client.create(
        service("ext", type="ExternalName", externalName="www.example.test"), namespace="default"
    )
    await dns.wait_until("ext.default.svc.cluster.local", "A", lambda r: bool(r.rr))
    reply = await dns.ask("ext.default.svc.cluster.local")
    assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in reply.rr] == [
        ("CNAME", "www.example.test."),
        ("A", "192.0.2.80"),
    ]


async def test_upstream_down_is_servfail(tmp_path: Path) -> None:
    async with sim_cluster(tmp_path, None, scheduler=False) as cluster:
        bound: asyncio.Future[list[Address]] = asyncio.get_running_loop().create_future()
        # Nothing listens on this port: the UDP query is refused at once (ICMP unreachable).
        task = asyncio.create_task(
            component.run(
                cluster.client,
                cluster.informers,
                listen=[("127.0.0.1", 0)],
                upstreams=[(UPSTREAM_HOST, 9)],
                ready=bound.set_result,
            )
        )
        try:
            address = (await asyncio.wait_for(bound, 10))[0]
            reply = await DNS(cluster, FakeUpstream(), address).ask("www.example.test")
            assert reply.header.rcode == RCODE.SERVFAIL
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def system_client(host: str, port: int, name: str) -> list[str] | None:
    """A command line of the machine's DNS client: dig, nslookup, or busybox's nslookup
    (which takes ``host:port``)."""
    if shutil.which("dig"):
        return ["dig", f"@{host}", "-p", str(port), "+short", name]
    if shutil.which("nslookup"):
        return ["nslookup", f"-port={port}", name, host]
    if shutil.which("busybox"):
        return ["busybox", "nslookup", name, f"{host}:{port}"]
    return None


@pytest.mark.skipif(system_client("127.0.0.1", 53, "x") is None, reason="no dig/nslookup/busybox")
async def test_system_client(dns: DNS) -> None:
    await dns.cluster.client.create(
        service("web", clusterIP="10.43.200.21", ports=[{"port": 80}]), namespace="default"
    )
    await dns.wait_for("web.default.svc.cluster.local", ["10.43.200.21"])
    argv = system_client(*dns.address, "web.default.svc.cluster.local")
    assert argv is not None
    proc = await asyncio.create_subprocess_exec(*argv, stdout=asyncio.subprocess.PIPE)
    out, _ = await asyncio.wait_for(proc.communicate(), 10)
    assert proc.returncode == 0
    assert "10.43.200.21" in out.decode()


async def test_statefulset_pods_through_the_controllers(tmp_path: Path) -> None:
    """The whole path: a StatefulSet's pods (hostname + subdomain) on a simulated node, the
    EndpointSlice controller's slices, and DNS names for each pod of the headless service."""
    config = simulated.Config(nodes=1, heartbeat=3600, status_interval=3600)
    controllers = ["statefulset", "endpointslice"]
    async with sim_cluster(tmp_path, config, controllers=controllers) as cluster:
        bound: asyncio.Future[list[Address]] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            component.run(
                cluster.client,
                cluster.informers,
                listen=[("127.0.0.1", 0)],
                upstreams=[],
                ready=bound.set_result,
            )
        )
        try:
            dns = DNS(cluster, FakeUpstream(), (await asyncio.wait_for(bound, 10))[0])
            ports = [{"name": "web", "port": 80, "protocol": "TCP"}]
            headless = service("web", clusterIP="None", selector={"app": "web"}, ports=ports)
            await cluster.client.create(headless, namespace="default")
            await cluster.client.create(statefulset("web", replicas=2), namespace="default")

            async def pod_ips() -> list[str] | None:
                pods = [await cluster.pod(f"web-{i}") for i in range(2)]
                ips = [((p or {}).get("status") or {}).get("podIP") for p in pods]
                return ips if all(ips) else None  # type: ignore[return-value]

            ips = await cluster.wait_for(pod_ips, what="StatefulSet pods with IPs")
            await dns.wait_for("web.default.svc.cluster.local", sorted(ips))
            for i, ip in enumerate(ips):
                assert await dns.addresses(f"web-{i}.web.default.svc.cluster.local") == [ip]
            srv = await dns.ask("_web._tcp.web.default.svc.cluster.local", "SRV")
            assert sorted(str(rr.rdata.target) for rr in srv.rr) == [
                "web-0.web.default.svc.cluster.local.",
                "web-1.web.default.svc.cluster.local.",
            ]
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def statefulset(name: str, *, replicas: int) -> Obj:
    container = {"name": "app", "image": "nginx", "resources": {"requests": {"cpu": "10m"}}}
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "serviceName": name,
            "replicas": replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [container]},
            },
        },
    }


async def test_forwarder_times_out_then_fails_over() -> None:
    """A silent upstream (a bound socket that never answers) costs one timeout; the next
    upstream answers, over real UDP."""
    upstream = FakeUpstream()
    await upstream.start()
    loop = asyncio.get_running_loop()
    silent, _ = await loop.create_datagram_endpoint(
        asyncio.DatagramProtocol, local_addr=(UPSTREAM_HOST, 0)
    )
    try:
        fwd = forward.Forwarder([silent.get_extra_info("sockname"), upstream.address], timeout=0.2)
        t0 = loop.time()
        reply = await fwd.query("www.example.test.", QTYPE.A)
        assert reply is not None
        assert [str(rr.rdata) for rr in reply.rr] == ["192.0.2.80"]
        assert 0.2 <= loop.time() - t0 < 2
        only_silent = forward.Forwarder([silent.get_extra_info("sockname")], timeout=0.1)
        assert await only_silent.query("www.example.test.", QTYPE.A) is None
    finally:
        silent.close()
        await upstream.stop()
