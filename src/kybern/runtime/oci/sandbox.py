"""A pod sandbox on the host: its namespaces and its /etc files.

Instead of a pause process, the sandbox's network, IPC and UTS namespaces are pinned by bind
mounts of their nsfs files (as ``ip netns add`` and containerd's pinned namespaces do): the
kernel keeps a namespace alive while a mount holds it, so nothing has to run between
containers, and the pod's containers join them by path. The network namespace comes from
:mod:`kybern.network.netns` (``/run/netns/kybern-<id>``, where CNI plugins expect it); IPC and
UTS are pinned in the sandbox directory by a short-lived thread that unshares them and sets
the pod's hostname. A pod that shares its process namespace gets a pinned PID namespace too,
whose PID 1 is a tiny ``sleep`` (a PID namespace dies with its first process).

Per-pod files, bind-mounted into every container: ``hosts`` (localhost, the pod's IP and
hostname, then hostAliases, as the kubelet writes it), ``hostname`` and ``resolv.conf``.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import os
import signal
import socket
import threading
from pathlib import Path

from kybern.runtime import cri

CLONE_NEWIPC = 0x08000000
CLONE_NEWUTS = 0x04000000
MS_BIND = 4096
MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(OSError):
    pass


# --- pinned namespaces -------------------------------------------------------------------


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SandboxError(err, f"{what}: {os.strerror(err)}")


def _pin(directory: Path, kinds: tuple[str, ...], hostname: str) -> None:
    """In a throwaway thread: new namespaces of ``kinds`` (ipc, uts), the hostname set in a new
    UTS namespace, each bind-mounted at ``directory/<kind>``."""
    flags = {"ipc": CLONE_NEWIPC, "uts": CLONE_NEWUTS}
    _check(_libc.unshare(sum(flags[k] for k in kinds)), f"unshare({', '.join(kinds)})")
    if "uts" in kinds:
        name = hostname.encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")
    own = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/ns"
    for kind in kinds:
        target = directory / kind
        target.touch(exist_ok=True)
        _check(
            _libc.mount(f"{own}/{kind}".encode(), str(target).encode(), None, MS_BIND, None),
            f"pin {kind}",
        )


async def pin_namespaces(directory: Path, kinds: tuple[str, ...], hostname: str) -> None:
    """Pin new namespaces at ``directory/ipc`` and/or ``directory/uts`` (idempotent)."""
    kinds = tuple(k for k in kinds if not is_pinned(directory / k))
    if not kinds:
        return
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def target() -> None:  # this thread never goes back to a pool: it is in the new namespaces
        try:
            _pin(directory, kinds, hostname)
        except BaseException as exc:
            loop.call_soon_threadsafe(_settle, done, exc)
        else:
            loop.call_soon_threadsafe(_settle, done, None)

    threading.Thread(target=target, name="kybern-sandbox-ns", daemon=True).start()
    await done


def _settle(future: asyncio.Future[None], exc: BaseException | None) -> None:
    if future.cancelled():
        return
    if exc is None:
        future.set_result(None)
    else:
        future.set_exception(exc)


def is_pinned(path: Path) -> bool:
    try:
        return os.stat(path).st_dev != os.stat(path.parent).st_dev
    except OSError:
        return False


def unpin(path: Path) -> None:
    if _libc.umount2(str(path).encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise SandboxError(err, f"umount {path}: {os.strerror(err)}")
    path.unlink(missing_ok=True)


def unpin_all(directory: Path) -> None:
    for kind in ("ipc", "uts", "pid"):
        unpin(directory / kind)


# --- a shared PID namespace --------------------------------------------------------------


async def start_pid_namespace(directory: Path) -> int:
    """A PID namespace pinned at ``directory/pid`` whose PID 1 is ``sleep infinity``."""
    target = directory / "pid"
    target.touch(exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        "unshare",
        f"--pid={target}",
        "--fork",
        "--kill-child",
        "sleep",
        "infinity",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    for _ in range(500):  # the bind mount appears once unshare has forked
        if is_pinned(target):
            return proc.pid
        await asyncio.sleep(0.002)
    raise SandboxError(errno.ETIMEDOUT, "the pod's PID namespace did not appear")


def kill_pid_namespace(directory: Path) -> None:
    """SIGKILL the holder of ``directory/pid`` (every process in it dies with its PID 1)."""
    try:
        inode = os.stat(directory / "pid").st_ino
    except OSError:
        return
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{entry}/ns/pid_for_children").st_ino == inode:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry), signal.SIGKILL)


# --- per-pod files -----------------------------------------------------------------------


def hosts_file(config: cri.PodSandboxConfig, ip: str) -> str:
    """/etc/hosts as the kubelet manages it."""
    hostname = config.hostname or config.metadata.name
    lines = [
        "# Kubernetes-managed hosts file.",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "fe00::0\tip6-mcastprefix",
        "fe00::1\tip6-allnodes",
        "fe00::2\tip6-allrouters",
    ]
    if ip:
        lines.append(f"{ip}\t{hostname}")
    if config.host_aliases:
        lines.append("")
        lines.append("# Entries added by HostAliases.")
        lines += [f"{a.ip}\t{chr(9).join(a.hostnames)}" for a in config.host_aliases]
    return "\n".join(lines) + "\n"


def resolv_conf(dns: cri.DNSConfig | None, host_resolv: str) -> str:
    """The pod's resolv.conf; without a DNS config, the host's (dnsPolicy Default)."""
    if dns is None:
        return host_resolv
    lines = [f"nameserver {s}" for s in dns.servers]
    if dns.searches:
        lines.append("search " + " ".join(dns.searches))
    if dns.options:
        lines.append("options " + " ".join(dns.options))
    return "\n".join(lines) + "\n"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def write_files(directory: Path, config: cri.PodSandboxConfig, ip: str) -> list[tuple[str, str]]:
    """Write hosts, hostname and resolv.conf; returns (container path, host path) pairs."""
    host_resolv = _read("/etc/resolv.conf")
    if config.host_network:  # the node's own files, as the kubelet does for host network
        hosts = "# Kubernetes-managed hosts file (host network).\n" + _read("/etc/hosts")
        hostname = socket.gethostname()
    else:
        hosts, hostname = hosts_file(config, ip), config.hostname or config.metadata.name
    contents = {
        "hosts": hosts,
        "hostname": hostname + "\n",
        "resolv.conf": resolv_conf(config.dns, host_resolv),
    }
    pairs = []
    for name, text in contents.items():
        (directory / name).write_text(text)
        pairs.append((f"/etc/{name}", str(directory / name)))
    return pairs


# --- port-forward ------------------------------------------------------------------------

CLONE_NEWNET = 0x40000000


def _socket_in(netns: str) -> socket.socket:
    """A TCP socket created inside ``netns`` (a socket keeps the namespace it was made in)."""
    own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(netns, os.O_RDONLY)
    try:
        _check(_libc.setns(target, CLONE_NEWNET), f"setns {netns}")
        try:
            return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            _check(_libc.setns(own, CLONE_NEWNET), "setns back")
    finally:
        os.close(own)
        os.close(target)


async def connect_in(netns: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to 127.0.0.1:``port`` in the pod's network namespace."""
    sock = await asyncio.to_thread(_socket_in, netns)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)
