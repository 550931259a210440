"""Benchmark of the API server over HTTPS, against a fresh ``kybern server`` and a local etcd.

Run: ``python bench/bench_api.py`` (``--quick`` for a smoke run, ``--no-write`` to leave
bench/RESULTS.md alone, ``--profile [create|watch]`` to sample the server with py-spy during
64-client creates or the 1,000-watcher fan-out instead of benchmarking). Prints markdown tables and replaces the
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
- watch: 1, 16, 64 and 1,000 watchers on one namespace's ConfigMaps, then paced creates.
- paced: open-loop mutating load at 200 writes/s (create, update, delete in turn); latency
  counted from each write's scheduled time, so a stalled server cannot hide queueing.
- etcd: the server stopped, a single-member etcd on 127.0.0.1 takes raw puts (JSON gateway)
  with 1, 16, 64 clients and values the size of our stored objects; our create rate is
  reported as a ratio of its put rate.

CPU columns are cores used over the run (1.00 = one core) by the server process, by this
load generator and by the rest of the machine. The server runs with bench/_gcprobe on its
PYTHONPATH, which logs its cyclic-GC pauses of 1 ms or more for a per-scenario table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # bench/ is sys.path[0]

import _api_report
import _client
import _etcd
import _load
import _profile
import _report
import _watch
from _report import ms, percentile, progress, rate

from kybern.testing import server_process

BENCH = Path(__file__).resolve().parent
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
    container = {
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
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [container]},
    }


KINDS: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "ConfigMap": ("configmaps", configmap),
    "Pod": ("pods", pod),
}


def collection(kind: str, ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/{KINDS[kind][0]}"


# -- the scenarios ----------------------------------------------------------------------------


class Bench:
    def __init__(self, server: server_process.ServerProcess, plan: Plan) -> None:
        self.server = server
        self.plan = plan
        assert server.process is not None
        self.pid = server.process.pid
        self.creds = _client.load_credentials(server.data_dir, server.url)
        self.results: dict[str, Any] = {"phases": []}
        self.stored_size: dict[str, int] = {}

    @contextlib.contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Mark a scenario's time span (CLOCK_MONOTONIC) for the GC-pause table."""
        t0 = time.monotonic()
        try:
            yield
        finally:
            self.results["phases"].append((name, t0, time.monotonic()))

    async def namespace(self, client: aiohttp.ClientSession, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        await _client.request(client, "POST", "/api/v1/namespaces", body, expect=201)

    def create_op(self, kind: str, ns: str, *, numbered: bool = False) -> _load.Op:
        """Creates named o<worker>-<i>, or o<i> when ``numbered`` (a fixed-count fill)."""
        path, make = collection(kind, ns), KINDS[kind][1]

        async def op(client: aiohttp.ClientSession, w: int, i: int) -> None:
            name = f"o{i}" if numbered else f"o{w}-{i}"
            body = await _client.request(client, "POST", path, make(name), 201)
            self.stored_size.setdefault(kind, len(body))

        return op

    async def fill(
        self, kind: str, ns: str, count: int, clients: list[aiohttp.ClientSession]
    ) -> None:
        await self.namespace(clients[0], ns)
        op = self.create_op(kind, ns, numbered=True)
        run = await _load.closed_loop(clients, op, pid=self.pid, total=count)
        if run.errors:
            raise RuntimeError(f"creating {count} {kind}s failed: {run.first_error}")

    # -- LIST of 3,000 pods ------------------------------------------------------------------

    async def list3000(self) -> None:
        n = self.plan.list_pods
        progress(f"list: creating {n:,} pods in one namespace")
        async with _load.sessions(self.creds, 64) as clients:
            await self.fill("Pod", "list3000", n, clients)
        self.results["rss_pods"] = _client.rss_bytes(self.pid)
        path = collection("Pod", "list3000")
        table_accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
        modes = [
            ("unpaginated", {}, "application/json"),
            ("limit=500 + continue", {"limit": "500"}, "application/json"),
            ("kubectl get: Table Accept, limit=500 + continue", {"limit": "500"}, table_accept),
        ]
        async with _load.sessions(self.creds, 1) as (client,):
            self.results["list3000"] = [
                await self.list_mode(client, mode, path, params, accept)
                for mode, params, accept in modes
            ]

    async def list_mode(
        self,
        client: aiohttp.ClientSession,
        mode: str,
        path: str,
        params: dict[str, str],
        accept: str,
    ) -> dict[str, Any]:
        progress(f"list: {mode} x{self.plan.list_reps}")
        times, size, kinds_seen = [], 0, set()
        with _client.CpuMeter(self.pid) as meter:
            for _ in range(self.plan.list_reps):
                t0 = time.perf_counter()
                items, size, kind = await list_all(client, path, params, accept)
                times.append(time.perf_counter() - t0)
                kinds_seen.add(kind)
                if items != self.plan.list_pods:
                    raise RuntimeError(f"list {mode}: {items} items, not {self.plan.list_pods}")
        return {
            "mode": mode,
            "response": "/".join(sorted(kinds_seen)),
            "items": items,
            "MiB": _report.mib(size),
            "reps": len(times),
            "p50 ms": ms(percentile(times, 0.5)),
            "max ms": ms(max(times)),
            **meter.columns(),
        }

    # -- creates, GETs, LISTs ----------------------------------------------------------------

    async def creates(self) -> None:
        rows = []
        for kind in KINDS:
            for c in CONCURRENCY:
                seconds = self.plan.create_seconds[c]
                progress(f"create {kind}: {c} clients, {seconds:g}s")
                ns = f"create-{kind.lower()}-{c}"
                async with _load.sessions(self.creds, c) as clients:
                    await self.namespace(clients[0], ns)
                    op = self.create_op(kind, ns)
                    run = await _load.closed_loop(clients, op, pid=self.pid, seconds=seconds)
                rows.append(run.row(kind=kind, clients=c))
                p99 = ms(percentile(run.latencies, 0.99))
                progress(f"  -> {rate(run.throughput)}/s, p99 {p99} ms")
        self.results["create"] = rows
        self.results["rss_after_creates"] = _client.rss_bytes(self.pid)

    async def reads(self) -> None:
        async with _load.sessions(self.creds, 64) as clients:
            for kind in KINDS:
                await self.fill(kind, f"read-{kind.lower()}", READ_OBJECTS, clients)
        get_rows, list_rows = [], []
        for kind in KINDS:
            path = collection(kind, f"read-{kind.lower()}")
            for c in CONCURRENCY:
                progress(f"get and list {kind}: {c} clients")
                async with _load.sessions(self.creds, c) as clients:
                    get_rows.append(await self.read_run(clients, kind, get_op(path)))
                    list_rows.append(await self.read_run(clients, kind, list_op(path)))
        self.results["get"], self.results["list"] = get_rows, list_rows

    async def read_run(
        self, clients: list[aiohttp.ClientSession], kind: str, op: _load.Op
    ) -> dict[str, Any]:
        run = await _load.closed_loop(clients, op, pid=self.pid, seconds=self.plan.read_seconds)
        return run.row(kind=kind, clients=len(clients))

    # -- watch -------------------------------------------------------------------------------

    async def watches(self, counts: tuple[int, ...]) -> None:
        for n in counts:
            many = n == self.plan.many_watchers
            writes = self.plan.many_watch_writes if many else self.plan.watch_writes
            progress(f"watch: {n} watchers, {writes} creates at {self.plan.watch_rate:g}/s")
            rss = _client.rss_bytes(self.pid)
            with self.phase(f"watch, {n} watchers ({_report.mib(rss)} MiB RSS)"):
                row = await self.watch_run(n, writes, self.plan.watch_rate)
            self.results.setdefault("watch", []).append({"server RSS MiB": _report.mib(rss), **row})

    async def watch_run(self, watchers: int, writes: int, pace: float) -> dict[str, Any]:
        ns = f"watch-{watchers}-{len(self.results.get('watch', []))}"
        path = collection("ConfigMap", ns)
        async with _load.sessions(self.creds, 1) as (writer,):
            await self.namespace(writer, ns)
            streams = await _watch.open_watches(self.creds, f"{path}?watch=1", watchers)
            try:
                with _client.CpuMeter(self.pid) as meter:
                    sent, acked = await _watch.paced_creates(writer, path, configmap, writes, pace)
                    await _watch.wait_delivered(streams, writes, deadline=15)
            finally:
                _watch.close(streams)
        return {**_watch.delivery_row(streams, sent, acked), **meter.columns()}

    # -- paced mutating load -------------------------------------------------------------------

    async def paced(self) -> None:
        pace, seconds = self.plan.paced_rate, self.plan.paced_seconds
        progress(f"paced: {pace:g} writes/s for {seconds:g}s (create, update, delete)")
        path = collection("ConfigMap", "paced")
        # object j: created at tick j, updated ~0.5 s later (tick j + lag), deleted ~1 s later
        lag = int(pace / 3 * 0.5)
        rvs: dict[int, str] = {}
        latencies: dict[str, list[float]] = {"create": [], "update": [], "delete": []}
        service: list[float] = []
        starts: list[float] = []
        errors: list[str] = []
        async with _client.session(self.creds, connections=64) as client:
            await self.namespace(client, "paced")
            for j in range(-2 * lag, 0):  # what the first ticks update and delete
                rvs[j] = await create_cm(client, path, j)

            async def write(i: int, scheduled: float) -> None:
                verb, j = ("create", "update", "delete")[i % 3], i // 3
                t0 = time.perf_counter()
                starts.append(t0)
                try:
                    if verb == "create":
                        rvs[j] = await create_cm(client, path, j)
                    elif verb == "update":
                        await update_cm(client, path, j - lag, rvs[j - lag])
                    else:
                        await _client.request(client, "DELETE", f"{path}/{name_of(j - 2 * lag)}")
                except (*_load.ERRORS, KeyError) as exc:
                    errors.append(f"{verb}: {exc}"[:200])
                    return
                done = time.perf_counter()
                latencies[verb].append(done - scheduled)
                service.append(done - t0)

            with _client.CpuMeter(self.pid) as meter:
                await _load.open_loop(write, pace, int(pace * seconds))
        sent_rate = (len(starts) - 1) / (max(starts) - min(starts))
        self.results["paced"] = paced_summary(latencies, service, errors, meter, sent_rate)


def paced_summary(
    latencies: dict[str, list[float]],
    service: list[float],
    errors: list[str],
    meter: _client.CpuMeter,
    sent_rate: float,
) -> dict[str, Any]:
    everything = [x for v in latencies.values() for x in v]
    rows = [
        {
            "writes": verb,
            "ops": len(lat),
            "p50 ms": ms(percentile(lat, 0.5)),
            "p99 ms": ms(percentile(lat, 0.99)),
            "max ms": ms(max(lat, default=float("nan"))),
        }
        for verb, lat in [("all", everything), *latencies.items()]
    ]
    rows[0]["p99 ms (service time)"] = ms(percentile(service, 0.99))
    return {
        "rows": rows,
        "achieved": sent_rate,  # writes started per second
        "errors": errors,
        "cpu": meter.columns(),
        "p99": percentile(everything, 0.99),
    }


# -- requests -----------------------------------------------------------------------------------


def get_op(path: str) -> _load.Op:
    async def op(client: aiohttp.ClientSession, w: int, i: int) -> None:
        await _client.request(client, "GET", f"{path}/o{(w * 7919 + i * 31) % READ_OBJECTS}")

    return op


def list_op(path: str) -> _load.Op:
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


# -- orchestration ----------------------------------------------------------------------------


def run_loop(coro: Awaitable[Any]) -> Any:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def start_server(
    workdir: Path, gc_log: Path | None = None
) -> tuple[server_process.ServerProcess, dict[str, Any]]:
    # The API server and store alone: the scheduler would otherwise answer every benchmark pod
    # with a status write and an event (no nodes), which measures something else.
    extra = ["--log-level", "warning", "--disable-scheduler", "--disable-controller-manager"]
    if "--disable-agent" in server_help():
        extra.append("--disable-agent")  # pods must stay API objects, not containers
    server = server_process.ServerProcess(data_dir=workdir / "server", extra_args=extra)
    saved = dict(os.environ)
    if gc_log is not None:
        os.environ["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(BENCH / "_gcprobe"), os.environ.get("PYTHONPATH")])
        )
        os.environ["KYBERN_BENCH_GC_LOG"] = str(gc_log)
    t0 = time.perf_counter()
    try:
        server.start()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    ready = time.perf_counter() - t0
    assert server.process is not None
    rss_ready = _client.rss_bytes(server.process.pid)
    time.sleep(2.0)  # let start-up work (cache priming, GC) settle before "idle"
    rss_idle = _client.rss_bytes(server.process.pid)
    return server, {"ready_s": ready, "rss_ready": rss_ready, "rss_idle": rss_idle}


def server_help() -> str:
    args = [sys.executable, "-m", "kybern.cli.main", "server", "--help"]
    return subprocess.run(args, capture_output=True, text=True, check=False).stdout


async def scenarios(bench: Bench) -> dict[str, Any]:
    with bench.phase("list of 3,000 pods (incl. creating them)"):
        await bench.list3000()
    await bench.watches((bench.plan.many_watchers,))  # small heap: fan-out cost alone
    with bench.phase("creates"):
        await bench.creates()
    with bench.phase("GETs and LISTs"):
        await bench.reads()
    await bench.watches((*CONCURRENCY, bench.plan.many_watchers))  # ~100k objects in memory
    with bench.phase("paced writes"):
        await bench.paced()
    return bench.results


def run_all(workdir: Path, plan: Plan) -> dict[str, Any]:
    progress("server: starting")
    gc_log = workdir / "gc.log"
    server, startup = start_server(workdir, gc_log)
    try:
        bench = Bench(server, plan)
        results = run_loop(scenarios(bench))
        results["startup"] = startup
        results["rss_end"] = _client.rss_bytes(bench.pid)
    finally:
        server.stop()
    results["gc"] = gc_log.read_text() if gc_log.exists() else ""
    stored = {kind: bench.stored_size[kind] for kind in KINDS if kind in bench.stored_size}
    if _etcd.binary():
        results["etcd"] = run_etcd(workdir, plan, stored)
    else:
        progress("etcd: not installed, skipped (apt-get install etcd-server)")
        results["etcd"] = []
    return results


def run_etcd(workdir: Path, plan: Plan, value_sizes: dict[str, int]) -> list[dict[str, Any]]:
    etcd = _etcd.EtcdProcess(workdir / "etcd" / "data")
    progress(f"etcd: starting ({_etcd.version()})")
    etcd.start()
    try:
        assert etcd.process is not None
        runs = _etcd.put_runs(etcd.url, etcd.process.pid, plan.create_seconds, value_sizes)
        return run_loop(runs)  # type: ignore[no-any-return]
    finally:
        etcd.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="create",
        choices=["create", "watch"],
        help="instead of benchmarking, py-spy the server during 64-client creates (default) or "
        "the 1,000-watcher fan-out",
    )
    parser.add_argument("--native", action="store_true", help="with --profile: C frames too")
    parser.add_argument("--command", default="", help="command line to record in RESULTS.md")
    parser.add_argument("--dir", type=Path, default=None, help="where to put temp data dirs")
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    _client.raise_fd_limit(8192)  # 1,000 watch connections; the server inherits the limit
    command = args.command or shlex.join(["python", "bench/bench_api.py", *sys.argv[1:]])
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kybern-bench-api-") as tmp:
        if args.profile:
            api = sys.modules[__name__]
            _profile.main(Path(tmp), plan, api, scenario=args.profile, native=args.native)
            return
        t0 = time.perf_counter()
        results = run_all(Path(tmp), plan)
        results["elapsed"] = time.perf_counter() - t0
    section = _api_report.render(results, plan=plan, command=command, quick=args.quick)
    print(section)
    if not args.no_write:
        _report.write_section(_api_report.HEADING, section)
        print(f"(written to {_report.RESULTS})")


if __name__ == "__main__":
    main()
