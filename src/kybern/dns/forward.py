"""Forwarding names outside the cluster zone to upstream resolvers, with a cache.

What CoreDNS's ``forward . /etc/resolv.conf`` and ``cache 30`` do in the default Corefile:

- Upstreams come from the host's ``/etc/resolv.conf`` (``nameserver`` lines) or a configured
  list; an upstream that is one of the server's own listening addresses is dropped (a query
  sent to ourselves would loop, which CoreDNS's ``loop`` plugin guards against).
- Each question goes over UDP with EDNS0 (1232-byte buffer), then again over TCP when the
  answer comes back truncated. An upstream that does not answer within ``timeout`` is skipped
  for the next; when none answers the caller gets ``None`` and replies SERVFAIL.
- Answers are cached by (name, type, class) for their smallest TTL, capped at ``max_ttl``
  (30 s, as ``cache 30``); NXDOMAIN/NODATA for the SOA's negative TTL, with the same cap.
  SERVFAIL is never cached. A cached answer's TTLs count down. Identical questions in flight
  share one upstream query.
- Names inside the cluster zone are never forwarded (:class:`InZone`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from dnslib import EDNS0, QTYPE, RCODE, RR, DNSError, DNSQuestion, DNSRecord

log = logging.getLogger(__name__)

Address = tuple[str, int]
DEFAULT_TIMEOUT = 2.0  # seconds per upstream and transport
MAX_TTL = 30  # seconds: CoreDNS's default Corefile says `cache 30`
CACHE_SIZE = 10_000
EDNS_SIZE = 1232


class InZone(Exception):
    """A name inside the cluster zone was about to be forwarded."""


class UpstreamError(Exception):
    """One upstream failed (timeout, refused, garbage)."""


def parse_resolv_conf(text: str) -> list[Address]:
    """The ``nameserver`` addresses of a resolv.conf, port 53."""
    servers = []
    for line in text.splitlines():
        fields = line.split("#", 1)[0].split(";", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver":
            servers.append((fields[1].split("%", 1)[0], 53))
    return servers


def usable_upstreams(upstreams: Iterable[Address], own: Iterable[Address]) -> list[Address]:
    """Upstreams minus the server's own addresses (a loop); a wildcard listener (0.0.0.0,
    ::) also owns the loopback addresses on its port."""
    mine = set(own)
    wild_ports = {port for host, port in mine if host in ("0.0.0.0", "::", "")}
    return [u for u in upstreams if u not in mine and not (u[1] in wild_ports and _loopback(u[0]))]


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(slots=True)
class _Entry:
    stored: float
    expires: float
    reply: DNSRecord


class Forwarder:
    def __init__(
        self,
        upstreams: list[Address],
        *,
        zone: str = "cluster.local",
        timeout: float = DEFAULT_TIMEOUT,
        max_ttl: int = MAX_TTL,
        cache_size: int = CACHE_SIZE,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstreams = list(upstreams)
        self.zone = zone.strip(".").lower()
        self.timeout = timeout
        self.max_ttl = max_ttl
        self.cache_size = cache_size
        self.monotonic = monotonic
        self._cache: OrderedDict[tuple[str, int, int], _Entry] = OrderedDict()
        self._inflight: dict[tuple[str, int, int], asyncio.Future[DNSRecord | None]] = {}
        self.hits = 0
        self.misses = 0

    def in_zone(self, name: str) -> bool:
        name = name.rstrip(".").lower()
        return name == self.zone or name.endswith("." + self.zone)

    async def query(self, qname: str, qtype: int, qclass: int = 1) -> DNSRecord | None:
        """The upstream's reply (cached or fresh, TTLs counted down); None: no upstream
        answered (SERVFAIL). Raises InZone for a cluster name."""
        if self.in_zone(qname):
            raise InZone(qname)
        key = (qname.rstrip(".").lower(), qtype, qclass)
        cached = self._cached(key)
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        pending = self._inflight.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[DNSRecord | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        try:
            reply = await self._ask_upstreams(qname, qtype, qclass)
            if reply is not None:
                self._store(key, reply)
            future.set_result(reply)
            return reply
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[key]

    # -- the cache -----------------------------------------------------------------------

    def _cached(self, key: tuple[str, int, int]) -> DNSRecord | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        now = self.monotonic()
        if now >= entry.expires:
            del self._cache[key]
            return None
        self._cache.move_to_end(key)
        return _aged(entry.reply, int(now - entry.stored))

    def _store(self, key: tuple[str, int, int], reply: DNSRecord) -> None:
        ttl = self._cache_ttl(reply)
        if ttl <= 0:
            return
        now = self.monotonic()
        self._cache[key] = _Entry(now, now + ttl, reply)
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _cache_ttl(self, reply: DNSRecord) -> int:
        rcode = reply.header.rcode
        if rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
            return 0
        if rcode == RCODE.NOERROR and reply.rr:
            return int(min(self.max_ttl, *(rr.ttl for rr in reply.rr)))
        soas = [rr for rr in reply.auth if rr.rtype == QTYPE.SOA]
        if not soas:
            return 0  # a negative answer without SOA says nothing about its lifetime
        soa = soas[0]
        return int(min(self.max_ttl, soa.ttl, soa.rdata.times[4]))

    def clear(self) -> None:
        self._cache.clear()

    # -- upstream traffic ----------------------------------------------------------------

    async def _ask_upstreams(self, qname: str, qtype: int, qclass: int) -> DNSRecord | None:
        for upstream in self.upstreams:
            try:
                return await self._ask(upstream, qname, qtype, qclass)
            except UpstreamError as exc:
                log.info("upstream %s:%d failed for %s: %s", *upstream, qname, exc)
        return None

    async def _ask(self, upstream: Address, qname: str, qtype: int, qclass: int) -> DNSRecord:
        request = DNSRecord(q=DNSQuestion(qname, qtype, qclass))
        request.header.id = random.randrange(1 << 16)
        request.header.rd = 1
        request.add_ar(EDNS0(udp_len=EDNS_SIZE))
        packet = bytes(request.pack())
        reply = _check(request, await self._udp(upstream, packet))
        if reply.header.tc:
            reply = _check(request, await self._tcp(upstream, packet))
        if reply.header.rcode in (RCODE.SERVFAIL, RCODE.REFUSED):
            raise UpstreamError(RCODE.get(reply.header.rcode))
        return reply

    async def _udp(self, upstream: Address, packet: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        received: asyncio.Future[bytes] = loop.create_future()
        want_id = packet[:2]

        class Protocol(asyncio.DatagramProtocol):
            def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
                # Anything but an answer to our ID is ignored (spoofing, stray packets).
                if data[:2] == want_id and not received.done():
                    received.set_result(data)

            def error_received(self, exc: Exception) -> None:
                if not received.done():
                    received.set_exception(exc)

        try:
            transport, _ = await loop.create_datagram_endpoint(Protocol, remote_addr=upstream)
        except OSError as exc:
            raise UpstreamError(str(exc)) from exc
        try:
            transport.sendto(packet)
            async with asyncio.timeout(self.timeout):
                return await received
        except (TimeoutError, OSError) as exc:
            raise UpstreamError(f"udp: {exc or 'timeout'}") from exc
        finally:
            transport.close()

    async def _tcp(self, upstream: Address, packet: bytes) -> bytes:
        writer = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(*upstream)
                writer.write(len(packet).to_bytes(2, "big") + packet)
                size = int.from_bytes(await reader.readexactly(2), "big")
                return await reader.readexactly(size)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            raise UpstreamError(f"tcp: {exc or 'timeout'}") from exc
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()


def _check(request: DNSRecord, data: bytes) -> DNSRecord:
    try:
        reply = DNSRecord.parse(data)
    except DNSError as exc:
        raise UpstreamError(f"bad reply: {exc}") from exc
    if reply.header.id != request.header.id or not reply.header.qr:
        raise UpstreamError("reply does not match the query")
    if reply.questions and (str(reply.q.qname).lower() != str(request.q.qname).lower()):
        raise UpstreamError("reply is for another question")
    return reply


def _aged(reply: DNSRecord, elapsed: int) -> DNSRecord:
    """A copy of a cached reply whose TTLs went down by ``elapsed`` seconds."""
    copy = DNSRecord(header=reply.header, questions=list(reply.questions))
    copy.rr = [_older(rr, elapsed) for rr in reply.rr]
    copy.auth = [_older(rr, elapsed) for rr in reply.auth]
    copy.ar = [rr if rr.rtype == QTYPE.OPT else _older(rr, elapsed) for rr in reply.ar]
    return copy


def _older(rr: RR, elapsed: int) -> RR:
    # rdata is shared: nothing changes it after parsing.
    return RR(rr.rname, rr.rtype, rr.rclass, max(0, rr.ttl - elapsed), rr.rdata)
