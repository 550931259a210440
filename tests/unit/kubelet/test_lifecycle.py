"""postStart/preStop handlers: exec, httpGet, sleep, and the event messages of failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web

from kybern.client import clock
from kybern.kubelet import lifecycle
from kybern.runtime import cri

pytestmark = pytest.mark.timeout(10)
Obj = dict[str, Any]
POD: Obj = {"metadata": {"name": "p", "namespace": "ns", "uid": "u1"}}
CONTAINER: Obj = {"name": "c"}


class FakeRuntime:
    def __init__(self, code: int = 0) -> None:
        self.code = code
        self.calls: list[tuple[list[str], float | None]] = []

    async def exec_sync(
        self, container_id: str, cmd: list[str], kill_after: float | None = None
    ) -> cri.ExecResult:
        self.calls.append((cmd, kill_after))
        return cri.ExecResult(self.code, b"", b"boom")


async def run(handler: Obj, runtime: Any = None, **kw: Any) -> str | None:
    return await lifecycle.run_handler(
        handler,
        pod=POD,
        container=CONTAINER,
        container_id="cid",
        runtime=runtime or FakeRuntime(),
        pod_ip="127.0.0.1",
        clock=kw.pop("clock", clock.REAL),
        **kw,
    )


async def test_exec_success_and_limit() -> None:
    runtime = FakeRuntime()
    assert await run({"exec": {"command": ["sh", "-c", "true"]}}, runtime, time_limit=7) is None
    assert runtime.calls == [(["sh", "-c", "true"], 7)]


async def test_exec_failure_message() -> None:
    message = await run({"exec": {"command": ["sh", "-c", "exit 3"]}}, FakeRuntime(3))
    assert message == (
        'Exec lifecycle hook ([sh -c exit 3]) for Container "c" in Pod "p_ns(u1)" failed - '
        "error: command 'sh -c exit 3' exited with 3: boom, message: \"boom\""
    )


async def test_http_hook_any_status_is_fine_refused_is_not(unused_tcp_port: int) -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers["User-Agent"])
        return web.Response(status=500)

    app = web.Application()
    app.router.add_get("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        assert await run({"httpGet": {"path": "/hook", "port": port}}) is None
    finally:
        await runner.cleanup()
    assert seen == ["kube-lifecycle/1.32"]
    failed = await run({"httpGet": {"path": "/hook", "port": unused_tcp_port}})
    assert failed is not None
    assert failed.startswith(
        'HTTP lifecycle hook (/hook) for Container "c" in Pod "p_ns(u1)" failed - error: Get '
    )
    assert failed.endswith("connect: connection refused")


async def test_sleep_uses_clock_and_is_bounded() -> None:
    fake = clock.FakeClock()
    task = asyncio.create_task(run({"sleep": {"seconds": 100}}, clock=fake, time_limit=5))
    await fake.run_for(4)
    assert not task.done()
    await fake.run_for(1)
    assert await task is None


async def test_unknown_handler() -> None:
    message = await run({"tcpSocket": {"port": 1}})
    assert message is not None
    assert message.startswith("Cannot run handler: invalid handler")
