"""Pod networking with the real CNI plugins (root only): two namespaces as pods on a test bridge.

Everything stays on this machine: a bridge ``kybt<pid>`` with a free 10.199.x.0/24, namespaces
pinned in a private directory under /run, hostPort traffic on 127.0.0.1. Names carry the pytest
process id so that concurrent runs never share anything; the fixture removes it all afterwards
and first sweeps what killed runs (dead pids) left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from kybern.network import cleanup, cni, config, hostrules, iptables, netns, node

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="CNI needs root"),
    pytest.mark.skipif(
        not (config.PLUGIN_DIRS[0] / "bridge").exists(), reason="containernetworking-plugins"
    ),
    pytest.mark.skipif(shutil.which("nsenter") is None, reason="nsenter (util-linux)"),
    pytest.mark.timeout(60),
]

PID = os.getpid()
BRIDGE = f"kybt{PID}"
NETWORK = f"kybern-test-{PID}"
CLUSTER_CIDR = "10.199.0.0/16"
SERVER_PORT = 8080
BUSYBOX = shutil.which("busybox")


@dataclass
class Env:
    cfg: config.NetworkConfig
    network: cni.PodNetwork
    netns_dir: Path


def free_pod_cidr() -> str:
    """A 10.199.x.0/24 no route on this host uses yet (pid-based start, so runs differ)."""
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    for step in range(200):
        cidr = f"10.199.{(PID + step) % 200 + 20}.0/24"
        if cidr not in routes:
            return cidr
    raise AssertionError("no free 10.199.x.0/24 for the test bridge")


def alive(pid: int) -> bool:
    return pid > 1 and Path(f"/proc/{pid}").exists()


def stale_dirs() -> list[Path]:
    dirs = Path("/run").glob("kybern-test-*")
    return [d for d in dirs if not alive(int(d.name.split("-")[2]))]


def stale_network(name: str) -> bool:
    suffix = name.removeprefix("kybern-test").lstrip("-")
    return name.startswith("kybern-test") and not alive(int(suffix or 0))


async def sweep_stale() -> None:
    """What runs killed before their cleanup left: their pid is in every name."""
    for directory in await asyncio.to_thread(stale_dirs):
        for pinned in await asyncio.to_thread(list, directory.iterdir()):
            await netns.delete(pinned)
        await sh("umount", "-l", str(directory))
        await asyncio.to_thread(shutil.rmtree, directory, True)
    _, out = await sh("ip", "-o", "link", "show", "type", "bridge")
    for line in out.decode().splitlines():
        name = line.split(":")[1].strip()
        if name.startswith("kybt") and name[4:].isdigit() and not alive(int(name[4:])):
            await sh("ip", "link", "delete", name)
            await hostrules.remove(name)
    nat = await iptables.rules("nat")
    for rule in nat:
        match = re.search(r'dnat name: "([^"]*)"', " ".join(rule))
        if rule[:2] == ["-A", cleanup.HOSTPORT_DNAT] and match and stale_network(match[1]):
            await iptables.run("-t", "nat", "-D", *rule[1:], check=False)
            await iptables.delete_chain("nat", rule[-1])


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    await sweep_stale()
    cfg = config.NetworkConfig.from_pod_cidr(
        free_pod_cidr(), tmp_path / "data", bridge=BRIDGE, name=NETWORK, cluster_cidr=CLUSTER_CIDR
    )
    netns_dir = Path("/run") / f"kybern-test-{PID}-{tmp_path.name}"
    try:
        network = await node.prepare(cfg, conf_dir=tmp_path / "net.d", netns_dir=netns_dir)
        yield Env(cfg, network, netns_dir)
    finally:
        with contextlib.suppress(Exception):
            network = cni.PodNetwork.from_config(cfg)
            await cleanup.gc(network, cfg, [], netns_dir=netns_dir, all_namespaces=True)
        await cleanup.uninstall(cfg)
        await sh("umount", "-l", str(netns_dir))
        shutil.rmtree(netns_dir, ignore_errors=True)


async def add_pod(env: Env, pod: str, ports: list[cni.PortMapping]) -> tuple[Path, cni.Attachment]:
    path = await netns.create(f"{netns.PREFIX}{pod}", directory=env.netns_dir)
    attachment = await env.network.setup(
        netns=path, container_id=pod, namespace="default", name=pod, uid=f"uid-{pod}",
        port_mappings=ports,
    )  # fmt: skip
    return path, attachment


def in_netns(path: Path, *argv: str) -> list[str]:
    return ["nsenter", f"--net={path}", *argv]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER = """
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from pod b"
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
socketserver.TCPServer.allow_reuse_address = True
socketserver.TCPServer(("0.0.0.0", %d), H).serve_forever()
"""


async def http_get(host: str, port: int) -> bytes:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
    data = await reader.read()
    writer.close()
    return data


async def sh(*argv: str) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    stdout, _ = await proc.communicate()
    return proc.returncode or 0, stdout


async def wait_for(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + 10.0
    last: BaseException | None = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            if await check():
                return
        except OSError as exc:
            last = exc
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}: {last}")


def host_state(env: Env) -> dict[str, object]:
    links = json.loads(
        subprocess.run(
            ["ip", "-j", "link", "show", "master", BRIDGE], capture_output=True, text=True
        ).stdout
        or "[]"
    )
    nat = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return {
        "veths": [link["ifname"] for link in links],
        "netns": netns.names(env.netns_dir),
        "portmap": [line for line in nat.splitlines() if f'"{NETWORK}"' in line],
        "leases": cleanup.leases(env.cfg.ipam_dir, NETWORK),
        "cached": env.network.cached_ids(),
    }


async def test_two_pods_talk_and_hostport_reaches_one(env: Env) -> None:
    host_port = free_port()
    path_a, pod_a = await add_pod(env, "pod-a", [])
    path_b, pod_b = await add_pod(env, "pod-b", [cni.PortMapping(host_port, SERVER_PORT)])
    assert pod_a.ip != pod_b.ip
    assert pod_a.gateway == pod_b.gateway == str(env.cfg.gateway)
    assert pod_b.interface == "eth0"
    assert pod_b.host_interface.startswith("veth")
    server = await asyncio.create_subprocess_exec(
        *in_netns(path_b, sys.executable, "-c", SERVER % SERVER_PORT)
    )
    try:
        if BUSYBOX:
            ping = in_netns(path_a, BUSYBOX, "ping", "-c", "1", "-W", "2", pod_b.ip)
            assert (await sh(*ping))[0] == 0

        async def pod_to_pod() -> bool:
            fetch = FETCH % (pod_b.ip, SERVER_PORT)
            code, out = await sh(*in_netns(path_a, sys.executable, "-c", fetch))
            return code == 0 and b"hello from pod b" in out

        await wait_for(pod_to_pod, "pod a -> pod b by pod IP")
        reply = await http_get("127.0.0.1", host_port)
        assert b"hello from pod b" in reply  # the hostPort, through portmap
        await env.network.check(
            netns=path_b, container_id="pod-b", namespace="default", name="pod-b", uid="uid-pod-b"
        )
    finally:
        server.kill()
        await server.wait()
    for pod, path in (("pod-a", path_a), ("pod-b", path_b)):
        await env.network.teardown(netns=path, container_id=pod)
        await netns.delete(path)
    await env.network.teardown(netns=path_a, container_id="pod-a")  # idempotent
    assert host_state(env) == {"veths": [], "netns": [], "portmap": [], "leases": {}, "cached": []}


FETCH = """
import socket, sys
s = socket.create_connection(("%s", %d), timeout=2)
s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
sys.stdout.buffer.write(s.recv(4096))
"""


async def test_del_after_the_namespace_is_gone(env: Env) -> None:
    path, _ = await add_pod(env, "pod-c", [cni.PortMapping(free_port(), 80)])
    await netns.delete(path)
    await env.network.teardown(netns=path, container_id="pod-c")
    assert host_state(env) == {"veths": [], "netns": [], "portmap": [], "leases": {}, "cached": []}


async def test_gc_releases_what_dead_sandboxes_hold(env: Env) -> None:
    await add_pod(env, "pod-live", [])
    await add_pod(env, "pod-dead", [cni.PortMapping(free_port(), 80)])
    # The agent "crashed": no DEL, and the result cache is lost too.
    (env.cfg.results_dir / f"{NETWORK}-pod-dead-eth0").unlink()
    report = await cleanup.gc(env.network, env.cfg, ["pod-live"], netns_dir=env.netns_dir)
    assert "pod-dead" in report.deleted
    state = host_state(env)
    assert state["netns"] == ["kybern-pod-live"]
    assert state["portmap"] == []
    assert list(state["leases"].values()) == ["pod-live"]  # type: ignore[attr-defined]
    assert len(state["veths"]) == 1  # type: ignore[arg-type]


async def test_concurrent_pods_get_distinct_addresses_and_leave_nothing(env: Env) -> None:
    await cleanup.uninstall(env.cfg)  # the first ADDs race to create the bridge, too
    pods = [f"pod-{i}" for i in range(8)]
    added = await asyncio.gather(*(add_pod(env, pod, []) for pod in pods))
    ips = {attachment.ip for _, attachment in added}
    assert len(ips) == len(pods)
    assert all(ipaddress.ip_address(ip) in env.cfg.pod_cidr for ip in ips)
    await asyncio.gather(
        *(
            env.network.teardown(netns=path, container_id=pod)
            for pod, (path, _) in zip(pods, added, strict=True)
        )
    )
    await asyncio.gather(*(netns.delete(path) for path, _ in added))
    assert host_state(env) == {"veths": [], "netns": [], "portmap": [], "leases": {}, "cached": []}


async def test_netns_create_and_delete_are_idempotent(env: Env) -> None:
    path = await netns.create("kybern-ns", directory=env.netns_dir)
    assert await netns.create("kybern-ns", directory=env.netns_dir) == path
    assert netns.is_pinned(path)
    code, out = await sh(*in_netns(path, "ip", "-o", "link", "show", "lo"))
    assert code == 0
    assert b"LOWER_UP" in out  # loopback is up
    code, out = await sh(*in_netns(path, "ip", "-o", "link"))
    assert out.count(b"\n") == 1  # nothing but lo
    await netns.delete(path)
    await netns.delete(path)
    assert not path.exists()


async def test_host_rules_are_installed_once_and_first(env: Env) -> None:
    cfg = env.cfg
    for _ in range(2):
        await hostrules.ensure(bridge=BRIDGE, pod_cidr=cfg.pod_cidr, cluster_cidr=cfg.cluster_cidr)
    chain = hostrules.nat_chain(BRIDGE)
    _, out = await sh("iptables", "-t", "nat", "-S", "POSTROUTING")
    jumps = [line for line in out.decode().splitlines() if line.startswith("-A ")]
    ours = f'-A POSTROUTING -m comment --comment "kybern pod network" -j {chain}'
    assert jumps.count(ours) == 1
    # before CNI's own POSTROUTING rules (other kybern networks may sit above it)
    assert all(
        line.startswith('-A POSTROUTING -m comment --comment "kybern')
        for line in jumps[: jumps.index(ours)]
    )
    _, out = await sh("iptables", "-t", "nat", "-S", chain)
    rules = [line.split()[2:] for line in out.decode().splitlines() if line.startswith("-A ")]
    assert rules == hostrules.nat_rules(cfg.pod_cidr, cfg.cluster_cidr)
