"""Issue 7's acceptance with real containers: ``kybern server --runtime oci`` as root.

The server runs the kernel service proxy (nftables, else iptables) for its node and the cluster
DNS server on the node IP (at a free port here: port 53 may be another cluster's), behind the ``kube-system/kube-dns`` Service (10.43.0.10),
so pods resolve ``web`` through their resolv.conf (search ``<ns>.svc.cluster.local ...``).
Backends are busybox ``httpd`` serving their host name (the pod name); a busybox client pod
calls ``wget -qO- http://web`` in a loop and the test counts the answers per backend. From the
host: NodePort and LoadBalancer on the node IP; DNS answers checked with dnslib against the DNS
server directly. Everything stays on this machine (pod IPs on the node bridge, the node IP).

One cluster for the module; it uses the node bridge ``kybern0`` like tests/compat/
test_oci_e2e.py, so the two modules never run at the same time (pytest runs modules in turn).
The busybox image comes from the host's busybox-static (kybern.testing.images.import_busybox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dnslib
import pytest

from kybern.testing import images as test_images
from kybern.testing import server_process
from tests.support import cluster, e2e
from tests.support import kubectl as kubectl_

pytestmark = [
    *e2e.NEEDS_OCI,
    pytest.mark.skipif(
        shutil.which("nft") is None and shutil.which("iptables-restore") is None,
        reason="needs nft or iptables-restore for the kernel service proxy",
    ),
    pytest.mark.timeout(120),
]
Obj = dict[str, Any]
IMAGE = "busybox:latest"
DNS_IP = "10.43.0.10"
BACKENDS = 3


@dataclass
class Node:
    data: Path
    proc: server_process.ServerProcess
    kubectl: kubectl_.Kubectl
    ip: str
    dns_port: int  # the DNS server on the node IP; pods reach it at 10.43.0.10:53


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    from kybern.runtime.images import store

    data = tmp_path_factory.mktemp("kybern-oci-services")
    test_images.import_busybox(store.ImageStore(data / "images"))
    dns_port = server_process.free_port()  # not 53: another cluster on this host may hold it
    proc = cluster.start_server(
        data,
        "--runtime",
        "oci",
        "--kubelet-port",
        str(server_process.free_port()),
        "--dns-port",
        str(dns_port),
        api_only=False,
    )

    def cleanup() -> None:
        reap(data)
        remove_proxy_rules()

    with e2e.serving(proc, cleanup) as run:
        ip = cluster.wait_until(lambda: node_ip(run), timeout=20, what="the node Ready")
        yield Node(data, proc, run, ip, dns_port)
        run("delete", "deployments,pods", "--all", "--all-namespaces", "--wait=true", check=False)
        cluster.wait_until(
            lambda: not list((data / "agent").glob("runtime/oci/sandboxes/*")),
            timeout=20,
            what="sandboxes removed",
        )


@pytest.fixture
def ns(node: Node) -> Iterator[str]:
    with e2e.namespace(node.kubectl, "s", e2e.delete_workloads) as name:
        yield name


def node_ip(kubectl: kubectl_.Kubectl) -> str:
    """The Ready node's InternalIP, "" before."""
    found = kubectl("get", "nodes", "-o", "json", check=False)
    for item in json.loads(found.out or "{}").get("items") or []:
        status = item.get("status") or {}
        ready = any(
            c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or []
        )
        addresses = [
            a["address"] for a in status.get("addresses") or [] if a["type"] == "InternalIP"
        ]
        if ready and addresses:
            return str(addresses[0])
    return ""


def reap(data_dir: Path) -> None:
    """After a failure: SIGKILL the containers and shims the runtime state names, unmount
    and delete what their sandboxes hold, so the host stays clean."""
    for status in data_dir.glob("**/runtime/oci/containers/*/status"):
        with contextlib.suppress(OSError):
            fields = dict(
                line.split("=", 1) for line in status.read_text().splitlines() if "=" in line
            )
            for key, start_key in (("pid", "pid_start"), ("monitor_pid", "monitor_start")):
                pid = fields.get(key, "")
                if pid.isdigit() and start_time(int(pid)) == fields.get(start_key):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), signal.SIGKILL)
    for line in reversed(Path("/proc/mounts").read_text().splitlines()):
        if line.split()[1].startswith(str(data_dir)):
            subprocess.run(["umount", "-l", line.split()[1]], check=False, capture_output=True)
    for path in data_dir.glob("**/runtime/oci/sandboxes/*/sandbox.json"):
        with contextlib.suppress(ValueError, OSError):
            netns = json.loads(path.read_text()).get("netns")
            if netns:
                subprocess.run(
                    ["ip", "netns", "delete", Path(netns).name], check=False, capture_output=True
                )


def start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def remove_proxy_rules() -> None:
    """The proxy leaves its kernel rules on exit (a restart keeps connections): a test
    cluster removes them."""
    from kybern.proxy import backend, iptables, nftables

    for rules in (nftables.NftablesBackend(), iptables.IptablesBackend()):
        with contextlib.suppress(backend.ApplyError, OSError):
            asyncio.run(rules.cleanup())


# -- helpers ---------------------------------------------------------------------------------


def apply(kubectl: kubectl_.Kubectl, ns: str, *objects: Obj) -> None:
    document = {"apiVersion": "v1", "kind": "List", "items": list(objects)}
    kubectl("apply", "-n", ns, "-f", "-", stdin=json.dumps(document))


def get(kubectl: kubectl_.Kubectl, ns: str, what: str) -> Obj:
    return dict(json.loads(kubectl("get", "-n", ns, what, "-o", "json").out))


def sh(name: str, script: str, **extra: Any) -> Obj:
    return {
        "name": name,
        "image": IMAGE,
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", script],
        **extra,
    }


def backends(name: str = "web", replicas: int = BACKENDS) -> Obj:
    """busybox httpd on 8080 answering its host name (= the pod name)."""
    httpd = sh(
        "httpd",
        "mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www",
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [httpd], "terminationGracePeriodSeconds": 1},
            },
        },
    }


def service(name: str = "web", **spec: Any) -> Obj:
    ports = [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": "web"}, "ports": ports, **spec},
    }


def client_pod(name: str = "client") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "containers": [sh("c", "exec sleep 3600")],
            "terminationGracePeriodSeconds": 1,
        },
    }


def ready_pods(kubectl: kubectl_.Kubectl, ns: str, app: str = "web") -> list[Obj]:
    items = get(kubectl, ns, "pods")["items"]
    return [
        p
        for p in items
        if (p["metadata"].get("labels") or {}).get("app") == app
        and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in p["status"].get("conditions") or []
        )
    ]


def calls(kubectl: kubectl_.Kubectl, ns: str, pod: str, url: str, n: int) -> Counter[str]:
    """``wget -qO- url`` n times from ``pod``: the answers (backend names) counted."""
    # busybox-static's `wget -T` crashes (SIGSEGV): its `timeout` applet bounds each call
    script = f"for i in $(seq {n}); do timeout 5 wget -qO- {url} || echo FAILED; done"
    out = kubectl("exec", "-n", ns, pod, "--", "sh", "-c", script, check=False).out
    return Counter(line.strip() for line in out.splitlines() if line.strip())


@pytest.fixture
def web(node: Node, ns: str) -> set[str]:
    """Service web over 3 ready busybox httpd pods and a ready client pod: the pod names."""
    apply(node.kubectl, ns, service(), backends(), client_pod())
    pods = cluster.wait_until(
        lambda: len(ready_pods(node.kubectl, ns)) == BACKENDS and ready_pods(node.kubectl, ns),
        timeout=60,
        what="3 ready backends",
    )
    node.kubectl("wait", "-n", ns, "--for=condition=Ready", "pod/client", "--timeout=30s")
    return {p["metadata"]["name"] for p in pods}


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return str(reply.read().decode().strip())


def query(node: Node, name: str, qtype: str) -> dnslib.DNSRecord:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5)
        sock.sendto(dnslib.DNSRecord.question(name, qtype).pack(), (node.ip, node.dns_port))
        return dnslib.DNSRecord.parse(sock.recv(4096))


# -- the tests -------------------------------------------------------------------------------


def test_pods_get_cluster_dns_in_resolv_conf(node: Node, ns: str, web: set[str]) -> None:
    resolv = node.kubectl("exec", "-n", ns, "client", "--", "cat", "/etc/resolv.conf").out
    assert f"nameserver {DNS_IP}" in resolv.splitlines()
    assert f"search {ns}.svc.cluster.local svc.cluster.local cluster.local" in resolv
    assert "options ndots:5" in resolv


def test_wget_by_service_name_reaches_every_backend(node: Node, ns: str, web: set[str]) -> None:
    seen = calls(node.kubectl, ns, "client", "http://web", 30)
    assert set(seen) == web, seen  # nftables/iptables pick at random: all three in 30 calls


def test_session_affinity_client_ip_pins_one_backend(node: Node, ns: str, web: set[str]) -> None:
    node.kubectl("patch", "-n", ns, "service/web", "-p", '{"spec":{"sessionAffinity":"ClientIP"}}')

    def pinned() -> Counter[str]:
        seen = calls(node.kubectl, ns, "client", "http://web", 10)
        return seen if len(seen) == 1 and set(seen) <= web else Counter()

    cluster.wait_until(pinned, timeout=10, what="one backend for every call")


def test_node_port_and_load_balancer_answer_on_the_node_ip(
    node: Node, ns: str, web: set[str]
) -> None:
    node.kubectl("patch", "-n", ns, "service/web", "-p", '{"spec":{"type":"LoadBalancer"}}')

    def ingress() -> list[str]:
        status = get(node.kubectl, ns, "service/web").get("status") or {}
        return [e["ip"] for e in (status.get("loadBalancer") or {}).get("ingress") or []]

    assert cluster.wait_until(ingress, timeout=10, what="the LoadBalancer ingress") == [node.ip]
    node_port = get(node.kubectl, ns, "service/web")["spec"]["ports"][0]["nodePort"]

    def answers(url: str) -> set[str]:
        found = set()
        for _ in range(15):
            with contextlib.suppress(OSError):
                found.add(http_get(url))
        return found if found == web else set()

    cluster.wait_until(
        lambda: answers(f"http://{node.ip}:{node_port}/"), timeout=10, what="NodePort"
    )
    cluster.wait_until(lambda: answers(f"http://{node.ip}:80/"), timeout=10, what="LoadBalancer")


def test_a_backend_reaches_its_own_service(node: Node, ns: str, web: set[str]) -> None:
    """Hairpin: a backend calling its Service may land on itself, and that must work."""
    me = sorted(web)[0]
    seen = calls(node.kubectl, ns, me, "http://web", 30)
    assert "FAILED" not in seen, seen
    assert me in seen, seen
    assert set(seen) == web, seen


def test_cluster_dns_through_the_kube_dns_cluster_ip(node: Node, ns: str, web: set[str]) -> None:
    cluster_ip = get(node.kubectl, ns, "service/web")["spec"]["clusterIP"]
    out = node.kubectl(
        "exec", "-n", ns, "client", "--", "nslookup", f"web.{ns}.svc.cluster.local", DNS_IP
    ).out
    assert cluster_ip in out, out


def test_headless_srv_and_external_name_answers(node: Node, ns: str, web: set[str]) -> None:
    apply(
        node.kubectl,
        ns,
        service("web-headless", clusterIP="None"),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "docs"},
            "spec": {"type": "ExternalName", "externalName": "docs.example.com"},
        },
    )
    pod_ips = {p["status"]["podIP"] for p in ready_pods(node.kubectl, ns)}
    name = f"web-headless.{ns}.svc.cluster.local"

    def headless() -> set[str]:
        found = {str(r.rdata) for r in query(node, name, "A").rr if r.rtype == dnslib.QTYPE.A}
        return found if found == pod_ips else set()

    cluster.wait_until(headless, timeout=10, what="the headless service's pod IPs")
    srv = query(node, f"_http._tcp.web.{ns}.svc.cluster.local", "SRV")
    assert [(r.rdata.port, str(r.rdata.target)) for r in srv.rr] == [
        (80, f"web.{ns}.svc.cluster.local.")
    ]
    cname = query(node, f"docs.{ns}.svc.cluster.local", "CNAME")
    assert [str(r.rdata) for r in cname.rr if r.rtype == dnslib.QTYPE.CNAME] == [
        "docs.example.com."
    ]
