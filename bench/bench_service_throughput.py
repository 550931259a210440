"""Service data path: bulk TCP throughput and round trips through a ClusterIP, relative to
direct pod-to-pod traffic in the same run (issue 7: nftables/iptables >= 95% of direct,
userspace >= 50%).

Run as root: ``python bench/bench_service_throughput.py`` prints a Markdown table, ``--write``
replaces the "## Service data path" section of bench/RESULTS.md, ``--quick`` is a smoke run.

The topology is tests/integration/test_proxy_root.py's, built here and removed in a
``finally``: a "node" network namespace with a bridge on a private /24 (10.196.N.0/24), a
"server pod" and a "client pod" namespace on it, each with a veth. Nothing leaves the machine.
The server pod runs ``iperf3 -s`` (bulk throughput) and a small TCP echo server (round trips).
The client pod measures, interleaved per repetition so machine noise hits every row alike:

- direct: to the server pod's IP (bridged);
- nftables / iptables: to ClusterIP 10.43.0.10, rules rendered by kybern.proxy's backend of
  that name and applied in the node namespace (routed through the node, DNAT to the pod);
  each repetition applies the rules and removes them afterwards;
- userspace: to ClusterIP 10.43.0.11, served by ``kybern.proxy.userspace`` with
  ``bind="vip"`` (its docstring: the VIP is added to the node's ``lo``) in a child process in
  the node namespace, on uvloop when installed as ``kybern server`` runs it.

Throughput is ``iperf3 -c`` for ``--seconds`` (one stream, received bytes/s). Round trips are a
64-byte request/response on one connection for ``--rr-seconds`` ("rr/s"), and new connections
each carrying one request/response ("conn/s"), from a Python client (same cost on every row).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import _report

from kybern.proxy import iptables, nftables, rules

HEADING = "## Service data path"
KERNEL_VIP = "10.43.0.10"
USERSPACE_VIP = "10.43.0.11"
IPERF_PORT = 5201
ECHO_PORT = 7000
MODES = ("direct", "nftables", "iptables", "userspace")
TARGETS = {"nftables": 0.95, "iptables": 0.95, "userspace": 0.50}

ECHO_SERVER = """
import socket, socketserver, sys
class Echo(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)
class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
Server((sys.argv[1], int(sys.argv[2])), Echo).serve_forever()
"""

RR_CLIENT = """
import json, socket, sys, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
msg = b"x" * 64
def exchange(s):
    s.sendall(msg)
    got = 0
    while got < len(msg):
        chunk = s.recv(65536)
        if not chunk:
            raise OSError("closed")
        got += len(chunk)
s = socket.create_connection((host, port), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
n, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    exchange(s)
    n += 1
s.close()
rr = n / seconds
c, end = 0, time.monotonic() + seconds
while time.monotonic() < end:
    with socket.create_connection((host, port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        exchange(s)
    c += 1
print(json.dumps({"rr": rr, "conn": c / seconds}))
"""

USERSPACE_PROXY = """
import asyncio, json, sys
from kybern.proxy import rules, userspace
async def main():
    ruleset = rules.compute(*json.loads(sys.argv[1]), node_name="n1")
    proxy = userspace.UserspaceBackend(bind="vip")
    await proxy.sync(ruleset)
    assert len(proxy.listeners) == 2 and not proxy.failed, proxy.failed
    print("ready", flush=True)
    await asyncio.Event().wait()
try:
    import uvloop
    run = uvloop.run
except ImportError:
    run = asyncio.run
run(main())
"""


def sh(*argv: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")
    return done


@dataclass
class Net:
    prefix: str  # "10.196.N"
    node: str
    server: str
    client: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    def ip(self, i: int) -> str:
        return f"{self.prefix}.{i}"

    @property
    def server_ip(self) -> str:
        return self.ip(10)


def attach(net: Net, ns: str, ip: str, host_end: str) -> None:
    sh("ip", "-n", net.node, "link", "add", host_end, "type", "veth", "peer", "name", "eth0")
    sh("ip", "-n", net.node, "link", "set", "eth0", "netns", ns)
    sh("ip", "-n", net.node, "link", "set", host_end, "master", "br0", "up")
    sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
    sh("ip", "-n", ns, "link", "set", "eth0", "up")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "route", "add", "10.43.0.0/16", "via", net.ip(1))


def build(net: Net) -> None:
    for ns in (net.node, net.server, net.client):
        sh("ip", "netns", "add", ns)
    sh("ip", "-n", net.node, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", net.node, "addr", "add", f"{net.ip(1)}/24", "dev", "br0")
    sh("ip", "-n", net.node, "link", "set", "br0", "up")
    sh("ip", "-n", net.node, "link", "set", "lo", "up")
    sh("ip", "netns", "exec", net.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
    # As kube-proxy needs br_netfilter: bridged pod traffic passes the same hooks on every row.
    sh(
        "ip",
        "netns",
        "exec",
        net.node,
        "sysctl",
        "-qw",
        "net.bridge.bridge-nf-call-iptables=1",
        check=False,
    )
    attach(net, net.server, net.server_ip, "kv0")
    attach(net, net.client, net.ip(20), "kv1")
    # conn/s makes thousands of client-closed connections per row: without reuse, the
    # TIME_WAITs of the previous rows (the kernel rows share one VIP:port) make connect()'s
    # ephemeral port search slow, and the row measured that instead of the data path
    # (measured: 4,700/s on a fresh client, ~550/s after two earlier rows).
    sh("ip", "netns", "exec", net.client, "sysctl", "-qw", "net.ipv4.tcp_tw_reuse=1")


def teardown(net: Net) -> None:
    for proc in net.procs:
        proc.kill()
        proc.wait(timeout=10)
    for ns in (net.node, net.server, net.client):
        sh("ip", "netns", "del", ns, check=False)


def spawn(net: Net, ns: str, argv: list[str], **kw: Any) -> subprocess.Popen[str]:
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "nice", "-n", "5", *argv], text=True, **kw)
    net.procs.append(proc)
    return proc


def objects(net: Net, vip: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One ClusterIP service, ports iperf and echo, whose one endpoint is the server pod."""
    ports = [("iperf", IPERF_PORT), ("echo", ECHO_PORT)]
    svc = {
        "metadata": {"namespace": "default", "name": "sink"},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": vip,
            "clusterIPs": [vip],
            "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
        },
    }
    slice_ = {
        "metadata": {
            "namespace": "default",
            "name": "sink-1",
            "labels": {"kubernetes.io/service-name": "sink"},
        },
        "addressType": "IPv4",
        "ports": [{"name": n, "port": p, "protocol": "TCP"} for n, p in ports],
        "endpoints": [
            {"addresses": [net.server_ip], "conditions": {"ready": True}, "nodeName": "n1"}
        ],
    }
    return [svc], [slice_]


def kernel_ruleset(net: Net) -> rules.RuleSet:
    services, slices = objects(net, KERNEL_VIP)
    return rules.compute(
        services,
        slices,
        node_name="n1",
        node_ips=[net.ip(1)],
        cluster_cidr=f"{net.prefix}.0/24",
    )


def wait_port(net: Net, host: str, port: int) -> None:
    probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=1).close()"
    deadline = time.monotonic() + 15
    while sh(
        "ip", "netns", "exec", net.client, sys.executable, "-c", probe, check=False
    ).returncode:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{host}:{port} never answered from the client pod")
        time.sleep(0.1)  # polling a condition with a deadline


def start_servers(net: Net) -> None:
    spawn(
        net,
        net.server,
        ["iperf3", "-s", "-B", net.server_ip, "-p", str(IPERF_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    spawn(
        net,
        net.server,
        [sys.executable, "-c", ECHO_SERVER, net.server_ip, str(ECHO_PORT)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(net, net.server_ip, IPERF_PORT)
    wait_port(net, net.server_ip, ECHO_PORT)


def start_userspace(net: Net) -> None:
    """The userspace proxy for USERSPACE_VIP, kept running for the whole benchmark."""
    sh("ip", "-n", net.node, "addr", "add", f"{USERSPACE_VIP}/32", "dev", "lo")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
    arg = json.dumps(objects(net, USERSPACE_VIP))
    proc = spawn(
        net, net.node, [sys.executable, "-c", USERSPACE_PROXY, arg], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("userspace proxy did not start")
    wait_port(net, USERSPACE_VIP, ECHO_PORT)


def iperf(net: Net, host: str, seconds: float) -> float:
    """Received bytes per second of one ``iperf3 -c`` run from the client pod."""
    argv = ["iperf3", "-c", host, "-p", str(IPERF_PORT), "-t", str(seconds), "-J"]
    done = sh("ip", "netns", "exec", net.client, "nice", "-n", "5", *argv, timeout=seconds + 30)
    report = json.loads(done.stdout)
    return float(report["end"]["sum_received"]["bytes"]) / float(
        report["end"]["sum_received"]["seconds"]
    )


def round_trips(net: Net, host: str, seconds: float) -> dict[str, float]:
    argv = [sys.executable, "-c", RR_CLIENT, host, str(ECHO_PORT), str(seconds)]
    done = sh("ip", "netns", "exec", net.client, "nice", "-n", "5", *argv, timeout=2 * seconds + 30)
    result: dict[str, float] = json.loads(done.stdout)
    return result


async def with_kernel_rules(net: Net, mode: str, measure: Callable[[], None]) -> None:
    make = nftables.NftablesBackend if mode == "nftables" else iptables.IptablesBackend
    proxy = make(netns=net.node)
    await proxy.sync(kernel_ruleset(net))
    try:
        wait_port(net, KERNEL_VIP, ECHO_PORT)
        measure()
    finally:
        await proxy.cleanup()


@dataclass
class Samples:
    throughput: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    rr: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})
    conn: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MODES})


async def run(net: Net, modes: list[str], reps: int, seconds: float, rr_seconds: float) -> Samples:
    samples = Samples()
    hosts = {"direct": net.server_ip, "userspace": USERSPACE_VIP}
    for rep in range(reps):
        for mode in modes:
            host = hosts.get(mode, KERNEL_VIP)

            def measure(mode: str = mode, host: str = host) -> None:
                samples.throughput[mode].append(iperf(net, host, seconds))
                if rr_seconds > 0:
                    rt = round_trips(net, host, rr_seconds)
                    samples.rr[mode].append(rt["rr"])
                    samples.conn[mode].append(rt["conn"])

            if mode in ("nftables", "iptables"):
                await with_kernel_rules(net, mode, measure)
            else:
                measure()
            got = samples.throughput[mode][-1]
            _report.progress(f"rep {rep + 1}/{reps} {mode}: {got / 1e6:.0f} MB/s")
    return samples


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def rows(samples: Samples, modes: list[str]) -> list[dict[str, Any]]:
    direct = median(samples.throughput["direct"])
    direct_rr = median(samples.rr["direct"])
    out = []
    for mode in modes:
        tput = median(samples.throughput[mode])
        ratio = tput / direct
        target = TARGETS.get(mode)
        verdict = "-" if target is None else ("met" if ratio >= target else "MISSED")
        rr = median(samples.rr[mode])
        out.append(
            {
                "path": mode,
                "MB/s (median)": f"{tput / 1e6:,.0f}",
                "min..max MB/s": f"{min(samples.throughput[mode]) / 1e6:,.0f}.."
                f"{max(samples.throughput[mode]) / 1e6:,.0f}",
                "vs direct": f"{ratio:.0%}",
                "target": "-" if target is None else f">= {target:.0%}",
                "verdict": verdict,
                "rr/s (median)": "-" if rr != rr else _report.rate(rr),
                "rr vs direct": "-" if rr != rr else f"{rr / direct_rr:.0%}",
                "conn/s (median)": "-"
                if not samples.conn[mode]
                else _report.rate(median(samples.conn[mode])),
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions of every row")
    parser.add_argument("--seconds", type=float, default=4.0, help="iperf3 seconds per run")
    parser.add_argument("--rr-seconds", type=float, default=1.5, help="0: no round-trip rows")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset")
    parser.add_argument("--quick", action="store_true", help="2 reps of 1 s")
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.seconds, args.rr_seconds = 2, 1.0, 0.5
    if os.geteuid() != 0 or not all(shutil.which(t) for t in ("ip", "nft", "iperf3")):
        print("needs root, iproute2, nft and iperf3 (scripts/install-system-deps.sh)")
        return 1
    modes = ["direct", *(m for m in args.modes.split(",") if m in MODES and m != "direct")]
    if not shutil.which("iptables-restore") and "iptables" in modes:
        modes.remove("iptables")
    machine = _report.machine()
    tag = os.getpid() % 100000
    net = Net(f"10.196.{os.getpid() % 200 + 20}", f"kyb{tag}-bn", f"kyb{tag}-bs", f"kyb{tag}-bc")
    try:
        build(net)
        start_servers(net)
        if "userspace" in modes:
            start_userspace(net)
        samples = asyncio.run(run(net, modes, args.reps, args.seconds, args.rr_seconds))
    finally:
        teardown(net)
    load_end = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    section = (
        f"{HEADING}\n\n"
        f"{_report.now()}; {machine}; load average at end {load_end}.\n"
        f"`bench/bench_service_throughput.py --reps {args.reps} --seconds {args.seconds} "
        f"--rr-seconds {args.rr_seconds}`: one iperf3 TCP stream from a client pod to a "
        "server pod (network namespaces on a bridge, as tests/integration/test_proxy_root.py), "
        "direct to the pod IP and through a ClusterIP; rows interleaved per repetition, "
        "medians shown. rr/s: 64-byte request/response on one connection (Python client and "
        "echo server); conn/s: a new connection per request/response (client namespace with "
        "`net.ipv4.tcp_tw_reuse=1`, so earlier rows' TIME_WAITs do not slow connect()).\n\n"
        f"{_report.table(rows(samples, modes))}\n\n"
        "The direct row is bridged (L2, through br_netfilter); the ClusterIP rows are routed "
        "through the node namespace and DNATed, a different path through the same CPUs, so a "
        "kernel row above 100% is within the spread (min..max), not a gain. Sender, receiver "
        "and, on the userspace row, the proxy (a Python process relaying with splice(2), "
        "the bytes never entering Python) share the machine's CPUs.\n"
    )
    print(section)
    if args.write and not args.no_write:
        _report.write_section(HEADING, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
