"""Streaming for the process runtime: exec (pipes or a pty), attach (the monitor's socket), and
port-forward (pods use the host network, so a pod port is 127.0.0.1:<port>).

Sessions satisfy :class:`kybern.runtime.cri.StreamSession` / :class:`cri.PortStream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import struct
import termios
from pathlib import Path

from kybern.runtime import cri

# attach framing, shared with monitor.py: 1 type byte, 4-byte big-endian length, payload
FRAME_STDIN, FRAME_CLOSE, FRAME_RESIZE, FRAME_HELLO = b"i", b"c", b"r", b"h"
FRAME_STDOUT, FRAME_STDERR, FRAME_EXIT = b"o", b"e", b"x"
CHUNK = 32 * 1024


def kill_group(pid: int, sig: int = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def set_window(fd: int, size: cri.TerminalSize) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))


def _take_terminal() -> None:  # in the exec child after setsid: the pty becomes its terminal
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


async def spawn(
    argv: list[str], *, env: dict[str, str], cwd: str | None, tty: bool, stdin: bool
) -> ExecSession:
    """Start ``argv`` in its own session (so killing the group reaches its children)."""
    if not tty:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            env=env,
            cwd=cwd,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        return PipeSession(proc)
    master, slave = os.openpty()
    # The command needs the pty as its controlling terminal: setsid(1) --ctty does that when
    # it exists; preexec_fn (unsupported in this order by uvloop) is the fallback.
    setsid = shutil.which("setsid")
    try:
        proc = await asyncio.create_subprocess_exec(
            *([setsid, "--ctty", *argv] if setsid else argv),
            env=env,
            cwd=cwd,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            start_new_session=not setsid,
            preexec_fn=None if setsid else _take_terminal,
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return PtySession(proc, master)


class PipeSession:
    """exec without a TTY: separate stdout and stderr pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    def running(self) -> bool:
        return self.proc.returncode is None

    async def write_stdin(self, data: bytes) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()

    async def read_stdout(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(CHUNK)

    async def read_stderr(self) -> bytes:
        assert self.proc.stderr is not None
        return await self.proc.stderr.read(CHUNK)

    async def resize(self, size: cri.TerminalSize) -> None:
        return None

    async def wait(self) -> int:
        return _exit_code(await self.proc.wait())

    async def close(self) -> None:
        if self.proc.returncode is None:
            kill_group(self.proc.pid)
            await self.proc.wait()


class PtySession:
    """exec with a TTY: one pty master carries stdin and the merged output."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc, self.master = proc, master
        os.set_blocking(master, False)
        self.output: asyncio.Queue[bytes] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(master, self._readable)

    def running(self) -> bool:
        return self.proc.returncode is None

    def _readable(self) -> None:
        try:
            data = os.read(self.master, CHUNK)
        except BlockingIOError:
            return
        except OSError:  # EIO: every slave side is closed
            data = b""
        if not data:
            self.loop.remove_reader(self.master)
        self.output.put_nowait(data)

    async def write_stdin(self, data: bytes) -> None:
        while data:
            try:
                data = data[os.write(self.master, data) :]
            except BlockingIOError:
                await asyncio.sleep(0.01)  # the pty buffer is full: the program is not reading
            except OSError:
                return

    async def close_stdin(self) -> None:
        await self.write_stdin(b"\x04")  # EOF at the terminal's line discipline

    async def read_stdout(self) -> bytes:
        data = await self.output.get()
        if not data:
            self.output.put_nowait(b"")  # stay at end of stream
        return data

    async def read_stderr(self) -> bytes:
        return b""

    async def resize(self, size: cri.TerminalSize) -> None:
        with contextlib.suppress(OSError):
            set_window(self.master, size)

    async def wait(self) -> int:
        return _exit_code(await self.proc.wait())

    async def close(self) -> None:
        if self.proc.returncode is None:
            kill_group(self.proc.pid)
            await self.proc.wait()
        self.loop.remove_reader(self.master)
        with contextlib.suppress(OSError):
            os.close(self.master)


ExecSession = PipeSession | PtySession


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


# --- attach ------------------------------------------------------------------------------


def _frame(kind: bytes, payload: bytes) -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


async def attach(state_dir: Path, *, stdin: bool) -> AttachSession:
    """Connect to a running container's monitor (see monitor.py)."""
    path = state_dir / "attach.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dir_fd = os.open(state_dir, os.O_RDONLY)
    try:
        sock.setblocking(False)
        # unix socket paths are limited to 107 bytes; /proc/self/fd/N/... is always short
        await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{dir_fd}/attach.sock")
    except OSError as err:
        sock.close()
        raise cri.RuntimeError_(
            f"cannot attach: the container is not running ({path}: {err.strerror})",
            reason="AttachError",
        ) from err
    finally:
        os.close(dir_fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    session = AttachSession(reader, writer)
    writer.write(_frame(FRAME_HELLO, b"stdin" if stdin else b""))
    return session


class AttachSession:
    """The container's own stdio through its monitor; closing only detaches."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.stdout: asyncio.Queue[bytes] = asyncio.Queue()
        self.stderr: asyncio.Queue[bytes] = asyncio.Queue()
        self.exit: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.task = asyncio.create_task(self._demux())

    async def _demux(self) -> None:
        try:
            while True:
                header = await self.reader.readexactly(5)
                payload = await self.reader.readexactly(int.from_bytes(header[1:5], "big"))
                kind = header[:1]
                if kind == FRAME_STDOUT:
                    self.stdout.put_nowait(payload)
                elif kind == FRAME_STDERR:
                    self.stderr.put_nowait(payload)
                elif kind == FRAME_EXIT and not self.exit.done():
                    self.exit.set_result(int(payload))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.stdout.put_nowait(b"")
            self.stderr.put_nowait(b"")
            if not self.exit.done():
                self.exit.set_exception(cri.RuntimeError_("detached from the container"))

    async def _send(self, kind: bytes, payload: bytes) -> None:
        if self.writer.is_closing():
            return
        self.writer.write(_frame(kind, payload))
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def write_stdin(self, data: bytes) -> None:
        await self._send(FRAME_STDIN, data)

    async def close_stdin(self) -> None:
        await self._send(FRAME_CLOSE, b"")

    async def _read(self, queue: asyncio.Queue[bytes]) -> bytes:
        data = await queue.get()
        if not data:
            queue.put_nowait(b"")
        return data

    async def read_stdout(self) -> bytes:
        return await self._read(self.stdout)

    async def read_stderr(self) -> bytes:
        return await self._read(self.stderr)

    async def resize(self, size: cri.TerminalSize) -> None:
        await self._send(FRAME_RESIZE, f"{size.width} {size.height}".encode())

    async def wait(self) -> int:
        return await asyncio.shield(self.exit)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
        await self.task
        if self.exit.done() and not self.exit.cancelled():
            self.exit.exception()  # retrieved: no "exception never retrieved" warning


# --- port-forward ------------------------------------------------------------------------


async def connect_port(host: str, port: int) -> TcpPortStream:
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as err:
        raise cri.RuntimeError_(
            f"failed to connect to {host}:{port}: {err.strerror or err}", reason="PortForwardError"
        ) from err
    return TcpPortStream(reader, writer)


class TcpPortStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self) -> bytes:
        try:
            return await self.reader.read(CHUNK)
        except ConnectionError:
            return b""

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close_write(self) -> None:
        if self.writer.can_write_eof():
            self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()
