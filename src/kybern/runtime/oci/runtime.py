"""The ``oci`` runtime: real Linux containers through runc (or crun), as containerd's CRI does.

- Sandbox (:mod:`.sandbox`): pinned network/IPC/UTS namespaces and the pod's /etc files; the
  network namespace is handed to a :class:`PodNetwork` (CNI, wired in by the agent) for its
  interfaces and IP; without one the pod has only loopback.
- Create (:mod:`.rootfs`, :mod:`.spec`): mount the overlay rootfs, read the image's passwd/group,
  write the bundle's ``config.json``. Start: a shim (:mod:`.shim`) runs ``runc run --detach`` and
  stays the container's parent for logs, attach and the exit code.
- Stop: SIGTERM to the container's init (tini forwards it to the app), SIGKILL after the grace
  period. Remove: ``runc delete``, unmount, delete the state; sandbox removal unpins namespaces
  and removes the pod cgroup, so nothing is left behind.
- Restart of the agent: ``start()`` reloads the records; shims and containers kept running.

The bookkeeping around the per-container shim (records, start, status, stop, exec) is shared
with the process runtime: :class:`kybern.runtime.monitored.MonitoredRuntime`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import marshal
import os
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from kybern.network import cni, netns, result
from kybern.runtime import cri, monitored, registry, statedir
from kybern.runtime.images import model
from kybern.runtime.oci import cgroups, driver, execs, rootfs, sandbox, spec, state
from kybern.runtime.process import monitor as process_monitor
from kybern.runtime.process import streams

SHIM = str(Path(__file__).with_name("shim.py"))
PROCESS_DIR = str(Path(process_monitor.__file__).parent)
START_TIMEOUT = 60.0


class PodNetwork(Protocol):
    """Pod networking for a sandbox's network namespace: :class:`kybern.network.cni.PodNetwork`
    (CNI ADD/DEL), passed in by the agent."""

    async def setup(
        self,
        *,
        netns: Path,
        container_id: str,
        namespace: str,
        name: str,
        uid: str,
        port_mappings: Sequence[cni.PortMapping] = (),
    ) -> result.Attachment: ...

    async def teardown(
        self,
        *,
        netns: Path | None,
        container_id: str,
        namespace: str = "",
        name: str = "",
        uid: str = "",
    ) -> None: ...


class OciRuntime(monitored.MonitoredRuntime[state.SandboxRecord, state.ContainerRecord]):
    name = "oci"
    monitor_name = "shim"
    monitor_timeout = START_TIMEOUT

    def __init__(
        self,
        options: registry.Options,
        *,
        images: model.ImageService | None = None,
        network: PodNetwork | None = None,
    ) -> None:
        super().__init__(options)
        self.images = images
        self.network = network
        self.paths: state.Paths = state.Paths(options.root)
        self.init = options.extra.get("init", shutil.which("tini-static") or "")
        self.driver: driver.Driver | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.paths.runc_root.mkdir(parents=True, exist_ok=True)
        binary = await asyncio.to_thread(driver.choose, self.options.extra.get("oci_runtime", ""))
        self.driver = driver.Driver(binary, self.paths.runc_root)
        self._adopt(state.SandboxRecord, state.ContainerRecord)
        for record in self.sandboxes.values():  # e.g. after a reboot: the namespace is gone
            if record.ready and record.netns and not netns.is_pinned(Path(record.netns)):
                record.ready = False

    def _driver(self) -> driver.Driver:
        if self.driver is None:
            raise cri.RuntimeError_("the oci runtime is not started")
        return self.driver

    # --- sandboxes ---------------------------------------------------------------------

    async def run_pod_sandbox(self, config: cri.PodSandboxConfig) -> str:
        sandbox_id = uuid.uuid4().hex
        directory = self.paths.sandbox(sandbox_id)
        directory.mkdir(parents=True)
        record = state.SandboxRecord(
            id=sandbox_id,
            metadata=config.metadata,
            created_at=time.time_ns(),
            hostname=config.hostname or config.metadata.name,
            cgroup_parent=cgroups.pod_parent(config.cgroup_parent, config.metadata.uid),
            shared_pid=config.share_process_namespace and not config.host_pid,
            host_ipc=config.host_ipc,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )
        record.save(self.paths)
        self.sandboxes[sandbox_id] = record
        try:
            await self._setup_sandbox(record, config)
        except BaseException as err:
            await self.remove_pod_sandbox(sandbox_id)
            if isinstance(err, cri.RuntimeError_ | asyncio.CancelledError):
                raise
            raise cri.RuntimeError_(
                f"failed to set up pod sandbox: {err}", reason="CreatePodSandboxError"
            ) from err
        return sandbox_id

    async def _setup_sandbox(
        self, record: state.SandboxRecord, config: cri.PodSandboxConfig
    ) -> None:
        directory = self.paths.sandbox(record.id)
        if not config.host_network:
            path = await netns.create(netns.path_for(record.id).name)
            record.netns = str(path)
            record.save(self.paths)
            if self.network is not None:
                attachment = await self.network.setup(
                    netns=path,
                    container_id=record.id,
                    namespace=config.metadata.namespace,
                    name=config.metadata.name,
                    uid=config.metadata.uid,
                    port_mappings=[_port(p) for p in config.port_mappings],
                )
                record.ip = attachment.ip
        else:
            record.ip = self.options.node_ip
        # containers share the pod's IPC namespace (unless hostIPC) and, off the host network,
        # its UTS namespace (the pod's hostname)
        kinds = (() if config.host_ipc else ("ipc",)) + (() if config.host_network else ("uts",))
        await sandbox.pin_namespaces(directory, kinds, record.hostname)
        if record.shared_pid:
            await sandbox.start_pid_namespace(directory)
        await asyncio.to_thread(sandbox.write_files, directory, config, record.ip)
        record.save(self.paths)

    async def _sandbox_stopped(self, record: state.SandboxRecord) -> None:
        if record.shared_pid:
            sandbox.kill_pid_namespace(self.paths.sandbox(record.id))
        if record.netns and self.network is not None and record.ready:
            meta = record.metadata
            await self.network.teardown(
                netns=Path(record.netns),
                container_id=record.id,
                namespace=meta.namespace,
                name=meta.name,
                uid=meta.uid,
            )

    async def _release_sandbox(self, record: state.SandboxRecord) -> None:
        await asyncio.to_thread(sandbox.unpin_all, self.paths.sandbox(record.id))
        if record.netns:
            await netns.delete(Path(record.netns))
        await asyncio.to_thread(cgroups.remove, record.cgroup_parent)

    def _sandbox_ip(self, record: state.SandboxRecord) -> str:
        return record.ip

    # --- containers --------------------------------------------------------------------

    def _image(self, reference: str) -> model.ImageRecord:
        found = self.images.get(reference) if self.images is not None else None
        if found is None:
            raise cri.RuntimeError_(
                f"image {reference!r} is not present on this node", reason="CreateContainerError"
            )
        return found

    async def create_container(
        self, sandbox_id: str, config: cri.ContainerConfig, sandbox_config: cri.PodSandboxConfig
    ) -> str:
        pod = self._ready_sandbox(sandbox_id)
        image = self._image(config.image)
        container_id = uuid.uuid4().hex
        record = state.ContainerRecord(
            id=container_id,
            sandbox_id=sandbox_id,
            metadata=config.metadata,
            image=config.image,
            image_ref=image.id,
            created_at=time.time_ns(),
            log_path=config.log_path or str(self.paths.container(container_id) / "container.log"),
            cgroups_path=cgroups.container_path(pod.cgroup_parent, container_id),
            tty=config.tty,
            stdin=config.stdin,
            labels=dict(config.labels),
            annotations=dict(config.annotations),
        )
        bundle = self.paths.bundle(container_id)
        try:
            await asyncio.to_thread(self._write_bundle, record, config, sandbox_config, pod, image)
        except BaseException as err:
            await asyncio.to_thread(rootfs.remove, bundle)
            await asyncio.to_thread(shutil.rmtree, self.paths.container(container_id), True)
            if isinstance(err, cri.RuntimeError_ | asyncio.CancelledError):
                raise
            raise cri.RuntimeError_(
                f"failed to create container: {err}", reason="CreateContainerError"
            ) from err
        return self._add_container(record)

    def _write_bundle(
        self,
        record: state.ContainerRecord,
        config: cri.ContainerConfig,
        sandbox_config: cri.PodSandboxConfig,
        pod: state.SandboxRecord,
        image: model.ImageRecord,
    ) -> None:
        bundle = self.paths.bundle(record.id)
        bundle.mkdir(parents=True)
        root = rootfs.mount(bundle, list(image.layers))
        directory = self.paths.sandbox(pod.id)
        ns = {
            kind: str(directory / kind) if sandbox.is_pinned(directory / kind) else ""
            for kind in ("ipc", "uts", "pid")
        }
        place = spec.Placement(
            rootfs=str(root),
            cgroups_path=record.cgroups_path,
            netns=pod.netns,
            ipcns="" if pod.host_ipc else ns["ipc"],
            utsns=ns["uts"],
            pidns=ns["pid"],
            etc_files=tuple(
                (f"/etc/{n}", str(directory / n)) for n in ("hosts", "hostname", "resolv.conf")
            ),
            init=self.init,
            passwd=rootfs.read_file(root, "/etc/passwd"),
            group=rootfs.read_file(root, "/etc/group"),
        )
        document = spec.generate(config, sandbox_config, image.config, place)
        (bundle / "config.json").write_text(json.dumps(document))
        self._write_shim_spec(record, config)

    def _write_shim_spec(self, record: state.ContainerRecord, config: cri.ContainerConfig) -> None:
        directory = self.paths.container(record.id)
        argv = self._driver().run_detached(
            self.paths.bundle(record.id), record.id, directory / "pid"
        )
        # the binary's --log goes before the command (a global flag)
        argv[3:3] = ["--log", str(directory / "runc.log"), "--log-format", "json"]
        shim_spec = {
            "argv": argv,
            **statedir.monitor_spec(config, record.log_path, self.options.extra),
            "pid_file": str(directory / "pid"),
            "runc_log": str(directory / "runc.log"),
            "oom_file": str(cgroups.oom_file(record.cgroups_path)),
        }
        (directory / "spec.bin").write_bytes(marshal.dumps(shim_spec))

    def _monitor_argv(self, directory: Path) -> list[str]:
        return [SHIM, str(directory), PROCESS_DIR]

    def _signal(self, pid: int, sig: int) -> None:
        # the container's init (tini) forwards it to the app
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)

    async def _killed(self, container_id: str) -> None:
        await self._driver().run("kill", "--all", container_id, "KILL")

    async def _release_container(self, record: state.ContainerRecord) -> None:
        await self._driver().delete(record.id)
        await asyncio.to_thread(rootfs.remove, self.paths.bundle(record.id))
        await asyncio.to_thread(cgroups.remove, record.cgroups_path)

    def _image_ref(self, record: state.ContainerRecord) -> str:
        return record.image_ref

    async def container_stats(self, container_id: str) -> cri.ContainerStats:
        record = self._container(container_id)
        usage = await asyncio.to_thread(cgroups.usage, record.cgroups_path)
        return cri.ContainerStats(
            id=container_id,
            timestamp=time.time_ns(),
            cpu_usage_core_nanoseconds=usage.cpu_ns,
            memory_working_set_bytes=usage.working_set,
            memory_rss_bytes=usage.rss,
        )

    # --- streaming ---------------------------------------------------------------------

    async def _spawn(
        self, container_id: str, cmd: list[str], *, tty: bool, stdin: bool
    ) -> execs.ContainerExec:
        self._exec_target(container_id, cmd)
        pid_file = self.paths.container(container_id) / f"exec-{uuid.uuid4().hex[:12]}.pid"
        argv = self._driver().exec_argv(container_id, cmd, tty=tty, pid_file=pid_file)
        return await execs.start(argv, pid_file, tty=tty, stdin=stdin)

    async def port_forward(self, sandbox_id: str, port: int) -> cri.PortStream:
        record = self._sandbox(sandbox_id)
        if not record.netns:
            return await streams.connect_port("127.0.0.1", port)
        try:
            reader, writer = await sandbox.connect_in(record.netns, port)
        except OSError as err:
            raise cri.RuntimeError_(
                f"failed to connect to localhost:{port} in pod sandbox {sandbox_id}: "
                f"{err.strerror or err}",
                reason="PortForwardError",
            ) from err
        return streams.TcpPortStream(reader, writer)

    # --- images ------------------------------------------------------------------------

    def _image_service(self) -> model.ImageService:
        if self.images is None:
            raise cri.ImagePullError("the oci runtime has no image store")
        return self.images

    async def pull_image(self, image: str, auth: cri.AuthConfig | None = None) -> str:
        service = self._image_service()
        try:
            record = await service.ensure(image, credentials=_credentials(image, auth))
        except cri.RuntimeError_:
            raise
        except Exception as err:  # the store's own errors (errors.PullError ...)
            raise cri.ImagePullError(str(err)) from err
        return record.id

    async def image_status(self, image: str) -> cri.Image | None:
        found = self._image_service().get(image)
        return None if found is None else _image(found)

    async def list_images(self) -> list[cri.Image]:
        return [_image(r) for r in self._image_service().list()]

    async def remove_image(self, image: str) -> None:
        await self._image_service().remove(image)


# --- helpers -----------------------------------------------------------------------------


def _port(mapping: cri.PortMapping) -> cni.PortMapping:
    return cni.PortMapping(
        host_port=mapping.host_port,
        container_port=mapping.container_port,
        protocol=mapping.protocol,
        host_ip=mapping.host_ip,
    )


def _image(record: model.ImageRecord) -> cri.Image:
    return cri.Image(
        id=record.id,
        repo_tags=record.references,
        repo_digests=record.repo_digests,
        size=record.size,
    )


def _credentials(image: str, auth: cri.AuthConfig | None) -> dict[str, model.Credentials] | None:
    if auth is None:
        return None
    first = image.split("/", 1)[0]
    host = first if "/" in image and ("." in first or ":" in first) else "docker.io"
    username, password = auth.username, auth.password
    if auth.auth and not username:
        import base64

        username, _, password = base64.b64decode(auth.auth).decode().partition(":")
    return {
        host: model.Credentials(
            username=username,
            password=password,
            identity_token=auth.identity_token,
            registry_token=auth.registry_token,
        )
    }
