"""Real containers with the oci runtime and runc (issue 6, "Benchmarks"); root only.

Run: ``python bench/bench_oci.py`` (prints a markdown section), ``--write`` to replace the
"## Real containers (oci runtime)" section of bench/RESULTS.md (``--no-write`` wins),
``--quick`` for a smoke run (10 pods, 20 at once).

Measured, in one run:

- the runtime's stages, in-process: ``kybern.runtime.oci.OciRuntime`` over a temp dir, with
  busybox (``kybern.testing.images.import_busybox``) in an image store and a real pod network
  from ``kybern.network.node.prepare`` on a test bridge (``kybbench0``, 10.197.3.0/24). Per
  pod: ``run_pod_sandbox`` (namespaces + CNI ADD), the CNI ADD inside it (the network's
  ``setup`` timed), ``create_container`` and ``start_container`` of ``sleep 3600``.
- the baseline: bare ``runc run`` of ``/bin/true`` in a bundle whose root is the unpacked
  busybox snapshot (runc's default spec: new pid, net, ipc, uts and mount namespaces), and a
  CNI ADD then DEL on a scratch network namespace, on the same bridge.
- pod startup through the API: ``kybern server --runtime oci`` (the agent runs inside the
  server process), busybox imported into ``<data-dir>/images`` before it starts, pods with
  ``imagePullPolicy: Never`` and ``spec.nodeName`` set. Latency from the send of the create
  request to the arrival, on a pod watch, of the first event with the container running (the
  client's clock stands for ``creationTimestamp``, which has one-second resolution). N pods
  one at a time, then M pods created at once: the time until all run, and the server's RSS.

Everything created is removed: pods, the server (by its pid), the test bridge, its iptables
chains and the scratch namespaces.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # bench/ is sys.path[0]

import _client
import _report
from _report import ms, percentile, progress, table
from bench_agent import NAMESPACE, Watcher, delete_pods

from kybern.network import cni, hostrules, netns, node
from kybern.network import config as network_config
from kybern.runtime import cri, registry
from kybern.runtime.images.store import ImageStore
from kybern.runtime.oci import OciRuntime
from kybern.testing import images as test_images
from kybern.testing import server_process

HEADING = "## Real containers (oci runtime)"
BRIDGE = "kybbench0"
POD_CIDR = "10.197.3.0/24"
COMMAND = ("sleep", "3600")
TARGET_P50_MS = 150.0
TARGET_P99_MS = 500.0
TARGET_FACTOR = 3.0
T = TypeVar("T")


@dataclass(frozen=True)
class Plan:
    pods: int  # one at a time, in-process and through the API
    burst: int  # at once, through the API
    baseline: int  # bare runc runs and CNI ADD/DEL pairs


FULL = Plan(pods=50, burst=100, baseline=50)
QUICK = Plan(pods=10, burst=20, baseline=10)


async def timed(coro: Awaitable[T]) -> tuple[T, float]:
    t0 = time.perf_counter()
    value = await coro
    return value, time.perf_counter() - t0


# -- in-process: the runtime's stages and the baseline --------------------------------------


def timing_setup(network: cni.PodNetwork, into: list[float]) -> None:
    """Record how long each CNI ADD (the network's ``setup``) takes."""
    setup = network.setup

    async def wrapper(**kwargs: Any) -> Any:
        result, took = await timed(setup(**kwargs))
        into.append(took)
        return result

    network.setup = wrapper  # type: ignore[method-assign]


async def runtime_stages(
    tmp: Path, store: ImageStore, network: cni.PodNetwork, n: int
) -> dict[str, list[float]]:
    stages: dict[str, list[float]] = {"sandbox": [], "cni": [], "create": [], "start": []}
    timing_setup(network, stages["cni"])
    root = Path(f"/tmp/kyb-ocib-{uuid.uuid4().hex[:8]}")  # short: unix socket paths
    rt = OciRuntime(registry.Options(root=root), images=store, network=network)
    await rt.start()
    try:
        for i in range(n):
            meta = cri.PodMeta(name=f"p{i}", namespace=NAMESPACE, uid=uuid.uuid4().hex)
            config = cri.PodSandboxConfig(metadata=meta, hostname=f"p{i}")
            sandbox, took = await timed(rt.run_pod_sandbox(config))
            stages["sandbox"].append(took)
            container = cri.ContainerConfig(
                metadata=cri.ContainerMeta("c"),
                image=test_images.BUSYBOX_REF,
                command=COMMAND,
                log_path=str(tmp / "logs" / f"p{i}.log"),
            )
            cid, took = await timed(rt.create_container(sandbox, container, config))
            stages["create"].append(took)
            _, took = await timed(rt.start_container(cid))
            stages["start"].append(took)
    finally:
        for sandbox_status in await rt.list_pod_sandboxes():
            await rt.remove_pod_sandbox(sandbox_status.id)
        shutil.rmtree(root, ignore_errors=True)
    return stages


def runc_bundle(tmp: Path, rootfs: Path) -> Path:
    """A bundle running /bin/true on the snapshot, read-only, from runc's default spec."""
    bundle = tmp / "bundle"
    bundle.mkdir()
    subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    spec["process"]["args"] = ["/bin/true"]
    spec["root"] = {"path": str(rootfs), "readonly": True}
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def runc_runs(tmp: Path, rootfs: Path, n: int) -> list[float]:
    bundle = runc_bundle(tmp, rootfs)
    state = tmp / "runc-state"
    times = []
    for i in range(n):
        argv = ["runc", "--root", str(state), "run", "--bundle", str(bundle), f"bench-{i}"]
        t0 = time.perf_counter()
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return times


def quiet(argv: list[str]) -> None:
    subprocess.run(argv, stderr=subprocess.DEVNULL, check=False)


async def cni_pairs(tmp: Path, network: cni.PodNetwork, n: int) -> dict[str, list[float]]:
    """A scratch namespace, CNI ADD, CNI DEL, namespace removed; n times."""
    out: dict[str, list[float]] = {"netns": [], "add": [], "del": []}
    directory = tmp / "netns"
    for i in range(n):
        path, took = await timed(netns.create(f"kybbench-{i}", directory=directory))
        out["netns"].append(took)
        cid = f"bench{i:04d}" + uuid.uuid4().hex
        name, uid = f"scratch{i}", uuid.uuid4().hex
        try:
            add = network.setup(
                netns=path, container_id=cid, namespace=NAMESPACE, name=name, uid=uid
            )
            _, took = await timed(add)
            out["add"].append(took)
            delete = network.teardown(
                netns=path, container_id=cid, namespace=NAMESPACE, name=name, uid=uid
            )
            _, took = await timed(delete)
            out["del"].append(took)
        finally:
            await netns.delete(path)
    # netns made the directory a shared bind mount of itself (as iproute2 does): undo it
    await asyncio.to_thread(quiet, ["umount", "-l", str(directory)])
    return out


async def in_process(tmp: Path, plan: Plan) -> dict[str, Any]:
    store = ImageStore(tmp / "images")
    record = test_images.import_busybox(store)
    rootfs = record.layers[0]
    cfg = network_config.NetworkConfig.from_pod_cidr(POD_CIDR, tmp / "cni", bridge=BRIDGE)
    results: dict[str, Any] = {}
    try:
        network = await node.prepare(cfg, conf_dir=tmp / "cni-conf", netns_dir=tmp / "gc-netns")
        progress(f"baseline: {plan.baseline} bare runc runs")
        results["runc"] = await asyncio.to_thread(runc_runs, tmp, rootfs, plan.baseline)
        progress(f"baseline: {plan.baseline} CNI ADD/DEL on a scratch netns")
        results["cni_pairs"] = await cni_pairs(tmp, network, plan.baseline)
        progress(f"runtime stages: {plan.pods} pods in-process")
        results["stages"] = await runtime_stages(tmp, store, network, plan.pods)
    finally:
        await hostrules.remove(BRIDGE)
        await asyncio.to_thread(quiet, ["ip", "link", "del", BRIDGE])
    return results


# -- through the API: `kybern server --runtime oci` -----------------------------------------


def pod_body(name: str, node_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "nodeName": node_name,
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "c",
                    "image": "busybox",
                    "imagePullPolicy": "Never",
                    "command": list(COMMAND),
                }
            ],
        },
    }


async def create(http: aiohttp.ClientSession, name: str, node_name: str) -> float:
    body = orjson.dumps(pod_body(name, node_name))
    sent = time.perf_counter()
    async with http.post(f"/api/v1/namespaces/{NAMESPACE}/pods", data=body) as resp:
        payload = await resp.read()
        if resp.status != 201:
            raise RuntimeError(f"create {name}: {resp.status} {payload[:300]!r}")
    return sent


async def poll(check: Callable[[], Awaitable[Any]], what: str, within: float = 60) -> Any:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(RuntimeError):
            found = await check()
            if found:
                return found
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{what}: not within {within} s")


async def ready_node(http: aiohttp.ClientSession) -> str:
    async def check() -> str:
        nodes = orjson.loads(await _client.request(http, "GET", "/api/v1/nodes"))["items"]
        for item in nodes:
            for cond in item.get("status", {}).get("conditions") or []:
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    return str(item["metadata"]["name"])
        return ""

    result: str = await poll(check, "node Ready")
    return result


async def sandboxes_gone(data: Path, within: float = 90) -> None:
    """Wait for the agent to remove every sandbox (namespaces, mounts, cgroups) of the deleted
    pods: the API forgets a pod before its sandbox is torn down, and a server stopped earlier
    would leave them behind."""
    sandboxes = data / "agent" / "runtime" / "oci" / "sandboxes"
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not sandboxes.exists() or not any(sandboxes.iterdir()):
            return
        await asyncio.sleep(0.2)
    left = sorted(p.name for p in sandboxes.iterdir())
    raise RuntimeError(f"sandboxes not removed within {within} s: {left}")


async def through_api(tmp: Path, plan: Plan) -> dict[str, Any]:
    data = tmp / "server"
    data.mkdir()
    test_images.import_busybox(ImageStore(data / "images"))
    server = server_process.ServerProcess(
        data_dir=data,
        extra_args=["--runtime", "oci", "--proxy-mode", "none", "--log-level", "warning"],
    ).start(timeout=60)
    assert server.process is not None
    creds = _client.load_credentials(server.data_dir, server.url)
    results: dict[str, Any] = {}
    try:
        async with _client.session(creds, connections=2) as http:
            node_name = await ready_node(http)
            ns = {"metadata": {"name": NAMESPACE}}
            await _client.request(http, "POST", "/api/v1/namespaces", ns, expect=201)
            sa = f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default"
            await poll(lambda: _client.request(http, "GET", sa), "default service account")
            results["rss_idle"] = _client.rss_bytes(server.process.pid)
            watcher = Watcher()
            watch = asyncio.create_task(watcher.run(http))
            await asyncio.wait_for(watcher.opened.wait(), 10)
            progress(f"API: {plan.pods} pods one at a time")
            latencies = []
            for i in range(plan.pods):
                sent = await create(http, f"seq-{i}", node_name)
                await asyncio.wait_for(watcher.event(f"seq-{i}").wait(), 60)
                latencies.append(watcher.running_at[f"seq-{i}"] - sent)
            results["sequential"] = latencies
            progress("deleting them")
            await delete_pods(http)
            await sandboxes_gone(data)
            progress(f"API: {plan.burst} pods at once")
            names = [f"burst-{i}" for i in range(plan.burst)]
            peak = 0
            async with _client.session(creds, connections=8) as burst_http:
                t0 = time.perf_counter()
                await asyncio.gather(*(create(burst_http, n, node_name) for n in names))
            for name in names:
                await asyncio.wait_for(watcher.event(name).wait(), 300)
                peak = max(peak, _client.rss_bytes(server.process.pid))
            results["burst_all"] = max(watcher.running_at[n] for n in names) - t0
            results["rss_burst"] = max(peak, _client.rss_bytes(server.process.pid))
            results["load_burst"] = os.getloadavg()[0]
            progress("deleting them")
            await delete_pods(http)
            await sandboxes_gone(data)
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await watch
    finally:
        server.stop()  # by its pid (SIGTERM, then SIGKILL)
    return results


# -- report ----------------------------------------------------------------------------------


def row(what: str, values: list[float], target: str = "") -> dict[str, Any]:
    return {
        "measure": what,
        "n": len(values),
        "p50 ms": ms(percentile(values, 0.5)),
        "p99 ms": ms(percentile(values, 0.99)),
        "max ms": ms(max(values)) if values else "-",
        "target": target,
    }


def verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def render(results: dict[str, Any], *, plan: Plan, command: str, machine: str) -> str:
    stages, pairs = results["stages"], results["cni_pairs"]
    seq = results["sequential"]
    p50, p99 = percentile(seq, 0.5) * 1000, percentile(seq, 0.99) * 1000
    baseline = (percentile(results["runc"], 0.5) + percentile(pairs["add"], 0.5)) * 1000
    factor = p50 / baseline
    latency = [
        row("bare `runc run` of `/bin/true` (create, start, exit, delete)", results["runc"]),
        row("scratch netns create", pairs["netns"]),
        row("CNI ADD on a scratch netns", pairs["add"]),
        row("CNI DEL on a scratch netns", pairs["del"]),
        row("runtime: `run_pod_sandbox` (namespaces + CNI ADD)", stages["sandbox"]),
        row("runtime: CNI ADD inside it", stages["cni"]),
        row(
            "runtime: `create_container` (overlay rootfs mounted, `config.json` written; runc not run yet)",
            stages["create"],
        ),
        row(
            "runtime: `start_container` (the shim: `runc run --detach`, waits for the container to run)",
            stages["start"],
        ),
        row(
            "runtime: sandbox + create + start",
            [
                sum(v)
                for v in zip(stages["sandbox"], stages["create"], stages["start"], strict=True)
            ],
        ),
        row(
            "pod startup through the API, one at a time (create sent -> running on the watch)",
            seq,
            f"p50 <= {TARGET_P50_MS:.0f} ms ({verdict(p50 <= TARGET_P50_MS)}), "
            f"p99 <= {TARGET_P99_MS:.0f} ms ({verdict(p99 <= TARGET_P99_MS)}), "
            f"p50 <= {TARGET_FACTOR:.0f}x baseline: {factor:.1f}x "
            f"({verdict(factor <= TARGET_FACTOR)})",
        ),
    ]
    burst = [
        {
            "measure": f"{plan.burst} pods created at once: last one running",
            "value": f"{results['burst_all']:.2f} s",
        },
        {
            "measure": "`kybern server` RSS (the agent runs inside it), idle node Ready",
            "value": f"{_report.mib(results['rss_idle'])} MiB",
        },
        {
            "measure": f"`kybern server` RSS, peak while the {plan.burst} started",
            "value": f"{_report.mib(results['rss_burst'])} MiB",
        },
        {
            "measure": "1-min load average at the start"
            + (" (bench_scale.py running concurrently)" if results["scale_running"] else ""),
            "value": f"{results['load_start']:.2f}",
        },
        {"measure": "1-min load average right after the burst", "value": f"{results['load']:.2f}"},
    ]
    return "\n".join(
        [
            HEADING,
            "",
            f"Command: `{command}`  ",
            f"Date: {_report.now()}; whole benchmark {results['elapsed']:.0f} s  ",
            f"Machine: {machine}  ",
            f"Load: 1-min load average {results['load_start']:.2f} at the start"
            + (" (bench_scale.py was running concurrently)" if results["scale_running"] else "")
            + "  ",
            "Setup: "
            + results["runc_version"]
            + "; busybox (host busybox-static, one layer) imported with "
            "`kybern.testing.images.import_busybox`. Runtime stages: `OciRuntime` driven "
            f"in-process on a network from `kybern.network.node.prepare` (bridge `{BRIDGE}`, "
            f"{POD_CIDR}); pods with one container `{shlex.join(COMMAND)}`. Baseline (same run, "
            "same bridge): bare `runc run` of `/bin/true` in a bundle on the unpacked busybox "
            "snapshot (runc's default spec), and CNI ADD/DEL on a scratch netns. Through the "
            "API: `kybern server --runtime oci --proxy-mode none` (agent in-process), pods "
            "with `imagePullPolicy: Never` and `spec.nodeName` set; latency from sending the "
            "create (the client's clock stands for `creationTimestamp`, one-second "
            "resolution) to the first watch event with the container running. "
            f"Baseline = p50 bare runc + p50 CNI ADD = {baseline:.1f} ms.",
            "",
            table(latency),
            "",
            table(burst),
            "",
        ]
    )


def run_all(tmp: Path, plan: Plan) -> dict[str, Any]:
    results: dict[str, Any] = {
        "load_start": os.getloadavg()[0],
        "scale_running": subprocess.run(
            ["pgrep", "-f", "bench_scale.py"], capture_output=True, check=False
        ).returncode
        == 0,
        "runc_version": subprocess.run(
            ["runc", "--version"], capture_output=True, text=True, check=True
        ).stdout.split("\n")[0],
    }
    results.update(asyncio.run(in_process(tmp / "inproc", plan)))
    results.update(asyncio.run(through_api(tmp, plan)))
    results["load"] = results.pop("load_burst")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 pods, 20 at once")
    parser.add_argument("--write", action="store_true", help="update bench/RESULTS.md")
    parser.add_argument("--no-write", action="store_true", help="do not touch RESULTS.md")
    args = parser.parse_args()
    if os.geteuid() != 0 or shutil.which("runc") is None:
        print("bench_oci.py: skipped (needs root and runc)", file=sys.stderr)
        return
    plan = QUICK if args.quick else FULL
    command = shlex.join(["python", "bench/bench_oci.py", *sys.argv[1:]])
    machine = _report.machine()
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="kob-") as tmp:
        (Path(tmp) / "inproc").mkdir()
        t0 = time.perf_counter()
        results = run_all(Path(tmp), plan)
        results["elapsed"] = time.perf_counter() - t0
    section = render(results, plan=plan, command=command, machine=machine)
    print(section)
    if args.write and not args.no_write:
        _report.write_section(HEADING, section)
        print(f"(written to {_report.RESULTS})")


if __name__ == "__main__":
    main()
