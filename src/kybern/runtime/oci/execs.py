"""exec into an oci container: ``runc exec`` as a stream session that can really be killed.

``runc exec`` runs the command inside the container (its namespaces, cgroup, user, env and cwd
from the bundle's config.json) and stays its parent, relaying stdio (or a pty with ``--tty``).
Killing runc alone would leave the command running in the container, so every exec records the
command's host pid (``--pid-file``) and :meth:`ContainerExec.close` SIGKILLs it first: a timed
out probe leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from kybern.runtime import cri
from kybern.runtime.process import streams

REAP_SECONDS = 2.0


class ContainerExec:
    def __init__(self, inner: streams.PipeSession | streams.PtySession, pid_file: Path) -> None:
        self.inner, self.pid_file = inner, pid_file

    async def write_stdin(self, data: bytes) -> None:
        await self.inner.write_stdin(data)

    async def close_stdin(self) -> None:
        await self.inner.close_stdin()

    async def read_stdout(self) -> bytes:
        return await self.inner.read_stdout()

    async def read_stderr(self) -> bytes:
        return await self.inner.read_stderr()

    async def resize(self, size: cri.TerminalSize) -> None:
        await self.inner.resize(size)

    async def wait(self) -> int:
        code = await self.inner.wait()
        self.pid_file.unlink(missing_ok=True)
        return code

    async def close(self) -> None:
        if self.inner.running():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(self.pid_file.read_text().strip()), signal.SIGKILL)
            # runc reaps the command and exits by itself; killing runc first would orphan a
            # zombie in the container's PID namespace and hold up the container's own exit
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.inner.wait(), REAP_SECONDS)
        await self.inner.close()
        self.pid_file.unlink(missing_ok=True)


async def start(argv: list[str], pid_file: Path, *, tty: bool, stdin: bool) -> ContainerExec:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
    inner = await streams.spawn(argv, env=env, cwd=None, tty=tty, stdin=stdin)
    return ContainerExec(inner, pid_file)
