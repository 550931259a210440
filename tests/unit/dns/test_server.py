"""kybern.dns.server.Handler: messages in, messages out (no sockets): flags, error codes,
truncation over UDP, EDNS0 buffer sizes, forwarding and ExternalName chasing."""

from __future__ import annotations

import inspect
from typing import Any

from dnslib import CLASS, EDNS0, OPCODE, QTYPE, RCODE, RR, A, DNSQuestion, DNSRecord

from kybern.client import store
from kybern.dns import forward, records, server

Obj = dict[str, Any]


class FakeForwarder(forward.Forwarder):
    def __init__(self, answers: dict[str, str] | None = None) -> None:
        super().__init__([])
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    async def query(self, qname: str, qtype: int, qclass: int = 1) -> DNSRecord | None:
        self.asked.append((qname, qtype))
        if self.answers is None:
            return None
        r = DNSRecord(q=DNSQuestion(qname, qtype))
        r.header.qr = 1
        if qname in self.answers:
            r.add_answer(RR(qname, QTYPE.A, ttl=42, rdata=A(self.answers[qname])))
        else:
            r.header.rcode = RCODE.NXDOMAIN
        return r


def handler(forwarder: forward.Forwarder | None = None, n_endpoints: int = 3) -> server.Handler:
    services, slices, pods = store.Store(), store.Store(), store.Store()
    meta = {"namespace": "default"}
    services.put(
        {
            "metadata": {**meta, "name": "web"},
            "spec": {"clusterIP": "10.43.0.20", "ports": [{"port": 80}]},
        }
    )
    services.put({"metadata": {**meta, "name": "big"}, "spec": {"clusterIP": "None"}})
    services.put(
        {
            "metadata": {**meta, "name": "ext"},
            "spec": {"type": "ExternalName", "externalName": "example.org"},
        }
    )
    endpoints = [{"addresses": [f"10.42.{i // 250}.{i % 250 + 1}"]} for i in range(n_endpoints)]
    slices.put(
        {
            "metadata": {**meta, "name": "big-1", "labels": {records.SERVICE_NAME_LABEL: "big"}},
            "addressType": "IPv4",
            "endpoints": endpoints,
        }
    )
    resolver = records.Resolver(records.View(services, slices, pods))
    return server.Handler(resolver, forwarder or FakeForwarder({}))


async def ask(h: server.Handler, request: DNSRecord | bytes, *, udp: bool = True) -> DNSRecord:
    data = request if isinstance(request, bytes) else request.pack()
    result = h.respond(data, udp=udp)
    if inspect.isawaitable(result):
        result = await result
    assert isinstance(result, bytes)
    return DNSRecord.parse(result)


def query(name: str, qtype: str = "A", *, edns: int | None = None) -> DNSRecord:
    q = DNSRecord.question(name, qtype)
    if edns is not None:
        q.add_ar(EDNS0(udp_len=edns))
    return q


async def test_cluster_answer_is_authoritative_and_synchronous() -> None:
    h = handler()
    q = query("web.default.svc.cluster.local")
    result = h.respond(q.pack(), udp=True)
    assert isinstance(result, bytes)  # no task for a cache answer
    reply = DNSRecord.parse(result)
    assert reply.header.id == q.header.id
    assert (reply.header.qr, reply.header.aa, reply.header.ra, reply.header.rd) == (1, 1, 1, 1)
    assert [str(rr.rdata) for rr in reply.rr] == ["10.43.0.20"]


async def test_nxdomain_carries_soa() -> None:
    reply = await ask(handler(), query("nope.default.svc.cluster.local"))
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert [rr.rtype for rr in reply.auth] == [QTYPE.SOA]


async def test_udp_without_edns_truncates_over_512_bytes() -> None:
    h = handler(n_endpoints=60)
    raw = h.respond(query("big.default.svc.cluster.local").pack(), udp=True)
    assert isinstance(raw, bytes)
    assert len(raw) <= 512
    reply = DNSRecord.parse(raw)
    assert reply.header.tc == 1
    assert 20 < len(reply.rr) < 60  # as many as fit
    assert str(reply.q.qname) == "big.default.svc.cluster.local."
    full = await ask(h, query("big.default.svc.cluster.local"), udp=False)
    assert full.header.tc == 0
    assert len(full.rr) == 60


async def test_edns_buffer_size_is_honoured() -> None:
    h = handler(n_endpoints=60)  # ~1,000 bytes
    reply = await ask(h, query("big.default.svc.cluster.local", edns=1232))
    assert reply.header.tc == 0
    assert len(reply.rr) == 60
    assert [rr.rtype for rr in reply.ar] == [QTYPE.OPT]
    small = await ask(h, query("big.default.svc.cluster.local", edns=600))
    assert small.header.tc == 1
    assert [rr.rtype for rr in small.ar] == [QTYPE.OPT]
    tiny = await ask(h, query("big.default.svc.cluster.local", edns=100))  # below 512: 512
    assert tiny.header.tc == 1
    big = handler(n_endpoints=400)  # ~6,500 bytes: over the 4096 cap
    assert (await ask(big, query("big.default.svc.cluster.local", edns=65000))).header.tc == 1


async def test_forwarded_names() -> None:
    fwd = FakeForwarder({"example.org.": "192.0.2.7"})
    h = handler(fwd)
    reply = await ask(h, query("example.org"))
    assert reply.header.aa == 0
    assert reply.header.rcode == RCODE.NOERROR
    assert [(str(rr.rdata), rr.ttl) for rr in reply.rr] == [("192.0.2.7", 42)]
    nx = await ask(h, query("nothing.example"))
    assert nx.header.rcode == RCODE.NXDOMAIN


async def test_upstream_failure_is_servfail() -> None:
    reply = await ask(handler(FakeForwarder(None)), query("example.org"))
    assert reply.header.rcode == RCODE.SERVFAIL
    assert reply.rr == []


async def test_external_name_chased_upstream() -> None:
    fwd = FakeForwarder({"example.org.": "192.0.2.7"})
    reply = await ask(handler(fwd), query("ext.default.svc.cluster.local"))
    assert [(rr.rtype, str(rr.rdata)) for rr in reply.rr] == [
        (QTYPE.CNAME, "example.org."),
        (QTYPE.A, "192.0.2.7"),
    ]
    assert fwd.asked == [("example.org.", QTYPE.A)]


async def test_cluster_names_never_reach_the_forwarder() -> None:
    fwd = FakeForwarder({})
    h = handler(fwd)
    for name in ("nope.default.svc.cluster.local", "x.y.z.cluster.local", "cluster.local"):
        await ask(h, query(name))
    assert fwd.asked == []


async def test_bad_messages() -> None:
    h = handler()
    garbage = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xff"
    reply = await ask(h, garbage)
    assert (reply.header.id, reply.header.rcode) == (0x1234, RCODE.FORMERR)
    assert h.respond(b"\x00", udp=True) is None
    response = DNSRecord.question("web.default.svc.cluster.local")
    response.header.qr = 1
    assert h.respond(response.pack(), udp=True) is None  # never answer an answer
    notify = query("web.default.svc.cluster.local")
    notify.header.opcode = OPCODE.NOTIFY
    assert (await ask(h, notify)).header.rcode == RCODE.NOTIMP
    axfr = query("cluster.local", "AXFR")
    assert (await ask(h, axfr, udp=False)).header.rcode == RCODE.REFUSED
    chaos = DNSRecord(q=DNSQuestion("version.bind", QTYPE.TXT, CLASS.CH))
    assert (await ask(h, chaos)).header.rcode == RCODE.REFUSED
    empty = DNSRecord()
    assert (await ask(h, empty)).header.rcode == RCODE.FORMERR


async def test_reused_replies_carry_the_new_id_and_follow_changes() -> None:
    h = handler()
    await ask(h, query("web.default.svc.cluster.local"))
    again = query("web.default.svc.cluster.local")
    second = await ask(h, again)
    assert second.header.id == again.header.id
    assert [str(rr.rdata) for rr in second.rr] == ["10.43.0.20"]
    view = h.resolver.view
    web = view.services.get("default/web")
    assert web is not None
    view.services.put({**web, "spec": {**web["spec"], "clusterIP": "10.43.0.21"}})
    view.changed(0)
    third = await ask(h, query("web.default.svc.cluster.local"))
    assert [str(rr.rdata) for rr in third.rr] == ["10.43.0.21"]


async def test_forwarded_replies_are_reused_for_at_most_a_second() -> None:
    now = [100.0]
    fwd = FakeForwarder({"example.org.": "192.0.2.7"})
    fwd.monotonic = lambda: now[0]
    h = handler(fwd)
    q = query("example.org")
    await ask(h, q)
    again = await ask(h, q)  # same bytes: from the packed copy, no forwarder call
    assert [str(rr.rdata) for rr in again.rr] == ["192.0.2.7"]
    assert fwd.asked == [("example.org.", QTYPE.A)]
    now[0] += 1.5
    await ask(h, q)
    assert len(fwd.asked) == 2
    await ask(handler(FakeForwarder(None)), q)  # SERVFAIL is never kept


async def test_tcp_replies_are_cut_at_64k() -> None:
    h = handler(n_endpoints=5000)  # ~80 KB of A records
    raw = h.respond(query("big.default.svc.cluster.local").pack(), udp=False)
    assert isinstance(raw, bytes)
    assert 60_000 < len(raw) <= 65_535
    assert DNSRecord.parse(raw).header.tc == 1


async def test_several_addresses_are_shuffled() -> None:
    h = handler(n_endpoints=8)
    orders = set()
    for _ in range(30):
        reply = await ask(h, query("big.default.svc.cluster.local"))
        assert len(reply.rr) == 8
        orders.add(tuple(str(rr.rdata) for rr in reply.rr))
    assert len(orders) > 1
