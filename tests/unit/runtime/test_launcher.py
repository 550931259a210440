"""Container monitors forked by the launcher: containers start through it, it is restarted
when it dies, a long state directory path works, and containers outlive it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from kybern.runtime import cri, registry, statedir
from kybern.runtime.process import ProcessRuntime, create

from .conftest import Pod, eventually

pytestmark = pytest.mark.timeout(60)


def launcher_pid(rt: ProcessRuntime) -> int:
    assert rt.launcher is not None
    assert rt.launcher._proc is not None
    return rt.launcher._proc.pid


def monitor_pid(rt: ProcessRuntime, container_id: str) -> int:
    return int(statedir.read_status(rt.paths.status(container_id))["monitor_pid"])


async def test_containers_start_through_the_launcher_and_outlive_it(pod: Pod) -> None:
    rt = pod.rt
    first = await pod.run("sh", "-c", "echo one; sleep 30")
    await pod.wait_log(first, "one")
    launcher = launcher_pid(rt)
    second = await pod.run("sh", "-c", "echo two; sleep 30")
    await pod.wait_log(second, "two")
    assert launcher_pid(rt) == launcher  # one launcher for every start
    # the monitors are not the launcher's children (they must survive it)
    for cid in (first, second):
        assert parent_of(monitor_pid(rt, cid)) != launcher
    assert rt.launcher is not None
    await rt.launcher.close()
    assert _gone(launcher)
    for cid in (first, second):
        assert (await rt.container_status(cid)).state == cri.ContainerState.RUNNING


async def test_a_dead_launcher_is_started_again(pod: Pod) -> None:
    rt = pod.rt
    await pod.wait_log(await pod.run("sh", "-c", "echo a; sleep 30"), "a")
    old = launcher_pid(rt)
    os.kill(old, signal.SIGKILL)
    assert rt.launcher is not None
    assert rt.launcher._proc is not None
    await rt.launcher._proc.wait()
    await pod.wait_log(await pod.run("sh", "-c", "echo b; sleep 30"), "b")
    assert launcher_pid(rt) != old


async def test_a_state_directory_longer_than_a_socket_path(tmp_path: Path) -> None:
    root = tmp_path / ("d" * 60) / ("e" * 60) / "rt"
    rt = create(registry.Options(root=root, node_ip="10.1.2.3"))
    await rt.start()
    try:
        config = cri.PodSandboxConfig(metadata=cri.PodMeta("p", "default", "uid-9"))
        pod = Pod(rt, await rt.run_pod_sandbox(config), config, tmp_path / "logs")
        cid = await pod.run("sh", "-c", "echo long; sleep 30")
        await pod.wait_log(cid, "long")
        assert rt.launcher is not None  # it did not fall back to direct starts
        await eventually(lambda: _running(rt, cid))
    finally:
        for status in await rt.list_containers():
            await rt.remove_container(status.id)
        await rt.close()


async def _running(rt: ProcessRuntime, cid: str) -> bool:
    return (await rt.container_status(cid)).state == cri.ContainerState.RUNNING


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().split()[3])
