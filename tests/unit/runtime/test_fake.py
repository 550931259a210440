"""The fake runtime: containers run until stopped or told to exit; calls are recorded."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kybern.client import clock as clock_
from kybern.runtime import cri, crilog, fake, registry


def sandbox_config(uid: str = "u1", **extra: object) -> cri.PodSandboxConfig:
    return cri.PodSandboxConfig(metadata=cri.PodMeta("p", "default", uid), **extra)  # type: ignore[arg-type]


def container_config(name: str = "app", **extra: object) -> cri.ContainerConfig:
    return cri.ContainerConfig(
        metadata=cri.ContainerMeta(name),
        image="busybox",
        labels={"k": "v"},
        **extra,  # type: ignore[arg-type]
    )


async def until_sleeping(clock: clock_.FakeClock) -> None:
    """Until some task waits on the clock (the stop's grace period)."""
    while True:
        if clock.sleepers:
            return
        await asyncio.sleep(0)


async def started(rt: fake.FakeRuntime, name: str = "app") -> tuple[str, str]:
    sb = await rt.run_pod_sandbox(sandbox_config())
    cid = await rt.create_container(sb, container_config(name), sandbox_config())
    await rt.start_container(cid)
    return sb, cid


async def test_container_runs_until_told_to_exit() -> None:
    rt = fake.FakeRuntime()
    _, cid = await started(rt)
    status = await rt.container_status(cid)
    assert status.state is cri.ContainerState.RUNNING
    assert status.started_at > 0
    assert status.labels == {"k": "v"}
    assert status.image_ref == fake.image_id("busybox")
    rt.exit(cid, 3)
    status = await rt.container_status(cid)
    assert status.state is cri.ContainerState.EXITED
    assert (status.exit_code, status.reason) == (3, "Error")
    assert [c for c, _ in rt.calls] == [
        "run_pod_sandbox",
        "create_container",
        "start_container",
    ]


async def test_sigterm_honoured_or_killed_after_grace() -> None:
    clock = clock_.FakeClock()
    rt = fake.FakeRuntime(clock=clock)
    _, cid = await started(rt)
    await rt.stop_container(cid, 30)
    assert (await rt.container_status(cid)).exit_code == fake.SIGTERM_EXIT
    rt.ignore_sigterm.add("stubborn")
    _, cid = await started(rt, "stubborn")
    stop = asyncio.create_task(rt.stop_container(cid, 5))
    async with asyncio.timeout(5):
        await until_sleeping(clock)
    clock.advance(4)
    await asyncio.sleep(0)
    assert not stop.done()
    clock.advance(1)
    async with asyncio.timeout(5):
        await stop
    status = await rt.container_status(cid)
    assert status.exit_code == fake.SIGKILL_EXIT
    assert ("kill_container", "stubborn") in rt.calls


async def test_failures_on_demand() -> None:
    rt = fake.FakeRuntime()
    rt.pull_errors["bad"] = "no such image"
    with pytest.raises(cri.ImagePullError, match="no such image"):
        await rt.pull_image("bad")
    assert await rt.pull_image("good") == fake.image_id("good")
    assert await rt.image_status("good") is not None
    rt.start_errors["app"] = "exec: not found"
    sb = await rt.run_pod_sandbox(sandbox_config())
    cid = await rt.create_container(sb, container_config(), sandbox_config())
    with pytest.raises(cri.RuntimeError_, match="not found"):
        await rt.start_container(cid)
    status = await rt.container_status(cid)
    assert status.reason == "ContainerCannotRun"
    assert status.state is cri.ContainerState.EXITED
    with pytest.raises(cri.NotFoundError):
        await rt.container_status("nope")


async def test_sandbox_stop_kills_and_remove_forgets() -> None:
    rt = fake.FakeRuntime()
    sb, cid = await started(rt)
    assert (await rt.pod_sandbox_status(sb)).ip.startswith("10.88.0.")
    await rt.stop_pod_sandbox(sb)
    assert (await rt.container_status(cid)).state is cri.ContainerState.EXITED
    assert (await rt.pod_sandbox_status(sb)).state is cri.SandboxState.NOTREADY
    await rt.stop_pod_sandbox(sb)  # repeatable
    await rt.remove_pod_sandbox(sb)
    assert await rt.list_pod_sandboxes() == []
    assert await rt.list_containers() == []


async def test_exec_and_logs(tmp_path: Path) -> None:
    rt = fake.FakeRuntime()
    rt.exec_results["cat"] = cri.ExecResult(0, b"ok", b"")
    rt.log_lines["app"] = ["hello"]
    sb = await rt.run_pod_sandbox(sandbox_config())
    log = tmp_path / "app" / "0.log"
    cid = await rt.create_container(sb, container_config(log_path=str(log)), sandbox_config())
    await rt.start_container(cid)
    assert (await rt.exec_sync(cid, ["cat", "/x"])).stdout == b"ok"
    session = await rt.exec(cid, ["cat"], tty=False, stdin=False)
    assert await session.read_stdout() == b"ok"
    assert await session.wait() == 0
    entry = crilog.parse_line(log.read_bytes())
    assert entry is not None
    assert entry.content == b"hello"


def test_registry_factory(tmp_path: Path) -> None:
    rt = registry.create("fake", registry.Options(root=tmp_path))
    assert isinstance(rt, cri.Runtime)
    assert rt.name == "fake"
