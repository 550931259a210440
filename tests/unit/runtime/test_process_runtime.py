"""The process runtime: sandboxes, container lifecycle, stop/kill semantics, exec, port-forward,
stats, images and adoption by a new runtime object over the same state directory."""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from kybern.runtime import cri, registry
from kybern.runtime.process import ProcessRuntime, create
from tests.unit.runtime.conftest import Pod, eventually

pytestmark = pytest.mark.timeout(30)

IGNORE_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(60)"
)


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class TestSandbox:
    async def test_lifecycle(self, runtime: ProcessRuntime, pod: Pod) -> None:
        status = await runtime.pod_sandbox_status(pod.sandbox_id)
        assert status.state == cri.SandboxState.READY
        assert status.ip == "10.1.2.3"  # host network: the node IP
        assert status.metadata.name == "web"
        assert [s.id for s in await runtime.list_pod_sandboxes()] == [pod.sandbox_id]
        cid = await pod.run("sleep", "60")
        await runtime.stop_pod_sandbox(pod.sandbox_id)
        assert (await runtime.container_status(cid)).state == cri.ContainerState.EXITED
        status = await runtime.pod_sandbox_status(pod.sandbox_id)
        assert status.state == cri.SandboxState.NOTREADY
        await runtime.stop_pod_sandbox(pod.sandbox_id)  # repeatable
        await runtime.remove_pod_sandbox(pod.sandbox_id)
        await runtime.remove_pod_sandbox(pod.sandbox_id)
        assert await runtime.list_pod_sandboxes() == []
        assert await runtime.list_containers() == []
        with pytest.raises(cri.NotFoundError):
            await runtime.pod_sandbox_status(pod.sandbox_id)

    async def test_no_containers_in_a_stopped_sandbox(
        self, runtime: ProcessRuntime, pod: Pod
    ) -> None:
        await runtime.stop_pod_sandbox(pod.sandbox_id)
        with pytest.raises(cri.RuntimeError_, match="not ready"):
            await pod.create("true")


class TestContainer:
    async def test_lifecycle_and_status(self, runtime: ProcessRuntime, pod: Pod) -> None:
        cid = await pod.create("sleep", "60", labels={"a": "b"})
        status = await runtime.container_status(cid)
        assert status.state == cri.ContainerState.CREATED
        assert (status.image, status.image_ref, status.labels) == (
            "busybox",
            "process://busybox",
            {"a": "b"},
        )
        await runtime.start_container(cid)
        status = await runtime.container_status(cid)
        assert status.state == cri.ContainerState.RUNNING
        assert pid_alive(status.pid)
        with pytest.raises(cri.RuntimeError_, match="not CONTAINER_CREATED"):
            await runtime.start_container(cid)
        assert [c.id for c in await runtime.list_containers(pod.sandbox_id)] == [cid]
        assert await runtime.list_containers("other") == []
        await runtime.remove_container(cid)
        assert not pid_alive(status.pid)
        with pytest.raises(cri.NotFoundError):
            await runtime.container_status(cid)
        await runtime.remove_container(cid)

    async def test_command_is_required(self, pod: Pod) -> None:
        with pytest.raises(cri.RuntimeError_, match="`command` must be set") as err:
            await pod.create()
        assert err.value.reason == "CreateContainerError"

    async def test_env_and_default_working_dir(self, runtime: ProcessRuntime, pod: Pod) -> None:
        cid = await pod.run(
            "sh", "-c", 'echo "$FOO $HOSTNAME"; pwd', envs=(("FOO", "1"), ("FOO", "2"))
        )
        await pod.wait_exit(cid)
        assert pod.log(cid) == f"2 web\n{runtime.paths.pod_dir(pod.sandbox_id)}\n"

    async def test_working_dir(self, pod: Pod, tmp_path: Path) -> None:
        cid = await pod.run("pwd", working_dir=str(tmp_path))
        await pod.wait_exit(cid)
        assert pod.log(cid) == f"{tmp_path}\n"

    async def test_missing_working_dir_fails_the_start(self, pod: Pod, tmp_path: Path) -> None:
        cid = await pod.create("pwd", working_dir=str(tmp_path / "nope"))
        with pytest.raises(cri.RuntimeError_, match="working directory"):
            await pod.rt.start_container(cid)
        assert not (tmp_path / "nope").exists()

    async def test_stop_escalates_to_sigkill_after_the_grace_period(self, pod: Pod) -> None:
        cid = await pod.run(sys.executable, "-c", IGNORE_TERM)
        await pod.wait_log(cid, "ready")
        started = time.monotonic()
        await pod.rt.stop_container(cid, 0.5)
        assert time.monotonic() - started >= 0.5
        status = await pod.rt.container_status(cid)
        assert (status.state, status.exit_code, status.reason) == (
            cri.ContainerState.EXITED,
            137,
            "Error",
        )
        await pod.rt.stop_container(cid, 1)  # stopping a stopped container is fine

    async def test_stop_with_sigterm(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "60")
        started = time.monotonic()
        await pod.rt.stop_container(cid, 20)
        assert time.monotonic() - started < 5
        assert (await pod.rt.container_status(cid)).exit_code == 143

    async def test_stop_reaches_grandchildren(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "sleep 60 & echo $!; wait")
        grandchild = int((await pod.wait_log(cid, "\n")).strip())
        assert pid_alive(grandchild)
        await pod.rt.stop_container(cid, 5)
        await eventually(lambda: _async(not pid_alive(grandchild)))

    async def test_group_dies_with_the_main_process(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "sleep 60 & echo $!")
        grandchild = int((await pod.wait_log(cid, "\n")).strip())
        assert (await pod.wait_exit(cid)).exit_code == 0
        await eventually(lambda: _async(not pid_alive(grandchild)))


class TestExec:
    async def test_exec_sync(self, pod: Pod, tmp_path: Path) -> None:
        cid = await pod.run("sleep", "60", envs=(("GREETING", "hi"),), working_dir=str(tmp_path))
        result = await pod.rt.exec_sync(
            cid, ["sh", "-c", 'echo "$GREETING"; pwd; echo e >&2; exit 4']
        )
        assert result == cri.ExecResult(
            exit_code=4, stdout=f"hi\n{tmp_path}\n".encode(), stderr=b"e\n"
        )

    async def test_exec_sync_kill_after(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "60")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await pod.rt.exec_sync(cid, ["sh", "-c", "echo $$ > pid; sleep 30"], kill_after=0.3)
        assert time.monotonic() - started < 5
        pid = int((pod.rt.paths.pod_dir(pod.sandbox_id) / "pid").read_text())
        await eventually(lambda: _async(not pid_alive(pid)))

    async def test_exec_missing_command(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "60")
        with pytest.raises(cri.RuntimeError_, match="no-such-binary"):
            await pod.rt.exec_sync(cid, ["no-such-binary"])

    async def test_exec_in_an_exited_container_fails(self, pod: Pod) -> None:
        cid = await pod.run("true")
        await pod.wait_exit(cid)
        with pytest.raises(cri.RuntimeError_, match="not running"):
            await pod.rt.exec_sync(cid, ["true"])

    async def test_exec_stdin(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "60")
        session = await pod.rt.exec(
            cid, ["sh", "-c", "cat; echo err >&2; exit 3"], tty=False, stdin=True
        )
        await session.write_stdin(b"abc")
        await session.close_stdin()
        assert await session.read_stdout() == b"abc"
        assert await session.read_stderr() == b"err\n"
        assert await session.wait() == 3
        await session.close()

    async def test_exec_tty_with_resize(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "60")
        session = await pod.rt.exec(
            cid, ["sh", "-c", "read x; stty size; tty"], tty=True, stdin=True
        )
        await session.resize(cri.TerminalSize(width=120, height=50))
        await session.write_stdin(b"go\n")
        output = b""
        while chunk := await session.read_stdout():
            output += chunk
        assert b"50 120" in output
        assert b"/dev/pts/" in output
        assert await session.read_stderr() == b""
        assert await session.wait() == 0
        await session.close()

    async def test_exec_close_kills_the_command(self, pod: Pod) -> None:
        cid = await pod.run("sleep", "60")
        session = await pod.rt.exec(cid, ["sleep", "60"], tty=False, stdin=False)
        await session.close()
        assert await session.wait() == 137


class TestPortForward:
    async def test_http_server(self, pod: Pod) -> None:
        port = _free_port()
        await pod.run(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1")

        async def connect() -> cri.PortStream | None:
            try:
                return await pod.rt.port_forward(pod.sandbox_id, port)
            except cri.RuntimeError_:
                return None

        stream: cri.PortStream = await eventually(connect)
        await stream.write(b"GET / HTTP/1.0\r\n\r\n")
        await stream.close_write()
        response = b""
        while chunk := await stream.read():
            response += chunk
        await stream.close()
        assert response.startswith(b"HTTP/1.0 200")

    async def test_refused(self, pod: Pod) -> None:
        with pytest.raises(cri.RuntimeError_, match="failed to connect"):
            await pod.rt.port_forward(pod.sandbox_id, _free_port())


class TestStats:
    async def test_cpu_and_memory_of_the_group(self, pod: Pod) -> None:
        program = "x = bytearray(64 << 20); print('ready', flush=True)\nwhile True: pass"
        cid = await pod.run("sh", "-c", f'{sys.executable} -c "{program}"; true')

        async def busy() -> cri.ContainerStats | None:
            stats = await pod.rt.container_stats(cid)
            return stats if stats.cpu_usage_core_nanoseconds > 50_000_000 else None

        await pod.wait_log(cid, "ready")
        stats: cri.ContainerStats = await eventually(busy)
        assert stats.memory_rss_bytes > 64 << 20  # the grandchild python counts
        assert stats.memory_working_set_bytes == stats.memory_rss_bytes
        await pod.rt.stop_container(cid, 0)
        assert (await pod.rt.container_stats(cid)).cpu_usage_core_nanoseconds == 0


class TestImages:
    async def test_no_images_to_pull(self, runtime: ProcessRuntime) -> None:
        assert await runtime.image_status("nginx:1") is None
        assert await runtime.pull_image("nginx:1") == "process://nginx:1"
        image = await runtime.image_status("nginx:1")
        assert image is not None
        assert image.id == "process://nginx:1"
        assert [i.repo_tags for i in await runtime.list_images()] == [("nginx:1",)]
        await runtime.remove_image("nginx:1")
        await runtime.remove_image("nginx:1")
        assert await runtime.list_images() == []


class TestAdoption:
    async def test_new_runtime_finds_running_and_exited(self, pod: Pod, tmp_path: Path) -> None:
        running = await pod.run("sleep", "60")
        exited = await pod.run("sh", "-c", "exit 7")
        later = await pod.run("sh", "-c", "read x; exit 5", stdin=True)
        pid = (await pod.rt.container_status(running)).pid
        await pod.wait_exit(exited)

        again = create(registry.Options(root=pod.rt.options.root, node_ip="10.1.2.3"))
        await again.start()
        assert [s.id for s in await again.list_pod_sandboxes()] == [pod.sandbox_id]
        status = await again.container_status(running)
        assert (status.state, status.pid) == (cri.ContainerState.RUNNING, pid)
        assert (await again.container_status(exited)).exit_code == 7
        session = await again.attach(later, tty=False, stdin=True)
        await session.write_stdin(b"\n")
        assert await session.wait() == 5
        await session.close()
        assert (await again.container_status(later)).exit_code == 5
        await again.stop_container(running, 5)
        assert (await pod.rt.container_status(running)).exit_code == 143


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _async(value: bool) -> bool:
    return value


def test_factory_is_registered() -> None:
    runtime = registry.create("process", registry.Options(root=Path("/nonexistent")))
    assert isinstance(runtime, cri.Runtime)
    assert runtime.name == "process"
    assert os.path.basename(type(runtime).__module__) == "kybern.runtime.process.runtime"


@pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")
async def test_run_as_user(pod: Pod) -> None:
    security = cri.SecurityContext(run_as_user=65534, run_as_group=65534, supplemental_groups=(5,))
    # (the default working dir is under pytest's root-only tmp_path: use one nobody can enter)
    cid = await pod.run(
        "sh", "-c", "id -u; id -g; id -G; sleep 60", security=security, working_dir="/"
    )
    await pod.wait_log(cid, " 5\n")
    assert pod.log(cid).split()[:2] == ["65534", "65534"]
    result = await pod.rt.exec_sync(cid, ["sh", "-c", "id -u; id -G"])
    assert result.stdout.split() == [b"65534", b"65534", b"5"], result


async def test_stopping_the_container_ends_its_exec_sessions(pod: Pod) -> None:
    cid = await pod.run("sleep", "60")
    session = await pod.rt.exec(cid, ["sleep", "60"], tty=False, stdin=False)
    await pod.rt.stop_container(cid, 5)
    assert await session.wait() == 137
    await session.close()
