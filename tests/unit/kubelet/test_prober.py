"""Probes: each check against real local servers or a runtime double, and the worker rules."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from kybern.client import clock
from kybern.kubelet import grpcprobe, prober
from kybern.runtime import cri

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
POD: Obj = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}


class FakeRuntime:
    """exec_sync only: exit codes per call from ``codes`` (the last one repeats)."""

    def __init__(self, codes: list[int] | None = None, *, hang: bool = False) -> None:
        self.codes = codes or [0]
        self.hang = hang
        self.calls: list[tuple[str, list[str], float | None]] = []

    async def exec_sync(
        self, container_id: str, cmd: list[str], kill_after: float | None = None
    ) -> cri.ExecResult:
        self.calls.append((container_id, cmd, kill_after))
        if self.hang:
            raise TimeoutError
        code = self.codes[min(len(self.calls) - 1, len(self.codes) - 1)]
        return cri.ExecResult(code, b"out ", b"err")


async def probe(
    spec: Obj, *, container: Obj | None = None, runtime: Any = None, ip: str = "127.0.0.1"
) -> prober.ProbeResult:
    return await prober.run_probe(
        spec,
        pod=POD,
        container=container or {"name": "c"},
        container_id="cid",
        runtime=runtime or FakeRuntime(),
        pod_ip=ip,
    )


class TestExec:
    async def test_exit_code_decides(self) -> None:
        ok = await probe({"exec": {"command": ["true"]}, "timeoutSeconds": 3})
        assert ok == prober.ProbeResult(True, "out err")
        runtime = FakeRuntime([1])
        assert (await probe({"exec": {"command": ["false"]}}, runtime=runtime)).success is False
        assert runtime.calls == [("cid", ["false"], 1.0)]

    async def test_timeout_fails(self) -> None:
        result = await probe({"exec": {"command": ["sleep", "9"]}}, runtime=FakeRuntime(hang=True))
        assert result.success is False
        assert "timed out" in result.output

    async def test_static_env_expansion(self) -> None:
        runtime = FakeRuntime()
        container = {
            "name": "c",
            "env": [{"name": "F", "value": "/ready"}, {"name": "S", "valueFrom": {"fieldRef": {}}}],
        }
        await probe(
            {"exec": {"command": ["cat", "$(F)", "$(S)"]}}, container=container, runtime=runtime
        )
        assert runtime.calls[0][1] == ["cat", "/ready", "$(S)"]


@pytest.fixture
async def http_port() -> AsyncIterator[int]:
    seen: list[Obj] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        path = request.path
        if path == "/ok":
            return web.Response(text="fine")
        if path == "/headers":
            ok = (
                request.headers.get("User-Agent") == "kube-probe/1.32"
                and request.headers.get("X-Custom") == "yes"
            )
            return web.Response(status=200 if ok else 400)
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/same":
            raise web.HTTPFound("/ok")
        if path == "/elsewhere":
            raise web.HTTPFound("http://localhost:1/ok")
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield port
    await runner.cleanup()


class TestHttp:
    async def test_status_codes(self, http_port: int) -> None:
        assert (await probe({"httpGet": {"path": "/ok", "port": http_port}})).success is True
        failed = await probe({"httpGet": {"path": "/bad", "port": http_port}})
        assert failed == prober.ProbeResult(False, "HTTP probe failed with statuscode: 500")

    async def test_headers_and_named_port(self, http_port: int) -> None:
        container = {"name": "c", "ports": [{"name": "web", "containerPort": http_port}]}
        spec = {
            "httpGet": {
                "path": "/headers",
                "port": "web",
                "httpHeaders": [{"name": "x-custom", "value": "yes"}],
            }
        }
        assert (await probe(spec, container=container)).success is True
        unknown = await probe({"httpGet": {"path": "/", "port": "nope"}}, container=container)
        assert unknown == prober.ProbeResult(None, "port nope not found")

    async def test_redirects(self, http_port: int) -> None:
        assert (await probe({"httpGet": {"path": "/same", "port": http_port}})).output == "fine"
        elsewhere = await probe({"httpGet": {"path": "/elsewhere", "port": http_port}})
        assert elsewhere.success is True
        assert elsewhere.output.startswith("Probe terminated redirects")
        looping = await probe({"httpGet": {"path": "/loop", "port": http_port}})
        assert looping.success is False
        assert "stopped after 10 redirects" in looping.output

    async def test_connection_refused(self, unused_tcp_port: int) -> None:
        result = await probe({"httpGet": {"path": "/", "port": unused_tcp_port}})
        assert result.success is False
        assert result.output == (
            f'Get "http://127.0.0.1:{unused_tcp_port}/": dial tcp 127.0.0.1:{unused_tcp_port}: connect: connection refused'
        )


class TestTcp:
    async def test_open_and_closed(self, unused_tcp_port: int) -> None:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            assert (await probe({"tcpSocket": {"port": port}})).success is True
        closed = await probe({"tcpSocket": {"port": unused_tcp_port}})
        assert closed == prober.ProbeResult(
            False, f"dial tcp 127.0.0.1:{unused_tcp_port}: connect: connection refused"
        )


async def grpc_server(status: int | None) -> asyncio.Server:
    """An HTTP/2 peer that answers one health check with ``status`` (None: trailers only)."""

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(grpcprobe.PREFACE))
        writer.write(grpcprobe.frame(grpcprobe.SETTINGS, 0, 0))
        ended = False
        while not ended:
            head = await reader.readexactly(9)
            await reader.readexactly(int.from_bytes(head[:3], "big"))
            ended = head[3] == grpcprobe.DATA and bool(head[4] & grpcprobe.END_STREAM)
        writer.write(grpcprobe.frame(grpcprobe.HEADERS, grpcprobe.END_HEADERS, 1, b"\x88"))
        if status is not None:
            message = b"\x08" + bytes([status])
            body = b"\x00" + struct.pack(">I", len(message)) + message
            writer.write(grpcprobe.frame(grpcprobe.DATA, 0, 1, body))
        writer.write(
            grpcprobe.frame(
                grpcprobe.HEADERS, grpcprobe.END_HEADERS | grpcprobe.END_STREAM, 1, b"\x00"
            )
        )
        await writer.drain()
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


class TestGrpc:
    @pytest.mark.parametrize(
        ("status", "success", "output"),
        [
            (1, True, ""),
            (2, False, 'service unhealthy (responded with "NOT_SERVING")'),
            (None, False, "error: health rpc probe failed: no response message (the rpc failed)"),
        ],
    )
    async def test_health_check(self, status: int | None, success: bool, output: str) -> None:
        server = await grpc_server(status)
        port = server.sockets[0].getsockname()[1]
        async with server:
            result = await probe({"grpc": {"port": port, "service": "svc"}})
        assert result == prober.ProbeResult(success, output)

    def test_request_encoding(self) -> None:
        assert grpcprobe.hpack_literal("a", "b") == b"\x00\x01a\x01b"
        assert grpcprobe.parse_status(b"\x00\x00\x00\x00\x00") == 0


class Recorder:
    def __init__(self) -> None:
        self.results: list[tuple[str, str, bool]] = []
        self.events: list[str] = []

    def on_result(self, uid: str, name: str, kind: str, result: bool) -> None:
        self.results.append((name, kind, result))

    def on_event(self, uid: str, name: str, kind: str, message: str) -> None:
        self.events.append(message)


def probed_pod(**probes: Obj) -> Obj:
    container = {
        "name": "c",
        **{f"{k}Probe": {"exec": {"command": ["check"]}, **v} for k, v in probes.items()},
    }
    return {"metadata": {"name": "p", "uid": "u1"}, "spec": {"containers": [container]}}


class TestManager:
    async def run(
        self, pod: Obj, runtime: FakeRuntime, seconds: float, ids: dict[str, str] | None = None
    ) -> tuple[Recorder, prober.ProbeManager, clock.FakeClock]:
        fake = clock.FakeClock()
        rec = Recorder()
        manager = prober.ProbeManager(
            runtime=runtime, on_result=rec.on_result, on_event=rec.on_event, clock=fake
        )  # type: ignore[arg-type]
        manager.add(pod, {"c": "cid"} if ids is None else ids)
        await fake.run_for(seconds)
        return rec, manager, fake

    async def test_readiness_starts_false_then_thresholds(self) -> None:
        runtime = FakeRuntime([0, 1, 1, 0, 0])
        pod = probed_pod(
            readiness={"periodSeconds": 5, "failureThreshold": 2, "successThreshold": 2}
        )
        rec, manager, _ = await self.run(pod, runtime, 21)
        await manager.close()
        # t0 ok (1 of 2), t5 fail, t10 fail -> False (already), t15 ok, t20 ok -> True
        assert rec.results == [("c", "readiness", False), ("c", "readiness", True)]
        assert len(runtime.calls) == 5
        assert rec.events == ["Readiness probe failed: out err"] * 2

    async def test_initial_delay(self) -> None:
        runtime = FakeRuntime()
        pod = probed_pod(readiness={"initialDelaySeconds": 15, "periodSeconds": 10})
        _, manager, fake = await self.run(pod, runtime, 19)
        assert runtime.calls == []  # t0 and t10 are before the delay
        await fake.run_for(2)
        assert runtime.calls == [("cid", ["check"], 1.0)]  # t20
        await manager.close()

    async def test_liveness_failure_holds_until_reset(self) -> None:
        runtime = FakeRuntime([1])
        rec, manager, fake = await self.run(
            probed_pod(liveness={"periodSeconds": 1, "failureThreshold": 3}), runtime, 10
        )
        assert rec.results == [("c", "liveness", False)]
        assert len(runtime.calls) == 3  # on hold after the third failure
        runtime.codes = [0]
        manager.reset("u1", "c", "cid2")
        await fake.run_for(2)
        await manager.close()
        assert runtime.calls[-1][0] == "cid2"
        assert rec.results == [("c", "liveness", False)]  # success after reset is no change

    async def test_startup_gates_liveness_and_readiness(self) -> None:
        runtime = FakeRuntime([1, 1, 0, 0])
        pod = probed_pod(
            startup={"periodSeconds": 1, "failureThreshold": 30},
            readiness={"periodSeconds": 1},
            liveness={"periodSeconds": 1},
        )
        rec, manager, _ = await self.run(pod, runtime, 3.5)
        await manager.close()
        assert rec.results[0] == ("c", "readiness", False)
        assert ("c", "startup", True) in rec.results
        startup_at = rec.results.index(("c", "startup", True))
        assert ("c", "readiness", True) in rec.results[startup_at:]
        assert runtime.calls[:3] == [("cid", ["check"], 1.0)] * 3  # only startup until it passed

    async def test_unknown_container_not_probed_and_remove(self) -> None:
        runtime = FakeRuntime()
        rec, manager, fake = await self.run(
            probed_pod(readiness={"periodSeconds": 1}), runtime, 3, ids={}
        )
        assert runtime.calls == []
        manager.reset("u1", "c", "cid")
        await fake.run_for(1)
        assert rec.results[-1] == ("c", "readiness", True)
        manager.remove("u1")
        calls = len(runtime.calls)
        await fake.run_for(5)
        assert len(runtime.calls) == calls


async def test_check_of_a_replaced_container_is_discarded() -> None:
    fake = clock.FakeClock()
    gate = asyncio.Event()
    rec = Recorder()

    class Slow(FakeRuntime):
        async def exec_sync(
            self, container_id: str, cmd: list[str], kill_after: float | None = None
        ) -> cri.ExecResult:
            self.calls.append((container_id, cmd, kill_after))
            await gate.wait()
            return cri.ExecResult(1, b"", b"")

    runtime = Slow()
    manager = prober.ProbeManager(runtime=runtime, on_result=rec.on_result, clock=fake)  # type: ignore[arg-type]
    manager.add(probed_pod(liveness={"periodSeconds": 10, "failureThreshold": 1}), {"c": "old"})
    await fake.run_for(0)
    assert runtime.calls[0][0] == "old"
    manager.reset("u1", "c", "new")
    gate.set()
    await fake.run_for(0)
    await manager.close()
    assert rec.results == []  # the old container's failure does not count
