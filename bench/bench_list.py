"""LIST and watch fan-out at scale, without the 15-minute simulated-node run.

Run: ``python bench/bench_list.py`` (``--pods N``, default 150,000; ``--write`` replaces the
"## LIST at scale" section of bench/RESULTS.md; ``--profile list|watch`` runs the server's
event loop under cProfile during the LISTs or the quiet watch run and prints the top
functions instead).

How the data gets there fast: a first ``kybern server`` (API server and store only: no
scheduler, controllers or node agent) creates the namespaces and one template Pod through the
API (so the template is defaulted as any pod is); it is stopped, the template gets a node and
a Running status as a simulated node would give it, and N copies (own name, uid, labels) are
written straight into the SQLite store with 64 concurrent creates (group commit). A second
server then starts on that store (its watch cache loads every pod) and is measured over HTTPS
by one client that parses every page (as any client must, to read the continue token):

- LIST of all pods in pages of 500 (``limit`` + ``continue``), per page and in total;
- one page from the middle of that list (a continue token taken from the first run);
- LIST of one 10,000-pod namespace in pages of 500;
- a label-selected LIST (1 pod in 100 of one namespace: the selector scans the namespace);
- a kubelet's LIST of its node's pods (``fieldSelector=spec.nodeName=<node>``, 30 pods);
- watch delivery to 100 watchers of one namespace while 200 of its pods are patched at 20/s,
  once on a quiet server and once while another process pages through all pods in a loop;
- watch delivery to 1,000 kubelet-style watchers (one per node, by ``spec.nodeName``);
- with ``--churn N``: N pods patched (objects replaced after the server's heap freeze), then
  the quiet watch again; every row shows the server's GC pauses of 50 ms or more.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import multiprocessing
import os
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # bench/ is sys.path[0]

import _client
import _report
from _report import percentile, progress

from kybern import storage
from kybern.testing import server_process

SECTION = "## LIST at scale"
PAGE = 500
PER_NAMESPACE = 10_000
SHARDS = 100  # label shard=s<i % 100>: a selector on one shard picks 1 pod in 100
MARK = re.compile(rb'"bench-mark":"(m[0-9-]+)"')
SERVER_ARGS = [
    "--disable-scheduler",
    "--disable-controller-manager",
    "--disable-agent",
    "--log-level",
    "warning",
]
PROFILE_DIR = Path(__file__).resolve().parent / "_listprofile"
GC_PROBE_DIR = Path(__file__).resolve().parent / "_gcprobe"  # logs the server's GC pauses


def template_pod(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "template", "namespace": namespace, "labels": {"app": "app"}},
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.local/app:1",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ]
        },
    }


def running_status(pod: dict[str, Any], node: str) -> dict[str, Any]:
    """What a simulated node would have reported for the pod."""
    at = "2026-11-23T00:00:00Z"
    conditions = [
        {"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": at}
        for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
    ]
    conditions.append(
        {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": at}
    )
    return {
        "phase": "Running",
        "conditions": conditions,
        "hostIP": "10.0.0.1",
        "hostIPs": [{"ip": "10.0.0.1"}],
        "podIP": "10.42.0.2",
        "podIPs": [{"ip": "10.42.0.2"}],
        "startTime": at,
        "qosClass": "Burstable",
        "containerStatuses": [
            {
                "name": "app",
                "image": "registry.local/app:1",
                "imageID": "sim://registry.local/app:1",
                "containerID": f"sim://{pod['metadata']['uid']}/app",
                "lastState": {},
                "restartCount": 0,
                "ready": True,
                "started": True,
                "state": {"running": {"startedAt": at}},
            }
        ],
    }


def namespaces_for(pods: int) -> list[str]:
    return [f"bench-{i}" for i in range(max(1, (pods + PER_NAMESPACE - 1) // PER_NAMESPACE))]


# -- loading ---------------------------------------------------------------------------------


async def prepare(creds: _client.Credentials, namespaces: list[str]) -> dict[str, Any]:
    """Namespaces and the template pod through the API; returns the stored template."""
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(_client.session(creds))
        for ns in namespaces:
            body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            await _client.request(client, "POST", "/api/v1/namespaces", body, expect=201)
        path = f"/api/v1/namespaces/{namespaces[0]}/pods"
        pod: dict[str, Any] = orjson.loads(
            await _client.request(client, "POST", path, template_pod(namespaces[0]), expect=201)
        )
        await _client.request(client, "DELETE", f"{path}/template")
    return pod


def pod_copy(template: dict[str, Any], i: int, namespaces: list[str]) -> tuple[str, bytes]:
    namespace = namespaces[i // PER_NAMESPACE]
    pod = copy.deepcopy(template)
    meta = pod["metadata"]
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    meta["name"] = name = f"app-{i:06d}"
    meta["namespace"] = namespace
    meta["uid"] = str(uuid.UUID(int=i + 1, version=4))
    meta["labels"] = {"app": "app", "shard": f"s{i % SHARDS}"}
    node = f"sim-node-{i % 5000}"
    pod["spec"]["nodeName"] = node
    pod["status"] = running_status(pod, node)
    return f"/registry/pods/{namespace}/{name}", orjson.dumps(pod)


async def write_pods(db: Path, template: dict[str, Any], pods: int, namespaces: list[str]) -> None:
    backend = storage.open_backend(db, compact_interval=0)
    await backend.start()
    sem = asyncio.Semaphore(64)  # 64 creates in flight: the writer commits them in groups

    async def put(key: str, value: bytes) -> None:
        async with sem:
            await backend.create(key, value)

    try:
        for first in range(0, pods, 2000):
            batch = [
                pod_copy(template, i, namespaces) for i in range(first, min(pods, first + 2000))
            ]
            await asyncio.gather(*(put(k, v) for k, v in batch))
    finally:
        await backend.close()


def load(workdir: Path, pods: int) -> float:
    """Fill ``workdir`` with a server's state holding ``pods`` pods; returns seconds taken."""
    t0 = time.perf_counter()
    namespaces = namespaces_for(pods)
    server = server_process.ServerProcess(data_dir=workdir, extra_args=SERVER_ARGS).start(60)
    try:
        creds = _client.load_credentials(workdir, server.url)
        template = asyncio.run(prepare(creds, namespaces))
    finally:
        server.stop()
    progress(f"writing {pods:,} pods into the store")
    asyncio.run(write_pods(workdir / "db" / "state.db", template, pods, namespaces))
    return time.perf_counter() - t0


# -- measuring -------------------------------------------------------------------------------


async def get_json(client: aiohttp.ClientSession, path: str) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(await _client.request(client, "GET", path))
    return body


async def paged(
    client: aiohttp.ClientSession, path: str, *, keep: int = -1
) -> tuple[int, list[float], str]:
    """Page through ``path``: (items, per-page seconds, the continue token of page ``keep``)."""
    count, token, times, kept, page = 0, "", [], "", 0
    sep = "&" if "?" in path else "?"
    while True:
        t0 = time.perf_counter()
        url = f"{path}{sep}limit={PAGE}" + (f"&continue={token}" if token else "")
        body = await get_json(client, url)
        times.append(time.perf_counter() - t0)
        count += len(body["items"])
        token = body["metadata"].get("continue", "")
        page += 1
        if page == keep:
            kept = token
        if not token:
            return count, times, kept


async def timed(work: Any, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        await work()
        out.append(time.perf_counter() - t0)
    return out


def row(
    name: str, values: list[float], meter: _client.CpuMeter, missing: int | str = ""
) -> dict[str, Any]:
    return {
        "measure": name,
        "samples": len(values),
        "missing": missing,
        "p50 ms": _report.ms(percentile(values, 0.5)),
        "p99 ms": _report.ms(percentile(values, 0.99)),
        "max ms": _report.ms(max(values, default=float("nan"))),
        "server CPU ms/sample": f"{1000 * meter.server_cpu / max(1, len(values)):.2f}",
        "server GC pauses >= 50 ms (max ms)": "",
        **meter.columns(),
    }


class Bench:
    def __init__(self, server: server_process.ServerProcess, pods: int) -> None:
        assert server.process is not None
        self.pid = server.process.pid
        self.data_dir = server.data_dir
        self.creds = _client.load_credentials(server.data_dir, server.url)
        self.pods = pods
        self.namespaces = namespaces_for(pods)
        self.rows: list[dict[str, Any]] = []
        self.gc_log = server.data_dir / "gc.log"
        self._gc_offset = self.gc_log.stat().st_size if self.gc_log.exists() else 0

    async def lists(self, reps: int) -> None:
        async with _client.session(self.creds) as client:
            total, _, middle = await paged(client, "/api/v1/pods", keep=self.pods // PAGE // 2)
            if total != self.pods:
                raise RuntimeError(f"listed {total} pods, expected {self.pods}")
            progress(f"LIST all {total:,} pods x {reps}")
            pages: list[float] = []
            with _client.CpuMeter(self.pid) as meter:
                totals = await timed(lambda: self._collect(client, "/api/v1/pods", pages), reps)
            self.add(row(f"LIST all {total:,} pods, pages of {PAGE}: total", totals, meter))
            self.add(row("... one page of that", pages, meter))
            progress("LIST one page from the middle")
            path = f"/api/v1/pods?limit={PAGE}&continue={middle}"
            with _client.CpuMeter(self.pid) as meter:
                values = await timed(lambda: get_json(client, path), 20)
            self.add(row("LIST one page from the middle (continue token)", values, meter))
            ns = self.namespaces[-1 if len(self.namespaces) < 2 else 1]
            progress(f"LIST namespace {ns}")
            with _client.CpuMeter(self.pid) as meter:
                values = await timed(lambda: paged(client, f"/api/v1/namespaces/{ns}/pods"), 5)
            self.add(row(f"LIST one namespace ({ns}), pages of {PAGE}", values, meter))
            selected = f"/api/v1/namespaces/{ns}/pods?labelSelector=shard%3Ds7"
            with _client.CpuMeter(self.pid) as meter:
                values = await timed(lambda: get_json(client, selected), 20)
            self.add(row(f"LIST {ns} by label (shard=s7: 1 in {SHARDS})", values, meter))
            single = "/api/v1/pods?labelSelector=shard%3Ds7&limit=100"
            with _client.CpuMeter(self.pid) as meter:
                values = await timed(lambda: get_json(client, single), 20)
            self.add(row("LIST all namespaces by label, limit=100", values, meter))
            node = "/api/v1/pods?fieldSelector=spec.nodeName%3Dsim-node-7"
            with _client.CpuMeter(self.pid) as meter:
                values = await timed(lambda: get_json(client, node), 20)
            self.add(row("LIST one node's pods (fieldSelector spec.nodeName)", values, meter))

    async def node_watch(self, watchers: int, writes: int, pace: float) -> None:
        """Kubelet-style watches: one per node (``fieldSelector=spec.nodeName=<node>``) for
        ``watchers`` nodes, while pods on those nodes are patched; each patch is delivered
        to exactly one watcher, but the server must not test it against all of them."""
        ns = self.namespaces[min(3, len(self.namespaces) - 1)]
        label = f"watch, {watchers} watchers by spec.nodeName, {writes} pod patches at {pace:g}/s"
        progress(label)
        async with _client.session(self.creds) as client:
            first = await get_json(client, f"/api/v1/namespaces/{ns}/pods?limit={writes}")
            names = [p["metadata"]["name"] for p in first["items"]]
            rv = first["metadata"]["resourceVersion"]
            base = f"/api/v1/pods?watch=1&resourceVersion={rv}&fieldSelector=spec.nodeName%3D"
            streams: list[_client.WatchStream] = []
            for start in range(0, watchers, 50):
                streams += await asyncio.gather(
                    *(
                        _client.WatchStream.open(self.creds, f"{base}sim-node-{k}", MARK)
                        for k in range(start, min(watchers, start + 50))
                    )
                )
            try:
                with _client.CpuMeter(self.pid) as meter:
                    sent = await patches(client, ns, names, pace, run=len(self.rows))
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(30):
                            while sum(len(s.arrivals) for s in streams) < len(sent):  # noqa: ASYNC110
                                await asyncio.sleep(0.05)
            finally:
                for s in streams:
                    s.close()
        latencies = [s.arrivals[m] - t for s in streams for m, t in sent.items() if m in s.arrivals]
        self.add(row(label, latencies, meter, len(sent) - len(latencies)))

    def add(self, measured: dict[str, Any]) -> None:
        """A result row, with the server's cyclic-GC pauses since the previous one."""
        pauses = []
        if self.gc_log.exists():
            with self.gc_log.open() as log:
                log.seek(self._gc_offset)
                pauses = [float(line.split()[2]) for line in log if line.strip()]
                self._gc_offset = log.tell()
        long = [p for p in pauses if p >= 0.05]
        if long:
            measured["server GC pauses >= 50 ms (max ms)"] = f"{len(long)} ({max(long) * 1000:.0f})"
        else:
            measured["server GC pauses >= 50 ms (max ms)"] = "0"
        self.rows.append(measured)

    async def churn(self, count: int) -> None:
        """Patch ``count`` pods (16 clients), spread over every namespace."""
        names = [
            (self.namespaces[i // PER_NAMESPACE], f"app-{i:06d}")
            for i in range(0, self.pods, max(1, self.pods // count))
        ][:count]
        progress(f"churn: patching {len(names):,} pods")
        with _client.CpuMeter(self.pid) as meter:
            await asyncio.gather(*(_churn_worker(self.creds, names, w, 16) for w in range(16)))
        self.add(row(f"(churn: {len(names):,} pods patched, s)", [meter.wall], meter))

    async def _collect(self, client: aiohttp.ClientSession, path: str, pages: list[float]) -> None:
        _, times, _ = await paged(client, path)
        pages.extend(times)

    async def watch(self, watchers: int, writes: int, pace: float, *, busy: bool) -> None:
        ns = self.namespaces[min(3, len(self.namespaces) - 1)]
        label = f"watch, {watchers} watchers, {writes} pod patches at {pace:g}/s"
        label += ", during paginated LISTs" if busy else ", quiet server"
        progress(label)
        pages: list[float] = []
        async with _client.session(self.creds) as client:
            first = await get_json(client, f"/api/v1/namespaces/{ns}/pods?limit={writes}")
            names = [p["metadata"]["name"] for p in first["items"]]
            rv = first["metadata"]["resourceVersion"]
            path = f"/api/v1/namespaces/{ns}/pods?watch=1&resourceVersion={rv}"
            streams = await open_streams(self.creds, path, watchers)
            ctx = multiprocessing.get_context("spawn")
            stop, out = ctx.Event(), ctx.Queue()
            lister = ctx.Process(target=list_loop, args=(self.data_dir, self.creds.url, stop, out))
            if busy:
                lister.start()
            try:
                with _client.CpuMeter(self.pid) as meter:
                    sent = await patches(client, ns, names, pace, run=len(self.rows))
                    for s in streams:
                        s.want = len(sent)
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(30):
                            await asyncio.gather(*(s.complete.wait() for s in streams))
            finally:
                stop.set()
                if busy:
                    await asyncio.to_thread(lister.join, 60)
                    while not out.empty():
                        pages.append(out.get())
                for s in streams:
                    s.close()
        latencies = [s.arrivals[m] - t for s in streams for m, t in sent.items() if m in s.arrivals]
        missing = watchers * len(sent) - len(latencies)
        self.add(row(label, latencies, meter, missing))
        if busy:
            self.add(row("... LIST pages (500) of all pods meanwhile", pages, meter))


async def _churn_worker(
    creds: _client.Credentials, names: list[tuple[str, str]], start: int, step: int
) -> None:
    headers = {"Content-Type": "application/merge-patch+json"}
    body = orjson.dumps({"metadata": {"labels": {"churned": "yes"}}})
    async with _client.session(creds) as client:
        for ns, name in names[start::step]:
            path = f"/api/v1/namespaces/{ns}/pods/{name}"
            async with client.patch(path, data=body, headers=headers) as resp:
                await resp.read()


def list_loop(data_dir: Path, url: str, stop: Any, out: Any) -> None:
    """In a process of its own (so that parsing pages does not delay the watch streams'
    arrival times in this one): page through all pods again and again until ``stop`` is
    set; each page's seconds go to ``out``."""

    async def loop() -> None:
        creds = _client.load_credentials(data_dir, url)
        async with _client.session(creds) as client:
            token = ""
            while not stop.is_set():
                t0 = time.perf_counter()
                path = f"/api/v1/pods?limit={PAGE}" + (f"&continue={token}" if token else "")
                body = await get_json(client, path)
                out.put(time.perf_counter() - t0)
                token = body["metadata"].get("continue", "")

    asyncio.run(loop())


async def open_streams(creds: _client.Credentials, path: str, n: int) -> list[_client.WatchStream]:
    streams: list[_client.WatchStream] = []
    for first in range(0, n, 50):
        streams += await asyncio.gather(
            *(_client.WatchStream.open(creds, path, MARK) for _ in range(first, min(n, first + 50)))
        )
    return streams


async def patches(
    client: aiohttp.ClientSession, ns: str, names: list[str], pace: float, *, run: int
) -> dict[bytes, float]:
    """Patch each pod's ``bench-mark`` label (distinct per run: an unchanged object makes no
    event) at ``pace``/s; returns each mark's send time."""
    sent: dict[bytes, float] = {}
    start = time.perf_counter() + 0.05
    headers = {"Content-Type": "application/merge-patch+json"}
    for i, name in enumerate(names):
        delay = start + i / pace - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        mark = f"m{run}-{i}"
        body = orjson.dumps({"metadata": {"labels": {"bench-mark": mark}}})
        sent[mark.encode()] = time.perf_counter()
        path = f"/api/v1/namespaces/{ns}/pods/{name}"
        async with client.patch(path, data=body, headers=headers) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"PATCH {path}: {resp.status}")
    return sent


# -- profiling (cProfile in the server, switched on and off by signals) ----------------------


@contextlib.contextmanager
def profiled(server: server_process.ServerProcess, out: Path) -> Any:
    import signal

    assert server.process is not None
    os.kill(server.process.pid, signal.SIGUSR1)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 30
        while not out.exists() and time.monotonic() < deadline:
            time.sleep(0.1)


def print_profile(out: Path) -> None:
    import pstats

    stats = pstats.Stats(str(out))
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)


# -- main ------------------------------------------------------------------------------------


def run(args: argparse.Namespace, workdir: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    load_s = load(workdir, args.pods)
    facts: dict[str, Any] = {"load_s": load_s}
    profile_out = workdir / "list.prof"
    probe = PROFILE_DIR if args.profile else GC_PROBE_DIR
    os.environ["PYTHONPATH"] = os.pathsep.join([str(probe), os.environ.get("PYTHONPATH", "")])
    os.environ["KYBERN_BENCH_PROFILE"] = str(profile_out)
    os.environ["KYBERN_BENCH_GC_LOG"] = str(workdir / "gc.log")
    t0 = time.perf_counter()
    server = server_process.ServerProcess(data_dir=workdir, extra_args=SERVER_ARGS).start(600)
    facts["start_s"] = time.perf_counter() - t0
    assert server.process is not None
    facts["rss_mib"] = _client.rss_bytes(server.process.pid) / 2**20
    try:
        bench = Bench(server, args.pods)
        if args.profile:
            with profiled(server, profile_out):
                if args.profile == "watch":
                    asyncio.run(bench.watch(args.watchers, args.writes, 20.0, busy=False))
                else:
                    asyncio.run(bench.lists(1))
            print_profile(profile_out)
            return bench.rows, facts
        asyncio.run(bench.lists(args.reps))
        if args.watchers:
            asyncio.run(bench.watch(args.watchers, args.writes, 20.0, busy=False))
            asyncio.run(bench.watch(args.watchers, args.writes, 20.0, busy=True))
        if args.node_watchers:
            asyncio.run(bench.node_watch(args.node_watchers, args.writes, 20.0))
        if args.churn:
            asyncio.run(bench.churn(args.churn))
            if args.watchers:
                asyncio.run(bench.watch(args.watchers, args.writes, 20.0, busy=False))
    finally:
        server.stop()
    return bench.rows, facts


def report(args: argparse.Namespace, rows: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    return "\n".join(
        [
            SECTION,
            "",
            f"Command: `python bench/bench_list.py --pods {args.pods}`  ",
            f"Date: {_report.now()}  ",
            f"Machine: {_report.machine()}",
            "",
            f"{args.pods:,} pods ({PER_NAMESPACE:,} per namespace) written straight into the "
            f"store in {facts['load_s']:.0f} s; a `kybern server` (API server and store only) "
            f"started on them in {facts['start_s']:.1f} s with RSS {facts['rss_mib']:,.0f} MiB. "
            "One HTTPS client, sequential requests, each response parsed (orjson); times are "
            "to the last byte. Watch latency = arrival at each watcher - send of the PATCH.",
            "",
            _report.table(rows),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pods", type=int, default=150_000)
    parser.add_argument("--reps", type=int, default=3, help="full paginated LISTs to time")
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--node-watchers", type=int, default=1000)
    parser.add_argument(
        "--churn",
        type=int,
        default=0,
        metavar="N",
        help="then patch N pods (each object replaced in the cache, as a running cluster's "
        "status updates do) and measure the quiet watch again",
    )
    parser.add_argument(
        "--profile",
        choices=["list", "watch"],
        help="cProfile the server during the LISTs or the quiet watch run instead",
    )
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="never update RESULTS.md")
    args = parser.parse_args()
    _client.raise_fd_limit(4096)
    with tempfile.TemporaryDirectory(prefix="kybern-bench-list-") as tmp:
        rows, facts = run(args, Path(tmp))
    text = report(args, rows, facts)
    print(text)
    if args.write and not args.no_write and not args.profile:
        _report.write_section(SECTION, text)


if __name__ == "__main__":
    main()
