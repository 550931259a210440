"""Issue 6's acceptance, end to end: the real kubectl against ``kybern server --runtime oci``.

Real containers (runc/crun, overlay rootfs, cgroups, CNI bridge networking), so root only.
Images: the busybox image built from the host's busybox-static
(:func:`kybern.testing.images.import_busybox`) is put in the server's image store
(``<data-dir>/images``, the store ``kybern image --data-dir`` works on) before any pod exists;
pods use ``imagePullPolicy: IfNotPresent`` or ``Never``, except the one pulled from a local
``docker-registry`` on 127.0.0.1.

Two clusters, one per test class (class-scoped, so they never run at the same time: both
use the node bridge ``kybern0`` and the node IPAM's first CIDR):

- :class:`TestNode`: ``kybern server --runtime oci`` with its in-process agent;
- :class:`TestAgentRestart`: ``kybern server --disable-agent`` plus a ``kybern agent
  --runtime oci`` subprocess, SIGKILLed and restarted.

Teardown deletes the pods through the API, stops the servers, and then kills by pid whatever
shim or container process the runtime's state under the test's data directory still names.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kybern.testing import images as test_images
from kybern.testing import registry as test_registry
from kybern.testing import server_process
from kybern.testing.agentprocess import AgentProcess
from tests.support import cluster, e2e
from tests.support import kubectl as kubectl_
from tests.support.e2e import alive, apply, get, ready_nodes

pytestmark = [
    *e2e.NEEDS_OCI,
    pytest.mark.timeout(90),
]
Obj = dict[str, Any]
IMAGE = "busybox:latest"  # docker.io/library/busybox:latest, imported by import_busybox
CGROUP = Path("/sys/fs/cgroup")


# -- the clusters --------------------------------------------------------------------------


@dataclass
class Node:
    data: Path
    proc: server_process.ServerProcess
    kubectl: kubectl_.Kubectl
    before: Leftovers


@dataclass(frozen=True)
class Leftovers:
    """What pods leave on the host, to compare before and after."""

    netns: frozenset[str]
    veths: frozenset[str]

    @classmethod
    def now(cls) -> Leftovers:
        netns_dir = Path("/run/netns")
        names = {p.name for p in netns_dir.iterdir()} if netns_dir.exists() else set()
        return cls(
            netns=frozenset(n for n in names if n.startswith("kybern-")),
            veths=frozenset(bridge_ports()),
        )


def bridge_ports(bridge: str = "kybern0") -> list[str]:
    out = subprocess.run(
        ["ip", "-o", "link", "show", "master", bridge], capture_output=True, text=True, check=False
    ).stdout
    return [line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line]


def kybern(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kybern.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def import_busybox(images_root: Path) -> None:
    from kybern.runtime.images import store

    test_images.import_busybox(store.ImageStore(images_root))


@pytest.fixture(scope="class")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("kybern-oci")
    import_busybox(data / "images")
    before = Leftovers.now()
    proc = cluster.start_server(
        data,
        "--runtime",
        "oci",
        "--kubelet-port",
        str(server_process.free_port()),
        "--disable-dns",  # it binds the node IP's port 53: one per host, and not under test
        api_only=False,
    )
    with e2e.serving(proc, lambda: reap(data)) as run:
        cluster.wait_until(lambda: ready_nodes(run), timeout=20, what="the node Ready")
        yield Node(data, proc, run, before)
        delete_everything(run)
        wait_sandboxes_gone(data / "agent")


@pytest.fixture
def ns(node: Node) -> Iterator[str]:
    with e2e.namespace(node.kubectl, "o", delete_everything) as name:
        yield name


def delete_everything(kubectl: kubectl_.Kubectl, namespace: str = "") -> None:
    where = ["-n", namespace] if namespace else ["--all-namespaces"]
    kubectl("delete", "deployments", "--all", *where, "--wait=true", check=False)
    kubectl("delete", "pods", "--all", *where, "--wait=true", "--timeout=30s", check=False)


def reap(data_dir: Path) -> None:
    """After a failed test: SIGKILL every container and shim the runtime's state under
    data_dir still names, then release what their sandboxes hold (mounts, network
    namespaces, pod cgroups), so a failure never leaves the host dirty."""
    for status in data_dir.glob("**/runtime/oci/containers/*/status"):
        fields = status_fields(status)
        for key, start_key in (("pid", "pid_start"), ("monitor_pid", "monitor_start")):
            pid, started = fields.get(key, ""), fields.get(start_key, "")
            if pid.isdigit() and start_time(int(pid)) == started:  # never a reused pid
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
    for line in reversed(Path("/proc/mounts").read_text().splitlines()):
        target = line.split()[1]
        if target.startswith(str(data_dir)):
            subprocess.run(["umount", "-l", target], check=False, capture_output=True)
    for path in data_dir.glob("**/runtime/oci/sandboxes/*/sandbox.json"):
        with contextlib.suppress(ValueError, OSError):
            record = json.loads(path.read_text())
            if record.get("netns"):
                name = Path(record["netns"]).name
                subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
            parent = str(record.get("cgroup_parent") or "").strip("/")
            if "/pod" not in f"/{parent}":  # only ever a pod's own cgroup
                continue
            for directory in [*CGROUP.glob(f"*/{parent}"), *CGROUP.glob(parent)]:
                for sub, _, _ in os.walk(directory, topdown=False):
                    with contextlib.suppress(OSError):
                        os.rmdir(sub)


def start_time(pid: int) -> str:
    """The process's start time in clock ticks (/proc/<pid>/stat field 22), "" if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def status_fields(path: Path) -> dict[str, str]:
    """A shim's ``status`` file (``key=value`` lines)."""
    with contextlib.suppress(OSError):
        text = path.read_text()
        return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {}


def wait_sandboxes_gone(agent_dir: Path) -> None:
    """The agent removes a deleted pod's sandbox just after the API object goes: let it
    finish before the agent is stopped."""
    cluster.wait_until(
        lambda: not list(agent_dir.glob("runtime/oci/sandboxes/*")),
        timeout=15,
        interval=0.1,
        what="sandboxes removed",
    )


# -- small helpers -------------------------------------------------------------------------


def pod(name: str, *containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"test": name}},
        "spec": {"containers": list(containers), "terminationGracePeriodSeconds": 2, **spec},
    }


def sh(name: str, script: str, image: str = IMAGE, **extra: Any) -> Obj:
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", script],
        **extra,
    }


def httpd(name: str = "web", port: int = 8080, **extra: Any) -> Obj:
    """busybox httpd serving /var/www (an index.html naming the pod, so GET / is a 200)."""
    return sh(
        name,
        f"hostname > /var/www/index.html && exec httpd -f -p {port} -h /var/www",
        readinessProbe={"httpGet": {"path": "/", "port": port}, "periodSeconds": 1},
        **extra,
    )


def wait_ready(kubectl: kubectl_.Kubectl, ns: str, *pods: str, timeout: int = 30) -> None:
    names = [f"pod/{name}" for name in pods]
    kubectl("wait", "-n", ns, "--for=condition=Ready", *names, f"--timeout={timeout}s")


def status_of(kubectl: kubectl_.Kubectl, ns: str, name: str) -> Obj:
    statuses = get(kubectl, ns, f"pod/{name}").get("status", {}).get("containerStatuses") or []
    return dict(statuses[0]) if statuses else {}


def waiting_reason(kubectl: kubectl_.Kubectl, ns: str, name: str) -> str:
    state = status_of(kubectl, ns, name).get("state") or {}
    return str((state.get("waiting") or {}).get("reason", ""))


def events(kubectl: kubectl_.Kubectl, ns: str, name: str) -> list[tuple[str, str]]:
    out = get(kubectl, ns, "events")
    return [
        (str(e.get("reason")), str(e.get("message")))
        for e in out.get("items", [])
        if (e.get("involvedObject") or {}).get("name") == name
    ]


def exec_(kubectl: kubectl_.Kubectl, ns: str, name: str, *command: str, container: str = "") -> str:
    where = ["-c", container] if container else []
    return kubectl("exec", "-n", ns, name, *where, "--", *command).out


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as reply:
        return str(reply.read().decode())


def cpu_usage_ns(pod_uid: str) -> int:
    """The pod cgroup's CPU time (cgroup v1 cpuacct.usage, or v2 cpu.stat usage_usec)."""
    for base in (CGROUP / "cpuacct", CGROUP / "cpu,cpuacct"):
        for found in base.glob(f"**/pod{pod_uid}/cpuacct.usage"):
            return int(found.read_text())
    for found in CGROUP.glob(f"**/pod{pod_uid}/cpu.stat"):
        for line in found.read_text().splitlines():
            if line.startswith("usage_usec "):
                return int(line.split()[1]) * 1000
    raise AssertionError(f"no cgroup for pod {pod_uid}")


def pod_cgroups(uid: str) -> list[Path]:
    found: list[Path] = []
    for top in ("kubepods", "kybern"):
        found += CGROUP.glob(f"*/{top}/**/pod{uid}")
        found += CGROUP.glob(f"{top}/**/pod{uid}")
    return found


# -- one node: kybern server --runtime oci --------------------------------------------------


class TestNode:
    def test_deployment_available_pod_ips_pid1_hostname(self, node: Node, ns: str) -> None:
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [httpd()], "terminationGracePeriodSeconds": 2},
                },
            },
        }
        apply(node.kubectl, ns, deployment)
        node.kubectl(
            "wait", "-n", ns, "--for=condition=Available", "deployment/web", "--timeout=40s"
        )
        assert get(node.kubectl, ns, "deployment/web")["status"]["availableReplicas"] == 3
        pods = get(node.kubectl, ns, "pods")["items"]
        ips = {p["metadata"]["name"]: p["status"]["podIP"] for p in pods}
        assert len(set(ips.values())) == 3
        assert all(ip.startswith("10.42.") for ip in ips.values()), ips
        (a, _), (b, ip_b) = sorted(ips.items())[:2]
        # a reaches b by pod IP over the bridge; b's page names b (its hostname)
        assert exec_(node.kubectl, ns, a, "wget", "-qO-", f"http://{ip_b}:8080/").strip() == b
        # PID 1 is the container's own init: tini (bind-mounted at /.kybern/tini), which
        # forwards signals to the app, its child, and reaps zombies
        assert exec_(node.kubectl, ns, a, "cat", "/proc/1/cmdline").startswith("/.kybern/tini\0")
        assert "httpd -f -p 8080" in exec_(node.kubectl, ns, a, "ps")
        assert exec_(node.kubectl, ns, a, "hostname").strip() == a

    def test_memory_hog_is_oom_killed_and_restarted_with_backoff(self, node: Node, ns: str) -> None:
        # tail of a stream without newlines holds it all in memory
        hog = sh(
            "hog",
            "head -c 200m /dev/zero | tail > /dev/null",
            resources={"limits": {"memory": "32Mi"}},
        )
        apply(node.kubectl, ns, pod("hog", hog))

        def restarted_after_oom() -> Obj | None:
            found = status_of(node.kubectl, ns, "hog")
            terminated = (found.get("lastState") or {}).get("terminated") or {}
            if found.get("restartCount", 0) >= 1 and terminated.get("reason") == "OOMKilled":
                return found
            return None

        cluster.wait_until(restarted_after_oom, timeout=30, interval=0.2, what="OOMKilled")
        cluster.wait_until(
            lambda: waiting_reason(node.kubectl, ns, "hog") == "CrashLoopBackOff",
            timeout=20,
            interval=0.2,
            what="CrashLoopBackOff",
        )
        backoff = f"Back-off restarting failed container hog in pod hog_{ns}("
        seen = events(node.kubectl, ns, "hog")
        assert any(r == "BackOff" and m.startswith(backoff) for r, m in seen), seen

    def test_cpu_limit_caps_usage(self, node: Node, ns: str) -> None:
        spin = sh("spin", "while :; do :; done", resources={"limits": {"cpu": "200m"}})
        apply(node.kubectl, ns, pod("spin", spin))
        wait_ready(node.kubectl, ns, "spin")
        uid = get(node.kubectl, ns, "pod/spin")["metadata"]["uid"]
        first, started = cpu_usage_ns(uid), time.monotonic()
        time.sleep(2.0)  # the measurement window itself, not a wait for a condition
        used = (cpu_usage_ns(uid) - first) / 1e9 / (time.monotonic() - started)
        assert 0.1 <= used <= 0.3, f"CPU use {used:.2f} of a core with a 200m limit"

    def test_host_port_reachable_from_the_host(self, node: Node, ns: str) -> None:
        port = server_process.free_port()
        web = httpd(ports=[{"containerPort": 8080, "hostPort": port}])
        apply(node.kubectl, ns, pod("hp", web))
        wait_ready(node.kubectl, ns, "hp")
        node_ip = get(node.kubectl, ns, "pod/hp")["status"]["hostIP"]
        assert http_get(f"http://{node_ip}:{port}/").strip() == "hp"
        assert http_get(f"http://127.0.0.1:{port}/").strip() == "hp"

    def test_host_network_pod_skips_cni(self, node: Node, ns: str) -> None:
        port = server_process.free_port()
        web = httpd(port=port)
        apply(node.kubectl, ns, pod("hostnet", web, hostNetwork=True))
        wait_ready(node.kubectl, ns, "hostnet")
        status = get(node.kubectl, ns, "pod/hostnet")["status"]
        assert status["podIP"] == status["hostIP"]
        assert http_get(f"http://127.0.0.1:{port}/").strip() == os.uname().nodename

    def test_two_containers_share_localhost_and_empty_dir(self, node: Node, ns: str) -> None:
        mount = [{"name": "shared", "mountPath": "/shared"}]
        server = sh("server", "exec httpd -f -p 8080 -h /shared", volumeMounts=mount)
        writer = sh(
            "writer", "echo from-writer > /shared/index.html; exec sleep 3600", volumeMounts=mount
        )
        apply(
            node.kubectl,
            ns,
            pod("duo", server, writer, volumes=[{"name": "shared", "emptyDir": {}}]),
        )
        wait_ready(node.kubectl, ns, "duo")
        # the writer's file, served by the other container, over the pod's localhost
        got = exec_(
            node.kubectl, ns, "duo", "wget", "-qO-", "http://127.0.0.1:8080/", container="writer"
        )
        assert got.strip() == "from-writer"
        assert (
            exec_(node.kubectl, ns, "duo", "cat", "/shared/index.html", container="server").strip()
            == "from-writer"
        )

    @pytest.mark.skipif(not test_registry.available(), reason="needs Debian docker-registry")
    def test_pull_from_local_registry(self, node: Node, ns: str, tmp_path: Path) -> None:
        store = ["--data-dir", str(node.data)]
        with test_registry.running(tmp_path) as host:
            image = f"{host}/busybox:test"
            kybern("image", "tag", IMAGE, image, *store)
            kybern("image", "push", "-q", image, *store)
            kybern("image", "rm", image, *store)
            web = httpd(image=image, imagePullPolicy="Always")
            apply(node.kubectl, ns, pod("pulled", web))
            wait_ready(node.kubectl, ns, "pulled")
        seen = events(node.kubectl, ns, "pulled")
        assert ("Pulling", f'Pulling image "{image}"') in seen
        assert any(
            r == "Pulled" and m.startswith(f'Successfully pulled image "{image}" in ')
            for r, m in seen
        ), seen

    def test_save_rm_load_run(self, node: Node, ns: str) -> None:
        store = ["--data-dir", str(node.data)]
        archive = node.data / "saved.tar"
        kybern("image", "tag", IMAGE, "saved:v1", *store)
        kybern("image", "save", "-o", str(archive), "saved:v1", *store)
        kybern("image", "rm", "saved:v1", *store)
        assert "saved" not in kybern("image", "ls", *store).stdout
        kybern("image", "load", "-i", str(archive), *store)
        assert "saved" in kybern("image", "ls", *store).stdout
        web = httpd(image="saved:v1", imagePullPolicy="Never")
        apply(node.kubectl, ns, pod("loaded", web))
        wait_ready(node.kubectl, ns, "loaded")

    def test_deleting_pods_leaves_nothing_behind(self, node: Node, ns: str) -> None:
        mount = [{"name": "scratch", "mountPath": "/scratch"}]
        port = server_process.free_port()
        web = httpd(ports=[{"containerPort": 8080, "hostPort": port}], volumeMounts=mount)
        apply(
            node.kubectl,
            ns,
            pod("gone", web, volumes=[{"name": "scratch", "emptyDir": {}}]),
            pod("gone2", httpd()),
        )
        wait_ready(node.kubectl, ns, "gone", "gone2")
        uids = [get(node.kubectl, ns, f"pod/{n}")["metadata"]["uid"] for n in ("gone", "gone2")]
        assert all(pod_cgroups(uid) for uid in uids)
        delete_everything(node.kubectl)  # every pod of the class's tests
        # the API object goes first; the agent removes the sandbox right after it sees that
        cluster.wait_until(
            lambda: leftovers(node, uids) == {}, timeout=15, interval=0.1, what="clean host"
        )


def leftovers(node: Node, uids: list[str]) -> dict[str, Any]:
    """What deleted pods still hold on the host: mounts under the data dir, pod cgroups,
    network namespaces and bridge ports (veths) that were not there before, sandbox state."""
    now = Leftovers.now()
    found = {
        "mounts": [
            line for line in Path("/proc/mounts").read_text().splitlines() if str(node.data) in line
        ],
        "cgroups": [p for uid in uids for p in pod_cgroups(uid)],
        "netns": sorted(now.netns - node.before.netns),
        "veths": sorted(now.veths - node.before.veths),
        "sandboxes": list(node.data.glob("agent/runtime/oci/sandboxes/*")),
    }
    return {key: value for key, value in found.items() if value}


# -- a separate agent, SIGKILLed and restarted ----------------------------------------------


@dataclass
class Split:
    data: Path
    server: server_process.ServerProcess
    kubectl: kubectl_.Kubectl
    agent: AgentProcess

    @property
    def agent_dir(self) -> Path:
        return self.data / "agent"


@pytest.fixture(scope="class")
def split(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    data = tmp_path_factory.mktemp("kybern-oci-split")
    server = cluster.start_server(data / "server", "--disable-agent", api_only=False)
    import_busybox(data / "agent" / "images")  # `kybern agent --data-dir D` uses D/images
    args = [
        sys.executable, "-m", "kybern.cli.main", "agent",
        "--kubeconfig", str(server.kubeconfig),
        "--data-dir", str(data / "agent"),
        "--runtime", "oci",
        "--node-name", "oci-node",
        "--kubelet-port", str(server_process.free_port()),
    ]  # fmt: skip
    agent = AgentProcess(args, data / "agent.log")
    split = Split(data, server, kubectl_.Kubectl(server.kubeconfig), agent)
    split.agent.start()
    try:
        cluster.wait_until(
            lambda: ready_nodes(split.kubectl) == ["oci-node"], timeout=20, what="agent Ready"
        )
        yield split
        delete_everything(split.kubectl)
        wait_sandboxes_gone(split.agent_dir)
    finally:
        split.agent.stop()
        server.stop()
        reap(data)
    assert "Traceback" not in split.agent.log(), split.agent.log()


def container_pids(agent_dir: Path) -> dict[str, int]:
    """container id -> host pid, from the shims' status files."""
    out = {}
    for status in agent_dir.glob("runtime/oci/containers/*/status"):
        pid = status_fields(status).get("pid", "")
        if pid.isdigit():
            out[status.parent.name] = int(pid)
    return out


class TestAgentRestart:
    def test_sigkilled_agent_adopts_every_container(self, split: Split) -> None:
        ns = "adopt"
        split.kubectl("create", "namespace", ns)
        server = sh("server", "exec httpd -f -p 8080 -h /var/www")
        sidecar = sh("sidecar", "exec sleep 3600")
        apply(split.kubectl, ns, pod("one", httpd()), pod("two", server, sidecar))
        wait_ready(split.kubectl, ns, "one", "two")

        def snapshot() -> dict[str, tuple[str, int]]:
            out = {}
            for item in get(split.kubectl, ns, "pods")["items"]:
                for c in item["status"]["containerStatuses"]:
                    key = f"{item['metadata']['name']}/{c['name']}"
                    out[key] = (c["containerID"], c["restartCount"])
            return out

        before, pids = snapshot(), container_pids(split.agent_dir)
        assert len(before) == 3
        assert len(pids) == 3
        split.agent.kill()
        assert all(alive(pid) for pid in pids.values())  # the containers outlive the agent
        split.agent.start()
        # the restarted agent heartbeats again and reports the same containers
        cluster.wait_until(
            lambda: split.agent.log().count("kubelet ready") >= 2,
            timeout=20,
            what="the agent back",
        )
        wait_ready(split.kubectl, ns, "one", "two")
        assert snapshot() == before
        assert container_pids(split.agent_dir) == pids
        assert all(alive(pid) for pid in pids.values())
        ips = [p["status"]["podIP"] for p in get(split.kubectl, ns, "pods")["items"]]
        ip_one = get(split.kubectl, ns, "pod/one")["status"]["podIP"]
        assert ip_one in ips
        got = exec_(
            split.kubectl, ns, "two", "wget", "-qO-", f"http://{ip_one}:8080/", container="sidecar"
        )
        assert got.strip() == "one"
