"""One pod's sync against the runtime: what kubelet's ``computePodActions`` and ``SyncPod`` do.

:meth:`PodSync.sync` brings the runtime in line with the pod spec, one step at a time, and
reports what it saw (a :class:`kybern.kubelet.status.Observed`) plus when it wants to run
again:

1. a ready sandbox (a new one, attempt + 1, when the old one died: its containers are killed);
2. init containers one by one: start the next when the one before exited 0, restart a failed
   one per restartPolicy (Never: the pod fails), wait while one runs;
3. app containers: start what never ran, restart what exited when restartPolicy says so
   (Always; OnFailure on a non-zero exit), each restart after the container's backoff
   (:mod:`kybern.kubelet.backoff`: CrashLoopBackOff in between);
4. image pulls (:mod:`kybern.kubelet.images`), the environment (CreateContainerConfigError),
   volumes, create + start (RunContainerError), postStart; termination messages come from
   :mod:`kybern.kubelet.termination`.

:meth:`PodSync.kill` is graceful termination: preStop hooks, then stop every container with the
grace period (the runtime sends SIGTERM, then SIGKILL), then stop the sandbox. Nothing here
talks to the API server; events go through the ``record`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from kybern.client import clock as clock_
from kybern.client import errors
from kybern.kubelet import backoff as backoff_
from kybern.kubelet import containerconfig as cc
from kybern.kubelet import envvars, images, status, termination
from kybern.kubelet.volumes import base as volumes_base
from kybern.runtime import cri

Obj = dict[str, Any]
log = logging.getLogger(__name__)
Record = Callable[[Obj, str, str, str], None]  # (pod, type, reason, message)
RESYNC = 60.0  # kubelet's syncFrequency: a pod is looked at at least this often


class EnvSource(Protocol):
    def __call__(self, pod: Obj, container: Obj, pod_ip: str) -> list[tuple[str, str]]: ...


class Volumes(Protocol):
    """The volume manager's part the sync needs (:class:`kybern.kubelet.volumes.VolumeManager`)."""

    async def setup(self, pod: Obj) -> dict[str, Path]: ...

    def mounts(
        self,
        pod: Obj,
        container: Obj,
        paths: Mapping[str, Path],
        *,
        env: Sequence[tuple[str, str]] = (),
    ) -> list[cri.Mount]: ...

    async def refresh(self, pod: Obj) -> bool: ...

    async def teardown(self, pod_uid: str) -> None: ...


class Hooks(Protocol):
    """postStart / preStop handlers (kybern.kubelet.lifecycle)."""

    async def post_start(self, pod: Obj, container: Obj, container_id: str) -> str | None:
        """None when it succeeded, else the failure message (the container is killed)."""
        ...

    async def pre_stop(
        self, pod: Obj, container: Obj, container_id: str, budget: float
    ) -> None: ...


@dataclass
class Node:
    name: str
    ip: str
    runtime_name: str
    log_root: Path  # container logs: <log_root>/<ns>_<pod>_<uid>/<container>/<attempt>.log
    pods_root: Path  # per-pod state: <pods_root>/<uid>/...
    pod_cidr: str = ""


@dataclass
class RuntimePod:
    sandboxes: list[cri.PodSandboxStatus] = field(default_factory=list)  # newest first
    containers: list[cri.ContainerStatus] = field(default_factory=list)

    @property
    def sandbox(self) -> cri.PodSandboxStatus | None:
        return self.sandboxes[0] if self.sandboxes else None

    def running(self) -> list[cri.ContainerStatus]:
        return [c for c in self.containers if c.state is cri.ContainerState.RUNNING]


@dataclass
class Result:
    observed: status.Observed
    requeue_after: float = RESYNC


class _Wait(Exception):
    """Stop this sync here: a container waits (reason) and the pod is looked at again later."""

    def __init__(self, name: str, waiting: status.Waiting, after: float = RESYNC) -> None:
        super().__init__(waiting.reason)
        self.name = name
        self.waiting = waiting
        self.after = after


class _Requeue(Exception):
    """Stop this sync; look at the pod again after ``after`` seconds."""

    def __init__(self, after: float) -> None:
        super().__init__(after)
        self.after = after


def _default_env(pod: Obj, container: Obj, pod_ip: str) -> list[tuple[str, str]]:
    return [(str(e.get("name")), str(e.get("value") or "")) for e in container.get("env") or []]


class _EmptyDirsOnly:
    """The fallback volume manager: emptyDir volumes as plain directories, nothing else."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def setup(self, pod: Obj) -> dict[str, Path]:
        uid = str(cc.meta(pod).get("uid", ""))
        paths = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            if "emptyDir" in volume:
                path = self.root / uid / "volumes" / "kubernetes.io~empty-dir" / volume["name"]
                await asyncio.to_thread(path.mkdir, parents=True, exist_ok=True)
                paths[volume["name"]] = path
        return paths

    def mounts(
        self,
        pod: Obj,
        container: Obj,
        paths: Mapping[str, Path],
        *,
        env: Sequence[tuple[str, str]] = (),
    ) -> list[cri.Mount]:
        return [
            cri.Mount(m["mountPath"], str(paths[m["name"]]), bool(m.get("readOnly")))
            for m in container.get("volumeMounts") or []
            if m.get("name") in paths
        ]

    async def refresh(self, pod: Obj) -> bool:
        return False

    async def teardown(self, pod_uid: str) -> None:
        path = self.root / pod_uid / "volumes"
        await asyncio.to_thread(shutil.rmtree, path, True)


class PodSync:
    def __init__(
        self,
        runtime: cri.Runtime,
        node: Node,
        *,
        clock: clock_.Clock = clock_.REAL,
        record: Record | None = None,
        env: EnvSource | None = None,
        volumes: Volumes | None = None,
        hooks: Hooks | None = None,
        dns: Callable[[Obj], cri.DNSConfig | None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.node = node
        self.clock = clock
        self.record: Record = record or (lambda *_: None)
        self.env: EnvSource = env or _default_env
        self.volumes: Volumes = volumes or _EmptyDirsOnly(node.pods_root)
        self.hooks = hooks
        self.dns = dns
        self.backoff = backoff_.Backoff()
        self.puller = images.Puller(runtime, record=self.record, clock=clock)
        self.liveness_failed: set[tuple[str, str]] = set()  # (pod uid, container) to restart
        self._paths: dict[str, dict[str, Path]] = {}  # pod uid -> volume paths last set up
        self._sandbox_configs: dict[str, cri.PodSandboxConfig] = {}  # pod uid -> last made
        self._sandbox_ids: dict[str, list[str]] = {}  # pod uid -> its sandboxes' ids

    # -- runtime state -----------------------------------------------------------------

    async def runtime_pod(self, uid: str) -> RuntimePod:
        sandboxes = await self._sandboxes_of(uid)
        sandboxes.sort(key=lambda s: (s.metadata.attempt, s.created_at), reverse=True)
        containers: list[cri.ContainerStatus] = []
        for sandbox in sandboxes:  # per sandbox: listing every container costs O(node)
            containers += await self.runtime.list_containers(sandbox.id)
        return RuntimePod(sandboxes, containers)

    async def _sandboxes_of(self, uid: str) -> list[cri.PodSandboxStatus]:
        """The pod's sandboxes: by id when this agent knows them (a full list costs O(node)
        per call, O(node^2) when every pod of a node syncs), else from the runtime's list."""
        found: list[cri.PodSandboxStatus] = []
        for sandbox_id in self._sandbox_ids.get(uid, ()):
            with contextlib.suppress(cri.NotFoundError):
                found.append(await self.runtime.pod_sandbox_status(sandbox_id))
        if not found:  # not known yet (a new pod, or adopted after a restart), or all gone
            found = [s for s in await self.runtime.list_pod_sandboxes() if s.metadata.uid == uid]
        if found:
            self._sandbox_ids[uid] = [s.id for s in found]
        else:
            self._sandbox_ids.pop(uid, None)
        return found

    # -- sync --------------------------------------------------------------------------

    async def sync(self, pod: Obj) -> Result:
        uid = str(cc.meta(pod).get("uid", ""))
        current = await self.runtime_pod(uid)
        observed = status.Observed()
        requeue = RESYNC
        try:
            sandbox = await self._ensure_sandbox(pod, current)
            if sandbox is not None:
                observed.sandbox = sandbox
                paths = await self._volumes(pod)
                await self._kill_liveness_failures(pod, current)
                await self._containers(pod, sandbox, current, paths, observed)
        except _Wait as wait:
            observed.waiting[wait.name] = wait.waiting
            requeue = wait.after
        except _Requeue as again:
            requeue = again.after
        after = await self.runtime_pod(uid)
        observed.sandbox = after.sandbox or observed.sandbox
        observed.containers = after.containers
        observed.messages = await termination.messages(pod, after.containers, self.node.pods_root)
        history = status.by_name(after.containers)
        for name in list(observed.waiting):
            latest = _latest(history, name)
            if latest is not None and latest.state is cri.ContainerState.RUNNING:
                del observed.waiting[name]  # started since
        return Result(observed, requeue)

    async def _volumes(self, pod: Obj) -> dict[str, Path]:
        uid = str(cc.meta(pod).get("uid", ""))
        try:
            paths = await self.volumes.setup(pod)
            await self.volumes.refresh(pod)
        except volumes_base.VolumeError as err:
            self.record(pod, "Warning", err.reason, err.message)
            if uid in self._paths:  # set up before: keep running on what is mounted
                return self._paths[uid]
            raise _Wait(_first_name(pod), status.Waiting("ContainerCreating"), 5.0) from err
        except (errors.ClientError, OSError) as err:
            # a token or an object could not be fetched (API server down): what is mounted
            # stays, and the containers are still looked after
            log.warning("pod %s: volumes not refreshed: %s", cc.full_name(pod), err)
            if uid in self._paths:
                return self._paths[uid]
            raise _Wait(_first_name(pod), status.Waiting("ContainerCreating"), 5.0) from err
        self._paths[uid] = paths
        return paths

    async def _ensure_sandbox(self, pod: Obj, current: RuntimePod) -> cri.PodSandboxStatus | None:
        sandbox = current.sandbox
        if sandbox is not None and sandbox.state is cri.SandboxState.READY:
            return sandbox
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        if sandbox is not None and policy == "Never" and current.containers:
            return None  # kubelet: a Never pod whose sandbox died does not start again
        if current.running():
            await self._stop_all(pod, current, 0)
        attempt = sandbox.metadata.attempt + 1 if sandbox else 0
        dns = self.dns(pod) if self.dns else None
        config = cc.sandbox_config(
            pod, attempt=attempt, log_root=self.node.log_root, pod_cidr=self.node.pod_cidr, dns=dns
        )
        self._sandbox_configs[str(cc.meta(pod).get("uid", ""))] = config
        try:
            sandbox_id = await self.runtime.run_pod_sandbox(config)
        except cri.RuntimeError_ as err:
            message = f"Failed to create pod sandbox: {err}"
            self.record(pod, "Warning", "FailedCreatePodSandBox", message)
            raise _Wait(_first_name(pod), status.Waiting("ContainerCreating"), 5.0) from err
        uid = str(cc.meta(pod).get("uid", ""))
        self._sandbox_ids[uid] = [sandbox_id, *self._sandbox_ids.get(uid, ())]
        for old in current.sandboxes:
            with contextlib.suppress(cri.RuntimeError_):
                await self.runtime.remove_pod_sandbox(old.id)
        if sandbox is not None:
            self.record(
                pod,
                "Normal",
                "SandboxChanged",
                "Pod sandbox changed, it will be killed and re-created.",
            )
        return await self.runtime.pod_sandbox_status(sandbox_id)

    async def _containers(
        self,
        pod: Obj,
        sandbox: cri.PodSandboxStatus,
        current: RuntimePod,
        paths: dict[str, Path],
        observed: status.Observed,
    ) -> None:
        spec = pod.get("spec") or {}
        policy = spec.get("restartPolicy") or "Always"
        history = status.by_name(current.containers)
        for init in spec.get("initContainers") or []:
            latest = _latest(history, str(init.get("name", "")))
            if init.get("restartPolicy") == "Always":  # a sidecar: keep it running, go on
                if latest is None or latest.state is not cri.ContainerState.RUNNING:
                    await self._start_or_restart(pod, init, latest, sandbox, paths, history)
                continue
            if latest is not None and latest.state is cri.ContainerState.EXITED:
                if latest.exit_code == 0:
                    continue
                if policy == "Never":
                    return  # the pod has failed
            if latest is not None and latest.state is cri.ContainerState.RUNNING:
                return  # wait for it to finish
            await self._start_or_restart(pod, init, latest, sandbox, paths, history)
            return
        soonest: float | None = None
        for container in spec.get("containers") or []:
            latest = _latest(history, str(container.get("name", "")))
            if latest is not None and latest.state is cri.ContainerState.RUNNING:
                continue
            exited = latest is not None and latest.state is cri.ContainerState.EXITED
            if exited and latest and not _should_restart(policy, latest.exit_code):
                continue
            try:
                await self._start_or_restart(pod, container, latest, sandbox, paths, history)
            except _Wait as wait:
                observed.waiting[wait.name] = wait.waiting  # the others still start
                soonest = wait.after if soonest is None else min(soonest, wait.after)
        if soonest is not None:
            raise _Requeue(soonest)

    async def _start_or_restart(
        self,
        pod: Obj,
        container: Obj,
        latest: cri.ContainerStatus | None,
        sandbox: cri.PodSandboxStatus,
        paths: dict[str, Path],
        history: dict[str, list[cri.ContainerStatus]],
    ) -> None:
        name = str(container.get("name", ""))
        uid = str(cc.meta(pod).get("uid", ""))
        attempt = 0
        if latest is not None:
            attempt = latest.metadata.attempt + 1
            if latest.state is cri.ContainerState.EXITED:
                self._check_backoff(pod, name, latest)
            for old in history.get(name, [])[1:]:
                with contextlib.suppress(cri.RuntimeError_):
                    await self.runtime.remove_container(old.id)  # keep one dead container
            if latest.state is cri.ContainerState.CREATED:
                with contextlib.suppress(cri.RuntimeError_):
                    await self.runtime.remove_container(latest.id)
        try:
            await self.puller.ensure(pod, container)
        except images.PullWait as wait:
            raise _Wait(name, wait.waiting, wait.after) from wait
        config = await self._config(pod, container, attempt, sandbox, paths)
        sandbox_config = self._sandbox_configs.get(uid)
        if sandbox_config is None or sandbox_config.metadata.attempt != sandbox.metadata.attempt:
            sandbox_config = cc.sandbox_config(  # an adopted sandbox: rebuilt as it was made
                pod,
                attempt=sandbox.metadata.attempt,
                log_root=self.node.log_root,
                pod_cidr=self.node.pod_cidr,
            )
        try:
            container_id = await self.runtime.create_container(sandbox.id, config, sandbox_config)
        except cri.RuntimeError_ as err:
            self.record(pod, "Warning", "Failed", f"Error: {err}")
            raise _Wait(
                name, status.Waiting(err.reason or "CreateContainerError", str(err)), 5.0
            ) from err
        self.record(pod, "Normal", "Created", f"Created container {name}")
        try:
            await self.runtime.start_container(container_id)
        except cri.RuntimeError_ as err:
            self.record(pod, "Warning", "Failed", f"Error: {err}")
            self.backoff.next(f"{uid}/{name}", self._wall())
            raise _Wait(name, status.Waiting("RunContainerError", str(err)), 1.0) from err
        self.record(pod, "Normal", "Started", f"Started container {name}")
        if latest is not None:
            finished = latest.finished_at / 1e9 or self._wall()
            self.backoff.next(f"{uid}/{name}", finished, self._wall())
        await self._post_start(pod, container, container_id)

    def _check_backoff(self, pod: Obj, name: str, latest: cri.ContainerStatus) -> None:
        uid = str(cc.meta(pod).get("uid", ""))
        key = f"{uid}/{name}"
        finished = latest.finished_at / 1e9 or self._wall()
        left = self.backoff.remaining(key, finished, self._wall())
        if left > 0:
            wait = backoff_.go_duration(self.backoff.duration(key))
            message = f"back-off {wait} restarting failed container={name} pod={cc.full_name(pod)}"
            self.record(
                pod,
                "Warning",
                "BackOff",
                f"Back-off restarting failed container {name} in pod {cc.full_name(pod)}",
            )
            raise _Wait(name, status.Waiting("CrashLoopBackOff", message), left)

    async def _post_start(self, pod: Obj, container: Obj, container_id: str) -> None:
        if self.hooks is None or not ((container.get("lifecycle") or {}).get("postStart")):
            return
        failure = await self.hooks.post_start(pod, container, container_id)
        if failure is not None:
            name = container.get("name", "")
            self.record(pod, "Warning", "FailedPostStartHook", failure)
            await self.runtime.stop_container(container_id, float(cc.grace_period(pod)))
            raise _Wait(str(name), status.Waiting("PostStartHookError", failure), 1.0)

    async def _config(
        self,
        pod: Obj,
        container: Obj,
        attempt: int,
        sandbox: cri.PodSandboxStatus,
        paths: dict[str, Path],
    ) -> cri.ContainerConfig:
        name = str(container.get("name", ""))
        try:
            env = self.env(pod, container, sandbox.ip or self.node.ip)
        except envvars.ConfigError as err:
            self.record(pod, "Warning", "Failed", f"Error: {err}")
            raise _Wait(name, status.Waiting("CreateContainerConfigError", str(err)), 10.0) from err
        command, args = envvars.command_args(container, env)
        try:
            mounts = self.volumes.mounts(pod, container, paths, env=env)
        except volumes_base.VolumeError as err:
            self.record(pod, "Warning", "Failed", f"Error: {err.message}")
            raise _Wait(name, status.Waiting(err.reason, err.message), 10.0) from err
        uid = str(cc.meta(pod).get("uid", ""))
        message_file = termination.message_file(self.node.pods_root, uid, name, attempt)
        await asyncio.to_thread(termination.touch, message_file)
        return cc.container_config(
            pod,
            container,
            attempt=attempt,
            command=command,
            args=args,
            env=env,
            mounts=mounts,
            log_dir=cc.log_directory(self.node.log_root, pod),
            termination_host_path=str(message_file),
        )

    async def _kill_liveness_failures(self, pod: Obj, current: RuntimePod) -> None:
        uid = str(cc.meta(pod).get("uid", ""))
        killed = False
        for c in current.running():
            if (uid, c.metadata.name) in self.liveness_failed:
                self.liveness_failed.discard((uid, c.metadata.name))
                message = f"Container {c.metadata.name} failed liveness probe, will be restarted"
                self.record(pod, "Normal", "Killing", message)
                await self.runtime.stop_container(c.id, float(cc.grace_period(pod)))
                killed = True
        if killed:
            current.containers[:] = (await self.runtime_pod(uid)).containers

    # -- termination -------------------------------------------------------------------

    async def kill(self, pod: Obj, *, grace: float | None = None, remove: bool = False) -> None:
        """Stop the pod's containers gracefully (preStop, SIGTERM, grace, SIGKILL) and its
        sandbox; with ``remove``, delete them from the runtime too (the pod is gone)."""
        uid = str(cc.meta(pod).get("uid", ""))
        current = await self.runtime_pod(uid)
        budget = float(cc.grace_period(pod) if grace is None else grace)
        await self._stop_all(pod, current, budget)
        for sandbox in current.sandboxes:
            with contextlib.suppress(cri.NotFoundError):
                if sandbox.state is cri.SandboxState.READY:
                    await self.runtime.stop_pod_sandbox(sandbox.id)
                if remove:
                    await self.runtime.remove_pod_sandbox(sandbox.id)
        if remove:
            for c in current.containers:
                with contextlib.suppress(cri.NotFoundError):
                    await self.runtime.remove_container(c.id)
            self.backoff.forget(uid)
            self.puller.forget(uid)
            self._paths.pop(uid, None)
            self._sandbox_configs.pop(uid, None)
            self._sandbox_ids.pop(uid, None)
            await self.volumes.teardown(uid)

    async def _stop_all(self, pod: Obj, current: RuntimePod, budget: float) -> None:
        specs = {
            c.get("name"): c
            for key in ("initContainers", "containers")
            for c in (pod.get("spec") or {}).get(key) or []
        }
        started = self.clock.monotonic()

        async def stop(c: cri.ContainerStatus) -> None:
            spec = specs.get(c.metadata.name) or {}
            self.record(pod, "Normal", "Killing", f"Stopping container {c.metadata.name}")
            if self.hooks is not None and (spec.get("lifecycle") or {}).get("preStop"):
                with contextlib.suppress(Exception):
                    await self.hooks.pre_stop(pod, spec, c.id, budget)
            left = max(0.0, budget - (self.clock.monotonic() - started))
            with contextlib.suppress(cri.NotFoundError):
                await self.runtime.stop_container(c.id, left)

        await asyncio.gather(*(stop(c) for c in current.running()))

    def _wall(self) -> float:
        return self.clock.now().timestamp()


def _first_name(pod: Obj) -> str:
    spec = pod.get("spec") or {}
    first = (spec.get("initContainers") or spec.get("containers") or [{}])[0]
    return str(first.get("name", ""))


def _latest(history: dict[str, list[cri.ContainerStatus]], name: str) -> cri.ContainerStatus | None:
    found = history.get(name)
    return found[0] if found else None


def _should_restart(policy: str, exit_code: int) -> bool:
    return policy == "Always" or (policy == "OnFailure" and exit_code != 0)
