"""emptyDir volumes: a directory that lives as long as the pod.

``medium: Memory`` is a tmpfs (sized by ``sizeLimit``) when the kubelet runs as root and the
kernel lets it mount; otherwise a plain directory, and the manager logs that it fell back. The
``sizeLimit`` is recorded so eviction can compare usage against it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from kybern.api import quantity
from kybern.kubelet.volumes import base

PLUGIN = "kubernetes.io~empty-dir"
log = logging.getLogger(__name__)


def size_limit(source: base.Obj) -> int | None:
    """The sizeLimit in bytes, or None when unlimited."""
    raw = source.get("sizeLimit")
    return None if raw in (None, "") else quantity.int_value(raw)


def _create(target: Path) -> None:
    """Create the directory world-writable (as Kubernetes); an existing one is left as is."""
    if target.is_dir():
        return
    target.mkdir(parents=True, exist_ok=True)
    os.chmod(target, 0o777)  # not via mkdir's mode, which the umask would narrow


async def setup(
    ctx: base.Context, volume: base.Obj, target: Path, *, use_tmpfs: bool | None = None
) -> tuple[Path, bool]:
    """Create the directory; returns it and whether a tmpfs is mounted on it."""
    source = volume.get("emptyDir") or {}
    await asyncio.to_thread(_create, target)
    if source.get("medium") != "Memory":
        return target, False
    if use_tmpfs is None:
        use_tmpfs = os.geteuid() == 0
    if not use_tmpfs:
        log.warning(
            "emptyDir %r of pod %s: medium Memory is a plain directory (tmpfs needs root)",
            volume.get("name"),
            ctx.uid,
        )
        return target, False
    return target, await _mount_tmpfs(target, size_limit(source), ctx.uid, volume)


async def _mount_tmpfs(target: Path, limit: int | None, uid: str, volume: base.Obj) -> bool:
    if await is_mountpoint(target):
        return True
    options = "mode=0777" + (f",size={limit}" if limit else "")
    proc = await asyncio.create_subprocess_exec(
        "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    if proc.returncode != 0:
        log.warning(
            "emptyDir %r of pod %s: tmpfs mount failed (%s); using a plain directory",
            volume.get("name"),
            uid,
            err.decode(errors="replace").strip(),
        )
        return False
    return True


async def is_mountpoint(path: Path) -> bool:
    return await asyncio.to_thread(os.path.ismount, path)


async def unmount(path: Path) -> None:
    """Unmount a tmpfs set up by ``setup`` (lazy, so a busy mount still goes)."""
    if not await is_mountpoint(path):
        return
    proc = await asyncio.create_subprocess_exec(
        "umount", "-l", str(path),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await proc.wait()
