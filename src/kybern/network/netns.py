"""Named network namespaces: a pod sandbox's network lives in one, pinned by a bind mount.

``await create(name)`` makes a new network namespace with its loopback up and pins it at
``<directory>/<name>`` (default ``/run/netns``, so ``ip netns exec NAME`` and ``nsenter
--net=PATH`` see it); ``await delete(path)`` unpins it (the kernel frees the namespace, and the
veths in it, once nothing else holds it). Both are idempotent.

Done in-process rather than with ``ip netns add`` + ``ip link set lo up``: a dedicated thread
``unshare(CLONE_NEWNET)``s (namespaces are per thread), bind-mounts its own
``/proc/<pid>/task/<tid>/ns/net`` onto the file, sets ``lo`` up with an ioctl and exits, so no
other thread ever runs in the new namespace. Measured here: ~3 ms against ~17 ms for the two
``ip`` processes. As iproute2 does, the directory is made a shared mount point first, so a
namespace unpinned here also disappears from mount namespaces copied before (containers).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

NETNS_DIR = Path("/run/netns")
PREFIX = "kybern-"  # names of the namespaces kybern creates (cleanup only touches these)

CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

T = TypeVar("T")
_libc = ctypes.CDLL(None, use_errno=True)
_prepared: set[Path] = set()


class NetnsError(OSError):
    """A network namespace could not be created or removed."""


def path_for(container_id: str, directory: Path = NETNS_DIR) -> Path:
    """Where the sandbox ``container_id``'s namespace is pinned (``kybern-<id>``)."""
    return directory / f"{PREFIX}{container_id}"


async def create(name: str, *, directory: Path = NETNS_DIR) -> Path:
    """A fresh network namespace with ``lo`` up, pinned at ``directory/name``; an existing
    pinned namespace of that name is returned as it is (a retried sandbox start)."""
    path = directory / name
    if is_pinned(path):
        return path
    await _in_own_thread(lambda: _create(path))
    return path


async def delete(path: Path) -> None:
    """Unpin and remove ``path``; nothing to do if it is already gone."""
    await asyncio.to_thread(_delete, path)


def is_pinned(path: Path) -> bool:
    """Whether ``path`` holds a network namespace (a bind mount of an nsfs inode)."""
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


def names(directory: Path = NETNS_DIR) -> list[str]:
    """The kybern namespaces pinned in ``directory``."""
    try:
        return sorted(p.name for p in directory.iterdir() if p.name.startswith(PREFIX))
    except FileNotFoundError:
        return []


def _create(path: Path) -> None:
    _prepare_directory(path.parent)
    path.touch(exist_ok=True)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        own = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns/net"
        _check(_mount(own, str(path), None, MS_BIND), f"bind mount onto {path}")
        _loopback_up()
    except BaseException:
        _delete(path)
        raise


def _delete(path: Path) -> None:
    if _libc.umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
            raise NetnsError(err, f"umount {path}: {os.strerror(err)}")
    path.unlink(missing_ok=True)


def _prepare_directory(directory: Path) -> None:
    """Make ``directory`` a shared mount point once (iproute2's netns_add does the same)."""
    if directory in _prepared:
        return
    directory.mkdir(parents=True, exist_ok=True)
    if _mount("none", str(directory), None, MS_SHARED | MS_REC) != 0:
        if ctypes.get_errno() != errno.EINVAL:  # EINVAL: not yet a mount point
            _check(-1, f"make {directory} shared")
        _check(_mount(str(directory), str(directory), None, MS_BIND | MS_REC), "bind")
        _check(_mount("none", str(directory), None, MS_SHARED | MS_REC), "make shared")
    _prepared.add(directory)


def _loopback_up() -> None:
    """``ip link set lo up`` in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _mount(source: str, target: str, fstype: str | None, flags: int) -> int:
    kind = fstype.encode() if fstype else None
    return int(_libc.mount(source.encode(), target.encode(), kind, flags, None))


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise NetnsError(err, f"{what}: {os.strerror(err)}")


async def _in_own_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a new thread that exits afterwards: a thread that unshared its network
    namespace must never go back to a pool."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def target() -> None:
        try:
            result = fn()
        except BaseException as exc:  # handed to the awaiting coroutine
            loop.call_soon_threadsafe(_settle, future, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, future, result, None)

    threading.Thread(target=target, name="kybern-netns", daemon=True).start()
    return await future


def _settle(future: asyncio.Future[T], result: T | None, exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
