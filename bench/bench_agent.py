"""The node agent with the process runtime (issue 5, "Benchmarks").

Run: ``python bench/bench_agent.py`` (prints a markdown section), ``--write`` to replace the
"## Node agent (process runtime)" section of bench/RESULTS.md (``--no-write`` wins), ``--quick``
for a smoke run (20 pods, 2 server starts), ``--pods N`` for another count, ``--burst-only``
for the N-pods-at-once run alone (printed, never written; with ``--profile`` too).

Measured:

- pod startup latency: a ``kybern server --disable-agent`` (full control plane) plus a
  ``kybern agent --runtime process`` subprocess joined with the admin kubeconfig. Pods (one
  container, ``sleep 3600``) are created over HTTPS with ``spec.nodeName`` already set (the
  kubelet is measured, not the scheduler). The latency of a pod is from the moment its create
  request is sent to the arrival, on a pod watch opened beforehand, of the first event in which
  every container's state is ``running``. (``creationTimestamp`` has one-second resolution, so
  the client's send time stands for it; it is earlier, so the latency is over-, never
  under-estimated.) Two runs of N pods: one at a time (the next pod is created once the
  previous one runs: the latency of a pod alone) and all at once (N creates in flight on 8
  connections: a burst). For the burst, the CPU time per pod of the agent, the API server and
  the containers' monitors (``/proc/<pid>/stat``; the monitors' first processes are counted
  through the agent's reaped children), and the load average (the machine is shared).
- the process start itself, in the same run: ``subprocess.Popen(["sleep", "3600"])`` timed
  from the call to its return (Popen returns once the child has exec'd), N times; reported as
  the baseline the target is measured against (p99 <= 100 ms beyond it). For reference, the
  start of ``python -I -S -c pass`` (sys.executable: the interpreter the runtime's per-container monitor runs
  on) is timed too.
- agent RSS (VmRSS of the ``kybern agent`` process, run with ``--proxy-mode none``: the
  kubelet alone): idle (node Ready, no pods, after a short settle), and with the N pods
  running; then idle again for a ``kybern agent`` with its default service proxy. The
  per-container monitor processes' RSS, PSS and private memory are reported beside it (the
  runtime's cost per container, outside the agent).
- node Ready after ``kybern server`` start: ``kybern server --runtime process`` spawned on a
  fresh data dir (new PKI, new database), then the API polled every 20 ms: the time from the
  spawn to ``/readyz`` answering 200 and to the Node's ``Ready`` condition being ``True``.
  Repeated, median and max reported.

``--profile`` attaches ``py-spy`` to the agent during the burst and prints where it spends its
time (per thread, top functions); nothing is written then (py-spy slows the agent down).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shlex
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # bench/ is sys.path[0]

import _client
import _report
from _report import ms, percentile, progress, table

from kybern.testing import server_process
from kybern.testing.agentprocess import launchers, monitors

HEADING = "## Node agent (process runtime)"
NODE = "bench-agent"
NAMESPACE = "bench"
COMMAND = ["sleep", "3600"]
TARGET_BEYOND_PROCESS_MS = 100.0
TARGET_IDLE_RSS_MIB = 60.0
TARGET_READY_S = 2.0


@dataclass(frozen=True)
class Plan:
    pods: int
    server_starts: int


FULL = Plan(pods=100, server_starts=5)
QUICK = Plan(pods=20, server_starts=2)


# -- processes -----------------------------------------------------------------------------


def start_agent(data: Path, kubeconfig: Path, *, proxy: bool = False) -> subprocess.Popen[bytes]:
    """`kybern agent` on this machine; without `proxy`, the kubelet alone (--proxy-mode none)."""
    args = [
        sys.executable, "-m", "kybern.cli.main", "agent",
        "--kubeconfig", str(kubeconfig),
        "--data-dir", str(data / "agent"),
        "--runtime", "process",
        "--node-name", NODE,
        "--node-ip", "127.0.0.1",
        "--kubelet-port", str(server_process.free_port()),
        "--log-level", "warning",
        *(() if proxy else ("--proxy-mode", "none")),
    ]  # fmt: skip
    with open(data / "agent.log", "ab") as log:
        return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """User + system CPU time of a process so far: its own threads, or with ``children`` the
    children it has reaped (the monitors' first processes, which start the interpreter)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    used = fields[13:15] if children else fields[11:13]
    return sum(int(x) for x in used) / os.sysconf("SC_CLK_TCK")


def launcher_cpu(data_dir: Path) -> float:
    """CPU of the monitor launcher so far, with the first forks it reaped (the monitors'
    start cost when it starts them)."""
    return sum(cpu_seconds(p) + cpu_seconds(p, children=True) for p in launchers(data_dir))


def memory(pid: int) -> tuple[int, int, int]:
    """(RSS, PSS, private) bytes of a process, from /proc/<pid>/smaps_rollup."""
    fields: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
            key, _, value = line.partition(":")
            fields[key] = int(value.split()[0]) * 1024
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return fields.get("Rss", 0), fields.get("Pss", 0), private


def reap(data_dir: Path) -> None:
    """SIGKILL what the runtime left under data_dir: each container's group, then its monitor."""
    for pid in monitors(data_dir):
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{pid}/task").iterdir():
                for child in (task / "children").read_text().split():
                    with contextlib.suppress(OSError):
                        os.killpg(int(child), signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


# -- the process start baseline ------------------------------------------------------------


def spawn_times(argv: list[str], n: int, *, wait: bool) -> list[float]:
    """Seconds from Popen() to its return (the child has exec'd), or to its exit when wait."""
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        if wait:
            child.wait()
        times.append(time.perf_counter() - t0)
        if not wait:
            child.kill()
            child.wait()
    return times


IMPORT_RSS = (
    "import {modules}\n"
    "for line in open('/proc/self/status'):\n"
    "    if line.startswith('VmRSS:'):\n"
    "        print(int(line.split()[1]) * 1024)\n"
)


def import_rss(modules: str) -> int:
    """VmRSS of a fresh interpreter once it has imported `modules` (nothing run)."""
    code = IMPORT_RSS.format(modules=modules)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stdout)


# -- pod startup ---------------------------------------------------------------------------


def pod_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeName": NODE,
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "c", "image": "sleep", "command": COMMAND}],
        },
    }


def all_running(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec", {}).get("containers") or []
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return len(statuses) == len(spec) and all("running" in s.get("state", {}) for s in statuses)


class Watcher:
    """A pod watch on the namespace: when each pod was first seen with every container up."""

    def __init__(self) -> None:
        self.running_at: dict[str, float] = {}
        self.added_at: dict[str, float] = {}  # the ADDED event: stored and delivered
        self.status_at: dict[str, float] = {}  # the kubelet's first status write
        self.events: dict[str, asyncio.Event] = {}
        self.opened = asyncio.Event()

    def event(self, name: str) -> asyncio.Event:
        return self.events.setdefault(name, asyncio.Event())

    async def run(self, http: aiohttp.ClientSession) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/pods"
        listed = orjson.loads(await _client.request(http, "GET", path))
        rv = listed["metadata"]["resourceVersion"]
        query = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "false"}
        timeout = aiohttp.ClientTimeout(total=None, sock_read=None)
        async with http.get(path, params=query, timeout=timeout) as resp:
            self.opened.set()
            async for line in resp.content:
                if not line.strip():
                    continue
                now = time.perf_counter()
                pod = orjson.loads(line)["object"]
                name = pod["metadata"]["name"]
                self.added_at.setdefault(name, now)
                if pod.get("status", {}).get("containerStatuses"):
                    self.status_at.setdefault(name, now)
                if name not in self.running_at and all_running(pod):
                    self.running_at[name] = now
                    self.event(name).set()


async def create(http: aiohttp.ClientSession, name: str) -> float:
    """The time the create was sent."""
    body = orjson.dumps(pod_body(name))
    sent = time.perf_counter()
    async with http.post(f"/api/v1/namespaces/{NAMESPACE}/pods", data=body) as resp:
        payload = await resp.read()
        if resp.status != 201:
            raise RuntimeError(f"create {name}: {resp.status} {payload[:300]!r}")
    return sent


async def one_at_a_time(
    http: aiohttp.ClientSession, watcher: Watcher, n: int
) -> dict[str, list[float]]:
    """Per stage, seconds from the create's send: the watch's ADDED, the kubelet's first
    status, every container running."""
    stages: dict[str, list[float]] = {"added": [], "status": [], "running": []}
    for i in range(n):
        name = f"seq-{i}"
        sent = await create(http, name)
        await asyncio.wait_for(watcher.event(name).wait(), 60)
        stages["added"].append(watcher.added_at[name] - sent)
        stages["status"].append(watcher.status_at[name] - sent)
        stages["running"].append(watcher.running_at[name] - sent)
    return stages


async def burst(
    creds: _client.Credentials, watcher: Watcher, n: int
) -> tuple[dict[str, list[float]], float]:
    """Per stage (as :func:`one_at_a_time`), seconds from each create's send; and the time
    from the first send to the last pod running."""
    names = [f"burst-{i}" for i in range(n)]
    async with _client.session(creds, connections=8) as http:
        t0 = time.perf_counter()
        sent = await asyncio.gather(*(create(http, name) for name in names))
    for name in names:
        await asyncio.wait_for(watcher.event(name).wait(), 120)
    stages: dict[str, list[float]] = {"added": [], "status": [], "running": []}
    for name, t in zip(names, sent, strict=True):
        stages["added"].append(watcher.added_at[name] - t)
        stages["status"].append(watcher.status_at[name] - t)
        stages["running"].append(watcher.running_at[name] - t)
    return stages, max(watcher.running_at[name] for name in names) - t0


async def delete_pods(http: aiohttp.ClientSession) -> None:
    path = f"/api/v1/namespaces/{NAMESPACE}/pods"
    await _client.request(http, "DELETE", path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = orjson.loads(await _client.request(http, "GET", path))
        if not listed["items"]:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("pods not gone after 120 s")


async def wait_node_ready(http: aiohttp.ClientSession) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            node = orjson.loads(await _client.request(http, "GET", f"/api/v1/nodes/{NODE}"))
            if ready(node):
                return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"node {NODE} not Ready within 30 s")


def ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


async def settle_rss(pid: int, seconds: float) -> int:
    """VmRSS after `seconds` of quiet: the median of samples over the last second."""
    await asyncio.sleep(max(0.0, seconds - 1))
    samples = []
    for _ in range(5):
        samples.append(_client.rss_bytes(pid))
        await asyncio.sleep(0.2)
    return sorted(samples)[len(samples) // 2]


def start_py_spy(pid: int, out: Path) -> subprocess.Popen[bytes]:
    import _profile

    argv = [_profile.py_spy(), "record", "-p", str(pid), "-r", str(_profile.RATE), "--threads"]
    return subprocess.Popen([*argv, "--format", "raw", "-o", str(out)])


async def agent_run(
    data: Path, plan: Plan, *, profile: bool = False, burst_only: bool = False
) -> dict[str, Any]:
    server = server_process.ServerProcess(
        data_dir=data / "server", extra_args=["--disable-agent", "--log-level", "warning"]
    ).start(timeout=30)
    agent = start_agent(data, server.kubeconfig)
    creds = _client.load_credentials(server.data_dir, server.url)
    results: dict[str, Any] = {}
    try:
        async with _client.session(creds, connections=2) as http:
            await wait_node_ready(http)
            await _client.request(
                http, "POST", "/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}, expect=201
            )
            results["rss_idle"] = await settle_rss(agent.pid, 5)
            watcher = Watcher()
            watch = asyncio.create_task(watcher.run(http))
            await asyncio.wait_for(watcher.opened.wait(), 10)
            if not burst_only:
                await sequential_run(http, watcher, data, agent.pid, plan, results)
            progress(f"{plan.pods} pods at once")
            spy = start_py_spy(agent.pid, data / "agent.raw") if profile else None
            if spy is not None:
                await asyncio.sleep(1.0)  # attach
            t0 = time.perf_counter()
            cpu0 = cpu_seconds(agent.pid)
            children0 = cpu_seconds(agent.pid, children=True)
            assert server.process is not None
            server_cpu0 = cpu_seconds(server.process.pid)
            launcher_cpu0 = launcher_cpu(data)
            results["burst"], results["burst_all"] = await burst(creds, watcher, plan.pods)
            results["burst_cpu"] = cpu_seconds(agent.pid) - cpu0
            results["burst_server_cpu"] = cpu_seconds(server.process.pid) - server_cpu0
            results["burst_monitor_cpu"] = (
                cpu_seconds(agent.pid, children=True)
                - children0
                + sum(cpu_seconds(p) for p in monitors(data))
                + launcher_cpu(data)
                - launcher_cpu0
            )
            await asyncio.sleep(2.0)  # what the pods' starts left to do (events, echoes)
            results["burst_cpu_settled"] = cpu_seconds(agent.pid) - cpu0
            if spy is not None:
                import _profile

                spy.send_signal(signal.SIGINT)  # py-spy writes its output and exits
                spy.wait(30)
                took = time.perf_counter() - t0
                results["profile"] = _profile.report((data / "agent.raw").read_text(), took)
            if not burst_only:
                results["rss_burst"] = await settle_rss(agent.pid, 3)
            await delete_pods(http)
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await watch
    finally:
        stop(agent)
        server.stop()
        reap(data)
    return results


async def sequential_run(
    http: aiohttp.ClientSession,
    watcher: Watcher,
    data: Path,
    pid: int,
    plan: Plan,
    results: dict[str, Any],
) -> None:
    progress(f"{plan.pods} pods, one at a time")
    results["sequential"] = await one_at_a_time(http, watcher, plan.pods)
    results["rss_pods"] = await settle_rss(pid, 3)
    results["monitor_memory"] = [memory(p) for p in monitors(data)]
    progress("deleting them")
    await delete_pods(http)


async def idle_with_proxy(data: Path) -> int:
    """Idle VmRSS of `kybern agent` as it runs by default: kubelet and service proxy."""
    server = server_process.ServerProcess(
        data_dir=data / "server", extra_args=["--disable-agent", "--log-level", "warning"]
    ).start(timeout=30)
    agent = start_agent(data, server.kubeconfig, proxy=True)
    creds = _client.load_credentials(server.data_dir, server.url)
    try:
        async with _client.session(creds) as http:
            await wait_node_ready(http)
            return await settle_rss(agent.pid, 5)
    finally:
        stop(agent)
        server.stop()
        reap(data)


# -- node Ready after `kybern server` ------------------------------------------------------


def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def server_start(data: Path) -> tuple[float, float]:
    """Seconds from spawning `kybern server` to /readyz 200, and to its Node Ready."""
    port = server_process.free_port()
    args = [
        sys.executable, "-m", "kybern.cli.main", "server",
        "--data-dir", str(data), "--port", str(port),
        "--runtime", "process", "--node-ip", "127.0.0.1",
        "--kubelet-port", str(server_process.free_port()),
        "--log-level", "warning",
    ]  # fmt: skip
    data.mkdir(parents=True)
    url = f"https://127.0.0.1:{port}"
    t0 = time.perf_counter()
    with open(data / "server.log", "ab") as log:
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
    try:
        api_ready = poll(lambda: readyz(url), t0)
        context = poll(lambda: admin_context(data), t0)
        node_ready = poll(lambda: any_node_ready(url, context), t0)
        return api_ready, node_ready
    finally:
        stop(proc)
        reap(data)


def poll(check: Any, t0: float, timeout: float = 30) -> Any:
    while time.perf_counter() - t0 < timeout:
        result = check()
        if result:
            return result if not isinstance(result, bool) else time.perf_counter() - t0
        time.sleep(0.02)
    raise RuntimeError("timed out")


def readyz(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/readyz", context=insecure(), timeout=1) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def admin_context(data: Path) -> ssl.SSLContext | None:
    if not (data / "kubeconfig.yaml").exists():
        return None
    try:
        return _client.load_credentials(data, "https://127.0.0.1:1").ssl_context
    except (OSError, KeyError, ValueError):  # being written
        return None


def any_node_ready(url: str, context: ssl.SSLContext) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/v1/nodes", context=context, timeout=1) as reply:
            nodes = orjson.loads(reply.read())["items"]
    except (urllib.error.URLError, OSError):
        return False
    return any(ready(node) for node in nodes)


# -- report --------------------------------------------------------------------------------


def stats_row(what: str, values: list[float], baseline_p99: float | None = None) -> dict[str, Any]:
    row = {
        "measure": what,
        "n": len(values),
        "p50 ms": ms(percentile(values, 0.5)),
        "p99 ms": ms(percentile(values, 0.99)),
        "max ms": ms(max(values)),
    }
    if baseline_p99 is not None:
        beyond = (percentile(values, 0.99) - baseline_p99) * 1000
        verdict = "met" if beyond <= TARGET_BEYOND_PROCESS_MS else "missed"
        row["p99 beyond process start"] = f"{beyond:.1f} ms ({verdict})"
    else:
        row["p99 beyond process start"] = ""
    return row


def burst_rows(results: dict[str, Any], plan: Plan, base_p99: float) -> list[dict[str, Any]]:
    stages = results["burst"]
    return [
        stats_row(f"{plan.pods} at once: create sent -> ADDED on the watch", stages["added"]),
        stats_row(
            f"{plan.pods} at once: create sent -> the kubelet's first status", stages["status"]
        ),
        stats_row(f"pod startup, {plan.pods} pods at once", stages["running"], base_p99),
    ]


def burst_summary(results: dict[str, Any], plan: Plan) -> str:
    """Where the burst's CPU went, per pod: the agent (its loop and threads), the API server,
    the containers' monitors (their interpreter starts included)."""
    per_pod = {k: results[k] * 1000 / plan.pods for k in ("burst_cpu", "burst_cpu_settled")}
    return (
        f"{plan.pods} at once: first create sent -> last pod running "
        f"{ms(results['burst_all'])} ms; CPU per pod during it: agent "
        f"{per_pod['burst_cpu']:.1f} ms ({per_pod['burst_cpu_settled']:.1f} ms with the 2 s "
        f"after: events, PLEG), API server {results['burst_server_cpu'] * 1000 / plan.pods:.1f}"
        f" ms, the monitors (with the launcher's forks) "
        f"{results['burst_monitor_cpu'] * 1000 / plan.pods:.1f} ms; load "
        f"average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def render_burst(results: dict[str, Any], *, plan: Plan, machine: str) -> str:
    """``--burst-only``: the burst's rows alone (against this run's process start)."""
    base_p99 = percentile(results["spawn"], 0.99)
    rows = [
        stats_row(
            "`subprocess.Popen(['sleep', '3600'])` (the process start itself)", results["spawn"]
        ),
        *burst_rows(results, plan, base_p99),
    ]
    last = burst_summary(results, plan)
    return "\n".join([f"Machine: {machine}", "", table(rows), "", last])


def render(results: dict[str, Any], *, plan: Plan, command: str, machine: str) -> str:
    base = results["spawn"]
    base_p99 = percentile(base, 0.99)
    latency = [
        stats_row("`subprocess.Popen(['sleep', '3600'])` (the process start itself)", base),
        stats_row("`python -I -S -c pass` to exit (the monitor's interpreter)", results["py"]),
        stats_row(
            "one at a time: create sent -> ADDED on the watch", results["sequential"]["added"]
        ),
        stats_row(
            "one at a time: create sent -> the kubelet's first status",
            results["sequential"]["status"],
        ),
        stats_row("pod startup, one pod at a time", results["sequential"]["running"], base_p99),
        *burst_rows(results, plan, base_p99),
    ]
    idle_mib = results["rss_idle"] / 2**20
    monitor_memory = results["monitor_memory"]
    rss = [
        {
            "agent state": "idle (node Ready, no pods; kubelet only: `--proxy-mode none`)",
            "agent RSS MiB": _report.mib(results["rss_idle"]),
            "target": f"<= {TARGET_IDLE_RSS_MIB:.0f} MiB "
            + ("(met)" if idle_mib <= TARGET_IDLE_RSS_MIB else "(missed)"),
        },
        {
            "agent state": "idle, with the service proxy (`kybern agent`'s default: userspace "
            "with the process runtime)",
            "agent RSS MiB": _report.mib(results["rss_idle_proxy"]),
            "target": "",
        },
        {
            "agent state": f"{plan.pods} pods running (after the one-at-a-time run)",
            "agent RSS MiB": _report.mib(results["rss_pods"]),
            "target": "",
        },
        {
            "agent state": f"after the burst of {plan.pods} (pods running)",
            "agent RSS MiB": _report.mib(results["rss_burst"]),
            "target": "",
        },
    ]
    rss += [
        {
            "agent state": "(reference) a fresh interpreter after `import kybern.cli.main` "
            "(the command line; its subcommands import their components when run)",
            "agent RSS MiB": _report.mib(results["import_cli"]),
            "target": "",
        },
        {
            "agent state": "(reference) a fresh interpreter after importing only the agent's "
            "modules (`kybern.kubelet.component`, `kybern.kubelet.server`)",
            "agent RSS MiB": _report.mib(results["import_agent"]),
            "target": "",
        },
    ]
    api, node = results["server_api"], results["server_node"]
    med_node = sorted(node)[len(node) // 2]
    starts = [
        {
            "from spawning `kybern server --runtime process`": "to `/readyz` 200",
            "median s": f"{sorted(api)[len(api) // 2]:.2f}",
            "max s": f"{max(api):.2f}",
            "target": "",
        },
        {
            "from spawning `kybern server --runtime process`": "to its Node Ready",
            "median s": f"{med_node:.2f}",
            "max s": f"{max(node):.2f}",
            "target": f"<= {TARGET_READY_S:.0f} s "
            + ("(met)" if med_node <= TARGET_READY_S else "(missed)"),
        },
    ]
    count = len(monitor_memory) or 1
    rss_each, pss_each, private_each = (sum(m[i] for m in monitor_memory) / count for i in range(3))
    return "\n".join(
        [
            HEADING,
            "",
            f"Command: `{command}`  ",
            f"Date: {_report.now()}; whole benchmark {results['elapsed']:.0f} s  ",
            f"Machine: {machine}  ",
            "Setup: `kybern server --disable-agent` (sqlite, full control plane) and a "
            "`kybern agent --runtime process --proxy-mode none` subprocess (the kubelet alone) "
            "joined with the admin kubeconfig, all on 127.0.0.1. "
            f"Pods: one container `{shlex.join(COMMAND)}`, `spec.nodeName` set at "
            "creation (the scheduler is not measured).  ",
            "Pod startup latency: from sending the create request (the client's clock stands "
            "for `creationTimestamp`, which has one-second resolution) to the arrival on a pod "
            "watch of the first event with every container `running`. 'One at a time': the next "
            "pod is created once the previous one runs; 'at once': all creates in flight on 8 "
            "connections. Baseline (same run): `subprocess.Popen` of the same command, timed to "
            "its return (the child has exec'd). Target: p99 <= 100 ms beyond the process start.",
            "",
            table(latency),
            "",
            burst_summary(results, plan) + ".",
            "",
            f"Agent memory: VmRSS of the `kybern agent` process. Each container also has a "
            f"monitor process (the runtime's conmon: a Python process forked by the runtime's "
            f"one monitor launcher, so they share its interpreter's pages): "
            f"{len(monitor_memory)} monitors with {plan.pods} pods running, on average "
            f"{_report.mib(rss_each)} MiB RSS, {_report.mib(pss_each)} MiB PSS and "
            f"{_report.mib(private_each)} MiB private each (from `/proc/<pid>/smaps_rollup`; "
            f"PSS shares the interpreter's pages among them): about "
            f"{_report.mib(pss_each * len(monitor_memory))} MiB PSS for the {plan.pods}.",
            "",
            table(rss),
            "",
            f"Node Ready after start: {plan.server_starts} starts on a fresh data dir each (new "
            "PKI and database), the API polled every 20 ms from the spawn.",
            "",
            table(starts),
            "",
        ]
    )


def run_all(tmp: Path, plan: Plan, *, profile: bool = False) -> dict[str, Any]:
    results: dict[str, Any] = {}
    progress("server starts: spawn -> node Ready")
    api, node = [], []
    for i in range(plan.server_starts):
        a, n = server_start(tmp / f"start-{i}")
        api.append(a)
        node.append(n)
        progress(f"  start {i}: readyz {a:.2f} s, node Ready {n:.2f} s")
    results["server_api"], results["server_node"] = api, node
    progress("process start baseline")
    results["spawn"] = spawn_times(COMMAND, plan.pods, wait=False)
    results["py"] = spawn_times([sys.executable, "-I", "-S", "-c", "pass"], plan.pods, wait=True)
    results["import_cli"] = import_rss("kybern.cli.main")
    results["import_agent"] = import_rss("kybern.kubelet.component, kybern.kubelet.server")
    progress("agent: pods")
    results.update(asyncio.run(agent_run(tmp / "agent-run", plan, profile=profile)))
    progress("agent with its service proxy: idle")
    results["rss_idle_proxy"] = asyncio.run(idle_with_proxy(tmp / "agent-proxy"))
    return results


def burst_main(plan: Plan, args: argparse.Namespace) -> None:
    machine = _report.machine()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kybern-bench-agent-") as tmp:
        results: dict[str, Any] = {"spawn": spawn_times(COMMAND, plan.pods, wait=False)}
        run = agent_run(Path(tmp) / "agent-run", plan, profile=args.profile, burst_only=True)
        results.update(asyncio.run(run))
    print(render_burst(results, plan=plan, machine=machine))
    if "profile" in results:
        print(f"\n### The agent during the burst, under py-spy\n\n{results['profile']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 pods, 2 server starts")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument(
        "--burst-only",
        action="store_true",
        help="only the N-pods-at-once run (no server starts, no one-at-a-time run, no RSS); "
        "prints its rows, never writes",
    )
    parser.add_argument("--pods", type=int, default=0, help="pods per run (default 100; 20 quick)")
    parser.add_argument("--dir", type=Path, default=None, help="where to put temp dirs")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the agent during the burst and print where it spends its time "
        "(the numbers are then not written: py-spy slows the agent)",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    if args.pods:
        plan = Plan(pods=args.pods, server_starts=plan.server_starts)
    if args.burst_only:
        burst_main(plan, args)
        return
    command = shlex.join(["python", "bench/bench_agent.py", *sys.argv[1:]])
    machine = _report.machine()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="kybern-bench-agent-") as tmp:
        t0 = time.perf_counter()
        results = run_all(Path(tmp), plan, profile=args.profile)
        results["elapsed"] = time.perf_counter() - t0
    section = render(results, plan=plan, command=command, machine=machine)
    print(section)
    if "profile" in results:
        print(f"\n### The agent during the burst, under py-spy\n\n{results['profile']}")
        return
    if args.write and not args.no_write:
        _report.write_section(HEADING, section)
        print(f"(written to {_report.RESULTS})")


if __name__ == "__main__":
    main()
