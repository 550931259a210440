"""Issue 7's process-runtime acceptance: Services that carry traffic without root or containers.

``kybern server --runtime process`` runs the userspace service proxy for its node (pods share
the host network, so the proxy listens on the node IP, 127.0.0.1 here, at each service port and
NodePort) and the cluster DNS server (on a free port, kube-dns's Endpoints point at it). The
backends are three one-replica Deployments of ``python3 -m http.server``, each on its own free
port and serving its own directory (``/id`` answers the backend's name), behind one Service
whose ``targetPort`` is the named port ``http``, resolved per pod. Every test works in its
own namespace; service ports are free ports so parallel clusters do not collide.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dnslib
import pytest

from kybern.testing import server_process
from tests.compat.processpods import reap
from tests.support import cluster, e2e
from tests.support import kubectl as kubectl_

pytestmark = pytest.mark.timeout(120)
Obj = dict[str, Any]
NODE_IP = "127.0.0.1"


@dataclass
class Node:
    proc: server_process.ServerProcess
    kubectl: kubectl_.Kubectl
    data: Path
    dns_port: int


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("kybern-services")
    dns_port = server_process.free_port()
    proc = cluster.start_server(
        data,
        "--runtime",
        "process",
        "--node-ip",
        NODE_IP,
        "--kubelet-port",
        str(server_process.free_port()),
        "--proxy-mode",
        "userspace",
        "--dns-port",
        str(dns_port),
        api_only=False,
    )
    with e2e.serving(proc, lambda: reap(data)) as run:
        cluster.wait_until(lambda: node_ready(run), timeout=20, what="the node Ready")
        yield Node(proc, run, data, dns_port)


@pytest.fixture
def ns(node: Node) -> Iterator[str]:
    with e2e.namespace(node.kubectl, "svc", e2e.delete_workloads) as name:
        yield name


def node_ready(kubectl: kubectl_.Kubectl) -> bool:
    out = kubectl("get", "nodes", "--no-headers", check=False).out
    return any(line.split()[1:2] == ["Ready"] for line in out.splitlines())


def apply(kubectl: kubectl_.Kubectl, ns: str, *objects: Obj) -> None:
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(document))


def get(kubectl: kubectl_.Kubectl, ns: str, what: str) -> Obj:
    return dict(json.loads(kubectl("get", "-n", ns, what, "-o", "json").out))


# -- the backends ----------------------------------------------------------------------------


def backend(name: str, root: Path, *, ready_path: str = "/id", **spec: Any) -> Obj:
    """A one-replica Deployment of http.server on a free port, serving ``root/name/id``."""
    port = server_process.free_port()
    (root / name).mkdir(parents=True)
    (root / name / "id").write_text(name)
    container = {
        "name": "web",
        "image": "python",
        "command": ["python3", "-m", "http.server", str(port), "--bind", NODE_IP],
        "args": ["--directory", str(root / name)],
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": ready_path, "port": "http"}, "periodSeconds": 1},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {"containers": [container], "terminationGracePeriodSeconds": 10, **spec},
            },
        },
    }


def service(name: str, port: int, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"tier": "web"},
            "ports": [{"name": "http", "port": port, "targetPort": "http"}],
            **spec,
        },
    }


def fetch(port: int, path: str = "/id") -> str:
    with urllib.request.urlopen(f"http://{NODE_IP}:{port}{path}", timeout=5) as reply:
        return str(reply.read().decode())


def counts(port: int, n: int) -> Counter[str]:
    return Counter(fetch(port) for _ in range(n))


def ready_endpoints(kubectl: kubectl_.Kubectl, ns: str, name: str) -> int:
    found = kubectl("get", "endpoints", "-n", ns, name, "-o", "json", check=False)
    subsets = (json.loads(found.out).get("subsets") or []) if found.code == 0 else []
    return sum(len(s.get("addresses") or []) for s in subsets)


def serving(port: int, names: set[str]) -> bool:
    """Whether the proxy at ``port`` answers with exactly ``names`` over a few rounds."""
    try:
        return set(counts(port, 3 * len(names))) == names
    except (OSError, urllib.error.URLError):
        return False


@pytest.fixture
def web(node: Node, ns: str, tmp_path: Path) -> tuple[str, int]:
    """Three ready backends web-0..2 behind Service ``web`` (type NodePort): (ns, port)."""
    port = server_process.free_port()
    apply(node.kubectl, ns, service("web", port, type="NodePort"))
    apply(node.kubectl, ns, *(backend(f"web-{i}", tmp_path) for i in range(3)))
    names = {f"web-{i}" for i in range(3)}
    cluster.wait_until(
        lambda: ready_endpoints(node.kubectl, ns, "web") == 3, timeout=45, what="3 endpoints"
    )
    cluster.wait_until(lambda: serving(port, names), timeout=10, what="the proxy serving web")
    return ns, port


# -- the tests -------------------------------------------------------------------------------


def test_cluster_ip_port_balances_over_every_backend(node: Node, web: tuple[str, int]) -> None:
    _, port = web
    seen = counts(port, 30)
    # round-robin: each of the three backends gets its exact third
    assert seen == Counter({"web-0": 10, "web-1": 10, "web-2": 10}), seen


def test_node_port_answers_on_the_node_ip(node: Node, web: tuple[str, int]) -> None:
    ns, _ = web
    node_port = get(node.kubectl, ns, "service/web")["spec"]["ports"][0]["nodePort"]
    assert 30000 <= node_port <= 32767
    cluster.wait_until(
        lambda: serving(node_port, {"web-0", "web-1", "web-2"}), timeout=5, what="the NodePort"
    )


def test_load_balancer_ingress_is_the_node_ip(node: Node, web: tuple[str, int]) -> None:
    ns, port = web
    node.kubectl("patch", "-n", ns, "service/web", "-p", '{"spec":{"type":"LoadBalancer"}}')

    def ingress() -> list[Obj]:
        status = get(node.kubectl, ns, "service/web").get("status") or {}
        return list((status.get("loadBalancer") or {}).get("ingress") or [])

    found = cluster.wait_until(ingress, timeout=10, what="the LoadBalancer ingress")
    assert [entry["ip"] for entry in found] == [NODE_IP]
    assert serving(port, {"web-0", "web-1", "web-2"})


def test_session_affinity_client_ip_pins_one_backend(node: Node, web: tuple[str, int]) -> None:
    ns, port = web
    patch = {"spec": {"sessionAffinity": "ClientIP"}}
    node.kubectl("patch", "-n", ns, "service/web", "-p", json.dumps(patch))
    affinity = get(node.kubectl, ns, "service/web")["spec"]["sessionAffinityConfig"]
    assert affinity == {"clientIP": {"timeoutSeconds": 10800}}  # the API default

    def pinned() -> bool:
        return len(counts(port, 12)) == 1

    cluster.wait_until(pinned, timeout=5, what="one backend for every request")
    node.kubectl("patch", "-n", ns, "service/web", "-p", '{"spec":{"sessionAffinity":"None"}}')
    cluster.wait_until(lambda: len(counts(port, 6)) == 3, timeout=5, what="round-robin again")


def test_scaling_down_leaves_rotation_within_a_second(node: Node, ns: str, tmp_path: Path) -> None:
    port = server_process.free_port()
    apply(node.kubectl, ns, service("web", port))
    # web-2 keeps serving for 3 s after its deletion (a preStop sleep), so a request that
    # still reached it would be answered: only the proxy can keep it out of rotation.
    lingering = {"lifecycle": {"preStop": {"exec": {"command": ["sleep", "3"]}}}}
    deployments = [backend(f"web-{i}", tmp_path) for i in range(3)]
    deployments[2]["spec"]["template"]["spec"]["containers"][0].update(lingering)
    apply(node.kubectl, ns, *deployments)
    names = {"web-0", "web-1", "web-2"}
    cluster.wait_until(lambda: serving(port, names), timeout=45, what="3 backends serving")
    started = time.monotonic()
    node.kubectl("scale", "-n", ns, "deployment/web-2", "--replicas=0")
    cluster.wait_until(
        lambda: serving(port, {"web-0", "web-1"}), timeout=5, interval=0.05, what="web-2 gone"
    )
    took = time.monotonic() - started
    print(f"web-2 left rotation {took:.2f}s after kubectl scale was started")
    assert took < 1.5, f"web-2 left rotation {took:.2f}s after the scale (kubectl included)"
    assert "web-2" not in counts(port, 20)


def test_a_pod_failing_readiness_gets_no_traffic(node: Node, ns: str, tmp_path: Path) -> None:
    port = server_process.free_port()
    apply(node.kubectl, ns, service("web", port))
    apply(
        node.kubectl,
        ns,
        backend("web-0", tmp_path),
        backend("web-1", tmp_path),
        backend("web-2", tmp_path, ready_path="/missing"),  # 404: never ready
    )
    cluster.wait_until(lambda: serving(port, {"web-0", "web-1"}), timeout=45, what="2 backends")
    pods = get(node.kubectl, ns, "pods")["items"]
    unready = [p for p in pods if p["metadata"]["labels"]["app"] == "web-2"]
    assert unready
    assert unready[0]["status"]["phase"] == "Running"
    assert not unready[0]["status"]["containerStatuses"][0]["ready"]
    assert "web-2" not in counts(port, 30)


def test_service_variables_in_a_new_pods_environment(node: Node, web: tuple[str, int]) -> None:
    ns, port = web
    cluster_ip = get(node.kubectl, ns, "service/web")["spec"]["clusterIP"]
    client = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client"},
        "spec": {
            "containers": [{"name": "c", "image": "python", "command": ["sleep", "3600"]}],
            "terminationGracePeriodSeconds": 1,
        },
    }
    apply(node.kubectl, ns, client)
    node.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/client", "--timeout=30s")
    env = dict(
        line.split("=", 1)
        for line in node.kubectl("exec", "-n", ns, "client", "--", "env").out.splitlines()
        if "=" in line
    )
    assert env["WEB_SERVICE_HOST"] == cluster_ip
    assert env["WEB_SERVICE_PORT"] == str(port)
    assert env["WEB_SERVICE_PORT_HTTP"] == str(port)
    assert env["WEB_PORT"] == f"tcp://{cluster_ip}:{port}"


def test_cluster_dns_answers_for_services(node: Node, web: tuple[str, int]) -> None:
    ns, port = web
    cluster_ip = get(node.kubectl, ns, "service/web")["spec"]["clusterIP"]
    kube_dns = get(node.kubectl, "kube-system", "service/kube-dns")["spec"]
    assert kube_dns["clusterIP"] == "10.43.0.10"
    assert {(p["name"], p["protocol"], p["port"]) for p in kube_dns["ports"]} == {
        ("dns", "UDP", 53),
        ("dns-tcp", "TCP", 53),
    }
    slices = get(node.kubectl, "kube-system", "endpointslices")["items"]
    ours = [s for s in slices if s["metadata"]["name"] == "kube-dns"]
    assert ours[0]["endpoints"][0]["addresses"] == [NODE_IP]
    assert {p["port"] for p in ours[0]["ports"]} == {node.dns_port}

    answer = query(f"web.{ns}.svc.cluster.local", "A", node.dns_port)
    assert [str(r.rdata) for r in answer.rr] == [cluster_ip]
    srv = query(f"_http._tcp.web.{ns}.svc.cluster.local", "SRV", node.dns_port)
    assert [(r.rdata.port, str(r.rdata.target)) for r in srv.rr] == [
        (port, f"web.{ns}.svc.cluster.local.")
    ]
    missing = query(f"nothing.{ns}.svc.cluster.local", "A", node.dns_port)
    assert missing.header.rcode == dnslib.RCODE.NXDOMAIN


def query(name: str, qtype: str, port: int) -> dnslib.DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(dnslib.DNSRecord.question(name, qtype).pack(), (NODE_IP, port))
        return dnslib.DNSRecord.parse(sock.recv(4096))


# -- `kybern agent` runs the proxy beside its kubelet ----------------------------------------


def test_a_joined_agent_proxies_its_nodes_services(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    data = tmp_path_factory.mktemp("kybern-services-agent")
    server = cluster.start_server(data / "server", "--disable-agent", api_only=False)
    log = (data / "agent.log").open("wb")
    agent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kybern.cli.main",
            "agent",
            "--kubeconfig",
            str(server.kubeconfig),
            "--data-dir",
            str(data / "agent"),
            "--runtime",
            "process",
            "--node-name",
            "agent-node",
            "--node-ip",
            NODE_IP,
            "--kubelet-port",
            str(server_process.free_port()),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    kubectl = kubectl_.Kubectl(server.kubeconfig)
    try:
        cluster.wait_until(lambda: node_ready(kubectl), timeout=20, what="the agent's node")
        port = server_process.free_port()
        apply(kubectl, "default", service("web", port), backend("web-0", tmp_path))
        cluster.wait_until(lambda: serving(port, {"web-0"}), timeout=45, what="the proxy")
        kubectl("delete", "deployments", "--all", "--wait=true", check=False)
        kubectl("delete", "pods", "--all", "--wait=true", "--timeout=30s", check=False)
    finally:
        agent.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            agent.wait(10)
        if agent.poll() is None:
            agent.kill()
            agent.wait(5)
        log.close()
        server.stop()
        reap(data)
    text = (data / "agent.log").read_text(errors="replace")
    assert "service proxy on node agent-node in userspace mode" in text
    assert "Traceback" not in text, text
