"""downwardAPI volumes: pod metadata and container resources as files, updated in place.

``fieldRef`` supports the metadata fields (name, namespace, uid, labels, annotations and
single keys of them, rendered as Kubernetes does: ``key="value"`` lines in key order);
``resourceFieldRef`` names a container and reads its requests/limits (limits default to the
node's allocatable). Errors from several items are joined as Kubernetes' aggregate does.
"""

from __future__ import annotations

import asyncio
import posixpath
from pathlib import Path

from kybern.kubelet import envvars
from kybern.kubelet.volumes import atomic, base

PLUGIN = "kubernetes.io~downward-api"
DEFAULT_MODE = 0o644


def aggregate(errors: list[str]) -> str:
    return errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"


def _container(pod: base.Obj, name: str) -> base.Obj:
    spec = pod.get("spec") or {}
    containers = (spec.get("containers") or []) + (spec.get("initContainers") or [])
    for container in containers:
        if container.get("name") == name or not name:
            return dict(container)
    raise envvars.ConfigError(f"container {name} not found")


def _item_value(ctx: base.Context, item: base.Obj) -> str:
    if "fieldRef" in item:
        path = str(item["fieldRef"].get("fieldPath", ""))
        if not path.startswith("metadata."):
            raise envvars.ConfigError(f"unsupported fieldPath: {path}")
        return envvars.field_value(ctx.pod, path, envvars.PodRuntimeFields())
    ref = item.get("resourceFieldRef") or {}
    container = _container(ctx.pod, str(ref.get("containerName") or ""))
    return envvars.resource_value(ref, container, ctx.node_allocatable)


def payload(ctx: base.Context, source: base.Obj, default_mode: int | None = None) -> atomic.Payload:
    mode = source.get("defaultMode", default_mode)
    fallback = DEFAULT_MODE if mode is None else int(mode)
    files: atomic.Payload = {}
    errors: list[str] = []
    for item in source.get("items") or []:
        try:
            value = _item_value(ctx, item)
        except envvars.ConfigError as err:
            errors.append(str(err))
            value = ""
        item_mode = item.get("mode")
        path = posixpath.normpath(str(item.get("path", "")))
        files[path] = atomic.File(value.encode(), fallback if item_mode is None else int(item_mode))
    if errors:
        raise base.SourceError(aggregate(errors))
    return files


async def setup(ctx: base.Context, volume: base.Obj, target: Path) -> Path:
    files = payload(ctx, volume.get("downwardAPI") or {})
    await asyncio.to_thread(atomic.write, target, files)
    return target
