"""The DNS wire protocol: asyncio UDP and TCP listeners in front of the records and forwarder.

:class:`Handler` turns one request message into one reply: cluster names from
``records.Resolver`` (authoritative), everything else through ``forward.Forwarder``
(recursion available), ExternalName CNAMEs completed with the upstream's answer for their
target. Malformed messages get FORMERR, opcodes other than QUERY NOTIMP, zone transfers and
classes other than IN REFUSED, and an upstream failure SERVFAIL.

Size: over UDP a reply is limited to 512 bytes, or to the EDNS0 buffer size the client
advertises (at most 4096 bytes); a longer reply keeps the answer records that fit and sets the
TC bit, telling the client to ask again over TCP (RFC 1035 4.2.1, RFC 6891; what CoreDNS
does). Replies to EDNS0 clients carry an OPT record. Over TCP (two-byte length prefix, several
queries per connection, 10 s idle timeout as CoreDNS) the limit is the 65,535-byte message.

Answers from the caches are computed synchronously in the datagram callback: only forwarded
questions spawn a task. Several address records are shuffled (CoreDNS's ``loadbalance``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import random
from collections.abc import Awaitable
from typing import Any, cast

from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, DNSError, DNSHeader, DNSRecord

from kybern.dns import forward, records

log = logging.getLogger(__name__)

Address = tuple[str, int]
CLASSIC_UDP_SIZE = 512
MAX_UDP_SIZE = 4096
OUR_EDNS_SIZE = 1232  # what we advertise (DNS flag day 2020)
TCP_IDLE_TIMEOUT = 10.0
PACKED_CACHE_SIZE = 10_000
MAX_TCP_SIZE = 65_535
Reply = bytes | None


class Handler:
    def __init__(self, resolver: records.Resolver, forwarder: forward.Forwarder) -> None:
        self.resolver = resolver
        self.forwarder = forwarder
        # Packed cluster replies by request bytes after the ID: building a reply with dnslib
        # costs ~100 us, a hit ~1 us. Cluster records have a fixed TTL, so a reply stays
        # exact until the caches change (the view's serial moves): then all are dropped.
        self._packed: dict[tuple[bool, bytes], bytes] = {}
        self._packed_serial = resolver.view.serial
        self._cacheable = False  # set by _respond: the reply it built may be reused
        # Packed forwarded replies, kept at most one second (TTLs count down in whole
        # seconds) and never past their smallest TTL: repeated external names skip the
        # forwarder's task and dnslib entirely.
        self._recent: dict[tuple[bool, bytes], tuple[float, bytes]] = {}

    def respond(self, data: bytes, *, udp: bool) -> Reply | Awaitable[Reply]:
        """The reply to one message (None: drop it), or an awaitable of it when the question
        must go upstream."""
        data = bytes(data)  # hashable, whatever the caller read it into
        if self._packed_serial != self.resolver.view.serial:
            self._packed.clear()
            self._packed_serial = self.resolver.view.serial
        key = (udp, data[2:])
        cached = self._packed.get(key)
        if cached is not None:
            return data[:2] + cached
        recent = self._recent.get(key)
        if recent is not None:
            if recent[0] > self.forwarder.monotonic():
                return data[:2] + recent[1]
            del self._recent[key]
        result = self._respond(data, udp=udp)
        if isinstance(result, bytes) and self._cacheable:
            if len(self._packed) >= PACKED_CACHE_SIZE:
                self._packed.clear()  # a flood of distinct names: start over
            self._packed[key] = result[2:]
        return result

    def _respond(self, data: bytes, *, udp: bool) -> Reply | Awaitable[Reply]:
        self._cacheable = False
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError):
            return _formerr(data)
        if request.header.qr:
            return None  # a reply sent to us: never answer it (reflection loops)
        limit = _udp_limit(request) if udp else None
        reply = _reply_to(request)
        if request.header.opcode != OPCODE.QUERY:
            reply.header.rcode = RCODE.NOTIMP
            return _pack(reply, limit)
        if len(request.questions) != 1:
            reply.header.rcode = RCODE.FORMERR
            return _pack(reply, limit)
        question = request.q
        if question.qtype in (QTYPE.AXFR, QTYPE.IXFR) or question.qclass not in (CLASS.IN,):
            reply.header.rcode = RCODE.REFUSED
            return _pack(reply, limit)
        answer = self.resolver.resolve(str(question.qname), question.qtype)
        if answer is None:
            key = (udp, data[2:])
            return self._forwarded(reply, question.qname, question.qtype, limit, key)
        _fill(reply, answer)
        if answer.chase:
            return self._chased(reply, answer.chase, limit)
        # A shuffled answer (several addresses) must differ from one query to the next.
        self._cacheable = not _shuffle(reply.rr)
        return _pack(reply, limit)

    async def _forwarded(
        self,
        reply: DNSRecord,
        qname: Any,
        qtype: int,
        limit: int | None,
        key: tuple[bool, bytes],
    ) -> Reply:
        try:
            upstream = await self.forwarder.query(str(qname), qtype)
        except forward.InZone:  # the resolver answers the whole zone: a bug if reached
            log.exception("cluster name %s reached the forwarder", qname)
            upstream = None
        if upstream is None:
            reply.header.rcode = RCODE.SERVFAIL
            return _pack(reply, limit)
        reply.header.rcode = upstream.header.rcode
        reply.rr = list(upstream.rr)
        reply.auth = list(upstream.auth)
        reply.ar = [rr for rr in upstream.ar if rr.rtype != QTYPE.OPT] + reply.ar
        data = _pack(reply, limit)
        self._remember(key, upstream, data)
        return data

    def _remember(self, key: tuple[bool, bytes], upstream: DNSRecord, data: bytes) -> None:
        if upstream.header.rcode not in (RCODE.NOERROR, RCODE.NXDOMAIN):
            return
        ttls = [rr.ttl for rr in (*upstream.rr, *upstream.auth) if rr.rtype != QTYPE.OPT]
        keep = min(1.0, *ttls) if ttls else 0.0
        if keep <= 0:
            return
        if len(self._recent) >= PACKED_CACHE_SIZE:
            self._recent.clear()
        self._recent[key] = (self.forwarder.monotonic() + keep, data[2:])

    async def _chased(
        self, reply: DNSRecord, chase: list[tuple[str, int]], limit: int | None
    ) -> Reply:
        """ExternalName targets outside the zone: their upstream answers follow the CNAME."""
        for name, qtype in chase:
            upstream = await self.forwarder.query(name, qtype)
            if upstream is not None and upstream.header.rcode == RCODE.NOERROR:
                reply.rr += upstream.rr
        return _pack(reply, limit)


def _reply_to(request: DNSRecord) -> DNSRecord:
    header = DNSHeader(
        id=request.header.id, qr=1, ra=1, rd=request.header.rd, opcode=request.header.opcode
    )
    reply = DNSRecord(header, questions=list(request.questions))
    if _edns(request) is not None:
        reply.add_ar(EDNS0(udp_len=OUR_EDNS_SIZE))
    return reply


def _fill(reply: DNSRecord, answer: records.Answer) -> None:
    reply.header.aa = 1
    reply.header.rcode = answer.rcode
    reply.rr = list(answer.answer)
    reply.auth = list(answer.authority)
    reply.ar = list(answer.additional) + reply.ar


def _shuffle(rrs: list[Any]) -> bool:
    """Shuffle the address records in place, leaving CNAMEs where they are (CoreDNS's
    ``loadbalance`` plugin, in the default Corefile): clients that take the first address of
    a headless service spread over its pods. -> whether there was anything to shuffle."""
    slots = [i for i, rr in enumerate(rrs) if rr.rtype in (QTYPE.A, QTYPE.AAAA)]
    if len(slots) < 2:
        return False
    picked = [rrs[i] for i in slots]
    random.shuffle(picked)
    for i, rr in zip(slots, picked, strict=True):
        rrs[i] = rr
    return True


def _edns(request: DNSRecord) -> Any:
    return next((rr for rr in request.ar if rr.rtype == QTYPE.OPT), None)


def _udp_limit(request: DNSRecord) -> int:
    opt = _edns(request)
    if opt is None:
        return CLASSIC_UDP_SIZE
    return max(CLASSIC_UDP_SIZE, min(int(opt.rclass), MAX_UDP_SIZE))


def _pack(reply: DNSRecord, limit: int | None) -> bytes:
    """The packed reply, cut to ``limit`` bytes (None: TCP, 65,535) as CoreDNS does: as many
    answer records as fit, no authority or additional records, and the TC bit."""
    limit = MAX_TCP_SIZE if limit is None else limit
    data = bytes(reply.pack())
    if len(data) <= limit:
        return data
    answers = list(reply.rr)
    reply.header.tc = 1
    reply.auth = []
    reply.ar = [rr for rr in reply.ar if rr.rtype == QTYPE.OPT]
    fits, low, high = b"", 0, len(answers)
    while low <= high:  # the most answers that fit; zero always does
        mid = (low + high) // 2
        reply.rr = answers[:mid]
        data = bytes(reply.pack())
        if len(data) <= limit:
            fits, low = data, mid + 1
        else:
            high = mid - 1
    return fits


def _formerr(data: bytes) -> Reply:
    if len(data) < 12 or data[2] & 0x80:
        return None  # no usable header, or a reply: nothing to answer
    header = DNSHeader(id=int.from_bytes(data[:2], "big"), qr=1, rcode=RCODE.FORMERR)
    return bytes(DNSRecord(header).pack())


# -- listeners -----------------------------------------------------------------------------


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector loop's datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            result = self.handler.respond(data, udp=True)
        except Exception:
            log.exception("DNS request from %s failed", addr)
            return
        if isinstance(result, bytes):
            self._send(result, addr)
        elif result is not None:
            task = asyncio.ensure_future(self._later(result, addr))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _later(self, pending: Awaitable[Reply], addr: tuple[str | Any, int]) -> None:
        try:
            data = await pending
        except Exception:
            log.exception("DNS request from %s failed", addr)
            return
        if data is not None:
            self._send(data, addr)

    def _send(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(data, addr)


class DNSServer:
    """UDP and TCP listeners on each address; port 0 picks one port free for both."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.addresses: list[Address] = []
        self._udp: list[asyncio.DatagramTransport] = []
        self._tcp: list[asyncio.Server] = []
        self._conns: set[asyncio.Task[None]] = set()
        self._protocols: list[_UDP] = []

    async def start(self, listen: list[Address]) -> list[Address]:
        for host, port in listen:
            self.addresses.append(await self._bind(host, port))
        return self.addresses

    async def _bind(self, host: str, port: int) -> Address:
        loop = asyncio.get_running_loop()
        for _ in range(20):
            udp, protocol = await loop.create_datagram_endpoint(
                lambda: _UDP(self.handler), local_addr=(host, port)
            )
            bound = udp.get_extra_info("sockname")[1]
            try:
                tcp = await asyncio.start_server(self._serve_tcp, host, bound, reuse_address=True)
            except OSError as exc:
                udp.close()
                if port == 0 and exc.errno == errno.EADDRINUSE:
                    continue  # the port UDP got is taken for TCP: pick another
                raise
            self._udp.append(udp)
            self._protocols.append(protocol)
            self._tcp.append(tcp)
            return host, int(bound)
        raise OSError(errno.EADDRINUSE, f"no port free for both UDP and TCP on {host}")

    async def stop(self) -> None:
        for udp in self._udp:
            udp.close()
        for tcp in self._tcp:
            tcp.close()
        pending = [*self._conns, *(t for p in self._protocols for t in p.tasks)]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=5)
        for tcp in self._tcp:
            with contextlib.suppress(Exception):
                await tcp.wait_closed()
        self._udp, self._tcp, self._protocols = [], [], []

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._conns.add(task)
        try:
            while True:
                async with asyncio.timeout(TCP_IDLE_TIMEOUT):
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                result = self.handler.respond(data, udp=False)
                reply = result if isinstance(result, bytes) or result is None else await result
                if reply is None:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass  # idle, closed by the client or reset
        except Exception:
            log.exception("DNS over TCP failed")
        finally:
            if task is not None:
                self._conns.discard(task)
            writer.close()
