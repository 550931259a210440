"""The userspace backend: an asyncio TCP and UDP proxy, one listener per service address.

The reference implementation of the data path (kube-proxy's old userspace mode) and the one
that needs no privileges. Each listener picks an endpoint round-robin, or the client's
previous endpoint with ClientIP affinity (until ``timeoutSeconds`` of inactivity), and for
TCP tries the next endpoint when a connection is refused. UDP keeps one session (a connected
socket to the chosen endpoint) per client address, closed after ``udp_idle_timeout``.

Where it listens (``bind``):

- ``"vip"``: on every ClusterIP, LoadBalancer and external IP at the service port, and on the
  node IPs at the NodePort. Sockets use ``IP_FREEBIND``; the VIPs must reach this host
  (e.g. added to ``lo``), which needs root: with root the kernel backends are better anyway.
- ``"host"`` (process-runtime clusters, where pods share the host network and VIPs are not
  routable): a service port listens on ``host_ip`` (the node IP, 127.0.0.1 by default) at
  the *service port*, and at its NodePort when it has one. A process reaches service ``web``
  port 80 at ``<node IP>:80``. When two services use the same port the first by
  ``namespace/name`` gets it and the other only its NodePort (logged); a port that cannot be
  bound (in use, or below 1024 without privileges) is logged and skipped.

Changing a service's endpoints updates its balancer in place: listeners and established
connections stay; a listener closes when its address leaves the rule set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from kybern.proxy import relay, rules

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 2.0
UDP_IDLE_TIMEOUT = 30.0
IP_FREEBIND = 15  # <linux/in.h>; socket.IP_FREEBIND is missing on some Pythons

Address = tuple[str, int, str]  # (ip, port, protocol)


class Balancer:
    """Endpoint choice for one service port: round-robin, sticky per client with affinity."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.endpoints: tuple[rules.Endpoint, ...] = ()
        self.affinity_timeout = 0
        self.clock = clock
        self._next = 0
        self._sticky: dict[str, tuple[rules.Endpoint, float]] = {}  # client -> (ep, last use)

    def update(self, endpoints: tuple[rules.Endpoint, ...], affinity_timeout: int) -> None:
        if endpoints != self.endpoints:
            self.endpoints = endpoints
            self._next %= max(len(endpoints), 1)
        self.affinity_timeout = affinity_timeout
        if not affinity_timeout:
            self._sticky.clear()

    def candidates(self, client: str) -> list[rules.Endpoint]:
        """Endpoints to try in order: the sticky one first, else from the round-robin turn."""
        eps = list(self.endpoints)
        if not eps:
            return []
        sticky = self._sticky.get(client)
        if sticky and sticky[0] in eps and self.clock() - sticky[1] < self.affinity_timeout:
            first = eps.index(sticky[0])
        else:
            first = self._next % len(eps)
            self._next = (first + 1) % len(eps)
        return eps[first:] + eps[:first]

    def used(self, client: str, endpoint: rules.Endpoint) -> None:
        if self.affinity_timeout:
            self._sticky[client] = (endpoint, self.clock())


@dataclass
class Listener:
    address: Address
    balancer: Balancer
    sock: socket.socket | None = None  # TCP: the listening socket ...
    accepting: asyncio.Task[None] | None = None  # ... and its accept loop
    transport: asyncio.DatagramTransport | None = None
    sessions: dict[tuple[str, int], UdpSession] = field(default_factory=dict)

    def close(self) -> None:
        """Stop listening at once; established TCP connections carry on until they end."""
        if self.accepting is not None:
            self.accepting.cancel()
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
        if self.transport is not None:
            self.transport.close()
        for session in list(self.sessions.values()):
            session.close()


class UserspaceBackend:
    name = "userspace"

    def __init__(
        self,
        *,
        bind: str = "host",
        host_ip: str = "127.0.0.1",
        udp_idle_timeout: float = UDP_IDLE_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bind = bind
        self.host_ip = host_ip
        self.udp_idle_timeout = udp_idle_timeout
        self.clock = clock
        self.listeners: dict[Address, Listener] = {}
        self.failed: set[Address] = set()  # addresses that could not be bound (not retried)

    async def sync(self, ruleset: rules.RuleSet) -> str:
        wanted = dict(self.addresses(ruleset))
        for addr in [a for a in self.listeners if a not in wanted]:
            self.listeners.pop(addr).close()
        for addr, (eps, timeout) in wanted.items():
            listener = self.listeners.get(addr)
            if listener is None and addr not in self.failed:
                listener = await self._listen(addr)
            if listener is not None:
                listener.balancer.update(eps, timeout)
        self.failed &= set(wanted)
        return "partial"

    def addresses(
        self, ruleset: rules.RuleSet
    ) -> Iterator[tuple[Address, tuple[tuple[rules.Endpoint, ...], int]]]:
        """(listen address, (endpoints, affinity timeout)) for every service address."""
        taken: set[Address] = set()
        for _key, sp in sorted(ruleset.services.items()):
            proto = sp.protocol
            if proto == "SCTP":
                continue  # asyncio has no SCTP
            internal = (sp.endpoints, sp.affinity_timeout)
            external = (sp.external_endpoints, sp.affinity_timeout)
            for addr, value in self._service_addresses(sp, ruleset, internal, external):
                if addr in taken:
                    log.warning(
                        "userspace proxy: %s:%d/%s already taken, %s skipped", *addr, sp.key
                    )
                    continue
                taken.add(addr)
                yield addr, value

    def _service_addresses(
        self,
        sp: rules.ServicePort,
        ruleset: rules.RuleSet,
        internal: tuple[tuple[rules.Endpoint, ...], int],
        external: tuple[tuple[rules.Endpoint, ...], int],
    ) -> Iterator[tuple[Address, tuple[tuple[rules.Endpoint, ...], int]]]:
        if self.bind == "host":
            yield (self.host_ip, sp.port, sp.protocol), internal
            node_ips: tuple[str, ...] = (self.host_ip,)
        else:
            for ip in sp.cluster_ips:
                yield (ip, sp.port, sp.protocol), internal
            for ip in (*sp.load_balancer_ips, *sp.external_ips):
                yield (ip, sp.port, sp.protocol), external
            node_ips = ruleset.node_ips or ("0.0.0.0",)
        if sp.node_port:
            for ip in node_ips:
                yield (ip, sp.node_port, sp.protocol), external

    async def _listen(self, addr: Address) -> Listener | None:
        listener = Listener(addr, Balancer(clock=self.clock))
        try:
            sock = _socket(addr, freebind=self.bind == "vip")
            loop = asyncio.get_running_loop()
            if addr[2] == "TCP":
                listener.sock = sock
                listener.accepting = asyncio.create_task(_accept(listener, sock))
            else:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _UdpFront(listener, self.udp_idle_timeout), sock=sock
                )
                listener.transport = transport
        except OSError as exc:
            log.warning("userspace proxy: cannot listen on %s:%d/%s: %s", *addr, exc)
            self.failed.add(addr)
            return None
        self.listeners[addr] = listener
        return listener

    async def cleanup(self) -> None:
        await self.close()

    async def close(self) -> None:
        for listener in self.listeners.values():
            listener.close()
        self.listeners.clear()


def _socket(addr: Address, *, freebind: bool) -> socket.socket:
    kind = socket.SOCK_STREAM if addr[2] == "TCP" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if freebind:
            sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((addr[0], addr[1]))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


# -- TCP ----------------------------------------------------------------------------------


async def _accept(listener: Listener, sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    while True:
        try:
            conn, peer = await loop.sock_accept(sock)
        except OSError as exc:  # e.g. out of file descriptors: the next accept may work
            if sock.fileno() < 0:
                return  # closed by Listener.close
            log.warning("userspace proxy: accept on %s:%d: %s", *listener.address[:2], exc)
            await asyncio.sleep(0.1)
            continue
        task = asyncio.create_task(_serve_tcp(listener, conn, peer[0]))
        _connections.add(task)
        task.add_done_callback(_connections.discard)


# Connection tasks, referenced until they end (the loop keeps only weak references).
_connections: set[asyncio.Task[None]] = set()


async def _serve_tcp(listener: Listener, conn: socket.socket, client: str) -> None:
    try:
        _tune(conn)
        upstream = await _connect(listener.balancer, client)
        if upstream is None:
            _reset(conn)  # no endpoint answered: a reset, as the kernel backends' REJECT
            return
        try:
            await relay.relay(conn, upstream)
        finally:
            upstream.close()
    except OSError as exc:  # the client went away before the relay began
        log.debug("userspace proxy: connection from %s: %s", client, exc)
    finally:
        conn.close()


def _tune(sock: socket.socket) -> None:
    sock.setblocking(False)
    # A relay must not add Nagle's delay to small writes the endpoints already made.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _reset(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def _connect(balancer: Balancer, client: str) -> socket.socket | None:
    loop = asyncio.get_running_loop()
    for ep in balancer.candidates(client):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            _tune(sock)
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await loop.sock_connect(sock, (ep.ip, ep.port))
        except (OSError, TimeoutError) as exc:
            sock.close()
            log.debug("userspace proxy: endpoint %s failed: %s, trying the next", ep.address, exc)
            continue
        balancer.used(client, ep)
        return sock
    return None


# -- UDP ----------------------------------------------------------------------------------


class _UdpFront(asyncio.DatagramProtocol):
    """The service-side socket: datagrams from clients go to their session's endpoint."""

    def __init__(self, listener: Listener, idle_timeout: float) -> None:
        self.listener = listener
        self.idle_timeout = idle_timeout

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        session = self.listener.sessions.get(addr)
        if session is not None and not session.closed:
            session.send(data)
            return
        eps = self.listener.balancer.candidates(addr[0])
        if not eps:
            return  # no endpoint: dropped, as the kernel backends' reject would be for UDP
        self.listener.balancer.used(addr[0], eps[0])
        session = UdpSession(self.listener, addr, self.idle_timeout)
        self.listener.sessions[addr] = session
        session.task = asyncio.get_running_loop().create_task(session.start(eps[0], data))


class UdpSession(asyncio.DatagramProtocol):
    """One client's flow: a connected socket to its endpoint, replies sent back through the
    service socket, closed after ``idle_timeout`` without traffic."""

    def __init__(self, listener: Listener, client: tuple[str, int], idle_timeout: float) -> None:
        self.listener = listener
        self.client = client
        self.idle_timeout = idle_timeout
        self.transport: asyncio.DatagramTransport | None = None
        self.pending: list[bytes] = []
        self.closed = False
        self.task: asyncio.Task[None] | None = None  # held so the start is not collected
        self._timer: asyncio.TimerHandle | None = None

    async def start(self, ep: rules.Endpoint, first: bytes) -> None:
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_datagram_endpoint(
                lambda: self, remote_addr=(ep.ip, ep.port)
            )
        except OSError:
            self.close()
            return
        self.transport = transport
        for data in (first, *self.pending):
            transport.sendto(data)
        self.pending.clear()
        self._touch()

    def send(self, data: bytes) -> None:
        if self.transport is None:
            self.pending.append(data)
        else:
            self.transport.sendto(data)
            self._touch()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)
        self._touch()

    def _touch(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(self.idle_timeout, self.close)

    def close(self) -> None:
        self.closed = True
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()
        if self.listener.sessions.get(self.client) is self:
            del self.listener.sessions[self.client]
