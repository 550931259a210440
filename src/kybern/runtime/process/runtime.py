"""The ``process`` runtime: each container is its command running as host processes.

No images, no network namespace, no root needed. A sandbox is a directory (its ``work/`` is
the containers' default working directory); a container is a monitor process
(:mod:`monitor`, like conmon) that forks the container's ``command`` + ``args`` in its own
session and process group, writes its output to the CRI log file and records its exit in the
state directory (:mod:`layout`). The agent can be killed and restarted at any time: ``start()``
reads the state directory back, running containers keep running and exit codes of those that
ended meanwhile are still reported.

Behaviour worth knowing:

- Host network: a sandbox's IP is the node IP and port-forward connects to 127.0.0.1:<port>.
- The image's entrypoint and cmd are unknown, so a container without ``command`` fails at
  create with ``CreateContainerError``. Images are not pulled: ``pull_image`` returns
  ``process://<image>`` as the image id and the image is remembered as "present".
- Environment: exactly the container's env, plus ``PATH`` (the usual default), ``HOSTNAME``
  and ``HOME`` when not set. The working directory defaults to the pod's ``work/`` directory; an
  explicit one must exist (it is never created on the host) or the start fails.
- Volumes: a private mount namespace (and user namespace when not root), see :mod:`mounts`;
  exec enters it with ``nsenter``. When the kernel refuses it, create (or start) fails saying
  which sysctl to set. The termination message file is bound at its path only for containers
  with volumes (otherwise no namespace is made just for it: the kubelet uses the logs).
- Users: runAsUser/runAsGroup/supplementalGroups are applied when the agent is root (exec goes
  through ``setpriv``); an unprivileged agent runs every container as itself.
- Not enforced: resources (no cgroups: requests and limits are ignored), capabilities,
  privileged, read-only root file system, other namespaces (pid, ipc, uts).
- Stop: SIGTERM to the process group, SIGKILL to it after the grace period. When the main
  process exits, what is left of its group is killed too (as a pid namespace would); processes
  that left the group on purpose (``setsid``) are not tracked.
- Exit: ``128+signal`` when killed by a signal; reason ``Completed`` (0) or ``Error``; a start
  that failed (exec error, missing working dir, no namespace) reports ``StartError`` and 128.
- Logs: CRI format in ``ContainerConfig.log_path``, rotated at ``extra["log_max_size"]`` bytes
  (10 MiB) keeping ``extra["log_max_files"]`` files (5) in all: ``<log>``, ``<log>.1`` (newest
  rotated) ... ``<log>.4``.
- Exit detection: the status file is read on every status call; ``stop_container`` polls it
  (2 ms doubling to 50 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from kybern.runtime import cri, registry
from kybern.runtime.process import layout, procfs, streams, translate

MONITOR = str(Path(__file__).with_name("monitor.py"))
MONITOR_START_TIMEOUT = 30.0


class ProcessRuntime:
    name = "process"

    def __init__(self, options: registry.Options) -> None:
        self.options = options
        self.paths = layout.Paths(options.root)
        self.sandboxes: dict[str, layout.SandboxRecord] = {}
        self.containers: dict[str, layout.ContainerRecord] = {}
        self.images: dict[str, cri.Image] = {}
        self.locks: dict[str, asyncio.Lock] = {}
        self.execs: dict[str, list[streams.ExecSession]] = {}

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the state dirs and adopt every sandbox and container found there."""
        for sub in ("sandboxes", "containers"):
            (self.paths.root / sub).mkdir(parents=True, exist_ok=True)
        for path in (self.paths.root / "sandboxes").glob("*/sandbox.json"):
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                record = layout.SandboxRecord.load(path)
                self.sandboxes[record.id] = record
        for path in (self.paths.root / "containers").glob("*/config.json"):
            with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
                container = layout.ContainerRecord.load(path)
                self.containers[container.id] = container

    async def close(self) -> None:
        return None  # the monitors own the containers; nothing of ours to release

    # --- sandboxes ---------------------------------------------------------------------

    async def run_pod_sandbox(self, config: cri.PodSandboxConfig) -> str:
        sandbox_id = uuid.uuid4().hex
        record = layout.SandboxRecord(
            id=sandbox_id,
            metadata=config.metadata,
            created_at=time.time_ns(),
            hostname=config.hostname or config.metadata.name,
            log_directory=config.log_directory,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )
        self.paths.pod_dir(sandbox_id).mkdir(parents=True)
        record.save(self.paths)
        self.sandboxes[sandbox_id] = record
        return sandbox_id

    def _sandbox(self, sandbox_id: str) -> layout.SandboxRecord:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise cri.NotFoundError(f"pod sandbox {sandbox_id!r} not found") from None

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        record = self._sandbox(sandbox_id)
        members = [c.id for c in self.containers.values() if c.sandbox_id == sandbox_id]
        await asyncio.gather(*(self.stop_container(cid, 0) for cid in members))
        if record.ready:
            record.ready = False
            record.save(self.paths)

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        if sandbox_id not in self.sandboxes:
            return  # removing twice is fine
        await self.stop_pod_sandbox(sandbox_id)
        members = [c.id for c in self.containers.values() if c.sandbox_id == sandbox_id]
        await asyncio.gather(*(self.remove_container(cid) for cid in members))
        del self.sandboxes[sandbox_id]
        await asyncio.to_thread(shutil.rmtree, self.paths.sandbox(sandbox_id), True)

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        return self._sandbox_status(self._sandbox(sandbox_id))

    def _sandbox_status(self, record: layout.SandboxRecord) -> cri.PodSandboxStatus:
        return cri.PodSandboxStatus(
            id=record.id,
            metadata=record.metadata,
            state=cri.SandboxState.READY if record.ready else cri.SandboxState.NOTREADY,
            created_at=record.created_at,
            ip=self.options.node_ip,
            labels=dict(record.labels),
            annotations=dict(record.annotations),
        )

    async def list_pod_sandboxes(self) -> list[cri.PodSandboxStatus]:
        return [self._sandbox_status(r) for r in self.sandboxes.values()]

    # --- containers --------------------------------------------------------------------

    async def create_container(
        self, sandbox_id: str, config: cri.ContainerConfig, sandbox_config: cri.PodSandboxConfig
    ) -> str:
        sandbox = self._sandbox(sandbox_id)
        if not sandbox.ready:
            raise cri.RuntimeError_(
                f"pod sandbox {sandbox_id} is not ready", reason="CreateContainerError"
            )
        if not config.command:
            raise cri.RuntimeError_(
                f"container {config.metadata.name!r} has no command: the process runtime cannot "
                f"read image {config.image!r}'s entrypoint, so `command` must be set",
                reason="CreateContainerError",
            )
        if config.mounts and (hint := translate.namespace_unavailable()):
            raise cri.RuntimeError_(hint, reason="CreateContainerError")
        record = self._new_record(sandbox, config)
        directory = self.paths.container(record.id)
        directory.mkdir(parents=True)
        layout.write_spec(self.paths, record, config, self.options.extra)
        record.save(self.paths)
        self.containers[record.id] = record
        return record.id

    def _new_record(
        self, sandbox: layout.SandboxRecord, config: cri.ContainerConfig
    ) -> layout.ContainerRecord:
        container_id = uuid.uuid4().hex
        log_path = config.log_path or str(self.paths.container(container_id) / "container.log")
        user = translate.identity(config.security)
        env = translate.container_env(config, sandbox, user[0] if user else os.geteuid())
        return layout.ContainerRecord(
            id=container_id,
            sandbox_id=sandbox.id,
            metadata=config.metadata,
            image=config.image,
            created_at=time.time_ns(),
            argv=[*config.command, *config.args],
            env=list(env.items()),
            cwd=config.working_dir or str(self.paths.pod_dir(sandbox.id)),
            log_path=log_path,
            has_mounts=bool(config.mounts),
            user=user,
            tty=config.tty,
            stdin=config.stdin,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )

    def _container(self, container_id: str) -> layout.ContainerRecord:
        try:
            return self.containers[container_id]
        except KeyError:
            raise cri.NotFoundError(f"container {container_id!r} not found") from None

    def _lock(self, container_id: str) -> asyncio.Lock:
        return self.locks.setdefault(container_id, asyncio.Lock())

    async def start_container(self, container_id: str) -> None:
        record = self._container(container_id)
        async with self._lock(container_id):
            state = self._status(record).state
            if state != cri.ContainerState.CREATED:
                raise cri.RuntimeError_(
                    f"container {container_id} is {state.value}, not CONTAINER_CREATED"
                )
            outcome = await self._run_monitor(self.paths.container(container_id))
        if not outcome.startswith("ok"):
            message = outcome.removeprefix("error ").strip() or "the monitor failed to start"
            raise cri.RuntimeError_(f"failed to start container {container_id}: {message}")

    async def _run_monitor(self, directory: Path) -> str:
        """Start the monitor; returns its first line (``ok <pid>`` or ``error <message>``)."""
        log = os.open(directory / "monitor.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-I",
                "-S",
                MONITOR,
                str(directory),
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
            out, _ = await asyncio.wait_for(proc.communicate(), MONITOR_START_TIMEOUT)
        except TimeoutError:
            return f"error the monitor did not report within {MONITOR_START_TIMEOUT}s"
        return out.decode(errors="replace")

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        record = self._container(container_id)
        status = layout.read_status(self.paths.container(container_id) / "status")
        if self._running(status):
            await self._signal_and_wait(record, int(status["pid"]), grace_period)
        for session in self.execs.pop(container_id, []):
            await session.close()

    async def _signal_and_wait(
        self, record: layout.ContainerRecord, pid: int, grace_period: float
    ) -> None:
        if grace_period > 0:
            streams.kill_group(pid, signal.SIGTERM)
            if await self._wait_exit(record, grace_period):
                return
        streams.kill_group(pid, signal.SIGKILL)
        await self._wait_exit(record, 30.0)

    def _running(self, status: dict[str, str]) -> bool:
        if "pid" not in status or "finished_at" in status:
            return False
        return procfs.alive(int(status["pid"]), status.get("pid_start", "")) or procfs.alive(
            int(status.get("monitor_pid", "0")), status.get("monitor_start", "")
        )

    async def _wait_exit(self, record: layout.ContainerRecord, seconds: float) -> bool:
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
        del self.containers[container_id]
        self.locks.pop(container_id, None)
        await asyncio.to_thread(shutil.rmtree, self.paths.container(container_id), True)

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        return self._status(self._container(container_id))

    def _status(self, record: layout.ContainerRecord) -> cri.ContainerStatus:
        status = layout.read_status(self.paths.container(record.id) / "status")
        base = cri.ContainerStatus(
            id=record.id,
            metadata=record.metadata,
            state=cri.ContainerState.CREATED,
            sandbox_id=record.sandbox_id,
            image=record.image,
            image_ref=image_id(record.image),
            created_at=record.created_at,
            log_path=record.log_path,
            labels=dict(record.labels),
            annotations=dict(record.annotations),
        )
        running = self._running(status)
        if not running and "finished_at" not in status:
            # the monitor may have recorded the exit and left between our read and the
            # liveness check: read again before calling the container lost
            status = layout.read_status(self.paths.container(record.id) / "status")
        return layout.container_status(base, status, running=running)

    async def list_containers(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        return [
            self._status(r)
            for r in self.containers.values()
            if sandbox_id is None or r.sandbox_id == sandbox_id
        ]

    async def container_stats(self, container_id: str) -> cri.ContainerStats:
        status = await self.container_status(container_id)
        usage = (
            procfs.group_usage(status.pid)
            if status.state == cri.ContainerState.RUNNING and status.pid
            else procfs.Usage()
        )
        return cri.ContainerStats(
            id=container_id,
            timestamp=time.time_ns(),
            cpu_usage_core_nanoseconds=usage.cpu_ns,
            memory_working_set_bytes=usage.rss_bytes,
            memory_rss_bytes=usage.rss_bytes,
        )

    # --- streaming ---------------------------------------------------------------------

    async def _exec_argv(self, container_id: str, cmd: list[str]) -> tuple[list[str], str | None]:
        """The command line (entering the container's namespaces) and the working dir to use."""
        record = self._container(container_id)
        status = await self.container_status(container_id)
        if status.state != cri.ContainerState.RUNNING:
            raise cri.RuntimeError_(
                f"container {container_id} is not running", reason="ContainerNotRunning"
            )
        if not cmd:
            raise cri.RuntimeError_("exec needs a command", reason="ExecError")
        if record.user:
            uid, gid, *groups = record.user
            switch = [f"--reuid={uid}", f"--regid={gid}"]
            switch.append(f"--groups={','.join(map(str, groups))}" if groups else "--clear-groups")
            cmd = ["setpriv", *switch, "--", *cmd]
        if not record.has_mounts:
            return list(cmd), record.cwd
        # The container's mount (and user) namespace, root and working dir are its main
        # process's: nsenter resolves the working dir after entering them.
        enter = ["nsenter", "-t", str(status.pid), "-m", "--root", "--wd"]
        if os.geteuid() != 0:
            enter[3:3] = ["-U", "--preserve-credentials"]
        return [*enter, "--", *cmd], None

    async def _spawn(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> cri.StreamSession:
        argv, cwd = await self._exec_argv(container_id, cmd)
        env = dict(self._container(container_id).env)
        try:
            session = await streams.spawn(argv, env=env, cwd=cwd, tty=tty, stdin=stdin)
        except OSError as err:
            raise cri.RuntimeError_(
                f'exec: "{cmd[0]}": {err.strerror or err}', reason="ExecError"
            ) from err
        # exec'd processes are not in the container's process group: remember them so that
        # stopping the container ends them too (as leaving its pid namespace would)
        sessions = self.execs.setdefault(container_id, [])
        sessions[:] = [s for s in sessions if s.running()]
        sessions.append(session)
        return session

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
        self._container(container_id)
        return await streams.attach(self.paths.container(container_id), stdin=stdin)

    async def port_forward(self, sandbox_id: str, port: int) -> cri.PortStream:
        self._sandbox(sandbox_id)
        return await streams.connect_port("127.0.0.1", port)

    # --- images ------------------------------------------------------------------------

    async def pull_image(self, image: str, auth: cri.AuthConfig | None = None) -> str:
        """Nothing to pull: the id is ``process://<image>`` and the image counts as present."""
        self.images[image] = cri.Image(id=image_id(image), repo_tags=(image,))
        return image_id(image)

    async def image_status(self, image: str) -> cri.Image | None:
        return self.images.get(image)

    async def list_images(self) -> list[cri.Image]:
        return list(self.images.values())

    async def remove_image(self, image: str) -> None:
        self.images.pop(image, None)


# --- helpers -----------------------------------------------------------------------------


def image_id(image: str) -> str:
    return f"process://{image}"


async def _read_all(read: Callable[[], Awaitable[bytes]]) -> bytes:
    chunks = []
    while chunk := await read():
        chunks.append(chunk)
    return b"".join(chunks)
