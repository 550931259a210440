"""Benchmark of the API server over HTTPS, against a fresh ``kybern server`` and a local etcd.

Run: ``python bench/bench_api.py`` (``--quick`` for a smoke run, ``--no-write`` to leave
bench/RESULTS.md alone, ``--profile`` to sample the server with py-spy during the 64-client
create runs instead of benchmarking). Prints markdown tables and replaces the
"## API server" section of bench/RESULTS.md (other sections are kept).

Everything talks to a ``kybern server`` started by the benchmark in a temporary data dir on
127.0.0.1 (a separate process; this process is the load generator). Clients are aiohttp
sessions with one keep-alive TLS connection each, authenticated with the admin client
certificate. Scenarios, in order:

- startup: time to /readyz, idle RSS of the server process (VmRSS).
- list3000: 3,000 pods in one namespace (RSS after), then LIST of them unpaginated and in
  kubectl's chunks (limit=500 + continue; also with kubectl's Table Accept header).
- create: closed-loop creates of ConfigMaps and Pods with 1, 16 and 64 clients.
- get / list: GETs of single objects and LISTs of a 100-object namespace, 1, 16, 64 clients.
- watch: 1, 16, 64 and 1,000 watchers on one namespace's ConfigMaps, then paced creates;
  delivery latency = event arrival at a watcher minus the create's send (and its ack).
- paced: open-loop mutating load at 200 writes/s (create, update, delete in turn); latency
  counted from each write's scheduled time, so a stalled server cannot hide queueing.
- etcd: the server stopped, a single-member etcd on 127.0.0.1 takes raw puts (JSON gateway)
  with 1, 16, 64 clients and values the size of our stored objects; our create rate is
  reported as a ratio of its put rate.

CPU columns are cores used over the run (1.00 = one core) by the server process and by this
load generator: on a 2-core machine the client competes with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _api_report
import _client
import _etcd
import _profile
import _report
from _report import ms, percentile, progress, rate

from kybern.testing import server_process

HEADING = "## API server"
CONCURRENCY = (1, 16, 64)
READ_OBJECTS = 100  # objects per namespace for the GET and LIST runs


@dataclass(frozen=True)
class Plan:
    """How long each scenario runs; ``QUICK`` only checks that everything works."""

    create_seconds: dict[int, float]
    read_seconds: float
    list_pods: int
    list_reps: int
    watch_writes: int
    watch_rate: float
    many_watchers: int
    many_watch_writes: int
    paced_seconds: float
    paced_rate: float = 200.0


FULL = Plan(
    create_seconds={1: 5, 16: 6, 64: 10},
    read_seconds=4,
    list_pods=3000,
    list_reps=10,
    watch_writes=100,
    watch_rate=20,
    many_watchers=1000,
    many_watch_writes=200,
    paced_seconds=15,
)
QUICK = Plan(
    create_seconds={1: 1, 16: 1, 64: 1.5},
    read_seconds=1,
    list_pods=3000,
    list_reps=2,
    watch_writes=20,
    watch_rate=20,
    many_watchers=1000,
    many_watch_writes=20,
    paced_seconds=3,
)

# -- objects ----------------------------------------------------------------------------------


def configmap(name: str, value: str = "v") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "data": {"config.yaml": "key: " + value * 200, "mode": "fast"},
    }


def pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "busybox:1.36",
                    "command": ["sleep", "3600"],
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "env": [{"name": "MODE", "value": "bench"}],
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "16Mi"},
                        "limits": {"cpu": "100m", "memory": "64Mi"},
                    },
                }
            ]
        },
    }


KINDS: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "ConfigMap": ("configmaps", configmap),
    "Pod": ("pods", pod),
}


def collection(kind: str, ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/{KINDS[kind][0]}"


# -- load loops -------------------------------------------------------------------------------

Op = Callable[[aiohttp.ClientSession, int, int], Awaitable[Any]]


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    meter: _client.CpuMeter | None = None

    @property
    def throughput(self) -> float:
        assert self.meter is not None
        return len(self.latencies) / self.meter.wall

    def record_error(self, exc: BaseException) -> None:
        self.errors += 1
        self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"[:200]

    def row(self, **first: Any) -> dict[str, Any]:
        assert self.meter is not None
        lat = self.latencies
        return {
            **first,
            "ops": len(lat),
            "ops/s": rate(self.throughput),
            "p50 ms": ms(percentile(lat, 0.50)),
            "p99 ms": ms(percentile(lat, 0.99)),
            "max ms": ms(max(lat, default=float("nan"))),
            "errors": self.errors,
            **self.meter.columns(),
        }


async def closed_loop(
    clients: list[aiohttp.ClientSession],
    op: Op,
    *,
    pid: int,
    seconds: float | None = None,
    total: int | None = None,
) -> Run:
    """Each client issues ``op`` back to back until the time is up or ``total`` ops are done."""
    run = Run()
    next_index = 0

    async def worker(w: int, client: aiohttp.ClientSession) -> None:
        nonlocal next_index
        i = 0
        while True:
            if total is not None:
                if next_index >= total:
                    return
                i, next_index = next_index, next_index + 1
            elif time.perf_counter() >= stop_at:
                return
            t0 = time.perf_counter()
            try:
                await op(client, w, i)
            except (TimeoutError, aiohttp.ClientError, RuntimeError) as exc:
                run.record_error(exc)
                continue
            finally:
                i += 1
            run.latencies.append(time.perf_counter() - t0)

    stop_at = time.perf_counter() + (seconds or 0)
    with _client.CpuMeter(pid) as run.meter:
        await asyncio.gather(*(worker(w, c) for w, c in enumerate(clients)))
    return run


@contextlib.asynccontextmanager
async def sessions(creds: _client.Credentials, n: int):  # type: ignore[no-untyped-def]
    clients = [_client.session(creds) for _ in range(n)]
    try:
        yield clients
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def warm_up(clients: list[aiohttp.ClientSession], path: str = "/version") -> None:
    """Open every client's TLS connection before the timed part."""
    await asyncio.gather(*(_client.request(c, "GET", path) for c in clients))


# -- the benchmark ----------------------------------------------------------------------------


class Bench:
    def __init__(self, server: server_process.ServerProcess, plan: Plan) -> None:
        self.server = server
        self.plan = plan
        assert server.process is not None
        self.pid = server.process.pid
        self.creds = _client.load_credentials(server.data_dir, server.url)
        self.results: dict[str, Any] = {}
        self.stored_size: dict[str, int] = {}

    async def namespace(self, client: aiohttp.ClientSession, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await _client.request(client, "POST", "/api/v1/namespaces", body, expect=201)

    def create_op(self, kind: str, ns: str, *, numbered: bool = False) -> Op:
        """Creates named o<worker>-<i>, or o<i> when ``numbered`` (for a fixed-count fill)."""
        path, make = collection(kind, ns), KINDS[kind][1]

        async def op(client: aiohttp.ClientSession, w: int, i: int) -> None:
            name = f"o{i}" if numbered else f"o{w}-{i}"
            body = await _client.request(client, "POST", path, make(name), 201)
            self.stored_size.setdefault(kind, len(body))

        return op

    async def fill(
        self, kind: str, ns: str, count: int, clients: list[aiohttp.ClientSession]
    ) -> Run:
        await self.namespace(clients[0], ns)
        op = self.create_op(kind, ns, numbered=True)
        return await closed_loop(clients, op, pid=self.pid, total=count)

    # -- list of 3,000 pods ----------------------------------------------------------------

    async def list3000(self) -> None:
        n = self.plan.list_pods
        progress(f"list: creating {n} pods in one namespace")
        async with sessions(self.creds, 64) as clients:
            await warm_up(clients)
            run = await self.fill("Pod", "list3000", n, clients)
            if run.errors:
                raise RuntimeError(f"creating pods failed: {run.first_error}")
        self.results["rss_pods"] = _client.rss_bytes(self.pid)
        path = collection("Pod", "list3000")
        async with sessions(self.creds, 1) as (client,):
            await warm_up([client])
            rows = [
                await self.list_mode(client, "unpaginated", path, {}, n),
                await self.list_mode(client, "limit=500 + continue", path, {"limit": "500"}, n),
                await self.list_mode(
                    client,
                    "kubectl get: Table Accept, limit=500 + continue",
                    path,
                    {"limit": "500"},
                    n,
                    accept="application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
                ),
            ]
        self.results["list3000"] = rows

    async def list_mode(
        self,
        client: aiohttp.ClientSession,
        mode: str,
        path: str,
        params: dict[str, str],
        expect_items: int,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        progress(f"list: {mode} x{self.plan.list_reps}")
        times, size, kinds_seen = [], 0, set()
        with _client.CpuMeter(self.pid) as meter:
            for _ in range(self.plan.list_reps):
                t0 = time.perf_counter()
                items, size, kind = await list_all(client, path, params, accept)
                times.append(time.perf_counter() - t0)
                kinds_seen.add(kind)
                if items != expect_items:
                    raise RuntimeError(f"list {mode}: {items} items, expected {expect_items}")
        return {
            "mode": mode,
            "response": "/".join(sorted(kinds_seen)),
            "items": expect_items,
            "MiB": _report.mib(size),
            "reps": len(times),
            "p50 ms": ms(percentile(times, 0.5)),
            "max ms": ms(max(times)),
            **meter.columns(),
        }

    # -- creates, gets, lists ----------------------------------------------------------------

    async def creates(self) -> None:
        rows = []
        for kind in KINDS:
            for c in CONCURRENCY:
                seconds = self.plan.create_seconds[c]
                progress(f"create {kind}: {c} clients, {seconds:g}s")
                ns = f"create-{kind.lower()}-{c}"
                async with sessions(self.creds, c) as clients:
                    await warm_up(clients)
                    await self.namespace(clients[0], ns)
                    op = self.create_op(kind, ns)
                    run = await closed_loop(clients, op, pid=self.pid, seconds=seconds)
                rows.append(run.row(kind=kind, clients=c))
                progress(
                    f"  -> {rate(run.throughput)}/s, p99 {ms(percentile(run.latencies, 0.99))} ms"
                )
        self.results["create"] = rows
        self.results["rss_after_creates"] = _client.rss_bytes(self.pid)

    async def reads(self) -> None:
        async with sessions(self.creds, 64) as clients:
            for kind in KINDS:
                await self.fill(kind, f"read-{kind.lower()}", READ_OBJECTS, clients)
        get_rows, list_rows = [], []
        for kind in KINDS:
            path = collection(kind, f"read-{kind.lower()}")
            for c in CONCURRENCY:
                progress(f"get/list {kind}: {c} clients")
                async with sessions(self.creds, c) as clients:
                    await warm_up(clients)
                    get_rows.append(await self.read_run(clients, kind, c, get_op(path)))
                    list_rows.append(await self.read_run(clients, kind, c, list_op(path)))
        self.results["get"], self.results["list"] = get_rows, list_rows

    async def read_run(
        self, clients: list[aiohttp.ClientSession], kind: str, c: int, op: Op
    ) -> dict[str, Any]:
        run = await closed_loop(clients, op, pid=self.pid, seconds=self.plan.read_seconds)
        return run.row(kind=kind, clients=c)

    # -- watch -------------------------------------------------------------------------------

    async def watches(self) -> None:
        rows = []
        counts = [*CONCURRENCY, self.plan.many_watchers]
        for n in counts:
            many = n == self.plan.many_watchers
            writes = self.plan.many_watch_writes if many else self.plan.watch_writes
            progress(f"watch: {n} watchers, {writes} creates at {self.plan.watch_rate:g}/s")
            rows.append(await self.watch_run(n, writes, self.plan.watch_rate))
        self.results["watch"] = rows

    async def watch_run(self, watchers: int, writes: int, pace: float) -> dict[str, Any]:
        ns = f"watch-{watchers}"
        pattern = re.compile(rb'"name":"(wm-\d+)"')
        async with sessions(self.creds, 1) as (writer,):
            await self.namespace(writer, ns)
            streams = await open_watches(
                self.creds, f"{collection('ConfigMap', ns)}?watch=1", pattern, watchers
            )
            try:
                with _client.CpuMeter(self.pid) as meter:
                    sent, acked = await paced_creates(
                        writer, collection("ConfigMap", ns), writes, pace
                    )
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(15):
                            await wait_delivered(streams, writes)
            finally:
                for s in streams:
                    s.close()
        from_send, from_ack, missing = [], [], 0
        for s in streams:
            for name, t_send in sent.items():
                arrived = s.arrivals.get(name)
                if arrived is None:
                    missing += 1
                    continue
                from_send.append(arrived - t_send)
                from_ack.append(arrived - acked[name])
        return {
            "watchers": watchers,
            "writes": writes,
            "deliveries": len(from_send),
            "missing": missing,
            "p50 ms": ms(percentile(from_send, 0.5)),
            "p99 ms": ms(percentile(from_send, 0.99)),
            "max ms": ms(max(from_send, default=float("nan"))),
            "p50 from ack": ms(percentile(from_ack, 0.5)),
            "p99 from ack": ms(percentile(from_ack, 0.99)),
            **meter.columns(),
        }

    # -- paced mutating load -------------------------------------------------------------------

    async def paced(self) -> None:
        pace, seconds = self.plan.paced_rate, self.plan.paced_seconds
        progress(f"paced: {pace:g} writes/s for {seconds:g}s (create, update, delete)")
        ns = "paced"
        path = collection("ConfigMap", ns)
        lag = int(
            pace / 3 * 0.5
        )  # update an object ~0.5 s after its create, delete it ~0.5 s later
        rvs: dict[int, str] = {}
        async with _client.session(self.creds, connections=64) as client:
            await self.namespace(client, ns)
            for j in range(-2 * lag, 0):  # targets for the first ticks' updates and deletes
                rvs[j] = await create_cm(client, path, j)
            run_lat: dict[str, list[float]] = {"create": [], "update": [], "delete": []}
            service: list[float] = []
            errors: list[str] = []

            async def write(i: int, scheduled: float) -> None:
                verb, j = ("create", "update", "delete")[i % 3], i // 3
                t0 = time.perf_counter()
                try:
                    if verb == "create":
                        rvs[j] = await create_cm(client, path, j)
                    elif verb == "update":
                        await update_cm(client, path, j - lag, rvs[j - lag])
                    else:
                        await _client.request(client, "DELETE", f"{path}/{name_of(j - 2 * lag)}")
                except (aiohttp.ClientError, RuntimeError, KeyError) as exc:
                    errors.append(f"{verb}: {exc}"[:200])
                    return
                done = time.perf_counter()
                run_lat[verb].append(done - scheduled)
                service.append(done - t0)

            with _client.CpuMeter(self.pid) as meter:
                await open_loop(write, pace, int(pace * seconds))
        all_lat = [x for v in run_lat.values() for x in v]
        rows = [
            {
                "writes": verb,
                "ops": len(lat),
                "p50 ms": ms(percentile(lat, 0.5)),
                "p99 ms": ms(percentile(lat, 0.99)),
                "max ms": ms(max(lat, default=float("nan"))),
            }
            for verb, lat in [("all", all_lat), *run_lat.items()]
        ]
        rows[0]["p99 ms (service time)"] = ms(percentile(service, 0.99))
        self.results["paced"] = {
            "rows": rows,
            "achieved": len(all_lat) / meter.wall,
            "errors": errors,
            "cpu": meter.columns(),
            "p99": percentile(all_lat, 0.99),
        }


# -- helpers used by the scenarios --------------------------------------------------------------


def get_op(path: str) -> Op:
    async def op(client: aiohttp.ClientSession, w: int, i: int) -> None:
        await _client.request(client, "GET", f"{path}/o{(w * 7919 + i * 31) % READ_OBJECTS}")

    return op


def list_op(path: str) -> Op:
    async def op(client: aiohttp.ClientSession, w: int, i: int) -> None:
        await _client.request(client, "GET", path)

    return op


async def list_all(
    client: aiohttp.ClientSession, path: str, params: dict[str, str], accept: str
) -> tuple[int, int, str]:
    """Follow ``continue`` tokens to the end: (items or rows, bytes read, response kind)."""
    items = size = 0
    query = dict(params)
    while True:
        async with client.get(path, params=query, headers={"Accept": accept}) as resp:
            payload = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"list {path}: {resp.status} {payload[:200]!r}")
        size += len(payload)
        doc = orjson.loads(payload)
        items += len(doc.get("items") or doc.get("rows") or [])
        token = (doc.get("metadata") or {}).get("continue")
        if not token:
            return items, size, doc.get("kind", "?")
        query["continue"] = token


def name_of(j: int) -> str:
    return f"p{j}" if j >= 0 else f"pre{-j}"


async def create_cm(client: aiohttp.ClientSession, path: str, j: int) -> str:
    body = await _client.request(client, "POST", path, configmap(name_of(j)), expect=201)
    return str(orjson.loads(body)["metadata"]["resourceVersion"])


async def update_cm(client: aiohttp.ClientSession, path: str, j: int, rv: str) -> None:
    obj = configmap(name_of(j), "u")
    obj["metadata"]["resourceVersion"] = rv
    await _client.request(client, "PUT", f"{path}/{name_of(j)}", obj)


async def open_loop(
    write: Callable[[int, float], Awaitable[None]], pace: float, count: int
) -> None:
    """Start write i at start + i/pace whatever happened to the earlier ones."""
    start = time.perf_counter() + 0.05
    tasks = []
    for i in range(count):
        scheduled = start + i / pace
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(write(i, scheduled)))
    await asyncio.gather(*tasks)


async def open_watches(
    creds: _client.Credentials, path: str, pattern: re.Pattern[bytes], n: int
) -> list[_client.WatchStream]:
    streams: list[_client.WatchStream] = []
    for start in range(0, n, 50):  # batches: stay under the server's listen backlog
        batch = [
            _client.WatchStream.open(creds, path, pattern) for _ in range(start, min(n, start + 50))
        ]
        streams += await asyncio.gather(*batch)
    return streams


async def paced_creates(
    client: aiohttp.ClientSession, path: str, writes: int, pace: float
) -> tuple[dict[bytes, float], dict[bytes, float]]:
    sent: dict[bytes, float] = {}
    acked: dict[bytes, float] = {}
    start = time.perf_counter() + 0.05
    for i in range(writes):
        delay = start + i / pace - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        name = f"wm-{i}"
        sent[name.encode()] = time.perf_counter()
        await _client.request(client, "POST", path, configmap(name), expect=201)
        acked[name.encode()] = time.perf_counter()
    return sent, acked


async def wait_delivered(streams: list[_client.WatchStream], writes: int) -> None:
    """Return once every watcher saw every write (the caller bounds the wait)."""
    for s in streams:
        s.want = writes
        if len(s.arrivals) >= writes:
            s.complete.set()
    await asyncio.gather(*(s.complete.wait() for s in streams))


# -- etcd ---------------------------------------------------------------------------------------


def put_op(kind: str, c: int, value: bytes) -> Op:
    async def op(client: aiohttp.ClientSession, w: int, i: int) -> None:
        await _etcd.put(client, f"/registry/{kind}/bench-{c}/o{w}-{i}", value)

    return op


async def etcd_puts(
    url: str, pid: int, plan: Plan, value_sizes: dict[str, int]
) -> list[dict[str, Any]]:
    rows = []
    for kind, size in value_sizes.items():
        value = b"x" * size
        for c in CONCURRENCY:
            progress(f"etcd put ({size} B values, like a {kind}): {c} clients")
            clients = [_etcd.session(url) for _ in range(c)]
            try:
                warm = (_etcd.put(cl, f"/warm/{n}", value) for n, cl in enumerate(clients))
                await asyncio.gather(*warm)
                op = put_op(kind, c, value)
                run = await closed_loop(clients, op, pid=pid, seconds=plan.create_seconds[c])
            finally:
                await _etcd.wait_closed(clients)
            rows.append(run.row(kind=kind, **{"value bytes": size}, clients=c))
            progress(f"  -> {rate(run.throughput)}/s")
    return rows


def run_etcd(workdir: Path, plan: Plan, value_sizes: dict[str, int]) -> list[dict[str, Any]]:
    etcd = _etcd.EtcdProcess(workdir / "etcd" / "data")
    progress(f"etcd: starting ({_etcd.version()})")
    etcd.start()
    try:
        assert etcd.process is not None
        return run_loop(etcd_puts(etcd.url, etcd.process.pid, plan, value_sizes))  # type: ignore[no-any-return]
    finally:
        etcd.stop()


# -- orchestration ----------------------------------------------------------------------------


def run_loop(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]


def start_server(workdir: Path) -> tuple[server_process.ServerProcess, dict[str, Any]]:
    extra = ["--log-level", "warning"]
    if "--disable-agent" in server_help():
        extra.append("--disable-agent")
    server = server_process.ServerProcess(data_dir=workdir / "server", extra_args=extra)
    t0 = time.perf_counter()
    server.start()
    ready = time.perf_counter() - t0
    assert server.process is not None
    rss_ready = _client.rss_bytes(server.process.pid)
    time.sleep(2.0)  # let start-up work (cache priming, GC) settle
    return server, {
        "ready_s": ready,
        "rss_ready": rss_ready,
        "rss_idle": _client.rss_bytes(server.process.pid),
    }


def server_help() -> str:
    args = [sys.executable, "-m", "kybern.cli.main", "server", "--help"]
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


async def scenarios(bench: Bench) -> dict[str, Any]:
    await bench.list3000()
    await bench.creates()
    await bench.reads()
    await bench.watches()
    await bench.paced()
    return bench.results


def run_all(workdir: Path, plan: Plan) -> dict[str, Any]:
    progress("server: starting")
    server, startup = start_server(workdir)
    try:
        bench = Bench(server, plan)
        results = run_loop(scenarios(bench))
        stored = {kind: bench.stored_size[kind] for kind in KINDS if kind in bench.stored_size}
        results["startup"] = startup
        results["server_log_tail"] = server.logs()[-2000:]
    finally:
        server.stop()
    if _etcd.binary():
        results["etcd"] = run_etcd(workdir, plan, stored)
    else:
        progress("etcd: not installed, skipped (apt-get install etcd-server)")
        results["etcd"] = []
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--profile", action="store_true", help="py-spy profile of creates")
    parser.add_argument("--command", default="", help="command line to record in RESULTS.md")
    parser.add_argument("--dir", type=Path, default=None, help="where to put temp data dirs")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    _client.raise_fd_limit(8192)  # 1,000 watch connections; the server inherits it
    command = args.command or shlex.join(["python", "bench/bench_api.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kybern-bench-api-") as tmp:
        if args.profile:
            _profile.main(Path(tmp), plan, sys.modules[__name__])
            return
        t0 = time.perf_counter()
        results = run_all(Path(tmp), plan)
        results["elapsed"] = time.perf_counter() - t0
    section = _api_report.render(results, plan=plan, command=command, quick=args.quick)
    print(section)
    if not args.no_write:
        _report.write_section(HEADING, section)
        print(f"(written to {_report.RESULTS})")


if __name__ == "__main__":
    main()
