"""Volumes for the process runtime: a private mount namespace with bind mounts.

Imported by :mod:`monitor` inside the forked container process, between fork and exec, and only
when the container has mounts (ctypes costs milliseconds). Stdlib only, no kybern imports.

Steps: ``unshare(CLONE_NEWNS)`` (as non-root together with ``CLONE_NEWUSER``, mapping our own
uid and gid to themselves, so files keep their owners and the process keeps its identity),
make every mount private (nothing leaks back to the host), then bind each volume's host path at
its container path, remounting it read-only when asked (keeping the flags the kernel locks in a
user namespace: nosuid, nodev, noexec, atime).

Mount points that do not exist on the host are never created there. Instead:

- when the nearest existing ancestor is inside an earlier volume, the directory is created in
  that volume (as runc does inside a rootfs);
- when it is ``/``, the container gets a new root: a tmpfs mirroring every top-level entry of the
  host root by bind mounts, in which the missing directories are made, then ``chroot``;
- otherwise that ancestor is shadowed: its contents are bind-mounted one by one onto a tmpfs
  laid over it, and the missing directory is made in the tmpfs.

The scratch directory (in the container's state dir, owned by the runtime) holds the staging
mount points. Propagation ``rslave``/``rshared`` both become slave mounts (host mounts appear in
the container, never the other way round).
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
MS_PRIVATE, MS_SLAVE = 1 << 18, 1 << 19
LOCKED_FLAGS = (
    MS_NOSUID | MS_NODEV | MS_NOEXEC | 1024 | 2048 | 4096
)  # + noatime, nodiratime, relatime

ENABLE_HINT = (
    "volumes need a private mount namespace; enable unprivileged user namespaces "
    "(sysctl user.max_user_namespaces > 0, kernel.unprivileged_userns_clone=1 where it exists, "
    "kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu) or run the agent as root"
)

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _enc(value: str | None) -> bytes | None:
    return None if value is None else value.encode()


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = "") -> None:
    result: int = _libc.mount(
        _enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags), _enc(data or None)
    )
    _check(result, f"mount {source or fstype} on {target}")


def enter_namespace() -> None:
    """A private mount namespace, inside a new user namespace unless we are root."""
    uid, gid = os.geteuid(), os.getegid()
    flags = CLONE_NEWNS if uid == 0 else CLONE_NEWNS | CLONE_NEWUSER
    if _libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"unshare failed ({os.strerror(errno)}): {ENABLE_HINT}")
    if uid != 0:
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def _placeholder(path: str, like_dir: bool) -> None:
    if like_dir:
        os.makedirs(path, exist_ok=True)
    elif not os.path.exists(path):
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o644))


def _mirror(source: str, onto: str) -> None:
    """Fill the (empty, tmpfs) ``onto`` with bind mounts of ``source``'s entries."""
    for entry in os.scandir(source):
        target = os.path.join(onto, entry.name)
        if entry.is_symlink():
            os.symlink(os.readlink(entry.path), target)
            continue
        _placeholder(target, entry.is_dir())
        _mount(entry.path, target, None, MS_BIND | MS_REC)


class Planner:
    """Binds volumes in order, making missing mount points without touching the host."""

    def __init__(self, scratch: str) -> None:
        self.scratch = scratch
        self.done: list[str] = []  # container paths mounted so far
        self.root = ""  # the new root when one was needed ("" = the host's)
        self.counter = 0

    def view(self, path: str) -> str:
        """Where the container path is right now from our (not yet chrooted) point of view."""
        return self.root + path if self.root else path

    def _staging(self) -> str:
        self.counter += 1
        path = os.path.join(self.scratch, f"m{self.counter}")
        os.makedirs(path, exist_ok=True)
        return path

    def _new_root(self) -> None:
        self.root = self._staging()
        _mount("tmpfs", self.root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
        _mirror("/", self.root)

    def _shadow(self, directory: str) -> None:
        original = self._staging()
        _mount(self.view(directory), original, None, MS_BIND | MS_REC)
        _mount("tmpfs", self.view(directory), "tmpfs", MS_NOSUID | MS_NODEV, "mode=755")
        _mirror(original, self.view(directory))

    def ensure(self, path: str, like_dir: bool) -> None:
        if os.path.lexists(self.view(path)):
            return
        ancestor = os.path.dirname(path)
        while not os.path.isdir(self.view(ancestor)):
            ancestor = os.path.dirname(ancestor)
        in_volume = any(
            ancestor == d or ancestor.startswith(d.rstrip("/") + "/") for d in self.done
        )
        if not in_volume:
            if ancestor == "/" and not self.root:
                self._new_root()
            elif ancestor != "/":
                self._shadow(ancestor)
        os.makedirs(self.view(os.path.dirname(path)), exist_ok=True)
        _placeholder(self.view(path), like_dir)

    def bind(self, host_path: str, container_path: str, readonly: bool, propagation: str) -> None:
        if not os.path.exists(host_path):
            raise OSError(f"volume source {host_path!r} for {container_path!r} does not exist")
        path = os.path.normpath(os.path.join("/", container_path))
        self.ensure(path, os.path.isdir(host_path))
        target = self.view(path)
        _mount(host_path, target, None, MS_BIND | MS_REC)
        if propagation != "private":
            _mount(None, target, None, MS_REC | MS_SLAVE)
        if readonly:
            locked = os.statvfs(target).f_flag & LOCKED_FLAGS
            _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | locked)
        self.done.append(path)

    def finish(self) -> None:
        if self.root:
            os.chdir(self.root)
            os.chroot(".")
            os.chdir("/")


def setup(mounts: list[tuple[str, str, bool, str]], *, scratch: str) -> None:
    """Enter a private mount namespace and bind ``(host, container, readonly, propagation)``."""
    enter_namespace()
    planner = Planner(scratch)
    for host_path, container_path, readonly, propagation in sorted(mounts, key=lambda m: m[1]):
        planner.bind(host_path, container_path, readonly, propagation)
    planner.finish()
