"""Cluster DNS: queries per second and latency (issue 7, "DNS queries/s and p99 latency").

Run: ``python bench/bench_dns.py`` (prints a Markdown table), ``--write`` to replace the
"## Cluster DNS" section of bench/RESULTS.md, ``--quick`` for a short smoke run.

The server (``kybern.dns.server`` with the records of ``--services`` ClusterIP services, on
uvloop when installed, as ``kybern server`` runs) lives in a child process on 127.0.0.1, so the
load generator in this process does not share its CPU time; a fake upstream for
``www.example.test`` runs in that child too, on 127.0.0.2. Scenarios, each over UDP:

- service A: ``svc-<i>.default.svc.cluster.local`` for random i (answered from the caches);
- forwarded (cached): ``www.example.test`` after one warm-up query, so every timed query is a
  cache hit in the forwarder (the upstream sees one question);

each with one query in flight (latency: p50/p99 per query) and with ``--window`` queries in
flight (throughput). A query unanswered after 1 s counts as lost and is resent. In-process rows
time ``Handler.respond`` alone (parse, lookup, pack: the server's CPU cost per query).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # bench/ is sys.path[0]

import _report
from _report import ms, percentile, progress, rate, table
from dnslib import QTYPE, RR, A, DNSRecord

from kybern.client import store
from kybern.dns import forward, records, server

HEADING = "## Cluster DNS"
UPSTREAM = "127.0.0.2"


def build_handler(services: int, upstream: tuple[str, int]) -> server.Handler:
    svc_store = store.Store()
    for i in range(services):
        ip = f"10.43.{i // 250}.{i % 250 + 1}"
        svc_store.put(
            {
                "metadata": {"name": f"svc-{i}", "namespace": "default"},
                "spec": {
                    "clusterIP": ip,
                    "clusterIPs": [ip],
                    "ports": [{"name": "http", "port": 80}],
                },
            }
        )
    resolver = records.Resolver(records.View(svc_store, store.Store(), store.Store()))
    return server.Handler(resolver, forward.Forwarder([upstream]))


class _Upstream(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        request = DNSRecord.parse(data)
        reply = request.reply()
        reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=300, rdata=A("192.0.2.80")))
        self.transport.sendto(bytes(reply.pack()), addr)


def serve(services: int, ready: Any) -> None:
    """The child process: fake upstream + DNS server; sends the server's port to ``ready``."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    async def main() -> None:
        loop = asyncio.get_running_loop()
        up, _ = await loop.create_datagram_endpoint(_Upstream, local_addr=(UPSTREAM, 0))
        handler = build_handler(services, up.get_extra_info("sockname"))
        dns = server.DNSServer(handler)
        (_, port), *_ = await dns.start([("127.0.0.1", 0)])
        ready.send(port)
        await asyncio.Event().wait()

    asyncio.run(main())


class Load(asyncio.DatagramProtocol):
    """Keeps ``window`` queries in flight for ``duration`` seconds; records latencies."""

    def __init__(self, names: list[str], window: int, duration: float) -> None:
        self.window, self.duration = window, duration
        self.packets = [bytes(DNSRecord.question(name, "A").pack()) for name in names]
        self.sent: dict[int, float] = {}
        self.latencies: list[float] = []
        self.lost = 0
        self.done = asyncio.get_running_loop().create_future()
        self.next_id = 0
        self.deadline = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: Any = transport
        self.deadline = time.perf_counter() + self.duration
        for _ in range(self.window):
            self.send()
        asyncio.get_running_loop().call_later(1.0, self.reap)

    def send(self) -> None:
        self.next_id = (self.next_id + 1) & 0xFFFF
        packet = random.choice(self.packets)  # prebuilt: the generator must stay cheap
        self.sent[self.next_id] = time.perf_counter()
        self.transport.sendto(self.next_id.to_bytes(2, "big") + packet[2:])

    def datagram_received(self, data: bytes, addr: Any) -> None:
        started = self.sent.pop(int.from_bytes(data[:2], "big"), None)
        now = time.perf_counter()
        if started is not None:
            self.latencies.append(now - started)
        if now < self.deadline:
            self.send()
        elif not self.sent and not self.done.done():
            self.done.set_result(None)

    def reap(self) -> None:
        now = time.perf_counter()
        for qid, started in list(self.sent.items()):
            if now - started > 1.0:
                del self.sent[qid]
                self.lost += 1
                if now < self.deadline:
                    self.send()
        if now >= self.deadline + 1.0 and not self.done.done():
            self.done.set_result(None)
        elif not self.done.done():
            asyncio.get_running_loop().call_later(0.5, self.reap)


async def run_load(port: int, names: list[str], window: int, duration: float) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    transport, load = await loop.create_datagram_endpoint(
        lambda: Load(names, window, duration), remote_addr=("127.0.0.1", port)
    )
    await load.done
    took = time.perf_counter() - t0
    transport.close()
    lat = load.latencies
    return {
        "in flight": window,
        "queries/s": rate(len(lat) / took),
        "p50 ms": ms(percentile(lat, 0.5)),
        "p99 ms": ms(percentile(lat, 0.99)),
        "lost": load.lost,
    }


def in_process(services: int, n: int) -> list[dict[str, Any]]:
    """Handler.respond alone, no sockets: the CPU cost of one query, answered from the reply
    cache (the same question seen before) and built from scratch (parse, lookup, pack)."""
    handler = build_handler(services, (UPSTREAM, 9))
    names = [f"svc-{random.randrange(services)}.default.svc.cluster.local" for _ in range(n)]
    packets = [bytes(DNSRecord.question(name).pack()) for name in names]
    rows = []
    for label, call in (
        ("built (parse, lookup, pack)", handler._respond),  # bypasses the reply cache
        ("reply cache hit", handler.respond),
    ):
        for p in packets[:100]:
            handler.respond(p, udp=True)  # warm the cache for the hit row
        t0 = time.perf_counter()
        for p in packets:
            call(p, udp=True)
        took = time.perf_counter() - t0
        rows.append(
            {
                "scenario": f"service A, Handler only: {label}",
                "transport": "in-process",
                "in flight": 1,
                "queries/s": rate(n / took),
                "p50 ms": f"{took / n * 1000:.3f} (mean)",
                "p99 ms": "-",
                "lost": 0,
            }
        )
    return rows


async def over_udp(port: int, services: int, duration: float, window: int) -> list[dict[str, Any]]:
    svc_names = [f"svc-{i}.default.svc.cluster.local" for i in range(services)]
    scenarios = [("service A", svc_names), ("forwarded (cached)", ["www.example.test"])]
    rows = []
    await run_load(port, ["www.example.test"], 1, 0.2)  # warm the forwarder's cache
    for label, names in scenarios:
        for w in (1, window):
            progress(f"{label}, {w} in flight, {duration:.0f} s")
            row = await run_load(port, names, w, duration)
            rows.append({"scenario": label, "transport": "UDP", **row})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--window", type=int, default=32, help="queries in flight (throughput)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.services = 1.0, 100
    parent, child = multiprocessing.Pipe()
    proc = multiprocessing.get_context("fork").Process(
        target=serve, args=(args.services, child), daemon=True
    )
    proc.start()
    try:
        if not parent.poll(30):
            raise SystemExit("the DNS server process did not start")
        port = parent.recv()
        rows = asyncio.run(over_udp(port, args.services, args.duration, args.window))
    finally:
        proc.terminate()
        proc.join(5)
    rows += in_process(args.services, 20_000 if not args.quick else 2_000)
    body = table(rows)
    section = (
        f"{HEADING}\n\n"
        f"`python bench/bench_dns.py` ({_report.now()}; {_report.machine()}). Server in a child "
        f"process (uvloop), load generator in this one, both on 127.0.0.1; {args.services} "
        f"ClusterIP services in the caches; {args.duration:.0f} s per row; latency per query, "
        'send to answer. "forwarded (cached)": a name outside the zone answered from the '
        "forwarder's cache (a fake upstream on 127.0.0.2 saw one question). Over UDP the "
        "service names repeat, so after the first round most answers are reply-cache hits "
        "(packed replies kept until the informer caches change); the in-process rows give "
        "the cost of a reply built from scratch (right after a change) and of a hit. The "
        "load average is high when other work shares the machine: compare rows of one run.\n\n"
        f"{body}\n"
    )
    print(section)
    if args.write and not args.no_write and not args.quick:
        _report.write_section(HEADING, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
