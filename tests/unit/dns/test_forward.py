"""kybern.dns.forward: resolv.conf parsing, the cache (TTLs, negative answers, LRU), in-flight
sharing and upstream failover, with the network replaced by a scripted ``_ask``."""

from __future__ import annotations

import asyncio

import pytest
from dnslib import QTYPE, RCODE, RR, SOA, A, DNSQuestion, DNSRecord

from kybern.dns import forward

Address = tuple[str, int]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def reply(
    name: str, qtype: int, *, ip: str = "192.0.2.1", ttl: int = 60, rcode: int = RCODE.NOERROR
) -> DNSRecord:
    record = DNSRecord(q=DNSQuestion(name, qtype))
    record.header.qr = 1
    record.header.rcode = rcode
    if rcode == RCODE.NOERROR and qtype == QTYPE.A:
        record.add_answer(RR(name, QTYPE.A, ttl=ttl, rdata=A(ip)))
    else:
        soa = SOA("ns.example.", "admin.example.", (1, 2, 3, 4, 20))
        record.add_auth(RR("example.", QTYPE.SOA, ttl=ttl, rdata=soa))
    return record


class Scripted(forward.Forwarder):
    """A forwarder whose upstreams are functions, counting the questions they get."""

    def __init__(self, answers: dict[Address, object], **kw: object) -> None:
        super().__init__(list(answers), **kw)  # type: ignore[arg-type]
        self.answers = answers
        self.asked: list[Address] = []
        self.gate: asyncio.Event | None = None

    async def _ask(self, upstream: Address, qname: str, qtype: int, qclass: int) -> DNSRecord:
        self.asked.append(upstream)
        if self.gate is not None:
            await self.gate.wait()
        got = self.answers[upstream]
        if isinstance(got, Exception):
            raise got
        assert callable(got)
        result: DNSRecord = got(qname, qtype)
        return result


UP1, UP2 = ("127.0.0.2", 53), ("127.0.0.3", 53)


def test_parse_resolv_conf() -> None:
    text = "# comment\nsearch example\nnameserver 10.0.0.1\nnameserver  fe80::1%eth0 # x\noptions ndots:2\nnameserver\n"
    assert forward.parse_resolv_conf(text) == [("10.0.0.1", 53), ("fe80::1", 53)]


def test_own_addresses_are_not_upstreams() -> None:
    ups = [("10.43.0.10", 53), ("127.0.0.1", 53), ("10.0.0.1", 53)]
    assert forward.usable_upstreams(ups, [("10.43.0.10", 53)]) == ups[1:]
    assert forward.usable_upstreams(ups, [("0.0.0.0", 53)]) == [
        ("10.43.0.10", 53),
        ("10.0.0.1", 53),
    ]


async def test_cluster_names_are_never_forwarded() -> None:
    fwd = Scripted({UP1: reply})
    with pytest.raises(forward.InZone):
        await fwd.query("web.default.svc.cluster.local.", QTYPE.A)
    with pytest.raises(forward.InZone):
        await fwd.query("Cluster.Local.", QTYPE.SOA)
    assert fwd.asked == []


async def test_cache_respects_ttl_and_counts_down() -> None:
    clock = Clock()
    fwd = Scripted({UP1: lambda n, t: reply(n, t, ttl=20)}, monotonic=clock)
    first = await fwd.query("example.org.", QTYPE.A)
    assert first is not None
    assert first.rr[0].ttl == 20
    clock.now += 7
    second = await fwd.query("EXAMPLE.org.", QTYPE.A)
    assert second is not None
    assert second.rr[0].ttl == 13
    assert fwd.asked == [UP1]
    clock.now += 14
    await fwd.query("example.org.", QTYPE.A)
    assert fwd.asked == [UP1, UP1]  # expired: asked again


async def test_cache_caps_ttl_at_30s() -> None:
    clock = Clock()
    fwd = Scripted({UP1: lambda n, t: reply(n, t, ttl=3600)}, monotonic=clock)
    await fwd.query("example.org.", QTYPE.A)
    clock.now += 31
    await fwd.query("example.org.", QTYPE.A)
    assert len(fwd.asked) == 2


async def test_negative_answers_cached_for_soa_minimum() -> None:
    clock = Clock()
    fwd = Scripted({UP1: lambda n, t: reply(n, t, rcode=RCODE.NXDOMAIN, ttl=300)}, monotonic=clock)
    got = await fwd.query("nope.example.", QTYPE.A)
    assert got is not None
    assert got.header.rcode == RCODE.NXDOMAIN
    clock.now += 19
    await fwd.query("nope.example.", QTYPE.A)
    assert len(fwd.asked) == 1
    clock.now += 2  # past the SOA minimum (20 s)
    await fwd.query("nope.example.", QTYPE.A)
    assert len(fwd.asked) == 2


async def test_zero_ttl_not_cached() -> None:
    fwd = Scripted({UP1: lambda n, t: reply(n, t, ttl=0)})
    await fwd.query("example.org.", QTYPE.A)
    await fwd.query("example.org.", QTYPE.A)
    assert len(fwd.asked) == 2


async def test_failover_and_servfail() -> None:
    fwd = Scripted({UP1: forward.UpstreamError("timeout"), UP2: reply})
    got = await fwd.query("example.org.", QTYPE.A)
    assert got is not None
    assert str(got.rr[0].rdata) == "192.0.2.1"
    assert fwd.asked == [UP1, UP2]
    dead = Scripted({UP1: forward.UpstreamError("timeout"), UP2: forward.UpstreamError("refused")})
    assert await dead.query("example.org.", QTYPE.A) is None
    assert await dead.query("example.org.", QTYPE.A) is None
    assert len(dead.asked) == 4  # failures are not cached


async def test_identical_questions_share_one_upstream_query() -> None:
    fwd = Scripted({UP1: reply})
    fwd.gate = asyncio.Event()
    tasks = [asyncio.create_task(fwd.query("example.org.", QTYPE.A)) for _ in range(5)]
    await asyncio.sleep(0)
    fwd.gate.set()
    results = await asyncio.gather(*tasks)
    assert all(r is not None for r in results)
    assert fwd.asked == [UP1]


async def test_lru_bound() -> None:
    fwd = Scripted({UP1: reply}, cache_size=2)
    for name in ("a.example.", "b.example.", "c.example."):
        await fwd.query(name, QTYPE.A)
    await fwd.query("a.example.", QTYPE.A)
    assert len(fwd.asked) == 4  # "a" was evicted
