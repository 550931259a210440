"""RUN: execute a command in a container over the image built so far, keeping its changes.

The container's root is an overlay of the current layer snapshots plus a fresh upper directory
(:func:`kybern.runtime.oci.rootfs.mount`); after the command exits the upper directory *is* the
step's diff (:mod:`.layerdiff`). The OCI config is minimal and written here rather than by the
pod-oriented :mod:`kybern.runtime.oci.spec`: new PID, IPC, UTS and mount namespaces, containerd's
default capabilities, /proc, /dev, /sys as usual, masked /proc paths.

Network: RUN shares the host's network namespace (like ``docker build --network=host``). The
builder runs as root on a node without internet access, so there is nothing to isolate from
that a pod network would give, and a RUN can still reach a registry or server on 127.0.0.1.
Output (stdout and stderr merged) is streamed line by line to the build's output.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from kybern.runtime.oci import driver, rootfs, spec

# Directories runc creates for its mounts when the image lacks them; not part of the step's diff.
MOUNT_POINTS = ("proc", "dev", "sys")
_MASKED = (
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
)
_READONLY = (
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)


@dataclass(frozen=True)
class Process:
    args: list[str]
    env: list[str]
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)


def config(process: Process, hostname: str = "kybern-build") -> dict[str, Any]:
    caps = list(spec.DEFAULT_CAPS)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {
                "uid": process.uid,
                "gid": process.gid,
                "additionalGids": process.additional_gids,
            },
            "args": process.args,
            "env": process.env,
            "cwd": process.cwd,
            "capabilities": dict.fromkeys(("bounding", "effective", "permitted"), caps),
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": [
            {
                "destination": "/proc",
                "type": "proc",
                "source": "proc",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
            "maskedPaths": list(_MASKED),
            "readonlyPaths": list(_READONLY),
        },
    }


class Container:
    """A build container's bundle: the overlay root, mounted until :meth:`close`."""

    def __init__(self, work_root: Path, layers: list[Path]) -> None:
        work_root.mkdir(parents=True, exist_ok=True)
        self.bundle = Path(tempfile.mkdtemp(dir=work_root, prefix="run-"))
        lower = list(layers)
        if not lower:  # FROM scratch: overlayfs needs one lower directory
            lower = [self.bundle / "empty"]
            lower[0].mkdir()
        try:
            self.rootfs = rootfs.mount(self.bundle, lower)
        except OSError:
            shutil.rmtree(self.bundle, ignore_errors=True)
            raise
        self.upper = self.bundle / "upper"
        self.missing_mount_points = frozenset(
            d for d in MOUNT_POINTS if not os.path.lexists(self.rootfs / d)
        )

    def close(self) -> None:
        rootfs.remove(self.bundle)

    def prepare_cwd(self, cwd: str) -> None:
        """Create the working directory, as Docker does for WORKDIR (inside the container's
        root, so a symlinked path cannot escape it: resolved by hand, never followed)."""
        target = self.rootfs
        for part in Path(cwd).parts[1:]:
            target = target / part
            if target.is_symlink() or target.exists():
                continue
            target.mkdir(mode=0o755)

    def created_mount_points(self) -> frozenset[str]:
        """Mount points runc created that the command left empty: not part of the layer."""
        return frozenset(
            d
            for d in self.missing_mount_points
            if (self.upper / d).is_dir() and not any((self.upper / d).iterdir())
        )

    def run(self, process: Process, out: TextIO, *, binary: str = "") -> int:
        """Run ``process`` to completion, streaming its output; returns its exit code."""
        (self.bundle / "config.json").write_text(json.dumps(config(process)))
        path = binary or driver.choose()
        state = Path("/run/kybern-build")
        state.mkdir(parents=True, exist_ok=True)
        name = f"kybern-build-{uuid.uuid4().hex[:12]}"
        argv = [path, "--root", str(state), "run", "--bundle", str(self.bundle), name]
        with _running(argv, [path, "--root", str(state), "delete", "--force", name]) as proc:
            assert proc.stdout is not None
            for line in proc.stdout:
                out.write(line.decode(errors="replace"))
                out.flush()
            return proc.wait()


@contextlib.contextmanager
def _running(argv: list[str], cleanup: list[str]) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:  # interrupted: take the container down with us
            subprocess.run(cleanup, capture_output=True, check=False)
            proc.kill()
            proc.wait()


def available() -> bool:
    return os.geteuid() == 0 and (
        shutil.which("runc") is not None or shutil.which("crun") is not None
    )
