"""The bookkeeping shared by the monitored runtimes, through a stub subclass that starts no
monitor: adoption of records (and of broken ones), lookups, the order of the release hooks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from kybern.runtime import cri, monitored, registry, statedir
from kybern.runtime.oci import state

pytestmark = pytest.mark.timeout(30)


class Stub(monitored.MonitoredRuntime[state.SandboxRecord, state.ContainerRecord]):
    name = "stub"
    monitor_name = "stub-monitor"
    monitor_timeout = 1.0

    def __init__(self, root: Path) -> None:
        super().__init__(registry.Options(root=root))
        self.paths = state.Paths(root)
        self.calls: list[str] = []

    def _monitor_argv(self, directory: Path) -> list[str]:
        return ["-c", "print('error no monitor here')"]

    def _signal(self, pid: int, sig: int) -> None:
        self.calls.append(f"signal {sig}")

    async def _spawn(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> cri.StreamSession:
        raise AssertionError("not used")

    def _sandbox_ip(self, record: state.SandboxRecord) -> str:
        return record.ip

    def _image_ref(self, record: state.ContainerRecord) -> str:
        return record.image_ref

    async def _sandbox_stopped(self, record: state.SandboxRecord) -> None:
        self.calls.append(f"sandbox stopped ready={record.ready}")

    async def _release_sandbox(self, record: state.SandboxRecord) -> None:
        self.calls.append(f"release sandbox {record.id}")

    async def _stopped(self, container_id: str) -> None:
        self.calls.append(f"stopped {container_id}")

    async def _release_container(self, record: state.ContainerRecord) -> None:
        self.calls.append(f"release container {record.id}")

    def add(self) -> tuple[str, str]:
        self._adopt(state.SandboxRecord, state.ContainerRecord)
        sandbox = state.SandboxRecord(
            id="s1", metadata=cri.PodMeta(name="web", namespace="ns", uid="u"), created_at=1
        )
        sandbox.ip = "10.0.0.9"
        self.paths.sandbox("s1").mkdir(parents=True)
        sandbox.save(self.paths)
        self.sandboxes["s1"] = sandbox
        container = state.ContainerRecord(
            id="c1",
            sandbox_id=self._ready_sandbox("s1").id,
            metadata=cri.ContainerMeta(name="app"),
            image="img",
            image_ref="sha256:1",
            created_at=time.time_ns(),
            log_path="",
            cgroups_path="",
        )
        self.paths.container("c1").mkdir(parents=True)
        self._add_container(container)
        return "s1", "c1"


async def test_adopt_lookup_and_release_order(tmp_path: Path) -> None:
    rt = Stub(tmp_path)
    sandbox_id, container_id = rt.add()
    (rt.paths.container("broken")).mkdir()
    (rt.paths.container("broken") / "record.json").write_text("{not json")

    again = Stub(tmp_path)
    again._adopt(state.SandboxRecord, state.ContainerRecord)
    assert list(again.containers) == [container_id]  # the broken record is skipped
    status = await again.container_status(container_id)
    assert (status.state, status.image_ref) == (cri.ContainerState.CREATED, "sha256:1")
    assert (await again.pod_sandbox_status(sandbox_id)).ip == "10.0.0.9"
    with pytest.raises(cri.NotFoundError):
        await again.container_status("nope")

    await again.remove_pod_sandbox(sandbox_id)
    await again.remove_pod_sandbox(sandbox_id)  # twice is fine
    assert again.calls == [
        f"stopped {container_id}",  # not running: no signal
        "sandbox stopped ready=True",
        f"stopped {container_id}",  # remove_container stops again
        f"release container {container_id}",
        f"release sandbox {sandbox_id}",
    ]
    assert not again.paths.sandbox(sandbox_id).exists()
    assert not again.paths.container(container_id).exists()


async def test_start_reports_the_monitors_error(tmp_path: Path) -> None:
    rt = Stub(tmp_path)
    _, container_id = rt.add()
    with pytest.raises(cri.RuntimeError_, match="failed to start container c1: no monitor here"):
        await rt.start_container(container_id)
    assert (rt.paths.container(container_id) / "stub-monitor.log").exists()


async def test_not_ready_sandbox_refuses_containers(tmp_path: Path) -> None:
    rt = Stub(tmp_path)
    sandbox_id, _ = rt.add()
    await rt.stop_pod_sandbox(sandbox_id)
    with pytest.raises(cri.RuntimeError_, match="not ready") as err:
        rt._ready_sandbox(sandbox_id)
    assert err.value.reason == "CreateContainerError"
    assert statedir.read_status(rt.paths.status("c1")) == {}
