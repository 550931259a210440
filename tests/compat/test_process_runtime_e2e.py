"""Issue 5's acceptance, end to end: the real kubectl against ``kybern server --runtime process``
with its in-process agent (the agent killed and the API server stopped are in
test_process_agent_outages.py).

Pods are host processes (the process runtime): they share the host network, so every server
a test starts listens on its own free loopback port, and the node is given ``--node-ip
127.0.0.1`` so pod IPs, probes and port-forward stay on loopback. The kubelet's HTTPS port is a
free port too (10250 may be taken by another run on the machine). One server for the module,
with a static pod directory, no service proxy and no cluster DNS (not under test, and they
hold fixed host ports); every test works in its own namespace.
"""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kybern.testing import server_process
from tests.compat.processpods import (
    NO_SERVICES,
    PY,
    Obj,
    container,
    delete_everything,
    http_get,
    pod,
    read_some,
    reap,
    sh,
    status_of,
    wait_ready,
    waitpid_for,
    web_server,
)
from tests.support import cluster, e2e
from tests.support import kubectl as kubectl_
from tests.support.e2e import alive, apply, get, ready_nodes

pytestmark = pytest.mark.timeout(90)


# -- the clusters --------------------------------------------------------------------------


@dataclass
class Node:
    proc: server_process.ServerProcess
    kubectl: kubectl_.Kubectl
    manifests: Path
    scratch: Path  # host files the pods write (process pods see the host file system)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    data = tmp_path_factory.mktemp("kybern-process")
    manifests, scratch = data / "manifests", data / "scratch"
    manifests.mkdir()
    scratch.mkdir()
    # the static pod is there from the start: the kubelet reads the directory when it starts,
    # later changes on its 20 s poll (kubelet's fileCheckFrequency)
    (manifests / "static.json").write_text(json.dumps(static_pod(scratch / "static-pid")))
    proc = cluster.start_server(
        data,
        "--runtime",
        "process",
        "--node-ip",
        "127.0.0.1",
        "--kubelet-port",
        str(server_process.free_port()),
        "--pod-manifest-path",
        str(manifests),
        *NO_SERVICES,
        api_only=False,
    )
    with e2e.serving(proc, lambda: reap(data)) as run:
        cluster.wait_until(lambda: ready_nodes(run), timeout=20, what="the node Ready")
        yield Node(proc, run, manifests, scratch)
        for item in manifests.iterdir():  # static pods stop when their file goes
            item.unlink()
        delete_everything(run)


@pytest.fixture
def ns(node: Node) -> Iterator[str]:
    with e2e.namespace(node.kubectl, "p", delete_everything) as name:
        yield name


# -- workloads -----------------------------------------------------------------------------


def test_deployments_of_http_servers_become_available(node: Node, ns: str) -> None:
    # Process pods share the host network, so the replicas of one Deployment would all bind
    # the same port: three one-replica Deployments, each on its own port, are the three
    # replicas (a Deployment's replicas differ in nothing a probe could use to find its own
    # port). Each has httpGet readiness (named port) and liveness (numbered port) probes.
    ports = [server_process.free_port() for _ in range(3)]
    deployments = [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": f"web-{i}"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": f"web-{i}"}},
                "template": {
                    "metadata": {"labels": {"app": f"web-{i}", "tier": "web"}},
                    "spec": {"containers": [web_server(port)], "terminationGracePeriodSeconds": 5},
                },
            },
        }
        for i, port in enumerate(ports)
    ]
    apply(node.kubectl, ns, *deployments)
    for i in range(3):
        node.kubectl("rollout", "status", "-n", ns, f"deployment/web-{i}", "--timeout=45s")
    node.kubectl("wait", "-n", ns, "--for=condition=Available", "deployment", "--all")
    listed = get(node.kubectl, ns, "pods")["items"]
    assert len(listed) == 3
    for item in listed:
        assert item["status"]["phase"] == "Running"
        assert item["status"]["podIP"] == "127.0.0.1"  # host network: the node's IP
        assert item["status"]["containerStatuses"][0]["ready"] is True
    for port in ports:
        assert http_get(f"http://127.0.0.1:{port}/")[0] == 200
    # readiness drives the endpoints: a Service over the three, by the named port
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web"},
        "spec": {"selector": {"tier": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    apply(node.kubectl, ns, service)

    def ready_ports() -> set[int]:
        found = node.kubectl("get", "endpoints", "-n", ns, "web", "-o", "json", check=False)
        subsets = json.loads(found.out).get("subsets") or [] if found.code == 0 else []
        return {
            port["port"]
            for subset in subsets
            if subset.get("addresses")
            for port in subset["ports"]
        }

    cluster.wait_until(lambda: ready_ports() == set(ports), timeout=15, what="3 ready endpoints")


@pytest.fixture
def web(node: Node, ns: str) -> tuple[str, int]:
    """One running http.server pod in the test's namespace: (pod name, port)."""
    port = server_process.free_port()
    apply(node.kubectl, ns, pod("web", web_server(port)))
    wait_ready(node.kubectl, ns, "web")
    return "web", port


def test_logs_follow(node: Node, ns: str) -> None:
    script = "import sys, time\nfor i in range(10000):\n    print(f'line {i}', flush=True)\n    time.sleep(0.05)\n"
    apply(node.kubectl, ns, pod("ticker", container("ticker", PY, "-c", script)))
    wait_ready(node.kubectl, ns, "ticker")
    env = {**os.environ, "KUBECONFIG": str(node.proc.kubeconfig)}
    argv = ["kubectl", "logs", "-f", "-n", ns, "ticker"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, env=env, text=True) as follower:
        try:
            assert follower.stdout is not None
            lines = [follower.stdout.readline().strip() for _ in range(30)]  # 30 lines = 1.5 s
        finally:
            follower.kill()
    numbers = [int(line.split()[1]) for line in lines]
    assert numbers == list(range(numbers[0], numbers[0] + 30)), lines  # in order, no gap
    assert numbers[-1] >= 29  # it followed: these lines were written after the call started
    tail = node.kubectl("logs", "-n", ns, "ticker", "--tail=2").out.splitlines()
    assert len(tail) == 2
    assert all(line.startswith("line ") for line in tail)
    stamped = node.kubectl("logs", "-n", ns, "ticker", "--tail=1", "--timestamps").out
    stamp, text = stamped.split(" ", 1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z", stamp), stamped
    assert text.startswith("line ")


def test_exec_streams_and_exit_codes(node: Node, ns: str, web: tuple[str, int]) -> None:
    name, _ = web
    done = node.kubectl(
        "exec", "-n", ns, name, "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 3",
        check=False,
    )  # fmt: skip
    assert done.code == 3
    assert done.out == "to-out\n"
    assert "to-err\n" in done.err
    assert "command terminated with exit code 3" in done.err
    assert node.kubectl("exec", "-n", ns, name, "--", "true").code == 0
    piped = node.kubectl("exec", "-i", "-n", ns, name, "--", "sh", "-c", "tr a-z A-Z", stdin="hi\n")
    assert piped.out == "HI\n"
    missing = node.kubectl("exec", "-n", ns, name, "--", "no-such-command-here", check=False)
    assert missing.code != 0


def test_exec_tty(node: Node, ns: str, web: tuple[str, int]) -> None:
    """`kubectl exec -it` needs a terminal on its side: run it under a pseudo-terminal."""
    name, _ = web
    env = {**os.environ, "KUBECONFIG": str(node.proc.kubeconfig)}
    script = "tty >/dev/null && echo IS-A-TTY; read line; echo got-$line"
    pid, fd = pty.fork()
    if pid == 0:  # the child: become kubectl
        os.execvpe(
            "kubectl", ["kubectl", "exec", "-it", "-n", ns, name, "--", "sh", "-c", script], env
        )
    output = b""
    try:
        deadline = time.monotonic() + 20
        while b"IS-A-TTY" not in output and time.monotonic() < deadline:
            output += read_some(fd)
        os.write(fd, b"abc\r")
        while b"got-abc" not in output and time.monotonic() < deadline:
            output += read_some(fd)
    finally:
        with contextlib.suppress(ChildProcessError):
            _, code = waitpid_for(pid, 10)
        os.close(fd)
    assert b"IS-A-TTY" in output, output
    assert b"got-abc" in output, output
    assert code == 0, output


def test_attach_to_a_container_with_stdin(node: Node, ns: str) -> None:
    script = "import sys\nfor line in sys.stdin:\n    print('echo:' + line.strip(), flush=True)\n"
    spec = pod("talk", container("talk", PY, "-u", "-c", script, stdin=True))
    apply(node.kubectl, ns, spec)
    wait_ready(node.kubectl, ns, "talk")
    env = {**os.environ, "KUBECONFIG": str(node.proc.kubeconfig)}
    argv = ["kubectl", "attach", "-i", "-q", "-n", ns, "talk"]
    with subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    ) as attached:
        try:
            assert attached.stdin is not None
            assert attached.stdout is not None
            attached.stdin.write("ping\n")
            attached.stdin.flush()
            assert attached.stdout.readline() == "echo:ping\n"
        finally:
            attached.kill()
    assert node.kubectl("logs", "-n", ns, "talk").out == "echo:ping\n"


def test_port_forward(node: Node, ns: str, web: tuple[str, int]) -> None:
    name, port = web
    local = server_process.free_port()
    env = {**os.environ, "KUBECONFIG": str(node.proc.kubeconfig)}
    argv = ["kubectl", "port-forward", "-n", ns, f"pod/{name}", f"{local}:{port}"]
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    ) as forward:
        try:
            assert forward.stdout is not None
            first = forward.stdout.readline()
            assert f"Forwarding from 127.0.0.1:{local} -> {port}" in first, first
            for _ in range(3):  # each GET is a new forwarded connection
                code, body = http_get(f"http://127.0.0.1:{local}/")
                assert code == 200
                assert "Directory listing" in body
        finally:
            forward.kill()


def test_kubelet_server_wants_a_client_certificate(node: Node, web: tuple[str, int]) -> None:
    """Only the API server (a client certificate of the cluster CA) may use the kubelet's
    streaming endpoints: anyone else gets 401."""
    found = json.loads(node.kubectl("get", "node", "-o", "json").out)["items"][0]
    port = found["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    url = f"https://127.0.0.1:{port}/containerLogs/default/web/web"
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(url, context=context, timeout=5)
    info.value.close()
    assert info.value.code == 401


# -- the pod lifecycle ---------------------------------------------------------------------


def test_init_containers_run_in_order(node: Node, ns: str) -> None:
    mount = [{"name": "work", "mountPath": "/work"}]
    spec = pod(
        "init",
        sh("app", "cat /work/order; exec sleep 3600", volumeMounts=mount),
        volumes=[{"name": "work", "emptyDir": {}}],
        initContainers=[
            sh(f"init-{i}", f"test $(wc -l < /work/order) = {i} && echo init-{i} >> /work/order",
               volumeMounts=mount)
            if i else sh("init-0", "echo init-0 > /work/order", volumeMounts=mount)
            for i in range(3)
        ],
    )  # fmt: skip
    apply(node.kubectl, ns, spec)
    wait_ready(node.kubectl, ns, "init")
    assert node.kubectl("logs", "-n", ns, "init", "-c", "app").out == "init-0\ninit-1\ninit-2\n"
    found = get(node.kubectl, ns, "pod/init")["status"]
    inits = found["initContainerStatuses"]
    assert [s["name"] for s in inits] == ["init-0", "init-1", "init-2"]
    assert all(s["state"]["terminated"]["reason"] == "Completed" for s in inits)
    conditions = {c["type"]: c["status"] for c in found["conditions"]}
    assert conditions["Initialized"] == "True"


def test_crash_loop_backoff(node: Node, ns: str) -> None:
    apply(node.kubectl, ns, pod("crash", sh("app", "echo dying; exit 1")))

    def looping() -> Obj | None:
        state = status_of(node.kubectl, ns, "crash")
        waiting = state.get("state", {}).get("waiting", {})
        ok = state.get("restartCount", 0) >= 2 and waiting.get("reason") == "CrashLoopBackOff"
        return state if ok else None

    # restarts at ~0 s and ~10 s (backoff 10 s doubling): the exact timings are the
    # integration tests' job, with a fake clock
    state = cluster.wait_until(looping, timeout=40, interval=0.5, what="CrashLoopBackOff")
    assert state["lastState"]["terminated"]["exitCode"] == 1
    assert state["lastState"]["terminated"]["reason"] == "Error"
    assert "back-off" in state["state"]["waiting"]["message"]
    row = node.kubectl("get", "pod", "-n", ns, "crash", "--no-headers").out.split()
    assert row[1] == "0/1"
    assert row[2] == "CrashLoopBackOff"
    assert int(row[3]) >= 2
    assert get(node.kubectl, ns, "pod/crash")["status"]["phase"] == "Running"
    assert node.kubectl("logs", "-n", ns, "crash", "--previous").out == "dying\n"


def test_a_container_without_command_fails_with_an_event(node: Node, ns: str) -> None:
    """The process runtime cannot know an image's entrypoint: it says so, the pod stays."""
    apply(node.kubectl, ns, pod("nocmd", {"name": "app", "image": "nginx"}))

    def waiting() -> Obj | None:
        state = status_of(node.kubectl, ns, "nocmd").get("state", {}).get("waiting", {})
        return state if state.get("reason") == "CreateContainerError" else None

    state = cluster.wait_until(waiting, timeout=20, interval=0.3, what="CreateContainerError")
    assert "command" in state["message"], state
    events = node.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.name=nocmd", "-o", "json"
    ).out
    failed = [e for e in json.loads(events)["items"] if e["reason"] == "Failed"]
    assert failed, events
    assert "command" in failed[0]["message"]


def test_failing_liveness_probe_restarts_the_container(node: Node, ns: str) -> None:
    dead_port = server_process.free_port()  # nothing listens there
    probe = {"tcpSocket": {"port": dead_port}, "periodSeconds": 1, "failureThreshold": 2}
    apply(node.kubectl, ns, pod("sick", sh("app", "exec sleep 3600", livenessProbe=probe)))

    def restarted() -> Obj | None:
        state = status_of(node.kubectl, ns, "sick")
        return state if state.get("restartCount", 0) >= 1 else None

    state = cluster.wait_until(restarted, timeout=30, interval=0.5, what="a liveness restart")
    assert state["lastState"]["terminated"]["exitCode"] == 143  # sleep ends on the SIGTERM
    events = node.kubectl(
        "get", "events", "-n", ns, "--field-selector", "involvedObject.name=sick", "-o", "json"
    ).out
    reasons = {e["reason"] for e in json.loads(events)["items"]}
    assert "Unhealthy" in reasons
    assert "Killing" in reasons


def test_configmap_and_secret_env_and_volumes(node: Node, ns: str) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {"greeting": "hello", "color": "blue"},
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "sec"},
        "stringData": {"password": "s3cret"},
    }
    app = sh(
        "app",
        "echo G=$GREETING P=$PASSWORD C=$CFG_color; exec sleep 3600",
        env=[
            {
                "name": "GREETING",
                "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "greeting"}},
            },
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "password"}}},
        ],
        envFrom=[{"prefix": "CFG_", "configMapRef": {"name": "cfg"}}],
        volumeMounts=[
            {"name": "cfg", "mountPath": "/etc/kybern-cfg"},
            {"name": "sec", "mountPath": "/etc/kybern-sec"},
        ],
    )
    volumes = [
        {"name": "cfg", "configMap": {"name": "cfg"}},
        {"name": "sec", "secret": {"secretName": "sec", "defaultMode": 0o400}},
    ]
    apply(node.kubectl, ns, config, secret, pod("cfg", app, volumes=volumes))
    wait_ready(node.kubectl, ns, "cfg")
    assert node.kubectl("logs", "-n", ns, "cfg").out == "G=hello P=s3cret C=blue\n"
    files = "cat /etc/kybern-cfg/greeting /etc/kybern-sec/password; stat -L -c %a /etc/kybern-sec/password"
    assert node.kubectl("exec", "-n", ns, "cfg", "--", "sh", "-c", files).out == "hellos3cret400\n"
    assert not Path("/etc/kybern-cfg").exists()  # a private mount namespace, not the host's /etc


def test_downward_api_and_service_environment(node: Node, ns: str) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "backend"},
        "spec": {"selector": {"app": "backend"}, "ports": [{"port": 8080}]},
    }
    apply(node.kubectl, ns, service)  # before the pod: its environment is fixed at start
    script = (
        "echo name=$MY_NAME ip=$MY_IP greeting=$(GREETING) svc=$BACKEND_SERVICE_PORT; "
        "cat /info/labels; echo; cat /info/cpu; echo; exec sleep 3600"
    )
    app = sh(
        "app",
        script,
        resources={"limits": {"cpu": "500m"}},
        env=[
            {"name": "MY_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "GREETING", "value": "hi-$(MY_NAME)"},
        ],
        volumeMounts=[{"name": "info", "mountPath": "/info"}],
    )
    items = [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {
            "path": "cpu",
            "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"},
        },
    ]
    spec = pod("downward", app, volumes=[{"name": "info", "downwardAPI": {"items": items}}])
    spec["metadata"]["labels"] = {"tier": "test"}
    apply(node.kubectl, ns, spec)
    wait_ready(node.kubectl, ns, "downward")
    lines = node.kubectl("logs", "-n", ns, "downward").out.splitlines()
    assert lines == [
        "name=downward ip=127.0.0.1 greeting=hi-downward svc=8080",
        'tier="test"',
        "500",
    ]


def test_termination_messages(node: Node, ns: str) -> None:
    written = sh("app", "echo bye > /dev/termination-log; exit 2")
    from_logs = sh(
        "app", "echo last words; exit 3", terminationMessagePolicy="FallbackToLogsOnError"
    )
    apply(
        node.kubectl,
        ns,
        pod("written", written, restartPolicy="Never"),
        pod("fromlogs", from_logs, restartPolicy="Never"),
    )

    def terminated(name: str) -> Obj:
        state = status_of(node.kubectl, ns, name).get("state", {})
        return dict(state.get("terminated") or {})

    first = cluster.wait_until(lambda: terminated("written"), timeout=20, what="exit")
    assert (first["exitCode"], first["reason"], first["message"]) == (2, "Error", "bye\n")
    second = cluster.wait_until(lambda: terminated("fromlogs"), timeout=20, what="exit")
    assert second["exitCode"] == 3
    assert second["message"].strip() == "last words"
    assert get(node.kubectl, ns, "pod/written")["status"]["phase"] == "Failed"


def read_greeting(node: Node, ns: str) -> str:
    return node.kubectl("exec", "-n", ns, "cfg", "--", "cat", "/etc/kybern-cfg/greeting").out


def test_configmap_volume_updates_in_place(node: Node, ns: str) -> None:
    """Kubernetes refreshes configMap volumes on the pod's periodic sync (syncFrequency, 60 s);
    kybern's agent also wakes the pods that mount a ConfigMap when it changes, so the new
    content shows within seconds (a regression to the periodic sync alone fails here)."""
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "cfg"},
        "data": {"greeting": "hello"},
    }
    app = sh(
        "app", "exec sleep 3600", volumeMounts=[{"name": "cfg", "mountPath": "/etc/kybern-cfg"}]
    )
    volumes = [{"name": "cfg", "configMap": {"name": "cfg"}}]
    apply(node.kubectl, ns, config, pod("cfg", app, volumes=volumes))
    wait_ready(node.kubectl, ns, "cfg")
    assert read_greeting(node, ns) == "hello"
    node.kubectl("patch", "configmap", "-n", ns, "cfg", "-p", '{"data":{"greeting":"bonjour"}}')
    seen = cluster.wait_until(
        lambda: read_greeting(node, ns) != "hello" and read_greeting(node, ns),
        timeout=15,
        interval=1,
        what="the mounted configMap to change",
    )
    assert seen == "bonjour"
    assert status_of(node.kubectl, ns, "cfg")["restartCount"] == 0  # updated in place


def test_job_runs_to_completion(node: Node, ns: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "count"},
        "spec": {
            "completions": 3,
            "parallelism": 2,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container("count", PY, "-c", "print(sum(range(10)))")],
                }
            },
        },
    }
    apply(node.kubectl, ns, job)
    node.kubectl("wait", "-n", ns, "--for=condition=complete", "job/count", "--timeout=45s")
    found = get(node.kubectl, ns, "job/count")["status"]
    assert found["succeeded"] == 3
    listed = get(node.kubectl, ns, "pods")["items"]
    assert [p["status"]["phase"] for p in listed] == ["Succeeded"] * 3
    assert node.kubectl("logs", "-n", ns, "job/count").out == "45\n"


def static_pod(marker: Path) -> Obj:
    manifest = pod("static", sh("app", f"echo $$$$ > {marker}; exec sleep 3600"))
    manifest["metadata"]["namespace"] = "default"
    return manifest


def test_logs_and_exec_reach_a_static_pod(node: Node) -> None:
    """(Runs before the test that removes the static pod's file.)"""
    mirror = f"static-{ready_nodes(node.kubectl)[0]}"
    cluster.wait_until(lambda: node.kubectl("get", "pod", mirror, check=False).code == 0)
    assert node.kubectl("exec", mirror, "--", "echo", "in-static").out == "in-static\n"
    assert node.kubectl("logs", mirror).code == 0


def test_static_pod_is_mirrored(node: Node) -> None:
    marker = node.scratch / "static-pid"
    node_name = ready_nodes(node.kubectl)[0]
    mirror = f"static-{node_name}"

    def running() -> bool:
        found = node.kubectl("get", "pod", mirror, "-o", "json", check=False)
        return found.code == 0 and json.loads(found.out)["status"].get("phase") == "Running"

    cluster.wait_until(running, timeout=30, interval=0.3, what="the mirror pod Running")
    found = get(node.kubectl, "default", f"pod/{mirror}")
    assert found["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert found["metadata"]["ownerReferences"][0]["kind"] == "Node"
    assert found["spec"]["nodeName"] == node_name
    pid = int(cluster.wait_until(lambda: marker.exists() and marker.read_text().strip()))
    assert alive(pid)
    # deleting the mirror does not stop the pod: the kubelet recreates the mirror
    uid = found["metadata"]["uid"]
    node.kubectl("delete", "pod", mirror, "--wait=false")

    def recreated() -> bool:
        found = node.kubectl("get", "pod", mirror, "-o", "json", check=False)
        if found.code != 0:
            return False
        mirror_pod = json.loads(found.out)
        return bool(
            mirror_pod["metadata"]["uid"] != uid and mirror_pod["status"].get("phase") == "Running"
        )

    cluster.wait_until(recreated, timeout=30, interval=0.3, what="the mirror pod recreated")
    assert alive(pid)
    (node.manifests / "static.json").unlink()  # the file is the pod: removing it stops it
    cluster.wait_until(lambda: not alive(pid), timeout=30, what="the static pod stopped")
    cluster.wait_until(
        lambda: node.kubectl("get", "pod", mirror, check=False).code != 0,
        timeout=30,
        what="the mirror pod deleted",
    )


def test_graceful_termination_runs_prestop_then_sigterm(node: Node, ns: str) -> None:
    prestop, sigterm = node.scratch / f"prestop-{ns}", node.scratch / f"sigterm-{ns}"
    script = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        f"    open({str(sigterm)!r}, 'w').write('TERM after ' + open({str(prestop)!r}).read())\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "while True: time.sleep(1)\n"
    )
    hook = {"preStop": {"exec": {"command": ["sh", "-c", f"echo prestop > {prestop}"]}}}
    spec = pod("stopper", container("app", PY, "-c", script, lifecycle=hook))
    spec["spec"]["terminationGracePeriodSeconds"] = 30
    apply(node.kubectl, ns, spec)
    wait_ready(node.kubectl, ns, "stopper")
    started = time.monotonic()
    node.kubectl("delete", "pod", "-n", ns, "stopper", "--wait=true", "--timeout=40s")
    took = time.monotonic() - started
    assert sigterm.read_text() == "TERM after prestop\n"  # the hook ran, then SIGTERM came
    assert took < 15, took  # it exited on SIGTERM: nobody waited for the 30 s grace period
