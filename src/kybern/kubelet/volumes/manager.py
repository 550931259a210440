"""The kubelet's volume manager: set up a pod's volumes, mount them, keep data volumes fresh.

Interface for the kubelet core (``VolumeManager(root, *, source, token_source=None,
clock=REAL, node_allocatable=None, use_tmpfs=None)``):

- ``await setup(pod) -> {volume name: host path}``: every volume of the pod ready on the host,
  under ``<root>/pods/<uid>/volumes/<plugin>/<name>`` (hostPath and PVC volumes: the node path
  itself). Raises :class:`VolumeError` with reason ``FailedMount`` and Kubernetes' message
  (``MountVolume.SetUp failed for volume "x" : configmap "y" not found``). Safe to repeat.
- ``mounts(pod, container, paths, *, env=()) -> [cri.Mount]``: the container's volumeMounts
  (``env`` expands ``subPathExpr``); VolumeError with reason ``CreateContainerConfigError``.
- ``await refresh(pod) -> bool``: rewrite configMap, secret, downwardAPI and projected volumes
  whose sources changed (atomic ``..data`` swap); True when any changed. A source that vanished
  keeps the last content, as in Kubernetes.
- ``await teardown(pod_uid)``: unmount tmpfs and delete the pod's volume directories (never a
  hostPath).
- ``empty_dir_limits(pod_uid) -> {name: (path, sizeLimit bytes)}`` for eviction.
- ``referenced_objects(pod) -> {(kind, namespace, name)}``: the ConfigMaps and Secrets the pod's
  volumes read, so the agent can call ``refresh`` for the pods using an object when its
  informer reports a change (Kubernetes otherwise refreshes on its periodic pod sync).

``token_source``: ``async (namespace, service_account, audience, expiration_seconds, pod) ->
token`` for projected serviceAccountToken sources.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kybern.client import clock as clock_mod
from kybern.kubelet import envvars
from kybern.kubelet.volumes import (
    atomic,
    base,
    configmap,
    downwardapi,
    emptydir,
    hostpath,
    mounts,
    projected,
    pvc,
    secret,
)
from kybern.runtime import cri

log = logging.getLogger(__name__)

_PLUGINS = {
    "emptyDir": emptydir.PLUGIN,
    "hostPath": hostpath.PLUGIN,
    "configMap": configmap.PLUGIN,
    "secret": secret.PLUGIN,
    "downwardAPI": downwardapi.PLUGIN,
    "projected": projected.PLUGIN,
    "persistentVolumeClaim": pvc.PLUGIN,
}
_DATA_KINDS = ("configMap", "secret", "downwardAPI", "projected")


def referenced_objects(pod: base.Obj) -> set[tuple[str, str, str]]:
    """ConfigMaps and Secrets read by the pod's volumes, as (kind, namespace, name)."""
    namespace = str((pod.get("metadata") or {}).get("namespace") or "default")
    found: set[tuple[str, str, str]] = set()
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        sources = [volume, *((volume.get("projected") or {}).get("sources") or [])]
        for source in sources:
            if "configMap" in source:
                found.add(("ConfigMap", namespace, str(source["configMap"].get("name", ""))))
            if "secret" in source:
                secret_ref = source["secret"]
                name = secret_ref.get("secretName", secret_ref.get("name", ""))
                found.add(("Secret", namespace, str(name)))
    return found


def volume_kind(volume: base.Obj) -> str | None:
    return next((kind for kind in _PLUGINS if kind in volume), None)


@dataclass
class _PodVolumes:
    ctx: base.Context
    paths: dict[str, Path] = field(default_factory=dict)
    tmpfs: list[Path] = field(default_factory=list)
    limits: dict[str, tuple[Path, int]] = field(default_factory=dict)


class VolumeManager:
    def __init__(
        self,
        root: Path,
        *,
        source: envvars.ObjectSource,
        token_source: base.TokenSource | None = None,
        clock: clock_mod.Clock = clock_mod.REAL,
        node_allocatable: Mapping[str, Any] | None = None,
        use_tmpfs: bool | None = None,
    ) -> None:
        self.root = Path(root)
        self.source = source
        self.token_source = token_source
        self.clock = clock
        self.node_allocatable = node_allocatable
        self.use_tmpfs = use_tmpfs
        self._pods: dict[str, _PodVolumes] = {}

    def pod_dir(self, pod_uid: str) -> Path:
        return self.root / "pods" / pod_uid / "volumes"

    def _state(self, pod: base.Obj) -> _PodVolumes:
        uid = str((pod.get("metadata") or {}).get("uid") or "")
        state = self._pods.get(uid)
        if state is None:
            ctx = base.Context(
                pod=pod,
                source=self.source,
                token_source=self.token_source,
                clock=self.clock,
                node_allocatable=self.node_allocatable,
            )
            state = self._pods[uid] = _PodVolumes(ctx)
        state.ctx.pod = pod  # labels and annotations may have changed
        return state

    async def setup(self, pod: base.Obj) -> dict[str, Path]:
        state = self._state(pod)
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            name = str(volume.get("name", ""))
            try:
                state.paths[name] = await self._setup_one(state, volume)
            except (base.SourceError, atomic.PayloadError, envvars.ConfigError, OSError) as err:
                raise base.VolumeError(
                    "FailedMount", f'MountVolume.SetUp failed for volume "{name}" : {err}'
                ) from err
        return dict(state.paths)

    async def _setup_one(self, state: _PodVolumes, volume: base.Obj) -> Path:
        kind = volume_kind(volume)
        name = str(volume.get("name", ""))
        if kind is None:
            raise base.SourceError(
                "unsupported volume type: kybern mounts emptyDir, hostPath, configMap, secret, downwardAPI, projected and persistentVolumeClaim volumes"
            )
        target = self.pod_dir(state.ctx.uid) / _PLUGINS[kind] / name
        ctx = state.ctx
        if kind == "emptyDir":
            path, on_tmpfs = await emptydir.setup(ctx, volume, target, use_tmpfs=self.use_tmpfs)
            if on_tmpfs and path not in state.tmpfs:
                state.tmpfs.append(path)
            limit = emptydir.size_limit(volume.get("emptyDir") or {})
            if limit is not None:
                state.limits[name] = (path, limit)
            return path
        setups = {
            "hostPath": hostpath.setup,
            "configMap": configmap.setup,
            "secret": secret.setup,
            "downwardAPI": downwardapi.setup,
            "projected": projected.setup,
            "persistentVolumeClaim": pvc.setup,
        }
        return await setups[kind](ctx, volume, target)

    def mounts(
        self,
        pod: base.Obj,
        container: base.Obj,
        paths: Mapping[str, Path],
        *,
        env: Sequence[tuple[str, str]] = (),
    ) -> list[cri.Mount]:
        return mounts.container_mounts(pod, container, paths, env=env)

    async def refresh(self, pod: base.Obj) -> bool:
        state = self._state(pod)
        changed = False
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            kind = volume_kind(volume)
            name = str(volume.get("name", ""))
            if kind not in _DATA_KINDS or name not in state.paths:
                continue
            try:
                files = await self._payload(state.ctx, kind, volume)
                wrote = await asyncio.to_thread(atomic.write, state.paths[name], files)
            except (base.SourceError, atomic.PayloadError, envvars.ConfigError, OSError) as err:
                log.info("volume %r of pod %s not refreshed: %s", name, state.ctx.uid, err)
                continue
            changed = changed or wrote
        return changed

    async def _payload(self, ctx: base.Context, kind: str, volume: base.Obj) -> atomic.Payload:
        if kind == "configMap":
            return configmap.payload(ctx, volume["configMap"])
        if kind == "secret":
            return secret.payload(ctx, volume["secret"])
        if kind == "downwardAPI":
            return downwardapi.payload(ctx, volume["downwardAPI"])
        return await projected.payload(ctx, str(volume.get("name", "")), volume["projected"])

    async def teardown(self, pod_uid: str) -> None:
        state = self._pods.pop(pod_uid, None)
        directory = self.pod_dir(pod_uid)
        for path in state.tmpfs if state else []:
            await emptydir.unmount(path)
        if state is None:
            await self._unmount_leftovers(directory)
        await asyncio.to_thread(shutil.rmtree, directory, True)

    async def _unmount_leftovers(self, directory: Path) -> None:
        """After an agent restart the state is gone: unmount any tmpfs still there."""
        empty_dirs = directory / emptydir.PLUGIN
        if await asyncio.to_thread(empty_dirs.is_dir):
            for entry in await asyncio.to_thread(lambda: list(empty_dirs.iterdir())):
                await emptydir.unmount(entry)

    def empty_dir_limits(self, pod_uid: str) -> dict[str, tuple[Path, int]]:
        state = self._pods.get(pod_uid)
        return dict(state.limits) if state else {}
