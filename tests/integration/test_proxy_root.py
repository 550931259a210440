"""The kernel proxy backends on real packets (root only; skipped otherwise).

Everything happens in network namespaces the test creates and removes: a "node" namespace
with a bridge on a private /24 (10.198.x.0/24) and the proxy's rules, three backend
namespaces on that bridge running ``python3 -m http.server``, and a "pod" namespace on the
bridge as a second client. Requests go from the node itself (host traffic) and from the pod
(forwarded, which needs ``bridge-nf-call-iptables`` in the node namespace, as kube-proxy
needs br_netfilter). Nothing leaves the machine: no namespace has a route outside its /24.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from kybern.proxy import iptables, nftables, rules

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("nft"),
    reason="needs root, iproute2 and nft",
)

VIP = "10.43.0.10"
NODE_PORT = 30080


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(argv)}: {done.stderr}")
    return done


@dataclass
class Net:
    prefix: str  # "10.198.N"
    node: str
    pod: str
    backends: list[str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def namespaces(self) -> list[str]:
        return [self.node, self.pod, *self.backends]

    def ip(self, i: int) -> str:
        return f"{self.prefix}.{i}"

    def backend_ips(self) -> list[str]:
        return [self.ip(10 + i) for i in range(len(self.backends))]


def _attach(net: Net, ns: str, ip: str, index: int) -> None:
    host_end, ns_end = f"kv{index}", "eth0"
    sh(
        "ip",
        "-n",
        net.node,
        "link",
        "add",
        host_end,
        "type",
        "veth",
        "peer",
        "name",
        ns_end,
        "netns",
        ns,
    )
    sh("ip", "-n", net.node, "link", "set", host_end, "master", "br0", "up")
    # Hairpin: a pod reaching itself through its service comes back out of its own port.
    sh("ip", "netns", "exec", net.node, "bridge", "link", "set", "dev", host_end, "hairpin", "on")
    sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", ns_end)
    sh("ip", "-n", ns, "link", "set", ns_end, "up")
    sh("ip", "-n", ns, "link", "set", "lo", "up")
    sh("ip", "-n", ns, "route", "add", "10.43.0.0/16", "via", net.ip(1))


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Net]:
    tag = f"{os.getpid() % 100000}"
    prefix = f"10.198.{os.getpid() % 200 + 20}"
    n = Net(prefix, f"kyb{tag}-node", f"kyb{tag}-pod", [f"kyb{tag}-b{i}" for i in range(3)])
    try:
        for ns in n.namespaces:
            sh("ip", "netns", "add", ns)
        sh("ip", "-n", n.node, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", n.node, "addr", "add", f"{n.ip(1)}/24", "dev", "br0")
        sh("ip", "-n", n.node, "link", "set", "br0", "up")
        sh("ip", "-n", n.node, "link", "set", "lo", "up")
        # A node reaches VIPs through its default route; this node has none, so a route for
        # the service range stands in for it (the DNAT then picks the real destination).
        sh("ip", "-n", n.node, "route", "add", "10.43.0.0/16", "dev", "br0")
        sh("ip", "netns", "exec", n.node, "sysctl", "-qw", "net.ipv4.ip_forward=1")
        sh(
            "ip",
            "netns",
            "exec",
            n.node,
            "sysctl",
            "-qw",
            "net.bridge.bridge-nf-call-iptables=1",
            check=False,
        )
        for i, (ns, ip) in enumerate(zip(n.backends, n.backend_ips(), strict=True)):
            _attach(n, ns, ip, i)
            root = tmp_path / f"b{i}"
            root.mkdir()
            (root / "index.html").write_text(f"backend-{i}")
            n.procs.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        sys.executable,
                        "-m",
                        "http.server",
                        "8080",
                        "--bind",
                        ip,
                        "--directory",
                        str(root),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        _attach(n, n.pod, n.ip(20), 9)
        for ip in n.backend_ips():
            _wait_http(n.node, f"http://{ip}:8080/")
        yield n
    finally:
        for p in n.procs:
            p.kill()
            p.wait(timeout=10)
        for ns in n.namespaces:
            sh("ip", "netns", "del", ns, check=False)


CLIENT = """
import collections, sys, urllib.request
counts = collections.Counter()
for _ in range(int(sys.argv[2])):
    try:
        counts[urllib.request.urlopen(sys.argv[1], timeout=3).read().decode()] += 1
    except OSError as exc:
        counts["error"] += 1
print(dict(counts))
"""


def fetch(ns: str, url: str, n: int) -> collections.Counter[str]:
    out = sh("ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, url, str(n)).stdout
    return collections.Counter(eval(out))  # the dict our own script printed


def _wait_http(ns: str, url: str) -> None:
    deadline = time.monotonic() + 10
    while fetch(ns, url, 1)["error"]:
        assert time.monotonic() < deadline, f"{url} never answered"


def ruleset(
    net: Net, *, affinity: bool = False, present: bool = True, ready: bool = True
) -> rules.RuleSet:
    spec = {
        "type": "NodePort",
        "clusterIP": VIP,
        "clusterIPs": [VIP],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": NODE_PORT}],
    }
    if affinity:
        spec["sessionAffinity"] = "ClientIP"
    svc = {"metadata": {"namespace": "default", "name": "web"}, "spec": spec}
    eps = [
        {"addresses": [ip], "conditions": {"ready": ready}, "nodeName": "n1"}
        for ip in net.backend_ips()
    ]
    slice_ = {
        "metadata": {
            "namespace": "default",
            "name": "web-1",
            "labels": {"kubernetes.io/service-name": "web"},
        },
        "addressType": "IPv4",
        "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
        "endpoints": eps,
    }
    return rules.compute(
        [svc] if present else [],
        [slice_],
        node_name="n1",
        node_ips=[net.ip(1)],
        cluster_cidr=f"{net.prefix}.0/24",
    )


def check_balance(net: Net) -> None:
    expected = {f"backend-{i}" for i in range(3)}
    from_node = fetch(net.node, f"http://{VIP}/", 60)
    assert set(from_node) == expected, from_node
    assert min(from_node.values()) >= 5, from_node  # random choice: every backend well used
    from_pod = fetch(net.pod, f"http://{VIP}/", 30)
    assert set(from_pod) <= expected, from_pod
    assert len(from_pod) >= 2, from_pod
    node_port = fetch(net.node, f"http://{net.ip(1)}:{NODE_PORT}/", 30)
    assert set(node_port) <= expected, node_port
    assert len(node_port) >= 2, node_port
    # A backend calling its own service sometimes lands on itself (masqueraded hairpin).
    hairpin = fetch(net.backends[0], f"http://{VIP}/", 30)
    assert set(hairpin) <= expected, hairpin
    assert hairpin["backend-0"] > 0, hairpin


CONNECT = """
import socket, sys
try:
    socket.create_connection((sys.argv[1], 80), timeout=3).close()
    print("connected")
except OSError as exc:
    print(type(exc).__name__)
"""


def connect_error(ns: str) -> str:
    """How a TCP connect to the VIP from ``ns`` ends (a timeout shows as "TimeoutError")."""
    return sh("ip", "netns", "exec", ns, sys.executable, "-c", CONNECT, VIP).stdout.strip()


def check_affinity(net: Net) -> None:
    counts = fetch(net.node, f"http://{VIP}/", 20)
    assert len(counts) == 1, counts
    assert "error" not in counts


HOLDER = """
import socket, sys
s = socket.create_connection((sys.argv[1], 80), timeout=5)
print("connected", flush=True)
sys.stdin.readline()
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
print(s.makefile("rb").read().decode().rsplit("\\n", 1)[-1], flush=True)
"""


def hold_connection(net: Net) -> subprocess.Popen[str]:
    """A client in the node that connects to the VIP now and sends its request later."""
    holder = subprocess.Popen(
        ["ip", "netns", "exec", net.node, sys.executable, "-c", HOLDER, VIP],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "connected"
    return holder


def finish(holder: subprocess.Popen[str]) -> str:
    out, _ = holder.communicate("go\n", timeout=10)
    return out.strip()


@pytest.mark.parametrize("mode", ["nftables", "iptables"])
async def test_service_vip_balances_sticks_and_goes_away(net: Net, mode: str) -> None:
    if mode == "iptables" and not shutil.which("iptables-restore"):
        pytest.skip("no iptables-restore")
    make = nftables.NftablesBackend if mode == "nftables" else iptables.IptablesBackend
    backend = make(netns=net.node)
    assert await backend.sync(ruleset(net)) == "full"
    check_balance(net)

    # A restarted proxy knows nothing and syncs fully: established connections survive.
    holder = hold_connection(net)
    try:
        assert await make(netns=net.node).sync(ruleset(net)) == "full"
        assert finish(holder).startswith("backend-")
    finally:
        holder.kill()
        holder.wait()

    assert await backend.sync(ruleset(net, affinity=True)) == "partial"
    check_affinity(net)

    # No ready endpoint: a new connection is refused at once, from the node and from a pod.
    assert await backend.sync(ruleset(net, ready=False)) == "partial"
    for ns in (net.node, net.pod):
        assert connect_error(ns) == "ConnectionRefusedError"

    assert await backend.sync(ruleset(net, present=False)) == "partial"
    gone = fetch(net.node, f"http://{VIP}/", 2)
    assert gone == {"error": 2}, gone
    listing = sh("ip", "netns", "exec", net.node, "nft", "list", "ruleset").stdout
    assert VIP not in listing
    assert "KYBERN-SVC-" not in listing
    assert "sep-" not in listing

    await backend.cleanup()
    listing = sh("ip", "netns", "exec", net.node, "nft", "list", "ruleset").stdout
    assert "kybern" not in listing.lower()
