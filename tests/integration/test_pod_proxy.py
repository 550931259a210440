"""pods/log, pods/exec, pods/attach and pods/portforward through an in-process API server (HTTPS)
to the kubelet's HTTPS server, driven by the real kubectl v1.32.

The kubelet server runs on 127.0.0.1 with test doubles (tests/integration/kubeletdouble.py):
exec runs a real local subprocess, port-forward dials 127.0.0.1. A Node whose InternalIP is
127.0.0.1 and whose kubeletEndpoint is that server's port, and a pod bound to it with a
running container status, are created through the API."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from kybern.apiserver import server
from kybern.kubelet import certs
from kybern.kubelet import server as kubelet_server
from kybern.runtime import crilog
from tests.integration import kubeletdouble
from tests.support import cluster

pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not on PATH")
NS = "default"


@dataclass
class Result:
    code: int
    out: str
    err: str


@dataclass
class Env:
    api: server.APIServer
    kubelet: kubelet_server.KubeletServer
    runtime: kubeletdouble.LocalRuntime
    lookup: kubeletdouble.Lookup
    http: aiohttp.ClientSession
    logs: Path

    @property
    def kubeconfig(self) -> Path:
        return self.api.kubeconfig_path

    async def kubectl(self, *args: str, stdin: bytes | None = None) -> Result:
        proc = await self.start_kubectl(*args, stdin=stdin is not None)
        async with asyncio.timeout(15):
            out, err = await proc.communicate(stdin)
        assert proc.returncode is not None
        return Result(proc.returncode, out.decode(), err.decode())

    async def start_kubectl(self, *args: str, stdin: bool = False) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            "kubectl",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "KUBECONFIG": str(self.kubeconfig)},
        )

    async def call(self, method: str, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        headers = {"Content-Type": kw.pop("content_type", "application/json")}
        data = orjson.dumps(body) if body is not None else None
        async with self.http.request(
            method, self.api.url + path, data=data, headers=headers, **kw
        ) as r:
            raw = await r.read()
            try:
                return r.status, orjson.loads(raw)
            except orjson.JSONDecodeError:
                return r.status, raw.decode()

    async def add_pod(
        self, name: str, containers: list[str], *, node: str | None = "node-1", running: bool = True
    ) -> None:
        spec: dict[str, Any] = {"containers": [{"name": c, "image": "busybox"} for c in containers]}
        if node:
            spec["nodeName"] = node
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
        code, body = await self.call("POST", f"/api/v1/namespaces/{NS}/pods", pod)
        assert code == 201, body
        state = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
        if not running:
            state = {"waiting": {"reason": "ContainerCreating"}}
        status = {
            "phase": "Running" if running else "Pending",
            "containerStatuses": [
                {
                    "name": c,
                    "image": "busybox",
                    "imageID": "",
                    "ready": running,
                    "restartCount": 1,
                    "state": state,
                    "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}
                    if running
                    else {},
                }
                for c in containers
            ],
        }
        code, body = await self.call(
            "PATCH",
            f"/api/v1/namespaces/{NS}/pods/{name}/status",
            {"status": status},
            content_type="application/merge-patch+json",
        )
        assert code == 200, body
        for c in containers:
            self.lookup.add(NS, name, c, self.logs / name, running=running, previous=True)
        (self.logs / name).mkdir(parents=True, exist_ok=True)


def write_log(path: Path, *lines: bytes, start: int = 0) -> None:
    with path.open("ab") as f:
        for i, content in enumerate(lines):
            f.write(
                crilog.format_line(crilog.STDOUT, content, ns=(1_700_000_000 + start + i) * 10**9)
            )


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    api = server.APIServer(server.Config(data_dir=tmp_path / "api", port=0, tls=True))
    await api.start()
    assert api.pki is not None
    cert, key = certs.ensure_serving_cert(tmp_path / "kubelet", hostname="node-1")
    runtime, lookup = kubeletdouble.LocalRuntime(), kubeletdouble.Lookup()
    kubelet = kubelet_server.KubeletServer(
        runtime=runtime,
        lookup=lookup,
        host="127.0.0.1",
        port=0,
        ssl_context=certs.server_ssl_context(cert=cert, key=key, client_ca=api.pki.ca_cert),
        poll_interval=0.02,
    )
    await kubelet.start()
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=cluster.ssl_context(api.kubeconfig_path))
    )
    e = Env(api, kubelet, runtime, lookup, http, tmp_path / "logs")
    code, body = await e.call("POST", "/api/v1/nodes", {"metadata": {"name": "node-1"}})
    assert code == 201, body
    node_status = {
        "status": {
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet.port}},
        }
    }
    code, body = await e.call(
        "PATCH",
        "/api/v1/nodes/node-1/status",
        node_status,
        content_type="application/merge-patch+json",
    )
    assert code == 200, body
    try:
        yield e
    finally:
        await http.close()
        for session in runtime.sessions:
            await session.close()
        await kubelet.stop()
        await api.stop()


class TestLogs:
    async def test_logs_tail_timestamps(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        write_log(env.logs / "web" / "main.log", b"hello", b"world")
        result = await env.kubectl("logs", "web")
        assert (result.code, result.out) == (0, "hello\nworld\n"), result.err
        result = await env.kubectl("logs", "web", "--tail=1", "--timestamps")
        assert result.out == "2023-11-14T22:13:21Z world\n", result.err

    async def test_logs_previous(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        write_log(env.logs / "web" / "main.prev.log", b"crashed")
        result = await env.kubectl("logs", "web", "--previous")
        assert (result.code, result.out) == (0, "crashed\n"), result.err

    async def test_logs_follow_until_the_container_stops(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        path = env.logs / "web" / "main.log"
        write_log(path, b"one")
        proc = await env.start_kubectl("logs", "-f", "web")
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            assert await proc.stdout.readline() == b"one\n"
            write_log(path, b"two", start=1)
            assert await proc.stdout.readline() == b"two\n"
            env.lookup.set_running(NS, "web", "main", False)
            assert await proc.wait() == 0

    async def test_waiting_container_and_unscheduled_pod(self, env: Env) -> None:
        await env.add_pod("pending", ["main"], running=False)
        result = await env.kubectl("logs", "pending")
        assert result.code == 1
        assert 'container "main" in pod "pending" is waiting to start: ContainerCreating' in (
            result.err
        )
        await env.add_pod("nowhere", ["main"], node=None)
        code, body = await env.call("GET", f"/api/v1/namespaces/{NS}/pods/nowhere/log")
        assert (code, body["reason"]) == (400, "BadRequest")
        assert body["message"] == "pod nowhere does not have a host assigned"

    async def test_log_options_are_validated(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        path = f"/api/v1/namespaces/{NS}/pods/web/log"
        code, body = await env.call("GET", path + "?tailLines=-2&limitBytes=0")
        assert (code, body["reason"], body["details"]["kind"]) == (422, "Invalid", "PodLogOptions")
        assert body["message"] == (
            'PodLogOptions "web" is invalid: [tailLines: Invalid value: -2: must be greater '
            "than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]"
        )
        code, body = await env.call("GET", path + "?sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z")
        assert code == 422
        assert "at most one of `sinceTime` or `sinceSeconds` may be specified" in body["message"]
        code, body = await env.call("GET", path + "?tailLines=ten")
        assert (code, body["reason"]) == (400, "BadRequest")

    async def test_container_name_errors(self, env: Env) -> None:
        await env.add_pod("two", ["a", "b"])
        code, body = await env.call("GET", f"/api/v1/namespaces/{NS}/pods/two/log")
        assert code == 400
        assert (
            body["message"]
            == "a container name must be specified for pod two, choose one of: [a b]"
        )
        code, body = await env.call("GET", f"/api/v1/namespaces/{NS}/pods/two/log?container=c")
        assert (code, body["message"]) == (400, "container c is not valid for pod two")
        code, body = await env.call("GET", f"/api/v1/namespaces/{NS}/pods/missing/log")
        assert (code, body["reason"]) == (404, "NotFound")

    async def test_unreachable_kubelet_and_node_without_address(self, env: Env) -> None:
        for node, status in (
            (
                "down",
                {
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                    "daemonEndpoints": {"kubeletEndpoint": {"Port": _closed_port()}},
                },
            ),
            ("bare", {}),
        ):
            code, body = await env.call("POST", "/api/v1/nodes", {"metadata": {"name": node}})
            assert code == 201, body
            if status:
                code, body = await env.call(
                    "PATCH",
                    f"/api/v1/nodes/{node}/status",
                    {"status": status},
                    content_type="application/merge-patch+json",
                )
                assert code == 200, body
            await env.add_pod(f"on-{node}", ["main"], node=node)
        code, body = await env.call("GET", f"/api/v1/namespaces/{NS}/pods/on-down/log")
        assert (code, body["reason"]) == (500, "InternalError")
        assert "error dialing backend" in body["message"], body
        code, body = await env.call("GET", f"/api/v1/namespaces/{NS}/pods/on-bare/log")
        assert (code, body["message"]) == (503, "no preferred addresses found for node bare")


class TestExec:
    async def test_exec_stdout_stderr_and_exit_code(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        result = await env.kubectl(
            "exec", "web", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
        )
        assert result.out == "out\n"
        assert "err\n" in result.err
        assert result.code == 3, result.err

    async def test_exec_success(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        result = await env.kubectl("exec", "web", "--", "echo", "fine")
        assert (result.code, result.out) == (0, "fine\n"), result.err

    async def test_exec_stdin(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        result = await env.kubectl(
            "exec", "-i", "web", "--", "sh", "-c", "tr a-z A-Z", stdin=b"hi there\n"
        )
        assert (result.code, result.out) == (0, "HI THERE\n"), result.err

    async def test_cp_both_ways(self, env: Env, tmp_path: Path) -> None:
        # kubectl cp runs tar through exec: stdin must end (v5 close) for the upload to finish.
        await env.add_pod("web", ["main"])
        (tmp_path / "up.txt").write_text("payload\n")
        (tmp_path / "inpod").mkdir()
        result = await env.kubectl("cp", str(tmp_path / "up.txt"), f"web:{tmp_path}/inpod/up.txt")
        assert result.code == 0, result.err
        assert (tmp_path / "inpod" / "up.txt").read_text() == "payload\n"
        result = await env.kubectl("cp", f"web:{tmp_path}/inpod/up.txt", str(tmp_path / "down.txt"))
        assert result.code == 0, result.err
        assert (tmp_path / "down.txt").read_text() == "payload\n"

    async def test_exec_tty(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        # `script` gives kubectl a terminal, so it asks for a TTY and sends the window size.
        command = f"KUBECONFIG={env.kubeconfig} kubectl exec -it web -- sh -c 'test -t 1 && echo is-a-tty; stty size'"
        proc = await asyncio.create_subprocess_exec(
            "script",
            "-qec",
            command,
            "/dev/null",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(15):
            out, err = await proc.communicate(b"")
        assert proc.returncode == 0, (out, err)
        assert b"is-a-tty" in out
        session = env.runtime.sessions[-1]
        assert isinstance(session, kubeletdouble.TTYSession)
        assert session.sizes, "kubectl sent no terminal size"

    async def test_exec_refused_by_the_kubelet_shows_its_reason(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        env.lookup.set_running(NS, "web", "main", False)
        result = await env.kubectl("exec", "web", "--", "true")
        assert result.code == 1
        assert 'container not found ("main")' in result.err, result.err
        result = await env.kubectl("exec", "web", "-c", "other", "--", "true")
        assert "container other is not valid for pod web" in result.err, result.err

    async def test_attach(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        result = await env.kubectl("attach", "-i", "web", stdin=b"typed\n")
        assert result.code == 0, result.err
        assert "attached\ntyped\n" in result.out


class TestPortForward:
    async def test_port_forward_then_http_get(self, env: Env) -> None:
        await env.add_pod("web", ["main"])
        app = web.Application()

        async def hello(request: web.Request) -> web.Response:
            return web.Response(text="hello through the tunnel")

        app.router.add_get("/", hello)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        target = runner.addresses[0][1]
        proc = await env.start_kubectl("port-forward", "pod/web", f"0:{target}")
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(10):
                line = (await proc.stdout.readline()).decode()
            assert line.startswith("Forwarding from 127.0.0.1:"), line
            local = int(line.split("127.0.0.1:")[1].split(" ")[0])
            for _ in range(2):  # two connections over the one tunnel
                async with env.http.get(f"http://127.0.0.1:{local}/") as r:
                    assert await r.text() == "hello through the tunnel"
            assert env.runtime.forwarded[0] == ("sandbox-web", target)
            # The pod side closing ends the local connection too (both streams get a FIN).
            srv = await asyncio.start_server(_reply_and_close, "127.0.0.1", 0)
            await self._forward_and_close(env, srv.sockets[0].getsockname()[1])
            srv.close()
        finally:
            proc.terminate()
            await proc.wait()
            await runner.cleanup()

    @staticmethod
    async def _forward_and_close(env: Env, target: int) -> None:
        proc = await env.start_kubectl("port-forward", "pod/web", f"0:{target}")
        try:
            assert proc.stdout is not None
            async with asyncio.timeout(10):
                line = (await proc.stdout.readline()).decode()
                local = int(line.split("127.0.0.1:")[1].split(" ")[0])
                reader, writer = await asyncio.open_connection("127.0.0.1", local)
                writer.write(b"question")
                assert await reader.read() == b"QUESTION"  # read() returns at EOF only
                writer.close()
        finally:
            proc.terminate()
            await proc.wait()


class TestPythonClient:
    """The official Python client: exec over v4/v5 channels, port-forward over channels."""

    async def test_exec_and_port_forward(self, env: Env) -> None:
        import kubernetes
        from kubernetes import stream

        await env.add_pod("web", ["main"])
        srv = await asyncio.start_server(_upper_echo, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        client = kubernetes.config.new_client_from_config(config_file=str(env.kubeconfig))
        core = kubernetes.client.CoreV1Api(client)

        def exec_echo() -> str:
            return str(
                stream.stream(
                    core.connect_get_namespaced_pod_exec,
                    "web",
                    NS,
                    command=["echo", "from-python"],
                    stderr=True,
                    stdin=False,
                    stdout=True,
                    tty=False,
                )
            )

        def forward() -> bytes:
            pf = stream.portforward(
                core.connect_get_namespaced_pod_portforward, "web", NS, ports=str(port)
            )
            sock = pf.socket(port)
            sock.settimeout(10)
            sock.sendall(b"abc")
            data = sock.recv(100)
            sock.close()
            pf.close()
            return bytes(data)

        try:
            assert await asyncio.to_thread(exec_echo) == "from-python\n"
            assert await asyncio.to_thread(forward) == b"ABC"
        finally:
            client.close()
            srv.close()


async def _upper_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data.upper())
        await writer.drain()
    writer.close()


async def _reply_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write((await reader.read(100)).upper())
    await writer.drain()
    writer.close()


def _closed_port() -> int:
    """A port nothing listens on (bound and released: refused on connect)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
