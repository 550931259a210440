"""Facts about the machine a node agent runs on: capacity, addresses, pressure.

What the kubelet's cadvisor and node status setters read: CPU count, ``/proc/meminfo``,
the data directory's file system, the kernel and OS names, the address other machines reach
this one at. Allocatable follows kubelet's defaults with no reservations: capacity minus the
hard eviction thresholds (``memory.available<100Mi``, ``nodefs.available<10%``), and the
same thresholds decide MemoryPressure and DiskPressure.
"""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

EVICTION_MEMORY = 100 * 1024 * 1024  # memory.available<100Mi
EVICTION_DISK_FRACTION = 0.10  # nodefs.available<10%
PID_PRESSURE_FRACTION = 0.10  # fewer than 10% of pid_max left
_ARCH = {
    "x86_64": "amd64",
    "aarch64": "arm64",
    "armv7l": "arm",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}


@dataclass(frozen=True)
class Capacity:
    cpu: int
    memory_bytes: int
    disk_bytes: int

    def capacity(self, pods: int = 110) -> dict[str, str]:
        return {
            "cpu": str(self.cpu),
            "memory": f"{self.memory_bytes // 1024}Ki",
            "pods": str(pods),
            "ephemeral-storage": f"{self.disk_bytes // 1024}Ki",
            "hugepages-1Gi": "0",
            "hugepages-2Mi": "0",
        }

    def allocatable(self, pods: int = 110) -> dict[str, str]:
        memory = max(0, self.memory_bytes - EVICTION_MEMORY)
        disk = int(self.disk_bytes * (1 - EVICTION_DISK_FRACTION))
        return {
            **self.capacity(pods),
            "memory": f"{memory // 1024}Ki",
            "ephemeral-storage": str(disk),
        }


def meminfo() -> dict[str, int]:
    """/proc/meminfo in bytes (empty where there is none, e.g. macOS)."""
    out = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                out[key] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    return out


def capacity(data_dir: Path) -> Capacity:
    memory = meminfo().get("MemTotal") or _sysconf_memory()
    return Capacity(cpu=os.cpu_count() or 1, memory_bytes=memory, disk_bytes=_disk(data_dir)[0])


def _sysconf_memory() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def _disk(path: Path) -> tuple[int, int]:
    """(total, free) bytes of the file system holding ``path`` (or its closest parent)."""
    for candidate in (path, *path.parents):
        with contextlib.suppress(OSError):
            usage = shutil.disk_usage(candidate)
            return usage.total, usage.free
    return 0, 0


@dataclass(frozen=True)
class Pressure:
    memory: bool
    disk: bool
    pid: bool


def pressure(data_dir: Path) -> Pressure:
    info = meminfo()
    available = info.get("MemAvailable")
    memory = available is not None and available < EVICTION_MEMORY
    total, free = _disk(data_dir)
    disk = total > 0 and free < total * EVICTION_DISK_FRACTION
    return Pressure(memory=memory, disk=disk, pid=_pid_pressure())


def _pid_pressure() -> bool:
    try:
        pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
        running = sum(1 for name in os.listdir("/proc") if name.isdigit())
    except (OSError, ValueError):
        return False
    return pid_max - running < pid_max * PID_PRESSURE_FRACTION


def arch() -> str:
    machine = platform.machine()
    return _ARCH.get(machine, machine.lower())


def os_image() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.partition("=")[2].strip().strip('"')
    return f"{platform.system()} {platform.release()}"


def kernel_version() -> str:
    return platform.release()


def node_name() -> str:
    """The default node name: the host name, lowercased (as kubelet's hostname override)."""
    return socket.gethostname().split(".")[0].lower() or "localhost"


def node_ip() -> str:
    """The address of the interface holding the default route (no packet is sent), else
    the host name's address, else 127.0.0.1."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("10.255.255.255", 1))
        address = str(sock.getsockname()[0])
        if address and not address.startswith("0."):
            return address
    with contextlib.suppress(OSError):
        address = socket.gethostbyname(socket.gethostname())
        if address:
            return address
    return "127.0.0.1"
