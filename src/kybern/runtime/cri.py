"""The container runtime interface: what the kubelet asks of a runtime, shaped like Kubernetes' CRI.

The kubelet never starts a process or mounts a file system itself. It describes a pod sandbox
(the shared context of a pod's containers: network, IPC and UTS namespaces, a cgroup parent,
a log directory) and then each container in it, and a runtime makes them real. Runtimes
register by name in :mod:`kybern.runtime.registry`:

- ``process``: each container's command as host processes (no root needed, host network);
- ``fake``: nothing runs, every call is recorded (kubelet tests);
- ``oci``: real Linux containers through runc/crun (root).

Conventions, as in CRI: identifiers are opaque strings chosen by the runtime; timestamps are
nanoseconds since the epoch (0 = not yet); a container's stdout and stderr go to
``ContainerConfig.log_path`` in the CRI log format (``<RFC3339Nano> <stdout|stderr> <F|P>
<text>`` per line, see :mod:`kybern.runtime.crilog`), written by the runtime, never through a
pipe the kubelet must drain; a stopped container keeps its status (exit code, finish time) until
it is removed. Every call is safe to repeat (stopping a stopped container is not an error);
unknown ids raise :class:`NotFoundError`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class RuntimeError_(Exception):
    """A runtime call failed; ``reason`` is what the kubelet reports (e.g. ``RunContainerError``)."""

    def __init__(self, message: str, *, reason: str = "RunContainerError") -> None:
        super().__init__(message)
        self.reason = reason


class NotFoundError(RuntimeError_):
    """No sandbox, container or image with that id."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="NotFound")


class ImagePullError(RuntimeError_):
    """The image could not be pulled (the kubelet reports ErrImagePull, then ImagePullBackOff)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, reason="ErrImagePull")


class SandboxState(enum.Enum):
    READY = "SANDBOX_READY"
    NOTREADY = "SANDBOX_NOTREADY"


class ContainerState(enum.Enum):
    CREATED = "CONTAINER_CREATED"
    RUNNING = "CONTAINER_RUNNING"
    EXITED = "CONTAINER_EXITED"
    UNKNOWN = "CONTAINER_UNKNOWN"


# --- pod sandbox -------------------------------------------------------------------------


@dataclass(frozen=True)
class PodMeta:
    """Who a sandbox belongs to (CRI's PodSandboxMetadata)."""

    name: str
    namespace: str
    uid: str
    attempt: int = 0


@dataclass(frozen=True)
class PortMapping:
    """A hostPort: ``host_ip:host_port`` on the node forwards to ``container_port`` in the pod."""

    container_port: int
    host_port: int
    protocol: str = "TCP"  # TCP, UDP or SCTP
    host_ip: str = ""


@dataclass(frozen=True)
class DNSConfig:
    """The pod's resolv.conf, computed by the kubelet from dnsPolicy and dnsConfig."""

    servers: tuple[str, ...] = ()
    searches: tuple[str, ...] = ()
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostAlias:
    ip: str
    hostnames: tuple[str, ...]


@dataclass(frozen=True)
class PodSandboxConfig:
    metadata: PodMeta
    hostname: str = ""
    log_directory: str = (
        ""  # where the containers' log files live (/var/log/pods/<ns>_<name>_<uid>)
    )
    dns: DNSConfig | None = None
    port_mappings: tuple[PortMapping, ...] = ()
    host_aliases: tuple[HostAlias, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    host_network: bool = False
    host_pid: bool = False
    host_ipc: bool = False
    share_process_namespace: bool = False
    cgroup_parent: str = ""  # kubepods/<qos>/pod<uid>, relative to each hierarchy's root
    sysctls: dict[str, str] = field(default_factory=dict)
    pod_cidr: str = ""  # the node's spec.podCIDR, for runtimes that set up networking


@dataclass(frozen=True)
class PodSandboxStatus:
    id: str
    metadata: PodMeta
    state: SandboxState
    created_at: int  # ns since the epoch
    ip: str = ""  # the pod IP ("" until networking is set up; the node IP for host network)
    additional_ips: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


# --- containers --------------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerMeta:
    name: str
    attempt: int = 0  # how many times the kubelet created this container before (restartCount)


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: str = "private"  # private, rslave (HostToContainer) or rshared (Bidirectional)
    selinux_relabel: bool = False


@dataclass(frozen=True)
class Resources:
    """Linux resources from the container's requests and limits, as the kubelet computes them."""

    cpu_shares: int = 2  # cgroup v1 cpu.shares from requests.cpu (min 2)
    cpu_quota: int = 0  # CFS quota (us per period) from limits.cpu; 0 = unlimited
    cpu_period: int = 100_000
    memory_limit_bytes: int = 0  # 0 = unlimited
    pids_limit: int = 0  # 0 = unlimited
    oom_score_adj: int = 0


@dataclass(frozen=True)
class SecurityContext:
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""
    supplemental_groups: tuple[int, ...] = ()
    run_as_non_root: bool = False
    privileged: bool = False
    capabilities_add: tuple[str, ...] = ()
    capabilities_drop: tuple[str, ...] = ()
    readonly_rootfs: bool = False
    no_new_privs: bool = False
    masked_paths: tuple[str, ...] | None = None  # None = the runtime's defaults
    readonly_paths: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ContainerConfig:
    """One container, fully resolved by the kubelet: env expanded, volumes mounted on the host."""

    metadata: ContainerMeta
    image: str  # the image reference as the pod names it (after pull: the same string)
    command: tuple[str, ...] = ()  # the pod's ``command`` (empty: the image's entrypoint)
    args: tuple[str, ...] = ()  # the pod's ``args`` (empty with no command: the image's cmd)
    working_dir: str = ""
    envs: tuple[tuple[str, str], ...] = ()  # in order; later names win
    mounts: tuple[Mount, ...] = ()
    log_path: str = ""  # absolute path of this container's CRI-format log file
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    resources: Resources = field(default_factory=Resources)
    security: SecurityContext = field(default_factory=SecurityContext)
    # Where the kubelet expects the termination message (terminationMessagePath), on the host;
    # the runtime mounts it at the container's terminationMessagePath when it can.
    termination_message_host_path: str = ""
    termination_message_path: str = ""


@dataclass(frozen=True)
class ContainerStatus:
    id: str
    metadata: ContainerMeta
    state: ContainerState
    sandbox_id: str
    image: str  # the reference the container was created with
    image_ref: str = ""  # the resolved image id (``sha256:...`` or a runtime-specific form)
    created_at: int = 0  # ns since the epoch
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    reason: str = ""  # for EXITED: "Completed", "Error", "OOMKilled", "ContainerCannotRun", ...
    message: str = ""
    pid: int = 0  # host pid of the container's main process while it runs (0 if unknown)
    log_path: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerStats:
    id: str
    timestamp: int  # ns since the epoch
    cpu_usage_core_nanoseconds: int = 0  # cumulative CPU time
    memory_working_set_bytes: int = 0
    memory_rss_bytes: int = 0
    writable_layer_bytes: int = 0


# --- streaming ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


class StreamSession(Protocol):
    """A running exec or attach: bytes in, bytes out, an exit code at the end.

    With a TTY, stdout carries both output streams and stderr yields nothing. ``read_stdout``
    and ``read_stderr`` return b"" at end of stream. ``wait`` returns the exit code (attach:
    the container's, when it exits while attached). ``close`` tears the session down (for exec,
    kills the process it started; for attach, only detaches).
    """

    async def write_stdin(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def read_stdout(self) -> bytes: ...

    async def read_stderr(self) -> bytes: ...

    async def resize(self, size: TerminalSize) -> None: ...

    async def wait(self) -> int: ...

    async def close(self) -> None: ...


class PortStream(Protocol):
    """One port-forward connection into the pod's network namespace."""

    async def read(self) -> bytes: ...  # b"" at end of stream

    async def write(self, data: bytes) -> None: ...

    async def close_write(self) -> None: ...

    async def close(self) -> None: ...


# --- images ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuthConfig:
    """Registry credentials from imagePullSecrets (already matched to the image's registry)."""

    username: str = ""
    password: str = ""
    auth: str = ""  # base64 "user:password", as in a docker config.json
    identity_token: str = ""
    registry_token: str = ""


@dataclass(frozen=True)
class Image:
    id: str  # ``sha256:<config digest>`` (or a runtime-specific stable id)
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    size: int = 0


# --- the interface -----------------------------------------------------------------------


@runtime_checkable
class Runtime(Protocol):
    """A container runtime (CRI's RuntimeService and ImageService in one object)."""

    name: str

    async def start(self) -> None:
        """Prepare (directories, adopt what a previous agent left running). Called once."""
        ...

    async def close(self) -> None:
        """Release the runtime's own resources; running containers keep running."""
        ...

    # sandboxes
    async def run_pod_sandbox(self, config: PodSandboxConfig) -> str: ...

    async def stop_pod_sandbox(self, sandbox_id: str) -> None:
        """Stop every container in the sandbox (SIGKILL) and tear down its network."""
        ...

    async def remove_pod_sandbox(self, sandbox_id: str) -> None: ...

    async def pod_sandbox_status(self, sandbox_id: str) -> PodSandboxStatus: ...

    async def list_pod_sandboxes(self) -> list[PodSandboxStatus]: ...

    # containers
    async def create_container(
        self, sandbox_id: str, config: ContainerConfig, sandbox_config: PodSandboxConfig
    ) -> str: ...

    async def start_container(self, container_id: str) -> None: ...

    async def stop_container(self, container_id: str, grace_period: float) -> None:
        """SIGTERM (the image's stop signal), then SIGKILL after ``grace_period`` seconds; returns
        once the container has exited."""
        ...

    async def remove_container(self, container_id: str) -> None: ...

    async def container_status(self, container_id: str) -> ContainerStatus: ...

    async def list_containers(self, sandbox_id: str | None = None) -> list[ContainerStatus]: ...

    async def container_stats(self, container_id: str) -> ContainerStats: ...

    # streaming
    async def exec_sync(
        self, container_id: str, cmd: list[str], kill_after: float | None = None
    ) -> ExecResult:
        """Run ``cmd`` in the container and collect its output (probes, hooks). After ``kill_after``
        seconds the command is killed and :class:`TimeoutError` raised."""
        ...

    async def exec(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> StreamSession: ...

    async def attach(self, container_id: str, *, tty: bool, stdin: bool) -> StreamSession: ...

    async def port_forward(self, sandbox_id: str, port: int) -> PortStream: ...

    # images
    async def pull_image(self, image: str, auth: AuthConfig | None = None) -> str:
        """Pull and return the image id; raises :class:`ImagePullError`."""
        ...

    async def image_status(self, image: str) -> Image | None: ...

    async def list_images(self) -> list[Image]: ...

    async def remove_image(self, image: str) -> None: ...
