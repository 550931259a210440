"""Starting container monitors through one long-lived launcher (``monitor.py --serve``).

Starting ``python monitor.py <dir>`` per container costs an interpreter start, 6-10 ms of CPU:
most of a container start on a busy node (100 pods at once: ~13 ms of monitor CPU per pod).
The launcher is that interpreter started once; per container it forks a monitor, which costs
well under a millisecond and shares the launcher's memory pages.

The launcher listens on a unix socket in the runtime's state directory (only the agent's
user can reach it there: a request names a state dir whose spec the monitor runs). It binds
a relative name, run from that directory, and the agent connects through
``/proc/self/fd/<dir fd>/`` so the path stays short whatever the state directory's length
(unix socket paths are limited to 108 bytes). One request per connection: the state dir and
a newline; the reply, up to EOF, is what a monitor started directly prints (``ok <pid>`` or
``error <message>``). The launcher exits when its stdin (a pipe from the agent) reaches EOF,
so a restarted agent never gets monitors forked from old code; monitors already started are
not its children any more and live on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

SOCKET = "launcher.sock"
READY_TIMEOUT = 10.0  # seconds for the launcher to bind its socket


class LauncherError(Exception):
    """The launcher could not be started."""


class Launcher:
    def __init__(self, script: str, directory: Path, *, timeout: float) -> None:
        self.script = script  # monitor.py
        self.directory = directory  # where the socket lives (the runtime's state dir)
        self.timeout = timeout  # seconds for one monitor to report its start
        self._proc: asyncio.subprocess.Process | None = None
        self._dir_fd: int | None = None
        self._lock = asyncio.Lock()

    async def start_monitor(self, state_dir: Path) -> str:
        """Fork a monitor for ``state_dir``; its report (``ok <pid>`` / ``error ...``).

        Raises :class:`LauncherError` when no launcher can run and OSError when it cannot be
        reached (nothing was asked: the caller may start the monitor another way); once the
        request is sent, a failure is reported, never retried (a monitor may be running)."""
        path = await self._ensure()
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            writer.write(str(state_dir).encode() + b"\n")
            await writer.drain()
            out = await asyncio.wait_for(reader.read(), self.timeout)
        except TimeoutError:
            return f"error the monitor did not report within {self.timeout}s"
        except OSError as exc:
            return f"error the monitor launcher failed: {exc}"
        finally:
            writer.close()
        return out.decode(errors="replace")

    async def _ensure(self) -> str:
        """The socket path of a running launcher, started (again) if needed."""
        async with self._lock:
            if self._proc is None or self._proc.returncode is not None:
                await self._start()
            assert self._dir_fd is not None
            return f"/proc/self/fd/{self._dir_fd}/{SOCKET}"

    async def _start(self) -> None:
        if self._dir_fd is None:
            self._dir_fd = os.open(self.directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            self.script,
            "--serve",
            SOCKET,
            cwd=self.directory,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # a signal to the agent's group must not reach it
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), READY_TIMEOUT)
        except TimeoutError:
            line = b""
        if not line.startswith(b"ready"):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise LauncherError(f"the monitor launcher did not start: {line!r}")
        self._proc = proc

    async def close(self) -> None:
        """Stop the launcher (EOF on its stdin); monitors it started keep running."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            assert proc.stdin is not None
            proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._dir_fd is not None:
            os.close(self._dir_fd)
            self._dir_fd = None
