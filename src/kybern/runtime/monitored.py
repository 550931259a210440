"""The bookkeeping shared by runtimes whose containers each run under a monitor process.

Both the ``process`` and the ``oci`` runtime start every container through a per-container
monitor (``process/monitor.py``; the oci shim builds on it) that outlives the agent, writes the
container's output to its CRI log and records pid, start and exit in the container's ``status``
file (:mod:`kybern.runtime.statedir`). :class:`MonitoredRuntime` is the part of the CRI they
share around that monitor:

- records: sandboxes and containers kept in memory and on disk, adopted again by ``start()``
  after an agent restart; lookups raise :class:`cri.NotFoundError`; removing twice is fine.
- start: under the container's lock, only from CONTAINER_CREATED, by launching the monitor and
  reading its first line (``ok <pid>`` or ``error <message>``).
- status: read from the status file on every call; liveness of the container's main process
  or its monitor (pid + start time, so a reused pid does not count).
- stop: SIGTERM, SIGKILL after the grace period, then wait for the monitor to record the exit
  (polling the status file, 2 ms doubling to 50 ms).
- exec, exec_sync and attach around the runtime's own way of spawning a command.

A runtime subclass supplies what is its own: how sandboxes and containers are made, how the
monitor is launched (:meth:`_monitor_argv`), how a container is signalled (:meth:`_signal`),
how a command is spawned in it (:meth:`_spawn`), and hooks to release what it set up.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ClassVar, Generic, TypeVar

from kybern.runtime import cri, registry, statedir

S = TypeVar("S", bound=statedir.SandboxRecord)
C = TypeVar("C", bound=statedir.ContainerRecord)

KILL_WAIT = 30.0  # how long to wait for the exit after SIGKILL


class MonitoredRuntime(abc.ABC, Generic[S, C]):
    name: ClassVar[str]
    monitor_name: ClassVar[str]  # "monitor", "shim": in messages and the <name>.log file
    monitor_timeout: ClassVar[float]  # seconds for the monitor to report the start

    paths: statedir.Paths

    def __init__(self, options: registry.Options) -> None:
        self.options = options
        self.sandboxes: dict[str, S] = {}
        self.containers: dict[str, C] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    # --- hooks -------------------------------------------------------------------------

    @abc.abstractmethod
    def _monitor_argv(self, directory: Path) -> list[str]:
        """The monitor script and its arguments (run as ``python -I -S <argv>``)."""

    @abc.abstractmethod
    def _signal(self, pid: int, sig: int) -> None:
        """Send ``sig`` to the container whose main process is ``pid``."""

    @abc.abstractmethod
    async def _spawn(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> cri.StreamSession:
        """Run ``cmd`` in the (running) container."""

    @abc.abstractmethod
    def _sandbox_ip(self, record: S) -> str: ...

    @abc.abstractmethod
    def _image_ref(self, record: C) -> str: ...

    async def _sandbox_stopped(self, record: S) -> None:
        """After the sandbox's containers stopped, before it is marked not ready."""

    async def _release_sandbox(self, record: S) -> None:
        """After the sandbox's record is dropped, before its directory is deleted."""

    async def _killed(self, container_id: str) -> None:
        """After SIGKILL to the container's main process, before waiting for the exit."""

    async def _stopped(self, container_id: str) -> None:
        """At the end of every stop_container, whether the container was running or not."""

    async def _release_container(self, record: C) -> None:
        """After the container's record is dropped, before its directory is deleted."""

    # --- records -----------------------------------------------------------------------

    def _adopt(self, sandbox_type: type[S], container_type: type[C]) -> None:
        """Create the state dirs and adopt every sandbox and container found there."""
        for sub in ("sandboxes", "containers"):
            (self.paths.root / sub).mkdir(parents=True, exist_ok=True)
        for path in (self.paths.root / "sandboxes").glob(f"*/{sandbox_type.RECORD_FILE}"):
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                record = sandbox_type.load(path)
                self.sandboxes[record.id] = record
        for path in (self.paths.root / "containers").glob(f"*/{container_type.RECORD_FILE}"):
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                container = container_type.load(path)
                self.containers[container.id] = container

    async def close(self) -> None:
        return None  # the monitors own the containers; nothing of ours to release

    def _sandbox(self, sandbox_id: str) -> S:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise cri.NotFoundError(f"pod sandbox {sandbox_id!r} not found") from None

    def _ready_sandbox(self, sandbox_id: str) -> S:
        """The sandbox a container is created in: it must still be ready."""
        record = self._sandbox(sandbox_id)
        if not record.ready:
            raise cri.RuntimeError_(
                f"pod sandbox {sandbox_id} is not ready", reason="CreateContainerError"
            )
        return record

    def _members(self, sandbox_id: str) -> list[str]:
        return [c.id for c in self.containers.values() if c.sandbox_id == sandbox_id]

    def _container(self, container_id: str) -> C:
        try:
            return self.containers[container_id]
        except KeyError:
            raise cri.NotFoundError(f"container {container_id!r} not found") from None

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self.locks.setdefault(container_id, asyncio.Lock())

    # --- sandboxes ---------------------------------------------------------------------

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        record = self._sandbox(sandbox_id)
        members = self._members(sandbox_id)
        await asyncio.gather(*(self.stop_container(cid, 0) for cid in members))
        await self._sandbox_stopped(record)
        if record.ready:
            record.ready = False
            record.save(self.paths)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        if sandbox_id not in self.sandboxes:
            return  # removing twice is fine
        await self.stop_pod_sandbox(sandbox_id)
        await asyncio.gather(*(self.remove_container(c) for c in self._members(sandbox_id)))
        record = self.sandboxes.pop(sandbox_id)
        await self._release_sandbox(record)
        await asyncio.to_thread(shutil.rmtree, self.paths.sandbox(sandbox_id), True)

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        return self._sandbox_status(self._sandbox(sandbox_id))

    def _sandbox_status(self, record: S) -> cri.PodSandboxStatus:
        return cri.PodSandboxStatus(
            id=record.id,
            metadata=record.metadata,
            state=cri.SandboxState.READY if record.ready else cri.SandboxState.NOTREADY,
            created_at=record.created_at,
            ip=self._sandbox_ip(record),
            labels=dict(record.labels),
            annotations=dict(record.annotations),
        )

    async def list_pod_sandboxes(self) -> list[cri.PodSandboxStatus]:
        return [self._sandbox_status(r) for r in self.sandboxes.values()]

    # --- containers --------------------------------------------------------------------

    def _add_container(self, record: C) -> str:
        """Keep a created container (its directory is written): on disk, then in memory."""
        record.save(self.paths)
        self.containers[record.id] = record
        return record.id

    async def start_container(self, container_id: str) -> None:
        record = self._container(container_id)
        async with self._lock(container_id):
            current = self._status(record).state
            if current != cri.ContainerState.CREATED:
                raise cri.RuntimeError_(
                    f"container {container_id} is {current.value}, not CONTAINER_CREATED"
                )
            outcome = await self._run_monitor(self.paths.container(container_id))
        if not outcome.startswith("ok"):
            message = outcome.removeprefix("error ").strip() or (
                f"the {self.monitor_name} failed to start"
            )
            raise cri.RuntimeError_(f"failed to start container {container_id}: {message}")

    async def _run_monitor(self, directory: Path) -> str:
        """Start the monitor; returns its first line (``ok <pid>`` or ``error <message>``)."""
        log_path = directory / f"{self.monitor_name}.log"
        log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                *self._monitor_argv(directory),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                start_new_session=True,
            )
        finally:
            os.close(log)
        # The first fork exits at once; the monitor writes one line and then lets go of the
        # pipe, so reading to EOF returns as soon as the container started (or failed to).
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), self.monitor_timeout)
        except TimeoutError:
            return f"error the {self.monitor_name} did not report within {self.monitor_timeout}s"
        return out.decode(errors="replace")

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        record = self._container(container_id)
        status = statedir.read_status(self.paths.status(container_id))
        if self._running(status):
            await self._signal_and_wait(record, int(status["pid"]), grace_period)
        await self._stopped(container_id)

    async def _signal_and_wait(self, record: C, pid: int, grace_period: float) -> None:
        if grace_period > 0:
            self._signal(pid, signal.SIGTERM)
            if await self._wait_exit(record, grace_period):
                return
        self._signal(pid, signal.SIGKILL)
        await self._killed(record.id)
        await self._wait_exit(record, KILL_WAIT)

    def _running(self, status: dict[str, str]) -> bool:
        if "pid" not in status or "finished_at" in status:
            return False
        return _alive(int(status["pid"]), status.get("pid_start", "")) or _alive(
            int(status.get("monitor_pid", "0")), status.get("monitor_start", "")
        )

    async def _wait_exit(self, record: C, seconds: float) -> bool:
        """Poll the status file until the monitor recorded the exit (or nobody is left)."""
        deadline = time.monotonic() + seconds
        delay = 0.002
        while time.monotonic() < deadline:
            if self._status(record).state == cri.ContainerState.EXITED:
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)
        return False

    async def remove_container(self, container_id: str) -> None:
        if container_id not in self.containers:
            return
        await self.stop_container(container_id, 0)
        record = self.containers.pop(container_id)
        self.locks.pop(container_id, None)
        await self._release_container(record)
        await asyncio.to_thread(shutil.rmtree, self.paths.container(container_id), True)

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        return self._status(self._container(container_id))

    def _status(self, record: C) -> cri.ContainerStatus:
        status = statedir.read_status(self.paths.status(record.id))
        base = cri.ContainerStatus(
            id=record.id,
            metadata=record.metadata,
            state=cri.ContainerState.CREATED,
            sandbox_id=record.sandbox_id,
            image=record.image,
            image_ref=self._image_ref(record),
            created_at=record.created_at,
            log_path=record.log_path,
            labels=dict(record.labels),
            annotations=dict(record.annotations),
        )
        running = self._running(status)
        if not running and "finished_at" not in status:
            # the monitor may have recorded the exit and left between our read and the
            # liveness check: read again before calling the container lost
            status = statedir.read_status(self.paths.status(record.id))
        return statedir.container_status(base, status, running=running)

    async def list_containers(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        return [
            self._status(r)
            for r in self.containers.values()
            if sandbox_id is None or r.sandbox_id == sandbox_id
        ]

    # --- streaming ---------------------------------------------------------------------

    def _exec_target(self, container_id: str, cmd: list[str]) -> cri.ContainerStatus:
        """The status of a container a command is to run in: it must run, cmd be non-empty."""
        status = self._status(self._container(container_id))
        if status.state != cri.ContainerState.RUNNING:
            raise cri.RuntimeError_(
                f"container {container_id} is not running", reason="ContainerNotRunning"
            )
        if not cmd:
            raise cri.RuntimeError_("exec needs a command", reason="ExecError")
        return status

    async def exec_sync(
        self, container_id: str, cmd: list[str], kill_after: float | None = None
    ) -> cri.ExecResult:
        session = await self._spawn(container_id, cmd, tty=False, stdin=False)
        collect = asyncio.gather(
            _read_all(session.read_stdout), _read_all(session.read_stderr), session.wait()
        )
        try:
            out, err, code = await asyncio.wait_for(collect, kill_after)
        except TimeoutError:
            await session.close()
            raise TimeoutError(f"command {cmd!r} timed out after {kill_after}s") from None
        return cri.ExecResult(exit_code=code, stdout=out, stderr=err)

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> cri.StreamSession:
        return await self._spawn(container_id, cmd, tty=tty, stdin=stdin)

    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> cri.StreamSession:
        # imported here: kybern.runtime.process imports its runtime, a subclass of this one
        from kybern.runtime.process import streams

        self._container(container_id)
        return await streams.attach(self.paths.container(container_id), stdin=stdin)


def _alive(pid: int, ticks: str) -> bool:
    # imported here: kybern.runtime.process imports its runtime, a subclass of this one
    from kybern.runtime.process import procfs

    return procfs.alive(pid, ticks)


async def _read_all(read: Callable[[], Awaitable[bytes]]) -> bytes:
    chunks = []
    while chunk := await read():
        chunks.append(chunk)
    return b"".join(chunks)
