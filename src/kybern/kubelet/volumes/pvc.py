"""persistentVolumeClaim volumes bound to hostPath or local PersistentVolumes.

The claim is followed to its PersistentVolume (``spec.volumeName``); the PV's hostPath is
checked as a hostPath volume would be, a local PV's path must exist. Other PV kinds need a
volume plugin kybern does not have, and fail saying so. Messages follow the kubelet's volume
manager (``error processing PVC <ns>/<name>: ...``).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from kybern.kubelet.volumes import base, hostpath

PLUGIN = "kubernetes.io~pvc"


def resolve(ctx: base.Context, volume: base.Obj) -> tuple[Path, bool, str]:
    """The bound PV's path, whether the claim is read-only, and the hostPath type to check."""
    source = volume.get("persistentVolumeClaim") or {}
    claim = str(source.get("claimName", ""))
    where = f"error processing PVC {ctx.namespace}/{claim}"
    pvc = ctx.source.get("PersistentVolumeClaim", ctx.namespace, claim)
    if pvc is None:
        raise base.SourceError(
            f'{where}: failed to fetch PVC from API server: persistentvolumeclaims "{claim}" not found'
        )
    pv_name = str((pvc.get("spec") or {}).get("volumeName") or "")
    if not pv_name or (pvc.get("status") or {}).get("phase", "Bound") != "Bound":
        raise base.SourceError(f"{where}: PVC is not bound")
    pv = ctx.source.get("PersistentVolume", "", pv_name)
    if pv is None:
        raise base.SourceError(
            f'{where}: failed to fetch PV {pv_name} from API server: persistentvolumes "{pv_name}" not found'
        )
    spec = pv.get("spec") or {}
    readonly = bool(source.get("readOnly"))
    if "hostPath" in spec:
        host = spec["hostPath"]
        return Path(str(host.get("path", ""))), readonly, str(host.get("type") or "")
    if "local" in spec:
        return Path(str(spec["local"].get("path", ""))), readonly, "Directory"
    raise base.SourceError(
        f"{where}: PersistentVolume {pv_name} is neither hostPath nor local, which kybern cannot mount"
    )


async def setup(ctx: base.Context, volume: base.Obj, target: Path) -> Path:
    path, _, kind = resolve(ctx, volume)
    await asyncio.to_thread(hostpath.check_type, str(path), kind)
    return path
