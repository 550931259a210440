"""A container's ``volumeMounts`` turned into runtime mounts.

``subPath`` and ``subPathExpr`` (``$(VAR)`` from the container's environment) mount a path
inside the volume; like Kubernetes, a missing subpath is created as a directory, and a subpath
of an atomically-updated volume is resolved through ``..data`` now, so it keeps the content it
had when the container started (Kubernetes' known "subPath mounts do not update").
``mountPropagation`` maps to private / rslave (HostToContainer) / rshared (Bidirectional).
configMap, secret, downwardAPI and projected volumes are always read-only, as in Kubernetes.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping, Sequence
from pathlib import Path

from kybern.kubelet import envvars
from kybern.kubelet.volumes import base
from kybern.runtime import cri

PROPAGATION = {
    None: "private",
    "None": "private",
    "HostToContainer": "rslave",
    "Bidirectional": "rshared",
}
READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected")


q = envvars.go_quote


def _fail(message: str) -> base.VolumeError:
    return base.VolumeError("CreateContainerConfigError", message)


def _sub_path(mount: base.Obj, env: Mapping[str, str], container_name: str) -> str:
    if mount.get("subPathExpr"):
        sub = envvars.expand(str(mount["subPathExpr"]), env)
        if posixpath.isabs(sub) or ".." in sub.split("/"):
            raise _fail(
                f"failed to prepare subPath for volumeMount {q(str(mount.get('name')))} of container "
                f"{q(container_name)}: subpath {q(sub)} must be relative and not contain '..'"
            )
        return sub
    return str(mount.get("subPath") or "")


def _host_path(base_path: Path, sub: str) -> str:
    if not sub:
        return str(base_path)
    resolved_base = os.path.realpath(base_path)
    target = os.path.realpath(os.path.join(base_path, sub))
    if not os.path.lexists(os.path.join(base_path, sub)):
        os.makedirs(target, mode=0o755, exist_ok=True)
    if os.path.commonpath([resolved_base, target]) != resolved_base:
        raise _fail(f"subpath {q(sub)} not within volume path {q(str(base_path))}")
    return target


def container_mounts(
    pod: base.Obj,
    container: base.Obj,
    paths: Mapping[str, Path],
    *,
    env: Sequence[tuple[str, str]] = (),
) -> list[cri.Mount]:
    """Runtime mounts for ``container``'s volumeMounts; VolumeError on a bad mount."""
    volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
    env_map = dict(env)
    name = str(container.get("name", ""))
    mounts = []
    for mount in container.get("volumeMounts") or []:
        vol_name = mount.get("name")
        if vol_name not in paths or vol_name not in volumes:
            raise _fail(f"cannot find volume {q(str(vol_name))} to mount into container {q(name)}")
        volume = volumes[vol_name]
        sub = _sub_path(mount, env_map, name)
        readonly = bool(mount.get("readOnly")) or any(k in volume for k in READ_ONLY_KINDS)
        if "persistentVolumeClaim" in volume:
            readonly = readonly or bool(volume["persistentVolumeClaim"].get("readOnly"))
        mounts.append(
            cri.Mount(
                container_path=str(mount.get("mountPath", "")),
                host_path=_host_path(paths[vol_name], sub),
                readonly=readonly,
                propagation=PROPAGATION.get(mount.get("mountPropagation"), "private"),
            )
        )
    return mounts
