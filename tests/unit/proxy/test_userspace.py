"""The userspace proxy (kybern.proxy.userspace) with real asyncio TCP/UDP backends on
127.0.0.1: round-robin balance, ClientIP affinity, refused endpoints skipped, UDP sessions."""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import AsyncIterator

import pytest

from kybern.proxy import rules, userspace

HOST = "127.0.0.1"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def ruleset(
    port: int, eps: list[int], *, protocol: str = "TCP", affinity: int = 0, node_port: int = 0
) -> rules.RuleSet:
    sp = rules.ServicePort(
        namespace="default",
        service="web",
        port_name="http",
        protocol=protocol,
        port=port,
        cluster_ips=("10.43.0.10",),
        node_port=node_port,
        endpoints=tuple(rules.Endpoint(HOST, p) for p in eps),
        external_endpoints=tuple(rules.Endpoint(HOST, p) for p in eps) if node_port else (),
        affinity_timeout=affinity,
    )
    return rules.RuleSet(services={sp.key: sp})


@pytest.fixture
async def tcp_backends() -> AsyncIterator[list[int]]:
    """Three TCP servers answering with their index."""
    servers = []
    for i in range(3):

        async def answer(reader, writer, i=i):
            await reader.read(100)
            writer.write(f"backend-{i}".encode())
            await writer.drain()
            writer.close()

        servers.append(await asyncio.start_server(answer, HOST, 0))
    yield [s.sockets[0].getsockname()[1] for s in servers]
    for s in servers:
        s.close()


@pytest.fixture
async def proxy() -> AsyncIterator[userspace.UserspaceBackend]:
    b = userspace.UserspaceBackend(bind="host", host_ip=HOST)
    yield b
    await b.close()


async def ask(port: int) -> str:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"hi")
    await writer.drain()
    writer.write_eof()
    data = await reader.read()
    writer.close()
    return data.decode()


async def test_round_robin_spreads_evenly(tcp_backends, proxy):
    port = free_port()
    await proxy.sync(ruleset(port, tcp_backends))
    counts = collections.Counter([await ask(port) for _ in range(30)])
    assert counts == {"backend-0": 10, "backend-1": 10, "backend-2": 10}


async def test_client_ip_affinity_sticks(tcp_backends, proxy):
    port = free_port()
    await proxy.sync(ruleset(port, tcp_backends, affinity=60))
    answers = {await ask(port) for _ in range(10)}
    assert len(answers) == 1


async def test_refused_endpoint_is_skipped(tcp_backends, proxy):
    port, dead = free_port(), free_port()
    await proxy.sync(ruleset(port, [dead, *tcp_backends[:2]]))
    counts = collections.Counter([await ask(port) for _ in range(12)])
    assert set(counts) == {"backend-0", "backend-1"}
    assert sum(counts.values()) == 12


async def test_no_endpoints_resets_the_connection(proxy):
    port = free_port()
    await proxy.sync(ruleset(port, []))
    with pytest.raises(ConnectionResetError):
        await ask(port)


async def test_endpoint_change_keeps_the_listener(tcp_backends, proxy):
    port = free_port()
    await proxy.sync(ruleset(port, tcp_backends))
    listener = proxy.listeners[(HOST, port, "TCP")]
    await proxy.sync(ruleset(port, tcp_backends[2:]))
    assert proxy.listeners[(HOST, port, "TCP")] is listener
    assert {await ask(port) for _ in range(4)} == {"backend-2"}


async def test_node_port_also_listens(tcp_backends, proxy):
    port, node_port = free_port(), free_port()
    await proxy.sync(ruleset(port, tcp_backends, node_port=node_port))
    assert (await ask(node_port)).startswith("backend-")


async def test_removed_service_stops_listening(tcp_backends, proxy):
    port = free_port()
    await proxy.sync(ruleset(port, tcp_backends))
    await proxy.sync(rules.RuleSet())
    assert proxy.listeners == {}
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection(HOST, port)


async def test_port_in_use_is_skipped_not_fatal(tcp_backends, proxy):
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen()
        port = busy.getsockname()[1]
        await proxy.sync(ruleset(port, tcp_backends))
        assert proxy.listeners == {}
        assert (HOST, port, "TCP") in proxy.failed


class UdpEcho(asyncio.DatagramProtocol):
    def __init__(self, name: str) -> None:
        self.name = name
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        assert self.transport is not None
        self.transport.sendto(self.name.encode() + b":" + data, addr)


class UdpClient(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.replies: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr) -> None:
        self.replies.put_nowait(data)


async def test_udp_sessions_balance_and_stick(proxy):
    loop = asyncio.get_running_loop()
    echoes = [
        await loop.create_datagram_endpoint(lambda i=i: UdpEcho(f"b{i}"), local_addr=(HOST, 0))
        for i in range(3)
    ]
    ports = [t.get_extra_info("sockname")[1] for t, _ in echoes]
    port = free_port(socket.SOCK_DGRAM)
    await proxy.sync(ruleset(port, ports, protocol="UDP"))
    seen = []
    clients = []
    for _ in range(3):
        transport, client = await loop.create_datagram_endpoint(UdpClient, remote_addr=(HOST, port))
        clients.append(transport)
        answers = set()
        for n in range(3):
            transport.sendto(b"x%d" % n)
            async with asyncio.timeout(5):
                answers.add((await client.replies.get()).split(b":")[0])
        assert len(answers) == 1  # one client address keeps its endpoint
        seen.append(answers.pop())
    assert sorted(seen) == [b"b0", b"b1", b"b2"]
    assert len(proxy.listeners[(HOST, port, "UDP")].sessions) == 3
    for t in clients:
        t.close()
    for t, _ in echoes:
        t.close()


async def test_udp_session_expires():
    b = userspace.UserspaceBackend(bind="host", host_ip=HOST, udp_idle_timeout=0.05)
    loop = asyncio.get_running_loop()
    echo, _ = await loop.create_datagram_endpoint(lambda: UdpEcho("b0"), local_addr=(HOST, 0))
    port = free_port(socket.SOCK_DGRAM)
    await b.sync(ruleset(port, [echo.get_extra_info("sockname")[1]], protocol="UDP"))
    transport, client = await loop.create_datagram_endpoint(UdpClient, remote_addr=(HOST, port))
    transport.sendto(b"x")
    async with asyncio.timeout(5):
        await client.replies.get()
    sessions = b.listeners[(HOST, port, "UDP")].sessions
    async with asyncio.timeout(5):
        while sessions:  # noqa: ASYNC110 - the proxy's own idle timer empties it
            await asyncio.sleep(0.01)
    transport.close()
    echo.close()
    await b.close()


class TestBalancer:
    EPS = (rules.Endpoint("10.1.0.1", 80), rules.Endpoint("10.1.0.2", 80))

    def test_round_robin_order(self):
        b = userspace.Balancer()
        b.update(self.EPS, 0)
        firsts = [b.candidates("1.2.3.4")[0].ip for _ in range(4)]
        assert firsts == ["10.1.0.1", "10.1.0.2", "10.1.0.1", "10.1.0.2"]

    def test_affinity_expires_after_timeout(self):
        now = [100.0]
        b = userspace.Balancer(clock=lambda: now[0])
        b.update(self.EPS, 10)
        first = b.candidates("1.2.3.4")[0]
        b.used("1.2.3.4", first)
        assert b.candidates("1.2.3.4")[0] == first
        now[0] += 11
        assert b.candidates("1.2.3.4")[0] != first

    def test_affinity_forgets_removed_endpoint(self):
        b = userspace.Balancer()
        b.update(self.EPS, 10)
        b.used("1.2.3.4", self.EPS[0])
        b.update(self.EPS[1:], 10)
        assert b.candidates("1.2.3.4") == [self.EPS[1]]


async def test_vip_mode_binds_cluster_ips_and_node_ports():
    b = userspace.UserspaceBackend(bind="vip")
    port, node_port = free_port(), free_port()
    sp = rules.ServicePort(
        namespace="default",
        service="web",
        port_name="http",
        protocol="TCP",
        port=port,
        cluster_ips=("10.255.255.1",),  # not local: IP_FREEBIND lets it bind anyway
        node_port=node_port,
    )
    try:
        await b.sync(rules.RuleSet(node_ips=(HOST,), services={sp.key: sp}))
        assert set(b.listeners) == {("10.255.255.1", port, "TCP"), (HOST, node_port, "TCP")}
    finally:
        await b.close()
