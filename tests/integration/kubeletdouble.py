"""Test doubles for the kubelet's HTTPS server: a runtime whose exec runs a real local
subprocess (with a pseudo-terminal for TTY sessions), whose port-forward dials 127.0.0.1, and a
PodLookup backed by a dict. Used by test_kubelet_server.py and test_pod_proxy.py."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import signal
import struct
import termios
from dataclasses import dataclass, field
from pathlib import Path

from kybern.kubelet import podlookup
from kybern.runtime import cri


class PipeSession:
    """An exec without a TTY: the command's stdin, stdout and stderr are pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def write_stdin(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        with contextlib.suppress(ConnectionError):
            await self.proc.stdin.drain()

    async def close_stdin(self) -> None:
        if self.proc.stdin is not None and not self.proc.stdin.is_closing():
            self.proc.stdin.close()

    async def read_stdout(self) -> bytes:
        assert self.proc.stdout is not None
        return await self.proc.stdout.read(65536)

    async def read_stderr(self) -> bytes:
        assert self.proc.stderr is not None
        return await self.proc.stderr.read(65536)

    async def resize(self, size: cri.TerminalSize) -> None:
        return None

    async def wait(self) -> int:
        return await self.proc.wait()

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()


class TTYSession:
    """An exec with a TTY: the command runs on a pseudo-terminal (stdout carries both streams)."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int) -> None:
        self.proc = proc
        self.master = master
        self.sizes: list[cri.TerminalSize] = []

    async def write_stdin(self, data: bytes) -> None:
        await asyncio.to_thread(os.write, self.master, data)

    async def close_stdin(self) -> None:
        with contextlib.suppress(OSError):
            await asyncio.to_thread(os.write, self.master, b"\x04")  # ^D: EOF on the terminal

    async def read_stdout(self) -> bytes:
        try:
            return await asyncio.to_thread(os.read, self.master, 65536)
        except OSError:  # EIO once the last holder of the terminal's other side is gone
            return b""

    async def read_stderr(self) -> bytes:
        return b""

    async def resize(self, size: cri.TerminalSize) -> None:
        self.sizes.append(size)
        fcntl.ioctl(
            self.master, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0)
        )

    async def wait(self) -> int:
        return await self.proc.wait()

    async def close(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            await self.proc.wait()
        with contextlib.suppress(OSError):
            os.close(self.master)


class TCPStream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self) -> bytes:
        return await self.reader.read(65536)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close_write(self) -> None:
        if self.writer.can_write_eof():
            self.writer.write_eof()

    async def close(self) -> None:
        self.writer.close()


@dataclass
class LocalRuntime:
    """exec: the command on this machine; attach: ``attach_command``; port-forward: 127.0.0.1."""

    attach_command: tuple[str, ...] = ("sh", "-c", "echo attached; cat")
    sessions: list[PipeSession | TTYSession] = field(default_factory=list)
    forwarded: list[tuple[str, int]] = field(default_factory=list)

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> cri.StreamSession:
        if tty:
            master, slave = os.openpty()
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True
            )
            os.close(slave)
            session: PipeSession | TTYSession = TTYSession(proc, master)
        else:
            try:
                proc = await asyncio.create_subprocess_exec(
                    *cmd,
                    stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                )
            except FileNotFoundError as exc:
                raise cri.RuntimeError_(f"exec: {exc}") from None
            session = PipeSession(proc)
        self.sessions.append(session)
        return session

    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> cri.StreamSession:
        return await self.exec(container_id, list(self.attach_command), tty=tty, stdin=stdin)

    async def port_forward(self, sandbox_id: str, port: int) -> cri.PortStream:
        self.forwarded.append((sandbox_id, port))
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError as exc:
            raise cri.RuntimeError_(f"dial tcp 127.0.0.1:{port}: {exc.strerror}") from None
        return TCPStream(reader, writer)


@dataclass
class Lookup:
    """``containers[(ns, pod)] = {name: ContainerRef}`` in spec order; sandboxes by pod."""

    containers: dict[tuple[str, str], dict[str, podlookup.ContainerRef]] = field(
        default_factory=dict
    )

    def add(
        self,
        namespace: str,
        pod: str,
        name: str,
        log_dir: Path,
        *,
        running: bool = True,
        previous: bool = False,
    ) -> podlookup.ContainerRef:
        ref = podlookup.ContainerRef(
            container_id=f"{pod}-{name}",
            sandbox_id=f"sandbox-{pod}",
            log_path=log_dir / f"{name}.log",
            previous_log_path=log_dir / f"{name}.prev.log" if previous else None,
            running=running,
        )
        self.containers.setdefault((namespace, pod), {})[name] = ref
        return ref

    def set_running(self, namespace: str, pod: str, name: str, running: bool) -> None:
        ref = self.containers[(namespace, pod)][name]
        self.containers[(namespace, pod)][name] = podlookup.ContainerRef(
            ref.container_id, ref.sandbox_id, ref.log_path, ref.previous_log_path, running
        )

    def container(
        self, namespace: str, pod: str, container: str, *, uid: str = ""
    ) -> podlookup.ContainerRef | None:
        refs = self.containers.get((namespace, pod), {})
        if not container:
            return next(iter(refs.values())) if len(refs) == 1 else None
        return refs.get(container)

    def container_names(self, namespace: str, pod: str) -> list[str]:
        return list(self.containers.get((namespace, pod), {}))

    def sandbox(self, namespace: str, pod: str, *, uid: str = "") -> str | None:
        refs = self.containers.get((namespace, pod))
        return f"sandbox-{pod}" if refs else None
