"""The per-container monitor: CRI log lines (partial entries, rotation), exit codes and signals,
start errors, and attach (stdin forwarding, output fan-out, resize, stdin_once)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from kybern.runtime import cri, crilog
from kybern.runtime.process import monitor
from tests.unit.runtime.conftest import Pod, eventually

pytestmark = pytest.mark.timeout(30)


def entries(path: Path) -> list[crilog.Entry]:
    parsed = [crilog.parse_line(line) for line in path.read_bytes().splitlines()]
    assert all(parsed)
    return [e for e in parsed if e is not None]


class TestLogWriter:
    def test_full_lines_per_stream(self, tmp_path: Path) -> None:
        log = monitor.LogWriter(str(tmp_path / "a" / "c.log"), 1 << 20, 5)
        log.write(b"stdout", b"one\ntw")
        log.write(b"stderr", b"oops\n")
        log.write(b"stdout", b"o\n")
        got = [(e.stream, e.partial, e.content) for e in entries(tmp_path / "a" / "c.log")]
        assert got == [
            (b"stdout", False, b"one"),
            (b"stderr", False, b"oops"),
            (b"stdout", False, b"two"),
        ]

    def test_timestamps_are_rfc3339_nanos(self, tmp_path: Path) -> None:
        log = monitor.LogWriter(str(tmp_path / "c.log"), 1 << 20, 5)
        log.write(b"stdout", b"x\n")
        (entry,) = entries(tmp_path / "c.log")
        assert len(entry.timestamp) == len(crilog.timestamp(0))
        assert entry.nanos > 0

    def test_long_line_becomes_partial_entries(self, tmp_path: Path) -> None:
        log = monitor.LogWriter(str(tmp_path / "c.log"), 1 << 22, 5)
        log.write(b"stdout", b"a" * (monitor.MAX_LINE * 2 + 10) + b"\n")
        got = [(e.partial, len(e.content)) for e in entries(tmp_path / "c.log")]
        assert got == [(True, monitor.MAX_LINE), (True, monitor.MAX_LINE), (False, 10)]

    def test_unterminated_output_is_flushed_at_the_end(self, tmp_path: Path) -> None:
        log = monitor.LogWriter(str(tmp_path / "c.log"), 1 << 20, 5)
        log.write(b"stdout", b"prompt> ")
        assert entries(tmp_path / "c.log") == []
        log.flush()
        assert [e.content for e in entries(tmp_path / "c.log")] == [b"prompt> "]

    def test_rotation_keeps_max_files(self, tmp_path: Path) -> None:
        path = tmp_path / "c.log"
        log = monitor.LogWriter(str(path), 200, 3)
        for i in range(40):
            log.write(b"stdout", b"line %02d\n" % i)
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["c.log", "c.log.1", "c.log.2"]
        assert all(p.stat().st_size <= 200 for p in tmp_path.iterdir())
        newest = [e.content for e in entries(path)]
        older = [e.content for e in entries(tmp_path / "c.log.1")]
        assert newest[-1] == b"line 39"
        assert int(older[-1].split()[1]) == int(newest[0].split()[1]) - 1  # .1 is the next older


class TestExit:
    async def test_completed(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "echo done")
        status = await pod.wait_exit(cid)
        assert (status.exit_code, status.reason) == (0, "Completed")
        assert status.finished_at >= status.started_at > 0
        assert pod.log(cid) == "done\n"

    async def test_error_code(self, pod: Pod) -> None:
        status = await pod.wait_exit(await pod.run("sh", "-c", "exit 3"))
        assert (status.exit_code, status.reason) == (3, "Error")

    async def test_killed_by_signal_reports_128_plus_signal(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "kill -9 $$")
        status = await pod.wait_exit(cid)
        assert (status.exit_code, status.reason) == (128 + signal.SIGKILL, "Error")

    async def test_missing_executable_is_a_start_error(self, pod: Pod) -> None:
        cid = await pod.create("no-such-binary-kybern")
        with pytest.raises(cri.RuntimeError_, match="no-such-binary-kybern") as err:
            await pod.rt.start_container(cid)
        assert err.value.reason == "RunContainerError"
        status = await pod.rt.container_status(cid)
        assert (status.state, status.exit_code, status.reason) == (
            cri.ContainerState.EXITED,
            128,
            "StartError",
        )
        assert "no-such-binary-kybern" in status.message
        assert "$PATH" in status.message

    async def test_output_without_newline_at_exit(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "printf partial; printf oops >&2")
        await pod.wait_exit(cid)
        assert sorted(pod.log(cid).split()) == ["oops", "partial"]


class TestAttach:
    async def test_stdin_and_output(self, pod: Pod) -> None:
        cid = await pod.run("cat", stdin=True)
        session = await pod.rt.attach(cid, tty=False, stdin=True)
        await session.write_stdin(b"hello\n")
        assert await session.read_stdout() == b"hello\n"
        await session.close_stdin()
        assert await asyncio.wait_for(session.wait(), 10) == 0
        await session.close()
        assert pod.log(cid) == "hello\n"

    async def test_two_clients_see_the_output(self, pod: Pod) -> None:
        cid = await pod.run("cat", stdin=True)
        first = await pod.rt.attach(cid, tty=False, stdin=True)
        second = await pod.rt.attach(cid, tty=False, stdin=False)
        await eventually(lambda: _clients_connected(pod, cid, 2))
        await first.write_stdin(b"x\n")
        assert await second.read_stdout() == b"x\n"
        assert await first.read_stdout() == b"x\n"
        await second.close()
        await first.close()

    async def test_stdin_once_closes_stdin_when_the_first_client_leaves(self, pod: Pod) -> None:
        cid = await pod.run("cat", stdin=True, stdin_once=True)
        session = await pod.rt.attach(cid, tty=False, stdin=True)
        await session.write_stdin(b"bye\n")
        assert await session.read_stdout() == b"bye\n"
        await session.close()
        status = await pod.wait_exit(cid)
        assert status.exit_code == 0

    async def test_tty_resize(self, pod: Pod) -> None:
        cid = await pod.run("sh", "-c", "read x; stty size", tty=True, stdin=True)
        session = await pod.rt.attach(cid, tty=True, stdin=True)
        await session.resize(cri.TerminalSize(width=101, height=42))
        await session.write_stdin(b"go\n")
        await pod.wait_log(cid, "42 101")
        assert await asyncio.wait_for(session.wait(), 10) == 0
        await session.close()

    async def test_attach_to_an_exited_container_fails(self, pod: Pod) -> None:
        cid = await pod.run("true")
        await pod.wait_exit(cid)
        with pytest.raises(cri.RuntimeError_, match="not running"):
            await pod.rt.attach(cid, tty=False, stdin=False)


async def _clients_connected(pod: Pod, cid: str, n: int) -> bool:
    status = await pod.rt.container_status(cid)
    return status.state == cri.ContainerState.RUNNING and _monitor_sockets(pod, cid) >= n + 1


def _monitor_sockets(pod: Pod, cid: str) -> int:
    """How many sockets the monitor holds (its listener and one per attached client)."""
    record = (pod.rt.paths.container(cid) / "status").read_text()
    monitor_pid = int(dict(line.split("=", 1) for line in record.splitlines())["monitor_pid"])
    links = [fd.readlink().as_posix() for fd in Path(f"/proc/{monitor_pid}/fd").iterdir()]
    return sum(link.startswith("socket:") for link in links)


class TestLauncher:
    """``monitor.py --serve``: monitors forked from one interpreter, reported the same way."""

    @staticmethod
    async def start(sock: Path) -> asyncio.subprocess.Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            monitor.__file__,
            "--serve",
            str(sock),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 10) == b"ready\n"
        return proc

    @staticmethod
    async def launch(sock: Path, state_dir: Path) -> str:
        reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(str(state_dir).encode() + b"\n")
        out = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return out.decode()

    async def test_containers_start_through_the_launcher(self, pod: Pod, tmp_path: Path) -> None:
        sock = tmp_path / "launcher.sock"
        launcher = await self.start(sock)
        try:
            cid = await pod.create("sh", "-c", "echo from-launcher; exit 4")
            reply = await self.launch(sock, pod.rt.paths.container(cid))
            assert reply.startswith("ok ")
            status = await pod.wait_exit(cid)
            assert (status.exit_code, status.reason) == (4, "Error")
            assert pod.log(cid) == "from-launcher\n"
            missing = await pod.create("no-such-binary-kybern")
            reply = await self.launch(sock, pod.rt.paths.container(missing))
            assert reply.startswith("error ")
            assert "no-such-binary-kybern" in reply
            reply = await self.launch(sock, tmp_path / "no-such-dir")
            assert reply.startswith("error ")
        finally:
            assert launcher.stdin is not None
            launcher.stdin.close()  # the agent is gone: the launcher goes too
            assert await asyncio.wait_for(launcher.wait(), 10) == 0
        assert not sock.exists()

    async def test_a_launched_monitor_outlives_the_launcher(self, pod: Pod, tmp_path: Path) -> None:
        sock = tmp_path / "launcher.sock"
        launcher = await self.start(sock)
        cid = await pod.create("sleep", "30")
        assert (await self.launch(sock, pod.rt.paths.container(cid))).startswith("ok ")
        assert launcher.stdin is not None
        launcher.stdin.close()
        await asyncio.wait_for(launcher.wait(), 10)
        status = await pod.rt.container_status(cid)
        assert status.state is cri.ContainerState.RUNNING
        await pod.rt.stop_container(cid, 0)
        assert (await pod.rt.container_status(cid)).exit_code == 128 + signal.SIGKILL
