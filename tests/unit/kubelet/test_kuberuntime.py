"""PodSync against the fake runtime: sandbox, ordered starts, termination messages, kill."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kybern.kubelet import kuberuntime
from kybern.runtime import cri, fake


def node(tmp_path: Path) -> kuberuntime.Node:
    return kuberuntime.Node(
        name="n",
        ip="192.0.2.1",
        runtime_name="fake",
        log_root=tmp_path / "logs",
        pods_root=tmp_path / "pods",
    )


def pod(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "p", "namespace": "default", "uid": "u1"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "app", "image": "img"}], **spec},
    }


async def test_sync_creates_sandbox_then_container(tmp_path: Path) -> None:
    rt = fake.FakeRuntime()
    sync = kuberuntime.PodSync(rt, node(tmp_path))
    result = await sync.sync(pod())
    assert result.observed.sandbox is not None
    assert [c.metadata.name for c in result.observed.containers] == ["app"]
    assert [m for m, _ in rt.calls] == [
        "run_pod_sandbox",
        "pull_image",
        "create_container",
        "start_container",
    ]
    again = await sync.sync(pod())  # level-based: nothing more to do
    assert len(again.observed.containers) == 1
    assert rt.count("run_pod_sandbox") == 1


async def test_termination_message_file_and_log_fallback(tmp_path: Path) -> None:
    rt = fake.FakeRuntime()
    rt.log_lines["app"] = ["line one", "it broke"]
    sync = kuberuntime.PodSync(rt, node(tmp_path))
    spec = [{"name": "app", "image": "img", "terminationMessagePolicy": "FallbackToLogsOnError"}]
    await sync.sync(pod(containers=spec))
    (running,) = rt.running("app")
    rt.exit(running.id, 1)
    result = await sync.sync(pod(containers=spec))
    assert result.observed.messages[running.id] == "line one\nit broke"
    message_file = tmp_path / "pods" / "u1" / "containers" / "app" / "0-termination-log"
    message_file.write_text("from the file")
    result = await sync.sync(pod(containers=spec))
    assert result.observed.messages[running.id] == "from the file"


async def test_kill_stops_everything(tmp_path: Path) -> None:
    rt = fake.FakeRuntime()
    sync = kuberuntime.PodSync(rt, node(tmp_path))
    await sync.sync(pod())
    await sync.kill(pod(), grace=0, remove=True)
    assert await rt.list_pod_sandboxes() == []
    assert await rt.list_containers() == []


async def test_start_failure_is_run_container_error(tmp_path: Path) -> None:
    rt = fake.FakeRuntime()
    rt.start_errors["app"] = 'exec: "nope": executable file not found'
    sync = kuberuntime.PodSync(rt, node(tmp_path))
    result = await sync.sync(pod(restartPolicy="Always"))
    waiting = result.observed.waiting["app"]
    assert waiting.reason == "RunContainerError"
    assert "executable file not found" in waiting.message
    (c,) = result.observed.containers
    assert c.state is cri.ContainerState.EXITED


async def test_a_known_pod_is_looked_up_by_sandbox_id_not_by_listing(tmp_path: Path) -> None:
    rt = fake.FakeRuntime()
    lists = 0
    list_all = rt.list_pod_sandboxes

    async def counting() -> list[cri.PodSandboxStatus]:
        nonlocal lists
        lists += 1
        return await list_all()

    rt.list_pod_sandboxes = counting  # type: ignore[method-assign]
    sync = kuberuntime.PodSync(rt, node(tmp_path))
    await sync.sync(pod())
    assert lists == 1  # a new pod: its sandboxes (none yet) come from the list
    current = await sync.runtime_pod("u1")
    assert current.sandbox is not None
    await sync.sync(pod())
    assert lists == 1  # then by id: O(1), not O(pods on the node)


async def test_a_sandbox_removed_behind_its_back_is_found_again_by_listing(
    tmp_path: Path,
) -> None:
    rt = fake.FakeRuntime()
    sync = kuberuntime.PodSync(rt, node(tmp_path))
    await sync.sync(pod(restartPolicy="Always"))
    (sandbox,) = await rt.list_pod_sandboxes()
    await rt.remove_pod_sandbox(sandbox.id)
    assert (await sync.runtime_pod("u1")).sandboxes == []
    result = await sync.sync(pod(restartPolicy="Always"))  # a new sandbox, and it is known
    assert result.observed.sandbox is not None
    assert result.observed.sandbox.id != sandbox.id
    assert [s.id for s in (await sync.runtime_pod("u1")).sandboxes] == [result.observed.sandbox.id]
