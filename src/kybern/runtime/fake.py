"""The ``fake`` runtime: an in-memory :class:`kybern.runtime.cri.Runtime` that runs nothing.

Kubelet tests drive it: a created and started container "runs" until it is stopped or a test
makes it exit (:meth:`FakeRuntime.exit`); pulls, creates and starts can be made to fail
(:attr:`FakeRuntime.pull_errors`, :attr:`FakeRuntime.start_errors`); a container can ignore
SIGTERM (:attr:`FakeRuntime.ignore_sigterm`) so the kubelet's grace period and SIGKILL show.
Every call is recorded in :attr:`FakeRuntime.calls` as ``(method, argument)``. Timestamps and
grace periods read the injected clock, so a ``FakeClock`` drives them.

The state lives in the object, not in a process: a second kubelet given the same
``FakeRuntime`` finds what the first one left running (adoption tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from kybern.client import clock as clock_
from kybern.runtime import cri, crilog, registry

SIGTERM_EXIT = 143  # 128 + SIGTERM
SIGKILL_EXIT = 137  # 128 + SIGKILL


@dataclass
class _Sandbox:
    id: str
    config: cri.PodSandboxConfig
    created_at: int
    ready: bool = True
    ip: str = ""


@dataclass
class _Container:
    id: str
    sandbox_id: str
    config: cri.ContainerConfig
    image_ref: str
    created_at: int
    state: cri.ContainerState = cri.ContainerState.CREATED
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""
    message: str = ""
    exited: asyncio.Event = field(default_factory=asyncio.Event)


def image_id(image: str) -> str:
    """A stable ``sha256:`` id per image reference."""
    return "sha256:" + hashlib.sha256(image.encode()).hexdigest()


class FakeRuntime:
    """A recording in-memory runtime (see the module docstring)."""

    name = "fake"

    def __init__(
        self, *, clock: clock_.Clock = clock_.REAL, pod_ip_prefix: str = "10.88.0."
    ) -> None:
        self.clock = clock
        self.calls: list[tuple[str, str]] = []
        self.sandboxes: dict[str, _Sandbox] = {}
        self.containers: dict[str, _Container] = {}
        self.images: dict[str, cri.Image] = {}
        # test controls
        self.pull_errors: dict[str, str] = {}  # image -> message (ImagePullError)
        self.start_errors: dict[str, str] = {}  # container name -> message (start fails)
        self.create_errors: dict[str, str] = {}  # container name -> message (create fails)
        self.ignore_sigterm: set[str] = set()  # container names that only die by SIGKILL
        self.exit_on_start: dict[str, int] = {}  # container name -> exits at once with code
        self.exec_results: dict[str, cri.ExecResult] = {}  # command[0] -> result
        self.log_lines: dict[str, list[str]] = {}  # container name -> stdout lines on start
        self.closed = False
        self._ids = itertools.count(1)
        self._ip_prefix = pod_ip_prefix
        self._ips = itertools.count(2)

    # -- test controls -----------------------------------------------------------------

    def exit(self, container_id: str, code: int = 0, *, reason: str = "") -> None:
        """Make a running container exit with ``code`` (reason Completed/Error by default)."""
        c = self._container(container_id)
        if c.state is cri.ContainerState.RUNNING:
            self._finish(c, code, reason)

    def running(self, name: str = "", *, pod_uid: str = "") -> list[_Container]:
        """Running containers, optionally of one name and/or pod uid (by their labels)."""
        return [
            c
            for c in self.containers.values()
            if c.state is cri.ContainerState.RUNNING
            and (not name or c.config.metadata.name == name)
            and (not pod_uid or c.config.labels.get("io.kubernetes.pod.uid") == pod_uid)
        ]

    def by_name(self, name: str) -> list[_Container]:
        """Every container of that name, oldest first."""
        found = [c for c in self.containers.values() if c.config.metadata.name == name]
        return sorted(found, key=lambda c: (c.created_at, c.id))

    def count(self, method: str) -> int:
        return sum(1 for m, _ in self.calls if m == method)

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.calls.append(("start", ""))

    async def close(self) -> None:
        self.calls.append(("close", ""))
        self.closed = True

    # -- sandboxes ---------------------------------------------------------------------

    async def run_pod_sandbox(self, config: cri.PodSandboxConfig) -> str:
        sandbox_id = f"sandbox-{next(self._ids)}"
        self.calls.append(("run_pod_sandbox", config.metadata.name))
        ip = "" if config.host_network else f"{self._ip_prefix}{next(self._ips)}"
        self.sandboxes[sandbox_id] = _Sandbox(sandbox_id, config, self._ns(), ip=ip)
        if config.log_directory:
            _mkdir(Path(config.log_directory))
        return sandbox_id

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("stop_pod_sandbox", sandbox_id))
        sandbox = self._sandbox(sandbox_id)
        for c in list(self.containers.values()):
            if c.sandbox_id == sandbox_id and c.state is cri.ContainerState.RUNNING:
                self._finish(c, SIGKILL_EXIT, "Error")
        sandbox.ready = False

    async def remove_pod_sandbox(self, sandbox_id: str) -> None:
        self.calls.append(("remove_pod_sandbox", sandbox_id))
        if sandbox_id in self.sandboxes:
            await self.stop_pod_sandbox(sandbox_id)
        for c in [c for c in self.containers.values() if c.sandbox_id == sandbox_id]:
            del self.containers[c.id]
        self.sandboxes.pop(sandbox_id, None)

    async def pod_sandbox_status(self, sandbox_id: str) -> cri.PodSandboxStatus:
        return self._sandbox_status(self._sandbox(sandbox_id))

    async def list_pod_sandboxes(self) -> list[cri.PodSandboxStatus]:
        return [self._sandbox_status(s) for s in self.sandboxes.values()]

    def _sandbox_status(self, s: _Sandbox) -> cri.PodSandboxStatus:
        return cri.PodSandboxStatus(
            id=s.id,
            metadata=s.config.metadata,
            state=cri.SandboxState.READY if s.ready else cri.SandboxState.NOTREADY,
            created_at=s.created_at,
            ip=s.ip,
            labels=dict(s.config.labels),
            annotations=dict(s.config.annotations),
        )

    # -- containers --------------------------------------------------------------------

    async def create_container(
        self, sandbox_id: str, config: cri.ContainerConfig, sandbox_config: cri.PodSandboxConfig
    ) -> str:
        self.calls.append(("create_container", config.metadata.name))
        sandbox = self._sandbox(sandbox_id)
        if not sandbox.ready:
            raise cri.RuntimeError_(f"sandbox {sandbox_id} is not ready")
        if config.metadata.name in self.create_errors:
            raise cri.RuntimeError_(
                self.create_errors[config.metadata.name], reason="CreateContainerError"
            )
        image = self.images.get(config.image)
        ref = image.id if image else image_id(config.image)
        container_id = f"container-{next(self._ids)}"
        self.containers[container_id] = _Container(
            container_id, sandbox_id, config, ref, self._ns()
        )
        return container_id

    async def start_container(self, container_id: str) -> None:
        c = self._container(container_id)
        name = c.config.metadata.name
        self.calls.append(("start_container", name))
        if c.state is not cri.ContainerState.CREATED:
            raise cri.RuntimeError_(f"container {container_id} is not in the created state")
        if name in self.start_errors:
            c.state = cri.ContainerState.EXITED
            c.finished_at = self._ns()
            c.exit_code = 128
            c.reason = "ContainerCannotRun"
            c.message = self.start_errors[name]
            c.exited.set()
            raise cri.RuntimeError_(self.start_errors[name])
        c.state = cri.ContainerState.RUNNING
        c.started_at = self._ns()
        self._write_logs(c)
        if name in self.exit_on_start:
            self._finish(c, self.exit_on_start[name], "")

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        c = self._container(container_id)
        self.calls.append(("stop_container", c.config.metadata.name))
        if c.state is cri.ContainerState.CREATED:
            self._finish(c, 0, "")
            return
        if c.state is not cri.ContainerState.RUNNING:
            return
        if c.config.metadata.name not in self.ignore_sigterm:
            self._finish(c, SIGTERM_EXIT, "Error")
            return
        # SIGTERM ignored: the container dies when the grace period is over (or exits by itself)
        waiter = asyncio.ensure_future(c.exited.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(max(grace_period, 0.0)))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if c.state is cri.ContainerState.RUNNING:
            self.calls.append(("kill_container", c.config.metadata.name))
            self._finish(c, SIGKILL_EXIT, "Error")

    async def remove_container(self, container_id: str) -> None:
        self.calls.append(("remove_container", container_id))
        c = self.containers.pop(container_id, None)
        if c is not None and c.state is cri.ContainerState.RUNNING:
            self._finish(c, SIGKILL_EXIT, "Error")

    async def container_status(self, container_id: str) -> cri.ContainerStatus:
        return self._status(self._container(container_id))

    async def list_containers(self, sandbox_id: str | None = None) -> list[cri.ContainerStatus]:
        return [
            self._status(c)
            for c in self.containers.values()
            if sandbox_id is None or c.sandbox_id == sandbox_id
        ]

    async def container_stats(self, container_id: str) -> cri.ContainerStats:
        self._container(container_id)
        return cri.ContainerStats(id=container_id, timestamp=self._ns())

    def _status(self, c: _Container) -> cri.ContainerStatus:
        return cri.ContainerStatus(
            id=c.id,
            metadata=c.config.metadata,
            state=c.state,
            sandbox_id=c.sandbox_id,
            image=c.config.image,
            image_ref=c.image_ref,
            created_at=c.created_at,
            started_at=c.started_at,
            finished_at=c.finished_at,
            exit_code=c.exit_code,
            reason=c.reason,
            message=c.message,
            log_path=c.config.log_path,
            labels=dict(c.config.labels),
            annotations=dict(c.config.annotations),
        )

    # -- streaming ---------------------------------------------------------------------

    async def exec_sync(
        self, container_id: str, cmd: list[str], kill_after: float | None = None
    ) -> cri.ExecResult:
        c = self._container(container_id)
        self.calls.append(("exec_sync", " ".join(cmd)))
        if c.state is not cri.ContainerState.RUNNING:
            raise cri.RuntimeError_(f"container {container_id} is not running")
        return self.exec_results.get(cmd[0] if cmd else "", cri.ExecResult(0, b"", b""))

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> cri.StreamSession:
        result = await self.exec_sync(container_id, cmd)
        return _Session(result)

    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> cri.StreamSession:
        self._container(container_id)
        return _Session(cri.ExecResult(0, b"", b""))

    async def port_forward(self, sandbox_id: str, port: int) -> cri.PortStream:
        raise cri.RuntimeError_("the fake runtime forwards no ports")

    # -- images ------------------------------------------------------------------------

    async def pull_image(self, image: str, auth: cri.AuthConfig | None = None) -> str:
        self.calls.append(("pull_image", image))
        if image in self.pull_errors:
            raise cri.ImagePullError(self.pull_errors[image])
        found = self.images.get(image)
        if found is None:
            found = cri.Image(id=image_id(image), repo_tags=(image,), size=1024)
            self.images[image] = found
        return found.id

    async def image_status(self, image: str) -> cri.Image | None:
        return self.images.get(image)

    async def list_images(self) -> list[cri.Image]:
        return list(self.images.values())

    async def remove_image(self, image: str) -> None:
        self.calls.append(("remove_image", image))
        self.images.pop(image, None)

    # -- helpers -----------------------------------------------------------------------

    def _ns(self) -> int:
        return int(self.clock.now().timestamp() * 1_000_000_000)

    def _sandbox(self, sandbox_id: str) -> _Sandbox:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise cri.NotFoundError(f"no sandbox {sandbox_id}") from None

    def _container(self, container_id: str) -> _Container:
        try:
            return self.containers[container_id]
        except KeyError:
            raise cri.NotFoundError(f"no container {container_id}") from None

    def _finish(self, c: _Container, code: int, reason: str) -> None:
        c.state = cri.ContainerState.EXITED
        c.finished_at = self._ns()
        c.exit_code = code
        c.reason = reason or ("Completed" if code == 0 else "Error")
        c.exited.set()

    def _write_logs(self, c: _Container) -> None:
        lines = self.log_lines.get(c.config.metadata.name)
        if not lines or not c.config.log_path:
            return
        text = b"".join(crilog.format_line(crilog.STDOUT, line.encode()) for line in lines)
        path = Path(c.config.log_path)
        _mkdir(path.parent)
        path.write_bytes(text)  # a few test lines: not worth a thread


def _mkdir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


class _Session:
    """A finished exec: its output once, then end of stream."""

    def __init__(self, result: cri.ExecResult) -> None:
        self._result = result
        self._out = result.stdout
        self._err = result.stderr

    async def write_stdin(self, data: bytes) -> None:
        return None

    async def close_stdin(self) -> None:
        return None

    async def read_stdout(self) -> bytes:
        out, self._out = self._out, b""
        return out

    async def read_stderr(self) -> bytes:
        err, self._err = self._err, b""
        return err

    async def resize(self, size: cri.TerminalSize) -> None:
        return None

    async def wait(self) -> int:
        return self._result.exit_code

    async def close(self) -> None:
        return None


def create(options: registry.Options) -> cri.Runtime:
    """The registry's factory (``--runtime fake``): real clock, pod IPs from 10.88.0.0/24."""
    return FakeRuntime()
