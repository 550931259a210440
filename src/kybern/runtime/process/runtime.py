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

import logging
import os
import time
import uuid
from pathlib import Path

from kybern.runtime import cri, monitored, registry
from kybern.runtime.process import launcher, layout, procfs, streams, translate

log = logging.getLogger(__name__)

MONITOR = str(Path(__file__).with_name("monitor.py"))
MONITOR_START_TIMEOUT = 30.0


class ProcessRuntime(monitored.MonitoredRuntime[layout.SandboxRecord, layout.ContainerRecord]):
    """Host processes under a monitor; the shared bookkeeping is :mod:`kybern.runtime.monitored`."""

    name = "process"
    monitor_name = "monitor"
    monitor_timeout = MONITOR_START_TIMEOUT

    def __init__(self, options: registry.Options) -> None:
        super().__init__(options)
        self.paths: layout.Paths = layout.Paths(options.root)
        self.launcher: launcher.Launcher | None = launcher.Launcher(
            MONITOR, self.paths.root, timeout=MONITOR_START_TIMEOUT
        )
        self.images: dict[str, cri.Image] = {}
        self.execs: dict[str, list[streams.ExecSession]] = {}

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Create the state dirs and adopt every sandbox and container found there."""
        self._adopt(layout.SandboxRecord, layout.ContainerRecord)

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

    def _sandbox_ip(self, record: layout.SandboxRecord) -> str:
        return self.options.node_ip  # host network

    # --- containers --------------------------------------------------------------------

    async def create_container(
        self, sandbox_id: str, config: cri.ContainerConfig, sandbox_config: cri.PodSandboxConfig
    ) -> str:
        sandbox = self._ready_sandbox(sandbox_id)
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
        return self._add_container(record)

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

    def _monitor_argv(self, directory: Path) -> list[str]:
        return [MONITOR, str(directory)]

    async def _run_monitor(self, directory: Path) -> str:
        """Forked by the launcher (no interpreter start per container); started directly
        when the launcher cannot run or is lost half-way through a request."""
        if self.launcher is not None:
            try:
                return await self.launcher.start_monitor(directory)
            except launcher.LauncherError as exc:
                log.warning("starting monitors directly: %s", exc)
                self.launcher = None
            except OSError as exc:  # unreachable (nothing asked): direct; the next restarts it
                log.warning("monitor launcher unreachable (%s): starting this one directly", exc)
        return await super()._run_monitor(directory)

    async def close(self) -> None:
        if self.launcher is not None:
            await self.launcher.close()
        await super().close()

    def _signal(self, pid: int, sig: int) -> None:
        streams.kill_group(pid, sig)  # the container is its main process's group

    async def _stopped(self, container_id: str) -> None:
        for session in self.execs.pop(container_id, []):
            await session.close()

    def _image_ref(self, record: layout.ContainerRecord) -> str:
        return image_id(record.image)

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

    def _exec_argv(self, container_id: str, cmd: list[str]) -> tuple[list[str], str | None]:
        """The command line (entering the container's namespaces) and the working dir to use."""
        record = self._container(container_id)
        status = self._exec_target(container_id, cmd)
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
    ) -> streams.ExecSession:
        argv, cwd = self._exec_argv(container_id, cmd)
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


def image_id(image: str) -> str:
    return f"process://{image}"
